// Bad input at the HTTP layer: every case gets the right 4xx (or the
// connection is dropped) and the server keeps serving.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "tests/integration/test_server.h"

namespace geoledger::testing {
namespace {

class HttpLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = TestServer::Start({"--max-body-bytes", "4096", "--max-header-bytes", "8192",
                                 "--header-timeout-ms", "700", "--body-timeout-ms", "1500"});
    ASSERT_TRUE(server_->started()) << server_->log();
  }
  void ExpectStillServing() {
    RawResponse r = server_->Request("GET", "/healthz");
    EXPECT_EQ(r.status, 200) << server_->log();
  }
  void ExpectProblem(const RawResponse& r, int status, const std::string& slug) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.Header("content-type"), "application/problem+json");
    auto doc = nlohmann::json::parse(r.body, nullptr, false);
    ASSERT_TRUE(doc.is_object()) << r.body;
    EXPECT_EQ(doc.value("type", ""), "urn:geoledger:problem:" + slug);
    EXPECT_EQ(doc.value("status", 0), status);
    EXPECT_FALSE(doc.value("title", "").empty());
  }
  std::unique_ptr<TestServer> server_;
};

TEST_F(HttpLimitsTest, TwoRequestsWithoutConnectionHeaderShareOneSocket) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  const std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  RawResponse first, second;
  ASSERT_TRUE(c.Send(req));
  ASSERT_TRUE(c.ReadResponse(&first));
  EXPECT_EQ(first.status, 200);
  EXPECT_NE(first.Header("connection"), "Close");
  ASSERT_TRUE(c.Send(req));
  ASSERT_TRUE(c.ReadResponse(&second));
  EXPECT_EQ(second.status, 200);
}

TEST_F(HttpLimitsTest, IdleKeptAliveConnectionOutlivesTheHeaderTimeout) {
  // The header timeout (700 ms here) runs from a request's first byte, not
  // from the previous response; idle time is bounded by the keep-alive timeout.
  RawConnection c(server_->port());
  const std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  RawResponse r;
  ASSERT_TRUE(c.Send(req));
  ASSERT_TRUE(c.ReadResponse(&r));
  EXPECT_FALSE(c.WaitForClose(std::chrono::milliseconds(2000)));
  ASSERT_TRUE(c.Send(req));
  ASSERT_TRUE(c.ReadResponse(&r));
  EXPECT_EQ(r.status, 200);
}

// Responses are written straight to the socket while it takes them; what it
// does not take waits until the socket drains, and later responses queue
// behind it. A client with a tiny receive window that pipelines a large
// answer between small ones must get every byte, in request order.
class HttpPipeliningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server = TestServer::Start();
    ASSERT_TRUE(server->started()) << server->log();
    // 1000 entries of ~500 bytes: GET /v1/audit/entries?start=0&end=1000 answers ~1 MB.
    nlohmann::json events = nlohmann::json::array();
    for (int i = 0; i < 1000; ++i)
      events.push_back({{"tenant", "acme"}, {"action", "record.read"}, {"resource", "orders/" + std::to_string(i)},
                        {"outcome", "ok"}, {"details", {{"padding", std::string(200, 'p')}}}});
    ASSERT_EQ(server->Authed(server->admin_token(), "POST", "/v1/audit/events",
                             nlohmann::json{{"events", events}}.dump()).status,
              200);
  }
  // A connection whose receive window stays small (set before connect).
  int SlowReader() { return ConnectSlowReader(server->port(), 2048); }
  std::unique_ptr<TestServer> server;
};

