// A real nginx in front of geoledgerd: auth_request asks GET
// /v1/gateway/check, and the answer's X-Residency-Region picks one of two
// upstreams (small HTTP servers in this test that count their hits). Allowed
// requests must land on the upstream of their region; a denied request must
// never reach any upstream; nginx keeps its connection to geoledgerd.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/integration/residency_policy.h"
#include "tests/integration/test_server.h"

namespace geoledger::testing {
namespace {

constexpr const char* kNginx = "/usr/sbin/nginx";

// A loopback HTTP server on its own thread: answers every request with 200
// and its name, and records the request paths. Connection: close.
class Upstream {
 public:
  explicit Upstream(std::string name) : name_(std::move(name)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      return;
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~Upstream() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  uint16_t port() const { return port_; }
  std::vector<std::string> hits() const {
    std::lock_guard<std::mutex> lock(mu_);
    return hits_;
  }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      Serve(c);
      ::close(c);
    }
  }
  void Serve(int c) {
    std::string in;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    char buf[4096];
    while (in.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) return;
      in.append(buf, static_cast<size_t>(n));
    }
    auto sp1 = in.find(' '), sp2 = in.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      hits_.push_back(in.substr(sp1 + 1, sp2 - sp1 - 1));
    }
    std::string out = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(name_.size()) +
                      "\r\nConnection: close\r\n\r\n" + name_;
    [[maybe_unused]] ssize_t w = ::write(c, out.data(), out.size());
  }

  std::string name_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<std::string> hits_;  // guarded by mu_
  std::thread thread_;
};

uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

// `cache_key`: when set, nginx caches the checks' answers (proxy_cache) under
// this key and reports the cache status of each request's check in
// X-Residency-Cache.
std::string NginxConfig(const std::string& dir, uint16_t listen, uint16_t geoledgerd, const std::string& token,
                        uint16_t eu_west, uint16_t eu_central, const std::string& cache_key = "") {
  std::string p = std::to_string(listen), g = std::to_string(geoledgerd);
  const bool cache = !cache_key.empty();
  return "worker_processes 1;\n"
         "events { worker_connections 64; }\n"
         "http {\n"
         "  access_log off;\n"
         "  client_body_temp_path " + dir + "/client_body;\n"
         "  proxy_temp_path " + dir + "/proxy;\n"
         "  fastcgi_temp_path " + dir + "/fastcgi;\n"
         "  uwsgi_temp_path " + dir + "/uwsgi;\n"
         "  scgi_temp_path " + dir + "/scgi;\n" +
         (cache ? "  proxy_cache_path " + dir + "/cache levels=1 keys_zone=residency:1m;\n" : "") +
         // Without an upstream block holding a keepalive pool nginx opens a
         // new connection to geoledgerd for every check, whatever the
         // Connection header says.
         "  upstream geoledger {\n"
         "    server 127.0.0.1:" + g + ";\n"
         "    keepalive 64;\n"
         "    keepalive_timeout 50s;\n"
         "  }\n"
         "  map $residency_region $residency_upstream {\n"
         "    eu-west-1    127.0.0.1:" + std::to_string(eu_west) + ";\n"
         "    eu-central-1 127.0.0.1:" + std::to_string(eu_central) + ";\n"
         "    default      127.0.0.1:9;\n"  // unreachable: no region, no upstream
         "  }\n"
         "  server {\n"
         "    listen 127.0.0.1:" + p + ";\n"
         "    location = /_residency {\n"
         "      internal;\n"
         "      proxy_pass http://geoledger/v1/gateway/check;\n"
         "      proxy_http_version 1.1;\n"
         "      proxy_pass_request_body off;\n"
         "      proxy_set_header Content-Length \"\";\n"
         "      proxy_set_header Connection \"\";\n"
         "      proxy_set_header Authorization \"Bearer " + token + "\";\n"
         "      proxy_set_header X-Tenant-Id $http_x_tenant_id;\n"
         "      proxy_set_header X-Data-Category $http_x_data_category;\n"
         "      proxy_set_header X-Operation $http_x_operation;\n"
         "      proxy_set_header X-Target-Region $http_x_target_region;\n" +
         (cache ? "      proxy_cache residency;\n      proxy_cache_key \"" + cache_key + "\";\n" : "") +
         "    }\n"
         "    location / {\n"
         "      auth_request /_residency;\n"
         "      auth_request_set $residency_region $upstream_http_x_residency_region;\n" +
         (cache ? "      auth_request_set $residency_cache $upstream_cache_status;\n"
                  "      add_header X-Residency-Cache $residency_cache always;\n"
                : "") +
         "      proxy_pass http://$residency_upstream;\n"
         "    }\n"
         "  }\n"
         "}\n";
}

