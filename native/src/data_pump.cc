// SMC-R connection data pump: moves the bytes of one TCP connection over a link (an RC QP the
// connection may share with the other connections of its link group), entirely in native code on
// the libuv loop (see native/README.md, "Links and data pumps").
//
//   socket -> staging ring (registered) -> RDMA WRITE into the peer's RMBE -> CDC (SEND, inline)
//   peer's CDC (RECV, routed by the link on our alert token) -> bytes [consumer, producer) of the
//   local RMBE -> socket -> CDC (consumer)
//
// Cursors are kept as 64-bit running byte totals and put on the wire as (wrap, count) of the RMBE
// they refer to. The staging ring has the peer RMBE's size and mirrors its offsets, so one RDMA
// WRITE (two when it wraps) moves staging[o..] to peerRmbe[o..]. A staging byte is reused only after
// the CDC SEND that followed its WRITE has completed (all CDCs are signalled, WRITEs are not; the
// send queue completes in order).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "smc_link.h"

namespace smc {
namespace {

constexpr int kMaxChain = 3;  // WRITE, WRITE (wrap), CDC
constexpr int kPrivateRecvSlots = 32;

// Connection state flags (byte 25) and producer flags (byte 24).
constexpr uint8_t kConnPeerDoneWriting = 0x80;
constexpr uint8_t kConnClosed = 0x40;
constexpr uint8_t kConnAbort = 0x20;
constexpr uint8_t kProdWriteBlocked = 0x80;
constexpr uint8_t kProdConsUpdateReq = 0x10;

// A peer that announced the end of its data while write-blocked (the Linux kernel does so when its
// close or shutdown gave up waiting for RMBE space after SMC_MAX_STREAM_WAIT_TIMEOUT) still writes
// what it had queued, each CDC carrying the same flag, and clears write-blocked with its last
// write. If the queued data ended exactly at the window, no further CDC comes: the end is taken
// this long after our RMBE drained and our consumer cursor went out with no new data.
constexpr uint64_t kBlockedEndGraceMs = 1000;

struct Cdc {
  uint16_t seq = 0;
  uint32_t token = 0;
  uint16_t prodWrap = 0;
  uint32_t prodCount = 0;
  uint16_t consWrap = 0;
  uint32_t consCount = 0;
  uint8_t prodFlags = 0;
  uint8_t connFlags = 0;
};

void EncodeCdc(const Cdc& c, uint8_t* out) {
  memset(out, 0, kCdcLen);
  out[0] = kCdcType;
  out[1] = kCdcLen;
  PutU16(out + 2, c.seq);
  PutU32(out + 4, c.token);
  PutU16(out + 10, c.prodWrap);
  PutU32(out + 12, c.prodCount);
  PutU16(out + 18, c.consWrap);
  PutU32(out + 20, c.consCount);
  out[24] = c.prodFlags;
  out[25] = c.connFlags;
}

// `p` holds kCdcLen bytes of type 0xFE (checked by the link).
void DecodeCdc(const uint8_t* p, Cdc* c) {
  c->seq = GetU16(p + 2);
  c->token = GetU32(p + 4);
  c->prodWrap = GetU16(p + 10);
  c->prodCount = GetU32(p + 12);
  c->consWrap = GetU16(p + 18);
  c->consCount = GetU32(p + 20);
  c->prodFlags = p[24];
  c->connFlags = p[25];
}

// Running total <-> (wrap, count) of a ring of `size` bytes.
void ToCursor(uint64_t total, uint64_t size, uint16_t* wrap, uint32_t* count) {
  *wrap = static_cast<uint16_t>((total / size) & 0xffff);
  *count = static_cast<uint32_t>(total % size);
}
// Advances `total` to the wire cursor (wrap, count); a cursor never moves back or by more than one
// 2^16-wrap window. Returns false on an invalid cursor.
bool FromCursor(uint64_t* total, uint64_t size, uint16_t wrap, uint32_t count) {
  if (count >= size) return false;
  uint16_t curWrap = static_cast<uint16_t>((*total / size) & 0xffff);
  uint64_t curCount = *total % size;
  uint64_t dw = static_cast<uint16_t>(wrap - curWrap);
  int64_t delta = static_cast<int64_t>(dw * size) + static_cast<int64_t>(count) - static_cast<int64_t>(curCount);
  if (delta < 0) return false;
  *total += static_cast<uint64_t>(delta);
  return true;
}

}  // namespace

class DataPump;

// The pump's state, shared so that it survives re-entrant close() from JS event handlers.
struct PumpCore : LinkConn, LinkObserver, std::enable_shared_from_this<PumpCore> {
  // wiring
  std::shared_ptr<LinkCore> link;
  bool privateLink = false;  // created for this pump on a bare QP: closed with it
  std::shared_ptr<MrRes> stageMr, rmbMr;
  uint8_t* stage = nullptr;
  uint8_t* rmb = nullptr;
  uint64_t peerSize = 0, rmbSize = 0;
  uint64_t peerAddr = 0;
  uint32_t peerRkey = 0, peerToken = 0;
  int fd = -1;
  uv_loop_t* loop = nullptr;
  uv_poll_t* poll = nullptr;
  int pollEvents = 0;
  DataPump* owner = nullptr;
  bool attached = false;
  // Application bytes read by the caller before the pump started: sent ahead of the socket's.
  std::vector<uint8_t> preload;
  size_t preloadPos = 0;

