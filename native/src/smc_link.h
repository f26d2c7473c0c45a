// An SMC-R link in native code: one RC QP shared by the connections of a link group. The link owns
// the QP's completion queues and its receive ring; it demultiplexes received CDC messages to the
// connection whose alert token they carry, hands LLC messages to an observer, and keeps the send
// queue's accounting for all connections (see native/README.md, "Links and data pumps").
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace smc {

constexpr int kCdcLen = 44;
constexpr uint8_t kCdcType = 0xFE;
// Work request ids: kind << 48 | connection id << 16 | index, so they stay safe integers should JS
// ever see them (the receive flushes after close() go to the CQ's JS object).
constexpr uint64_t kKindShift = 48;
enum WrKind : uint64_t { kWrWrite = 1, kWrCdc = 2, kWrRecv = 3, kWrLlc = 4 };

inline void PutU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
inline uint16_t GetU16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t GetU32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// An event for JS, delivered from the loop after native work is done.
struct Event {
  std::string type;
  std::string reason;
  int err = 0;
  std::vector<uint8_t> data;
};

// Calls self[method](type, detail) for each event; JS exceptions are reported as uncaught.
void DeliverEvents(Napi::Env env, Napi::Object self, const char* method, std::vector<Event>& events,
                   Napi::AsyncContext& async);

// One connection on a link (the data pump).
struct LinkConn {
  virtual ~LinkConn() = default;
  // A CDC message carrying this connection's alert token (44 bytes, type checked).
  virtual void OnCdc(const uint8_t* p) = 0;
  // The signalled CDC posted with producer cursor `prod` completed: staging bytes up to it are free.
  virtual void OnSendDone(uint64_t prod) = 0;
  // The link failed: the connection cannot continue.
  virtual void OnLinkDown(const std::string& reason) = 0;
  // Runs a pump step and delivers the connection's events.
  virtual void Kick() = 0;
  virtual bool Live() const = 0;
  // Keeps the connection alive while the link runs it.
  virtual std::shared_ptr<LinkConn> Self() = 0;
  uint32_t connId = 0;
  uint32_t token = 0;
  bool wantsSq = false;  // stopped for lack of send queue room
};

// Who hears about LLC messages and link failure: the JS SmcLink, or a pump owning a private link.
struct LinkObserver {
  virtual ~LinkObserver() = default;
  virtual void OnLlc(const uint8_t* p, uint32_t len) = 0;
  virtual void OnLinkFailed(const std::string& reason) = 0;
  virtual void Flush() = 0;
};

struct LinkCore : CqSink, std::enable_shared_from_this<LinkCore> {
  static constexpr int kSlotSize = 64;
  static constexpr size_t kMaxEarlyPerToken = 64;

  std::shared_ptr<QpRes> qp;
  LinkObserver* observer = nullptr;
  bool attached = false;
  bool failed = false;
  std::string failReason;
  uint32_t maxSendWr = 0;
  int recvSlots = 64;  // receive ring size, slots of kSlotSize bytes
  int sqOutstanding = 0;

  // Receive ring (registered local write only).
  uint8_t* ctrl = nullptr;
  size_t ctrlLen = 0;
  ibv_mr* ctrlMr = nullptr;
  // Receive WRs the caller posted before the link took the QP (wr_id = slot < extSlots): the first
  // messages land in them; they are consumed, not reposted.
  std::shared_ptr<MrRes> extMr;
  uint64_t extOffset = 0;
  uint32_t extSlots = 0, extSlotSize = 0;

  // One record per signalled send WR, in posting order (an RC send queue completes in order).
  struct SendRecord {
    uint32_t connId;
    int wrs;
    uint64_t prod;
  };
  std::deque<SendRecord> sent;

  std::map<uint32_t, LinkConn*> byToken;
  std::map<uint32_t, LinkConn*> byId;
  // CDCs for tokens announced with Expect() but not attached yet (the peer may start writing as
  // soon as the CLC Confirm is out, before our pump exists).
  std::map<uint32_t, std::vector<std::vector<uint8_t>>> early;
  uint32_t nextConnId = 1;

  uint64_t cdcRecv = 0, llcRecv = 0, badCdc = 0, unknownToken = 0, earlyDropped = 0;

  ~LinkCore() override;

  // Takes the QP (RTS, CQs exclusive) and posts the ring. Returns 0 or an errno; `what` names the
  // failed step.
  int Open(const std::shared_ptr<QpRes>& q, const char** what);
  // Reads the { mr, offset?, slots, slotSize } option (receive WRs the caller already posted).
  void TakePostedRecvs(Napi::Env env, const Napi::Value& v);
  void Close();

  bool SqRoom(int wrs) const { return !failed && sqOutstanding + wrs <= static_cast<int>(maxSendWr); }
  // Posts a chain of n WRs whose last one is signalled, on behalf of connection connId (0: LLC).
  int PostChain(ibv_send_wr* first, int n, uint32_t connId, uint64_t prod);
  int SendLlc(const uint8_t* data, size_t len);

  void Attach(LinkConn* c);
  void Detach(LinkConn* c);
  void Expect(uint32_t token) { early.emplace(token, std::vector<std::vector<uint8_t>>()); }
  void Forget(uint32_t token) { early.erase(token); }

  // One received message (CDC or LLC); collects the connections it touched.
  void HandleMessage(const uint8_t* p, uint32_t len, std::vector<std::shared_ptr<LinkConn>>* touched);
  void OnCompletions(CqRes*, const ibv_wc* wc, int n) override;
  // Marks the link failed and tells every connection and the observer.
  void Fail(const std::string& reason);
  // Runs the touched connections and those waiting for send queue room, then flushes events.
  void Kick(std::vector<std::shared_ptr<LinkConn>>& touched);

 private:
  int PostRecv(int slot);
};

// The LinkCore behind a JS SmcLink, for DataPump's constructor.
std::shared_ptr<LinkCore> LinkCoreOf(Napi::Env env, const Napi::Value& v);
bool IsSmcLink(Napi::Env env, const Napi::Value& v);

}  // namespace smc