TEST_F(HttpPipeliningTest, ResponsesLargerThanTheSocketBufferArriveWholeAndInOrder) {
  int fd = SlowReader();
  ASSERT_GE(fd, 0);
  const std::string auth = "Authorization: Bearer " + server->admin_token() + "\r\n";
  const std::string big = "GET /v1/audit/entries?start=0&end=1000 HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n";
  const std::string small_req = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: between\r\n\r\n";
  const std::string pipeline = big + small_req + big + small_req;
  ASSERT_EQ(::send(fd, pipeline.data(), pipeline.size(), MSG_NOSIGNAL), static_cast<ssize_t>(pipeline.size()));

  // Read slowly: the server meets a full socket many times over.
  std::string received;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto complete = [&received]() {
    // Four Content-Length framed responses.
    size_t pos = 0;
    for (int i = 0; i < 4; ++i) {
      size_t head_end = received.find("\r\n\r\n", pos);
      if (head_end == std::string::npos) return false;
      size_t cl = received.find("Content-Length: ", pos);
      if (cl == std::string::npos || cl > head_end) return false;
      pos = head_end + 4 + std::strtoul(received.c_str() + cl + 16, nullptr, 10);
      if (pos > received.size()) return false;
    }
    return true;
  };
  while (!complete() && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) continue;
    char buf[1024];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    ASSERT_GT(n, 0) << "connection closed after " << received.size() << " bytes";
    received.append(buf, static_cast<size_t>(n));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ::close(fd);
  ASSERT_TRUE(complete()) << "got " << received.size() << " bytes";

  std::vector<RawResponse> responses;
  size_t pos = 0;
  for (int i = 0; i < 4; ++i) {
    size_t head_end = received.find("\r\n\r\n", pos);
    RawResponse r;
    r.status = std::atoi(received.substr(pos + 9, 3).c_str());
    size_t cl = received.find("Content-Length: ", pos);
    size_t length = std::strtoul(received.c_str() + cl + 16, nullptr, 10);
    r.body = received.substr(head_end + 4, length);
    if (received.find("X-Request-Id: between", pos) < head_end) r.headers["x-request-id"] = "between";
    pos = head_end + 4 + length;
    responses.push_back(r);
  }
  EXPECT_EQ(pos, received.size()) << "bytes after the fourth response";
  for (int i : {0, 2}) {
    EXPECT_EQ(responses[i].status, 200);
    auto doc = nlohmann::json::parse(responses[i].body, nullptr, false);
    ASSERT_TRUE(doc.is_object()) << "response " << i << " is not whole JSON (" << responses[i].body.size() << " bytes)";
    ASSERT_EQ(doc["entries"].size(), 1000u);
    EXPECT_EQ(doc["entries"][999]["index"], 999);
    EXPECT_GT(responses[i].body.size(), 200u * 1000u);
  }
  for (int i : {1, 3}) {
    EXPECT_EQ(responses[i].status, 200);
    EXPECT_EQ(responses[i].Header("x-request-id"), "between");
    EXPECT_EQ(responses[i].body, R"({"status":"ok"})");
  }
  EXPECT_EQ(server->Request("GET", "/healthz").status, 200);
}

// A client that half-closes once its requests are out (shutdown(SHUT_WR),
// `nc -N`) and then reads slowly gets every byte of every answer, and then
// the close. Pistache 0.0.5 took the end of input for a hang-up and dropped
// what it still held for the socket: 3.3 of 5.4 MB of an export, or the
// last answers of a pipeline, cut short without an error.
TEST_F(HttpPipeliningTest, AClientThatHalfClosesGetsEveryByteOfEveryAnswer) {
  int fd = SlowReader();
  ASSERT_GE(fd, 0);
  const std::string big = "GET /v1/audit/entries?start=0&end=1000 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                          server->admin_token() + "\r\n\r\n";
  // Six answers of about 1 MB: more than the kernel's socket buffers hold.
  const std::string pipeline = big + big + big + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + big + big + big;
  ASSERT_EQ(::send(fd, pipeline.data(), pipeline.size(), MSG_NOSIGNAL), static_cast<ssize_t>(pipeline.size()));
  ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the server sees the end of input
  bool closed = false;
  const std::string received = ReadUntilClosed(fd, std::chrono::seconds(90), 4096, &closed);
  ::close(fd);
  ASSERT_TRUE(closed) << "the connection was not closed after the answers";
  size_t pos = 0;
  for (int i = 0; i < 7; ++i) {
    const size_t head_end = received.find("\r\n\r\n", pos);
    ASSERT_NE(head_end, std::string::npos) << "answer " << i << " missing; " << received.size() << " bytes";
    EXPECT_EQ(received.compare(pos, 15, "HTTP/1.1 200 OK"), 0) << "answer " << i;
    const size_t cl = received.find("Content-Length: ", pos);
    ASSERT_LT(cl, head_end);
    const size_t length = std::strtoul(received.c_str() + cl + 16, nullptr, 10);
    ASSERT_LE(head_end + 4 + length, received.size()) << "answer " << i << " cut short";
    const std::string body = received.substr(head_end + 4, length);
    if (i == 3) {
      EXPECT_EQ(body, R"({"status":"ok"})");
    } else {
      auto doc = nlohmann::json::parse(body, nullptr, false);
      ASSERT_TRUE(doc.is_object()) << "answer " << i;
      EXPECT_EQ(doc["entries"].size(), 1000u);
    }
    pos = head_end + 4 + length;
  }
  EXPECT_EQ(pos, received.size()) << "bytes after the last answer";
}

