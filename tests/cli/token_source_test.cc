// Token files and the GEOLEDGER_TOKEN fallback; CLI output rendering.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "cli/output.h"
#include "cli/token_source.h"
#include "tests/integration/test_server.h"

namespace geoledger::cli {
namespace {

constexpr char kToken[] = "gl_0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = geoledger::testing::MakeTempDir(); }
  void TearDown() override { geoledger::testing::RemoveTree(dir_); }

  std::string Write(const std::string& name, const std::string& content, mode_t mode) {
    std::string path = dir_ + "/" + name;
    FILE* f = std::fopen(path.c_str(), "w");
    EXPECT_NE(f, nullptr);
    std::fwrite(content.data(), 1, content.size(), f);
    std::fclose(f);
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }

  std::string dir_;
};

TEST_F(TokenFileTest, ReadsAndTrimsAPrivateFile) {
  auto t = ReadTokenFile(Write("t", std::string("  ") + kToken + "\n\n", 0600));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, kToken);
  auto ro = ReadTokenFile(Write("ro", kToken, 0400));
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
}

TEST_F(TokenFileTest, RefusesFilesOthersCanRead) {
  for (mode_t mode : {0640, 0604, 0644}) {
    std::string path = Write("open" + std::to_string(mode), kToken, mode);
    auto t = ReadTokenFile(path);
    ASSERT_FALSE(t.ok()) << mode;
    EXPECT_EQ(t.status().code(), StatusCode::kPermissionDenied);
    EXPECT_NE(t.status().message().find("chmod 600 " + path), std::string::npos) << t.status().message();
    EXPECT_EQ(t.status().message().find(kToken), std::string::npos);
  }
}

TEST_F(TokenFileTest, RejectsBadContentWithoutEchoingIt) {
  EXPECT_EQ(ReadTokenFile(Write("empty", " \n", 0600)).status().code(), StatusCode::kInvalidArgument);
  auto two = ReadTokenFile(Write("two", std::string(kToken) + "\nsecond-secret\n", 0600));
  ASSERT_FALSE(two.ok());
  EXPECT_EQ(two.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(two.status().message().find("second-secret"), std::string::npos);
  EXPECT_EQ(ReadTokenFile(Write("big", std::string(kMaxTokenFileBytes + 1, 'a'), 0600)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadTokenFile(dir_).status().code(), StatusCode::kInvalidArgument);  // a directory
  EXPECT_EQ(ReadTokenFile(dir_ + "/missing").status().code(), StatusCode::kNotFound);
}

TEST_F(TokenFileTest, ResolvePrefersTheFileThenTheEnvironment) {
  std::string path = Write("t", kToken, 0600);
  auto from_file = ResolveToken(path, "gl_other");
  ASSERT_TRUE(from_file.ok());
  EXPECT_EQ(*from_file, kToken);
  auto from_env = ResolveToken("", " gl_env\n");
  ASSERT_TRUE(from_env.ok());
  EXPECT_EQ(*from_env, "gl_env");
  EXPECT_EQ(ResolveToken("", nullptr).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveToken("", "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveToken("", "two words").status().code(), StatusCode::kInvalidArgument);
}

TEST(OutputTest, FormatBodyIndentsJsonAndPassesTextThrough) {
  EXPECT_EQ(FormatBody(R"({"b":[1],"a":"x"})"), "{\n  \"a\": \"x\",\n  \"b\": [\n    1\n  ]\n}\n");
  EXPECT_EQ(FormatBody("plain"), "plain\n");
  EXPECT_EQ(FormatBody("bell\x07\n"), "bell?\n");
  EXPECT_EQ(FormatBody(""), "");
}

TEST(OutputTest, DescribeHttpErrorShowsTheProblemDocument) {
  HttpResponse r;
  r.status = 429;
  r.reason = "Too Many Requests";
  r.headers = {{"retry-after", "3"}, {"x-request-id", "hdr-id"}};
  r.body = R"({"type":"urn:geoledger:problem:rate-limited","title":"Too Many Requests","status":429,)"
           R"("detail":"rate limit for this token exceeded","request_id":"doc-id"})";
  EXPECT_EQ(DescribeHttpError(r),
            "HTTP 429 Too Many Requests: rate limit for this token exceeded\n"
            "  type: urn:geoledger:problem:rate-limited\n"
            "  request_id: doc-id\n"
            "  retry after: 3 s\n");
}

TEST(OutputTest, DescribeHttpErrorWithoutAProblemDocument) {
  HttpResponse r;
  r.status = 502;
  r.reason = "Bad Gateway";
  r.headers = {{"x-request-id", "hdr-id"}};
  r.body = "<html>upstream\x1b[31m down</html>";
  EXPECT_EQ(DescribeHttpError(r),
            "HTTP 502 Bad Gateway\n  request_id: hdr-id\n  body: <html>upstream?[31m down</html>\n");
}

}  // namespace
}  // namespace geoledger::cli
