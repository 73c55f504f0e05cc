// The durability floor of this machine, for the sync-audited gateway check.
//
//   durable_floor serve --log FILE [--design leader|syncer] [--threads 2]
//                       [--record-bytes 300] [--port-file FILE] [--no-sync]
//   durable_floor fsync --log FILE [--count 2000] [--record-bytes 300]
//
// `serve` is a minimal server that answers an HTTP request only once a record
// of it is on the disk: it parses nothing but the end of each request's
// headers, appends one record per request to FILE and answers 200 (with the
// gateway check's headers, no body) once an fdatasync that covers the record
// has returned. No routing, no authorisation, no decision, no hashing, no
// storage engine. Each of `--threads` reactor threads reads what one epoll
// round brings and writes the records of all of it in one write(2). Two
// designs make them durable:
//   leader  nothing is handed between threads: the reactor syncs itself, one
//           at a time (leader and follower: a reactor whose records a running
//           sync does not cover waits for it, then syncs everything written
//           by then), and answers;
//   syncer  reactors never wait: a sync thread syncs whatever has been written
//           as long as there is any, and after each sync wakes the reactors
//           (an eventfd each), which answer what it covered. Batches grow
//           while a sync runs; the hand-off is one wake-up per sync, not per
//           request.
// The better of the two next to nginx, with the same wrk settings, is what
// this disk leaves to a sync-audited check: geoledgerd does all of this and
// its own work besides. `--no-sync` skips the fdatasync (leader design: the
// same server without the disk). It listens on 127.0.0.1 on a free port,
// written to --port-file; SIGTERM or SIGINT ends it, printing
// "floor(DESIGN): R records in S syncs (B per sync)".
//
// `fsync` appends `--record-bytes` to FILE and fdatasyncs, `--count` times,
// one after another, then removes FILE and prints
// "fdatasync: n=.. p50=..us p90=..us p99=..us max=..us".
//
// Only GET requests without a body are understood (wrk's and open_loop's);
// loopback only. Used by bench/gateway_sync_floor.sh.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

constexpr std::string_view kAnswer =
    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Residency-Region: eu-west-1\r\n"
    "X-Residency-Decision-Id: 0123456789abcdef0123456789abcdef\r\n"
    "Cache-Control: private, max-age=5\r\n\r\n";

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "durable_floor: %s: %s\n", what, std::strerror(errno));
  std::_Exit(1);
}

// Appends to one file and makes what was appended durable. Exits the process
// on an I/O error: a floor that lost records would measure nothing.
class Log {
 public:
  Log(int fd, bool sync) : fd_(fd), sync_(sync) {}

  // Appends `bytes` and returns their sequence number (1, 2, ...).
  uint64_t Write(const std::string& bytes, uint64_t records) {
    std::lock_guard<std::mutex> lock(mu_);
    if (::write(fd_, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) Die("write");
    records_ += records;
    ++written_;
    cv_.notify_all();  // a sync thread waiting for work
    return written_;
  }

  // Leader design: returns once write `seq` is durable, syncing itself
  // unless a sync that started after that write is running.
  void SyncThrough(uint64_t seq) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!sync_) return;
    while (synced_ < seq) {
      if (syncing_) {
        cv_.wait(lock);
        continue;
      }
      SyncLocked(lock);
    }
  }

  // Syncer design: syncs everything written so far, waiting for a write when
  // there is none; returns the sequence number now durable, or 0 once
  // `stop` is set.
  uint64_t SyncNext(const std::atomic<bool>& stop) {
    std::unique_lock<std::mutex> lock(mu_);
    while (written_ == synced_ && !stop.load()) cv_.wait_for(lock, std::chrono::milliseconds(100));
    if (written_ == synced_) return 0;
    SyncLocked(lock);
    return synced_;
  }

  uint64_t synced() const { return synced_seen_.load(std::memory_order_acquire); }

  void Report(const char* design) {
    std::lock_guard<std::mutex> lock(mu_);
    std::printf("floor(%s): %llu records in %llu syncs (%.1f per sync)\n", design,
                static_cast<unsigned long long>(records_), static_cast<unsigned long long>(syncs_),
                syncs_ ? static_cast<double>(records_) / syncs_ : 0.0);
    std::fflush(stdout);
  }

 private:
  // Under mu_ (released while the disk works): syncs every write made so far.
  void SyncLocked(std::unique_lock<std::mutex>& lock) {
    syncing_ = true;
    const uint64_t covers = written_;
    lock.unlock();
    if (sync_ && ::fdatasync(fd_) != 0) Die("fdatasync");
    lock.lock();
    synced_ = covers;
    synced_seen_.store(covers, std::memory_order_release);
    syncing_ = false;
    ++syncs_;
    cv_.notify_all();
  }

  const int fd_;
  const bool sync_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t written_ = 0, synced_ = 0, syncs_ = 0, records_ = 0;  // guarded by mu_
  bool syncing_ = false;                                          // guarded by mu_
  std::atomic<uint64_t> synced_seen_{0};                          // synced_, for reactors
};

