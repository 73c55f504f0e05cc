#include "server/http_server.h"

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/peer.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/log.h"
#include "server/http_parser.h"
#include "server/internal/http_wire.h"

namespace geoledger::server {
namespace {

using namespace Pistache;
using internal::Outgoing;
using internal::RaiseListenBacklog;
using internal::Serialize;

constexpr char kConnData[] = "geoledger.conn";

// Answers one connection may have outstanding (being produced, waiting for
// an earlier one, or queued for a socket the client does not drain). A
// client that pipelines beyond this without reading gets 503 and a close,
// instead of making the server hold every answer in memory. Gateways send
// one request at a time per connection.
constexpr uint64_t kMaxOutstandingAnswers = 32;

// Bytes of answers one connection may have waiting for its socket to drain
// (beyond what the kernel holds) before a further request on it is refused
// the same way: answers are held in memory until the client reads them.
constexpr size_t kMaxPendingBytes = 4 << 20;

// Connections admitted beyond --max-connections for liveness probes only:
// each may ask GET (or HEAD) /healthz once and is closed after the answer;
// any other request on it gets the cap's 503. A connection flood would
// otherwise fail the probes of an orchestrator, which would restart a
// process that is alive and serving the connections it holds. When all of
// these places hold connections that have not sent a whole request, the
// oldest of them is closed to make room (ProbePlaces), so a flood of silent
// connections cannot keep a probe, which asks at once, out.
constexpr size_t kProbeConnections = 16;
// Beyond the cap plus this many (connections being closed to make room
// included), a connection is refused as soon as it is accepted. Each
// connection holds two descriptors (the library's and our duplicate), and
// the default cap, (limit - 256) / 2, leaves 256 for these and the rest of
// the process.
constexpr size_t kOverCapConnections = 64;

// A connection closed after an answer (a refusal, or a request that asked
// to close) is closed in stages (RFC 9112 §9.6): the server stops writing,
// so the client reads the answer and then the end of the stream, but goes
// on reading and dropping what the client still sends, until the client
// closes, kLingerBytes have been dropped or kLingerTime has passed. Closing
// at once with the client's bytes unread would reset the connection, and a
// reset can discard the answer before the client reads it: a client still
// sending a body refused by its Content-Length would lose its 413.
// Connections refused for a cap (too many open) close at once, and at most
// kMaxLingering connections linger at a time (beyond, they close at once):
// a lingering connection holds two descriptors and counts as open, so
// lingering must never be what keeps the cap reached.
constexpr std::chrono::seconds kLingerTime{5};
constexpr size_t kLingerBytes = 4 << 20;
constexpr size_t kMaxLingering = 64;

// Open connections per client address, kept only while a per-client cap is
// set. Thread-safe.
class ClientTally {
 public:
  // Counts one more connection from `host`; returns how many are open from it.
  size_t Add(const std::string& host) {
    std::lock_guard<std::mutex> lock(mu_);
    return ++open_[host];
  }
  void Remove(const std::string& host) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = open_.find(host);
    if (it != open_.end() && --it->second == 0) open_.erase(it);
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, size_t> open_;
};

struct ConnState;

// The connections admitted beyond the cap that have not yet sent their
// request (kProbeConnections). Thread-safe.
class ProbePlaces {
 public:
  enum class Admission { kRefused, kAdmitted, kAdmittedInPlaceOfAnother };
  // Takes a place for `conn`, closing the oldest silent holder that can be
  // closed here when all are taken (kAdmittedInPlaceOfAnother once it is).
  // kRefused (nothing taken) when none can (TLS: no descriptor of ours).
  Admission Admit(const std::shared_ptr<ConnState>& conn);

 private:
  std::mutex mu_;
  std::deque<std::weak_ptr<ConnState>> silent_;  // guarded by mu_; oldest first
};

// Writes what a socket did not take at once, as it drains: one thread for the
// server, waiting on an epoll set of the connections that have bytes left
// (our own descriptors, so it keeps working after Pistache has let go of a
// connection whose client half-closed). It holds each such connection until
// its bytes are out, or until `patience` passes without the client taking
// any (then the connection is shut). It also holds each connection that
// lingers after its last answer (kLingerTime) and ends the linger when the
// time is up.
//
// Locking: a ConnState calls Arm/Rearm/Disarm/Linger/Unlinger under its own
// mutex; the drainer's thread calls into a ConnState without holding the
// drainer's.
class Drainer {
 public:
  explicit Drainer(std::chrono::milliseconds patience);
  ~Drainer() { Stop(); }
  Drainer(const Drainer&) = delete;
  Drainer& operator=(const Drainer&) = delete;

  // Starts watching `fd` for writability on behalf of `conn` (id: the
  // connection's unique id). False when the descriptor cannot be watched.
  bool Arm(uint64_t id, int fd, std::shared_ptr<ConnState> conn);
  // Watches again after bytes went out (and restarts the patience).
  // `progress`: bytes went out, which restarts the patience.
  void Rearm(uint64_t id, int fd, bool progress);
  // Stops watching; the connection is released by the caller's reference.
  void Disarm(uint64_t id, int fd);
  // Holds a connection that lingers (kLingerTime): once the time is up, its
  // EndLinger runs. False when the drainer is stopped or already holds
  // kMaxLingering of them.
  bool Linger(uint64_t id, std::shared_ptr<ConnState> conn);
  // Stops holding a lingering connection (it ended first).
  void Unlinger(uint64_t id);
  // Connections with bytes still waiting for their socket.
  size_t Watching() {
    std::lock_guard<std::mutex> lock(mu_);
    return watched_.size();
  }
  // Stops the thread, and shuts and releases every connection still
  // watched (their waiting bytes are lost) or lingering. Idempotent.
  void Stop();

