// Fuzz target: untrusted request bytes through the dispatcher (routing,
// percent-decoding, bearer parsing, JSON limits and parsing) and the
// base64/hex decoders. Input layout: "METHOD PATH\n" then header lines
// "name: value\n", a blank line, then the body.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>

#include "common/encoding.h"
#include "common/log.h"
#include "server/dispatcher.h"
#include "server/token_store.h"

namespace {

struct World {
  geoledger::ManualClock clock;
  geoledger::server::HttpMetrics metrics;
  std::unique_ptr<geoledger::KvStore> kv = geoledger::NewMemoryKvStore();
  std::unique_ptr<geoledger::server::TokenStore> tokens;
  std::unique_ptr<geoledger::server::Dispatcher> dispatcher;

  World() {
    geoledger::log::SetLevel(geoledger::log::Level::kError);
    tokens = std::move(*geoledger::server::TokenStore::Open(kv.get(), &clock));
    (void)tokens->Create("fuzz", {"admin", "decide"}, "", "fuzz");
    geoledger::server::Dispatcher::Options o;
    o.access_log = false;
    o.tenant_limit = {1e9, 1e9, 1000};
    dispatcher = std::make_unique<geoledger::server::Dispatcher>(o, &clock, &metrics);
    using geoledger::server::Access;
    auto echo = [](geoledger::server::RequestContext& ctx) -> geoledger::StatusOr<geoledger::server::HttpResponse> {
      return geoledger::server::JsonResponse(200, {{"body", ctx.body}, {"params", ctx.params}});
    };
    dispatcher->AddRoute("GET", "/healthz", Access::kPublic, "", echo);
    dispatcher->AddRoute("POST", "/v1/tenants/{tenant}/things/{id}", Access::kScoped, "decide", echo);
    dispatcher->AddRoute("PUT", "/v1/public/{x}", Access::kPublic, "", echo);
    dispatcher->SetTokenStore(tokens.get());
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = new World();
  std::string in(reinterpret_cast<const char*>(data), size);
  (void)geoledger::Base64Decode(in);
  (void)geoledger::Base64UrlDecode(in);
  (void)geoledger::HexDecode(in);
  (void)world->tokens->Authenticate(in);

  geoledger::server::HttpRequest req;
  std::istringstream ss(in);
  std::string line;
  std::getline(ss, line);
  auto sp = line.find(' ');
  req.method = line.substr(0, sp);
  req.path = sp == std::string::npos ? "" : line.substr(sp + 1);
  while (std::getline(ss, line) && !line.empty()) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string v = line.substr(colon + 1);
    if (!v.empty() && v[0] == ' ') v.erase(0, 1);
    req.headers.emplace_back(line.substr(0, colon), v);
  }
  std::stringstream rest;
  rest << ss.rdbuf();
  req.body = rest.str();
  auto resp = world->dispatcher->Handle(req);
  if (resp.status < 100 || resp.status > 599) __builtin_trap();
  return 0;
}
