// RC queue pairs: creation, INIT / RTR / RTS transitions, post send / post receive.
#include <arpa/inet.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common.h"

namespace smc {

QpRes::QpRes(std::shared_ptr<PdRes> p, std::shared_ptr<CqRes> s, std::shared_ptr<CqRes> r, ibv_qp* q)
    : pd(std::move(p)), sendCq(std::move(s)), recvCq(std::move(r)), qp(q) {
  pd->children++;
  sendCq->children++;
  recvCq->children++;
  g_live[kQps]++;
}
QpRes::~QpRes() { Destroy(); }
int QpRes::Destroy() {
  if (!qp) return 0;
  int r = ibv_destroy_qp(qp);
  if (r) return r;
  qp = nullptr;
  pd->children--;
  sendCq->children--;
  recvCq->children--;
  g_live[kQps]--;
  return 0;
}

namespace {

constexpr int kMaxSge = 16;

const char* QpStateName(ibv_qp_state s) {
  switch (s) {
    case IBV_QPS_RESET:
      return "RESET";
    case IBV_QPS_INIT:
      return "INIT";
    case IBV_QPS_RTR:
      return "RTR";
    case IBV_QPS_RTS:
      return "RTS";
    case IBV_QPS_SQD:
      return "SQD";
    case IBV_QPS_SQE:
      return "SQE";
    case IBV_QPS_ERR:
      return "ERR";
    default:
      return "UNKNOWN";
  }
}

ibv_mtu MtuEnum(Napi::Env env, uint32_t bytes) {
  switch (bytes) {
    case 256:
      return IBV_MTU_256;
    case 512:
      return IBV_MTU_512;
    case 1024:
      return IBV_MTU_1024;
    case 2048:
      return IBV_MTU_2048;
    case 4096:
      return IBV_MTU_4096;
    default:
      ThrowRange(env, "mtu must be one of 256, 512, 1024, 2048, 4096");
  }
}

// `length` bytes (default: to the end) at `offset` of an MR, checked against it. Returns the length.
uint64_t MrSpan(Napi::Env env, const MrRes& mr, const Napi::Value& offV, const Napi::Value& lenV, const char* what,
                uint64_t* off) {
  *off = offV.IsUndefined() ? 0 : ToU64(env, offV, "offset");
  if (*off > mr.length) ThrowRange(env, std::string(what) + " offset beyond the end of the memory region");
  uint64_t len = lenV.IsUndefined() ? mr.length - *off : ToU64(env, lenV, "length");
  if (len > mr.length - *off)
    ThrowRange(env, std::string(what) + " offset + length beyond the end of the memory region");
  return len;
}

// One scatter/gather entry: `length` bytes (default: to the end) at `offset` of an MR. Offsets and
// lengths are checked against the MR here; the HCA checks lkey ownership (PD) itself.
uint64_t FillSge(Napi::Env env, const Napi::Value& mrV, const Napi::Value& offV, const Napi::Value& lenV,
                 ibv_sge* sge) {
  auto mr = MrResOf(env, mrV);
  uint64_t off;
  uint64_t len = MrSpan(env, *mr, offV, lenV, "sge", &off);
  if (len > UINT32_MAX) ThrowRange(env, "sge length exceeds 2^32-1");
  sge->addr = reinterpret_cast<uintptr_t>(mr->base) + off;
  sge->length = static_cast<uint32_t>(len);
  sge->lkey = mr->mr->lkey;
  return len;
}

// Fills sge[] from an array of { mr, offset?, length? }. Returns the count.
int ParseSgList(Napi::Env env, const Napi::Value& v, ibv_sge* sge, uint64_t* total) {
  *total = 0;
  if (v.IsUndefined()) return 0;
  if (!v.IsArray()) ThrowType(env, "sgList must be an array");
  Napi::Array arr = v.As<Napi::Array>();
  uint32_t n = arr.Length();
  if (n > kMaxSge) ThrowRange(env, "sgList has more than " + std::to_string(kMaxSge) + " entries");
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value ev = arr.Get(i);
    if (!ev.IsObject()) ThrowType(env, "sgList entries must be objects { mr, offset?, length? }");
    Napi::Object e = ev.As<Napi::Object>();
    *total += FillSge(env, e.Get("mr"), e.Get("offset"), e.Get("length"), &sge[i]);
  }
  return static_cast<int>(n);
}

// Send opcodes by name and by the index the fast path uses (SendOpcodeIndex in index.ts).
constexpr ibv_wr_opcode kSendOps[] = {IBV_WR_SEND, IBV_WR_SEND_WITH_IMM, IBV_WR_RDMA_WRITE, IBV_WR_RDMA_WRITE_WITH_IMM,
                                      IBV_WR_RDMA_READ};
constexpr const char* kSendOpNames[] = {"SEND", "SEND_WITH_IMM", "RDMA_WRITE", "RDMA_WRITE_WITH_IMM", "RDMA_READ"};

// Flags of the fast path: bit 0 signaled, 1 solicited, 2 fence, 3 inline.
constexpr uint32_t kFlagSignaled = 1, kFlagSolicited = 2, kFlagFence = 4, kFlagInline = 8;

// Completes a send WR whose wr_id, sg_list and num_sge are set: opcode, immediate data, remote
// address and flags, with the same checks for the object and the positional form.
void FinishSendWr(Napi::Env env, ibv_send_wr& wr, int op, const Napi::Value& imm, const Napi::Value& raddr,
                  const Napi::Value& rkey, uint32_t flags, uint64_t total, uint32_t maxInline) {
  wr.opcode = kSendOps[op];
  bool hasImm = wr.opcode == IBV_WR_SEND_WITH_IMM || wr.opcode == IBV_WR_RDMA_WRITE_WITH_IMM;
  bool needsRemote = wr.opcode == IBV_WR_RDMA_WRITE || wr.opcode == IBV_WR_RDMA_WRITE_WITH_IMM ||
                     wr.opcode == IBV_WR_RDMA_READ;
  if (hasImm) wr.imm_data = htonl(ToU32(env, imm, "immData"));
  if (needsRemote) {
    wr.wr.rdma.remote_addr = ToU64(env, raddr, "remoteAddr");
    wr.wr.rdma.rkey = ToU32(env, rkey, "rkey");
  }
  if (flags & kFlagSignaled) wr.send_flags |= IBV_SEND_SIGNALED;
  if (flags & kFlagSolicited) wr.send_flags |= IBV_SEND_SOLICITED;
  if (flags & kFlagFence) wr.send_flags |= IBV_SEND_FENCE;
  if (flags & kFlagInline) {
    if (wr.opcode == IBV_WR_RDMA_READ) ThrowType(env, "RDMA_READ cannot be inline");
    if (total > maxInline)
      ThrowRange(env, "inline payload of " + std::to_string(total) + " bytes exceeds maxInlineData " +
                          std::to_string(maxInline));
    wr.send_flags |= IBV_SEND_INLINE;
  }
}

struct BindMw {
  std::shared_ptr<MwRes> mw;
  std::shared_ptr<MrRes> mr;
};

// BIND_MW: binds a type 2 window to `length` bytes at `offset` of `mr` for remote access through
// `qp` only. The new rkey is the window's with its 8-bit key incremented (ibv_inc_rkey); the caller
// stores it in the window once the WR is posted. The checks here are the device's too, but the
// device reports them only by failing the completion, and the QP with it.
BindMw FillBindMw(Napi::Env env, const QpRes& qp, const Napi::Object& w, ibv_send_wr& wr) {
  if (!w.Get("sgList").IsUndefined()) ThrowType(env, "BIND_MW takes no sgList");
  auto mw = MwResOf(env, w.Get("mw"));
  auto mr = MrResOf(env, w.Get("mr"));
  uint64_t off;
  uint64_t len = MrSpan(env, *mr, w.Get("offset"), w.Get("length"), "bind", &off);
  if (len == 0) ThrowRange(env, "a type 2 memory window cannot be bound to zero bytes");
  bool rw = GetBool(env, w, "remoteWrite", false);
  bool rr = GetBool(env, w, "remoteRead", false);
  if (rr && !GetBool(env, w, "allowRemoteRead", false))
    ThrowVerbs(env, EACCES, "ibv_post_send", "remote read through a memory window requires allowRemoteRead: true");
  if (mw->pd != qp.pd || mr->pd != qp.pd)
    ThrowVerbs(env, EINVAL, "ibv_post_send",
               "memory window, memory region and queue pair belong to different protection domains");
  if (!(mr->access & IBV_ACCESS_MW_BIND))
    ThrowVerbs(env, EACCES, "ibv_post_send", "the memory region was registered without mwBind");
  if (rw && !(mr->access & IBV_ACCESS_LOCAL_WRITE))
    ThrowVerbs(env, EINVAL, "ibv_post_send", "remoteWrite requires a memory region with localWrite");
  wr.opcode = IBV_WR_BIND_MW;
  wr.bind_mw.mw = mw->mw;
  wr.bind_mw.rkey = ibv_inc_rkey(mw->mw->rkey);
  wr.bind_mw.bind_info.mr = mr->mr;
  wr.bind_mw.bind_info.addr = reinterpret_cast<uintptr_t>(mr->base) + off;
  wr.bind_mw.bind_info.length = len;
  wr.bind_mw.bind_info.mw_access_flags = (rw ? IBV_ACCESS_REMOTE_WRITE : 0) | (rr ? IBV_ACCESS_REMOTE_READ : 0);
  return {mw, mr};
}

uint64_t WrId(Napi::Env env, const Napi::Object& o) {
  Napi::Value v = o.Get("wrId");
  if (v.IsUndefined()) return 0;
  if (!v.IsNumber()) ThrowType(env, "wrId must be a number");
  return ToU64(env, v, "wrId");
}

}  // namespace