 private:
  struct Watched {
    std::shared_ptr<ConnState> conn;
    std::chrono::steady_clock::time_point deadline;
  };
  void Loop();

  const std::chrono::milliseconds patience_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::mutex mu_;
  std::unordered_map<uint64_t, Watched> watched_;  // guarded by mu_
  std::unordered_map<uint64_t, Watched> lingering_;  // guarded by mu_
  bool stopped_ = false;                           // guarded by mu_
  std::thread thread_;
};

// Per-connection state, kept in the peer's data map.
//
// Responses leave in request order (HTTP/1.1 pipelining) although a deferred
// response may complete on another thread after a later immediate one: each
// request takes a sequence number on the reactor thread, and a completed
// response is sent only when every earlier one has been.
//
// Sending. Pistache 0.0.5 routes every write through its transport's write
// queue: an eventfd wake-up of the reactor, then two epoll_ctl calls and an
// extra epoll round to wait for writability, per response. On a plain TCP
// connection we instead write the response directly with send(2), from
// whichever thread completed it, under `mu`. What the socket does not take
// at once waits in `pending`, which the Drainer writes as the socket drains;
// later responses queue behind it so the byte order is kept. (Pistache's
// queue was not used for it: the library discards that queue, unsent, when
// the client half-closes.) TLS connections always use the transport (the
// TLS session belongs to the reactor thread).
//
// The direct writes go to `fd`, our own dup(2) of the socket, held until this
// state is destroyed: Pistache may close its descriptor on the reactor thread
// at any time (hang-up, idle timeout), and the number could then be reused by
// a new connection; ours still names this connection's socket, so a late
// response can never reach another client. A plain TCP connection whose
// socket cannot be duplicated is not served (see RefuseWithoutDescriptor).
struct ConnState : std::enable_shared_from_this<ConnState> {
  ConnState(int socket_fd, bool tls, std::string host, HttpParserLimits limits,
            std::shared_ptr<std::atomic<size_t>> open_count, std::shared_ptr<ClientTally> client_tally,
            std::shared_ptr<Drainer> drainer_)
      : peer_host(std::move(host)), clients(std::move(client_tally)),
        client_open(clients ? clients->Add(peer_host) : 0), parser(limits), id(NextId()),
        fd(tls ? -1 : ::fcntl(socket_fd, F_DUPFD_CLOEXEC, 0)), open(std::move(open_count)),
        drainer(std::move(drainer_)) {
    open->fetch_add(1);
  }
  // Never while the Drainer watches it: it holds a reference until Disarm.
  ~ConnState() {
    if (fd >= 0) ::close(fd);
    open->fetch_sub(1);
    if (clients) clients->Remove(peer_host);
  }
  ConnState(const ConnState&) = delete;
  ConnState& operator=(const ConnState&) = delete;

  const std::string peer_host;  // remote address, for logs and the per-client cap
  const std::shared_ptr<ClientTally> clients;  // null without a per-client cap
  const size_t client_open;                    // connections open from peer_host, this one included (with a cap)
  // Reactor thread only:
  HttpRequestParser parser;
  bool clock_in_body = false;  // Pistache's parser was moved to its body step for this request
  bool probe_only = false;     // admitted beyond the cap for one /healthz (kProbeConnections)
  // Admitted beyond the cap and silent so far: cleared by the reactor thread
  // at the first request, or by ProbePlaces when it closes the connection.
  std::atomic<bool> awaiting_probe{false};
  // Read by the reactor thread: input that arrives once it is set is
  // dropped, never served. Set there by a request that asked to close or a
  // refusal, and by any thread once the answer that closes the connection
  // is being sent (before its bytes go out) or the connection is shut.
  std::atomic<bool> closing{false};
  // Cleared when the connection must close at once, without lingering (a
  // refusal for a cap, or one Pistache no longer reads). Any thread.
  std::atomic<bool> may_linger{true};

  // A sequence number for the next request. Reactor thread only.
  uint64_t TakeRequest() {
    std::lock_guard<std::mutex> lock(mu);
    continue_wanted = false;  // the request whose body was awaited is in
    return next_request++;
  }

  // Requests taken on this connection whose answers are not yet handed to
  // the kernel, each answer waiting for the socket included. Thread-safe.
  uint64_t Outstanding() {
    std::lock_guard<std::mutex> lock(mu);
    return OutstandingLocked();
  }
  // Whether the client is too far behind in reading its answers to take
  // another request: kMaxOutstandingAnswers outstanding, or more than
  // kMaxPendingBytes waiting for the socket. Thread-safe.
  bool TooFarBehind() {
    std::lock_guard<std::mutex> lock(mu);
    return OutstandingLocked() >= kMaxOutstandingAnswers || pending_bytes > kMaxPendingBytes;
  }

  // Sends "100 Continue" for the request whose body is awaited once every
  // earlier answer has been handed on (an interim answer must not overtake
  // them): now, or when the last of them goes out (unless the body, and so
  // the request, arrives first). Reactor thread.
  void Continue(const std::weak_ptr<Tcp::Peer>& peer) {
    std::vector<Async::Promise<ssize_t>> queued;
    std::vector<bool> close_after;
    {
      std::lock_guard<std::mutex> lock(mu);
      continue_wanted = true;
      MaybeContinue(peer, queued, close_after);
    }
    Attach(queued, close_after, peer);
  }

