// Path routing: patterns of literal segments and {name} parameters.
// Built once before serving; Match is then lock-free and thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace geoledger::server {

class Router {
 public:
  // Registers `pattern` (e.g. "/v1/tenants/{tenant}") for `method`; returns the
  // route's id (dense, from 0). Duplicate (method, pattern) pairs are a bug and
  // abort.
  int Add(const std::string& method, const std::string& pattern);
  // Registers a literal `pattern` that matches itself and every path below
  // it (pattern + "/" + anything, taken as it comes), with any method. The
  // gateway check: Envoy's ext_authz HTTP service calls it with the original
  // request's method and, with `path_prefix`, the original path appended.
  // Such a route's method() is "*". A pattern under another route's is a
  // bug and aborts.
  int AddCatchAll(const std::string& pattern);

  struct Match {
    int route_id = -1;                          // -1: nothing matched
    std::map<std::string, std::string> params;  // percent-decoded
    std::vector<std::string> allowed_methods;   // set when only the method differs
  };
  // A path segment that fails percent-decoding does not match.
  Match Find(std::string_view method, std::string_view path) const;

  const std::string& pattern(int route_id) const { return routes_[route_id].pattern; }
  const std::string& method(int route_id) const { return routes_[route_id].method; }
  size_t size() const { return routes_.size(); }

 private:
  struct Route {
    std::string method, pattern;
    std::vector<std::string> segments;  // "{x}" marks a parameter
    bool catch_all = false;
  };
  // Whether `path` is `prefix` or lies below it.
  static bool Covers(std::string_view prefix, std::string_view path);
  std::vector<Route> routes_;
  std::vector<int> catch_alls_;  // ids of the AddCatchAll routes
};

// Splits "/a/b/c" into {"a","b","c"}; an empty path or "/" gives {}.
std::vector<std::string_view> SplitPath(std::string_view path);
// RFC 3986 percent-decoding; nullopt on a malformed escape or a decoded NUL.
std::optional<std::string> PercentDecode(std::string_view s);

}  // namespace geoledger::server
