// Typed errors, argument helpers, type tags, live counters and verbs name tables.
#include <arpa/inet.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "common.h"

namespace smc {

int64_t g_live[kCounterCount] = {};
uint64_t g_cqEvents = 0, g_channelPollErrors = 0;
const char* const kCounterNames[kCounterCount] = {"contexts", "pds",   "mrs",   "channels", "cqs", "qps",
                                                  "buffers",  "pumps", "links", "mws",      "relays"};

// Random 128-bit tags, one per class.
const napi_type_tag kTagContext = {0x6d2b1f0a4c3e5d71ULL, 0x91a0c3b2e4f50617ULL};
const napi_type_tag kTagPd = {0x6d2b1f0a4c3e5d72ULL, 0x91a0c3b2e4f50618ULL};
const napi_type_tag kTagMr = {0x6d2b1f0a4c3e5d73ULL, 0x91a0c3b2e4f50619ULL};
const napi_type_tag kTagChannel = {0x6d2b1f0a4c3e5d74ULL, 0x91a0c3b2e4f5061aULL};
const napi_type_tag kTagCq = {0x6d2b1f0a4c3e5d75ULL, 0x91a0c3b2e4f5061bULL};
const napi_type_tag kTagQp = {0x6d2b1f0a4c3e5d76ULL, 0x91a0c3b2e4f5061cULL};
const napi_type_tag kTagPump = {0x6d2b1f0a4c3e5d77ULL, 0x91a0c3b2e4f5061dULL};
const napi_type_tag kTagMw = {0x6d2b1f0a4c3e5d79ULL, 0x91a0c3b2e4f5061fULL};

const char* ErrnoName(int err) {
  const char* n = strerrorname_np(err);
  return n ? n : "EUNKNOWN";
}

Napi::Error MakeVerbsError(Napi::Env env, int err, const char* syscall, const std::string& detail) {
  const char* code = ErrnoName(err);
  std::string msg = std::string(syscall) + " failed: " + code + " (" + strerror(err) + ")";
  if (!detail.empty()) msg += ": " + detail;
  auto* data = env.GetInstanceData<AddonData>();
  if (data && !data->errorClass.IsEmpty()) {
    Napi::Object e = data->errorClass.New({Napi::String::New(env, msg), Napi::String::New(env, code),
                                           Napi::String::New(env, syscall), Napi::Number::New(env, -err)});
    return Napi::Error(env, e);
  }
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.Set("errno", Napi::Number::New(env, -err));
  return e;
}

void ThrowVerbs(Napi::Env env, int err, const char* syscall, const std::string& detail) {
  throw MakeVerbsError(env, err, syscall, detail);
}

void ThrowType(Napi::Env env, const std::string& msg) {
  Napi::TypeError e = Napi::TypeError::New(env, msg);
  e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  throw e;
}

void ThrowRange(Napi::Env env, const std::string& msg) {
  Napi::RangeError e = Napi::RangeError::New(env, msg);
  e.Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
  throw e;
}

void ThrowClosed(Napi::Env env, const char* what, const char* op) {
  ThrowVerbs(env, EBADF, op, std::string(what) + " is closed");
}

void ReportUncaught(Napi::Env env, const Napi::Error& e) {
  napi_fatal_exception(env, e.Value());
}

Napi::Object OptObject(Napi::Env env, const Napi::Value& v, const char* name) {
  if (v.IsUndefined() || v.IsNull()) return Napi::Object::New(env);
  if (!v.IsObject()) ThrowType(env, std::string(name) + " must be an object");
  return v.As<Napi::Object>();
}

uint32_t ToU32(Napi::Env env, const Napi::Value& v, const char* name, uint32_t max) {
  if (!v.IsNumber()) ThrowType(env, std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > max || std::floor(d) != d)
    ThrowRange(env, std::string(name) + " must be an integer in [0, " + std::to_string(max) + "]");
  return static_cast<uint32_t>(d);
}

uint32_t GetU32(Napi::Env env, const Napi::Object& o, const char* key, uint32_t def, uint32_t max) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return def;
  return ToU32(env, v, key, max);
}

uint32_t ReqU32(Napi::Env env, const Napi::Object& o, const char* key, uint32_t max) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) ThrowType(env, std::string(key) + " is required");
  return ToU32(env, v, key, max);
}

bool GetBool(Napi::Env env, const Napi::Object& o, const char* key, bool def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return def;
  if (!v.IsBoolean()) ThrowType(env, std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

uint64_t ToU64(Napi::Env env, const Napi::Value& v, const char* name) {
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || d > 9007199254740991.0 || std::floor(d) != d)
      ThrowRange(env, std::string(name) + " must be a non-negative safe integer");
    return static_cast<uint64_t>(d);
  }
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t u = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) ThrowRange(env, std::string(name) + " must fit in 64 bits unsigned");
    return u;
  }
  ThrowType(env, std::string(name) + " must be a number or a bigint");
}

std::string GidToString(const uint8_t raw[16]) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, raw, buf, sizeof buf);
  return buf;
}

void ParseGid(Napi::Env env, const Napi::Value& v, uint8_t out[16]) {
  if (v.IsString()) {
    std::string s = v.As<Napi::String>().Utf8Value();
    if (inet_pton(AF_INET6, s.c_str(), out) == 1) return;
    in_addr a4;
    if (inet_pton(AF_INET, s.c_str(), &a4) == 1) {
      memset(out, 0, 10);
      out[10] = out[11] = 0xff;
      memcpy(out + 12, &a4, 4);
      return;
    }
    ThrowType(env, "GID string is not an IPv6 or IPv4 address: " + s);
  }
  uint8_t* data;
  size_t len;
  if (BufferSpan(v, &data, &len) && len == 16) {
    memcpy(out, data, 16);
    return;
  }
  ThrowType(env, "GID must be an address string or a 16-byte buffer");
}

