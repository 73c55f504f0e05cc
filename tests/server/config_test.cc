#include "server/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>

namespace geoledger::server {
namespace {

StatusOr<ServerConfig> Parse(std::vector<std::string> args, std::vector<std::string> env = {}) {
  args.insert(args.begin(), "geoledgerd");
  std::vector<const char*> argv;
  for (auto& a : args) argv.push_back(a.c_str());
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  return ParseConfig(static_cast<int>(argv.size()), argv.data(), envp.data());
}

TEST(ConfigTest, DefaultsAndRequiredFlags) {
  auto c = Parse({"--data-dir", "/d", "--region", "eu-west-1"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->listen_host, "127.0.0.1");
  EXPECT_EQ(c->listen_port, 8080);
  EXPECT_FALSE(c->dev);
  EXPECT_GE(c->threads, 1);
  EXPECT_FALSE(Parse({"--region", "eu-west-1"}).ok());
  EXPECT_FALSE(Parse({"--data-dir", "/d"}).ok());
}

TEST(ConfigTest, MaxConnectionsIsSetOrFollowsTheDescriptorLimit) {
  auto c = Parse({"--data-dir", "/d", "--region", "eu-west-1"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->max_connections, 0u);
  c = Parse({"--data-dir", "/d", "--region", "eu-west-1", "--max-connections", "500"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->max_connections, 500u);
  EXPECT_FALSE(Parse({"--data-dir", "/d", "--region", "eu-west-1", "--max-connections", "-1"}).ok());
  EXPECT_FALSE(Parse({"--data-dir", "/d", "--region", "eu-west-1", "--max-connections", "many"}).ok());
  EXPECT_EQ(c->max_connections_per_client, 0u);
  c = Parse({"--data-dir", "/d", "--region", "eu-west-1", "--max-connections-per-client", "64"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->max_connections_per_client, 64u);
  EXPECT_FALSE(Parse({"--data-dir", "/d", "--region", "eu-west-1", "--max-connections-per-client", "-1"}).ok());
  EXPECT_EQ(EffectiveMaxConnections(500, 1024), 500u);     // configured wins
  EXPECT_EQ(EffectiveMaxConnections(0, 65536), 32640u);    // (65536 - 256) / 2
  EXPECT_EQ(EffectiveMaxConnections(0, 1024), 384u);
  EXPECT_EQ(EffectiveMaxConnections(0, 100), 16u);         // never below 16
  EXPECT_EQ(EffectiveMaxConnections(0, ~uint64_t{0}), 1'000'000u);  // RLIM_INFINITY
}

TEST(ConfigTest, FlagBeatsEnvironmentBeatsFile) {
  std::string path = ::testing::TempDir() + "/cfg-" + std::to_string(::getpid()) + ".yaml";
  std::ofstream(path) << "max_body_bytes: 2048\nmax_header_bytes: 4096\nregion: eu-central-1\n";
  auto c = Parse({"--data-dir", "/d", "--config", path, "--max-body-bytes", "8192"},
                 {"GEOLEDGER_MAX_HEADER_BYTES=9000", "GEOLEDGER_LISTEN=0.0.0.0:9090"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->max_body_bytes, 8192u);    // flag
  EXPECT_EQ(c->max_header_bytes, 9000u);  // env over file
  EXPECT_EQ(c->region, "eu-central-1");   // file
  EXPECT_EQ(c->listen_host, "0.0.0.0");
  EXPECT_EQ(c->listen_port, 9090);
}

TEST(ConfigTest, BadValuesAreRefusedWithTheOptionName) {
  auto bad = Parse({"--data-dir", "/d", "--region", "eu", "--max-body-bytes", "12abc"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("size"), std::string::npos);
  EXPECT_FALSE(Parse({"--data-dir", "/d", "--region", "EU"}).ok());
  EXPECT_FALSE(Parse({"--data-dir", "/d", "--region", "eu", "--listen", "host"}).ok());
  EXPECT_FALSE(Parse({"--data-dir", "/d", "--region", "eu", "--listen", "h:70000"}).ok());
  EXPECT_FALSE(Parse({"--data-dir", "/d", "--region", "eu", "--tls-cert", "c.pem"}).ok());
  EXPECT_FALSE(Parse({"--data-dir", "/d", "--region", "eu", "--tls-client-ca", "ca.pem"}).ok());
  EXPECT_FALSE(Parse({"--data-dir", "/d", "--region", "eu", "--rate-limit-tenant-rps", "-1"}).ok());
  for (const char* odd : {"nan", "NaN", "-nan", "inf", "infinity", "1e10"}) {
    EXPECT_FALSE(Parse({"--data-dir", "/d", "--region", "eu", "--rate-limit-tenant-rps", odd}).ok()) << odd;
    EXPECT_FALSE(Parse({"--data-dir", "/d", "--region", "eu", "--rate-limit-token-burst", odd}).ok()) << odd;
  }
  EXPECT_FALSE(Parse({"--data-dir", "/d", "--region", "eu", "--no-such-flag"}).ok());
  // A decision audit queue smaller than the largest batch (1000) would answer
  // such a batch 503 + Retry-After forever.
  bad = Parse({"--data-dir", "/d", "--region", "eu", "--decision-audit-queue", "999"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("decision-audit-queue"), std::string::npos) << bad.status().message();
  bad = Parse({"--data-dir", "/d", "--region", "eu", "--decision-audit-async-linger-ms", "500"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("decision-audit-async-linger-ms"), std::string::npos)
      << bad.status().message();
  EXPECT_TRUE(Parse({"--data-dir", "/d", "--region", "eu", "--decision-audit-queue", "1000"}).ok());
  EXPECT_FALSE(Parse({"--data-dir", "/d", "--region", "eu"}, {"GEOLEDGER_THREADS=many"}).ok());
}

TEST(ConfigTest, BadConfigFilesAreRefused) {
  std::string dir = ::testing::TempDir();
  std::string unknown = dir + "/unknown-" + std::to_string(::getpid()) + ".yaml";
  std::ofstream(unknown) << "max_body_byte: 1\n";
  EXPECT_FALSE(Parse({"--data-dir", "/d", "--region", "eu", "--config", unknown}).ok());
  std::string nested = dir + "/nested-" + std::to_string(::getpid()) + ".yaml";
  std::ofstream(nested) << "listen: {host: x}\n";
  EXPECT_FALSE(Parse({"--data-dir", "/d", "--region", "eu", "--config", nested}).ok());
  std::string broken = dir + "/broken-" + std::to_string(::getpid()) + ".yaml";
  std::ofstream(broken) << "a: [\n";
  EXPECT_FALSE(Parse({"--data-dir", "/d", "--region", "eu", "--config", broken}).ok());
  EXPECT_FALSE(Parse({"--data-dir", "/d", "--region", "eu", "--config", dir + "/missing.yaml"}).ok());
}

TEST(ConfigTest, ReferenceTableListsEveryOption) {
  std::string md = ConfigReferenceMarkdown();
  for (const char* k : {"--data-dir", "--listen", "--region", "--dev", "--max-body-bytes", "--tls-client-ca",
                        "GEOLEDGER_RATE_LIMIT_TENANT_RPS", "keepalive_timeout_ms"})
    EXPECT_NE(md.find(k), std::string::npos) << k;
}

// The README and the runbook carry the reference table; they must not drift
// from the options the binary accepts.
TEST(ConfigTest, ReadmeAndRunbookCarryTheCurrentReferenceTable) {
  std::string root = __FILE__;
  root = root.substr(0, root.rfind("/tests/"));
  for (const char* doc : {"/README.md", "/compliance-docs/runbook.md"}) {
    std::ifstream in(root + doc);
    ASSERT_TRUE(in.good()) << root + doc;
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream rows(ConfigReferenceMarkdown());
    for (std::string row; std::getline(rows, row);)
      if (row.rfind("| `--", 0) == 0) {
        EXPECT_NE(text.find(row), std::string::npos) << doc << " lacks:\n" << row;
      }
  }
}

}  // namespace
}  // namespace geoledger::server