class QueuePair : public Napi::ObjectWrap<QueuePair> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "QueuePair",
                       {
                           InstanceAccessor<&QueuePair::GetClosed>("closed"),
                           InstanceAccessor<&QueuePair::GetQpn>("qpn"),
                           InstanceAccessor<&QueuePair::GetCap>("cap"),
                           InstanceMethod<&QueuePair::Query>("query"),
                           InstanceMethod<&QueuePair::ToInit>("modifyToInit"),
                           InstanceMethod<&QueuePair::ToRtr>("modifyToRtr"),
                           InstanceMethod<&QueuePair::ToRts>("modifyToRts"),
                           InstanceMethod<&QueuePair::ToError>("modifyToError"),
                           InstanceMethod<&QueuePair::ToReset>("modifyToReset"),
                           InstanceMethod<&QueuePair::PostSend>("postSend"),
                           InstanceMethod<&QueuePair::PostRecv>("postRecv"),
                           InstanceMethod<&QueuePair::PostSend1>("postSend1"),
                           InstanceMethod<&QueuePair::PostRecv1>("postRecv1"),
                           InstanceMethod<&QueuePair::Close>("close"),
                       });
  }

  // new QueuePair(pd, sendCq, recvCq, caps?: { maxSendWr, maxRecvWr, maxSendSge, maxRecvSge, maxInlineData })
  explicit QueuePair(const Napi::CallbackInfo& info) : Napi::ObjectWrap<QueuePair>(info) {
    Napi::Env env = info.Env();
    napi_type_tag_object(env, info.This(), &kTagQp);
    auto pd = PdResOf(env, info[0]);
    auto scq = CqResOf(env, info[1]);
    auto rcq = CqResOf(env, info[2]);
    if (scq->dev != pd->dev || rcq->dev != pd->dev)
      ThrowVerbs(env, EINVAL, "ibv_create_qp", "CQs and PD belong to different contexts");
    Napi::Object caps = OptObject(env, info.Length() > 3 ? info[3] : env.Undefined(), "caps");
    ibv_qp_init_attr a;
    memset(&a, 0, sizeof a);
    a.send_cq = scq->cq;
    a.recv_cq = rcq->cq;
    a.qp_type = IBV_QPT_RC;
    a.sq_sig_all = 0;
    a.cap.max_send_wr = GetU32(env, caps, "maxSendWr", 128, 1u << 20);
    a.cap.max_recv_wr = GetU32(env, caps, "maxRecvWr", 128, 1u << 20);
    a.cap.max_send_sge = GetU32(env, caps, "maxSendSge", 4, kMaxSge);
    a.cap.max_recv_sge = GetU32(env, caps, "maxRecvSge", 4, kMaxSge);
    a.cap.max_inline_data = GetU32(env, caps, "maxInlineData", 0, 4096);
    errno = 0;
    ibv_qp* qp = ibv_create_qp(pd->pd, &a);
    if (!qp) ThrowVerbs(env, errno ? errno : ENOMEM, "ibv_create_qp");
    res_ = std::make_shared<QpRes>(pd, scq, rcq, qp);
    cap_ = a.cap;
  }

  std::shared_ptr<QpRes> Res(Napi::Env env, const char* op) {
    if (!res_ || !res_->qp) ThrowClosed(env, "QueuePair", op);
    return res_;
  }

 private:
  std::shared_ptr<QpRes> res_;
  ibv_qp_cap cap_{};

  Napi::Value GetClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !res_); }
  Napi::Value GetQpn(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), res_ ? res_->qp->qp_num : 0);
  }
  Napi::Value GetCap(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("maxSendWr", cap_.max_send_wr);
    o.Set("maxRecvWr", cap_.max_recv_wr);
    o.Set("maxSendSge", cap_.max_send_sge);
    o.Set("maxRecvSge", cap_.max_recv_sge);
    o.Set("maxInlineData", cap_.max_inline_data);
    return o;
  }

  Napi::Value Query(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto res = Res(env, "ibv_query_qp");
    ibv_qp_attr a;
    ibv_qp_init_attr ia;
    int r = ibv_query_qp(res->qp, &a, IBV_QP_STATE | IBV_QP_CUR_STATE | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
                                          IBV_QP_RQ_PSN | IBV_QP_SQ_PSN | IBV_QP_ACCESS_FLAGS,
                         &ia);
    if (r) ThrowVerbs(env, r, "ibv_query_qp");
    Napi::Object o = Napi::Object::New(env);
    o.Set("state", QpStateName(a.qp_state));
    o.Set("pathMtu", 128u << static_cast<int>(a.path_mtu));
    o.Set("destQpn", a.dest_qp_num);
    o.Set("rqPsn", a.rq_psn);
    o.Set("sqPsn", a.sq_psn);
    o.Set("remoteWrite", (a.qp_access_flags & IBV_ACCESS_REMOTE_WRITE) != 0);
    o.Set("remoteRead", (a.qp_access_flags & IBV_ACCESS_REMOTE_READ) != 0);
    return o;
  }

  void Modify(Napi::Env env, ibv_qp_attr& a, int mask, const char* what) {
    auto res = Res(env, "ibv_modify_qp");
    int r = ibv_modify_qp(res->qp, &a, mask);
    if (r) ThrowVerbs(env, r, "ibv_modify_qp", what);
  }

  // modifyToInit({ port = 1, pkeyIndex = 0, remoteWrite = false, remoteRead = false, allowRemoteRead = false })
  void ToInit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = OptObject(env, info[0], "attr");
    bool rw = GetBool(env, o, "remoteWrite", false);
    bool rr = GetBool(env, o, "remoteRead", false);
    if (rr && !GetBool(env, o, "allowRemoteRead", false))
      ThrowVerbs(env, EACCES, "ibv_modify_qp", "remote read on a QP requires allowRemoteRead: true");
    ibv_qp_attr a;
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_INIT;
    a.port_num = static_cast<uint8_t>(GetU32(env, o, "port", 1, 255));
    a.pkey_index = static_cast<uint16_t>(GetU32(env, o, "pkeyIndex", 0, 65535));
    a.qp_access_flags = (rw ? IBV_ACCESS_REMOTE_WRITE : 0) | (rr ? IBV_ACCESS_REMOTE_READ : 0);
    Modify(env, a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS, "RESET->INIT");
  }

  // modifyToRtr({ remoteQpn, remotePsn, remoteGid, sgidIndex, mtu = 1024, port = 1, hopLimit = 64,
  //               trafficClass = 0, flowLabel = 0, minRnrTimer = 12, maxDestRdAtomic = 1 })
  void ToRtr(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = OptObject(env, info[0], "attr");
    ibv_qp_attr a;
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_RTR;
    a.path_mtu = MtuEnum(env, GetU32(env, o, "mtu", 1024));
    a.dest_qp_num = ReqU32(env, o, "remoteQpn", 0xffffff);
    a.rq_psn = ReqU32(env, o, "remotePsn", 0xffffff);
    a.max_dest_rd_atomic = static_cast<uint8_t>(GetU32(env, o, "maxDestRdAtomic", 1, 255));
    a.min_rnr_timer = static_cast<uint8_t>(GetU32(env, o, "minRnrTimer", 12, 31));
    a.ah_attr.is_global = 1;
    a.ah_attr.port_num = static_cast<uint8_t>(GetU32(env, o, "port", 1, 255));
    a.ah_attr.dlid = static_cast<uint16_t>(GetU32(env, o, "dlid", 0, 65535));
    a.ah_attr.sl = static_cast<uint8_t>(GetU32(env, o, "sl", 0, 15));
    Napi::Value gid = o.Get("remoteGid");
    if (gid.IsUndefined()) ThrowType(env, "remoteGid is required");
    ParseGid(env, gid, a.ah_attr.grh.dgid.raw);
    a.ah_attr.grh.sgid_index = static_cast<uint8_t>(ReqU32(env, o, "sgidIndex", 255));
    a.ah_attr.grh.hop_limit = static_cast<uint8_t>(GetU32(env, o, "hopLimit", 64, 255));
    a.ah_attr.grh.traffic_class = static_cast<uint8_t>(GetU32(env, o, "trafficClass", 0, 255));
    a.ah_attr.grh.flow_label = GetU32(env, o, "flowLabel", 0, 0xfffff);
    Modify(env, a,
           IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
               IBV_QP_MIN_RNR_TIMER,
           "INIT->RTR");
  }

  // modifyToRts({ psn, timeout = 14, retryCnt = 6, rnrRetry = 7, maxRdAtomic = 1 })
  // retryCnt defaults to 6, not 7: soft-RoCE (rxe) treats 7 as "retry forever", so a vanished peer
  // would never produce IBV_WC_RETRY_EXC_ERR. rnrRetry 7 is infinite by the IB spec.
  void ToRts(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = OptObject(env, info[0], "attr");
    ibv_qp_attr a;
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_RTS;
    a.sq_psn = ReqU32(env, o, "psn", 0xffffff);
    a.timeout = static_cast<uint8_t>(GetU32(env, o, "timeout", 14, 31));
    a.retry_cnt = static_cast<uint8_t>(GetU32(env, o, "retryCnt", 6, 7));
    a.rnr_retry = static_cast<uint8_t>(GetU32(env, o, "rnrRetry", 7, 7));
    a.max_rd_atomic = static_cast<uint8_t>(GetU32(env, o, "maxRdAtomic", 1, 255));
    Modify(env, a,
           IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC,
           "RTR->RTS");
  }

  void ToError(const Napi::CallbackInfo& info) {
    ibv_qp_attr a;
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_ERR;
    Modify(info.Env(), a, IBV_QP_STATE, "->ERR");
  }

  void ToReset(const Napi::CallbackInfo& info) {
    ibv_qp_attr a;
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_RESET;
    Modify(info.Env(), a, IBV_QP_STATE, "->RESET");
  }

  // postSend(wr | wr[]), wr = { wrId?, opcode, sgList?, signaled = true, solicited = false,
  //   inline = false, fence = false, immData?, remoteAddr?, rkey? }
  //   | { wrId?, opcode: 'BIND_MW', mw, mr, offset?, length?, remoteWrite?, signaled?, fence? }
  //   | { wrId?, opcode: 'LOCAL_INV', invalidateRkey, signaled?, fence? }
  // A posted BIND_MW sets the window's rkey to the bound one (rxe's ibv_bind_mw does the same); if
  // its completion fails, the window's rkey is no longer the device's: close the window.
  void PostSend(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto res = Res(env, "ibv_post_send");
    if (res->busy) ThrowVerbs(env, EBUSY, "ibv_post_send", "queue pair is driven by a data pump");
    Napi::Value arg = info[0];
    uint32_t n = 1;
    bool isArr = arg.IsArray();
    if (isArr) n = arg.As<Napi::Array>().Length();
    if (n == 0) return;
    std::vector<ibv_send_wr> wrs(n);
    std::vector<ibv_sge> sges(static_cast<size_t>(n) * kMaxSge);
    std::vector<std::pair<uint32_t, BindMw>> binds;
    for (uint32_t i = 0; i < n; i++) {
      Napi::Value wv = isArr ? arg.As<Napi::Array>().Get(i) : arg;
      if (!wv.IsObject()) ThrowType(env, "work request must be an object");
      Napi::Object w = wv.As<Napi::Object>();
      ibv_send_wr& wr = wrs[i];
      memset(&wr, 0, sizeof wr);
      wr.wr_id = WrId(env, w);
      Napi::Value opv = w.Get("opcode");
      if (!opv.IsString()) ThrowType(env, "opcode must be a string");
      std::string opName = opv.As<Napi::String>().Utf8Value();
      if (opName == "BIND_MW" || opName == "LOCAL_INV") {
        if (opName == "BIND_MW") {
          binds.emplace_back(i, FillBindMw(env, *res, w, wr));
        } else {
          wr.opcode = IBV_WR_LOCAL_INV;
          wr.invalidate_rkey = ReqU32(env, w, "invalidateRkey");
        }
        if (GetBool(env, w, "signaled", true)) wr.send_flags |= IBV_SEND_SIGNALED;
        if (GetBool(env, w, "fence", false)) wr.send_flags |= IBV_SEND_FENCE;
        wr.next = i + 1 < n ? &wrs[i + 1] : nullptr;
        continue;
      }
      int op = -1;
      for (int k = 0; k < 5; k++)
        if (opName == kSendOpNames[k]) op = k;
      if (op < 0)
        ThrowType(env, "opcode must be SEND, SEND_WITH_IMM, RDMA_WRITE, RDMA_WRITE_WITH_IMM, RDMA_READ, "
                       "BIND_MW or LOCAL_INV");
      uint64_t total;
      wr.sg_list = &sges[static_cast<size_t>(i) * kMaxSge];
      wr.num_sge = ParseSgList(env, w.Get("sgList"), wr.sg_list, &total);
      uint32_t flags = (GetBool(env, w, "signaled", true) ? kFlagSignaled : 0) |
                       (GetBool(env, w, "solicited", false) ? kFlagSolicited : 0) |
                       (GetBool(env, w, "fence", false) ? kFlagFence : 0) |
                       (GetBool(env, w, "inline", false) ? kFlagInline : 0);
      FinishSendWr(env, wr, op, w.Get("immData"), w.Get("remoteAddr"), w.Get("rkey"), flags, total,
                   cap_.max_inline_data);
      wr.next = i + 1 < n ? &wrs[i + 1] : nullptr;
    }
    ibv_send_wr* bad = nullptr;
    int r = ibv_post_send(res->qp, wrs.data(), &bad);
    // The WRs before the failed one were posted.
    size_t posted = r ? (bad ? static_cast<size_t>(bad - wrs.data()) : 0) : n;
    for (auto& [idx, b] : binds) {
      if (idx >= posted) continue;
      b.mw->mw->rkey = wrs[idx].bind_mw.rkey;
      b.mw->BoundTo(res, b.mr);
    }
    if (r) ThrowVerbs(env, r, "ibv_post_send", "failed at work request " + std::to_string(posted));
  }

  // postRecv(wr | wr[]), wr = { wrId?, sgList? }
  void PostRecv(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto res = Res(env, "ibv_post_recv");
    if (res->busy) ThrowVerbs(env, EBUSY, "ibv_post_recv", "queue pair is driven by a data pump");
    Napi::Value arg = info[0];
    uint32_t n = 1;
    bool isArr = arg.IsArray();
    if (isArr) n = arg.As<Napi::Array>().Length();
    if (n == 0) return;
    std::vector<ibv_recv_wr> wrs(n);
    std::vector<ibv_sge> sges(static_cast<size_t>(n) * kMaxSge);
    for (uint32_t i = 0; i < n; i++) {
      Napi::Value wv = isArr ? arg.As<Napi::Array>().Get(i) : arg;
      if (!wv.IsObject()) ThrowType(env, "work request must be an object");
      Napi::Object w = wv.As<Napi::Object>();
      ibv_recv_wr& wr = wrs[i];
      memset(&wr, 0, sizeof wr);
      wr.wr_id = WrId(env, w);
      uint64_t total;
      wr.sg_list = &sges[static_cast<size_t>(i) * kMaxSge];
      wr.num_sge = ParseSgList(env, w.Get("sgList"), wr.sg_list, &total);
      wr.next = i + 1 < n ? &wrs[i + 1] : nullptr;
    }
    ibv_recv_wr* bad = nullptr;
    int r = ibv_post_recv(res->qp, wrs.data(), &bad);
    if (r) ThrowVerbs(env, r, "ibv_post_recv", "failed at work request " + std::to_string(bad ? bad - wrs.data() : 0));
  }

  // postSend1(opIndex, wrId, mr?, offset?, length?, remoteAddr?, rkey?, immData?, flags): one WR
  // with at most one SGE, positional (the hot path of QueuePair.postSend in index.ts).
  void PostSend1(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto res = Res(env, "ibv_post_send");
    if (res->busy) ThrowVerbs(env, EBUSY, "ibv_post_send", "queue pair is driven by a data pump");
    int op = static_cast<int>(ToU32(env, info[0], "opcode", 4));
    ibv_send_wr wr;
    ibv_sge sge;
    memset(&wr, 0, sizeof wr);
    wr.wr_id = ToU64(env, info[1], "wrId");
    uint64_t total = 0;
    if (!info[2].IsUndefined() && !info[2].IsNull()) {
      total = FillSge(env, info[2], info[3], info[4], &sge);
      wr.sg_list = &sge;
      wr.num_sge = 1;
    }
    FinishSendWr(env, wr, op, info[7], info[5], info[6], ToU32(env, info[8], "flags", 15), total,
                 cap_.max_inline_data);
    ibv_send_wr* bad = nullptr;
    int r = ibv_post_send(res->qp, &wr, &bad);
    if (r) ThrowVerbs(env, r, "ibv_post_send");
  }

  // postRecv1(wrId, mr?, offset?, length?): one receive WR with at most one SGE, positional.
  void PostRecv1(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto res = Res(env, "ibv_post_recv");
    if (res->busy) ThrowVerbs(env, EBUSY, "ibv_post_recv", "queue pair is driven by a data pump");
    ibv_recv_wr wr;
    ibv_sge sge;
    memset(&wr, 0, sizeof wr);
    wr.wr_id = ToU64(env, info[0], "wrId");
    if (!info[1].IsUndefined() && !info[1].IsNull()) {
      FillSge(env, info[1], info[2], info[3], &sge);
      wr.sg_list = &sge;
      wr.num_sge = 1;
    }
    ibv_recv_wr* bad = nullptr;
    int r = ibv_post_recv(res->qp, &wr, &bad);
    if (r) ThrowVerbs(env, r, "ibv_post_recv");
  }

  void Close(const Napi::CallbackInfo& info) {
    if (!res_) return;
    if (res_->busy) ThrowVerbs(info.Env(), EBUSY, "ibv_destroy_qp", "queue pair is driven by a data pump");
    if (res_->children > 0)
      ThrowVerbs(info.Env(), EBUSY, "ibv_destroy_qp",
                 std::to_string(res_->children) + " memory window(s) bound through it still open");
    int r = res_->Destroy();
    if (r) ThrowVerbs(info.Env(), r, "ibv_destroy_qp");
    res_.reset();
  }
};

std::shared_ptr<QpRes> QpResOf(Napi::Env env, const Napi::Value& v) {
  return UnwrapTagged<QueuePair>(env, v, kTagQp, "QueuePair")->Res(env, "QueuePair");
}

void InitQp(Napi::Env env, Napi::Object exports) { exports.Set("QueuePair", QueuePair::Init(env)); }

}  // namespace smc
