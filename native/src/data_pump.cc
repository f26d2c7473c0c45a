// SMC-R connection data pump (socket <-> RMBE over an RC QP). See native/README.md.
#include "common.h"

namespace smc {

void InitDataPump(Napi::Env env, Napi::Object exports) {}

}  // namespace smc
