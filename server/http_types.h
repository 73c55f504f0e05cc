// Transport-neutral request and response values passed between the Pistache
// frontend and the API dispatcher.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace geoledger::server {

struct HttpRequest {
  std::string method;  // "GET", "POST", …
  std::string path;    // without the query string
  std::map<std::string, std::string> query;
  // The query string had a malformed percent-escape or named a parameter
  // twice (then `query` is empty).
  // Refused with 400 by every route but the gateway check, whose query
  // string is a gateway's client's and is never read.
  bool query_malformed = false;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string peer;  // remote address, for logs

  // First value of header `name` (lower-case), or nullptr.
  const std::string* Header(const std::string& name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return &v;
    return nullptr;
  }
  // How many times header `name` (lower-case) appears.
  size_t HeaderCount(const std::string& name) const {
    size_t n = 0;
    for (const auto& h : headers) n += h.first == name ? 1 : 0;
    return n;
  }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close_connection = false;  // the server closes after sending
  // The server closes after sending this answer if it is the last one the
  // connection is waiting for (a shutdown's drain): answers to requests the
  // client pipelined behind it, already being produced, still go out.
  bool close_when_last = false;
};

}  // namespace geoledger::server
