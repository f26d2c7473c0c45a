// smc_verbs: libibverbs for Node.js. Module entry point.
#include "common.h"

namespace smc {
namespace {

// setErrorClass(VerbsError): errors thrown by the addon are then instances of that class,
// constructed as new VerbsError(message, code, syscall, errno).
void SetErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) ThrowType(info.Env(), "error class must be a constructor");
  auto* data = info.Env().GetInstanceData<AddonData>();
  data->errorClass = Napi::Persistent(info[0].As<Napi::Function>());
}

// debugCounters(): live native objects by kind, to prove the absence of leaks.
Napi::Value DebugCounters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  for (int i = 0; i < kCounterCount; i++) o.Set(kCounterNames[i], Napi::Number::New(env, double(g_live[i])));
  return o;
}

// debugStats(): event-path statistics (CQ events taken, completion-channel poll errors).
Napi::Value DebugStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("cqEvents", Napi::Number::New(env, double(g_cqEvents)));
  o.Set("channelPollErrors", Napi::Number::New(env, double(g_channelPollErrors)));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  InitContext(env, exports);
  InitPdMr(env, exports);
  InitCq(env, exports);
  InitQp(env, exports);
  InitNetUtil(env, exports);
  InitDataPump(env, exports);
  InitSmcLink(env, exports);
  InitSmcoLookup(env, exports);
  InitTcpRelay(env, exports);
  InitMemory(env, exports);
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("debugCounters", Napi::Function::New(env, DebugCounters, "debugCounters"));
  exports.Set("debugStats", Napi::Function::New(env, DebugStats, "debugStats"));
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  return exports;
}

}  // namespace
}  // namespace smc

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return smc::Init(env, exports); }
NODE_API_MODULE(smc_verbs, InitModule)