  // The client closed its side (or reset): Pistache has released, or is
  // about to release, the peer. Answers still being produced, and bytes not
  // yet written, then go out on our own descriptor, and the connection is
  // closed after the last. A client that half-closes after sending its
  // requests (shutdown(SHUT_WR), `nc -N`) gets every answer; for one that is
  // gone the writes fail quietly. Thread-safe.
  void PeerClosed() {
    std::lock_guard<std::mutex> lock(mu);
    peer_closed = true;
    continue_wanted = false;
    if (lingering) {  // the client closed: the staged close is over
      lingering = false;
      drainer->Unlinger(id);
    }
    if (next_to_send == next_request && in_transport == 0 && pending.empty() && !shut) Shut({});
  }

  // Queues response number `seq` and sends every response that is now next
  // in line. Thread-safe.
  void Complete(uint64_t seq, Outgoing out, const std::weak_ptr<Tcp::Peer>& peer) {
    std::vector<Async::Promise<ssize_t>> queued;
    std::vector<bool> close_after;
    {
      std::lock_guard<std::mutex> lock(mu);
      ready.emplace(seq, std::move(out));
      for (auto it = ready.begin(); it != ready.end() && it->first == next_to_send; it = ready.begin()) {
        Write(it->second, peer, queued, close_after);
        ready.erase(it);
        ++next_to_send;
      }
      MaybeContinue(peer, queued, close_after);
    }
    Attach(queued, close_after, peer);
  }

  // The Drainer: the socket can take more of `pending`. Drainer thread.
  void Drain() {
    std::vector<Async::Promise<ssize_t>> none;
    std::vector<bool> no_close;
    std::lock_guard<std::mutex> lock(mu);
    if (!armed) return;  // shut meanwhile
    while (!pending.empty()) {
      const size_t before = pending_off;
      const bool alive = SendNow(pending.front(), pending_off);
      pending_bytes -= pending_off - before;
      if (!alive) return Shut({});
      if (pending_off < pending.front().size()) return drainer->Rearm(id, fd, /*progress=*/pending_off > before);
      pending.pop_front();
      pending_off = 0;
    }
    armed = false;
    drainer->Disarm(id, fd);
    if (close_when_drained) return Shut({}, /*linger=*/true);
    if (peer_closed && next_to_send == next_request) return Shut({});
    MaybeContinue({}, none, no_close);
  }

  // The Drainer: the client took nothing for the keep-alive timeout.
  // Drainer thread.
  void Abandon() {
    std::lock_guard<std::mutex> lock(mu);
    if (armed) Shut({});
  }

  // The lingering time is up (the Drainer). Drainer thread.
  void EndLinger() {
    std::lock_guard<std::mutex> lock(mu);
    if (lingering) EndLingerLocked();
  }

  // The client sent `n` bytes after the connection began to close; they are
  // dropped. Reactor thread.
  void Dropped(size_t n) {
    std::lock_guard<std::mutex> lock(mu);
    dropped += n;
    if (lingering && dropped > kLingerBytes) EndLingerLocked();
  }

  // Whether this connection has a descriptor of our own: with plain TCP
  // unless duplicating the socket failed (the process is out of
  // descriptors); never with TLS. Only then can HangUp close it (TLS writes
  // through the library's descriptor only).
  bool HasOwnDescriptor() const { return fd >= 0; }
  // Closes a connection that has sent nothing, without an answer
  // (ProbePlaces); its reactor sees the hang-up and releases it. Any thread.
  void HangUp() {
    std::lock_guard<std::mutex> lock(mu);
    if (!shut && fd >= 0) Shut({});
  }