// SIGTERM while a client is still reading answers already produced, and
// others are being produced: the stop waits (within the drain time) for all
// of them to go out, then closes.
TEST_F(HttpPipeliningTest, AnswersStillBeingReadAtShutdownAreFinished) {
  int fd = SlowReader();
  ASSERT_GE(fd, 0);
  const std::string big = "GET /v1/audit/entries?start=0&end=1000 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                          server->admin_token() + "\r\n\r\n";
  const std::string pipeline = big + big + big + big + big + big;
  ASSERT_EQ(::send(fd, pipeline.data(), pipeline.size(), MSG_NOSIGNAL), static_cast<ssize_t>(pipeline.size()));
  // As soon as the first answer starts arriving, while the later ones are
  // still being produced: those are answered during the drain, which closes
  // the connection after the last of them, not after the first.
  pollfd first{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&first, 1, 30000), 1);
  ASSERT_EQ(::kill(server->pid(), SIGTERM), 0);
  bool closed = false;
  const std::string received = ReadUntilClosed(fd, std::chrono::seconds(60), 4096, &closed);
  ::close(fd);
  EXPECT_TRUE(closed);
  size_t pos = 0, whole = 0;
  while (true) {
    const size_t head_end = received.find("\r\n\r\n", pos);
    if (head_end == std::string::npos) break;
    const size_t cl = received.find("Content-Length: ", pos);
    if (cl == std::string::npos || cl > head_end) break;
    const size_t length = std::strtoul(received.c_str() + cl + 16, nullptr, 10);
    if (head_end + 4 + length > received.size()) break;
    EXPECT_EQ(received.compare(pos, 15, "HTTP/1.1 200 OK"), 0) << "answer " << whole;
    pos = head_end + 4 + length;
    ++whole;
  }
  EXPECT_EQ(pos, received.size()) << "an answer was cut short after " << whole << " whole ones";
  EXPECT_EQ(whole, 6u);
  EXPECT_EQ(server->Terminate(), 0) << server->log();
}

TEST_F(HttpPipeliningTest, AClientThatPipelinesWithoutReadingIsCutOffNotBuffered) {
  int fd = SlowReader();
  ASSERT_GE(fd, 0);
  const std::string big = "GET /v1/audit/entries?start=0&end=1000 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                          server->admin_token() + "\r\n\r\n";
  std::string pipeline;
  for (int i = 0; i < 64; ++i) pipeline += big;
  ASSERT_EQ(::send(fd, pipeline.data(), pipeline.size(), MSG_NOSIGNAL), static_cast<ssize_t>(pipeline.size()));
  std::this_thread::sleep_for(std::chrono::seconds(2));  // the server meets a full socket and queues
  // Now drain everything until the server closes (answers are produced on
  // the server's HTTP thread; under sanitizers that takes seconds).
  const std::string received = ReadUntilClosed(fd, std::chrono::seconds(90));
  ::close(fd);
  // The bodies are JSON with base64 entries: this status line occurs only as one.
  const size_t ok = CountOccurrences(received, "HTTP/1.1 200 OK\r\n");
  EXPECT_GE(ok, 1u);
  // At most 32 answers wait in the server, plus what the kernel's socket
  // buffers took before the first had to wait.
  EXPECT_LT(ok, 64u) << "every pipelined answer was produced and held";
  EXPECT_NE(received.find("HTTP/1.1 503 Service Unavailable\r\n"), std::string::npos) << ok << " answers";
  EXPECT_NE(received.find("too many pipelined requests"), std::string::npos) << ok << " answers";
  // Like every 503, it says when to come back.
  const size_t refusal = received.find("HTTP/1.1 503 Service Unavailable\r\n");
  ASSERT_NE(refusal, std::string::npos);
  const size_t head_end = received.find("\r\n\r\n", refusal);
  EXPECT_NE(received.substr(refusal, head_end - refusal).find("\r\nRetry-After: 1\r\n"), std::string::npos)
      << received.substr(refusal, head_end - refusal);
  EXPECT_EQ(server->Request("GET", "/healthz").status, 200);
}

