// Protection domains, memory regions, memory windows and page-aligned buffers for registration.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <unordered_map>
#include <unordered_set>

#include "common.h"

namespace smc {

// Live MRs, so that releasing a buffer's pages while the device still has them pinned is refused.
static std::unordered_set<const MrRes*> g_live_mrs;
// allocBuffer mappings by base address: releaseBuffer accepts only these.
static std::unordered_map<const uint8_t*, size_t> g_mappings;

PdRes::PdRes(std::shared_ptr<DeviceRes> d, ibv_pd* p) : dev(std::move(d)), pd(p) {
  dev->children++;
  g_live[kPds]++;
}
PdRes::~PdRes() { Destroy(); }
int PdRes::Destroy() {
  if (!pd) return 0;
  int r = ibv_dealloc_pd(pd);
  if (r) return r;
  pd = nullptr;
  dev->children--;
  g_live[kPds]--;
  return 0;
}

MrRes::MrRes(std::shared_ptr<PdRes> p, ibv_mr* m, uint8_t* b, size_t len, int acc)
    : pd(std::move(p)), mr(m), base(b), length(len), access(acc) {
  pd->children++;
  g_live[kMrs]++;
  g_live_mrs.insert(this);
}
MrRes::~MrRes() { Destroy(); }
int MrRes::Destroy() {
  if (!mr) return 0;
  int r = ibv_dereg_mr(mr);
  if (r) return r;
  mr = nullptr;
  pd->children--;
  g_live[kMrs]--;
  g_live_mrs.erase(this);
  return 0;
}

MwRes::MwRes(std::shared_ptr<PdRes> p, ibv_mw* m) : pd(std::move(p)), mw(m) {
  pd->children++;
  g_live[kMws]++;
}
MwRes::~MwRes() { Destroy(); }
int MwRes::Destroy() {
  if (!mw) return 0;
  int r = ibv_dealloc_mw(mw);
  if (r) return r;
  mw = nullptr;
  // The kernel dropped its references to the QPs and MRs with the window: they may go now.
  for (auto& qp : boundQps) qp->children--;
  boundQps.clear();
  for (auto& mr : boundMrs) mr->children--;
  boundMrs.clear();
  pd->children--;
  g_live[kMws]--;
  return 0;
}
template <class R>
static void AddParent(std::vector<std::shared_ptr<R>>& list, const std::shared_ptr<R>& r) {
  for (auto& x : list)
    if (x == r) return;
  list.push_back(r);
  r->children++;
}
void MwRes::BoundTo(const std::shared_ptr<QpRes>& qp, const std::shared_ptr<MrRes>& mr) {
  AddParent(boundQps, qp);
  AddParent(boundMrs, mr);
}

class ProtectionDomain : public Napi::ObjectWrap<ProtectionDomain> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "ProtectionDomain",
                       {
                           InstanceAccessor<&ProtectionDomain::GetClosed>("closed"),
                           InstanceAccessor<&ProtectionDomain::GetHandle>("handle"),
                           InstanceMethod<&ProtectionDomain::Close>("close"),
                       });
  }

  // new ProtectionDomain(context)
  explicit ProtectionDomain(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProtectionDomain>(info) {
    Napi::Env env = info.Env();
    napi_type_tag_object(env, info.This(), &kTagPd);
    auto dev = ContextRes(env, info[0]);
    errno = 0;
    ibv_pd* pd = ibv_alloc_pd(dev->ctx);
    if (!pd) ThrowVerbs(env, errno ? errno : ENOMEM, "ibv_alloc_pd");
    res_ = std::make_shared<PdRes>(dev, pd);
  }

  std::shared_ptr<PdRes> Res(Napi::Env env, const char* op) {
    if (!res_ || !res_->pd) ThrowClosed(env, "ProtectionDomain", op);
    return res_;
  }

 private:
  std::shared_ptr<PdRes> res_;

  Napi::Value GetClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !res_); }
  Napi::Value GetHandle(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), res_ && res_->pd ? res_->pd->handle : 0);
  }
  void Close(const Napi::CallbackInfo& info) {
    if (!res_) return;
    if (res_->children > 0)
      ThrowVerbs(info.Env(), EBUSY, "ibv_dealloc_pd",
                 std::to_string(res_->children) + " memory region(s), memory window(s) or queue pair(s) still open");
    int r = res_->Destroy();
    if (r) ThrowVerbs(info.Env(), r, "ibv_dealloc_pd");
    res_.reset();
  }
};

std::shared_ptr<PdRes> PdResOf(Napi::Env env, const Napi::Value& v) {
  return UnwrapTagged<ProtectionDomain>(env, v, kTagPd, "ProtectionDomain")->Res(env, "ProtectionDomain");
}