 private:
  // Under mu: the staged close ends; the transport sees the hang-up and
  // releases the peer. Once the client has every byte of the answers
  // (nothing unacknowledged in the socket's send queue), the socket's last
  // close resets the connection (a zero SO_LINGER). An orderly close would
  // not do: once reading is shut the kernel no longer reopens the receive
  // window, and a client whose window was full when it happened would wait
  // with its bytes unsent, the connection half-closed, for the orphaned
  // socket's FIN-WAIT-2 timeout (60 s) instead of learning at once that
  // nothing more is read. While answer bytes are still on their way (a slow
  // reader, or a stop during a drain) the close stays orderly: a reset would
  // discard them.
  void EndLingerLocked() {
    lingering = false;
    drainer->Unlinger(id);
    int unsent = -1;
    if (::ioctl(fd, SIOCOUTQ, &unsent) == 0 && unsent == 0) {
      const linger reset{1, 0};
      (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    }
    ::shutdown(fd, SHUT_RDWR);
  }

  // Under mu: see Outstanding.
  uint64_t OutstandingLocked() const { return next_request - next_to_send + in_transport + pending.size(); }

  static uint64_t NextId() {
    static std::atomic<uint64_t> next{1};
    return next.fetch_add(1);
  }

  // A transport write may already be done and would run its continuation
  // right here: attach them without holding `mu`.
  void Attach(std::vector<Async::Promise<ssize_t>>& queued, const std::vector<bool>& close_after,
              const std::weak_ptr<Tcp::Peer>& peer) {
    for (size_t i = 0; i < queued.size(); ++i) {
      auto self = shared_from_this();
      const bool close = close_after[i];
      auto done = [self, close, peer](bool ok) {
        std::vector<Async::Promise<ssize_t>> more;
        std::vector<bool> more_close;
        {
          std::lock_guard<std::mutex> lock(self->mu);
          --self->in_transport;
          if ((close || !ok) && !self->shut) self->Shut(peer);
          self->MaybeContinue(peer, more, more_close);  // a "100 Continue" held back by this answer
        }
        self->Attach(more, more_close, peer);
      };
      queued[i].then([done](ssize_t) { done(true); }, [done](std::exception_ptr) { done(false); });
    }
  }

  // Under mu: the deferred "100 Continue", if its time has come.
  void MaybeContinue(const std::weak_ptr<Tcp::Peer>& peer, std::vector<Async::Promise<ssize_t>>& queued,
                     std::vector<bool>& close_after) {
    if (!continue_wanted || shut || peer_closed || next_to_send != next_request || in_transport != 0 ||
        !pending.empty())
      return;
    continue_wanted = false;
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    if (fd < 0) return WriteWire(std::string(kContinue), /*close=*/false, peer, queued, close_after);
    // Best effort: if the socket takes none of it, it is not sent (the
    // client sends its body after its own wait), rather than queued where
    // it could reach the client after Pistache's 408 for the same request.
    size_t off = 0;
    if (!SendNow(kContinue, off)) return Shut(peer);
    if (off > 0 && off < kContinue.size()) QueueRest(std::string(kContinue), off, /*close=*/false, peer);
  }

  // Under mu.
  void Write(const Outgoing& out, const std::weak_ptr<Tcp::Peer>& weak,
             std::vector<Async::Promise<ssize_t>>& queued, std::vector<bool>& close_after) {
    // Nothing after an answer that closes the connection, whether or not its
    // bytes are still waiting for the socket.
    if (shut || close_when_drained) return;
    const bool last = next_to_send + 1 == next_request;
    const bool keep = out.keep_alive && !(out.response.close_when_last && last);
    if (peer_closed) {
      // Pistache no longer serves this connection; our descriptor still
      // names its socket (without one, as with TLS, nothing more goes out).
      if (fd < 0) return Shut(weak);
      return WriteWire(Serialize(out, keep), !keep || last, weak, queued, close_after);
    }
    if (weak.expired()) {
      // Pistache's idle sweep closed the connection while this answer was
      // being produced (it took longer than the keep-alive timeout): the
      // answer is dropped, and the connection closed once bytes of earlier
      // answers still waiting for the socket are out.
      if (pending.empty()) return Shut(weak);
      close_when_drained = true;
      may_linger.store(false);  // nobody reads what the client sends now
      return;
    }
    WriteWire(Serialize(out, keep), !keep, weak, queued, close_after);
  }

  // Under mu: `wire` goes out with send(2) on our descriptor, what the
  // socket does not take now through the Drainer; with TLS, through the
  // transport's queue while the peer is open. `close`: the connection is
  // closed once `wire` is out.
  void WriteWire(std::string wire, bool close, const std::weak_ptr<Tcp::Peer>& weak,
                 std::vector<Async::Promise<ssize_t>>& queued, std::vector<bool>& close_after) {
    // Before the bytes go out: a request the client sends once it has read
    // this answer must find the connection closing.
    if (close) closing.store(true, std::memory_order_release);
    if (fd >= 0) {
      if (!pending.empty()) {  // behind bytes still waiting: keep the order
        pending_bytes += wire.size();
        pending.push_back(std::move(wire));
        close_when_drained = close_when_drained || close;
        return;
      }
      size_t off = 0;
      if (!SendNow(wire, off)) return Shut(weak);  // the peer is gone
      if (off == wire.size()) {
        if (close) Shut(weak, /*linger=*/true);
        return;
      }
      return QueueRest(std::move(wire), off, close, weak);
    }
    auto peer = weak.lock();
    if (!peer) return;  // the connection was closed: nothing is written
    ++in_transport;
    const size_t size = wire.size();
    queued.push_back(peer->send(Pistache::RawBuffer(std::move(wire), size)));
    close_after.push_back(close);
  }

  // Under mu, with nothing pending: `wire` from `off` on waits for the
  // socket, and the Drainer watches it. `close`: close once it is out.
  void QueueRest(std::string wire, size_t off, bool close, const std::weak_ptr<Tcp::Peer>& weak) {
    pending_bytes = wire.size() - off;
    pending_off = off;
    pending.push_back(std::move(wire));
    close_when_drained = close;
    if (!drainer->Arm(id, fd, shared_from_this())) return Shut(weak);
    armed = true;
  }

  // Under mu, with our descriptor: sends `wire` from `off` on, as far as the
  // socket takes it now, advancing `off`. False when the connection failed
  // (the peer is gone).
  bool SendNow(std::string_view wire, size_t& off) {
    while (off < wire.size()) {
      ssize_t n = ::send(fd, wire.data() + off, wire.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) off += static_cast<size_t>(n);
      else if (n < 0 && errno == EINTR) continue;
      else return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);  // full: true, with `off` short
    }
    return true;
  }

  // Under mu. shutdown(2) makes the transport see a hang-up and release the
  // peer itself; nothing more is written on this connection, and bytes still
  // waiting are dropped. `linger`: the last answer went out whole and the
  // client may still be sending, so only writing stops, and the connection
  // lingers (kLingerTime) unless the client already closed its side. Without
  // our own descriptor (TLS) this runs only from a transport write's
  // continuation, on the reactor thread, where the peer's descriptor is
  // still its own, and never lingers (the linger's end would have to shut the
  // library's descriptor from another thread). The caller holds a reference
  // to this state, so the Drainer's, released here, is never the last.
  void Shut(const std::weak_ptr<Tcp::Peer>& weak, bool linger = false) {
    shut = true;
    closing.store(true, std::memory_order_release);
    pending.clear();
    pending_off = pending_bytes = 0;
    if (armed) {
      armed = false;
      drainer->Disarm(id, fd);
    }
    if (fd >= 0) {
      if (linger && !peer_closed && dropped <= kLingerBytes && may_linger.load() &&
          drainer->Linger(id, shared_from_this())) {
        lingering = true;
        ::shutdown(fd, SHUT_WR);
      } else {
        ::shutdown(fd, SHUT_RDWR);
      }
    } else if (auto p = weak.lock()) {
      ::shutdown(p->fd(), SHUT_RDWR);
    }
  }