TEST_F(HttpLimitsTest, AnswersToHeadCarryNoBodyAndTheConnectionStaysInStep) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.Send("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  // The HEAD answer's Content-Length describes a body that is not sent:
  // read its head only, then the GET's whole answer must follow.
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (got.find("{\"status\":\"ok\"}") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{c.fd(), POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(c.fd(), buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    got.append(buf, static_cast<size_t>(n));
  }
  size_t first_end = got.find("\r\n\r\n");
  ASSERT_NE(first_end, std::string::npos) << got;
  EXPECT_EQ(got.compare(0, 9, "HTTP/1.1 "), 0);
  std::string second = got.substr(first_end + 4);
  EXPECT_EQ(second.compare(0, 15, "HTTP/1.1 200 OK"), 0) << "a body followed the HEAD answer: " << got;
  EXPECT_NE(second.find("\r\n\r\n{\"status\":\"ok\"}"), std::string::npos) << got;
}

// Reads from `c` until `marker` has arrived or 10 s pass.
std::string ReadUntil(RawConnection& c, const std::string& marker) {
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (got.find(marker) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{c.fd(), POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(c.fd(), buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

TEST_F(HttpLimitsTest, ExpectContinueIsAnsweredBeforeTheBodyIsSent) {
  const std::string body = R"({"name":"expecting","scopes":["decide"]})";
  auto head = [&](const char* version) {
    return std::string("POST /v1/admin/tokens ") + version +
           "\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nAuthorization: Bearer " +
           server_->admin_token() + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  };
  {
    RawConnection c(server_->port());
    ASSERT_TRUE(c.Send(head("HTTP/1.1")));
    EXPECT_EQ(ReadUntil(c, "\r\n\r\n"), "HTTP/1.1 100 Continue\r\n\r\n");
    ASSERT_TRUE(c.Send(body));
    RawResponse r;
    ASSERT_TRUE(c.ReadResponse(&r));
    EXPECT_EQ(r.status, 201) << r.body;
  }
  {
    // Never to HTTP/1.0; and not when the body came with the head.
    RawConnection c(server_->port());
    ASSERT_TRUE(c.Send(head("HTTP/1.0")));
    ASSERT_TRUE(c.Send(body));
    std::string got = ReadUntil(c, "\r\n\r\n");
    EXPECT_EQ(got.compare(0, 13, "HTTP/1.0 409 "), 0) << got;  // the name is taken: still a final answer first
  }
  {
    RawConnection c(server_->port());
    ASSERT_TRUE(c.Send(head("HTTP/1.1") + body));
    RawResponse r;
    ASSERT_TRUE(c.ReadResponse(&r));
    EXPECT_EQ(r.status, 409) << r.body;
  }
}

TEST_F(HttpLimitsTest, RequestsPipelinedAfterConnectionCloseAreNotRun) {
  // A token creation pipelined behind a "Connection: close" request must not
  // happen: the server stops reading requests at the close.
  RawConnection c(server_->port());
  const std::string body = R"({"name":"after-close","scopes":["decide"]})";
  const std::string create = "POST /v1/admin/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             "Authorization: Bearer " + server_->admin_token() +
                             "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  // The same request on its own connection does create the token.
  ASSERT_EQ(server_->Authed(server_->admin_token(), "POST", "/v1/admin/tokens",
                            R"({"name":"control","scopes":["decide"]})").status,
            201);
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + create));
  RawResponse r;
  ASSERT_TRUE(c.ReadResponse(&r));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("connection"), "Close");
  EXPECT_TRUE(c.WaitForClose(std::chrono::seconds(5)));
  RawResponse list = server_->Authed(server_->admin_token(), "GET", "/v1/admin/tokens");
  ASSERT_EQ(list.status, 200);
  EXPECT_NE(list.body.find("control"), std::string::npos) << list.body;
  EXPECT_EQ(list.body.find("after-close"), std::string::npos) << list.body;
}

TEST_F(HttpLimitsTest, ConnectionCloseIsHonoured) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  RawResponse r;
  ASSERT_TRUE(c.ReadResponse(&r));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("connection"), "Close");
  EXPECT_TRUE(c.WaitForClose(std::chrono::seconds(5)));
}

TEST_F(HttpLimitsTest, Http10ClosesByDefault) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.0\r\n\r\n"));
  RawResponse r;
  ASSERT_TRUE(c.ReadResponse(&r));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(c.WaitForClose(std::chrono::seconds(5)));
}