  // sender (socket -> peer)
  uint64_t prod = 0;      // bytes written into the peer's RMBE
  uint64_t peerCons = 0;  // bytes the peer has consumed (its CDC consumer cursor)
  uint64_t acked = 0;     // staging bytes whose WRITE has completed
  uint16_t seq = 0;
  bool sockEof = false;
  bool doneSent = false;

  // receiver (peer -> socket)
  uint64_t peerProd = 0;  // bytes the peer has written into our RMBE
  uint64_t cons = 0;      // bytes delivered to the socket
  uint64_t consAnnounced = 0;
  bool peerWantsUpdate = false;
  bool peerDone = false;
  bool peerDoneBlocked = false;  // the peer ended its data while write-blocked: more may follow
  uv_timer_t* graceTimer = nullptr;
  uint64_t graceAt = 0;  // peerProd when the grace timer was armed
  bool shutWr = false;
  bool wantWritable = false;

  // state
  enum State { kRunning, kClosed, kAborted, kFailed } state = kRunning;
  bool abortPending = false;
  std::vector<Event> events;

  // stats
  uint64_t bytesFromSocket = 0, bytesToSocket = 0, cdcSent = 0, cdcRecv = 0, llcRecv = 0, badCdc = 0,
           stallsPeerFull = 0, stallsSocketFull = 0;

  ~PumpCore() override {
    Detach();
    if (fd >= 0) close(fd);
  }

  std::shared_ptr<LinkConn> Self() override { return shared_from_this(); }
  bool Live() const override { return attached; }

  void Emit(const char* type, std::string reason = "", int err = 0) {
    Event e;
    e.type = type;
    e.reason = std::move(reason);
    e.err = err;
    events.push_back(std::move(e));
  }

  uint8_t ConnFlags() const {
    uint8_t f = 0;
    if (sockEof) f |= kConnPeerDoneWriting;
    if (abortPending) f |= kConnAbort;
    if (state == kClosed) f |= kConnClosed;
    return f;
  }

  void FillCdc(ibv_send_wr& wr, ibv_sge& sge, uint8_t* buf, uint8_t prodFlags) {
    Cdc c;
    c.seq = ++seq;
    c.token = peerToken;
    ToCursor(prod, peerSize, &c.prodWrap, &c.prodCount);
    ToCursor(cons, rmbSize, &c.consWrap, &c.consCount);
    c.prodFlags = prodFlags;
    c.connFlags = ConnFlags();
    EncodeCdc(c, buf);
    sge.addr = reinterpret_cast<uintptr_t>(buf);
    sge.length = kCdcLen;
    sge.lkey = 0;
    memset(&wr, 0, sizeof wr);
    wr.wr_id = (uint64_t(kWrCdc) << kKindShift) | c.seq;
    wr.opcode = IBV_WR_SEND;
    wr.send_flags = IBV_SEND_SIGNALED | IBV_SEND_INLINE;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    consAnnounced = cons;
  }

  bool SqRoom(int wrs) {
    if (link->SqRoom(wrs)) return true;
    wantsSq = true;
    return false;
  }

