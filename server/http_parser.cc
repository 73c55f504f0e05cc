#include "server/http_parser.h"

#include <algorithm>
#include <cstring>

#include "common/encoding.h"
#include "server/router.h"

namespace geoledger::server {
namespace {

// CR and LF bytes ignored before one request line: a client may send an
// empty line or two after a body (RFC 9112 §2.2); one that sends only those
// is refused rather than read for as long as it keeps sending them.
constexpr size_t kMaxEmptyLineBytes = 16;

// RFC 9110 §5.6.2 tchar.
bool IsTchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return IsTchar(static_cast<unsigned char>(c)); });
}

// Field values: visible characters, obs-text, space and tab (RFC 9110 §5.5).
bool IsFieldValue(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c == '\t' || (c >= 0x20 && c != 0x7f);
  });
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return AsciiLower(x) == AsciiLower(y);
         });
}

// Whether a comma-separated header list holds `token` (case-insensitive).
bool ListHas(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    if (EqualsIgnoreCase(TrimOws(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// Splits the next line off `s` (CRLF or LF). False if `s` holds no line end
// or the line has a CR that is not part of its CRLF.
bool NextLine(std::string_view& s, std::string_view* line) {
  size_t lf = s.find('\n');
  if (lf == std::string_view::npos) return false;
  std::string_view l = s.substr(0, lf);
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  if (l.find('\r') != std::string_view::npos) return false;
  *line = l;
  s.remove_prefix(lf + 1);
  return true;
}

std::optional<size_t> ParseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<size_t>(c - '0');
  }
  return v;
}

}  // namespace

void HttpRequestParser::Append(const char* data, size_t len) {
  buf_.append(data, len);
  if (state_ == State::kHead) SkipEmptyLines();
}

// Robustness (RFC 9112 §2.2): empty lines before a request line are ignored.
// They are dropped as soon as they arrive, not when the next request is
// parsed, so that idle() holds while only they have come: the frontend keeps
// such a connection on its keep-alive timeout instead of starting a header
// timeout that each further empty line would restart.
void HttpRequestParser::SkipEmptyLines() {
  size_t skip = 0;
  while (skip < buf_.size() && (buf_[skip] == '\r' || buf_[skip] == '\n')) ++skip;
  if (skip == 0) return;
  buf_.erase(0, skip);
  scan_from_ = 0;
  empty_line_bytes_ += skip;
  if (empty_line_bytes_ > kMaxEmptyLineBytes && failed_ == Result::kNeedMore)
    Fail(Result::kBadRequest, "too many empty lines before a request");
}

HttpRequestParser::Result HttpRequestParser::Next(HttpRequest* out, bool* keep_alive, bool* http10) {
  if (failed_ != Result::kNeedMore) return failed_;
  if (state_ == State::kHead) {
    // The head ends at the first empty line: "\n\r\n" or "\n\n".
    size_t end = std::string::npos, head_len = 0;
    for (size_t i = scan_from_; i < buf_.size(); ++i) {
      if (buf_[i] != '\n') continue;
      if (i + 1 < buf_.size() && buf_[i + 1] == '\n') {
        end = i;
        head_len = i + 2;
        break;
      }
      if (i + 2 < buf_.size() && buf_[i + 1] == '\r' && buf_[i + 2] == '\n') {
        end = i;
        head_len = i + 3;
        break;
      }
    }
    if (end == std::string::npos) {
      if (buf_.size() > limits_.max_header_bytes)
        return Fail(Result::kHeadersTooLarge, "request line and headers exceed the limit");
      // Resume a little before the end: the blank line may straddle reads.
      scan_from_ = buf_.size() >= 2 ? buf_.size() - 2 : 0;
      return Result::kNeedMore;
    }
    if (head_len > limits_.max_header_bytes)
      return Fail(Result::kHeadersTooLarge, "request line and headers exceed the limit");
    Result r = ParseHead(head_len);
    if (r != Result::kNeedMore) return r;
    buf_.erase(0, head_len);
    scan_from_ = 0;
  }
  if (state_ == State::kLengthBody) {
    if (buf_.size() < content_length_) return Result::kNeedMore;
    req_.body.assign(buf_, 0, content_length_);
    buf_.erase(0, content_length_);
    return Deliver(out, keep_alive, http10);
  }
  Result r = DecodeChunked();
  if (r != Result::kRequest) return r;
  return Deliver(out, keep_alive, http10);
}

HttpRequestParser::Result HttpRequestParser::ParseHead(size_t head_len) {
  std::string_view rest(buf_.data(), head_len);
  std::string_view line;
  if (!NextLine(rest, &line)) return Fail(Result::kBadRequest, "malformed request line");
  // method SP request-target SP HTTP-version
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return Fail(Result::kBadRequest, "malformed request line");
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return Fail(Result::kBadRequest, "malformed request line");
  if (version == "HTTP/1.1") http10_ = false;
  else if (version == "HTTP/1.0") http10_ = true;
  else return Fail(Result::kBadRequest, "unsupported HTTP version");
  // Origin form, or absolute form (RFC 9112 §3.2.2) whose authority is
  // ignored; the target is visible ASCII.
  if (!std::all_of(target.begin(), target.end(), [](char c) { return c > 0x20 && c < 0x7f; }))
    return Fail(Result::kBadRequest, "malformed request target");
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() > scheme.size() && EqualsIgnoreCase(target.substr(0, scheme.size()), scheme)) {
      size_t slash = target.find('/', scheme.size());
      size_t query = target.find('?', scheme.size());
      if (query < slash) return Fail(Result::kBadRequest, "malformed request target");
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
      break;
    }
  }
  if (target.empty() || target.front() != '/') return Fail(Result::kBadRequest, "malformed request target");

  req_ = HttpRequest();
  req_.headers.reserve(16);  // a gateway's request carries about ten
  req_.method.assign(method);
  size_t qmark = target.find('?');
  req_.path.assign(target.substr(0, qmark));
  if (qmark != std::string_view::npos) {
    std::string_view q = target.substr(qmark + 1);
    size_t hash = q.find('#');
    if (hash != std::string_view::npos) q = q.substr(0, hash);
    while (!q.empty()) {
      size_t amp = q.find('&');
      std::string_view pair = q.substr(0, amp);
      q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
      if (pair.empty()) continue;
      size_t eq = pair.find('=');
      auto k = PercentDecode(pair.substr(0, eq));
      auto v = PercentDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
      // A parameter given twice: which value counts would be a guess.
      if (!k || !v || req_.query.count(*k) != 0) {
        req_.query.clear();
        req_.query_malformed = true;
        break;
      }
      req_.query.emplace(std::move(*k), std::move(*v));
    }
  }

  std::string_view content_length, transfer_encoding;
  // List fields (RFC 9110 §5.3): their field lines count as one
  // comma-separated list, so a second line adds to the first rather than
  // replacing it.
  std::string connection, expect;
  bool has_length = false, has_te = false;
  int hosts = 0;
  while (NextLine(rest, &line)) {
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t')
      return Fail(Result::kBadRequest, "obsolete line folding is not accepted");
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Fail(Result::kBadRequest, "malformed header field");
    std::string_view name = line.substr(0, colon);
    std::string_view value = TrimOws(line.substr(colon + 1));
    if (!IsToken(name)) return Fail(Result::kBadRequest, "malformed header field name");
    if (!IsFieldValue(value)) return Fail(Result::kBadRequest, "control character in a header value");
    std::string lname(name);
    for (char& c : lname) c = AsciiLower(c);
    if (lname == "content-length") {
      if (has_length) return Fail(Result::kBadRequest, "more than one Content-Length");
      has_length = true;
      content_length = value;
    } else if (lname == "transfer-encoding") {
      if (has_te) return Fail(Result::kBadRequest, "more than one Transfer-Encoding");
      has_te = true;
      transfer_encoding = value;
    } else if (lname == "connection") {
      connection.append(",").append(value);
    } else if (lname == "expect") {
      expect.append(",").append(value);
    } else if (lname == "host") {
      ++hosts;
    }
    req_.headers.emplace_back(std::move(lname), std::string(value));
  }
  if (!rest.empty() || line.size() != 0) return Fail(Result::kBadRequest, "malformed header block");
  // RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one in HTTP/1.0.
  if (hosts > 1) return Fail(Result::kBadRequest, "more than one Host");
  if (hosts == 0 && !http10_) return Fail(Result::kBadRequest, "an HTTP/1.1 request needs a Host header");

  // "close" anywhere in the list wins (RFC 9112 §9.6), whatever else it holds.
  keep_alive_ = !ListHas(connection, "close") && (!http10_ || ListHas(connection, "keep-alive"));
  // Expectations other than 100-continue are ignored (RFC 9110 §10.1.1
  // lets a server answer them 417 but does not require it); 100 Continue
  // never goes to an HTTP/1.0 client.
  continue_wanted_ = ListHas(expect, "100-continue") && !http10_;
  if (has_te) {
    if (has_length) return Fail(Result::kBadRequest, "both Content-Length and Transfer-Encoding");
    if (http10_ || !EqualsIgnoreCase(transfer_encoding, "chunked"))
      return Fail(Result::kBadRequest, "only the chunked transfer coding is accepted");
    state_ = State::kChunkSize;
    return Result::kNeedMore;
  }
  content_length_ = 0;
  if (has_length) {
    auto n = ParseDecimal(content_length);
    if (!n) return Fail(Result::kBadRequest, "malformed Content-Length");
    if (*n > limits_.max_body_bytes) return Fail(Result::kBodyTooLarge, "request body exceeds the limit");
    content_length_ = *n;
  }
  state_ = State::kLengthBody;
  return Result::kNeedMore;
}

