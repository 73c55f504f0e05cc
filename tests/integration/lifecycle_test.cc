// Startup, readiness, key bootstrap and SIGTERM draining of the real binary.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "common/kv_store.h"
#include "tests/integration/test_server.h"

namespace geoledger::testing {
namespace {

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_mode & 0777;
}

TEST(LifecycleTest, DevFirstStartGeneratesKeysTokenAndPublicKey) {
  auto s = TestServer::Start();
  ASSERT_TRUE(s->started()) << s->log();
  const std::string d = s->data_dir();
  EXPECT_EQ(ModeOf(d + "/keys/root.key"), 0600u);
  EXPECT_EQ(ModeOf(d + "/keys/audit-signing.key"), 0600u);
  EXPECT_EQ(ModeOf(d + "/admin.token"), 0600u);
  EXPECT_EQ(ModeOf(d + "/audit-public.key"), 0644u);  // public, as its readers need
  EXPECT_EQ(std::filesystem::file_size(d + "/audit-public.key.bin"), 32u);
  std::ifstream vkey(d + "/audit-public.key");
  std::string line;
  std::getline(vkey, line);
  EXPECT_EQ(line.rfind("geoledger/eu-west-1+", 0), 0u) << line;
  EXPECT_NE(s->log().find("DEVELOPMENT KEYS GENERATED"), std::string::npos);
  RawResponse ready = s->Request("GET", "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(nlohmann::json::parse(ready.body)["status"], "ready");
  EXPECT_EQ(nlohmann::json::parse(ready.body)["policy_loaded"], false);
  EXPECT_EQ(s->Request("GET", "/healthz").status, 200);
  // Ready, but not for gateway checks until a residency policy is loaded.
  RawResponse for_gateways = s->Request("GET", "/readyz?require=policy");
  EXPECT_EQ(for_gateways.status, 503);
  EXPECT_NE(for_gateways.body.find("no residency policy loaded"), std::string::npos) << for_gateways.body;
  EXPECT_EQ(s->Request("GET", "/readyz?require=everything").status, 400);
  RawResponse region = s->Authed(s->admin_token(), "PUT", "/v1/regions/eu-west-1", R"({"country":"IE","name":"x"})");
  ASSERT_EQ(region.status, 201) << region.body;
  for_gateways = s->Request("GET", "/readyz?require=policy");
  EXPECT_EQ(for_gateways.status, 200) << for_gateways.body;
  EXPECT_EQ(nlohmann::json::parse(for_gateways.body)["policy_loaded"], true);
}

TEST(LifecycleTest, SigtermExitsZeroAndRestartKeepsKeys) {
  auto s = TestServer::Start();
  ASSERT_TRUE(s->started());
  std::string dir = s->data_dir();
  std::string vkey_before;
  std::getline(std::ifstream(dir + "/audit-public.key"), vkey_before);
  EXPECT_EQ(s->Terminate(), 0) << s->log();
  EXPECT_NE(s->log().find("\"msg\":\"stopped\""), std::string::npos);
  auto again = TestServer::Start({}, dir);
  ASSERT_TRUE(again->started()) << again->log();
  std::string vkey_after;
  std::getline(std::ifstream(dir + "/audit-public.key"), vkey_after);
  EXPECT_EQ(vkey_before, vkey_after);
  EXPECT_EQ(again->log().find("DEVELOPMENT KEYS GENERATED", again->log().find("\"msg\":\"stopped\"")),
            std::string::npos);
  EXPECT_EQ(again->Terminate(), 0);
}

TEST(LifecycleTest, WithoutDevMissingKeysAreAStartupError) {
  auto s = TestServer::Start({}, "", /*dev=*/false);
  EXPECT_FALSE(s->started());
  EXPECT_NE(s->log().find("region root key"), std::string::npos) << s->log();
  EXPECT_FALSE(std::filesystem::exists(s->data_dir() + "/keys/root.key"));
}

TEST(LifecycleTest, KeyReadableByOthersIsRefused) {
  auto s = TestServer::Start();
  ASSERT_TRUE(s->started());
  std::string dir = s->data_dir();
  ASSERT_EQ(s->Terminate(), 0);
  ::chmod((dir + "/keys/root.key").c_str(), 0644);
  auto again = TestServer::Start({}, dir, /*dev=*/false);
  EXPECT_FALSE(again->started());
  EXPECT_NE(again->log().find("mode 0600"), std::string::npos) << again->log();
}

TEST(LifecycleTest, DataDirOpenToOthersIsRefused) {
  // A data dir inside a scratch dir: the server's log sits beside it and goes with it.
  std::string scratch = MakeTempDir();
  std::string dir = scratch + "/data";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);  // whatever the umask
  auto s = TestServer::Start({}, dir);
  EXPECT_FALSE(s->started());
  EXPECT_NE(s->log().find("chmod 700"), std::string::npos) << s->log();
  RemoveTree(scratch);
}

TEST(LifecycleTest, SighupDoesNotStopTheService) {
  auto s = TestServer::Start();
  ASSERT_TRUE(s->started());
  ::kill(s->pid(), SIGHUP);
  EXPECT_EQ(s->Request("GET", "/healthz").status, 200);
  EXPECT_EQ(s->Terminate(), 0);
}

TEST(LifecycleTest, BadFlagsExitWithUsageError) {
  std::string out;
  EXPECT_EQ(RunCommand({GEOLEDGERD_PATH, "--data-dir", "/tmp/x", "--region", "EU WEST"}, &out), 2) << out;
  EXPECT_EQ(RunCommand({GEOLEDGERD_PATH, "--region", "eu-west-1"}, &out), 2) << out;
  EXPECT_EQ(RunCommand({GEOLEDGERD_PATH, "--data-dir", "/tmp/x", "--region", "eu", "--listen", "nope"}, &out), 2);
  EXPECT_EQ(RunCommand({GEOLEDGERD_PATH, "--help"}, &out), 0);
  EXPECT_NE(out.find("--max-body-bytes"), std::string::npos);
}

TEST(LifecycleTest, ConfigFileAndEnvironmentAreApplied) {
  std::string dir = MakeTempDir();
  std::ofstream(dir + "/geoledger.yaml") << "max_body_bytes: 2048\naccess_log: false\n";
  ::setenv("GEOLEDGER_MAX_HEADER_BYTES", "4096", 1);
  auto s = TestServer::Start({"--config", dir + "/geoledger.yaml"});
  ::unsetenv("GEOLEDGER_MAX_HEADER_BYTES");
  ASSERT_TRUE(s->started()) << s->log();
  std::string body = "{\"name\":\"" + std::string(3000, 'a') + "\",\"scopes\":[\"decide\"]}";
  EXPECT_EQ(s->Authed(s->admin_token(), "POST", "/v1/admin/tokens", body).status, 413);
  RawResponse big = s->Request("GET", "/healthz", {{"X-Pad", std::string(5000, 'p')}});
  EXPECT_TRUE(big.status == 431 || big.status == -1);
  EXPECT_EQ(s->log().find("\"msg\":\"request\""), std::string::npos);  // access log off
  RemoveTree(dir);
}

TEST(LifecycleTest, UnknownConfigKeyIsRefused) {
  std::string dir = MakeTempDir();
  std::ofstream(dir + "/bad.yaml") << "max_body_byte: 2048\n";
  std::string out;
  EXPECT_EQ(RunCommand({GEOLEDGERD_PATH, "--data-dir", dir + "/d", "--region", "eu-west-1", "--config",
                        dir + "/bad.yaml"}, &out), 2);
  EXPECT_NE(out.find("unknown key 'max_body_byte'"), std::string::npos) << out;
  RemoveTree(dir);
}

TEST(LifecycleTest, SecondInstanceOnSameDataDirFailsClosed) {
  auto s = TestServer::Start();
  ASSERT_TRUE(s->started());
  std::string out;
  int rc = RunCommand({GEOLEDGERD_PATH, "--data-dir", s->data_dir(), "--region", "eu-west-1", "--listen",
                       "127.0.0.1:0", "--dev"}, &out, std::chrono::seconds(30));
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("another geoledgerd is using data dir"), std::string::npos) << out;
  EXPECT_EQ(s->Request("GET", "/readyz").status, 200);
  // The running instance's files are untouched.
  EXPECT_TRUE(std::filesystem::exists(s->data_dir() + "/listen.addr"));
}