enum class Design { kLeader, kSyncer };

std::atomic<bool> stopping{false};

// One reactor. `wake_fd` (syncer design): written by the sync thread after
// each sync.
void Reactor(int listen_fd, int stop_fd, int wake_fd, Design design, Log* log, size_t record_bytes) {
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLEXCLUSIVE;
  ev.data.fd = listen_fd;
  epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev);
  for (int fd : {stop_fd, wake_fd}) {
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  struct Waiting {
    uint64_t seq;
    int fd;
    int requests;
  };
  std::unordered_map<int, std::string> pending;  // unparsed input per connection
  std::vector<std::pair<int, int>> answers;      // connection, requests to answer
  std::deque<Waiting> waiting;                   // syncer design: written, not yet durable
  const std::string record(record_bytes, 'r');
  std::string records, out;
  char buf[65536];
  epoll_event events[256];
  auto answer = [&](int fd, int requests) {
    out.clear();
    for (int r = 0; r < requests; ++r) out += kAnswer;
    (void)send(fd, out.data(), out.size(), MSG_NOSIGNAL);
  };
  while (!stopping.load()) {
    const int n = epoll_wait(ep, events, 256, -1);
    answers.clear();
    records.clear();
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == stop_fd) continue;
      if (fd == wake_fd) {
        uint64_t count;
        (void)!read(wake_fd, &count, sizeof count);
        continue;
      }
      if (fd == listen_fd) {
        const int c = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) continue;
        const int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        epoll_event ce{};
        ce.events = EPOLLIN;
        ce.data.fd = c;
        epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        pending[c].clear();
        continue;
      }
      const ssize_t got = recv(fd, buf, sizeof buf, 0);
      if (got <= 0) {
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        // Its answers still waiting go nowhere; the number may be reused.
        for (auto& w : waiting)
          if (w.fd == fd) w.requests = 0;
        pending.erase(fd);
        close(fd);
        continue;
      }
      std::string& in = pending[fd];
      in.append(buf, static_cast<size_t>(got));
      int requests = 0;
      for (size_t end; (end = in.find("\r\n\r\n")) != std::string::npos;) {
        in.erase(0, end + 4);
        records += record;
        ++requests;
      }
      if (requests > 0) answers.emplace_back(fd, requests);
    }
    if (!records.empty()) {
      const uint64_t seq = log->Write(records, records.size() / record_bytes);
      if (design == Design::kLeader) {
        log->SyncThrough(seq);
        for (const auto& [fd, requests] : answers) answer(fd, requests);
      } else {
        for (const auto& [fd, requests] : answers) waiting.push_back({seq, fd, requests});
      }
    }
    const uint64_t durable = log->synced();
    while (!waiting.empty() && waiting.front().seq <= durable) {
      if (waiting.front().requests > 0) answer(waiting.front().fd, waiting.front().requests);
      waiting.pop_front();
    }
  }
  for (const auto& [fd, in] : pending) close(fd);
  close(ep);
}

