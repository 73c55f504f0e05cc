// Fuzz target: untrusted bytes through the HTTP/1.1 request framing, split
// at a position taken from the first input byte. Whatever the split, the
// requests framed must be the same, and nothing may crash or loop.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "server/http_parser.h"

namespace {

using geoledger::server::HttpRequest;
using geoledger::server::HttpRequestParser;

std::vector<std::string> Frame(const std::string& in, size_t split, HttpRequestParser::Result* last) {
  HttpRequestParser p({512, 2048});
  std::vector<std::string> out;
  auto drain = [&] {
    while (true) {
      HttpRequest r;
      bool keep = false, http10 = false;
      *last = p.Next(&r, &keep, &http10);
      if (*last != HttpRequestParser::Result::kRequest) return;
      out.push_back(r.method + " " + r.path + " " + std::to_string(r.headers.size()) + " " + r.body);
    }
  };
  p.Append(in.data(), split);
  drain();
  if (*last == HttpRequestParser::Result::kNeedMore) {
    p.Append(in.data() + split, in.size() - split);
    drain();
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t split = in.empty() ? 0 : data[0] % (in.size() + 1);
  HttpRequestParser::Result whole_last, split_last;
  auto whole = Frame(in, in.size(), &whole_last);
  auto parts = Frame(in, split, &split_last);
  if (whole != parts || whole_last != split_last) __builtin_trap();
  return 0;
}
