// Completion channels wired into libuv, and completion queues whose completions reach JS.
//
// Event path: the channel fd is non-blocking and watched by a uv_poll. When readable, every
// pending CQ event is taken with ibv_get_cq_event and acknowledged at once; the CQ is re-armed
// (ibv_req_notify_cq) *before* it is polled empty, so a completion that lands after the last poll
// raises a new event. Batches of up to 32 completions go to the CQ's sink: for JS CQs, the
// `onCompletions(wcs)` method of the JS object, called through MakeCallback. Nothing ever polls
// on a timer or spins.
#include <arpa/inet.h>
#include <fcntl.h>

#include <cerrno>

#include "common.h"

namespace smc {

ChannelRes::ChannelRes(std::shared_ptr<DeviceRes> d, ibv_comp_channel* ch) : dev(std::move(d)), channel(ch) {
  dev->children++;
  g_live[kChannels]++;
}
ChannelRes::~ChannelRes() { Destroy(); }

int ChannelRes::Start(uv_loop_t* loop) {
  int fl = fcntl(channel->fd, F_GETFL);
  if (fl < 0 || fcntl(channel->fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  poll = new uv_poll_t;
  int r = uv_poll_init(loop, poll, channel->fd);
  if (r) {
    delete poll;
    poll = nullptr;
    return r;
  }
  poll->data = this;
  r = uv_poll_start(poll, UV_READABLE, OnReadable);
  if (r) {
    uv_close(reinterpret_cast<uv_handle_t*>(poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll = nullptr;
  }
  return r;
}

int ChannelRes::Destroy() {
  if (!channel) return 0;
  if (poll) {
    uv_poll_stop(poll);
    poll->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll = nullptr;
  }
  int r = ibv_destroy_comp_channel(channel);
  if (r) return r < 0 ? errno : r;
  channel = nullptr;
  dev->children--;
  g_live[kChannels]--;
  return 0;
}

void ChannelRes::OnReadable(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<ChannelRes*>(handle->data);
  if (!self) return;
  auto guard = self->shared_from_this();  // JS may close things while we dispatch
  int got = 0;
  while (self->channel) {
    ibv_cq* cq = nullptr;
    void* cqctx = nullptr;
    if (ibv_get_cq_event(self->channel, &cq, &cqctx) != 0) break;  // EAGAIN: drained
    got++;
    g_cqEvents++;
    ibv_ack_cq_events(cq, 1);
    auto* cqr = static_cast<CqRes*>(cqctx);
    if (cqr && cqr->cq == cq) cqr->Drain();
  }
  if (status < 0) {
    // libuv reports EPOLLERR as UV_EBADF and has stopped the handle: without a restart no
    // completion would ever reach JS again. Restart unless the fd keeps failing with nothing to read.
    g_channelPollErrors++;
    self->pollErrorsInRow = got > 0 ? 0 : self->pollErrorsInRow + 1;
    if (self->channel && self->poll && self->pollErrorsInRow < 100)
      uv_poll_start(self->poll, UV_READABLE, OnReadable);
  } else {
    self->pollErrorsInRow = 0;
  }
}

CqRes::CqRes(std::shared_ptr<DeviceRes> d, std::shared_ptr<ChannelRes> ch, ibv_cq* c)
    : dev(std::move(d)), channel(std::move(ch)), cq(c) {
  dev->children++;
  channel->children++;
  g_live[kCqs]++;
}
CqRes::~CqRes() { Destroy(); }

int CqRes::Destroy() {
  if (!cq) return 0;
  int r = ibv_destroy_cq(cq);
  if (r) return r;
  cq = nullptr;
  dev->children--;
  channel->children--;
  g_live[kCqs]--;
  return 0;
}

int CqRes::Arm() { return cq ? ibv_req_notify_cq(cq, 0) : EBADF; }

void CqRes::Drain() {
  auto guard = shared_from_this();
  if (!cq) return;
  Arm();
  ibv_wc wc[32];
  while (cq) {
    int n = ibv_poll_cq(cq, 32, wc);
    if (n <= 0) break;
    if (sink) sink->OnCompletions(this, wc, n);
    if (n < 32) break;
  }
}

class CompletionChannel : public Napi::ObjectWrap<CompletionChannel> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "CompletionChannel",
                       {
                           InstanceAccessor<&CompletionChannel::GetClosed>("closed"),
                           InstanceAccessor<&CompletionChannel::GetFd>("fd"),
                           InstanceMethod<&CompletionChannel::Ref>("ref"),
                           InstanceMethod<&CompletionChannel::Unref>("unref"),
                           InstanceMethod<&CompletionChannel::Close>("close"),
                       });
  }

  // new CompletionChannel(context)
  explicit CompletionChannel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CompletionChannel>(info) {
    Napi::Env env = info.Env();
    napi_type_tag_object(env, info.This(), &kTagChannel);
    auto dev = ContextRes(env, info[0]);
    errno = 0;
    ibv_comp_channel* ch = ibv_create_comp_channel(dev->ctx);
    if (!ch) ThrowVerbs(env, errno ? errno : ENOMEM, "ibv_create_comp_channel");
    res_ = std::make_shared<ChannelRes>(dev, ch);
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    int r = res_->Start(loop);
    if (r) {
      res_.reset();
      ThrowVerbs(env, -r, "uv_poll_start");
    }
  }

  std::shared_ptr<ChannelRes> Res(Napi::Env env, const char* op) {
    if (!res_ || !res_->channel) ThrowClosed(env, "CompletionChannel", op);
    return res_;
  }

 private:
  std::shared_ptr<ChannelRes> res_;

  Napi::Value GetClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !res_); }
  Napi::Value GetFd(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), res_ ? res_->channel->fd : -1);
  }
  // Like a socket: a channel keeps the event loop alive unless unref'd.
  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (res_ && res_->poll) uv_ref(reinterpret_cast<uv_handle_t*>(res_->poll));
    return info.This();
  }
  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (res_ && res_->poll) uv_unref(reinterpret_cast<uv_handle_t*>(res_->poll));
    return info.This();
  }
  void Close(const Napi::CallbackInfo& info) {
    if (!res_) return;
    if (res_->children > 0)
      ThrowVerbs(info.Env(), EBUSY, "ibv_destroy_comp_channel",
                 std::to_string(res_->children) + " completion queue(s) still open");
    int r = res_->Destroy();
    if (r) ThrowVerbs(info.Env(), r, "ibv_destroy_comp_channel");
    res_.reset();
  }
};

