// What the sock_ops program (sidecar/bpf) saw on a connection's handshake: whether the peer's
// SYN-ACK carried the SMC TCP option. An active socket has no saved-SYN counterpart, so the
// program records it in the pinned LRU map smco_conns, keyed by the 4-tuple; this reads it with
// the bpf(2) syscall (no libbpf needed). And the other way: smco_skip, where a peer that echoed
// the option without speaking CLC is entered so that our next SYNs to it go out plain.
#include <time.h>
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <linux/types.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>

#include "common.h"
#include "smc-option.h"

namespace smc {
namespace {

std::map<std::string, int> g_mapFds;  // pinned map path -> fd, opened once

int MapFd(const std::string& path) {
  auto it = g_mapFds.find(path);
  if (it != g_mapFds.end()) return it->second;
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.pathname = reinterpret_cast<uintptr_t>(path.c_str());
  int fd = static_cast<int>(syscall(__NR_bpf, BPF_OBJ_GET, &a, sizeof a));
  if (fd >= 0) g_mapFds[path] = fd;
  return fd;
}

// The key as the program writes it: IPv4 (also IPv4-mapped) as AF_INET in word 0, ports host order.
bool KeyOf(const sockaddr_storage& l, const sockaddr_storage& r, smco_key* k) {
  memset(k, 0, sizeof *k);
  auto put = [&](const sockaddr_storage& s, __u32* addr, __u16* port) -> int {
    if (s.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&s);
      addr[0] = a->sin_addr.s_addr;
      *port = ntohs(a->sin_port);
      return AF_INET;
    }
    if (s.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&s);
      *port = ntohs(a->sin6_port);
      if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
        memcpy(&addr[0], &a->sin6_addr.s6_addr[12], 4);
        return AF_INET;
      }
      memcpy(addr, &a->sin6_addr, 16);
      return AF_INET6;
    }
    return -1;
  };
  int fl = put(l, k->laddr, &k->lport);
  int fr = put(r, k->raddr, &k->rport);
  if (fl < 0 || fl != fr) return false;
  k->family = static_cast<__u16>(fl);
  return true;
}

// The smco_key of a connected socket (its 4-tuple as getsockname / getpeername see it).
smco_key ConnKeyOf(Napi::Env env, int fd, const char* what) {
  sockaddr_storage l, r;
  socklen_t ll = sizeof l, rl = sizeof r;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&l), &ll) != 0) ThrowVerbs(env, errno, "getsockname");
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&r), &rl) != 0) ThrowVerbs(env, errno, "getpeername");
  smco_key key;
  if (!KeyOf(l, r, &key)) ThrowVerbs(env, EAFNOSUPPORT, what, "not an IPv4/IPv6 TCP socket");
  return key;
}

std::string PinPath(const Napi::CallbackInfo& info, size_t dirArg, const char* name) {
  std::string dir = SMCO_PIN_DIR;
  if (info.Length() > dirArg && info[dirArg].IsString()) dir = info[dirArg].As<Napi::String>().Utf8Value();
  return dir + "/" + name;
}

}  // namespace

// smcoFlags(fd, pinDir?): the smco_conns flags of this connected socket's handshake (SMCO_F_*:
// 1 our SYN carried the option, 2 the peer's SYN-ACK did, 4 the peer's side was inspected), or null
// when the program recorded nothing for it (not selected, or no program). Throws VerbsError when
// the map cannot be opened (ENOENT: no program pinned there).
static Napi::Value SmcoFlags(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd", INT32_MAX));
  std::string path = PinPath(info, 1, SMCO_MAP_CONNS);
  smco_key key = ConnKeyOf(env, fd, "smcoFlags");
  int mfd = MapFd(path);
  if (mfd < 0) ThrowVerbs(env, errno, "bpf", "BPF_OBJ_GET " + path);
  smco_val val;
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = static_cast<__u32>(mfd);
  a.key = reinterpret_cast<uintptr_t>(&key);
  a.value = reinterpret_cast<uintptr_t>(&val);
  if (syscall(__NR_bpf, BPF_MAP_LOOKUP_ELEM, &a, sizeof a) != 0) {
    if (errno == ENOENT) return env.Null();
    ThrowVerbs(env, errno, "bpf", "BPF_MAP_LOOKUP_ELEM");
  }
  return Napi::Number::New(env, val.flags);
}

// smcoSkipPeer(fd, ttlMs, pinDir?): the program leaves the option off connects to this connected
// socket's peer (address and port) for ttlMs. Throws VerbsError when the map cannot be opened or
// written (ENOENT: no program pinned there).
static void SmcoSkipPeer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd", INT32_MAX));
  uint64_t ttlMs = ToU32(env, info[1], "ttlMs");
  std::string path = PinPath(info, 2, SMCO_MAP_SKIP);
  smco_key conn = ConnKeyOf(env, fd, "smcoSkipPeer");
  smco_peer key;
  memset(&key, 0, sizeof key);
  key.family = conn.family;
  key.port = conn.rport;
  memcpy(key.addr, conn.raddr, sizeof key.addr);
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);  // bpf_ktime_get_ns()'s clock
  smco_skip_val val;
  val.until_ns = static_cast<__u64>(now.tv_sec) * 1000000000ull + static_cast<__u64>(now.tv_nsec) + ttlMs * 1000000ull;
  int mfd = MapFd(path);
  if (mfd < 0) ThrowVerbs(env, errno, "bpf", "BPF_OBJ_GET " + path);
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = static_cast<__u32>(mfd);
  a.key = reinterpret_cast<uintptr_t>(&key);
  a.value = reinterpret_cast<uintptr_t>(&val);
  a.flags = BPF_ANY;
  if (syscall(__NR_bpf, BPF_MAP_UPDATE_ELEM, &a, sizeof a) != 0) ThrowVerbs(env, errno, "bpf", "BPF_MAP_UPDATE_ELEM");
}

void InitSmcoLookup(Napi::Env env, Napi::Object exports) {
  exports.Set("smcoFlags", Napi::Function::New(env, SmcoFlags, "smcoFlags"));
  exports.Set("smcoSkipPeer", Napi::Function::New(env, SmcoSkipPeer, "smcoSkipPeer"));
}

}  // namespace smc