  const uint64_t id;  // names this connection to the Drainer
  const int fd;       // our dup of the socket; -1 with TLS (or when dup failed: then refused)
  const std::shared_ptr<std::atomic<size_t>> open;  // connections whose state is alive, this one included
  const std::shared_ptr<Drainer> drainer;
  std::mutex mu;
  uint64_t next_to_send = 0;           // guarded by mu
  uint64_t next_request = 0;           // guarded by mu
  std::map<uint64_t, Outgoing> ready;  // guarded by mu
  size_t in_transport = 0;             // guarded by mu: TLS responses queued in the transport, not yet written
  // Guarded by mu: answers the socket has not taken yet, whole, the first
  // from pending_off on; pending_bytes of them in all.
  std::deque<std::string> pending;
  size_t pending_off = 0;
  size_t pending_bytes = 0;
  bool close_when_drained = false;     // guarded by mu: close once `pending` is out
  bool armed = false;                  // guarded by mu: the Drainer watches this connection
  bool continue_wanted = false;        // guarded by mu: a "100 Continue" waits for earlier answers
  bool shut = false;                   // guarded by mu
  bool lingering = false;              // guarded by mu: shut for writing only, the Drainer holds it (kLingerTime)
  size_t dropped = 0;                  // guarded by mu: bytes received after the connection began to close
  bool peer_closed = false;            // guarded by mu: see PeerClosed
};

// ---- Drainer ----------------------------------------------------------------

Drainer::Drainer(std::chrono::milliseconds patience)
    : patience_(patience), epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)), wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (epoll_fd_ >= 0 && wake_fd_ >= 0) {
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = 0;  // connection ids start at 1
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &e) == 0) {
      thread_ = std::thread([this] { Loop(); });
      return;
    }
  }
  stopped_ = true;  // Arm refuses: such connections are shut instead of stalled
}

bool Drainer::Arm(uint64_t id, int fd, std::shared_ptr<ConnState> conn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return false;
  epoll_event e{};
  e.events = EPOLLOUT | EPOLLONESHOT;
  e.data.u64 = id;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &e) != 0 &&
      (errno != EEXIST || ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &e) != 0))
    return false;
  watched_[id] = Watched{std::move(conn), std::chrono::steady_clock::now() + patience_};
  return true;
}

void Drainer::Rearm(uint64_t id, int fd, bool progress) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = watched_.find(id);
  if (stopped_ || it == watched_.end()) return;
  if (progress) it->second.deadline = std::chrono::steady_clock::now() + patience_;
  epoll_event e{};
  e.events = EPOLLOUT | EPOLLONESHOT;
  e.data.u64 = id;
  (void)::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &e);
}

void Drainer::Disarm(uint64_t id, int fd) {
  std::shared_ptr<ConnState> released;  // dropped after the lock (never the last: see ConnState::Shut)
  std::lock_guard<std::mutex> lock(mu_);
  auto it = watched_.find(id);
  if (it == watched_.end()) return;
  if (!stopped_) (void)::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  released = std::move(it->second.conn);
  watched_.erase(it);
}

bool Drainer::Linger(uint64_t id, std::shared_ptr<ConnState> conn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_ || lingering_.size() >= kMaxLingering) return false;
  lingering_[id] = Watched{std::move(conn), std::chrono::steady_clock::now() + kLingerTime};
  return true;
}

void Drainer::Unlinger(uint64_t id) {
  std::shared_ptr<ConnState> released;  // dropped after the lock (never the last: the caller holds one)
  std::lock_guard<std::mutex> lock(mu_);
  auto it = lingering_.find(id);
  if (it == lingering_.end()) return;
  released = std::move(it->second.conn);
  lingering_.erase(it);
}

void Drainer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopped_ && wake_fd_ >= 0) {
      const uint64_t one = 1;
      (void)!::write(wake_fd_, &one, sizeof one);
    }
    stopped_ = true;
  }
  if (thread_.joinable()) {
    // The last reference to the drainer could in principle be dropped on its
    // own thread (a connection released there): never join oneself.
    if (thread_.get_id() == std::this_thread::get_id())
      thread_.detach();
    else
      thread_.join();
  }
  std::unordered_map<uint64_t, Watched> released, lingered;
  {
    std::lock_guard<std::mutex> lock(mu_);
    released.swap(watched_);
    lingered.swap(lingering_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    epoll_fd_ = wake_fd_ = -1;
  }
  // Outside the lock (Abandon's Disarm takes it): the clients see the
  // connection close instead of waiting for bytes that never come.
  for (auto& [id, w] : released) w.conn->Abandon();
  for (auto& [id, w] : lingered) w.conn->EndLinger();
}

void Drainer::Loop() {
  constexpr int kMaxEvents = 64;
  epoll_event events[kMaxEvents];
  while (true) {
    // Deadlines are checked at least every 250 ms.
    const int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, 250);
    std::vector<std::shared_ptr<ConnState>> writable, expired, lingered;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      std::vector<uint64_t> ready_ids;
      for (int i = 0; i < n; ++i) {
        const uint64_t id = events[i].data.u64;
        if (id == 0) continue;
        auto it = watched_.find(id);
        if (it == watched_.end()) continue;
        writable.push_back(it->second.conn);
        ready_ids.push_back(id);
      }
      // With a full batch, other connections may be writable too: their
      // deadlines wait for a round that reports them all.
      const auto now = std::chrono::steady_clock::now();
      if (n < kMaxEvents)
        for (const auto& [id, w] : watched_)
          if (w.deadline <= now && std::find(ready_ids.begin(), ready_ids.end(), id) == ready_ids.end())
            expired.push_back(w.conn);
      for (auto it = lingering_.begin(); it != lingering_.end();) {
        if (it->second.deadline > now) {
          ++it;
          continue;
        }
        lingered.push_back(std::move(it->second.conn));
        it = lingering_.erase(it);
      }
    }
    for (const auto& c : writable) c->Drain();
    for (const auto& c : expired) c->Abandon();
    for (const auto& c : lingered) c->EndLinger();
  }
}

