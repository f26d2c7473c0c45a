// trimMemory(): give memory a finished burst left behind back to the system. V8 is told memory
// is low (a full, memory-reducing collection that also releases its pooled pages), then glibc
// returns the free tops and pages of its arenas (malloc_trim). Both are synchronous and cost a
// full GC: call it when a burst has ended, not on a hot path.
#include <malloc.h>
#include <v8.h>

#include "common.h"

namespace smc {
namespace {

Napi::Value TrimMemory(const Napi::CallbackInfo& info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->LowMemoryNotification();
  int released = malloc_trim(0);
  return Napi::Boolean::New(info.Env(), released != 0);
}

}  // namespace

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("trimMemory", Napi::Function::New(env, TrimMemory, "trimMemory"));
}

}  // namespace smc
