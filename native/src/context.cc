// Device list, device context (ibv_open_device) and device / port / GID / PKey queries.
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "common.h"

namespace smc {

DeviceRes::DeviceRes(ibv_context* c, std::string n) : ctx(c), name(std::move(n)) { g_live[kContexts]++; }
DeviceRes::~DeviceRes() { Destroy(); }

namespace {
void OnAsyncReadable(uv_poll_t* h, int status, int events) {
  auto* d = static_cast<DeviceRes*>(h->data);
  if (!d || !d->ctx) return;
  std::vector<ibv_async_event> got;
  ibv_async_event ev;
  while (got.size() < 64 && ibv_get_async_event(d->ctx, &ev) == 0) {
    got.push_back(ev);
    ibv_ack_async_event(&ev);  // at once: destroying a QP/CQ waits for its events to be acked
  }
  if (!got.empty() && d->asyncSink) d->asyncSink->OnAsyncEvents(got);
}
}  // namespace

int DeviceRes::StartAsync(uv_loop_t* loop) {
  int fl = fcntl(ctx->async_fd, F_GETFL);
  if (fl < 0 || fcntl(ctx->async_fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  asyncPoll = new uv_poll_t;
  int r = uv_poll_init(loop, asyncPoll, ctx->async_fd);
  if (r) {
    delete asyncPoll;
    asyncPoll = nullptr;
    return r;
  }
  asyncPoll->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(asyncPoll));  // events alone do not keep node running
  return uv_poll_start(asyncPoll, UV_READABLE, OnAsyncReadable);
}

int DeviceRes::Destroy() {
  if (!ctx) return 0;
  if (asyncPoll) {
    uv_poll_stop(asyncPoll);
    asyncPoll->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(asyncPoll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    asyncPoll = nullptr;
  }
  int r = ibv_close_device(ctx);
  if (r) return errno ? errno : EIO;
  ctx = nullptr;
  g_live[kContexts]--;
  return 0;
}

namespace {

std::string Hex64(uint64_t be) {
  uint64_t v = be64toh(be);
  char buf[20];
  snprintf(buf, sizeof buf, "%04x:%04x:%04x:%04x", unsigned(v >> 48) & 0xffff, unsigned(v >> 32) & 0xffff,
           unsigned(v >> 16) & 0xffff, unsigned(v) & 0xffff);
  return buf;
}

const char* NodeTypeName(ibv_node_type t) {
  switch (t) {
    case IBV_NODE_CA:
      return "CA";
    case IBV_NODE_SWITCH:
      return "SWITCH";
    case IBV_NODE_ROUTER:
      return "ROUTER";
    case IBV_NODE_RNIC:
      return "RNIC";
    case IBV_NODE_USNIC:
      return "USNIC";
    case IBV_NODE_USNIC_UDP:
      return "USNIC_UDP";
    case IBV_NODE_UNSPECIFIED:
      return "UNSPECIFIED";
    default:
      return "UNKNOWN";
  }
}

const char* TransportName(ibv_transport_type t) {
  switch (t) {
    case IBV_TRANSPORT_IB:
      return "IB";
    case IBV_TRANSPORT_IWARP:
      return "IWARP";
    case IBV_TRANSPORT_USNIC:
      return "USNIC";
    case IBV_TRANSPORT_USNIC_UDP:
      return "USNIC_UDP";
    case IBV_TRANSPORT_UNSPECIFIED:
      return "UNSPECIFIED";
    default:
      return "UNKNOWN";
  }
}

const char* PortStateName(ibv_port_state s) {
  switch (s) {
    case IBV_PORT_NOP:
      return "NOP";
    case IBV_PORT_DOWN:
      return "DOWN";
    case IBV_PORT_INIT:
      return "INIT";
    case IBV_PORT_ARMED:
      return "ARMED";
    case IBV_PORT_ACTIVE:
      return "ACTIVE";
    case IBV_PORT_ACTIVE_DEFER:
      return "ACTIVE_DEFER";
    default:
      return "UNKNOWN";
  }
}

const char* LinkLayerName(uint8_t l) {
  switch (l) {
    case IBV_LINK_LAYER_INFINIBAND:
      return "InfiniBand";
    case IBV_LINK_LAYER_ETHERNET:
      return "Ethernet";
    default:
      return "Unspecified";
  }
}

uint32_t MtuBytes(ibv_mtu m) { return 128u << static_cast<int>(m); }  // IBV_MTU_256 == 1

const char* GidTypeName(unsigned t) {
  switch (t) {
    case IBV_GID_TYPE_IB:
      return "IB";
    case IBV_GID_TYPE_ROCE_V1:
      return "RoCEv1";
    case IBV_GID_TYPE_ROCE_V2:
      return "RoCEv2";
    default:
      return "unknown";
  }
}

struct DeviceList {
  ibv_device** list = nullptr;
  int n = 0;
  int err = 0;
  DeviceList() {
    errno = 0;
    list = ibv_get_device_list(&n);
    if (!list) {
      err = errno ? errno : ENODEV;
      n = 0;
    }
  }
  ~DeviceList() {
    if (list) ibv_free_device_list(list);
  }
};

Napi::Value ListDevices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DeviceList dl;
  // No uverbs support in the kernel (ENOSYS) or no devices: an empty list, not an error.
  if (!dl.list && dl.err != ENOSYS && dl.err != ENODEV && dl.err != ENOENT) ThrowVerbs(env, dl.err, "ibv_get_device_list");
  Napi::Array out = Napi::Array::New(env, dl.n);
  for (int i = 0; i < dl.n; i++) {
    ibv_device* d = dl.list[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", ibv_get_device_name(d));
    o.Set("guid", Hex64(ibv_get_device_guid(d)));
    o.Set("nodeType", NodeTypeName(d->node_type));
    o.Set("transport", TransportName(d->transport_type));
    out.Set(i, o);
  }
  return out;
}

// Fallback for kernels without the GID table ioctl: read the sysfs attributes of each index.
void SysfsGidTable(Napi::Env env, const std::string& dev, uint8_t port, int len, Napi::Array& out, uint32_t& k) {
  std::string base = "/sys/class/infiniband/" + dev + "/ports/" + std::to_string(port);
  for (int i = 0; i < len; i++) {
    std::ifstream g(base + "/gids/" + std::to_string(i));
    std::string text;
    if (!(g >> text)) continue;
    uint8_t raw[16];
    ParseGid(env, Napi::String::New(env, text), raw);
    bool zero = true;
    for (uint8_t b : raw) zero = zero && b == 0;
    if (zero) continue;
    std::ifstream t(base + "/gid_attrs/types/" + std::to_string(i));
    std::string type;
    std::getline(t, type);
    std::ifstream nd(base + "/gid_attrs/ndevs/" + std::to_string(i));
    std::string ndev;
    std::getline(nd, ndev);
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", i);
    o.Set("port", port);
    o.Set("gid", GidToString(raw));
    o.Set("type", type == "RoCE v2" ? "RoCEv2" : (type == "IB/RoCE v1" ? "RoCEv1" : (type.empty() ? "unknown" : type)));
    o.Set("netdev", ndev.empty() ? env.Null() : Napi::String::New(env, ndev));
    o.Set("ifindex", ndev.empty() ? 0 : if_nametoindex(ndev.c_str()));
    out.Set(k++, o);
  }
}

}  // namespace

class Context : public Napi::ObjectWrap<Context>, public AsyncSink {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Context",
                       {
                           InstanceAccessor<&Context::GetName>("name"),
                           InstanceAccessor<&Context::GetClosed>("closed"),
                           InstanceMethod<&Context::Close>("close"),
                           InstanceMethod<&Context::QueryDevice>("queryDevice"),
                           InstanceMethod<&Context::QueryPort>("queryPort"),
                           InstanceMethod<&Context::QueryGidTable>("queryGidTable"),
                           InstanceMethod<&Context::QueryPkeyTable>("queryPkeyTable"),
                       });
  }

  // new Context(name?: string)
  explicit Context(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<Context>(info), async_(info.Env(), "smc_verbs:Context") {
    Napi::Env env = info.Env();
    napi_type_tag_object(env, info.This(), &kTagContext);
    std::string want;
    if (info.Length() > 0 && !info[0].IsUndefined() && !info[0].IsNull()) {
      if (!info[0].IsString()) ThrowType(env, "device name must be a string");
      want = info[0].As<Napi::String>().Utf8Value();
    }
    DeviceList dl;
    ibv_device* found = nullptr;
    for (int i = 0; i < dl.n && !found; i++)
      if (want.empty() || want == ibv_get_device_name(dl.list[i])) found = dl.list[i];
    if (!found) {
      ThrowVerbs(env, ENODEV, "ibv_open_device",
                 dl.n == 0 ? std::string("no RDMA device on this machine") : "no RDMA device named '" + want + "'");
    }
    std::string name = ibv_get_device_name(found);
    errno = 0;
    ibv_context* ctx = ibv_open_device(found);
    if (!ctx) ThrowVerbs(env, errno ? errno : ENODEV, "ibv_open_device", name);
    res_ = std::make_shared<DeviceRes>(ctx, name);
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    if (int r = res_->StartAsync(loop)) {
      res_.reset();
      ThrowVerbs(env, -r, "uv_poll_start", "async event fd");
    }
    res_->asyncSink = this;
  }

  ~Context() override {
    if (res_) res_->asyncSink = nullptr;
  }

  // Async events (port up/down, QP/CQ errors, ...) go to this.onAsyncEvent(ev).
  void OnAsyncEvents(const std::vector<ibv_async_event>& events) override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Object self = Value();
    if (self.IsEmpty()) return;
    for (const auto& ev : events) {
      try {
        Napi::Value fn = self.Get("onAsyncEvent");
        if (!fn.IsFunction()) return;
        Napi::Object o = Napi::Object::New(env);
        o.Set("type", AsyncEventName(ev.event_type));
        switch (ev.event_type) {
          case IBV_EVENT_PORT_ACTIVE:
          case IBV_EVENT_PORT_ERR:
          case IBV_EVENT_LID_CHANGE:
          case IBV_EVENT_PKEY_CHANGE:
          case IBV_EVENT_SM_CHANGE:
          case IBV_EVENT_CLIENT_REREGISTER:
          case IBV_EVENT_GID_CHANGE:
            o.Set("port", ev.element.port_num);
            break;
          case IBV_EVENT_QP_FATAL:
          case IBV_EVENT_QP_REQ_ERR:
          case IBV_EVENT_QP_ACCESS_ERR:
          case IBV_EVENT_COMM_EST:
          case IBV_EVENT_SQ_DRAINED:
          case IBV_EVENT_PATH_MIG:
          case IBV_EVENT_PATH_MIG_ERR:
          case IBV_EVENT_QP_LAST_WQE_REACHED:
            o.Set("qpn", ev.element.qp->qp_num);
            break;
          default:
            break;
        }
        fn.As<Napi::Function>().MakeCallback(self, {o}, async_);
      } catch (const Napi::Error& e) {
        ReportUncaught(env, e);
      }
    }
  }

  std::shared_ptr<DeviceRes> Res(Napi::Env env, const char* op) {
    if (!res_ || !res_->ctx) ThrowClosed(env, "Context", op);
    return res_;
  }

 private:
  std::shared_ptr<DeviceRes> res_;
  Napi::AsyncContext async_;

  Napi::Value GetName(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), res_ ? res_->name : "");
  }
  Napi::Value GetClosed(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), !res_ || !res_->ctx);
  }

  void Close(const Napi::CallbackInfo& info) {
    if (!res_) return;
    if (res_->children > 0)
      ThrowVerbs(info.Env(), EBUSY, "ibv_close_device",
                 std::to_string(res_->children) + " protection domain(s), channel(s) or CQ(s) still open");
    int r = res_->Destroy();
    if (r) ThrowVerbs(info.Env(), r, "ibv_close_device");
    res_.reset();
  }

  Napi::Value QueryDevice(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto res = Res(env, "ibv_query_device");
    ibv_device_attr a;
    int r = ibv_query_device(res->ctx, &a);
    if (r) ThrowVerbs(env, r, "ibv_query_device");
    Napi::Object o = Napi::Object::New(env);
    o.Set("fwVer", a.fw_ver);
    o.Set("nodeGuid", Hex64(a.node_guid));
    o.Set("sysImageGuid", Hex64(a.sys_image_guid));
    o.Set("maxMrSize", static_cast<double>(a.max_mr_size));
    o.Set("pageSizeCap", static_cast<double>(a.page_size_cap));
    o.Set("vendorId", a.vendor_id);
    o.Set("vendorPartId", a.vendor_part_id);
    o.Set("hwVer", a.hw_ver);
    o.Set("maxQp", a.max_qp);
    o.Set("maxQpWr", a.max_qp_wr);
    o.Set("maxSge", a.max_sge);
    o.Set("maxCq", a.max_cq);
    o.Set("maxCqe", a.max_cqe);
    o.Set("maxMr", a.max_mr);
    o.Set("maxPd", a.max_pd);
    o.Set("maxQpRdAtom", a.max_qp_rd_atom);
    o.Set("maxQpInitRdAtom", a.max_qp_init_rd_atom);
    o.Set("physPortCnt", a.phys_port_cnt);
    return o;
  }

  uint8_t PortArg(const Napi::CallbackInfo& info, size_t i) {
    if (info.Length() <= i || info[i].IsUndefined()) return 1;
    return static_cast<uint8_t>(ToU32(info.Env(), info[i], "port", 255));
  }

  Napi::Value QueryPort(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto res = Res(env, "ibv_query_port");
    uint8_t port = PortArg(info, 0);
    ibv_port_attr a;
    int r = ibv_query_port(res->ctx, port, &a);
    if (r) ThrowVerbs(env, r, "ibv_query_port", "port " + std::to_string(port));
    Napi::Object o = Napi::Object::New(env);
    o.Set("port", port);
    o.Set("state", PortStateName(a.state));
    o.Set("maxMtu", MtuBytes(a.max_mtu));
    o.Set("activeMtu", MtuBytes(a.active_mtu));
    o.Set("linkLayer", LinkLayerName(a.link_layer));
    o.Set("gidTblLen", a.gid_tbl_len);
    o.Set("pkeyTblLen", a.pkey_tbl_len);
    o.Set("lid", a.lid);
    o.Set("smLid", a.sm_lid);
    o.Set("portCapFlags", a.port_cap_flags);
    o.Set("activeSpeed", a.active_speed);
    o.Set("activeWidth", a.active_width);
    o.Set("maxMsgSz", a.max_msg_sz);
    return o;
  }

  // queryGidTable(port?: number): valid entries only, each with its index, type and netdev.
  Napi::Value QueryGidTable(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto res = Res(env, "ibv_query_gid_table");
    int onlyPort = (info.Length() > 0 && !info[0].IsUndefined()) ? PortArg(info, 0) : 0;
    ibv_device_attr da;
    int r = ibv_query_device(res->ctx, &da);
    if (r) ThrowVerbs(env, r, "ibv_query_device");
    size_t total = 0;
    std::vector<int> lens(da.phys_port_cnt + 1, 0);
    for (uint8_t p = 1; p <= da.phys_port_cnt; p++) {
      ibv_port_attr pa;
      if (ibv_query_port(res->ctx, p, &pa) == 0) lens[p] = pa.gid_tbl_len;
      total += lens[p];
    }
    Napi::Array out = Napi::Array::New(env);
    uint32_t k = 0;
    std::vector<ibv_gid_entry> entries(total ? total : 1);
    ssize_t n = ibv_query_gid_table(res->ctx, entries.data(), entries.size(), 0);
    if (n >= 0) {
      for (ssize_t i = 0; i < n; i++) {
        const ibv_gid_entry& e = entries[i];
        if (onlyPort && e.port_num != static_cast<uint32_t>(onlyPort)) continue;
        Napi::Object o = Napi::Object::New(env);
        o.Set("index", e.gid_index);
        o.Set("port", e.port_num);
        o.Set("gid", GidToString(e.gid.raw));
        o.Set("type", GidTypeName(e.gid_type));
        char ifname[IF_NAMESIZE] = {0};
        if (e.ndev_ifindex && if_indextoname(e.ndev_ifindex, ifname))
          o.Set("netdev", ifname);
        else
          o.Set("netdev", env.Null());
        o.Set("ifindex", e.ndev_ifindex);
        out.Set(k++, o);
      }
      return out;
    }
    // Older kernels: the same data from sysfs.
    for (uint8_t p = 1; p <= da.phys_port_cnt; p++) {
      if (onlyPort && p != onlyPort) continue;
      SysfsGidTable(env, res->name, p, lens[p], out, k);
    }
    return out;
  }

  // queryPkeyTable(port?: number): number[] indexed by PKey index (host byte order).
  Napi::Value QueryPkeyTable(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto res = Res(env, "ibv_query_pkey");
    uint8_t port = PortArg(info, 0);
    ibv_port_attr pa;
    int r = ibv_query_port(res->ctx, port, &pa);
    if (r) ThrowVerbs(env, r, "ibv_query_port", "port " + std::to_string(port));
    Napi::Array out = Napi::Array::New(env, pa.pkey_tbl_len);
    for (int i = 0; i < pa.pkey_tbl_len; i++) {
      __be16 pkey = 0;
      r = ibv_query_pkey(res->ctx, port, i, &pkey);
      if (r) ThrowVerbs(env, errno ? errno : r, "ibv_query_pkey", "index " + std::to_string(i));
      out.Set(i, ntohs(pkey));
    }
    return out;
  }
};

std::shared_ptr<DeviceRes> ContextRes(Napi::Env env, const Napi::Value& v) {
  return UnwrapTagged<Context>(env, v, kTagContext, "Context")->Res(env, "Context");
}

void InitContext(Napi::Env env, Napi::Object exports) {
  exports.Set("Context", Context::Init(env));
  exports.Set("listDevices", Napi::Function::New(env, ListDevices, "listDevices"));
}

}  // namespace smc