TEST(LifecycleTest, SigtermWithAHalfSentRequestStillExitsZero) {
  // A slow peer keeps a request half-sent while SIGTERM arrives; the server
  // still exits 0 within the drain bound.
  auto s = TestServer::Start({"--drain-timeout-ms", "2000"});
  ASSERT_TRUE(s->started());
  RawConnection half(s->port());
  ASSERT_TRUE(half.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  EXPECT_EQ(s->Terminate(std::chrono::seconds(20)), 0) << s->log();
}

}  // namespace
}  // namespace geoledger::testing

namespace geoledger::testing {
namespace {

// Rewrites one stored value of a stopped server's database.
void Overwrite(const std::string& data_dir, const std::string& ns, const std::string& key,
               const std::function<std::string(std::string)>& edit) {
  auto kv = OpenRocksDbKvStore(data_dir + "/db", KnownNamespaces());
  ASSERT_TRUE(kv.ok()) << kv.status().ToString();
  auto value = (*kv)->Get(ns, key);
  ASSERT_TRUE(value.ok() && value->has_value());
  KvBatch b;
  b.Put(ns, key, edit(**value));
  ASSERT_TRUE((*kv)->Write(b, true).ok());
}

TEST(LifecycleTest, ForgedCheckpointKeepsTheServiceUnreadyAndSaysWhy) {
  auto s = TestServer::Start();
  ASSERT_TRUE(s->started());
  std::string dir = s->data_dir();
  ASSERT_EQ(s->Terminate(), 0);
  // Replace the root hash line of the signed checkpoint: the signature no longer matches.
  Overwrite(dir, "audit", "checkpoint", [](std::string note) {
    size_t line3 = note.find('\n', note.find('\n') + 1) + 1;
    note[line3] = note[line3] == 'A' ? 'B' : 'A';
    return note;
  });
  auto again = TestServer::Start({}, dir, true, std::chrono::seconds(2));
  EXPECT_FALSE(again->started());  // never becomes ready, never writes listen.addr
  uint16_t port = again->WaitForUnreadyPort();
  std::string log = again->log();
  ASSERT_GT(again->pid(), 0) << log;  // but it is running
  ASSERT_NE(port, 0) << log;
  EXPECT_NE(log.find("audit log does not match its signed checkpoint"), std::string::npos) << log;
  // It says why on /readyz and refuses the API.
  RawConnection c(port);
  RawResponse ready;
  ASSERT_TRUE(c.Send("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n") && c.ReadResponse(&ready)) << port << "\n" << log;
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("audit log does not match its signed checkpoint"), std::string::npos) << ready.body;
  RawResponse api;
  ASSERT_TRUE(c.Send("GET /v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + s->admin_token() +
                     "\r\n\r\n") && c.ReadResponse(&api));
  EXPECT_EQ(api.status, 503);
  EXPECT_EQ(again->Terminate(), 0);
}

TEST(LifecycleTest, CorruptTokenRecordIsAStartupError) {
  auto s = TestServer::Start();
  ASSERT_TRUE(s->started());
  std::string dir = s->data_dir();
  std::string id = nlohmann::json::parse(s->Authed(s->admin_token(), "GET", "/v1/whoami").body)["id"];
  ASSERT_EQ(s->Terminate(), 0);
  Overwrite(dir, "tokens", "tok/" + id, [](std::string) { return std::string("\xff\xff garbage"); });
  auto again = TestServer::Start({}, dir);
  EXPECT_FALSE(again->started());
  EXPECT_LE(again->pid(), 0);  // exited
  EXPECT_NE(again->log().find("is corrupt"), std::string::npos) << again->log();
}

}  // namespace
}  // namespace geoledger::testing

