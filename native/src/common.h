// Shared declarations of the smc_verbs addon: native resource records, typed errors, argument
// helpers and the type tags that make unwrapping safe.
//
// Ownership model
// ---------------
// Every verbs object lives in a "Res" record (DeviceRes, PdRes, MrRes, MwRes, ChannelRes, CqRes, QpRes)
// held by std::shared_ptr. A child record holds a shared_ptr to each parent record, so the memory
// of a parent record outlives its children whatever order the JS finalizers run in. The verbs
// object itself is destroyed either explicitly (close() from JS, which refuses with EBUSY while the
// record still has open children) or, as a safety net, when the last shared_ptr goes away.
// Parents count their open children in `children` (not use_count(), which would also count the
// temporary guards taken while dispatching completions).
#pragma once

#include <infiniband/verbs.h>
#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace smc {

// ---- live object counters (debugCounters()) -----------------------------------------------------
enum Counter { kContexts, kPds, kMrs, kChannels, kCqs, kQps, kBuffers, kPumps, kLinks, kMws, kRelays, kCounterCount };
extern int64_t g_live[kCounterCount];
extern const char* const kCounterNames[kCounterCount];
// Event statistics (debugStats()).
extern uint64_t g_cqEvents, g_channelPollErrors;

// ---- per-env data --------------------------------------------------------------------------------
struct AddonData {
  Napi::FunctionReference errorClass;  // VerbsError, registered by index.ts
};

// ---- errors ----------------------------------------------------------------------------------------
const char* ErrnoName(int err);
Napi::Error MakeVerbsError(Napi::Env env, int err, const char* syscall, const std::string& detail = "");
[[noreturn]] void ThrowVerbs(Napi::Env env, int err, const char* syscall, const std::string& detail = "");
[[noreturn]] void ThrowType(Napi::Env env, const std::string& msg);   // code ERR_INVALID_ARG_TYPE
[[noreturn]] void ThrowRange(Napi::Env env, const std::string& msg);  // code ERR_OUT_OF_RANGE
[[noreturn]] void ThrowClosed(Napi::Env env, const char* what, const char* op);  // EBADF
// Reports an exception thrown by JS code called from a libuv callback as uncaught.
void ReportUncaught(Napi::Env env, const Napi::Error& e);

// ---- argument helpers ------------------------------------------------------------------------------
Napi::Object OptObject(Napi::Env env, const Napi::Value& v, const char* name);  // undefined -> {}
uint32_t GetU32(Napi::Env env, const Napi::Object& o, const char* key, uint32_t def, uint32_t max = UINT32_MAX);
uint32_t ReqU32(Napi::Env env, const Napi::Object& o, const char* key, uint32_t max = UINT32_MAX);
bool GetBool(Napi::Env env, const Napi::Object& o, const char* key, bool def);
uint64_t ToU64(Napi::Env env, const Napi::Value& v, const char* name);  // safe integer or bigint
uint32_t ToU32(Napi::Env env, const Napi::Value& v, const char* name, uint32_t max = UINT32_MAX);
std::string GidToString(const uint8_t raw[16]);
// Accepts a GID as IPv6 text, IPv4 text (mapped to ::ffff:a.b.c.d) or a 16-byte buffer.
void ParseGid(Napi::Env env, const Napi::Value& v, uint8_t out[16]);
// Span of the bytes of a Buffer / TypedArray / DataView / ArrayBuffer.
bool BufferSpan(const Napi::Value& v, uint8_t** data, size_t* len);

// ---- type tags --------------------------------------------------------------------------------------
extern const napi_type_tag kTagContext, kTagPd, kTagMr, kTagChannel, kTagCq, kTagQp, kTagPump, kTagMw;

template <class T>
T* UnwrapTagged(Napi::Env env, const Napi::Value& v, const napi_type_tag& tag, const char* what) {
  if (!v.IsObject()) ThrowType(env, std::string("expected a ") + what);
  bool ok = false;
  if (napi_check_object_type_tag(env, v, &tag, &ok) != napi_ok || !ok) ThrowType(env, std::string("expected a ") + what);
  return Napi::ObjectWrap<T>::Unwrap(v.As<Napi::Object>());
}

// ---- native resource records ---------------------------------------------------------------------
struct AsyncSink {
  virtual ~AsyncSink() = default;
  virtual void OnAsyncEvents(const std::vector<ibv_async_event>& events) = 0;
};

struct DeviceRes {
  ibv_context* ctx = nullptr;
  std::string name;
  int children = 0;
  uv_poll_t* asyncPoll = nullptr;   // watches ctx->async_fd (unref'd)
  AsyncSink* asyncSink = nullptr;   // the JS Context, while it exists
  int StartAsync(uv_loop_t* loop);
  DeviceRes(ibv_context* c, std::string n);
  ~DeviceRes();
  int Destroy();
};

struct PdRes {
  std::shared_ptr<DeviceRes> dev;
  ibv_pd* pd = nullptr;
  int children = 0;
  PdRes(std::shared_ptr<DeviceRes> d, ibv_pd* p);
  ~PdRes();
  int Destroy();
};

