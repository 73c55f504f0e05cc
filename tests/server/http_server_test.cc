// The HTTP frontend (server/http_server.h) over real sockets, with a
// dispatcher of test routes.
#include "server/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <string>
#include <thread>

#include "common/clock.h"
#include "server/metrics.h"

namespace geoledger::server {
namespace {

// A blocking client connection with a receive timeout.
class Client {
 public:
  explicit Client(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    timeval tv{20, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Client() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool connected() const { return connected_; }
  bool Send(const std::string& bytes) { return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()); }
  // One response (headers and a Content-Length body), or what came before
  // the connection closed or the receive timed out.
  std::string ReadResponse() {
    while (true) {
      size_t end = buffered_.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        size_t cl = buffered_.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) length = std::stoul(buffered_.substr(cl + 16));
        if (buffered_.size() >= end + 4 + length) {
          std::string out = buffered_.substr(0, end + 4 + length);
          buffered_.erase(0, out.size());
          return out;
        }
      }
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return std::exchange(buffered_, "");
      buffered_.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  int fd_;
  bool connected_ = false;
  std::string buffered_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions o) {
    Dispatcher::Options d;
    d.access_log = false;
    dispatcher_ = std::make_unique<Dispatcher>(d, &SystemClock::Get(), &metrics_);
    dispatcher_->AddRoute("GET", "/fast", Access::kPublic, "", [](RequestContext&) -> StatusOr<HttpResponse> {
      return JsonResponse(200, {{"ok", true}});
    });
    // Work that outlasts the header timeout, as an export or a shred can.
    dispatcher_->AddRoute("GET", "/slow", Access::kPublic, "", [](RequestContext&) -> StatusOr<HttpResponse> {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      return JsonResponse(200, {{"slow", true}});
    });
    dispatcher_->MarkBlockingRoute("GET", "/slow");
    // Answers once the test releases it (bounded).
    dispatcher_->AddRoute("GET", "/held", Access::kPublic, "", [this](RequestContext&) -> StatusOr<HttpResponse> {
      held_++;
      release_.wait_for(std::chrono::seconds(10));
      return JsonResponse(200, {{"held", true}});
    });
    dispatcher_->MarkBlockingRoute("GET", "/held");
    auto server = HttpServer::Start(o, dispatcher_.get());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (dispatcher_) dispatcher_->StopBlockingWorkers();
  }
  std::promise<void> release_promise_;
  std::shared_future<void> release_ = release_promise_.get_future().share();
  std::atomic<int> held_{0};
  HttpMetrics metrics_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<HttpServer> server_;
};

// The header timeout is for a client slow to send its request; once the
// request is in, the time the server takes to answer is not the client's.
// Pistache's idle sweep used to answer such a request 408 and close.
TEST_F(HttpServerTest, AnAnswerThatOutlastsTheHeaderTimeoutStillArrivesOnAKeptConnection) {
  HttpServerOptions o;
  o.header_timeout = std::chrono::milliseconds(100);
  o.body_timeout = std::chrono::milliseconds(100);
  Start(o);
  Client c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string slow = c.ReadResponse();
  EXPECT_EQ(slow.rfind("HTTP/1.1 200 ", 0), 0u) << slow;
  EXPECT_NE(slow.find("\"slow\":true"), std::string::npos) << slow;
  ASSERT_TRUE(c.Send("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string fast = c.ReadResponse();
  EXPECT_EQ(fast.rfind("HTTP/1.1 200 ", 0), 0u) << fast;
  // And with Connection: close.
  Client d(server_->port());
  ASSERT_TRUE(d.connected());
  ASSERT_TRUE(d.Send("GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  std::string closing = d.ReadResponse();
  EXPECT_EQ(closing.rfind("HTTP/1.1 200 ", 0), 0u) << closing;
}

// The header timeout still holds a client that starts a request and stalls.
TEST_F(HttpServerTest, AStalledRequestHeadStillTimesOut) {
  HttpServerOptions o;
  o.header_timeout = std::chrono::milliseconds(100);
  Start(o);
  Client c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse().rfind("HTTP/1.1 200 ", 0), 0u);
  ASSERT_TRUE(c.Send("GET /fast HTTP/1.1\r\nHo"));  // and nothing more
  std::string r = c.ReadResponse();
  EXPECT_EQ(r.rfind("HTTP/1.1 408 ", 0), 0u) << r;
}

size_t OpenDescriptors() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// An answer completed after its client went away must not reach the next
// client, which the kernel gives the same descriptor number. Here the
// connection is gone by the time the answer completes, so the answer is
// dropped; the narrower window the frontend's duplicate descriptor closes
// (the connection still referenced while its number is reused) is not
// reproduced.
TEST_F(HttpServerTest, ALateAnswerNeverReachesTheConnectionThatReusedItsDescriptor) {
  Start(HttpServerOptions{});
  auto a = std::make_unique<Client>(server_->port());
  ASSERT_TRUE(a->connected());
  ASSERT_TRUE(a->Send("GET /held HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (held_.load() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(held_.load(), 1);
  // A leaves; wait (up to 2 s) until the server has closed its side too
  // (the client's and the server's descriptors both gone), freeing the number.
  const size_t before = OpenDescriptors();
  a->Close();
  const auto closed_by = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (OpenDescriptors() > before - 2 && std::chrono::steady_clock::now() < closed_by)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Client b(server_->port());  // the server's lowest free number: A's old one
  ASSERT_TRUE(b.connected());
  release_promise_.set_value();  // A's answer completes now, before B asks anything
  while (dispatcher_->in_flight() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(dispatcher_->in_flight(), 0);
  ASSERT_TRUE(b.Send("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string r = b.ReadResponse();
  EXPECT_EQ(r.rfind("HTTP/1.1 200 ", 0), 0u) << r;
  EXPECT_NE(r.find("\"ok\":true"), std::string::npos) << "B got another client's answer: " << r;
  EXPECT_EQ(r.find("held"), std::string::npos) << r;
}

}  // namespace
}  // namespace geoledger::server