bool BufferSpan(const Napi::Value& v, uint8_t** data, size_t* len) {
  if (v.IsArrayBuffer()) {
    Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
    *data = static_cast<uint8_t*>(ab.Data());
    *len = ab.ByteLength();
    return true;
  }
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    Napi::ArrayBuffer ab = ta.ArrayBuffer();
    *data = static_cast<uint8_t*>(ab.Data()) + ta.ByteOffset();
    *len = ta.ByteLength();
    return true;
  }
  if (v.IsDataView()) {
    Napi::DataView dv = v.As<Napi::DataView>();
    *data = static_cast<uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
    *len = dv.ByteLength();
    return true;
  }
  return false;
}

const char* WcStatusName(ibv_wc_status s) {
  switch (s) {
#define S(x) \
  case x:    \
    return #x;
    S(IBV_WC_SUCCESS)
    S(IBV_WC_LOC_LEN_ERR)
    S(IBV_WC_LOC_QP_OP_ERR)
    S(IBV_WC_LOC_EEC_OP_ERR)
    S(IBV_WC_LOC_PROT_ERR)
    S(IBV_WC_WR_FLUSH_ERR)
    S(IBV_WC_MW_BIND_ERR)
    S(IBV_WC_BAD_RESP_ERR)
    S(IBV_WC_LOC_ACCESS_ERR)
    S(IBV_WC_REM_INV_REQ_ERR)
    S(IBV_WC_REM_ACCESS_ERR)
    S(IBV_WC_REM_OP_ERR)
    S(IBV_WC_RETRY_EXC_ERR)
    S(IBV_WC_RNR_RETRY_EXC_ERR)
    S(IBV_WC_LOC_RDD_VIOL_ERR)
    S(IBV_WC_REM_INV_RD_REQ_ERR)
    S(IBV_WC_REM_ABORT_ERR)
    S(IBV_WC_INV_EECN_ERR)
    S(IBV_WC_INV_EEC_STATE_ERR)
    S(IBV_WC_FATAL_ERR)
    S(IBV_WC_RESP_TIMEOUT_ERR)
    S(IBV_WC_GENERAL_ERR)
    S(IBV_WC_TM_ERR)
    S(IBV_WC_TM_RNDV_INCOMPLETE)
#undef S
  }
  return "IBV_WC_UNKNOWN";
}

const char* AsyncEventName(ibv_event_type t) {
  switch (t) {
#define E(x) \
  case x:    \
    return #x;
    E(IBV_EVENT_CQ_ERR)
    E(IBV_EVENT_QP_FATAL)
    E(IBV_EVENT_QP_REQ_ERR)
    E(IBV_EVENT_QP_ACCESS_ERR)
    E(IBV_EVENT_COMM_EST)
    E(IBV_EVENT_SQ_DRAINED)
    E(IBV_EVENT_PATH_MIG)
    E(IBV_EVENT_PATH_MIG_ERR)
    E(IBV_EVENT_DEVICE_FATAL)
    E(IBV_EVENT_PORT_ACTIVE)
    E(IBV_EVENT_PORT_ERR)
    E(IBV_EVENT_LID_CHANGE)
    E(IBV_EVENT_PKEY_CHANGE)
    E(IBV_EVENT_SM_CHANGE)
    E(IBV_EVENT_SRQ_ERR)
    E(IBV_EVENT_SRQ_LIMIT_REACHED)
    E(IBV_EVENT_QP_LAST_WQE_REACHED)
    E(IBV_EVENT_CLIENT_REREGISTER)
    E(IBV_EVENT_GID_CHANGE)
    E(IBV_EVENT_WQ_FATAL)
#undef E
  }
  return "IBV_EVENT_UNKNOWN";
}

const char* WcOpcodeName(ibv_wc_opcode op) {
  switch (op) {
    case IBV_WC_SEND:
      return "SEND";
    case IBV_WC_RDMA_WRITE:
      return "RDMA_WRITE";
    case IBV_WC_RDMA_READ:
      return "RDMA_READ";
    case IBV_WC_COMP_SWAP:
      return "COMP_SWAP";
    case IBV_WC_FETCH_ADD:
      return "FETCH_ADD";
    case IBV_WC_BIND_MW:
      return "BIND_MW";
    case IBV_WC_LOCAL_INV:
      return "LOCAL_INV";
    case IBV_WC_TSO:
      return "TSO";
    case IBV_WC_RECV:
      return "RECV";
    case IBV_WC_RECV_RDMA_WITH_IMM:
      return "RECV_RDMA_WITH_IMM";
    default:
      return "UNKNOWN";
  }
}

Napi::Object WcToObject(Napi::Env env, const ibv_wc& wc) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("wrId", Napi::Number::New(env, static_cast<double>(wc.wr_id)));
  o.Set("status", Napi::String::New(env, WcStatusName(wc.status)));
  o.Set("opcode", Napi::String::New(env, WcOpcodeName(wc.opcode)));
  o.Set("byteLen", Napi::Number::New(env, wc.byte_len));
  o.Set("qpNum", Napi::Number::New(env, wc.qp_num));
  o.Set("srcQp", Napi::Number::New(env, wc.src_qp));
  o.Set("wcFlags", Napi::Number::New(env, wc.wc_flags));
  o.Set("vendorErr", Napi::Number::New(env, wc.vendor_err));
  // Only receive completions carry immediate data (some providers also flag the sender's completion).
  if ((wc.wc_flags & IBV_WC_WITH_IMM) && (wc.opcode & IBV_WC_RECV))
    o.Set("immData", Napi::Number::New(env, ntohl(wc.imm_data)));
  return o;
}

}  // namespace smc