class MemoryRegion : public Napi::ObjectWrap<MemoryRegion> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "MemoryRegion",
                       {
                           InstanceAccessor<&MemoryRegion::GetClosed>("closed"),
                           InstanceAccessor<&MemoryRegion::GetLkey>("lkey"),
                           InstanceAccessor<&MemoryRegion::GetRkey>("rkey"),
                           InstanceAccessor<&MemoryRegion::GetAddr>("addr"),
                           InstanceAccessor<&MemoryRegion::GetLength>("length"),
                           InstanceAccessor<&MemoryRegion::GetAccess>("access"),
                           InstanceAccessor<&MemoryRegion::GetBuffer>("buffer"),
                           InstanceMethod<&MemoryRegion::Close>("close"),
                       });
  }

  // new MemoryRegion(pd, buffer, access?: { localWrite?, remoteWrite?, remoteRead?, allowRemoteRead?, mwBind? })
  //
  // Default access is LOCAL_WRITE only. REMOTE_WRITE must be asked for. REMOTE_READ exposes the
  // region to any peer holding the rkey and is refused (EACCES) unless allowRemoteRead is also set.
  // mwBind (MW_BIND) lets type 2 memory windows be bound to the region; it grants no remote access.
  explicit MemoryRegion(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MemoryRegion>(info) {
    Napi::Env env = info.Env();
    napi_type_tag_object(env, info.This(), &kTagMr);
    uint8_t* data = nullptr;
    size_t len = 0;
    if (info.Length() < 2 || !BufferSpan(info[1], &data, &len))
      ThrowType(env, "buffer must be a Buffer, TypedArray, DataView or ArrayBuffer");
    if (len == 0) ThrowRange(env, "cannot register an empty buffer");
    Napi::Object acc = OptObject(env, info.Length() > 2 ? info[2] : env.Undefined(), "access");
    bool localWrite = GetBool(env, acc, "localWrite", true);
    bool remoteWrite = GetBool(env, acc, "remoteWrite", false);
    bool remoteRead = GetBool(env, acc, "remoteRead", false);
    bool allowRemoteRead = GetBool(env, acc, "allowRemoteRead", false);
    bool mwBind = GetBool(env, acc, "mwBind", false);
    if (remoteRead && !allowRemoteRead)
      ThrowVerbs(env, EACCES, "ibv_reg_mr",
                 "remote read access exposes the region to any peer holding the rkey; "
                 "pass allowRemoteRead: true to opt in");
    if (remoteWrite && !localWrite) ThrowVerbs(env, EINVAL, "ibv_reg_mr", "remoteWrite requires localWrite");
    auto pd = PdResOf(env, info[0]);  // after argument checks, so they work without a device
    int flags = (localWrite ? IBV_ACCESS_LOCAL_WRITE : 0) | (remoteWrite ? IBV_ACCESS_REMOTE_WRITE : 0) |
                (remoteRead ? IBV_ACCESS_REMOTE_READ : 0) | (mwBind ? IBV_ACCESS_MW_BIND : 0);
    errno = 0;
    ibv_mr* mr = ibv_reg_mr(pd->pd, data, len, flags);
    if (!mr) ThrowVerbs(env, errno ? errno : ENOMEM, "ibv_reg_mr");
    res_ = std::make_shared<MrRes>(pd, mr, data, len, flags);
    buffer_ = Napi::Persistent(info[1]);  // keeps the memory alive while registered
  }

  ~MemoryRegion() override {
    // Deregister before the buffer reference goes, so the HCA never touches freed memory.
    res_.reset();
  }

  std::shared_ptr<MrRes> Res(Napi::Env env, const char* op) {
    if (!res_ || !res_->mr) ThrowClosed(env, "MemoryRegion", op);
    return res_;
  }

 private:
  std::shared_ptr<MrRes> res_;
  Napi::Reference<Napi::Value> buffer_;

  Napi::Value GetClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !res_); }
  Napi::Value GetLkey(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), res_ ? res_->mr->lkey : 0);
  }
  Napi::Value GetRkey(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), res_ ? res_->mr->rkey : 0);
  }
  Napi::Value GetAddr(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), res_ ? static_cast<double>(reinterpret_cast<uintptr_t>(res_->base)) : 0);
  }
  Napi::Value GetLength(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), res_ ? static_cast<double>(res_->length) : 0);
  }
  Napi::Value GetAccess(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int a = res_ ? res_->access : 0;
    Napi::Object o = Napi::Object::New(env);
    o.Set("localWrite", (a & IBV_ACCESS_LOCAL_WRITE) != 0);
    o.Set("remoteWrite", (a & IBV_ACCESS_REMOTE_WRITE) != 0);
    o.Set("remoteRead", (a & IBV_ACCESS_REMOTE_READ) != 0);
    o.Set("mwBind", (a & IBV_ACCESS_MW_BIND) != 0);
    return o;
  }
  Napi::Value GetBuffer(const Napi::CallbackInfo& info) {
    return buffer_.IsEmpty() ? info.Env().Null() : buffer_.Value();
  }
  void Close(const Napi::CallbackInfo& info) {
    if (!res_) return;
    if (res_->children > 0)
      ThrowVerbs(info.Env(), EBUSY, "ibv_dereg_mr",
                 std::to_string(res_->children) + " memory window(s) bound to it still open");
    int r = res_->Destroy();
    if (r) ThrowVerbs(info.Env(), r, "ibv_dereg_mr");
    res_.reset();
    buffer_.Reset();
  }
};

