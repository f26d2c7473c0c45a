// Plain TCP relay in native code: carries a connection the sidecar relays without SMC-R (the TCP
// fallback) between the application socket and the peer socket, with splice(2) through one pipe
// per direction, on the libuv loop (no threads). Same contract as relay() in
// sidecar/src/relay/pipe.ts (see sidecar/src/relay/native-relay.ts):
//
//   app socket -> pipe (tx) -> peer socket        peer socket -> pipe (rx) -> app socket
//
// - Bytes the caller already read from a side ("pending") reach the other side before any spliced.
// - A FIN is forwarded as a half-close: the destination's zero linger is cleared, then SHUT_WR.
// - A read/write error on one side resets the other (zero linger + close) and ends the relay.
// - The pipe is the only buffer of a direction: its source is read only when it is empty, and its
//   destination watched for writability only while it holds bytes the socket refused.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace smc {
namespace {

constexpr int kApp = 0, kPeer = 1;
const char* const kSideNames[2] = {"app", "peer"};
// Reads per poll event and direction (each followed by its writes).
constexpr int kMaxRounds = 16;

// One direction: side `src` -> side 1 - src.
struct Flow {
  int src = kApp;
  int pipeR = -1, pipeW = -1;
  size_t pipeCap = 65536;
  size_t inPipe = 0;  // bytes spliced in, not yet out
  // Bytes the caller read from src before the relay started: written to dst first.
  std::vector<uint8_t> pending;
  size_t pendingPos = 0;
  bool srcEof = false;
  bool finSent = false;
  bool dstBlocked = false;  // dst refused bytes (EAGAIN), or has a first write waiting: watch writable
  uint64_t bytes = 0;       // written to dst