ProbePlaces::Admission ProbePlaces::Admit(const std::shared_ptr<ConnState>& conn) {
  std::vector<std::shared_ptr<ConnState>> held;  // released after the lock
  std::shared_ptr<ConnState> evicted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = silent_.begin(); it != silent_.end();) {
      auto c = it->lock();
      if (c && c->awaiting_probe.load()) {
        held.push_back(std::move(c));
        ++it;
      } else {
        it = silent_.erase(it);
      }
    }
    if (silent_.size() >= kProbeConnections) {
      auto closable = std::find_if(held.begin(), held.end(), [](const auto& c) { return c->HasOwnDescriptor(); });
      if (closable == held.end()) return Admission::kRefused;
      evicted = *closable;
      silent_.erase(silent_.begin() + (closable - held.begin()));
    }
    conn->awaiting_probe.store(true);
    silent_.push_back(conn);
  }
  // Its reactor sees the hang-up and releases it. One whose request arrived
  // meanwhile (its reactor cleared the flag first) is left to be answered.
  if (evicted && evicted->awaiting_probe.exchange(false)) {
    evicted->HangUp();
    return Admission::kAdmittedInPlaceOfAnother;
  }
  return Admission::kAdmitted;
}

struct FrontendLimits {
  Dispatcher* dispatcher;
  size_t max_header_bytes;
  size_t max_body_bytes;
  HttpMetrics* metrics;    // may be null
  size_t max_connections;  // 0: no cap
  size_t max_connections_per_client;  // 0: no cap
  std::shared_ptr<Drainer> drainer;
  std::shared_ptr<std::atomic<size_t>> open = std::make_shared<std::atomic<size_t>>(0);
  std::shared_ptr<ClientTally> clients =  // kept only with a per-client cap
      max_connections_per_client > 0 ? std::make_shared<ClientTally>() : nullptr;
  std::shared_ptr<ProbePlaces> probe_places = std::make_shared<ProbePlaces>();
};

// Pistache 0.0.5's idle sweep (every 500 ms) reads each connection's
// Http::RequestParser: its clock (restarted by reset()) and its step, to
// apply the header, body and keep-alive timeouts and answer 408. We frame
// requests with our own parser, and keep Pistache's only as that clock: it is
// reset at the first byte of each request and, once a request's head is in
// and its body is awaited, moved to its body step by feeding it this head;
// once the whole request is in it is reset again and the peer marked idle
// (keep-alive timeout) until the next request's first byte.
constexpr std::string_view kBodyStepHead = "POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\n";

class Frontend final : public Http::Handler {
 public:
  HTTP_PROTOTYPE(Frontend)

  explicit Frontend(std::shared_ptr<const FrontendLimits> limits) : limits_(std::move(limits)) {}