  // Posts WRITE(s) for staging [from, prod) followed by a CDC. `from` == prod: CDC only.
  bool PostData(uint64_t from, uint8_t prodFlags) {
    ibv_send_wr wrs[kMaxChain];
    ibv_sge sges[kMaxChain];
    uint8_t cdc[kCdcLen];
    int n = 0;
    uint64_t len = prod - from;
    uint64_t off = from % peerSize;
    while (len > 0) {
      uint64_t part = std::min(len, peerSize - off);
      ibv_send_wr& w = wrs[n];
      memset(&w, 0, sizeof w);
      sges[n].addr = reinterpret_cast<uintptr_t>(stage + off);
      sges[n].length = static_cast<uint32_t>(part);
      sges[n].lkey = stageMr->mr->lkey;
      w.wr_id = uint64_t(kWrWrite) << kKindShift;
      w.opcode = IBV_WR_RDMA_WRITE;
      w.sg_list = &sges[n];
      w.num_sge = 1;
      w.wr.rdma.remote_addr = peerAddr + off;
      w.wr.rdma.rkey = peerRkey;
      n++;
      len -= part;
      off = 0;
    }
    FillCdc(wrs[n], sges[n], cdc, prodFlags);
    n++;
    for (int i = 0; i + 1 < n; i++) wrs[i].next = &wrs[i + 1];
    if (int r = link->PostChain(wrs, n, connId, prod)) {
      Fail("ibv_post_send", r);
      return false;
    }
    cdcSent++;
    return true;
  }

  bool SendCdcOnly(uint8_t prodFlags = 0) {
    if (!SqRoom(1)) return false;
    return PostData(prod, prodFlags);
  }

