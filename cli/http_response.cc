#include "cli/http_response.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>

namespace geoledger::cli {
namespace {

using Partial = std::optional<HttpResponse>;

constexpr size_t kMaxChunkLineBytes = 1024;

Status TooLarge(std::string m) { return Status(StatusCode::kPayloadTooLarge, std::move(m)); }

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string LowerCopy(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), Lower);
  return out;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// RFC 9110 token characters (header field names).
bool IsTchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c)) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The line starting at `from` without its terminator ("\r\n" or "\n"), and
// the offset just past the terminator; nullopt when no '\n' has arrived yet.
std::optional<std::pair<std::string_view, size_t>> NextLine(std::string_view bytes, size_t from) {
  size_t nl = bytes.find('\n', from);
  if (nl == std::string_view::npos) return std::nullopt;
  std::string_view line = bytes.substr(from, nl - from);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return std::make_pair(line, nl + 1);
}

// "HTTP/1.x SP 3DIGIT [SP reason]".
Status ParseStatusLine(std::string_view line, HttpResponse* r) {
  static const Status kBad = InvalidArgument("malformed HTTP status line");
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || (line[7] != '0' && line[7] != '1') ||
      line[8] != ' ' || !IsDigit(line[9]) || !IsDigit(line[10]) || !IsDigit(line[11]))
    return kBad;
  if (line.size() > 12 && line[12] != ' ') return kBad;
  r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (r->status < 100 || r->status > 599) return kBad;
  std::string_view reason = line.size() > 13 ? line.substr(13) : std::string_view();
  if (std::any_of(reason.begin(), reason.end(), [](char c) { return c == '\0' || c == '\r'; }))
    return kBad;
  r->reason = std::string(reason);
  return Status::Ok();
}

Status ParseHeaderLine(std::string_view line, HttpResponse* r) {
  if (line.front() == ' ' || line.front() == '\t')
    return InvalidArgument("malformed HTTP header: obsolete line folding");
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0)
    return InvalidArgument("malformed HTTP header: no field name");
  std::string_view name = line.substr(0, colon);
  if (!std::all_of(name.begin(), name.end(), IsTchar))
    return InvalidArgument("malformed HTTP header: invalid field name");
  std::string_view value = TrimOws(line.substr(colon + 1));
  if (std::any_of(value.begin(), value.end(), [](char c) { return c == '\0' || c == '\r'; }))
    return InvalidArgument("malformed HTTP header: control character in '" + LowerCopy(name) + "'");
  r->headers.emplace_back(LowerCopy(name), std::string(value));
  return Status::Ok();
}

// Splits a comma-separated header list into trimmed, lower-cased elements.
std::vector<std::string> ListElements(std::string_view value) {
  std::vector<std::string> out;
  while (true) {
    size_t comma = value.find(',');
    std::string_view item = TrimOws(value.substr(0, comma));
    if (!item.empty()) out.push_back(LowerCopy(item));
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return out;
}

// Every Content-Length value (repeated fields and comma lists) must agree.
StatusOr<std::optional<uint64_t>> ContentLength(const HttpResponse& r, const HttpParseLimits& limits) {
  std::optional<uint64_t> length;
  for (const auto& [name, value] : r.headers) {
    if (name != "content-length") continue;
    for (const std::string& item : ListElements(value)) {
      if (item.empty() || item.size() > 19 || !std::all_of(item.begin(), item.end(), IsDigit))
        return InvalidArgument("malformed Content-Length");
      uint64_t n = 0;
      std::from_chars(item.data(), item.data() + item.size(), n);  // validated: cannot fail
      if (length && *length != n) return InvalidArgument("conflicting Content-Length values");
      length = n;
    }
  }
  if (length && *length > limits.max_body_bytes)
    return TooLarge("response body of " + std::to_string(*length) + " bytes exceeds the limit of " +
                    std::to_string(limits.max_body_bytes));
  return length;
}

// True for chunked framing; false when there is no Transfer-Encoding.
StatusOr<bool> IsChunked(const HttpResponse& r) {
  std::vector<std::string> codings;
  for (const auto& [name, value] : r.headers)
    if (name == "transfer-encoding")
      for (std::string& c : ListElements(value)) codings.push_back(std::move(c));
  if (codings.empty()) return false;
  if (codings.size() == 1 && codings[0] == "chunked") return true;
  return InvalidArgument("unsupported Transfer-Encoding (only 'chunked' is accepted)");
}

// Walks chunked framing from `from`. Returns true once the last chunk and the
// trailer section have arrived (appending the data to `out` when non-null),
// false when more bytes are needed.
StatusOr<bool> ScanChunked(std::string_view bytes, size_t from, const HttpParseLimits& limits,
                           std::string* out) {
  size_t cur = from;
  uint64_t total = 0;
  while (true) {
    auto line = NextLine(bytes, cur);
    if (!line) {
      if (bytes.size() - cur > kMaxChunkLineBytes) return InvalidArgument("malformed chunk size line");
      return false;
    }
    if (line->first.size() > kMaxChunkLineBytes) return InvalidArgument("malformed chunk size line");
    std::string_view size_text = TrimOws(line->first.substr(0, line->first.find(';')));
    if (size_text.empty() || size_text.size() > 15 ||
        !std::all_of(size_text.begin(), size_text.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }))
      return InvalidArgument("malformed chunk size");
    uint64_t size = 0;
    std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);  // validated above
    cur = line->second;
    if (size > limits.max_body_bytes - total)
      return TooLarge("chunked response body exceeds the limit of " + std::to_string(limits.max_body_bytes) +
                      " bytes");
    if (size == 0) break;
    if (bytes.size() - cur < size + 1) return false;
    size_t after = cur + size;
    size_t terminator;
    if (bytes[after] == '\n') {
      terminator = 1;
    } else if (bytes[after] == '\r') {
      if (bytes.size() - after < 2) return false;
      if (bytes[after + 1] != '\n') return InvalidArgument("chunk data not followed by CRLF");
      terminator = 2;
    } else {
      return InvalidArgument("chunk data not followed by CRLF");
    }
    if (out != nullptr) out->append(bytes.substr(cur, size));
    total += size;
    cur = after + terminator;
  }
  // Trailer section: header lines (ignored) up to an empty line.
  const size_t trailer_start = cur;
  while (true) {
    auto line = NextLine(bytes, cur);
    if (!line) {
      if (bytes.size() - trailer_start > limits.max_header_bytes) return TooLarge("chunked trailer section too large");
      return false;
    }
    cur = line->second;
    if (line->first.empty()) return true;
    if (cur - trailer_start > limits.max_header_bytes) return TooLarge("chunked trailer section too large");
  }
}

}  // namespace

