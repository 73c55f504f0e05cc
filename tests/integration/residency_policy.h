// A small residency policy loaded through the API, shared by the decision,
// gateway and bundle tests (header-only: every *_test.cc is its own binary).
//
//   regions  eu-west-1 (IE), eu-central-1 (DE), us-east-1 (US)
//   tenant   acme: home eu-west-1, personal data in eu-west-1 and eu-central-1
//   tenant   globex: home eu-central-1 (defaults: everything at home)
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "tests/integration/test_server.h"

namespace geoledger::testing {

inline const char* kAcmeTenant =
    R"({"home_region":"eu-west-1","status":"active","allowed_regions":{"personal":["eu-west-1","eu-central-1"]}})";

// Loads the policy above; returns the policy version after the last change.
inline uint64_t LoadResidencyPolicy(TestServer& server) {
  const std::string& admin = server.admin_token();
  for (auto [id, country] : {std::pair{"eu-west-1", "IE"}, {"eu-central-1", "DE"}, {"us-east-1", "US"}}) {
    RawResponse r = server.Authed(admin, "PUT", std::string("/v1/regions/") + id,
                                  nlohmann::json{{"country", country}, {"name", id}}.dump());
    EXPECT_TRUE(r.status == 201 || r.status == 200) << r.body;
  }
  RawResponse r = server.Authed(admin, "PUT", "/v1/tenants/acme", kAcmeTenant);
  EXPECT_TRUE(r.status == 201 || r.status == 200) << r.body;
  r = server.Authed(admin, "PUT", "/v1/tenants/globex", R"({"home_region":"eu-central-1","status":"active"})");
  EXPECT_TRUE(r.status == 201 || r.status == 200) << r.body;
  return nlohmann::json::parse(r.body, nullptr, false).value("policy_version", uint64_t{0});
}

// The audit entries [start, end) as JSON (audit:read token).
inline nlohmann::json AuditEntries(TestServer& server, const std::string& reader, uint64_t start, uint64_t end) {
  RawResponse r = server.Authed(reader, "GET",
                                "/v1/audit/entries?start=" + std::to_string(start) + "&end=" + std::to_string(end));
  EXPECT_EQ(r.status, 200) << r.body;
  return nlohmann::json::parse(r.body, nullptr, false)["entries"];
}

// The audit log's current size.
inline uint64_t AuditSize(TestServer& server, const std::string& reader) {
  RawResponse r = server.Authed(reader, "GET", "/v1/audit/entries?start=0&end=0");
  EXPECT_EQ(r.status, 200) << r.body;
  return nlohmann::json::parse(r.body, nullptr, false).value("size", uint64_t{0});
}

// The gateway's four headers.
inline std::map<std::string, std::string> GatewayHeaders(const std::string& tenant, const std::string& category,
                                                         const std::string& operation, const std::string& region) {
  return {{"X-Tenant-Id", tenant}, {"X-Data-Category", category}, {"X-Operation", operation},
          {"X-Target-Region", region}};
}

}  // namespace geoledger::testing