  void SocketToPeer() {
    for (int round = 0; round < 16 && state == kRunning && !sockEof; round++) {
      uint64_t used = prod - std::min(peerCons, acked);
      uint64_t free = used >= peerSize ? 0 : peerSize - used;
      if (free == 0) {
        stallsPeerFull++;
        return;
      }
      if (!SqRoom(kMaxChain)) return;
      uint64_t off = prod % peerSize;
      if (preloadPos < preload.size()) {
        uint64_t n = std::min<uint64_t>(free, preload.size() - preloadPos);
        uint64_t first = std::min(n, peerSize - off);
        memcpy(stage + off, preload.data() + preloadPos, first);
        if (n > first) memcpy(stage, preload.data() + preloadPos + first, n - first);
        preloadPos += n;
        if (preloadPos == preload.size()) {
          std::vector<uint8_t>().swap(preload);
          preloadPos = 0;
        }
        uint64_t from = prod;
        prod += n;
        bytesFromSocket += n;
        if (!PostData(from, n == free ? kProdWriteBlocked : 0)) return;
        continue;
      }
      iovec iov[2];
      int niov = 1;
      iov[0].iov_base = stage + off;
      iov[0].iov_len = std::min(free, peerSize - off);
      if (iov[0].iov_len < free) {
        iov[1].iov_base = stage;
        iov[1].iov_len = free - iov[0].iov_len;
        niov = 2;
      }
      ssize_t n = readv(fd, iov, niov);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR) continue;
        Abort("socket read", errno);
        return;
      }
      if (n == 0) {
        sockEof = true;
        Emit("eof");
        doneSent = SendCdcOnly();  // done-writing flag; retried from Pump() if the SQ is full
        MaybeClosed();
        return;
      }
      uint64_t from = prod;
      prod += static_cast<uint64_t>(n);
      bytesFromSocket += static_cast<uint64_t>(n);
      bool full = static_cast<uint64_t>(n) == free;
      if (!PostData(from, full ? kProdWriteBlocked : 0)) return;
      if (static_cast<uint64_t>(n) < free) return;  // socket drained
    }
  }

  void PeerToSocket() {
    while (state == kRunning && !shutWr) {
      uint64_t avail = peerProd - cons;
      if (avail == 0) break;
      uint64_t off = cons % rmbSize;
      iovec iov[2];
      int niov = 1;
      iov[0].iov_base = rmb + off;
      iov[0].iov_len = std::min(avail, rmbSize - off);
      if (iov[0].iov_len < avail) {
        iov[1].iov_base = rmb;
        iov[1].iov_len = avail - iov[0].iov_len;
        niov = 2;
      }
      msghdr mh;
      memset(&mh, 0, sizeof mh);
      mh.msg_iov = iov;
      mh.msg_iovlen = niov;
      ssize_t n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          if (!wantWritable) stallsSocketFull++;
          wantWritable = true;
          break;
        }
        Abort("socket write", errno);
        return;
      }
      wantWritable = false;
      cons += static_cast<uint64_t>(n);
      bytesToSocket += static_cast<uint64_t>(n);
    }
    if (state != kRunning) return;
    uint64_t unannounced = cons - consAnnounced;
    if (unannounced > 0 && (unannounced >= rmbSize / 2 || peerWantsUpdate)) {
      if (SendCdcOnly()) peerWantsUpdate = false;
    }
    if (peerDoneBlocked && !peerDone && peerProd == cons && consAnnounced == cons) ArmGrace();
    if (peerDone && peerProd == cons && !shutWr) {
      // The application gets its orderly end: from here a close (or our death) need not reset.
      ClearLinger();
      shutdown(fd, SHUT_WR);
      shutWr = true;
      Emit("peerDone");
      MaybeClosed();
    }
  }

  // A CDC with our token (routed by the link).
  void OnCdc(const uint8_t* p) override {
    if (state != kRunning) return;
    Cdc c;
    DecodeCdc(p, &c);
    cdcRecv++;
    uint64_t np = peerProd, nc = peerCons;
    // Nothing from the peer is trusted unchecked: its producer cursor may not run past the data our
    // RMBE can hold, its consumer cursor not past what we produced.
    if (!FromCursor(&np, rmbSize, c.prodWrap, c.prodCount) || np - cons > rmbSize ||
        !FromCursor(&nc, peerSize, c.consWrap, c.consCount) || nc > prod) {
      Abort("invalid CDC cursor", EPROTO);
      return;
    }
    peerProd = np;
    peerCons = nc;
    if (c.prodFlags & (kProdWriteBlocked | kProdConsUpdateReq)) peerWantsUpdate = true;
    if (c.connFlags & kConnAbort) {
      Abort("peer abort", ECONNRESET, false);
    } else if (c.connFlags & (kConnPeerDoneWriting | kConnClosed)) {
      if (c.prodFlags & kProdWriteBlocked)
        peerDoneBlocked = true;
      else
        peerDone = true;
    }
  }

  void ArmGrace() {
    if (graceTimer && graceAt == peerProd) return;
    if (!graceTimer) {
      graceTimer = new uv_timer_t;
      uv_timer_init(loop, graceTimer);
      graceTimer->data = this;
    }
    graceAt = peerProd;
    uv_timer_start(graceTimer, OnGrace, kBlockedEndGraceMs, 0);
  }

  static void OnGrace(uv_timer_t* t) {
    auto* self = static_cast<PumpCore*>(t->data);
    if (!self) return;
    auto guard = self->shared_from_this();
    if (self->state != kRunning || self->peerProd != self->graceAt) return;
    self->peerDone = true;
    self->Pump();
  }

  void StopGrace() {
    if (!graceTimer) return;
    uv_timer_stop(graceTimer);
    graceTimer->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(graceTimer), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    graceTimer = nullptr;
  }

  void OnSendDone(uint64_t p) override { acked = std::max(acked, p); }

  void OnLinkDown(const std::string& reason) override {
    if (state != kRunning) return;
    state = kFailed;
    CloseSocket(true);
    Emit("error", reason, 0);
  }

  void Kick() override {
    wantsSq = false;
    Pump();
  }

  // Private link only: LLC messages on the pump's own QP go to JS as 'llc' events.
  void OnLlc(const uint8_t* p, uint32_t len) override {
    Event e;
    e.type = "llc";
    e.data.assign(p, p + len);
    events.push_back(std::move(e));
    llcRecv++;
  }
  void OnLinkFailed(const std::string&) override {}
  void Flush() override { FlushEvents(); }

  void Pump() {
    if (state == kRunning) PeerToSocket();
    if (state == kRunning) SocketToPeer();
    if (state == kRunning && sockEof && !doneSent) doneSent = SendCdcOnly();
    UpdatePoll();
    FlushEvents();
  }

  void MaybeClosed() {
    if (state != kRunning) return;
    if (sockEof && doneSent && shutWr) {
      state = kClosed;
      SendCdcOnly();  // conn closed
      CloseSocket(false);
      Emit("closed");
    }
  }

  void Abort(const char* reason, int err, bool tellPeer = true) {
    if (state != kRunning) return;
    if (tellPeer) {
      abortPending = true;
      SendCdcOnly();
    }
    state = kAborted;
    CloseSocket(true);
    Emit("aborted", reason, err);
  }

  void Fail(const char* reason, int err) {
    if (state != kRunning) return;
    state = kFailed;
    CloseSocket(true);
    Emit("error", reason, err);
  }

  // The sidecar hands over application sockets with a zero linger, so that its death resets them
  // rather than passing for an end of data; an orderly close restores the default first.
  void ClearLinger() {
    linger l{0, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }

  void CloseSocket(bool reset) {
    StopPoll();
    if (fd < 0) return;
    if (reset) {
      linger l{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    } else {
      ClearLinger();
    }
    close(fd);
    fd = -1;
  }

  // Stops watching the socket, and the end-of-data grace timer with it: both end with the socket.
  void StopPoll() {
    StopGrace();
    if (!poll) return;
    uv_poll_stop(poll);
    poll->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll = nullptr;
    pollEvents = 0;
  }

  void UpdatePoll() {
    if (!poll || state != kRunning) return;
    int ev = 0;
    if (!sockEof) {
      uint64_t used = prod - std::min(peerCons, acked);
      if (used < peerSize && link->SqRoom(kMaxChain)) ev |= UV_READABLE;
    }
    if (wantWritable) ev |= UV_WRITABLE;
    if (ev == pollEvents) return;
    pollEvents = ev;
    if (ev)
      uv_poll_start(poll, ev, OnSocket);
    else
      uv_poll_stop(poll);
  }

  static void OnSocket(uv_poll_t* h, int status, int events) {
    auto* self = static_cast<PumpCore*>(h->data);
    if (!self) return;
    auto guard = self->shared_from_this();
    if (status < 0) {
      // libuv reports EPOLLERR as UV_EBADF and stops the handle; a read gets the real error.
      self->pollEvents = 0;
      self->SocketToPeer();
      self->Abort("socket poll", -status);
      self->FlushEvents();
      return;
    }
    if (events & UV_WRITABLE) self->wantWritable = false;
    self->Pump();
  }

  void FlushEvents();  // below: needs DataPump

  void Detach() {
    if (!attached) return;
    attached = false;
    StopPoll();
    if (fd >= 0) {
      close(fd);
      fd = -1;
    }
    if (link) {
      link->Detach(this);
      if (privateLink) {
        link->observer = nullptr;
        link->Close();
      }
    }
    g_live[kPumps]--;
  }
};

class DataPump : public Napi::ObjectWrap<DataPump> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "DataPump",
                       {
                           InstanceAccessor<&DataPump::GetState>("state"),
                           InstanceMethod<&DataPump::Stats>("stats"),
                           InstanceMethod<&DataPump::SendLlc>("sendLlc"),
                           InstanceMethod<&DataPump::Inject>("inject"),
                           InstanceMethod<&DataPump::Abort>("abort"),
                           InstanceMethod<&DataPump::Close>("close"),
                       });
  }

  // new DataPump(linkOrQp, { fd, stageMr, rmbMr, rmbOffset?, rmbSize?, localToken, preload?,
  //                          peer: { addr, rkey, size, token }, postedRecvs? })
  // linkOrQp: an SmcLink (the connection shares it with the other connections of its link group;
  // CDCs reach the pump by its localToken), or a bare QP in RTS with CQs of its own and
  // maxRecvWr >= 32 (+ postedRecvs.slots), which gets a private link closed with the pump. Either
  // way the QP must allow >= 44 bytes inline. The pump dup()s fd, sets it non-blocking and owns the
  // duplicate; the caller must stop using its own descriptor (e.g. a net.Socket accepted with
  // pauseOnConnect, then destroyed).
  explicit DataPump(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<DataPump>(info), async_(info.Env(), "smc_verbs:DataPump") {
    Napi::Env env = info.Env();
    napi_type_tag_object(env, info.This(), &kTagPump);
    bool shared = IsSmcLink(env, info[0]);
    std::shared_ptr<LinkCore> link;
    std::shared_ptr<QpRes> qp;
    if (shared) {
      link = LinkCoreOf(env, info[0]);
      if (link->failed) ThrowVerbs(env, ENOTCONN, "DataPump", "link failed: " + link->failReason);
    } else {
      qp = QpResOf(env, info[0]);
    }
    Napi::Object o = OptObject(env, info[1], "options");
    int fd = static_cast<int>(ReqU32(env, o, "fd", INT32_MAX));
    auto stage = MrResOf(env, o.Get("stageMr"));
    auto rmb = MrResOf(env, o.Get("rmbMr"));
    uint64_t rmbOffset = GetU32(env, o, "rmbOffset", 0);
    Napi::Object peer = OptObject(env, o.Get("peer"), "peer");
    uint64_t peerSize = ReqU32(env, peer, "size");
    uint64_t rmbSize = GetU32(env, o, "rmbSize", static_cast<uint32_t>(std::min<uint64_t>(rmb->length, UINT32_MAX)));
    if (peerSize == 0 || rmbSize == 0) ThrowRange(env, "peer.size and rmbSize must be > 0");
    if (rmbOffset + rmbSize > rmb->length) ThrowRange(env, "rmbOffset + rmbSize beyond the RMB memory region");
    if (peerSize > stage->length) ThrowRange(env, "stageMr must be at least peer.size bytes (it mirrors the peer RMBE)");
    if (!(rmb->access & IBV_ACCESS_REMOTE_WRITE)) ThrowVerbs(env, EACCES, "DataPump", "rmbMr must allow remote write");
    // An MR of another protection domain would let this link's peer reach memory registered for
    // someone else (or fail later with a local protection error): refuse it here.
    std::shared_ptr<PdRes> linkPd = shared ? (link->qp ? link->qp->pd : nullptr) : qp->pd;
    if (!linkPd || stage->pd != linkPd || rmb->pd != linkPd)
      ThrowVerbs(env, EINVAL, "DataPump", "stageMr and rmbMr must belong to the link's protection domain");
    uint32_t localToken = ReqU32(env, o, "localToken");
    if (shared && link->byToken.count(localToken))
      ThrowVerbs(env, EEXIST, "DataPump", "a connection with this alert token is already on the link");

    auto core = std::make_shared<PumpCore>();
    core->stageMr = stage;
    core->rmbMr = rmb;
    core->stage = stage->base;
    core->rmb = rmb->base + rmbOffset;
    core->peerSize = peerSize;
    core->rmbSize = rmbSize;
    core->peerAddr = ToU64(env, peer.Get("addr"), "peer.addr");
    core->peerRkey = ReqU32(env, peer, "rkey");
    core->peerToken = ReqU32(env, peer, "token");
    core->token = localToken;
    Napi::Value pre = o.Get("preload");
    if (!pre.IsUndefined()) {
      uint8_t* d;
      size_t n;
      if (!BufferSpan(pre, &d, &n)) ThrowType(env, "preload must be a Buffer or Uint8Array");
      core->preload.assign(d, d + n);
    }
    if (!shared) {
      link = std::make_shared<LinkCore>();
      link->recvSlots = kPrivateRecvSlots;
      link->TakePostedRecvs(env, o.Get("postedRecvs"));
      const char* what = "";
      if (int r = link->Open(qp, &what)) {
        link->Close();
        ThrowVerbs(env, r, "DataPump", what);
      }
      link->observer = core.get();
      core->privateLink = true;
    }
    core->link = link;
    core->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (core->fd < 0) {
      int err = errno;
      if (!shared) link->Close();
      ThrowVerbs(env, err, "fcntl", "F_DUPFD_CLOEXEC");
    }
    int fl = fcntl(core->fd, F_GETFL);
    fcntl(core->fd, F_SETFL, fl | O_NONBLOCK);
    core->attached = true;
    g_live[kPumps]++;
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    core->loop = loop;
    core->poll = new uv_poll_t;
    if (int r = uv_poll_init(loop, core->poll, core->fd)) {
      delete core->poll;
      core->poll = nullptr;
      core->Detach();
      ThrowVerbs(env, -r, "uv_poll_init");
    }
    core->poll->data = core.get();
    core->owner = this;
    core_ = core;
    Ref();  // a running pump stays alive without JS references, like a socket
    running_ = true;
    // CDCs the link kept for our token are handled now; their events wait for inject().
    link->Attach(core.get());
    core->UpdatePoll();
  }

  ~DataPump() override {
    if (core_) {
      core_->owner = nullptr;
      core_->Detach();
    }
  }

  void Deliver(std::vector<Event>& events) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Object self = Value();
    if (self.IsEmpty()) return;
    bool finished = false;
    for (auto& e : events)
      if (e.type == "closed" || e.type == "aborted" || e.type == "error") finished = true;
    DeliverEvents(env, self, "onPumpEvent", events, async_);
    if (finished && running_) {
      running_ = false;
      Unref();
    }
  }

 private:
  std::shared_ptr<PumpCore> core_;
  Napi::AsyncContext async_;
  bool running_ = false;

  Napi::Value GetState(const Napi::CallbackInfo& info) {
    static const char* names[] = {"running", "closed", "aborted", "failed"};
    if (!core_ || !core_->attached) return Napi::String::New(info.Env(), "detached");
    return Napi::String::New(info.Env(), names[core_->state]);
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    if (!core_) return o;
    auto& c = *core_;
    auto num = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
    num("bytesFromSocket", c.bytesFromSocket);
    num("bytesToSocket", c.bytesToSocket);
    num("cdcSent", c.cdcSent);
    num("cdcReceived", c.cdcRecv);
    num("llcReceived", c.llcRecv);
    // A private link's CDCs with a wrong token or malformed ones count as the pump's.
    num("badCdc", c.badCdc + (c.privateLink && c.link ? c.link->badCdc + c.link->unknownToken : 0));
    num("stallsPeerFull", c.stallsPeerFull);
    num("stallsSocketFull", c.stallsSocketFull);
    num("producer", c.prod);
    num("peerConsumer", c.peerCons);
    num("peerProducer", c.peerProd);
    num("consumer", c.cons);
    // The flag arrived (its end of file may still wait for data the peer had queued).
    o.Set("peerDoneWriting", Napi::Boolean::New(env, c.peerDone || c.peerDoneBlocked));
    return o;
  }

  // sendLlc(msg): a 44-byte LLC message as a SEND on the pump's link (control traffic).
  void SendLlc(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!core_ || !core_->attached || core_->state != PumpCore::kRunning) ThrowClosed(env, "DataPump", "sendLlc");
    uint8_t* data;
    size_t len;
    if (!BufferSpan(info[0], &data, &len) || len != static_cast<size_t>(kCdcLen))
      ThrowType(env, "LLC message must be 44 bytes");
    if (data[0] == kCdcType) ThrowRange(env, "type 0xFE is reserved for CDC messages");
    if (int r = core_->link->SendLlc(data, len))
      ThrowVerbs(env, r, "ibv_post_send", r == ENOBUFS ? "send queue full" : "");
  }

  // inject(msg?): handles `msg` as if received on the QP (a CDC or LLC message the caller took off
  // the CQ before the pump started), then runs one pump step (moves preloaded bytes) and delivers
  // the events. Call it once after construction, also without a message.
  void Inject(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!core_ || !core_->attached) ThrowClosed(env, "DataPump", "inject");
    auto guard = core_;
    if (info.Length() > 0 && !info[0].IsUndefined()) {
      uint8_t* data;
      size_t len;
      if (!BufferSpan(info[0], &data, &len)) ThrowType(env, "message must be a Buffer or Uint8Array");
      std::vector<std::shared_ptr<LinkConn>> touched;
      guard->link->HandleMessage(data, static_cast<uint32_t>(std::min<size_t>(len, LinkCore::kSlotSize)), &touched);
    }
    guard->Pump();
  }

  // abort(): abortive close from the caller: CDC with the abort flag, the socket is reset, event
  // 'aborted' (reason 'local abort'). No-op once the pump has ended.
  void Abort(const Napi::CallbackInfo& info) {
    if (!core_ || !core_->attached) return;
    auto guard = core_;
    guard->Abort("local abort", ECONNABORTED);
    guard->UpdatePoll();
    guard->FlushEvents();
  }

  // close(): stops the pump (closing its socket descriptor if still open) and leaves the link. A
  // private link is closed with it: its QP goes to ERR and the CQs go back to JS. Idempotent.
  void Close(const Napi::CallbackInfo& info) {
    if (!core_) return;
    core_->owner = nullptr;
    core_->Detach();
    core_.reset();
    if (running_) {
      running_ = false;
      Unref();
    }
  }
};

void PumpCore::FlushEvents() {
  if (events.empty()) return;
  std::vector<Event> ev;
  ev.swap(events);
  if (owner) owner->Deliver(ev);
}

void InitDataPump(Napi::Env env, Napi::Object exports) { exports.Set("DataPump", DataPump::Init(env)); }

}  // namespace smc
