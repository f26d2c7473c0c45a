// SMC-R link: one RC QP carrying the CDC and LLC messages of every connection of a link group.
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "smc_link.h"

namespace smc {

const napi_type_tag kTagLink = {0x6d2b1f0a4c3e5d78ULL, 0x91a0c3b2e4f5061eULL};

void DeliverEvents(Napi::Env env, Napi::Object self, const char* method, std::vector<Event>& events,
                   Napi::AsyncContext& async) {
  for (auto& e : events) {
    try {
      Napi::Value fn = self.Get(method);
      if (!fn.IsFunction()) continue;
      Napi::Object detail = Napi::Object::New(env);
      if (!e.reason.empty()) detail.Set("reason", e.reason);
      if (e.err) {
        detail.Set("code", ErrnoName(e.err));
        detail.Set("errno", -e.err);
      }
      if (!e.data.empty()) detail.Set("data", Napi::Buffer<uint8_t>::Copy(env, e.data.data(), e.data.size()));
      fn.As<Napi::Function>().MakeCallback(self, {Napi::String::New(env, e.type), detail}, async);
    } catch (const Napi::Error& err) {
      ReportUncaught(env, err);
    }
  }
}

LinkCore::~LinkCore() { Close(); }

int LinkCore::Open(const std::shared_ptr<QpRes>& q, const char** what) {
  ibv_qp_attr qa;
  ibv_qp_init_attr qi;
  *what = "ibv_query_qp";
  if (int r = ibv_query_qp(q->qp, &qa, IBV_QP_STATE | IBV_QP_CAP, &qi)) return r;
  *what = "queue pair must be in RTS";
  if (qa.qp_state != IBV_QPS_RTS) return EINVAL;
  *what = "queue pair needs maxInlineData >= 44";
  if (qi.cap.max_inline_data < static_cast<uint32_t>(kCdcLen)) return EINVAL;
  *what = "queue pair needs maxRecvWr >= recvSlots beside the posted receives";
  if (qi.cap.max_recv_wr < static_cast<uint32_t>(recvSlots) + extSlots) return EINVAL;
  *what = "queue pair needs maxSendWr >= 6";
  if (qi.cap.max_send_wr < 6) return EINVAL;
  *what = "queue pair already driven by a link or data pump";
  if (q->busy) return EBUSY;
  int cqUses = q->sendCq == q->recvCq ? 2 : 1;
  *what = "the queue pair's CQs must not be shared with other queue pairs";
  if (q->sendCq->children != cqUses || q->recvCq->children != cqUses) return EBUSY;
  qp = q;
  maxSendWr = qi.cap.max_send_wr;
  ctrlLen = static_cast<size_t>(recvSlots) * kSlotSize;
  void* m = mmap(nullptr, ctrlLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  *what = "mmap";
  if (m == MAP_FAILED) return errno;
  ctrl = static_cast<uint8_t*>(m);
  errno = 0;
  ctrlMr = ibv_reg_mr(q->pd->pd, ctrl, ctrlLen, IBV_ACCESS_LOCAL_WRITE);
  *what = "ibv_reg_mr";
  if (!ctrlMr) return errno ? errno : ENOMEM;
  for (int i = 0; i < recvSlots; i++) {
    *what = "ibv_post_recv";
    if (int r = PostRecv(i)) return r;
  }
  attached = true;
  q->busy = true;
  q->sendCq->sink = this;
  q->recvCq->sink = this;
  g_live[kLinks]++;
  return 0;
}

void LinkCore::Close() {
  if (attached) {
    attached = false;
    auto conns = byId;
    for (auto& [id, c] : conns) {
      auto keep = c->Self();
      c->OnLinkDown("link closed");
      keep->Kick();
    }
    byId.clear();
    byToken.clear();
    early.clear();
    if (qp && qp->qp) {
      // Flush the receive ring before its memory goes away.
      ibv_qp_attr a;
      memset(&a, 0, sizeof a);
      a.qp_state = IBV_QPS_ERR;
      ibv_modify_qp(qp->qp, &a, IBV_QP_STATE);
    }
    if (qp) {
      qp->busy = false;
      for (auto& cq : {qp->sendCq, qp->recvCq})
        if (cq->sink == this) cq->sink = cq->jsSink;
    }
    g_live[kLinks]--;
  }
  if (ctrlMr) {
    ibv_dereg_mr(ctrlMr);
    ctrlMr = nullptr;
  }
  if (ctrl) {
    munmap(ctrl, ctrlLen);
    ctrl = nullptr;
  }
  extMr.reset();
}

int LinkCore::PostRecv(int slot) {
  ibv_sge sge;
  sge.addr = reinterpret_cast<uintptr_t>(ctrl + slot * kSlotSize);
  sge.length = kSlotSize;
  sge.lkey = ctrlMr->lkey;
  ibv_recv_wr wr;
  memset(&wr, 0, sizeof wr);
  wr.wr_id = (uint64_t(kWrRecv) << kKindShift) | uint64_t(slot);
  wr.sg_list = &sge;
  wr.num_sge = 1;
  ibv_recv_wr* bad;
  return ibv_post_recv(qp->qp, &wr, &bad);
}

void LinkCore::TakePostedRecvs(Napi::Env env, const Napi::Value& v) {
  if (v.IsUndefined()) return;
  Napi::Object pr = OptObject(env, v, "postedRecvs");
  extMr = MrResOf(env, pr.Get("mr"));
  extOffset = GetU32(env, pr, "offset", 0);
  extSlots = ReqU32(env, pr, "slots", 0xffff);
  extSlotSize = ReqU32(env, pr, "slotSize", 0xffff);
  if (extOffset + uint64_t(extSlots) * extSlotSize > extMr->length) ThrowRange(env, "postedRecvs beyond its memory region");
}

int LinkCore::PostChain(ibv_send_wr* first, int n, uint32_t connId, uint64_t prod) {
  if (failed || !attached) return ENOTCONN;
  ibv_send_wr* bad = nullptr;
  if (int r = ibv_post_send(qp->qp, first, &bad)) return r;
  sqOutstanding += n;
  sent.push_back({connId, n, prod});
  return 0;
}

int LinkCore::SendLlc(const uint8_t* data, size_t len) {
  if (!SqRoom(1)) return failed ? ENOTCONN : ENOBUFS;
  ibv_sge sge{reinterpret_cast<uintptr_t>(data), static_cast<uint32_t>(len), 0};
  ibv_send_wr wr;
  memset(&wr, 0, sizeof wr);
  wr.wr_id = uint64_t(kWrLlc) << kKindShift;
  wr.opcode = IBV_WR_SEND;
  wr.send_flags = IBV_SEND_SIGNALED | IBV_SEND_INLINE;
  wr.sg_list = &sge;
  wr.num_sge = 1;
  return PostChain(&wr, 1, 0, 0);
}

void LinkCore::Attach(LinkConn* c) {
  c->connId = nextConnId++;
  if (nextConnId >= 0xffffffffu) nextConnId = 1;
  byId[c->connId] = c;
  byToken[c->token] = c;
  auto it = early.find(c->token);
  if (it == early.end()) return;
  auto queued = std::move(it->second);
  early.erase(it);
  for (auto& m : queued) c->OnCdc(m.data());
}

void LinkCore::Detach(LinkConn* c) {
  byId.erase(c->connId);
  auto t = byToken.find(c->token);
  if (t != byToken.end() && t->second == c) byToken.erase(t);
}

void LinkCore::HandleMessage(const uint8_t* p, uint32_t len, std::vector<std::shared_ptr<LinkConn>>* touched) {
  if (len >= 1 && p[0] == kCdcType) {
    if (len < static_cast<uint32_t>(kCdcLen) || p[1] != kCdcLen) {
      badCdc++;
      return;
    }
    uint32_t token = GetU32(p + 4);
    auto c = byToken.find(token);
    if (c != byToken.end()) {
      cdcRecv++;
      c->second->OnCdc(p);
      if (touched) touched->push_back(c->second->Self());
      return;
    }
    auto e = early.find(token);
    if (e != early.end()) {
      if (e->second.size() < kMaxEarlyPerToken) {
        cdcRecv++;
        e->second.emplace_back(p, p + kCdcLen);
      } else {
        earlyDropped++;
      }
      return;
    }
    // As the kernel (smc_cdc_rx_handler): a CDC for a connection we do not have is dropped.
    unknownToken++;
    return;
  }
  llcRecv++;
  if (observer) observer->OnLlc(p, len);
}

void LinkCore::OnCompletions(CqRes*, const ibv_wc* wc, int n) {
  auto guard = shared_from_this();
  std::vector<std::shared_ptr<LinkConn>> touched;
  std::string failure;
  for (int i = 0; i < n; i++) {
    const ibv_wc& w = wc[i];
    if (qp && qp->qp && w.qp_num != qp->qp->qp_num) continue;
    uint64_t kind = w.wr_id >> kKindShift;
    bool signalledSend = kind == kWrCdc || kind == kWrLlc;
    SendRecord rec{0, 0, 0};
    if (signalledSend && !sent.empty()) {
      rec = sent.front();
      sent.pop_front();
      sqOutstanding -= rec.wrs;
    }
    if (w.status != IBV_WC_SUCCESS) {
      if (!failed && failure.empty()) failure = WcStatusName(w.status);
      continue;
    }
    if (signalledSend) {
      if (rec.connId != 0) {
        auto c = byId.find(rec.connId);
        if (c != byId.end()) {
          c->second->OnSendDone(rec.prod);
          touched.push_back(c->second->Self());
        }
      }
    } else if (kind == kWrRecv) {
      int slot = static_cast<int>(w.wr_id & 0xffff);
      if (ctrl && slot < recvSlots) {
        HandleMessage(ctrl + slot * kSlotSize, std::min<uint32_t>(w.byte_len, kSlotSize), &touched);
        if (attached && !failed) {
          if (int r = PostRecv(slot)) failure = std::string("ibv_post_recv: ") + ErrnoName(r);
        }
      }
    } else if (kind == 0 && (w.opcode & IBV_WC_RECV) && w.wr_id < extSlots && extMr) {
      HandleMessage(extMr->base + extOffset + w.wr_id * extSlotSize, std::min(w.byte_len, extSlotSize), &touched);
    }
  }
  if (!failure.empty()) Fail(failure);
  Kick(touched);
}

void LinkCore::Fail(const std::string& reason) {
  if (failed) return;
  failed = true;
  failReason = reason;
  auto conns = byId;
  for (auto& [id, c] : conns) {
    auto keep = c->Self();
    c->OnLinkDown(reason);
    keep->Kick();
  }
  if (observer) observer->OnLinkFailed(reason);
}

void LinkCore::Kick(std::vector<std::shared_ptr<LinkConn>>& touched) {
  if (!failed && SqRoom(3)) {
    for (auto& [id, c] : byId)
      if (c->wantsSq) touched.push_back(c->Self());
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (auto& c : touched)
    if (c->Live()) c->Kick();
  if (observer) observer->Flush();
}

// ---- JS class ------------------------------------------------------------------------------------

class SmcLink : public Napi::ObjectWrap<SmcLink>, public LinkObserver {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "SmcLink",
                       {
                           InstanceAccessor<&SmcLink::GetState>("state"),
                           InstanceMethod<&SmcLink::Stats>("stats"),
                           InstanceMethod<&SmcLink::SendLlc>("sendLlc"),
                           InstanceMethod<&SmcLink::Expect>("expect"),
                           InstanceMethod<&SmcLink::Forget>("forget"),
                           InstanceMethod<&SmcLink::Inject>("inject"),
                           InstanceMethod<&SmcLink::Close>("close"),
                       });
  }

  // new SmcLink(qp, { postedRecvs?: { mr, offset?, slots, slotSize } })
  explicit SmcLink(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<SmcLink>(info), async_(info.Env(), "smc_verbs:SmcLink") {
    Napi::Env env = info.Env();
    napi_type_tag_object(env, info.This(), &kTagLink);
    auto qp = QpResOf(env, info[0]);
    Napi::Object o = OptObject(env, info[1], "options");
    auto core = std::make_shared<LinkCore>();
    core->recvSlots = static_cast<int>(GetU32(env, o, "recvSlots", 64, 4096));
    if (core->recvSlots < 1) ThrowRange(env, "recvSlots must be >= 1");
    core->TakePostedRecvs(env, o.Get("postedRecvs"));
    const char* what = "";
    if (int r = core->Open(qp, &what)) {
      core->Close();
      ThrowVerbs(env, r, "SmcLink", what);
    }
    core->observer = this;
    core_ = core;
    Ref();  // an open link stays alive without JS references, like a socket
    open_ = true;
  }

  ~SmcLink() override {
    if (core_) {
      core_->observer = nullptr;
      core_->Close();
    }
  }

  std::shared_ptr<LinkCore> Core(Napi::Env env) {
    if (!core_ || !core_->attached) ThrowClosed(env, "SmcLink", "use");
    return core_;
  }

  void OnLlc(const uint8_t* p, uint32_t len) override {
    Event e;
    e.type = "llc";
    e.data.assign(p, p + len);
    events_.push_back(std::move(e));
  }
  void OnLinkFailed(const std::string& reason) override {
    Event e;
    e.type = "error";
    e.reason = reason;
    events_.push_back(std::move(e));
  }
  void Flush() override {
    if (events_.empty()) return;
    std::vector<Event> ev;
    ev.swap(events_);
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Object self = Value();
    if (self.IsEmpty()) return;
    DeliverEvents(env, self, "onLinkEvent", ev, async_);
  }

 private:
  std::shared_ptr<LinkCore> core_;
  Napi::AsyncContext async_;
  std::vector<Event> events_;
  bool open_ = false;

  Napi::Value GetState(const Napi::CallbackInfo& info) {
    const char* s = !core_ || !core_->attached ? "closed" : core_->failed ? "failed" : "up";
    return Napi::String::New(info.Env(), s);
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    if (!core_) return o;
    auto& c = *core_;
    auto num = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
    num("connections", c.byId.size());
    num("cdcReceived", c.cdcRecv);
    num("llcReceived", c.llcRecv);
    num("badCdc", c.badCdc);
    num("unknownToken", c.unknownToken);
    num("earlyDropped", c.earlyDropped);
    num("sendQueued", static_cast<uint64_t>(std::max(0, c.sqOutstanding)));
    return o;
  }

  // sendLlc(msg): one LLC message (44 bytes, not type 0xFE) as a signalled inline SEND.
  void SendLlc(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto core = Core(env);
    uint8_t* data;
    size_t len;
    if (!BufferSpan(info[0], &data, &len) || len != static_cast<size_t>(kCdcLen))
      ThrowType(env, "LLC message must be 44 bytes");
    if (data[0] == kCdcType) ThrowRange(env, "type 0xFE is reserved for CDC messages");
    if (int r = core->SendLlc(data, len)) ThrowVerbs(env, r, "ibv_post_send", core->failed ? "link failed" : "");
  }

  // expect(token): CDCs carrying this alert token are kept until a pump with that token attaches.
  void Expect(const Napi::CallbackInfo& info) {
    Core(info.Env())->Expect(ToU32(info.Env(), info[0], "token"));
  }

  // forget(token): drops the expectation and whatever was kept for it.
  void Forget(const Napi::CallbackInfo& info) {
    if (core_) core_->Forget(ToU32(info.Env(), info[0], "token"));
  }

  // inject(msg): handles a message the caller took off the CQ before the link existed.
  void Inject(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto core = Core(env);
    uint8_t* data;
    size_t len;
    if (!BufferSpan(info[0], &data, &len)) ThrowType(env, "message must be a Buffer or Uint8Array");
    std::vector<std::shared_ptr<LinkConn>> touched;
    core->HandleMessage(data, static_cast<uint32_t>(std::min<size_t>(len, LinkCore::kSlotSize)), &touched);
    core->Kick(touched);
  }

  // close(): ends every connection on the link (their pumps report 'error'), moves the QP to ERR and
  // hands the CQs back to JS. Idempotent.
  void Close(const Napi::CallbackInfo& info) {
    if (core_) {
      auto core = core_;
      core->Close();
      core->observer = nullptr;
      core_.reset();
    }
    if (open_) {
      open_ = false;
      Unref();
    }
  }
};

bool IsSmcLink(Napi::Env env, const Napi::Value& v) {
  if (!v.IsObject()) return false;
  bool ok = false;
  return napi_check_object_type_tag(env, v, &kTagLink, &ok) == napi_ok && ok;
}

std::shared_ptr<LinkCore> LinkCoreOf(Napi::Env env, const Napi::Value& v) {
  return UnwrapTagged<SmcLink>(env, v, kTagLink, "SmcLink")->Core(env);
}

void InitSmcLink(Napi::Env env, Napi::Object exports) { exports.Set("SmcLink", SmcLink::Init(env)); }

}  // namespace smc
