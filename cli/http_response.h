// HTTP/1.1 response values and the parser that turns received bytes into
// one. Pure functions over byte strings, no I/O: the transport lives in
// cli/http_client.h.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace geoledger::cli {

struct HttpResponse {
  int status = 0;      // 100-599
  std::string reason;  // reason phrase, possibly empty
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  std::string body;    // decoded (chunked framing removed)

  // First value of header `name` (give it lower-cased), or nullptr.
  const std::string* Header(std::string_view name) const;
};

struct HttpParseLimits {
  size_t max_header_bytes = 64 * 1024;        // status line + header section
  size_t max_body_bytes = 64 * 1024 * 1024;  // decoded body
};

// Looks at the bytes received so far on a connection and returns:
//  - the response, once it is complete (bytes after it are ignored);
//  - std::nullopt when more bytes are needed;
//  - kInvalidArgument when the bytes are not a well-formed HTTP/1.x response
//    (bad status line or header, bad Content-Length or chunk framing);
//  - kPayloadTooLarge when a limit in `limits` is exceeded;
//  - kUnavailable when `at_eof` (the peer closed the connection) and the
//    response is incomplete.
// Framing: chunked Transfer-Encoding, else Content-Length, else the body runs
// to the end of the connection (complete only when `at_eof`). 1xx interim
// responses other than 101 are skipped; 1xx, 204 and 304 have no body. The
// caller must not use it for answers to HEAD requests.
// Error messages describe the framing problem and never quote header values.
StatusOr<std::optional<HttpResponse>> TryParseHttpResponse(std::string_view bytes, bool at_eof,
                                                           const HttpParseLimits& limits = {});

// Parses a whole exchange: `bytes` is everything the server sent before it
// closed the connection. Same errors as TryParseHttpResponse with at_eof set.
StatusOr<HttpResponse> ParseHttpResponse(std::string_view bytes, const HttpParseLimits& limits = {});

}  // namespace geoledger::cli