// Decodes the chunked framing that has arrived into req_.body and drops it
// from the buffer; kRequest once the last chunk and the trailers are in.
HttpRequestParser::Result HttpRequestParser::DecodeChunked() {
  size_t pos = 0;
  Result r = DecodeChunkedFrom(&pos);
  buf_.erase(0, pos);
  return r;
}

HttpRequestParser::Result HttpRequestParser::DecodeChunkedFrom(size_t* pos) {
  while (true) {
    std::string_view avail = std::string_view(buf_).substr(*pos);
    switch (state_) {
      case State::kChunkSize: {
        size_t lf = avail.find('\n');
        if (lf == std::string_view::npos) {
          if (avail.size() > 1024) return Fail(Result::kBadRequest, "malformed chunk size");
          return Result::kNeedMore;
        }
        std::string_view line = avail.substr(0, lf);
        // chunk-size [ chunk-ext ] CRLF (RFC 9112 §7.1): hex digits first,
        // whitespace only before a chunk extension, and no bare LF, which
        // parsers in front of us could read differently.
        if (line.empty() || line.back() != '\r') return Fail(Result::kBadRequest, "malformed chunk size");
        line.remove_suffix(1);
        if (!IsFieldValue(line)) return Fail(Result::kBadRequest, "malformed chunk size");
        const size_t semi = line.find(';');
        std::string_view hex = line.substr(0, semi);  // chunk extensions are ignored
        if (semi != std::string_view::npos)
          while (!hex.empty() && (hex.back() == ' ' || hex.back() == '\t')) hex.remove_suffix(1);
        if (hex.empty() || hex.size() > 8) return Fail(Result::kBadRequest, "malformed chunk size");
        size_t size = 0;
        for (char c : hex) {
          int lower = c | 0x20;
          int d = (c >= '0' && c <= '9') ? c - '0' : (lower >= 'a' && lower <= 'f') ? lower - 'a' + 10 : -1;
          if (d < 0) return Fail(Result::kBadRequest, "malformed chunk size");
          size = size * 16 + static_cast<size_t>(d);
        }
        *pos += lf + 1;
        if (size == 0) {
          state_ = State::kTrailers;
          trailer_bytes_ = 0;
          break;
        }
        if (req_.body.size() + size > limits_.max_body_bytes)
          return Fail(Result::kBodyTooLarge, "request body exceeds the limit");
        chunk_left_ = size;
        state_ = State::kChunkData;
        break;
      }
      case State::kChunkData: {
        if (avail.empty()) return Result::kNeedMore;
        size_t take = std::min(chunk_left_, avail.size());
        req_.body.append(avail.data(), take);
        *pos += take;
        chunk_left_ -= take;
        if (chunk_left_ == 0) state_ = State::kChunkDataEnd;
        break;
      }
      case State::kChunkDataEnd: {
        if (avail.empty()) return Result::kNeedMore;
        // CRLF only, as after the chunk size.
        if (avail[0] != '\r') return Fail(Result::kBadRequest, "malformed chunk");
        if (avail.size() < 2) return Result::kNeedMore;
        if (avail[1] != '\n') return Fail(Result::kBadRequest, "malformed chunk");
        *pos += 2;
        state_ = State::kChunkSize;
        break;
      }
      case State::kTrailers: {
        // Trailer fields are read and dropped, up to an empty line.
        size_t lf = avail.find('\n');
        size_t len = lf == std::string_view::npos ? avail.size() : lf + 1;
        if (trailer_bytes_ + len > limits_.max_header_bytes)
          return Fail(Result::kHeadersTooLarge, "trailer fields exceed the limit");
        if (lf == std::string_view::npos) return Result::kNeedMore;
        std::string_view line = avail.substr(0, lf);
        if (line.empty() || line.back() != '\r') return Fail(Result::kBadRequest, "malformed trailer field");
        line.remove_suffix(1);
        *pos += lf + 1;
        trailer_bytes_ += lf + 1;
        if (line.empty()) return Result::kRequest;
        if (line.find(':') == std::string_view::npos || !IsFieldValue(line))
          return Fail(Result::kBadRequest, "malformed trailer field");
        break;
      }
      default:
        return Fail(Result::kBadRequest, "malformed request");
    }
  }
}

HttpRequestParser::Result HttpRequestParser::Deliver(HttpRequest* out, bool* keep_alive, bool* http10) {
  *out = std::move(req_);
  req_ = HttpRequest();
  *keep_alive = keep_alive_;
  *http10 = http10_;
  state_ = State::kHead;
  continue_wanted_ = false;
  scan_from_ = 0;
  content_length_ = 0;
  empty_line_bytes_ = 0;
  SkipEmptyLines();  // those after this request: see idle()
  return Result::kRequest;
}

}  // namespace geoledger::server
