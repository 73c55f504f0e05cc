#include "server/router.h"

#include <algorithm>
#include <cstdlib>

namespace geoledger::server {

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    char c = static_cast<char>(hi << 4 | lo);
    if (c == '\0') return std::nullopt;
    out += c;
    i += 2;
  }
  return out;
}

bool Router::Covers(std::string_view prefix, std::string_view path) {
  return path.substr(0, prefix.size()) == prefix && (path.size() == prefix.size() || path[prefix.size()] == '/');
}

int Router::Add(const std::string& method, const std::string& pattern) {
  for (const auto& r : routes_)
    if ((r.method == method && r.pattern == pattern) || (r.catch_all && Covers(r.pattern, pattern))) std::abort();
  Route r{method, pattern, {}};
  for (auto seg : SplitPath(pattern)) r.segments.emplace_back(seg);
  routes_.push_back(std::move(r));
  return static_cast<int>(routes_.size() - 1);
}

int Router::AddCatchAll(const std::string& pattern) {
  if (pattern.empty() || pattern.front() != '/' || pattern.back() == '/' || pattern.find('{') != std::string::npos)
    std::abort();
  for (const auto& r : routes_)
    if (Covers(pattern, r.pattern) || (r.catch_all && Covers(r.pattern, pattern))) std::abort();
  Route r{"*", pattern, {}};
  r.catch_all = true;
  routes_.push_back(std::move(r));
  catch_alls_.push_back(static_cast<int>(routes_.size() - 1));
  return catch_alls_.back();
}

Router::Match Router::Find(std::string_view method, std::string_view path) const {
  Match result;
  for (int id : catch_alls_)
    if (Covers(routes_[id].pattern, path)) {
      result.route_id = id;
      return result;
    }
  auto segs = SplitPath(path);
  // A trailing slash or empty segment ("//") is a different resource.
  if (path.empty() || path[0] != '/' || (path.size() > 1 && path.back() == '/') ||
      path.find("//") != std::string_view::npos)
    return result;
  for (size_t id = 0; id < routes_.size(); ++id) {
    const Route& r = routes_[id];
    if (r.catch_all || r.segments.size() != segs.size()) continue;
    std::map<std::string, std::string> params;
    bool ok = true;
    for (size_t i = 0; i < segs.size() && ok; ++i) {
      const std::string& want = r.segments[i];
      if (want.size() > 2 && want.front() == '{' && want.back() == '}') {
        auto decoded = PercentDecode(segs[i]);
        if (!decoded || decoded->empty()) ok = false;
        else params[want.substr(1, want.size() - 2)] = std::move(*decoded);
      } else {
        ok = (want == segs[i]);
      }
    }
    if (!ok) continue;
    if (r.method == method) {
      result.route_id = static_cast<int>(id);
      result.params = std::move(params);
      result.allowed_methods.clear();
      return result;
    }
    if (std::find(result.allowed_methods.begin(), result.allowed_methods.end(), r.method) ==
        result.allowed_methods.end())
      result.allowed_methods.push_back(r.method);
  }
  return result;
}

}  // namespace geoledger::server