TEST_F(HttpLimitsTest, MalformedRequestLineGets400AndClose) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.Send("THIS IS NOT HTTP\r\n\r\n"));
  RawResponse r;
  if (c.ReadResponse(&r)) ExpectProblem(r, 400, "bad-request");
  EXPECT_TRUE(c.WaitForClose(std::chrono::seconds(5)));
  ExpectStillServing();
}

TEST_F(HttpLimitsTest, HundredKilobyteHeaderGets431AndClose) {
  RawConnection c(server_->port());
  std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(100 * 1024, 'a') + "\r\n\r\n";
  c.Send(req);  // the server may close before taking all of it
  RawResponse r;
  if (c.ReadResponse(&r)) ExpectProblem(r, 431, "headers-too-large");
  EXPECT_TRUE(c.WaitForClose(std::chrono::seconds(5)));
  ExpectStillServing();
}

TEST_F(HttpLimitsTest, BodyOverLimitGets413BeforeItIsSent) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.Send("POST /v1/admin/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Authorization: Bearer " + server_->admin_token() +
                     "\r\nContent-Length: 100000\r\n\r\n{\"name\":"));
  RawResponse r;
  ASSERT_TRUE(c.ReadResponse(&r));
  ExpectProblem(r, 413, "payload-too-large");
  EXPECT_TRUE(c.WaitForClose(std::chrono::seconds(5)));
  // Nothing was created.
  RawResponse list = server_->Authed(server_->admin_token(), "GET", "/v1/admin/tokens");
  EXPECT_EQ(nlohmann::json::parse(list.body)["tokens"].size(), 1u);
  ExpectStillServing();
}

TEST_F(HttpLimitsTest, BodyOverLimitSentWholeGets413) {
  std::string body = "{\"name\":\"" + std::string(6000, 'a') + "\",\"scopes\":[\"decide\"]}";
  RawResponse r = server_->Authed(server_->admin_token(), "POST", "/v1/admin/tokens", body);
  ExpectProblem(r, 413, "payload-too-large");
  ExpectStillServing();
}

TEST_F(HttpLimitsTest, WrongContentTypeGets415AndChangesNothing) {
  RawResponse r = server_->Authed(server_->admin_token(), "POST", "/v1/admin/tokens",
                                  R"({"name":"x","scopes":["decide"]})", {{"Content-Type", "text/plain"}});
  ExpectProblem(r, 415, "unsupported-media-type");
  RawResponse list = server_->Authed(server_->admin_token(), "GET", "/v1/admin/tokens");
  EXPECT_EQ(nlohmann::json::parse(list.body)["tokens"].size(), 1u);
  ExpectStillServing();
}

TEST_F(HttpLimitsTest, InvalidJsonGets400) {
  RawResponse r = server_->Authed(server_->admin_token(), "POST", "/v1/admin/tokens", "{not json");
  ExpectProblem(r, 400, "bad-request");
  RawResponse deep = server_->Authed(server_->admin_token(), "POST", "/v1/admin/tokens",
                                     std::string(2000, '[') + std::string(2000, ']'));
  ExpectProblem(deep, 400, "bad-request");
  ExpectStillServing();
}

TEST_F(HttpLimitsTest, TokenCreationRefusesBadFieldsNamingThemAndCreatesNothing) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"name":7,"scopes":["decide"]})", "'name' must be a string"},
      {R"({"scopes":["decide"]})", "'name' is required"},
      {R"({"name":"","scopes":["decide"]})", "'name' must be 1-64 bytes"},
      {R"({"name":"x","scopes":["decide"],"tenant":["acme"]})", "'tenant' must be a string"},
      {R"({"name":"x","scopes":"decide"})", "'scopes' must be an array of strings"},
      {R"({"name":"x","scopes":["decide"],"owner":"me"})", "unknown field 'owner'"},
      {R"({"name":"x y","scopes":["decide"]})", "token name must be"},
  };
  for (const auto& [body, detail] : cases) {
    RawResponse r = server_->Authed(server_->admin_token(), "POST", "/v1/admin/tokens", body);
    ExpectProblem(r, 400, "bad-request");
    EXPECT_NE(r.body.find(detail), std::string::npos) << body << " -> " << r.body;
  }
  RawResponse list = server_->Authed(server_->admin_token(), "GET", "/v1/admin/tokens");
  EXPECT_EQ(nlohmann::json::parse(list.body)["tokens"].size(), 1u);
  ExpectStillServing();
}

