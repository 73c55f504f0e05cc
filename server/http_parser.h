// HTTP/1.1 request framing (RFC 9112), incremental, one per connection.
//
// Bytes are appended as they arrive; Next() hands out each complete request
// and keeps what follows it, so pipelined requests that arrive in one read
// are all served (Pistache 0.0.5's own parser keeps only the first).
//
// Strict where leniency would let two parsers disagree about where a request
// ends (request smuggling): no obs-fold, no whitespace before the colon, one
// Content-Length of digits only, Transfer-Encoding only as exactly "chunked"
// and never together with Content-Length. Lines end with CRLF or a bare LF.
// Anything else is an error and the connection is closed after the answer.
//
// Cost is linear in the bytes received however they are split: the search
// for the end of the header block resumes where the last one stopped, and
// chunked bodies are decoded as they come.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/http_types.h"

namespace geoledger::server {

struct HttpParserLimits {
  size_t max_header_bytes = 16 * 1024;  // request line and header fields
  size_t max_body_bytes = 1024 * 1024;  // decoded body
};

class HttpRequestParser {
 public:
  enum class Result {
    kNeedMore,         // no complete request buffered yet
    kRequest,          // *out holds the next request
    kBadRequest,       // 400: malformed; nothing more is parsed
    kHeadersTooLarge,  // 431
    kBodyTooLarge,     // 413, decided from Content-Length before the body arrives
  };

  explicit HttpRequestParser(HttpParserLimits limits) : limits_(limits) {}

  // Empty lines before a request line are dropped here (RFC 9112 §2.2), so
  // that bytes which are only those leave the parser idle(); after more
  // than a few of them before one request, Next() returns kBadRequest.
  void Append(const char* data, size_t len);

  // The next complete request, if buffered. On kRequest the request's bytes
  // are dropped from the buffer; call again for a pipelined one. Fills
  // method, path, query (percent-decoded), headers (names lower-cased,
  // values trimmed) and body; `keep_alive` is whether the client lets the
  // connection persist (HTTP/1.1 unless "close", HTTP/1.0 only with
  // "keep-alive"), `http10` whether it spoke HTTP/1.0.
  Result Next(HttpRequest* out, bool* keep_alive, bool* http10);

  // True when no byte of a next request is buffered (empty lines before it
  // do not count) and no error is pending.
  bool idle() const { return buf_.empty() && state_ == State::kHead && failed_ == Result::kNeedMore; }
  // True while the head of a request is complete and its body is awaited.
  bool in_body() const { return state_ != State::kHead; }
  // While in_body(): the request's method, path, query and headers (no
  // body yet), and whether it spoke HTTP/1.0.
  const HttpRequest& head() const { return req_; }
  bool head_http10() const { return http10_; }
  // True once per request, while its body is awaited, when the client sent
  // "Expect: 100-continue" over HTTP/1.1 and may be waiting for a
  // "100 Continue" before it sends the body (RFC 9110 §10.1.1).
  bool TakeContinue() {
    bool wanted = in_body() && continue_wanted_;
    continue_wanted_ = false;
    return wanted;
  }
  // Human-readable reason of the last error, for the problem document.
  const std::string& error() const { return error_; }

 private:
  enum class State { kHead, kLengthBody, kChunkSize, kChunkData, kChunkDataEnd, kTrailers };

  void SkipEmptyLines();
  Result ParseHead(size_t head_len);
  Result Fail(Result r, std::string why) {
    error_ = std::move(why);
    failed_ = r;
    return r;
  }
  Result Deliver(HttpRequest* out, bool* keep_alive, bool* http10);
  Result DecodeChunked();
  Result DecodeChunkedFrom(size_t* pos);

  const HttpParserLimits limits_;
  std::string buf_;
  Result failed_ = Result::kNeedMore;  // sticky once an error is returned
  std::string error_;

  State state_ = State::kHead;
  size_t scan_from_ = 0;  // where the search for the end of the head resumes
  size_t empty_line_bytes_ = 0;  // CR and LF dropped before the next request line

  // The request whose head is parsed.
  HttpRequest req_;
  bool keep_alive_ = true;
  bool http10_ = false;
  bool continue_wanted_ = false;  // this request asked for 100 Continue, not yet taken
  size_t content_length_ = 0;
  size_t chunk_left_ = 0;     // kChunkData: bytes of the current chunk still to come
  size_t trailer_bytes_ = 0;  // kTrailers: bytes of trailer fields so far
};

}  // namespace geoledger::server