  void onConnection(const std::shared_ptr<Tcp::Peer>& peer) override {
    // Every answer is one write, so Nagle's algorithm only ever delays one:
    // the second of two answers sent back to back (pipelined requests, or a
    // deferred answer released together with the next) would wait for the
    // client's ACK of the first, which a client with nothing to send delays
    // by about 40 ms.
    const int one = 1;
    (void)::setsockopt(peer->fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    peer->putData(ParserData, std::make_shared<Http::RequestParser>(kBodyStepHead.size()));
    auto conn = std::make_shared<ConnState>(peer->fd(), peer->ssl() != nullptr, peer->address().host(),
                                            HttpParserLimits{limits_->max_header_bytes, limits_->max_body_bytes},
                                            limits_->open, limits_->clients, limits_->drainer);
    peer->putData(kConnData, conn);
    if (limits_->metrics != nullptr) limits_->metrics->ConnectionAccepted();
    if (peer->ssl() == nullptr && !conn->HasOwnDescriptor()) return RefuseWithoutDescriptor(peer, conn);
    const size_t open = limits_->open->load();
    if (limits_->max_connections > 0 && open > limits_->max_connections) {
      using Admission = ProbePlaces::Admission;
      const Admission a = open > limits_->max_connections + kOverCapConnections
                              ? Admission::kRefused
                              : limits_->probe_places->Admit(conn);
      if (a == Admission::kRefused) return RefuseOverCap(peer, conn);
      conn->probe_only = true;
      conn->may_linger.store(false);  // a place beyond the cap is freed at once
      // The connection closed to make room counts as refused.
      if (a == Admission::kAdmittedInPlaceOfAnother && limits_->metrics != nullptr)
        limits_->metrics->ConnectionRefused();
    } else if (limits_->max_connections_per_client > 0 && conn->client_open > limits_->max_connections_per_client) {
      if (limits_->metrics != nullptr) limits_->metrics->ConnectionRefusedPerClient();
      conn->may_linger.store(false);  // a refusal for a cap frees its place at once
      Fail(peer, conn, 503, "too many open connections from this client address; retry", /*retry_after_s=*/1);
    }
  }

  void onInput(const char* buffer, size_t len, const std::shared_ptr<Tcp::Peer>& peer) override {
    auto conn = std::static_pointer_cast<ConnState>(peer->getData(kConnData));
    // A connection that is closing serves nothing more: a request that
    // asked to close, a refusal, or an answer the dispatcher closed with
    // (while draining) came before.
    if (conn->closing.load(std::memory_order_acquire)) return conn->Dropped(len);
    auto clock = getParser(peer);
    const bool was_idle = conn->parser.idle();
    conn->parser.Append(buffer, len);
    if (was_idle && !conn->parser.idle()) {
      // First bytes of a new request: the header and body timeouts start now,
      // not when the previous response went out, and the keep-alive idle
      // timeout no longer applies; unless an earlier answer is outstanding
      // (see HoldsRequestClock). Empty lines before a request are not its
      // first bytes (the parser drops them): they leave the connection on
      // its keep-alive timeout, still counted from the last request, so a
      // client cannot hold a connection by sending one now and then.
      clock->reset();
      conn->clock_in_body = false;
      peer->setIdle(HoldsRequestClock(*conn));
    }
    while (true) {
      HttpRequest in;
      bool keep_alive = false, http10 = false;
      switch (conn->parser.Next(&in, &keep_alive, &http10)) {
        case HttpRequestParser::Result::kNeedMore:
          if (conn->probe_only && conn->parser.in_body()) {
            // A probe place serves one GET or HEAD of /healthz, which has no
            // body: a request with one is refused before any of it is
            // read, and without "100 Continue".
            if (!conn->awaiting_probe.exchange(false)) return;
            return RefuseOverCap(peer, conn, &conn->parser.head(), conn->parser.head_http10());
          }
          if (conn->parser.TakeContinue()) conn->Continue(peer);
          if (conn->parser.in_body() && !conn->clock_in_body) {
            clock->feed(kBodyStepHead.data(), kBodyStepHead.size());
            (void)clock->parse();
            conn->clock_in_body = true;
          }
          return;
        case HttpRequestParser::Result::kBadRequest:
          return Fail(peer, conn, 400, conn->parser.error());
        case HttpRequestParser::Result::kHeadersTooLarge:
          return Fail(peer, conn, 431, conn->parser.error());
        case HttpRequestParser::Result::kBodyTooLarge:
          return Fail(peer, conn, 413, conn->parser.error());
        case HttpRequestParser::Result::kRequest:
          break;
      }
      if (conn->TooFarBehind())
        return Fail(peer, conn, 503, "too many pipelined requests without reading the answers",
                    /*retry_after_s=*/1, &in, http10);
      if (conn->probe_only) {
        // Closed to make room for a newer one: its request is not answered.
        if (!conn->awaiting_probe.exchange(false)) return;
        if ((in.method != "GET" && in.method != "HEAD") || in.path != "/healthz")
          return RefuseOverCap(peer, conn, &in, http10);
        keep_alive = false;  // one probe per admitted connection
      }
      in.peer = conn->peer_host;
      Serve(std::move(in), keep_alive, http10, peer, conn);
      // Its answer (made on this thread) closed the connection: what the
      // client pipelined behind it is not served.
      if (conn->closing.load(std::memory_order_acquire)) return;
      // The request is in: the client's header and body timeouts no longer
      // apply to it, however long its answer takes (an export, a shred, a
      // queued policy write). Until the next request's first byte the
      // connection is idle, so only the keep-alive timeout, counted from
      // now, applies (Pistache's sweep drops an idle connection silently
      // once it runs out; an answer still being produced is then lost).
      // Set here, on the reactor thread, never where an answer completes.
      clock->reset();
      conn->clock_in_body = false;
      if (!keep_alive) {
        // The client closes after this request (RFC 9112 §9.6): anything it
        // pipelined behind it is neither run nor answered.
        conn->closing = true;
        peer->setIdle(true);
        return;
      }
      // Idle unless a pipelined request's bytes are already here (empty
      // lines after this request are not); their header timeout starts now
      // (unless this answer is still outstanding).
      peer->setIdle(conn->parser.idle() || HoldsRequestClock(*conn));
    }
  }

  // The client closed its side, or reset (never called for the idle sweep's
  // closes): answers still being produced go out on our descriptor.
  void onDisconnection(const std::shared_ptr<Tcp::Peer>& peer) override {
    if (auto conn = std::static_pointer_cast<ConnState>(peer->tryGetData(kConnData))) conn->PeerClosed();
  }

  // Not reached: onInput serves requests itself, and Pistache 0.0.5's idle
  // sweep answers 408 and closes without calling onTimeout.
  void onRequest(const Http::Request&, Http::ResponseWriter writer) override {
    writer.send(Http::Code::Bad_Request);
  }
  void onTimeout(const Http::Request&, Http::ResponseWriter writer) override {
    writer.send(Http::Code::Request_Timeout);
  }

 private:
  // Whether a request begun now is held by the keep-alive timeout rather
  // than the header and body timeouts: when an earlier answer on the
  // connection is still outstanding. Pistache's sweep writes its 408 outside
  // our answer ordering, ahead of that answer, and a client matching answers
  // by order would take it for the earlier request's; so such a request is
  // never answered 408, and a client that stalls in it loses the connection
  // at the keep-alive timeout instead.
  static bool HoldsRequestClock(ConnState& conn) { return conn.Outstanding() > 0; }

  // A plain TCP connection whose socket could not be duplicated (the process
  // is out of descriptors) is closed without an answer, counted as refused.
  // Its answers could only go through the library's write queue, which
  // names a connection by its descriptor number: one completed after the
  // connection closed would reach whichever new connection was given that
  // number. Nothing at all is written, not even the cap's 503, since that
  // would go the same way. Runs on the reactor thread within onConnection,
  // where the peer's descriptor is still its own; its reactor sees the
  // shutdown and releases the peer.
  void RefuseWithoutDescriptor(const std::shared_ptr<Tcp::Peer>& peer, const std::shared_ptr<ConnState>& conn) {
    conn->closing = true;
    if (limits_->metrics != nullptr) limits_->metrics->ConnectionRefused();
    ::shutdown(peer->fd(), SHUT_RDWR);
  }

  // `in`: the parsed request refused, if any (see Fail).
  void RefuseOverCap(const std::shared_ptr<Tcp::Peer>& peer, const std::shared_ptr<ConnState>& conn,
                     const HttpRequest* in = nullptr, bool http10 = false) {
    if (limits_->metrics != nullptr) limits_->metrics->ConnectionRefused();
    conn->may_linger.store(false);  // a refusal for a cap frees its place at once
    Fail(peer, conn, 503, "too many open connections; retry", /*retry_after_s=*/1, in, http10);
  }

  // Answers a problem document with `status` and closes the connection. `in`
  // is the parsed request refused: its answer follows its version and, for
  // HEAD, carries no body. Without one (bytes that never made a request, or
  // none yet) the answer is HTTP/1.1 with a body.
  // The close is staged (kLingerTime) unless the caller cleared
  // conn->may_linger.
  void Fail(const std::shared_ptr<Tcp::Peer>& peer, const std::shared_ptr<ConnState>& conn, int status,
            const std::string& detail, int retry_after_s = 0, const HttpRequest* in = nullptr, bool http10 = false) {
    conn->closing = true;
    // Only the keep-alive timeout applies from now on: the header and body
    // timeouts would have Pistache write its 408 after this answer.
    peer->setIdle(true);
    conn->awaiting_probe.store(false);  // answered: no longer a silent probe place to close
    HttpResponse r = limits_->dispatcher->Reject(status, detail, conn->peer_host);
    if (retry_after_s > 0) r.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
    Outgoing out{std::move(r), /*keep_alive=*/false,
                 in != nullptr && http10 ? Http::Version::Http10 : Http::Version::Http11};
    out.head = in != nullptr && in->method == "HEAD";
    conn->Complete(conn->TakeRequest(), std::move(out), peer);
  }

  void Serve(HttpRequest in, bool keep_alive, bool http10, const std::shared_ptr<Tcp::Peer>& peer,
             const std::shared_ptr<ConnState>& conn) {
    const uint64_t seq = conn->TakeRequest();
    // The answer may complete on another thread (deferred routes); the peer
    // is held only weakly, so a closed connection drops the answer.
    std::weak_ptr<Tcp::Peer> weak = peer;
    const Http::Version version = http10 ? Http::Version::Http10 : Http::Version::Http11;
    const bool head = in.method == "HEAD";
    limits_->dispatcher->HandleAsync(std::move(in), [conn, seq, weak, keep_alive, version, head](HttpResponse out) {
      bool keep = keep_alive && !out.close_connection;
      conn->Complete(seq, Outgoing{std::move(out), keep, version, head}, weak);
    });
  }

  std::shared_ptr<const FrontendLimits> limits_;
};

}  // namespace

