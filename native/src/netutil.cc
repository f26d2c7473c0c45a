// Socket helpers for the sidecar: the original destination of a redirected TCP connection, and the
// SYN a listener saved (TCP_SAVE_SYN), whose options tell whether a kernel SMC peer announced SMC.
#include <arpa/inet.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

#include "common.h"

#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif
#ifndef TCP_SAVE_SYN
#define TCP_SAVE_SYN 27
#endif
#ifndef TCP_SAVED_SYN
#define TCP_SAVED_SYN 28
#endif

namespace smc {

// getOriginalDst(fd): { family: 'IPv4' | 'IPv6', address, port } of a connection that an
// iptables/nftables REDIRECT or TPROXY rule sent to this socket. Throws VerbsError ENOENT when the
// connection was not redirected (no conntrack NAT entry).
static Napi::Value GetOriginalDst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd", INT32_MAX));
  sockaddr_storage local;
  socklen_t len = sizeof local;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) ThrowVerbs(env, errno, "getsockname");
  Napi::Object o = Napi::Object::New(env);
  char text[INET6_ADDRSTRLEN];
  bool v4mapped = false;
  if (local.ss_family == AF_INET6) {
    const auto* l6 = reinterpret_cast<const sockaddr_in6*>(&local);
    v4mapped = IN6_IS_ADDR_V4MAPPED(&l6->sin6_addr);
  }
  if (local.ss_family == AF_INET || v4mapped) {
    sockaddr_in dst;
    socklen_t dlen = sizeof dst;
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &dlen) != 0)
      ThrowVerbs(env, errno, "getsockopt", "SO_ORIGINAL_DST");
    inet_ntop(AF_INET, &dst.sin_addr, text, sizeof text);
    o.Set("family", "IPv4");
    o.Set("address", text);
    o.Set("port", ntohs(dst.sin_port));
    return o;
  }
  if (local.ss_family == AF_INET6) {
    sockaddr_in6 dst;
    socklen_t dlen = sizeof dst;
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &dlen) != 0)
      ThrowVerbs(env, errno, "getsockopt", "IP6T_SO_ORIGINAL_DST");
    inet_ntop(AF_INET6, &dst.sin6_addr, text, sizeof text);
    o.Set("family", "IPv6");
    o.Set("address", text);
    o.Set("port", ntohs(dst.sin6_port));
    return o;
  }
  ThrowVerbs(env, EAFNOSUPPORT, "getOriginalDst", "not an IPv4/IPv6 socket");
}

// setSaveSyn(fd): TCP_SAVE_SYN on a listening socket: each accepted connection keeps its SYN's
// headers for one getSavedSyn().
static Napi::Value SetSaveSyn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd", INT32_MAX));
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_SAVE_SYN, &one, sizeof one) != 0)
    ThrowVerbs(env, errno, "setsockopt", "TCP_SAVE_SYN");
  return env.Undefined();
}

// getSavedSyn(fd): the IP and TCP headers of the SYN that opened this accepted connection, or null
// when none was saved (listener without TCP_SAVE_SYN, or already read: the kernel frees it).
static Napi::Value GetSavedSyn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd", INT32_MAX));
  uint8_t buf[512];
  socklen_t len = sizeof buf;
  if (getsockopt(fd, IPPROTO_TCP, TCP_SAVED_SYN, buf, &len) != 0) {
    if (errno == ENOENT) return env.Null();
    ThrowVerbs(env, errno, "getsockopt", "TCP_SAVED_SYN");
  }
  if (len == 0) return env.Null();
  return Napi::Buffer<uint8_t>::Copy(env, buf, len);
}

// setLinger(fd, seconds | null): SO_LINGER. Zero makes the socket's last close (including the
// process dying) reset the connection instead of ending it with a FIN; null restores the default.
static Napi::Value SetLinger(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ToU32(env, info[0], "fd", INT32_MAX));
  linger l{0, 0};
  if (!info[1].IsNull() && !info[1].IsUndefined()) {
    l.l_onoff = 1;
    l.l_linger = static_cast<int>(ToU32(env, info[1], "seconds", 3600));
  }
  if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0) ThrowVerbs(env, errno, "setsockopt", "SO_LINGER");
  return env.Undefined();
}

void InitNetUtil(Napi::Env env, Napi::Object exports) {
  exports.Set("setLinger", Napi::Function::New(env, SetLinger, "setLinger"));
  exports.Set("getOriginalDst", Napi::Function::New(env, GetOriginalDst, "getOriginalDst"));
  exports.Set("setSaveSyn", Napi::Function::New(env, SetSaveSyn, "setSaveSyn"));
  exports.Set("getSavedSyn", Napi::Function::New(env, GetSavedSyn, "getSavedSyn"));
}

}  // namespace smc