// nginx as a child process, stopped by its PID.
class Nginx {
 public:
  Nginx(const std::string& dir, const std::string& conf) : dir_(dir) {
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      DieWithParent(parent, SIGTERM);  // nginx's master stops its workers on SIGTERM
      int log = ::open((dir + "/nginx.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(log, STDOUT_FILENO);
      ::dup2(log, STDERR_FILENO);
      std::string globals = "daemon off; master_process on; user root; pid " + dir + "/nginx.pid; error_log stderr;";
      ::execl(kNginx, kNginx, "-p", dir.c_str(), "-c", conf.c_str(), "-e", "stderr", "-g", globals.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~Nginx() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 150; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  // Waits (bounded) until nginx accepts connections on `port`.
  bool WaitReady(uint16_t port) {
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      RawConnection c(port);
      if (c.connected()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  std::string log() const {
    std::ifstream in(dir_ + "/nginx.log");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

 private:
  std::string dir_;
  pid_t pid_ = -1;
};

RawResponse ThroughNginx(uint16_t port, const std::string& path, const std::map<std::string, std::string>& headers) {
  RawConnection c(port);
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "\r\n";
  RawResponse r;
  if (!c.connected() || !c.Send(req) || !c.ReadResponse(&r)) r.status = -1;
  return r;
}

// geoledgerd's count of accepted connections, from /metrics (asked on a new
// connection, which the count includes); -1 when unreadable.
int64_t AcceptedConnections(TestServer& server) {
  RawResponse m = server.Request("GET", "/metrics");
  return m.status == 200 ? MetricSample(m.body, "geoledger_http_connections_accepted_total") : -1;
}

// geoledgerd with the shared policy, a decide token for nginx and an
// audit reader, two upstreams, and a directory and a port for nginx.
class NginxGatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The test command installs nginx (scripts/install-deps.sh); without it
    // this test fails rather than pass as skipped.
    ASSERT_EQ(::access(kNginx, X_OK), 0) << kNginx << " is missing: run scripts/install-deps.sh (nginx-light)";
    server_ = TestServer::Start();
    ASSERT_TRUE(server_->started()) << server_->log();
    LoadResidencyPolicy(*server_);
    token_ = server_->CreateToken("nginx", {"decide"});
    reader_ = server_->CreateToken("auditor", {"audit:read"});
    ASSERT_FALSE(token_.empty());
    ASSERT_NE(west_.port(), 0);
    ASSERT_NE(central_.port(), 0);
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    port_ = FreePort();
    ASSERT_NE(port_, 0);
  }
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->Terminate(), 0);
    }
    if (!dir_.empty()) RemoveTree(dir_);
  }
  // Writes nginx's configuration (see NginxConfig) and returns its path.
  std::string WriteConfig(const std::string& cache_key = "") {
    const std::string conf = dir_ + "/nginx.conf";
    std::ofstream(conf) << NginxConfig(dir_, port_, server_->port(), token_, west_.port(), central_.port(), cache_key);
    return conf;
  }
  // Residency decisions in the audit log from `start` on: {allowed, denied}.
  std::pair<int, int> Decisions(uint64_t start) {
    int allows = 0, denies = 0;
    for (const auto& e : AuditEntries(*server_, reader_, start, AuditSize(*server_, reader_)))
      if (e["action"] == "residency.decision") (e["outcome"] == "allow" ? allows : denies)++;
    return {allows, denies};
  }
  std::unique_ptr<TestServer> server_;
  std::string token_, reader_, dir_;
  uint16_t port_ = 0;
  Upstream west_{"upstream-eu-west-1"}, central_{"upstream-eu-central-1"};
};

TEST_F(NginxGatewayTest, AuthRequestRoutesByResidencyRegionAndDeniedRequestsNeverReachAnUpstream) {
  const std::string conf = WriteConfig();
  const int64_t accepted_before = AcceptedConnections(*server_);
  {
    Nginx nginx(dir_, conf);
    ASSERT_TRUE(nginx.WaitReady(port_)) << nginx.log();

    RawResponse r = ThroughNginx(port_, "/orders/1", GatewayHeaders("acme", "personal", "store", "eu-west-1"));
    EXPECT_EQ(r.status, 200) << nginx.log();
    EXPECT_EQ(r.body, "upstream-eu-west-1");
    r = ThroughNginx(port_, "/orders/2", GatewayHeaders("acme", "personal", "store", "eu-central-1"));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "upstream-eu-central-1");
    r = ThroughNginx(port_, "/reports/3", GatewayHeaders("globex", "personal", "read", "eu-central-1"));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "upstream-eu-central-1");

    // Denied: outside the allowed regions, unknown tenant, missing headers,
    // a tenant id the dispatcher refuses.
    EXPECT_EQ(ThroughNginx(port_, "/denied/1", GatewayHeaders("acme", "personal", "store", "us-east-1")).status, 403);
    EXPECT_EQ(ThroughNginx(port_, "/denied/2", GatewayHeaders("acme", "special", "store", "eu-central-1")).status, 403);
    EXPECT_EQ(ThroughNginx(port_, "/denied/3", GatewayHeaders("nobody", "personal", "read", "eu-west-1")).status, 403);
    EXPECT_EQ(ThroughNginx(port_, "/denied/4", {}).status, 403);
    EXPECT_EQ(ThroughNginx(port_, "/denied/5", GatewayHeaders("bad!tenant", "personal", "read", "eu-west-1")).status,
              403);
    auto h = GatewayHeaders("acme", "personal", "read", "eu-west-1");
    h.erase("X-Target-Region");
    EXPECT_EQ(ThroughNginx(port_, "/denied/6", h).status, 403);

    // nginx kept one connection to geoledgerd for all nine checks, allowed
    // and denied alike (the other new one is this metrics request's own).
    EXPECT_EQ(AcceptedConnections(*server_) - accepted_before, 2);
  }  // nginx stopped here, by PID