std::shared_ptr<MrRes> MrResOf(Napi::Env env, const Napi::Value& v) {
  return UnwrapTagged<MemoryRegion>(env, v, kTagMr, "MemoryRegion")->Res(env, "MemoryRegion");
}

// A type 2 memory window of a PD: no access until a BIND_MW work request (QueuePair.postSend) binds
// it to part of a memory region through one QP; only that QP then accepts its rkey.
class MemoryWindow : public Napi::ObjectWrap<MemoryWindow> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "MemoryWindow",
                       {
                           InstanceAccessor<&MemoryWindow::GetClosed>("closed"),
                           InstanceAccessor<&MemoryWindow::GetRkey>("rkey"),
                           InstanceMethod<&MemoryWindow::Close>("close"),
                       });
  }

  // new MemoryWindow(pd)
  explicit MemoryWindow(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MemoryWindow>(info) {
    Napi::Env env = info.Env();
    napi_type_tag_object(env, info.This(), &kTagMw);
    auto pd = PdResOf(env, info[0]);
    errno = 0;
    ibv_mw* mw = ibv_alloc_mw(pd->pd, IBV_MW_TYPE_2);
    if (!mw) ThrowVerbs(env, errno ? errno : ENOMEM, "ibv_alloc_mw");
    res_ = std::make_shared<MwRes>(pd, mw);
  }

  std::shared_ptr<MwRes> Res(Napi::Env env, const char* op) {
    if (!res_ || !res_->mw) ThrowClosed(env, "MemoryWindow", op);
    return res_;
  }

 private:
  std::shared_ptr<MwRes> res_;

  Napi::Value GetClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !res_); }
  // The rkey of the last bind posted (the allocation's before any): what the peer writes with.
  Napi::Value GetRkey(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), res_ ? res_->mw->rkey : 0);
  }
  void Close(const Napi::CallbackInfo& info) {
    if (!res_) return;
    int r = res_->Destroy();
    if (r) ThrowVerbs(info.Env(), r, "ibv_dealloc_mw");
    res_.reset();
  }
};

std::shared_ptr<MwRes> MwResOf(Napi::Env env, const Napi::Value& v) {
  return UnwrapTagged<MemoryWindow>(env, v, kTagMw, "MemoryWindow")->Res(env, "MemoryWindow");
}

// allocBuffer(size): a zero-filled, page-aligned Buffer backed by its own anonymous mapping (not
// Node's pool), the recommended memory for RDMA buffers. Its size counts as external memory, so
// V8 collects dropped buffers (and unmaps them) under that pressure, not only its own heap's.
static Napi::Value AllocBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t size = ToU32(env, info[0], "size", 1u << 30);
  if (size == 0) ThrowRange(env, "size must be > 0");
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) ThrowVerbs(env, errno, "mmap");
  g_live[kBuffers]++;
  g_mappings.emplace(static_cast<const uint8_t*>(p), size);
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(size));
  return Napi::Buffer<uint8_t>::New(env, static_cast<uint8_t*>(p), size, [size](Napi::Env e, uint8_t* d) {
    g_mappings.erase(d);
    munmap(d, size);
    g_live[kBuffers]--;
    Napi::MemoryManagement::AdjustExternalMemory(e, -static_cast<int64_t>(size));
  });
}

// releaseBuffer(buf): gives an allocBuffer buffer's pages back to the kernel now (MADV_DONTNEED)
// instead of when the Buffer is collected; the mapping stays, reading zeros. Registration pins
// pages, so a buffer the device may still write is refused (EBUSY): close its MRs first.
static Napi::Value ReleaseBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer()) ThrowType(env, "releaseBuffer: a Buffer from allocBuffer expected");
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  const uint8_t* base = buf.Data();
  auto it = g_mappings.find(base);
  if (it == g_mappings.end() || it->second != buf.Length())
    ThrowType(env, "releaseBuffer: not a whole buffer from allocBuffer");
  const uint8_t* end = base + it->second;
  for (const MrRes* m : g_live_mrs) {
    if (m->mr && m->base < end && base < m->base + m->length) ThrowVerbs(env, EBUSY, "releaseBuffer");
  }
  if (madvise(const_cast<uint8_t*>(base), it->second, MADV_DONTNEED) != 0) ThrowVerbs(env, errno, "madvise");
  return env.Undefined();
}

void InitPdMr(Napi::Env env, Napi::Object exports) {
  exports.Set("ProtectionDomain", ProtectionDomain::Init(env));
  exports.Set("MemoryRegion", MemoryRegion::Init(env));
  exports.Set("MemoryWindow", MemoryWindow::Init(env));
  exports.Set("allocBuffer", Napi::Function::New(env, AllocBuffer, "allocBuffer"));
  exports.Set("releaseBuffer", Napi::Function::New(env, ReleaseBuffer, "releaseBuffer"));
}

}  // namespace smc
