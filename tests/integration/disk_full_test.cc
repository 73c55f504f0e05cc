// A data volume that fills up while geoledgerd runs (runbook §9.3): the
// service refuses what it cannot audit and fails readiness, but stays up,
// and a restart once there is space again finds every acknowledged entry.
//
// The packaged RocksDB is built with assertions; it used to log to its own
// LOG file on the data volume, and its error recovery, logging through that
// file's failed writer, aborted the process on every run here.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <string>

#include "tests/integration/residency_policy.h"
#include "tests/integration/test_server.h"

namespace geoledger::testing {
namespace {

struct Unmount {
  std::string dir;
  ~Unmount() {
    if (!dir.empty()) ::umount2(dir.c_str(), MNT_DETACH);
  }
};

// Fills the filesystem of `dir` until about `leave` bytes are free.
bool Fill(const std::string& dir, uint64_t leave) {
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0) return false;
  const uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  if (free_bytes <= leave) return true;
  std::ofstream out(dir + "/filler", std::ios::binary);
  const std::string block(1 << 16, '\0');
  for (uint64_t left = free_bytes - leave; left > 0 && out;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left, block.size()));
    out.write(block.data(), static_cast<std::streamsize>(n));
    left -= n;
  }
  out.close();
  return true;
}

TEST(DiskFullTest, AFullDataVolumeIsRefusedNotACrashAndLosesNothingAcknowledged) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root";
  DirGuard guard{MakeTempDir()};
  // The store's directory is the small volume; the server's log
  // (DIR.log) and keys stay outside it.
  const std::string data = guard.dir + "/data";
  const std::string vol = data + "/db";
  ASSERT_EQ(::mkdir(data.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir(vol.c_str(), 0700), 0);
  if (::mount("tmpfs", vol.c_str(), "tmpfs", 0, "size=24m,mode=0700") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  Unmount unmount{vol};  // after the servers below, before the guard

  std::set<uint64_t> acknowledged;
  {
    auto server = TestServer::Start({}, data);
    ASSERT_TRUE(server->started()) << server->log();
    const std::string admin = server->admin_token();
    nlohmann::json body = {{"events", nlohmann::json::array()}};
    for (int i = 0; i < 200; ++i)
      body["events"].push_back({{"tenant", "t1"},
                                {"action", "fill"},
                                {"resource", std::string(200, 'r')},
                                {"outcome", "ok"},
                                {"details", {{"x", std::string(500, 'y')}}}});
    const std::string events = body.dump();
    auto append = [&] { return server->Authed(admin, "POST", "/v1/audit/events", events); };
    auto acknowledge = [&](const RawResponse& r) {
      const nlohmann::json answer = nlohmann::json::parse(r.body);
      for (const auto& index : answer.at("indexes")) acknowledged.insert(index.get<uint64_t>());
    };
    for (int i = 0; i < 5; ++i) {
      RawResponse r = append();
      ASSERT_EQ(r.status, 200) << r.body;
      acknowledge(r);
    }
    ASSERT_TRUE(Fill(vol, 64 << 10));
    int refused = 0;
    for (int i = 0; i < 400 && refused < 20; ++i) {
      RawResponse r = append();
      ASSERT_NE(r.status, 0) << "no answer: the service went away\n" << server->log();
      if (r.status == 200) {
        acknowledge(r);
        continue;
      }
      EXPECT_EQ(r.status, 503) << r.body;
      ++refused;
      // A decision that cannot be audited is refused too, never answered.
      RawResponse check = server->Authed(admin, "GET", "/v1/gateway/check", "",
                                         GatewayHeaders("t1", "personal", "store", "eu-west-1"));
      ASSERT_NE(check.status, 0) << server->log();
      EXPECT_EQ(check.status, 503) << check.body;
    }
    ASSERT_EQ(refused, 20) << "the volume never filled up";

    EXPECT_EQ(server->Request("GET", "/healthz").status, 200) << server->log();
    RawResponse ready = server->Request("GET", "/readyz");
    EXPECT_EQ(ready.status, 503);
    EXPECT_NE(ready.body.find("audit log storage failed"), std::string::npos) << ready.body;
    EXPECT_NE(server->log().find("storage engine"), std::string::npos)
        << "RocksDB's own errors are in the service's log";
    EXPECT_EQ(server->Terminate(), 0) << server->log();
  }

  ASSERT_FALSE(acknowledged.empty());
  // With space again, a start that verifies the whole log finds every
  // acknowledged entry.
  ASSERT_EQ(::unlink((vol + "/filler").c_str()), 0);
  auto again = TestServer::Start({"--audit-verify-on-start"}, data);
  ASSERT_TRUE(again->started()) << again->log();
  const std::string reader = again->CreateToken("auditor", {"audit:read"});
  ASSERT_FALSE(reader.empty());
  const uint64_t size = AuditSize(*again, reader);
  EXPECT_GT(size, *acknowledged.rbegin());
  struct stat st {};
  EXPECT_NE(::stat((vol + "/LOG").c_str(), &st), 0) << "RocksDB wrote its own log file on the data volume";
}

}  // namespace
}  // namespace geoledger::testing
