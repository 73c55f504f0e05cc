// An open-loop HTTP/1.1 load generator, for latency at a fixed offered rate.
//
//   open_loop --target 127.0.0.1:PORT --path /v1/gateway/check
//             [--header 'Name: value']... --connections 64 --rate 20000
//             --duration 8 [--warmup 2] [--seed 1]
//
// Requests are scheduled at Poisson arrival times (exponential gaps, mean
// 1/rate), independent of how fast answers come back, and each is sent on an
// idle persistent connection (at most one request in flight per connection,
// no pipelining). A request whose time has come while every connection is
// busy waits for one. Latency is measured from the request's scheduled time
// to the last byte of its answer, so time spent waiting — for a connection,
// or for this process to get a CPU — counts against the server
// (no coordinated omission).
//
// Why not wrk: wrk has no rate control, and pacing it with a Lua delay()
// rounds each delay to whole milliseconds, so the connections of a thread
// fire in bursts on millisecond ticks; the queueing that causes is measured
// as latency, for nginx as much as for anything else.
//
// Only requests scheduled after the warm-up are counted. The run ends when
// the duration is over and every counted request is answered, or 5 s later
// (those unanswered then are reported). Prints:
//   offered R req/s (Poisson) on C connections for D s
//   answered N of M counted requests (A req/s); non-2xx X; failed F; unanswered U; waited for a connection W
//   pctl p50=..us p90=..us p99=..us p99.9=..us max=..us
// and exits 1 when any counted request failed, was not 2xx or went
// unanswered.
//
// Loopback (or any IPv4 literal) only; one thread; plain TCP.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <random>
#include <string>
#include <vector>

namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

[[noreturn]] void Fatal(const std::string& what, bool with_errno = true) {
  const int e = with_errno ? errno : 0;
  std::fprintf(stderr, "open_loop: %s%s%s\n", what.c_str(), e ? ": " : "", e ? std::strerror(e) : "");
  std::exit(2);
}

struct Conn {
  int fd = -1;
  bool busy = false;
  int64_t scheduled_ns = 0;  // of the request in flight
  std::string in;
};

// Where an answer in `in` ends (0 while incomplete) and its status code.
// Answers carry Content-Length (geoledgerd and nginx both send it).
size_t AnswerEnd(const std::string& in, int* status, bool* close) {
  size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos) return 0;
  if (in.size() < 12 || in.compare(0, 5, "HTTP/") != 0) Fatal("malformed answer: " + in.substr(0, 40), false);
  *status = std::atoi(in.c_str() + 9);
  size_t length = 0;
  *close = false;
  size_t line = in.find("\r\n") + 2;
  while (line < head_end) {
    size_t eol = in.find("\r\n", line);
    std::string header = in.substr(line, eol - line);
    std::string name = header.substr(0, header.find(':'));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value = header.substr(std::min(header.size(), name.size() + 1));
    value.erase(0, value.find_first_not_of(' '));
    if (name == "content-length") length = std::strtoull(value.c_str(), nullptr, 10);
    if (name == "connection" && (value == "close" || value == "Close")) *close = true;
    line = eol + 2;
  }
  size_t end = head_end + 4 + length;
  return in.size() >= end ? end : 0;
}

int Connect(const sockaddr_in& addr, int epoll_fd, size_t index) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Fatal("socket");
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) Fatal("connect");
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) Fatal("fcntl");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = index;
  if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) Fatal("epoll_ctl");
  return fd;
}