namespace geoledger::testing {
namespace {

// True when `pid` is gone or a zombie (dead, waiting for a reaper that a
// container's init may never be).
bool Dead(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const size_t paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] == 'Z';
}

// A test process that dies without stopping its server (a crash, a ctest
// timeout, a closed output pipe) takes the server with it.
TEST(LifecycleTest, AServerDiesWithTheTestProcessThatStartedIt) {
  DirGuard guard{MakeTempDir()};
  ASSERT_FALSE(guard.dir.empty());
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t test = ::fork();
  ASSERT_GE(test, 0);
  if (test == 0) {
    ::close(fds[0]);
    auto server = TestServer::Start({}, guard.dir + "/data");
    const pid_t pid = server->started() ? server->pid() : -1;
    (void)!::write(fds[1], &pid, sizeof pid);
    ::_exit(0);  // no destructor stops the server
  }
  ::close(fds[1]);
  pid_t server = -1;
  const bool got = ::read(fds[0], &server, sizeof server) == static_cast<ssize_t>(sizeof server);
  ::close(fds[0]);
  ::waitpid(test, nullptr, 0);
  ASSERT_TRUE(got && server > 0) << "the server did not start in the child";
  bool dead = false;
  for (int i = 0; i < 500 && !(dead = Dead(server)); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (!dead) ::kill(server, SIGKILL);  // do not leave it behind either way
  EXPECT_TRUE(dead) << "geoledgerd " << server << " outlived the process that started it";
}

}  // namespace
}  // namespace geoledger::testing