TEST_F(HttpLimitsTest, SilentClientIsDroppedAndOthersAreServedMeanwhile) {
  RawConnection silent(server_->port());
  ASSERT_TRUE(silent.connected());
  ExpectStillServing();  // the silent connection blocks nobody
  EXPECT_TRUE(silent.WaitForClose(std::chrono::seconds(10)));
  ExpectStillServing();
}

TEST_F(HttpLimitsTest, SlowHeadersAreCutOff) {
  RawConnection slow(server_->port());
  ASSERT_TRUE(slow.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));  // never finishes
  EXPECT_TRUE(slow.WaitForClose(std::chrono::seconds(10)));
  ExpectStillServing();
}

TEST_F(HttpLimitsTest, SlowHeadersOnAKeptAliveConnectionAreCutOff) {
  // After one answered request the connection is idle (keep-alive timeout:
  // 60 s); a second request that never completes is still bound by the
  // header timeout.
  RawConnection c(server_->port());
  RawResponse r;
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(c.ReadResponse(&r));
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  EXPECT_TRUE(c.WaitForClose(std::chrono::seconds(10)));
  ExpectStillServing();
}

TEST_F(HttpLimitsTest, ABodyMayTakeLongerThanTheHeaderTimeoutWithinTheBodyTimeout) {
  // Header timeout 700 ms, body timeout 1500 ms: once the head is in, the
  // body timeout applies.
  RawConnection c(server_->port());
  ASSERT_TRUE(c.Send("POST /v1/audit/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Authorization: Bearer " + server_->admin_token() + "\r\nContent-Length: 2\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ASSERT_TRUE(c.Send("{}"));
  RawResponse r;
  ASSERT_TRUE(c.ReadResponse(&r)) << "connection closed while the body was within its timeout";
  ExpectProblem(r, 400, "bad-request");  // no "events": the request itself was read whole
}

TEST_F(HttpLimitsTest, SlowBodyIsCutOff) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.Send("POST /v1/audit/events HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{}"));
  EXPECT_TRUE(c.WaitForClose(std::chrono::seconds(10)));
  ExpectStillServing();
}

TEST_F(HttpLimitsTest, UnknownPathGets404) {
  ExpectProblem(server_->Request("GET", "/nope"), 404, "not-found");
  ExpectProblem(server_->Request("GET", "/healthz/"), 404, "not-found");
}

TEST_F(HttpLimitsTest, WrongMethodGets405WithAllow) {
  RawResponse r = server_->Request("DELETE", "/healthz");
  ExpectProblem(r, 405, "method-not-allowed");
  EXPECT_EQ(r.Header("allow"), "GET");
}

TEST_F(HttpLimitsTest, RequestIdIsEchoedOrGenerated) {
  RawResponse echoed = server_->Request("GET", "/healthz", {{"X-Request-Id", "req-42.a"}});
  EXPECT_EQ(echoed.Header("x-request-id"), "req-42.a");
  RawResponse generated = server_->Request("GET", "/healthz", {{"X-Request-Id", "bad id with spaces"}});
  EXPECT_EQ(generated.Header("x-request-id").size(), 24u);
  RawResponse problem = server_->Request("GET", "/nope", {{"X-Request-Id", "trace-1"}});
  EXPECT_EQ(nlohmann::json::parse(problem.body).value("request_id", ""), "trace-1");
  EXPECT_NE(server_->log().find("\"request_id\":\"req-42.a\""), std::string::npos);
}

TEST_F(HttpLimitsTest, MetricsCountRequestsByRouteAndStatus) {
  server_->Request("GET", "/healthz");
  server_->Request("GET", "/nope");
  RawResponse m = server_->Request("GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("geoledger_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"}"),
            std::string::npos);
  EXPECT_NE(m.body.find("geoledger_http_requests_total{route=\"unmatched\",method=\"\",status=\"404\"}"),
            std::string::npos);
  EXPECT_NE(m.body.find("geoledger_http_request_duration_seconds_bucket{route=\"/healthz\""),
            std::string::npos);
  EXPECT_NE(m.body.find("geoledger_ready 1"), std::string::npos);
}

TEST_F(HttpLimitsTest, LogsAreJsonLinesWithoutSecrets) {
  server_->Authed(server_->admin_token(), "GET", "/v1/whoami");
  std::string log = server_->log();
  std::istringstream lines(log);
  std::string line;
  int parsed = 0;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_TRUE(j.is_object()) << line;
    ++parsed;
  }
  EXPECT_GT(parsed, 2);
  std::string secret = server_->admin_token().substr(server_->admin_token().find('.') + 1);
  EXPECT_EQ(log.find(secret), std::string::npos);
}

