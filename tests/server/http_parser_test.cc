// HTTP/1.1 request framing: pipelining, split reads, chunked bodies, limits,
// and the inputs that must be refused because parsers could disagree on them.
#include "server/http_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace geoledger::server {
namespace {

using Result = HttpRequestParser::Result;

struct Parsed {
  std::vector<HttpRequest> requests;
  std::vector<bool> keep_alive;
  Result last = Result::kNeedMore;
  std::string error;
};

// Feeds `bytes` in pieces of `piece` bytes, collecting every request.
Parsed Feed(const std::string& bytes, size_t piece = 0, HttpParserLimits limits = {4096, 8192}) {
  HttpRequestParser p(limits);
  Parsed out;
  if (piece == 0) piece = bytes.size();
  for (size_t i = 0; i < bytes.size(); i += piece) {
    p.Append(bytes.data() + i, std::min(piece, bytes.size() - i));
    while (true) {
      HttpRequest r;
      bool keep = false, http10 = false;
      out.last = p.Next(&r, &keep, &http10);
      if (out.last != Result::kRequest) break;
      out.requests.push_back(std::move(r));
      out.keep_alive.push_back(keep);
    }
    if (out.last != Result::kNeedMore) {
      out.error = p.error();
      break;
    }
  }
  return out;
}

TEST(HttpParserTest, PipelinedRequestsInOneReadAreAllFramed) {
  std::string two = "GET /a?x=1&y=%41 HTTP/1.1\r\nHost: h\r\nX-Tenant-Id:  acme \r\n\r\n"
                    "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Type: application/json\r\n\r\nhello"
                    "GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
  for (size_t piece : {0, 1, 2, 3, 7, 64}) {
    SCOPED_TRACE(piece);
    Parsed p = Feed(two, piece);
    ASSERT_EQ(p.last, Result::kNeedMore);
    ASSERT_EQ(p.requests.size(), 3u);
    EXPECT_EQ(p.requests[0].method, "GET");
    EXPECT_EQ(p.requests[0].path, "/a");
    EXPECT_EQ(p.requests[0].query.at("x"), "1");
    EXPECT_EQ(p.requests[0].query.at("y"), "A");
    ASSERT_NE(p.requests[0].Header("x-tenant-id"), nullptr);
    EXPECT_EQ(*p.requests[0].Header("x-tenant-id"), "acme");
    EXPECT_EQ(p.requests[1].method, "POST");
    EXPECT_EQ(p.requests[1].body, "hello");
    EXPECT_EQ(p.requests[2].path, "/c");
    EXPECT_TRUE(p.requests[2].body.empty());
  }
}

// A malformed query string is framed and flagged, not refused here: the
// dispatcher refuses it for every route but the gateway check.
TEST(HttpParserTest, AMalformedQueryStringIsFlaggedAndDropped) {
  Parsed p = Feed("GET /a?x=1&y=10%&z=2 HTTP/1.1\r\nHost: h\r\n\r\nGET /b?x=%41 HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(p.requests.size(), 2u);
  EXPECT_TRUE(p.requests[0].query_malformed);
  EXPECT_TRUE(p.requests[0].query.empty());
  EXPECT_EQ(p.requests[0].path, "/a");
  EXPECT_FALSE(p.requests[1].query_malformed);
  EXPECT_EQ(p.requests[1].query.at("x"), "A");
}

// A parameter given twice is flagged like a malformed query: which value
// counts would be a guess.
TEST(HttpParserTest, AQueryParameterGivenTwiceIsFlagged) {
  Parsed p = Feed("GET /a?start=0&start=5 HTTP/1.1\r\nHost: h\r\n\r\nGET /a?start=0&end=5 HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(p.requests.size(), 2u);
  EXPECT_TRUE(p.requests[0].query_malformed);
  EXPECT_TRUE(p.requests[0].query.empty());
  EXPECT_FALSE(p.requests[1].query_malformed);
  EXPECT_EQ(p.requests[1].query.at("end"), "5");
}

// Whitespace before a chunk extension is allowed (BWS), and an HTTP/1.0
// request may omit Host.
TEST(HttpParserTest, StrictFramingStillAcceptsWhatTheGrammarAllows) {
  Parsed p = Feed("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3 ;x=1\r\nabc\r\n0\r\n\r\n"
                  "GET /old HTTP/1.0\r\n\r\n");
  ASSERT_EQ(p.requests.size(), 2u) << p.error;
  EXPECT_EQ(p.requests[0].body, "abc");
  EXPECT_EQ(p.requests[1].path, "/old");
}

TEST(HttpParserTest, AbsoluteFormTargetsAreReducedToTheirPath) {
  Parsed p = Feed("GET http://gl.example:8080/v1/whoami?x=1 HTTP/1.1\r\nHost: h\r\n\r\nGET HTTPS://gl.example HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(p.requests.size(), 2u);
  EXPECT_EQ(p.requests[0].path, "/v1/whoami");
  EXPECT_EQ(p.requests[0].query.at("x"), "1");
  EXPECT_EQ(p.requests[1].path, "/");
}

TEST(HttpParserTest, BareLineFeedsAndLeadingEmptyLinesAreAccepted) {
  Parsed p = Feed("\r\n\nGET /x HTTP/1.1\nHost: h\n\n");
  ASSERT_EQ(p.requests.size(), 1u);
  EXPECT_EQ(p.requests[0].path, "/x");
}

// Empty lines are dropped as they arrive, so the frontend can tell a
// connection that sent only those (still idle, on its keep-alive timeout)
// from one that began a request (on its header timeout).
TEST(HttpParserTest, EmptyLinesAloneLeaveTheParserIdle) {
  HttpRequestParser p({4096, 8192});
  HttpRequest r;
  bool keep, http10;
  auto feed = [&](const std::string& s) { p.Append(s.data(), s.size()); };
  feed("\r\n");
  EXPECT_TRUE(p.idle());
  // A body followed by an empty line, in one read.
  feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok\r\n");
  EXPECT_FALSE(p.idle());
  ASSERT_EQ(p.Next(&r, &keep, &http10), Result::kRequest);
  EXPECT_EQ(r.body, "ok");
  EXPECT_TRUE(p.idle());
  // Empty lines on their own reads, a CRLF split between two.
  for (const char* bytes : {"\r\n", "\n", "\r", "\n"}) {
    feed(bytes);
    EXPECT_TRUE(p.idle()) << bytes;
    EXPECT_EQ(p.Next(&r, &keep, &http10), Result::kNeedMore);
  }
  feed("G");
  EXPECT_FALSE(p.idle());
  feed("ET /x HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(p.Next(&r, &keep, &http10), Result::kRequest);
  EXPECT_EQ(r.path, "/x");
  EXPECT_TRUE(p.idle());
}

// A few empty lines before each request are accepted; a client that sends
// nothing but empty lines is refused instead of read for as long as it sends.
TEST(HttpParserTest, ManyEmptyLinesBeforeARequestAreRefused) {
  std::string few;
  for (int i = 0; i < 8; ++i) few += "\r\n";
  const std::string get = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  for (size_t piece : {0, 1, 2}) {
    SCOPED_TRACE(piece);
    Parsed p = Feed(few + get + few + get + few, piece);
    EXPECT_EQ(p.last, Result::kNeedMore) << p.error;
    EXPECT_EQ(p.requests.size(), 2u);
    p = Feed(few + "\n" + get, piece);
    EXPECT_EQ(p.last, Result::kBadRequest);
    EXPECT_EQ(p.requests.size(), 0u);
    p = Feed(get + few + "\r\n" + get, piece);
    EXPECT_EQ(p.last, Result::kBadRequest);
    EXPECT_EQ(p.requests.size(), 1u);
  }
  HttpRequestParser p({4096, 8192});
  std::string many = few + few + "\n";
  p.Append(many.data(), many.size());
  EXPECT_FALSE(p.idle());  // the error is for Next() to report
  HttpRequest r;
  bool keep, http10;
  EXPECT_EQ(p.Next(&r, &keep, &http10), Result::kBadRequest);
}

// Connection is a list (RFC 9110 §7.6.1) whatever number of field lines it
// comes in, and "close" anywhere in it wins (RFC 9112 §9.6).
TEST(HttpParserTest, ConnectionFieldLinesAreOneListAndCloseWins) {
  Parsed p = Feed("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nConnection: te\r\n\r\n"
                  "GET / HTTP/1.1\r\nHost: h\r\nConnection: te\r\nconnection: CLOSE\r\n\r\n"
                  "GET / HTTP/1.1\r\nHost: h\r\nConnection: te\r\nConnection: keep-alive\r\n\r\n"
                  "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"
                  "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"
                  "GET / HTTP/1.0\r\nConnection: te\r\nConnection: keep-alive\r\n\r\n");
  ASSERT_EQ(p.last, Result::kNeedMore) << p.error;
  EXPECT_EQ(p.keep_alive, (std::vector<bool>{false, false, true, false, false, true}));
}

// Expect is a list too: 100 Continue is wanted when it names 100-continue,
// in any of its field lines; other expectations are ignored, as a single
// unknown one is.
TEST(HttpParserTest, ExpectFieldLinesAreOneList) {
  for (std::string expect : {"Expect: 100-continue\r\nExpect: something-else\r\n",
                             "Expect: something-else\r\nExpect: 100-continue\r\n",
                             "Expect: something-else, 100-Continue\r\n"}) {
    HttpRequestParser p({4096, 8192});
    std::string head = "POST / HTTP/1.1\r\nHost: h\r\n" + expect + "Content-Length: 2\r\n\r\n";
    p.Append(head.data(), head.size());
    HttpRequest r;
    bool keep, http10;
    EXPECT_EQ(p.Next(&r, &keep, &http10), Result::kNeedMore) << expect;
    EXPECT_TRUE(p.TakeContinue()) << expect;
    p.Append("ok", 2);
    EXPECT_EQ(p.Next(&r, &keep, &http10), Result::kRequest) << expect;
  }
}

TEST(HttpParserTest, ChunkedBodiesAreDecodedAcrossAnySplit) {
  std::string req = "POST /e HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
                    "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n"
                    "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  for (size_t piece : {0, 1, 4, 9}) {
    SCOPED_TRACE(piece);
    Parsed p = Feed(req, piece);
    ASSERT_EQ(p.last, Result::kNeedMore) << p.error;
    ASSERT_EQ(p.requests.size(), 2u);
    EXPECT_EQ(p.requests[0].body, "hello world");
    EXPECT_EQ(p.requests[1].path, "/next");
  }
}

TEST(HttpParserTest, ConnectionPersistenceFollowsTheVersionAndTheHeader) {
  Parsed p = Feed("GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, close\r\n\r\n"
                  "GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
  ASSERT_EQ(p.keep_alive, (std::vector<bool>{true, false, false, true}));
}

TEST(HttpParserTest, AmbiguousFramingIsRefused) {
  const char* bad[] = {
      "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 5\r\n\r\nhello",
      "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n folded\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX-A : 1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nno colon\r\n\r\n",
      "GET /  HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET ftp://x/ HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET http://x?a=1 HTTP/1.1\r\nHost: h\r\n\r\n",
      "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET / HTTP/2.0\r\n\r\n",
      "G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
      // Host: exactly one in HTTP/1.1, at most one in HTTP/1.0 (RFC 9112 §3.2).
      "GET / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n",
      // Chunk lines: hex digits first, whitespace only before an extension, CRLF only.
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: y\n\r\n",
  };
  for (const char* b : bad) {
    SCOPED_TRACE(b);
    Parsed p = Feed(b);
    EXPECT_EQ(p.last, Result::kBadRequest);
    EXPECT_TRUE(p.requests.empty());
    EXPECT_FALSE(p.error.empty());
  }
}

TEST(HttpParserTest, ARequestBeforeABadOneIsStillServedAndTheErrorSticks) {
  HttpRequestParser p({4096, 8192});
  std::string in = "GET /ok HTTP/1.1\r\nHost: h\r\n\r\nBAD\r\n\r\nGET /never HTTP/1.1\r\nHost: h\r\n\r\n";
  p.Append(in.data(), in.size());
  HttpRequest r;
  bool keep, http10;
  ASSERT_EQ(p.Next(&r, &keep, &http10), Result::kRequest);
  EXPECT_EQ(r.path, "/ok");
  EXPECT_EQ(p.Next(&r, &keep, &http10), Result::kBadRequest);
  EXPECT_EQ(p.Next(&r, &keep, &http10), Result::kBadRequest);
}

TEST(HttpParserTest, LimitsAreEnforcedBeforeTheBytesArrive) {
  HttpParserLimits limits{256, 1000};
  // Headers without an end: refused once over the limit, not buffered forever.
  Parsed p = Feed("GET / HTTP/1.1\r\nHost: h\r\nX-Long: " + std::string(300, 'a'), 16, limits);
  EXPECT_EQ(p.last, Result::kHeadersTooLarge);
  // A complete head over the limit.
  p = Feed("GET / HTTP/1.1\r\nHost: h\r\nX-Long: " + std::string(300, 'a') + "\r\n\r\n", 0, limits);
  EXPECT_EQ(p.last, Result::kHeadersTooLarge);
  // Content-Length over the limit: refused from the head alone.
  p = Feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n", 0, limits);
  EXPECT_EQ(p.last, Result::kBodyTooLarge);
  p = Feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 0, limits);
  EXPECT_NE(p.last, Result::kNeedMore);
  // Chunked bodies are counted as they are decoded.
  p = Feed("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + std::string(1000, 'x') + "\r\n1\r\n", 0,
           limits);
  EXPECT_EQ(p.last, Result::kBodyTooLarge);
  // Endless trailers.
  p = Feed("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + std::string(40, 'x') + ": y\r\n" +
               std::string(300, 'z') + ": y\r\n",
           0, limits);
  EXPECT_EQ(p.last, Result::kHeadersTooLarge);
}

TEST(HttpParserTest, IdleAndInBodyTellWhereTheParserIs) {
  HttpRequestParser p({4096, 8192});
  EXPECT_TRUE(p.idle());
  std::string head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n";
  p.Append(head.data(), head.size());
  HttpRequest r;
  bool keep, http10;
  EXPECT_EQ(p.Next(&r, &keep, &http10), Result::kNeedMore);
  EXPECT_FALSE(p.idle());
  EXPECT_TRUE(p.in_body());
  p.Append("abc", 3);
  EXPECT_EQ(p.Next(&r, &keep, &http10), Result::kRequest);
  EXPECT_EQ(r.body, "abc");
  EXPECT_TRUE(p.idle());
  EXPECT_FALSE(p.in_body());
}

TEST(HttpParserTest, ContinueIsWantedOncePerHttp11RequestWhoseBodyIsAwaited) {
  HttpRequestParser p({4096, 8192});
  HttpRequest r;
  bool keep, http10;
  auto feed = [&](const std::string& s) { p.Append(s.data(), s.size()); };
  feed("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n");
  EXPECT_FALSE(p.TakeContinue());  // nothing parsed yet
  EXPECT_EQ(p.Next(&r, &keep, &http10), Result::kNeedMore);
  EXPECT_TRUE(p.TakeContinue());
  EXPECT_FALSE(p.TakeContinue());  // once
  feed("ok");
  EXPECT_EQ(p.Next(&r, &keep, &http10), Result::kRequest);
  // HTTP/1.0, another expectation, or no body awaited: never.
  for (std::string head : {"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
                           "POST / HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\nContent-Length: 2\r\n\r\n",
                           "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n"}) {
    feed(head);
    EXPECT_EQ(p.Next(&r, &keep, &http10), Result::kNeedMore) << head;
    EXPECT_FALSE(p.TakeContinue()) << head;
    feed("ok");
    EXPECT_EQ(p.Next(&r, &keep, &http10), Result::kRequest) << head;
  }
  feed("GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(p.Next(&r, &keep, &http10), Result::kRequest);
  EXPECT_FALSE(p.TakeContinue());
}

}  // namespace
}  // namespace geoledger::server