  bool PendingLeft() const { return pendingPos < pending.size(); }
};

void SetLinger(int fd, bool zero) {
  linger l{zero ? 1 : 0, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

}  // namespace

class TcpRelay;

// The relay's state, shared so that it survives re-entrant close() from JS event handlers.
struct RelayCore : std::enable_shared_from_this<RelayCore> {
  int fd[2] = {-1, -1};
  uv_poll_t* poll[2] = {nullptr, nullptr};
  int pollEvents[2] = {0, 0};
  Flow flow[2];  // flow[kApp]: app -> peer (tx), flow[kPeer]: peer -> app (rx)
  TcpRelay* owner = nullptr;
  bool attached = false;

  enum State { kRunning, kClosed, kReset } state = kRunning;
  // The end, for the single end event.
  bool endReady = false;
  int resetBy = -1;
  std::string reason;
  int err = 0;

  ~RelayCore() { Detach(); }

  // Opens a flow's pipe. Returns 0 or an errno.
  int OpenPipe(Flow& f) {
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) return errno;
    f.pipeR = p[0];
    f.pipeW = p[1];
    int cap = fcntl(f.pipeR, F_GETPIPE_SZ);
    if (cap > 0) f.pipeCap = static_cast<size_t>(cap);
    return 0;
  }

  // Moves what it can of one direction: pending bytes, the pipe, then one read from src into the
  // emptied pipe, again; the FIN once src ended and everything was written. Returns with the pipe
  // empty or dst blocked, so that UpdatePoll() watches the right thing.
  void Step(Flow& f) {
    int d = 1 - f.src;
    bool drained = false;
    for (int round = 0; state == kRunning; round++) {
      bool wrote = WriteToDst(f, d, [&]() -> ssize_t {
        if (!f.PendingLeft()) return 0;
        ssize_t n = send(fd[d], f.pending.data() + f.pendingPos, f.pending.size() - f.pendingPos,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) f.pendingPos += static_cast<size_t>(n);
        return n;
      });
      if (!wrote) return;
      if (!f.pending.empty()) {
        std::vector<uint8_t>().swap(f.pending);
        f.pendingPos = 0;
      }
      // A peer gone may raise SIGPIPE here (splice has no MSG_NOSIGNAL); Node ignores SIGPIPE.
      wrote = WriteToDst(f, d, [&]() -> ssize_t {
        if (f.inPipe == 0) return 0;
        ssize_t n = splice(f.pipeR, nullptr, fd[d], nullptr, f.inPipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) f.inPipe -= static_cast<size_t>(n);
        return n;
      });
      if (!wrote) return;
      f.dstBlocked = false;
      if (f.srcEof) {
        SendFin(f);
        return;
      }
      // A short read most likely drained the socket: let the poll say when more comes (saves a read
      // failing with EAGAIN after every small message). A sender that keeps its socket full must
      // not starve the loop either; level-triggered polling brings us back.
      if (drained || round == kMaxRounds) return;
      // The pipe is empty here, so EAGAIN can only mean the socket has nothing to read.
      ssize_t n = splice(fd[f.src], nullptr, f.pipeW, nullptr, f.pipeCap, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        Fail(f.src, "socket read", errno);
        return;
      }
      if (n == 0) {
        f.srcEof = true;  // the FIN follows what the pipe holds
        continue;
      }
      f.inPipe += static_cast<size_t>(n);
      drained = static_cast<size_t>(n) < f.pipeCap;
    }
  }

  // Calls `write` until it has nothing left (returns 0): false when dst refused more (EAGAIN, the
  // flow waits for writable) or failed (the relay is reset).
  template <typename Write>
  bool WriteToDst(Flow& f, int d, Write write) {
    for (;;) {
      ssize_t n = write();
      if (n == 0) return true;
      if (n > 0) {
        f.bytes += static_cast<uint64_t>(n);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        f.dstBlocked = true;
        return false;
      }
      Fail(d, "socket write", errno);
      return false;
    }
  }

  // src's FIN, forwarded: the destination ends in order, so its zero linger goes first.
  void SendFin(Flow& f) {
    if (f.finSent || state != kRunning) return;
    int d = 1 - f.src;
    SetLinger(fd[d], false);
    if (shutdown(fd[d], SHUT_WR) != 0) {
      Fail(d, "socket shutdown", errno);
      return;
    }
    f.finSent = true;
    if (flow[kApp].finSent && flow[kPeer].finSent) {
      // Both FINs forwarded, all bytes written: an orderly end (linger is the default on both now).
      state = kClosed;
      CloseAll(false);
      End();
    }
  }

  void Fail(int side, const char* what, int e) {
    if (state != kRunning) return;
    state = kReset;
    resetBy = side;
    reason = what;
    err = e;
    CloseAll(true);
    End();
  }

  // abort() from JS, or close() while running.
  void Abort(const char* why) {
    if (state != kRunning) return;
    state = kReset;
    resetBy = kApp;
    reason = why;
    err = 0;
    CloseAll(true);
    End();
  }

  void End() { endReady = true; }

  // Closes both sockets (reset: zero linger first, so each sends an RST) and the pipes.
  void CloseAll(bool reset) {
    for (int s = 0; s < 2; s++) StopPoll(s);
    for (int s = 0; s < 2; s++) {
      if (fd[s] < 0) continue;
      if (reset) SetLinger(fd[s], true);
      close(fd[s]);
      fd[s] = -1;
    }
    for (auto& f : flow) {
      if (f.pipeR >= 0) close(f.pipeR);
      if (f.pipeW >= 0) close(f.pipeW);
      f.pipeR = f.pipeW = -1;
      f.inPipe = 0;
      std::vector<uint8_t>().swap(f.pending);
    }
  }

  void StopPoll(int s) {
    if (!poll[s]) return;
    uv_poll_stop(poll[s]);
    poll[s]->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll[s]), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll[s] = nullptr;
    pollEvents[s] = 0;
  }

  // Readable on a source only while its pipe is empty and it has not ended (level-triggered: a
  // socket at EOF stays readable); writable on a destination only while it refused bytes.
  void UpdatePoll() {
    if (state != kRunning) return;
    int ev[2] = {0, 0};
    for (auto& f : flow) {
      if (!f.srcEof && f.inPipe == 0 && !f.PendingLeft()) ev[f.src] |= UV_READABLE;
      if (f.dstBlocked) ev[1 - f.src] |= UV_WRITABLE;
    }
    for (int s = 0; s < 2; s++) {
      if (!poll[s] || ev[s] == pollEvents[s]) continue;
      pollEvents[s] = ev[s];
      if (ev[s])
        uv_poll_start(poll[s], ev[s], OnPoll);
      else
        uv_poll_stop(poll[s]);
    }
  }