// Opens `n` connections to `port`, each served once (GET /healthz); they
// stay open in `kept`.
void KeepServedConnections(uint16_t port, int n, std::vector<std::unique_ptr<RawConnection>>* kept) {
  for (int i = 0; i < n; ++i) {
    kept->push_back(std::make_unique<RawConnection>(port));
    ASSERT_TRUE(kept->back()->connected());
    ASSERT_TRUE(kept->back()->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    RawResponse r;
    ASSERT_TRUE(kept->back()->ReadResponse(&r));
    ASSERT_EQ(r.status, 200);
  }
}

// The next connection to `port` is answered, before any request, with a 503
// problem document and Retry-After: 1, and closed.
void ExpectTheNextConnectionRefused(uint16_t port) {
  RawConnection extra(port);
  ASSERT_TRUE(extra.connected());
  RawResponse refused;
  ASSERT_TRUE(extra.ReadResponse(&refused));
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.Header("retry-after"), "1");
  EXPECT_EQ(refused.Header("content-type"), "application/problem+json");
  EXPECT_TRUE(extra.WaitForClose(std::chrono::seconds(10)));
}

// A connection admitted beyond the cap for a liveness probe: its request,
// unless GET /healthz, gets the cap's 503 problem document with Retry-After,
// and the connection is closed.
void ExpectAProbeConnectionRefusedOnItsRequest(uint16_t port, const std::string& request) {
  RawConnection extra(port);
  ASSERT_TRUE(extra.connected());
  ASSERT_TRUE(extra.Send(request));
  RawResponse refused;
  ASSERT_TRUE(extra.ReadResponse(&refused)) << request;
  EXPECT_EQ(refused.status, 503) << request;
  EXPECT_EQ(refused.Header("retry-after"), "1");
  EXPECT_EQ(refused.Header("content-type"), "application/problem+json");
  EXPECT_TRUE(extra.WaitForClose(std::chrono::seconds(10)));
}

