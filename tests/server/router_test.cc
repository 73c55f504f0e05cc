#include "server/router.h"

#include <gtest/gtest.h>

namespace geoledger::server {
namespace {

TEST(RouterTest, MatchesLiteralsAndParameters) {
  Router r;
  int tokens = r.Add("GET", "/v1/admin/tokens");
  int token = r.Add("DELETE", "/v1/admin/tokens/{id}");
  int rec = r.Add("PUT", "/v1/tenants/{tenant}/subjects/{subject}/records/{id}");
  EXPECT_EQ(r.Find("GET", "/v1/admin/tokens").route_id, tokens);
  auto m = r.Find("DELETE", "/v1/admin/tokens/abc");
  EXPECT_EQ(m.route_id, token);
  EXPECT_EQ(m.params["id"], "abc");
  auto m2 = r.Find("PUT", "/v1/tenants/acme/subjects/s%2F1/records/r%20x");
  EXPECT_EQ(m2.route_id, rec);
  EXPECT_EQ(m2.params["subject"], "s/1");
  EXPECT_EQ(m2.params["id"], "r x");
}

TEST(RouterTest, ReportsAllowedMethodsWhenOnlyTheMethodDiffers) {
  Router r;
  r.Add("GET", "/v1/x");
  r.Add("PUT", "/v1/x");
  auto m = r.Find("DELETE", "/v1/x");
  EXPECT_EQ(m.route_id, -1);
  EXPECT_EQ(m.allowed_methods, (std::vector<std::string>{"GET", "PUT"}));
  EXPECT_TRUE(r.Find("GET", "/v1/y").allowed_methods.empty());
}

TEST(RouterTest, ACatchAllMatchesItselfAndEverythingBelowWithAnyMethod) {
  Router r;
  int tokens = r.Add("GET", "/v1/tokens");
  int check = r.AddCatchAll("/v1/gateway/check");
  EXPECT_EQ(r.method(check), "*");
  for (const char* method : {"GET", "POST", "DELETE", "OPTIONS"})
    for (const char* path : {"/v1/gateway/check", "/v1/gateway/check/", "/v1/gateway/check/a/b",
                             "/v1/gateway/check//x/%zz"}) {
      auto m = r.Find(method, path);
      EXPECT_EQ(m.route_id, check) << method << " " << path;
      EXPECT_TRUE(m.params.empty());
    }
  EXPECT_EQ(r.Find("GET", "/v1/gateway/checkout").route_id, -1);
  EXPECT_EQ(r.Find("GET", "/v1/gateway").route_id, -1);
  EXPECT_EQ(r.Find("GET", "/v1/tokens").route_id, tokens);
}

TEST(RouterTest, ARouteUnderACatchAllIsARegistrationBug) {
  EXPECT_DEATH(
      {
        Router r;
        r.AddCatchAll("/v1/gateway/check");
        r.Add("GET", "/v1/gateway/check/{id}");
      },
      "");
  EXPECT_DEATH(
      {
        Router r;
        r.Add("GET", "/v1/gateway/check/status");
        r.AddCatchAll("/v1/gateway/check");
      },
      "");
}

TEST(RouterTest, RejectsOddPathsAndBadEscapes) {
  Router r;
  r.Add("GET", "/v1/tokens/{id}");
  EXPECT_EQ(r.Find("GET", "/v1/tokens/").route_id, -1);
  EXPECT_EQ(r.Find("GET", "/v1//tokens/a").route_id, -1);
  EXPECT_EQ(r.Find("GET", "/v1/tokens/a/").route_id, -1);
  EXPECT_EQ(r.Find("GET", "/v1/tokens/%zz").route_id, -1);
  EXPECT_EQ(r.Find("GET", "/v1/tokens/%00").route_id, -1);
  EXPECT_EQ(r.Find("GET", "/v1/tokens/%4").route_id, -1);
  EXPECT_EQ(r.Find("GET", "v1/tokens/a").route_id, -1);
  EXPECT_EQ(r.Find("GET", "").route_id, -1);
}

TEST(RouterTest, PercentDecodeHandlesEdges) {
  EXPECT_EQ(*PercentDecode("a%41%62"), "aAb");
  EXPECT_FALSE(PercentDecode("%"));
  EXPECT_FALSE(PercentDecode("%4"));
  EXPECT_FALSE(PercentDecode("%g1"));
}

}  // namespace
}  // namespace geoledger::server