struct MrRes {
  std::shared_ptr<PdRes> pd;
  ibv_mr* mr = nullptr;
  uint8_t* base = nullptr;
  size_t length = 0;
  int access = 0;
  int children = 0;  // memory windows bound to it (the kernel refuses to deregister it meanwhile)
  MrRes(std::shared_ptr<PdRes> p, ibv_mr* m, uint8_t* b, size_t len, int acc);
  ~MrRes();
  int Destroy();
};

struct QpRes;

// A type 2 memory window. A bind posted through a QP makes that QP and the bound MR parents until
// the window is deallocated: the kernel keeps references to both while the window is bound, and the
// addon cannot see when a LOCAL_INV completes, so closing either first is refused (EBUSY).
struct MwRes {
  std::shared_ptr<PdRes> pd;
  ibv_mw* mw = nullptr;
  std::vector<std::shared_ptr<QpRes>> boundQps;
  std::vector<std::shared_ptr<MrRes>> boundMrs;
  MwRes(std::shared_ptr<PdRes> p, ibv_mw* m);
  ~MwRes();
  int Destroy();
  void BoundTo(const std::shared_ptr<QpRes>& qp, const std::shared_ptr<MrRes>& mr);
};

struct CqRes;

struct ChannelRes : std::enable_shared_from_this<ChannelRes> {
  std::shared_ptr<DeviceRes> dev;
  ibv_comp_channel* channel = nullptr;
  uv_poll_t* poll = nullptr;
  int children = 0;
  int pollErrorsInRow = 0;
  ChannelRes(std::shared_ptr<DeviceRes> d, ibv_comp_channel* ch);
  ~ChannelRes();
  // Sets the fd non-blocking and starts a uv_poll on it. Returns a libuv error code (<0) or 0.
  int Start(uv_loop_t* loop);
  int Destroy();
  static void OnReadable(uv_poll_t* handle, int status, int events);
};

// Receives the work completions of a CQ. The JS CompletionQueue and the data pump implement it.
struct CqSink {
  virtual ~CqSink() = default;
  virtual void OnCompletions(CqRes* cq, const ibv_wc* wc, int n) = 0;
};

struct CqRes : std::enable_shared_from_this<CqRes> {
  std::shared_ptr<DeviceRes> dev;
  std::shared_ptr<ChannelRes> channel;
  ibv_cq* cq = nullptr;
  CqSink* sink = nullptr;    // who gets the completions now
  CqSink* jsSink = nullptr;  // the JS CompletionQueue, while it exists (a pump restores it on detach)
  int children = 0;
  CqRes(std::shared_ptr<DeviceRes> d, std::shared_ptr<ChannelRes> ch, ibv_cq* c);
  ~CqRes();
  int Destroy();
  int Arm();
  // Re-arms the CQ, then polls it empty, handing batches to the sink.
  void Drain();
};

struct QpRes {
  std::shared_ptr<PdRes> pd;
  std::shared_ptr<CqRes> sendCq, recvCq;
  ibv_qp* qp = nullptr;
  bool busy = false;  // owned by a data pump: JS posts are refused
  int children = 0;   // memory windows bound to it (rxe holds the QP until the window goes)
  QpRes(std::shared_ptr<PdRes> p, std::shared_ptr<CqRes> s, std::shared_ptr<CqRes> r, ibv_qp* q);
  ~QpRes();
  int Destroy();
};

// ---- accessors other translation units need --------------------------------------------------------
std::shared_ptr<DeviceRes> ContextRes(Napi::Env env, const Napi::Value& v);
std::shared_ptr<PdRes> PdResOf(Napi::Env env, const Napi::Value& v);
std::shared_ptr<MrRes> MrResOf(Napi::Env env, const Napi::Value& v);
std::shared_ptr<MwRes> MwResOf(Napi::Env env, const Napi::Value& v);
std::shared_ptr<ChannelRes> ChannelResOf(Napi::Env env, const Napi::Value& v);
std::shared_ptr<CqRes> CqResOf(Napi::Env env, const Napi::Value& v);
std::shared_ptr<QpRes> QpResOf(Napi::Env env, const Napi::Value& v);

// Names used in work completions.
const char* WcStatusName(ibv_wc_status s);
const char* AsyncEventName(ibv_event_type t);
const char* WcOpcodeName(ibv_wc_opcode op);
Napi::Object WcToObject(Napi::Env env, const ibv_wc& wc);

// ---- module parts --------------------------------------------------------------------------------
void InitContext(Napi::Env env, Napi::Object exports);
void InitPdMr(Napi::Env env, Napi::Object exports);
void InitCq(Napi::Env env, Napi::Object exports);
void InitQp(Napi::Env env, Napi::Object exports);
void InitNetUtil(Napi::Env env, Napi::Object exports);
void InitDataPump(Napi::Env env, Napi::Object exports);
void InitSmcLink(Napi::Env env, Napi::Object exports);
void InitSmcoLookup(Napi::Env env, Napi::Object exports);
void InitTcpRelay(Napi::Env env, Napi::Object exports);
void InitMemory(Napi::Env env, Napi::Object exports);

}  // namespace smc