  static void OnPoll(uv_poll_t* h, int status, int events) {
    auto* self = static_cast<RelayCore*>(h->data);
    if (!self) return;
    auto guard = self->shared_from_this();
    int side = h == self->poll[kApp] ? kApp : kPeer;
    if (status < 0) {
      // libuv reports EPOLLERR as UV_EBADF and stops the handle: the socket's error is in SO_ERROR.
      self->pollEvents[side] = 0;
      int e = 0;
      socklen_t len = sizeof e;
      if (getsockopt(self->fd[side], SOL_SOCKET, SO_ERROR, &e, &len) != 0 || e == 0) e = -status;
      self->Fail(side, "socket poll", e);
    } else {
      if (events & UV_WRITABLE) self->Step(self->flow[1 - side]);
      if (events & UV_READABLE) self->Step(self->flow[side]);
    }
    self->UpdatePoll();
    self->FlushEvents();
  }

  void FlushEvents();  // below: needs TcpRelay

  // Releases everything without an event (close(), the JS object collected, the env torn down). A
  // relay still running resets both connections: neither may pass for complete.
  void Detach() {
    if (!attached) return;
    attached = false;
    CloseAll(state == kRunning);
    g_live[kRelays]--;
  }
};

class TcpRelay : public Napi::ObjectWrap<TcpRelay> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "TcpRelay",
                       {
                           InstanceAccessor<&TcpRelay::GetState>("state"),
                           InstanceMethod<&TcpRelay::Stats>("stats"),
                           InstanceMethod<&TcpRelay::Abort>("abort"),
                           InstanceMethod<&TcpRelay::Close>("close"),
                       });
  }

  // new TcpRelay({ appFd, peerFd, appPending?, peerPending?, appEnded?, peerEnded? })
  // The relay dup()s both descriptors (non-blocking) and owns the duplicates; the caller must stop
  // using its own (pause the net.Socket, stop its reads, then destroy it). SO_LINGER belongs to
  // the socket, not the descriptor: the zero linger the caller set stays in force.
  explicit TcpRelay(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<TcpRelay>(info), async_(info.Env(), "smc_verbs:TcpRelay") {
    Napi::Env env = info.Env();
    Napi::Object o = OptObject(env, info[0], "options");
    int fds[2] = {static_cast<int>(ReqU32(env, o, "appFd", INT32_MAX)),
                  static_cast<int>(ReqU32(env, o, "peerFd", INT32_MAX))};
    if (fds[kApp] == fds[kPeer]) ThrowVerbs(env, EINVAL, "TcpRelay", "appFd and peerFd are the same descriptor");
    const char* pendingKeys[2] = {"appPending", "peerPending"};
    const char* endedKeys[2] = {"appEnded", "peerEnded"};
    auto core = std::make_shared<RelayCore>();
    for (int s = 0; s < 2; s++) {
      // TCP only: the half-close and linger semantics are TCP's.
      int proto = 0;
      socklen_t len = sizeof proto;
      if (getsockopt(fds[s], SOL_SOCKET, SO_PROTOCOL, &proto, &len) != 0)
        ThrowVerbs(env, errno, "getsockopt", std::string(kSideNames[s]) + "Fd");
      if (proto != IPPROTO_TCP)
        ThrowVerbs(env, EINVAL, "TcpRelay", std::string(kSideNames[s]) + "Fd is not a TCP socket");
      Flow& f = core->flow[s];
      f.src = s;
      Napi::Value pre = o.Get(pendingKeys[s]);
      if (!pre.IsUndefined()) {
        uint8_t* d;
        size_t n;
        if (!BufferSpan(pre, &d, &n)) ThrowType(env, std::string(pendingKeys[s]) + " must be a Buffer or Uint8Array");
        f.pending.assign(d, d + n);
      }
      f.srcEof = GetBool(env, o, endedKeys[s], false);
      // Bytes or a FIN to hand on: the first writability runs the step, from the loop (events reach
      // JS once its constructor returned).
      f.dstBlocked = !f.pending.empty() || f.srcEof;
    }
    core->attached = true;  // from here Detach() releases what was opened
    g_live[kRelays]++;
    for (int s = 0; s < 2; s++) {
      core->fd[s] = fcntl(fds[s], F_DUPFD_CLOEXEC, 3);
      if (core->fd[s] < 0) {
        int e = errno;
        core->state = RelayCore::kClosed;  // nothing was relayed: leave the caller's sockets alone
        core->Detach();
        ThrowVerbs(env, e, "fcntl", "F_DUPFD_CLOEXEC");
      }
      int fl = fcntl(core->fd[s], F_GETFL);
      fcntl(core->fd[s], F_SETFL, fl | O_NONBLOCK);
    }
    for (auto& f : core->flow) {
      if (int e = core->OpenPipe(f)) {
        core->state = RelayCore::kClosed;
        core->Detach();
        ThrowVerbs(env, e, "pipe2");
      }
    }
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    for (int s = 0; s < 2; s++) {
      core->poll[s] = new uv_poll_t;
      if (int r = uv_poll_init(loop, core->poll[s], core->fd[s])) {
        delete core->poll[s];
        core->poll[s] = nullptr;
        core->state = RelayCore::kClosed;
        core->Detach();
        ThrowVerbs(env, -r, "uv_poll_init");
      }
      core->poll[s]->data = core.get();
    }
    core->owner = this;
    core_ = core;
    Ref();  // a running relay stays alive without JS references, like a socket
    running_ = true;
    core->UpdatePoll();
  }

  ~TcpRelay() override {
    if (core_) {
      core_->owner = nullptr;
      core_->Detach();
    }
  }

  // Calls this.onRelayEvent(type, { tx, rx, resetBy?, reason?, code? }) once, at the end.
  void DeliverEnd() {
    if (!core_ || delivered_) return;
    delivered_ = true;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Object self = Value();
    auto& c = *core_;
    if (!self.IsEmpty()) {
      try {
        Napi::Object detail = Counts(env);
        if (c.state == RelayCore::kReset) {
          detail.Set("resetBy", kSideNames[c.resetBy]);
          detail.Set("reason", c.reason);
          if (c.err) detail.Set("code", ErrnoName(c.err));
        }
        Napi::Value fn = self.Get("onRelayEvent");
        const char* type = c.state == RelayCore::kClosed ? "closed" : "reset";
        if (fn.IsFunction())
          fn.As<Napi::Function>().MakeCallback(self, {Napi::String::New(env, type), detail}, async_);
      } catch (const Napi::Error& e) {
        ReportUncaught(env, e);
      }
    }
    if (running_) {
      running_ = false;
      Unref();
    }
  }

 private:
  std::shared_ptr<RelayCore> core_;
  Napi::AsyncContext async_;
  bool running_ = false;
  bool delivered_ = false;

  Napi::Object Counts(Napi::Env env) {
    Napi::Object o = Napi::Object::New(env);
    uint64_t tx = core_ ? core_->flow[kApp].bytes : 0, rx = core_ ? core_->flow[kPeer].bytes : 0;
    o.Set("tx", Napi::Number::New(env, static_cast<double>(tx)));
    o.Set("rx", Napi::Number::New(env, static_cast<double>(rx)));
    return o;
  }

  Napi::Value GetState(const Napi::CallbackInfo& info) {
    static const char* names[] = {"running", "closed", "reset"};
    if (!core_ || !core_->attached) return Napi::String::New(info.Env(), "detached");
    return Napi::String::New(info.Env(), names[core_->state]);
  }

  // stats(): { tx, rx } bytes written to the peer and to the application so far.
  Napi::Value Stats(const Napi::CallbackInfo& info) { return Counts(info.Env()); }

  // abort(): resets both connections, event 'reset' (resetBy 'app', reason 'local abort'). No-op
  // once the relay has ended.
  void Abort(const Napi::CallbackInfo& info) {
    if (!core_ || !core_->attached) return;
    auto guard = core_;
    guard->Abort("local abort");
    guard->FlushEvents();
  }

  // close(): a running relay is aborted first (reason 'local close', with its event); then the
  // relay lets go of everything. Idempotent.
  void Close(const Napi::CallbackInfo& info) {
    if (!core_) return;
    auto guard = core_;
    guard->Abort("local close");
    guard->FlushEvents();
    if (!core_) return;  // closed again from the event handler
    core_->owner = nullptr;
    core_->Detach();
    core_.reset();
    if (running_) {
      running_ = false;
      Unref();
    }
  }
};

void RelayCore::FlushEvents() {
  if (endReady && owner) owner->DeliverEnd();
}

void InitTcpRelay(Napi::Env env, Napi::Object exports) { exports.Set("TcpRelay", TcpRelay::Init(env)); }

}  // namespace smc