double Percentile(const std::vector<int64_t>& sorted_ns, double p) {
  if (sorted_ns.empty()) return 0;
  size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted_ns.size()))) - 1;
  return static_cast<double>(sorted_ns[std::min(i, sorted_ns.size() - 1)]) / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string target, path = "/";
  std::vector<std::string> headers;
  size_t connections = 64;
  double rate = 1000, duration_s = 10, warmup_s = 2;
  uint64_t seed = 1;
  CLI::App app{"Open-loop HTTP/1.1 load at a fixed Poisson rate; latency from each request's scheduled time"};
  app.add_option("--target", target, "IPv4:PORT")->required();
  app.add_option("--path", path, "request path (GET)");
  app.add_option("--header", headers, "a request header, 'Name: value' (repeatable)");
  app.add_option("--connections", connections, "persistent connections")->check(CLI::Range(1, 10000));
  app.add_option("--rate", rate, "offered requests per second")->check(CLI::Range(1.0, 1e7));
  app.add_option("--duration", duration_s, "measured seconds")->check(CLI::Range(0.1, 3600.0));
  app.add_option("--warmup", warmup_s, "seconds of load before measuring")->check(CLI::Range(0.0, 600.0));
  app.add_option("--seed", seed, "random seed for the arrival times");
  CLI11_PARSE(app, argc, argv);

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  size_t colon = target.rfind(':');
  if (colon == std::string::npos || ::inet_pton(AF_INET, target.substr(0, colon).c_str(), &addr.sin_addr) != 1)
    Fatal("--target must be IPv4:PORT", false);
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(target.c_str() + colon + 1)));

  std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + target + "\r\n";
  for (const auto& h : headers) request += h + "\r\n";
  request += "\r\n";

  // Wake-ups at the requested times, not up to 50 us later.
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) Fatal("epoll_create1");
  std::vector<Conn> conns(connections);
  std::vector<size_t> idle;
  for (size_t i = 0; i < connections; ++i) {
    conns[i].fd = Connect(addr, epoll_fd, i);
    idle.push_back(i);
  }

  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap_s(rate);
  const int64_t start = NowNs();
  const int64_t measure_from = start + static_cast<int64_t>(warmup_s * 1e9);
  const int64_t stop_at = measure_from + static_cast<int64_t>(duration_s * 1e9);
  const int64_t give_up_at = stop_at + 5'000'000'000;
  int64_t next_ns = start;
  std::deque<int64_t> waiting;  // scheduled times of requests whose time has come, not yet sent
  std::vector<int64_t> latencies;
  latencies.reserve(static_cast<size_t>(rate * duration_s * 1.1) + 16);
  uint64_t counted = 0, non_2xx = 0, failed = 0, waited = 0;
  size_t in_flight_counted = 0;
  epoll_event events[256];

  auto reconnect = [&](Conn& c, size_t i) {
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.in.clear();
    c.fd = Connect(addr, epoll_fd, i);
  };
  auto send_on = [&](size_t i, int64_t scheduled) {
    Conn& c = conns[i];
    c.busy = true;
    c.scheduled_ns = scheduled;
    for (int attempt = 0;; ++attempt) {
      ssize_t n = ::send(c.fd, request.data(), request.size(), MSG_NOSIGNAL);
      if (n == static_cast<ssize_t>(request.size())) return;
      // An idle connection the server has closed: once more on a new one.
      if (n < 0 && (errno == EPIPE || errno == ECONNRESET) && attempt == 0) {
        reconnect(c, i);
        continue;
      }
      Fatal(n < 0 ? "send" : "send (a request did not fit the socket at once)", n < 0);
    }
  };
  auto finish = [&](size_t i, bool ok, int status) {
    Conn& c = conns[i];
    if (c.scheduled_ns >= measure_from && c.scheduled_ns < stop_at) {
      --in_flight_counted;
      if (!ok) {
        ++failed;
      } else {
        latencies.push_back(NowNs() - c.scheduled_ns);
        if (status < 200 || status > 299) ++non_2xx;
      }
    }
    c.busy = false;
    idle.push_back(i);
  };

  while (true) {
    int64_t now = NowNs();
    size_t fresh = 0;
    while (next_ns <= now && next_ns < stop_at) {
      waiting.push_back(next_ns);
      ++fresh;
      if (next_ns >= measure_from) ++counted, ++in_flight_counted;
      next_ns += static_cast<int64_t>(gap_s(rng) * 1e9);
    }
    while (!waiting.empty() && !idle.empty()) {
      size_t i = idle.back();
      idle.pop_back();
      send_on(i, waiting.front());
      waiting.pop_front();
    }
    // Requests leave from the front: those that just came due and are still
    // here found every connection busy.
    for (size_t k = waiting.size() - std::min(fresh, waiting.size()); k < waiting.size(); ++k)
      if (waiting[k] >= measure_from) ++waited;
    if (now >= stop_at && in_flight_counted == 0) break;
    if (now >= give_up_at) break;
    timespec timeout{0, 0};
    int64_t until = next_ns < stop_at ? next_ns : give_up_at;
    if (until > now) timeout = timespec{(until - now) / 1'000'000'000, (until - now) % 1'000'000'000};
    int n = ::epoll_pwait2(epoll_fd, events, 256, &timeout, nullptr);
    if (n < 0 && errno != EINTR) Fatal("epoll_pwait2");
    for (int k = 0; k < n; ++k) {
      size_t i = events[k].data.u64;
      Conn& c = conns[i];
      char buf[16384];
      ssize_t got = ::recv(c.fd, buf, sizeof buf, 0);
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      int status = 0;
      bool close = got <= 0;
      if (got > 0) {
        c.in.append(buf, static_cast<size_t>(got));
        size_t end = AnswerEnd(c.in, &status, &close);
        if (end == 0) continue;
        if (!c.busy || end != c.in.size()) Fatal("an answer arrived that no request asked for", false);
        c.in.clear();
        finish(i, true, status);
      } else if (c.busy) {
        finish(i, false, 0);
      }
      if (close) reconnect(c, i);  // the server closed: a new connection takes this one's place
    }
  }

  std::sort(latencies.begin(), latencies.end());
  const uint64_t unanswered = in_flight_counted;
  std::printf("offered %.0f req/s (Poisson) on %zu connections for %.1f s\n", rate, connections, duration_s);
  std::printf("answered %zu of %" PRIu64 " counted requests (%.0f req/s); non-2xx %" PRIu64 "; failed %" PRIu64
              "; unanswered %" PRIu64 "; waited for a connection %" PRIu64 "\n",
              latencies.size(), counted, static_cast<double>(latencies.size()) / duration_s, non_2xx, failed,
              unanswered, waited);
  std::printf("pctl p50=%.0fus p90=%.0fus p99=%.0fus p99.9=%.0fus max=%.0fus\n", Percentile(latencies, 0.50),
              Percentile(latencies, 0.90), Percentile(latencies, 0.99), Percentile(latencies, 0.999),
              Percentile(latencies, 1.0));
  for (auto& c : conns) ::close(c.fd);
  ::close(epoll_fd);
  return (non_2xx || failed || unanswered) ? 1 : 0;
}