// geoledgerd caps its open connections (--max-connections). Beyond it, 16
// more are admitted for liveness probes: GET /healthz is answered and the
// connection closed, anything else gets 503 and a close. When all 16 hold
// silent connections (a flood), the oldest is closed to make room, so a probe
// still gets its answer. The kept ones go on, and refusals are counted.
TEST(HttpConnectionCapTest, ConnectionsBeyondTheCapGet503ButLivenessProbesAreAnswered) {
  auto server = TestServer::Start({"--max-connections", "3"});
  ASSERT_TRUE(server->started()) << server->log();
  EXPECT_NE(server->log().find("\"max_connections\":3"), std::string::npos) << server->log();
  std::vector<std::unique_ptr<RawConnection>> kept;
  ASSERT_NO_FATAL_FAILURE(KeepServedConnections(server->port(), 3, &kept));
  ASSERT_NO_FATAL_FAILURE(ExpectAProbeConnectionRefusedOnItsRequest(server->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_NO_FATAL_FAILURE(ExpectAProbeConnectionRefusedOnItsRequest(
      server->port(), "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  {
    // A request with a body is refused once its head is in: no "100
    // Continue", and the body is not waited for.
    RawConnection body(server->port());
    ASSERT_TRUE(body.connected());
    ASSERT_TRUE(body.Send("POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                          "Expect: 100-continue\r\n\r\n"));
    bool closed = false;
    const std::string got = ReadUntilClosed(body.fd(), std::chrono::seconds(10), 65536, &closed);
    EXPECT_TRUE(closed);
    EXPECT_EQ(got.compare(0, 13, "HTTP/1.1 503 "), 0) << got;
    EXPECT_EQ(got.find("100 Continue"), std::string::npos) << got;
    // Answered in the request's own HTTP version.
    RawConnection http10(server->port());
    ASSERT_TRUE(http10.connected());
    ASSERT_TRUE(http10.Send("POST /v1/decisions HTTP/1.0\r\nContent-Length: 100000\r\n\r\n"));
    const std::string got10 = ReadUntilClosed(http10.fd(), std::chrono::seconds(10), 65536, &closed);
    EXPECT_TRUE(closed);
    EXPECT_EQ(got10.compare(0, 13, "HTTP/1.0 503 "), 0) << got10;
  }
  {
    // A refused HEAD gets its 503 without a body, in its own HTTP version.
    RawConnection head(server->port());
    ASSERT_TRUE(head.connected());
    ASSERT_TRUE(head.Send("HEAD /metrics HTTP/1.0\r\n\r\n"));
    bool closed = false;
    const std::string got = ReadUntilClosed(head.fd(), std::chrono::seconds(10), 65536, &closed);
    EXPECT_TRUE(closed);
    EXPECT_EQ(got.compare(0, 13, "HTTP/1.0 503 "), 0) << got;
    const size_t end = got.find("\r\n\r\n");
    ASSERT_NE(end, std::string::npos) << got;
    EXPECT_EQ(got.size(), end + 4) << "a body followed the HEAD answer: " << got;
  }
  auto metrics = [&kept] {
    RawResponse m;
    EXPECT_TRUE(kept[0]->Send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_TRUE(kept[0]->ReadResponse(&m));
    return m.body;
  };
  auto probe = [&server] {
    RawConnection c(server->port());
    EXPECT_TRUE(c.connected());
    EXPECT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    RawResponse alive;
    EXPECT_TRUE(c.ReadResponse(&alive));
    EXPECT_EQ(alive.status, 200) << alive.body;
    EXPECT_EQ(alive.Header("connection"), "Close");
    EXPECT_TRUE(c.WaitForClose(std::chrono::seconds(10)));
  };
  probe();
  // Twenty silent connections, each accepted before the next connects (the
  // count is monotonic; the open gauge passes through values transiently).
  auto sample = [&metrics](const std::string& name) {
    const std::string body = metrics();
    const size_t at = body.find("\n" + name + " ");
    return at == std::string::npos ? int64_t{-1} : std::stoll(body.substr(at + name.size() + 2));
  };
  const int64_t accepted = sample("geoledger_http_connections_accepted_total");
  std::vector<std::unique_ptr<RawConnection>> silent;
  for (int i = 0; i < 20; ++i) {
    silent.push_back(std::make_unique<RawConnection>(server->port()));
    ASSERT_TRUE(silent.back()->connected());
    for (int t = 0; t < 500 && sample("geoledger_http_connections_accepted_total") < accepted + i + 1; ++t)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // The probe gets its answer; four silent ones made room for the last four,
  // and the probe for a fifth: the oldest, never the newest.
  probe();
  auto closed_by_server = [](const RawConnection& c) {
    char byte;
    return ::recv(c.fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
  };
  auto count_closed = [&] {
    return std::count_if(silent.begin(), silent.end(), [&](const auto& c) { return closed_by_server(*c); });
  };
  for (int t = 0; t < 500 && count_closed() < 5; ++t) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(count_closed(), 5);
  EXPECT_FALSE(closed_by_server(*silent.back()));
  // Five refused requests above, and five silent connections closed.
  EXPECT_EQ(sample("geoledger_http_connections_refused_total"), 5 + 5) << metrics();
  // The closed ones are released: the kept three and fifteen silent ones
  // (the probe's place is free again) are open.
  for (int t = 0; t < 500 && sample("geoledger_http_connections_open") != 3 + 15; ++t)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(sample("geoledger_http_connections_open"), 3 + 15) << metrics();
  kept.clear();
  silent.clear();
  EXPECT_EQ(server->Terminate(), 0);
}

// --max-connections-per-client: one client address holding its allowance
// gets 503 for its next connection, another address is still served, and the
// refusal is counted on its own.
TEST(HttpConnectionCapTest, OneClientBeyondItsCapGets503WhileAnotherIsServed) {
  auto server = TestServer::Start({"--max-connections-per-client", "2"});
  ASSERT_TRUE(server->started()) << server->log();
  EXPECT_NE(server->log().find("\"max_connections_per_client\":2"), std::string::npos) << server->log();
  std::vector<std::unique_ptr<RawConnection>> kept;
  ASSERT_NO_FATAL_FAILURE(KeepServedConnections(server->port(), 2, &kept));
  ASSERT_NO_FATAL_FAILURE(ExpectTheNextConnectionRefused(server->port()));
  RawConnection other(server->port(), "127.0.0.2");
  ASSERT_TRUE(other.connected());
  ASSERT_TRUE(other.Send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  RawResponse m;
  ASSERT_TRUE(other.ReadResponse(&m));
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("\ngeoledger_http_connections_refused_per_client_total 1\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("\ngeoledger_http_connections_refused_total 0\n"), std::string::npos) << m.body;
  kept.clear();
  EXPECT_EQ(server->Terminate(), 0);
}

}  // namespace
}  // namespace geoledger::testing