namespace geoledger::testing {
namespace {

// stderr is a pipe that nobody reads (a stuck log shipper or journald): the
// service keeps answering, counts the lines it cannot write, and stops on
// SIGTERM. Each request's access-log line used to block its HTTP thread in
// write(2) once the pipe's 64 KiB were full, and then SIGTERM could not stop
// the service either.
TEST(LifecycleTest, AStderrNobodyReadsNeverStopsTheService) {
  DirGuard guard{MakeTempDir()};
  const std::string data = guard.dir + "/data";
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(out[1], STDERR_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    std::vector<std::string> args = {GEOLEDGERD_PATH, "--dev", "--data-dir", data, "--listen", "127.0.0.1:0",
                                     "--region", "eu-west-1", "--threads", "2"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);  // out[0] stays open and is never read
  struct Reap {
    pid_t pid;
    ~Reap() {
      if (pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
  } reap{pid};

  uint16_t port = 0;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
       port == 0 && std::chrono::steady_clock::now() < deadline;) {
    std::ifstream addr(data + "/listen.addr");
    std::string line;
    if (std::getline(addr, line) && line.find(':') != std::string::npos)
      port = static_cast<uint16_t>(std::atoi(line.substr(line.rfind(':') + 1).c_str()));
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_NE(port, 0) << "the service did not become ready";

  // About 3,000 access-log lines: many times what the pipe holds.
  RawConnection c(port);
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 3000; ++i) {
    ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    RawResponse r;
    ASSERT_TRUE(c.ReadResponse(&r, std::chrono::seconds(10))) << "no answer to request " << i;
    ASSERT_EQ(r.status, 200);
  }
  ASSERT_TRUE(c.Send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  RawResponse metrics;
  ASSERT_TRUE(c.ReadResponse(&metrics, std::chrono::seconds(10)));
  EXPECT_GT(MetricSample(metrics.body, "geoledger_log_lines_dropped_total"), 0) << metrics.body.substr(0, 2000);

  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  int status = 0;
  pid_t done = 0;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
       (done = ::waitpid(pid, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline;)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(done, pid) << "SIGTERM did not stop the service";
  reap.pid = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ::close(out[0]);
}

}  // namespace
}  // namespace geoledger::testing