std::shared_ptr<ChannelRes> ChannelResOf(Napi::Env env, const Napi::Value& v) {
  return UnwrapTagged<CompletionChannel>(env, v, kTagChannel, "CompletionChannel")->Res(env, "CompletionChannel");
}

class CompletionQueue : public Napi::ObjectWrap<CompletionQueue>, public CqSink {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "CompletionQueue",
                       {
                           InstanceAccessor<&CompletionQueue::GetClosed>("closed"),
                           InstanceAccessor<&CompletionQueue::GetCqe>("cqe"),
                           InstanceMethod<&CompletionQueue::Close>("close"),
                       });
  }

  // new CompletionQueue(context, channel, cqe)
  // Completions are delivered by calling this.onCompletions(wcs: WorkCompletion[]).
  explicit CompletionQueue(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<CompletionQueue>(info), async_(info.Env(), "smc_verbs:CompletionQueue") {
    Napi::Env env = info.Env();
    napi_type_tag_object(env, info.This(), &kTagCq);
    auto dev = ContextRes(env, info[0]);
    auto ch = ChannelResOf(env, info[1]);
    if (ch->dev != dev) ThrowVerbs(env, EINVAL, "ibv_create_cq", "channel belongs to another context");
    uint32_t cqe = info.Length() > 2 && !info[2].IsUndefined() ? ToU32(env, info[2], "cqe", 1u << 22) : 256;
    if (cqe == 0) ThrowRange(env, "cqe must be > 0");
    errno = 0;
    // cq_context is set below, once the record exists: create with null, then fix it up.
    ibv_cq* cq = ibv_create_cq(dev->ctx, static_cast<int>(cqe), nullptr, ch->channel, 0);
    if (!cq) ThrowVerbs(env, errno ? errno : ENOMEM, "ibv_create_cq");
    res_ = std::make_shared<CqRes>(dev, ch, cq);
    cq->cq_context = res_.get();
    res_->sink = res_->jsSink = this;
    int r = res_->Arm();
    if (r) {
      res_.reset();
      ThrowVerbs(env, r, "ibv_req_notify_cq");
    }
  }

  ~CompletionQueue() override {
    if (!res_) return;
    if (res_->sink == this) res_->sink = nullptr;
    res_->jsSink = nullptr;
  }

  std::shared_ptr<CqRes> Res(Napi::Env env, const char* op) {
    if (!res_ || !res_->cq) ThrowClosed(env, "CompletionQueue", op);
    return res_;
  }

  // Completions go to this.onCompletionsRaw(n, f64) when defined (index.ts): the fields of each WC
  // in a reused Float64Array, kWcStride slots per WC (wrId, status, opcode, byteLen, immData or -1,
  // qpNum, srcQp, wcFlags, vendorErr), decoded in JS (far fewer N-API calls than building objects
  // here); else to this.onCompletions(wcs) with plain objects.
  void OnCompletions(CqRes*, const ibv_wc* wc, int n) override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Object self = Value();
    if (self.IsEmpty()) return;  // being collected
    try {
      Napi::Value raw = self.Get("onCompletionsRaw");
      if (raw.IsFunction()) {
        if (wcBuf_.IsEmpty())
          wcBuf_ = Napi::Persistent(Napi::Float64Array::New(env, static_cast<size_t>(kWcBatch) * kWcStride));
        Napi::Float64Array arr = wcBuf_.Value();
        bool detached = true;
        napi_is_detached_arraybuffer(env, arr.ArrayBuffer(), &detached);
        if (!detached && arr.ElementLength() >= static_cast<size_t>(n) * kWcStride) {
          double* d = arr.Data();
          for (int i = 0; i < n; i++, d += kWcStride) {
            const ibv_wc& w = wc[i];
            d[0] = static_cast<double>(w.wr_id);
            d[1] = w.status;
            d[2] = w.opcode;
            d[3] = w.byte_len;
            d[4] = ((w.wc_flags & IBV_WC_WITH_IMM) && (w.opcode & IBV_WC_RECV)) ? ntohl(w.imm_data) : -1.0;
            d[5] = w.qp_num;
            d[6] = w.src_qp;
            d[7] = w.wc_flags;
            d[8] = w.vendor_err;
          }
          raw.As<Napi::Function>().MakeCallback(self, {Napi::Number::New(env, n), arr}, async_);
          return;
        }
        wcBuf_.Reset();  // detached by someone: make a new one next time
      }
      Napi::Value fn = self.Get("onCompletions");
      if (!fn.IsFunction()) return;
      Napi::Array arr = Napi::Array::New(env, n);
      for (int i = 0; i < n; i++) arr.Set(i, WcToObject(env, wc[i]));
      fn.As<Napi::Function>().MakeCallback(self, {arr}, async_);
    } catch (const Napi::Error& e) {
      ReportUncaught(env, e);
    }
  }

 private:
  static constexpr int kWcBatch = 32;  // CqRes::Drain polls at most 32 at a time
  static constexpr int kWcStride = 10;
  std::shared_ptr<CqRes> res_;
  Napi::AsyncContext async_;
  Napi::Reference<Napi::Float64Array> wcBuf_;

  Napi::Value GetClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !res_); }
  Napi::Value GetCqe(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), res_ ? res_->cq->cqe : 0);
  }
  void Close(const Napi::CallbackInfo& info) {
    if (!res_) return;
    if (res_->children > 0)
      ThrowVerbs(info.Env(), EBUSY, "ibv_destroy_cq", std::to_string(res_->children) + " queue pair use(s) still open");
    int r = res_->Destroy();
    if (r) ThrowVerbs(info.Env(), r, "ibv_destroy_cq");
    res_->sink = res_->jsSink = nullptr;
    res_.reset();
  }
};

std::shared_ptr<CqRes> CqResOf(Napi::Env env, const Napi::Value& v) {
  return UnwrapTagged<CompletionQueue>(env, v, kTagCq, "CompletionQueue")->Res(env, "CompletionQueue");
}

void InitCq(Napi::Env env, Napi::Object exports) {
  exports.Set("CompletionChannel", CompletionChannel::Init(env));
  exports.Set("CompletionQueue", CompletionQueue::Init(env));
}

}  // namespace smc