const std::string* HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

StatusOr<std::optional<HttpResponse>> TryParseHttpResponse(std::string_view bytes, bool at_eof,
                                                           const HttpParseLimits& limits) {
  size_t pos = 0;
  while (true) {  // once per response; 1xx interim responses loop
    if (at_eof && pos == bytes.size())
      return Unavailable(pos == 0 ? "connection closed without a response"
                                  : "connection closed after an interim response");
    // The header section ends at the first empty line.
    HttpResponse r;
    size_t cur = pos;
    bool first = true;
    while (true) {
      auto line = NextLine(bytes, cur);
      if (!line) {
        if (bytes.size() - pos > limits.max_header_bytes) return TooLarge("response header section too large");
        if (at_eof) return Unavailable("connection closed before the response headers were complete");
        return Partial();
      }
      cur = line->second;
      if (cur - pos > limits.max_header_bytes) return TooLarge("response header section too large");
      if (first) {
        GL_RETURN_IF_ERROR(ParseStatusLine(line->first, &r));
        first = false;
      } else if (line->first.empty()) {
        break;
      } else {
        GL_RETURN_IF_ERROR(ParseHeaderLine(line->first, &r));
      }
    }
    const size_t body_start = cur;

    if (r.status < 200 && r.status != 101) {  // interim: the final response follows
      pos = body_start;
      continue;
    }
    if (r.status < 200 || r.status == 204 || r.status == 304) return Partial(std::move(r));

    GL_ASSIGN_OR_RETURN(bool chunked, IsChunked(r));
    if (chunked) {
      GL_ASSIGN_OR_RETURN(bool complete, ScanChunked(bytes, body_start, limits, nullptr));
      if (!complete) {
        if (at_eof) return Unavailable("connection closed in the middle of a chunked response body");
        return Partial();
      }
      GL_ASSIGN_OR_RETURN(complete, ScanChunked(bytes, body_start, limits, &r.body));
      return Partial(std::move(r));
    }

    GL_ASSIGN_OR_RETURN(std::optional<uint64_t> length, ContentLength(r, limits));
    const size_t available = bytes.size() - body_start;
    if (length) {
      if (available < *length) {
        if (at_eof)
          return Unavailable("response truncated: expected " + std::to_string(*length) +
                             " body bytes, received " + std::to_string(available));
        return Partial();
      }
      r.body = std::string(bytes.substr(body_start, *length));
      return Partial(std::move(r));
    }

    // No framing: the body runs until the server closes the connection.
    if (available > limits.max_body_bytes)
      return TooLarge("response body exceeds the limit of " + std::to_string(limits.max_body_bytes) + " bytes");
    if (!at_eof) return Partial();
    r.body = std::string(bytes.substr(body_start));
    return Partial(std::move(r));
  }
}

StatusOr<HttpResponse> ParseHttpResponse(std::string_view bytes, const HttpParseLimits& limits) {
  GL_ASSIGN_OR_RETURN(std::optional<HttpResponse> r, TryParseHttpResponse(bytes, /*at_eof=*/true, limits));
  if (!r) return Internal("HTTP parser wanted more bytes at end of stream");  // unreachable by contract
  return std::move(*r);
}

}  // namespace geoledger::cli