struct HttpServer::Impl {
  std::unique_ptr<Http::Endpoint> endpoint;
  std::shared_ptr<Drainer> drainer;
  bool stopped = false;
};

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& o, Dispatcher* dispatcher) {
  auto limits = std::make_shared<FrontendLimits>(
      FrontendLimits{dispatcher, o.max_header_bytes, o.max_body_bytes, o.metrics, o.max_connections,
                     o.max_connections_per_client,
                     // A client that takes none of its answers' bytes for the
                     // keep-alive timeout loses the connection, as an idle one does.
                     std::make_shared<Drainer>(o.keepalive_timeout)});
  if (o.metrics != nullptr)
    o.metrics->AddCollector([open = limits->open](std::string& out) {
      AppendMetric(out, "geoledger_http_connections_open", "gauge",
                   "Connections open now (including closed ones whose last answer is still being produced).",
                   static_cast<uint64_t>(open->load()));
    });
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->impl_ = std::make_unique<Impl>();
  server->impl_->drainer = limits->drainer;
  try {
    Address addr(o.host, Port(o.port));
    auto endpoint = std::make_unique<Http::Endpoint>(addr);
    auto opts = Http::Endpoint::options()
                    .threads(o.threads)
                    .flags(Tcp::Options::ReuseAddr)
                    .maxRequestSize(o.max_header_bytes + o.max_body_bytes)
                    .headerTimeout(o.header_timeout)
                    .bodyTimeout(o.body_timeout)
                    .keepaliveTimeout(o.keepalive_timeout);
    endpoint->init(opts);
    endpoint->setHandler(std::make_shared<Frontend>(limits));
    if (!o.tls_cert.empty()) {
      endpoint->useSSL(o.tls_cert, o.tls_key);
      if (!o.tls_client_ca.empty()) endpoint->useSSLAuth(o.tls_client_ca);
    }
    // serveThreaded() binds the socket itself; an earlier bind() would leave a
    // second, never-accepted listening socket behind.
    endpoint->serveThreaded();
    server->port_ = static_cast<uint16_t>(endpoint->getPort());
    if (!RaiseListenBacklog(server->port_))
      log::Warn("could not raise the listen backlog; bursts of connects beyond 128 may wait 1 s",
                {{"port", server->port_}});
    server->impl_->endpoint = std::move(endpoint);
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (!o.tls_cert.empty() && what.find("SSL") != std::string::npos)
      return InvalidArgument("TLS setup failed: " + what);
    return Unavailable("cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " + what);
  }
  return server;
}

size_t HttpServer::WaitForQueuedWrites(std::chrono::steady_clock::time_point deadline) {
  if (!impl_ || !impl_->drainer) return 0;
  size_t left;
  while ((left = impl_->drainer->Watching()) > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return left;
}

void HttpServer::Stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  if (impl_->endpoint) impl_->endpoint->shutdown();
  if (impl_->drainer) impl_->drainer->Stop();
}

HttpServer::~HttpServer() { Stop(); }

}  // namespace geoledger::server