int Serve(const std::string& path, Design design, int threads, size_t record_bytes, const std::string& port_file,
          bool sync) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) Die("open the log");
  Log log(fd, sync);
  const int listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listen_fd, 1024) != 0 ||
      getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    Die("listen");
  const int stop_fd = eventfd(0, EFD_CLOEXEC);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // the threads inherit the mask
  std::vector<int> wake_fds;
  std::vector<std::thread> threads_started;
  for (int i = 0; i < threads; ++i) {
    wake_fds.push_back(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    threads_started.emplace_back(Reactor, listen_fd, stop_fd, wake_fds.back(), design, &log, record_bytes);
  }
  std::atomic<bool> syncer_stop{false};
  std::thread syncer;
  if (design == Design::kSyncer) {
    syncer = std::thread([&] {
      const uint64_t one = 1;
      while (log.SyncNext(syncer_stop) != 0)
        for (int w : wake_fds) (void)!write(w, &one, sizeof one);
    });
  }
  if (!port_file.empty()) {
    const std::string tmp = port_file + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) Die("write the port file");
    std::fprintf(f, "%u\n", ntohs(addr.sin_port));
    std::fclose(f);
    if (std::rename(tmp.c_str(), port_file.c_str()) != 0) Die("write the port file");
  }
  int sig = 0;
  sigwait(&set, &sig);
  stopping.store(true);
  const uint64_t one = 1;
  (void)!write(stop_fd, &one, sizeof one);  // wakes every reactor (level-triggered, never read)
  for (auto& t : threads_started) t.join();
  syncer_stop.store(true);
  if (syncer.joinable()) syncer.join();
  log.Report(design == Design::kLeader ? "leader" : "syncer");
  close(fd);
  return 0;
}

int ProbeFsync(const std::string& path, int count, size_t record_bytes) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) Die("open the log");
  const std::string record(record_bytes, 'r');
  std::vector<double> us;
  us.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    const auto start = std::chrono::steady_clock::now();
    if (::write(fd, record.data(), record.size()) != static_cast<ssize_t>(record.size())) Die("write");
    if (::fdatasync(fd) != 0) Die("fdatasync");
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  close(fd);
  unlink(path.c_str());
  std::sort(us.begin(), us.end());
  auto at = [&](double q) { return us[std::min(us.size() - 1, static_cast<size_t>(q * us.size()))]; };
  std::printf("fdatasync: n=%d record=%zu bytes p50=%.0fus p90=%.0fus p99=%.0fus max=%.0fus\n", count, record_bytes,
              at(0.5), at(0.9), at(0.99), us.back());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"the durability floor of this machine (see the top of durable_floor.cc)"};
  app.require_subcommand(1);
  std::string log_path, port_file;
  int threads = 2, count = 2000;
  size_t record_bytes = 300;
  bool no_sync = false;
  std::string design = "leader";
  auto* serve = app.add_subcommand("serve", "answer each request once a record of it is durable");
  serve->add_option("--log", log_path, "the file records are appended to")->required();
  serve->add_option("--design", design, "leader or syncer (see the top of durable_floor.cc)")
      ->check(CLI::IsMember({"leader", "syncer"}));
  serve->add_option("--threads", threads, "reactor threads")->check(CLI::Range(1, 64));
  serve->add_option("--record-bytes", record_bytes, "bytes per record")->check(CLI::Range(1, 65536));
  serve->add_option("--port-file", port_file, "where the chosen port is written");
  serve->add_flag("--no-sync", no_sync, "never fdatasync (the floor without the disk)");
  auto* fsync = app.add_subcommand("fsync", "latency of write + fdatasync, one after another");
  fsync->add_option("--log", log_path, "the file to write (removed after)")->required();
  fsync->add_option("--count", count, "syncs")->check(CLI::Range(100, 1000000));
  fsync->add_option("--record-bytes", record_bytes, "bytes per write")->check(CLI::Range(1, 1 << 20));
  CLI11_PARSE(app, argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  if (*serve)
    return Serve(log_path, design == "leader" ? Design::kLeader : Design::kSyncer, threads, record_bytes, port_file,
                 !no_sync);
  return ProbeFsync(log_path, count, record_bytes);
}