  EXPECT_EQ(west_.hits(), std::vector<std::string>({"/orders/1"}));
  EXPECT_EQ(central_.hits(), std::vector<std::string>({"/orders/2", "/reports/3"}));

  // Every check nginx asked for is in the audit log: 3 allowed and 3 denied
  // by the engine, 2 refused for missing headers and 1 for an invalid tenant
  // id (audited as denials with their reason).
  EXPECT_EQ(Decisions(0), (std::pair{3, 6}));
}

// The gateway's cache keeps each answer for its ttl_s (Cache-Control:
// public, max-age), and Vary keeps apart answers for different tenants,
// regions, operations and client Authorization headers even under a cache
// key that names none of them.
TEST_F(NginxGatewayTest, TheGatewayCachesAnswersButNeverAcrossTenantsOrRegions) {
  // One key for every check: only Vary tells the answers apart.
  const std::string conf = WriteConfig("residency");
  const uint64_t before = AuditSize(*server_, reader_);
  {
    Nginx nginx(dir_, conf);
    ASSERT_TRUE(nginx.WaitReady(port_)) << nginx.log();
    auto through = [&](const std::string& path, const std::map<std::string, std::string>& h) {
      RawResponse r = ThroughNginx(port_, path, h);
      return std::pair{r.status, r.Header("x-residency-cache")};
    };
    const auto west_store = GatewayHeaders("acme", "personal", "store", "eu-west-1");
    EXPECT_EQ(through("/a/1", west_store), (std::pair<int, std::string>{200, "MISS"})) << nginx.log();
    EXPECT_EQ(through("/a/2", west_store), (std::pair<int, std::string>{200, "HIT"}));
    // Another region, tenant, operation or client token: decided afresh.
    EXPECT_EQ(through("/b/1", GatewayHeaders("acme", "personal", "store", "eu-central-1")),
              (std::pair<int, std::string>{200, "MISS"}));
    EXPECT_EQ(through("/c/1", GatewayHeaders("globex", "personal", "store", "eu-central-1")),
              (std::pair<int, std::string>{200, "MISS"}));
    EXPECT_EQ(through("/d/1", GatewayHeaders("acme", "personal", "read", "eu-west-1")),
              (std::pair<int, std::string>{200, "MISS"}));
    auto with_token = west_store;
    with_token["Authorization"] = "Bearer end-user-token";
    EXPECT_EQ(through("/e/1", with_token).second, "MISS");
    // A deny is cached as well (for its shorter ttl) and still reaches no upstream.
    const auto us_store = GatewayHeaders("acme", "personal", "store", "us-east-1");
    EXPECT_EQ(through("/denied/1", us_store).first, 403);
    EXPECT_EQ(through("/denied/2", us_store).first, 403);
    EXPECT_EQ(through("/a/3", west_store), (std::pair<int, std::string>{200, "HIT"}));
  }
  EXPECT_EQ(west_.hits(), std::vector<std::string>({"/a/1", "/a/2", "/d/1", "/e/1", "/a/3"}));
  EXPECT_EQ(central_.hits(), std::vector<std::string>({"/b/1", "/c/1"}));
  // Each decision geoledgerd made is audited; the cached answers were not new decisions.
  EXPECT_EQ(Decisions(before), (std::pair{5, 1}));
}

}  // namespace
}  // namespace geoledger::testing
