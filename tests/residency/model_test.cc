#include "residency/model.h"

#include <gtest/gtest.h>

#include "tests/residency/fixtures.h"

namespace geoledger::residency {
namespace {

using testing::Jur;

nlohmann::json J(std::string_view text) { return nlohmann::json::parse(text); }

Status TenantError(std::string_view body) {
  auto t = TenantFromJson("acme", J(body), Jur());
  return t.ok() ? Status::Ok() : t.status();
}

void ExpectInvalid(std::string_view body, std::string_view fragment) {
  Status s = TenantError(body);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << body;
  EXPECT_NE(s.message().find(fragment), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("tenant acme"), std::string::npos) << s.message();
}

TEST(ModelTest, ParsesTheProductBriefRegionBody) {
  auto r = RegionFromJson("eu-west-1", J(R"({"country":"IE","name":"Ireland"})"), Jur());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->country, "IE");
  EXPECT_EQ(RegionToJson(*r), J(R"({"id":"eu-west-1","country":"IE","name":"Ireland"})"));
}

TEST(ModelTest, RejectsBadRegions) {
  auto bad = [](std::string_view id, std::string_view body) {
    return RegionFromJson(id, J(body), Jur()).status();
  };
  EXPECT_NE(bad("eu-west-1", R"({"country":"UK","name":"x"})").message().find("not an ISO 3166-1"),
            std::string::npos);
  EXPECT_FALSE(bad("eu-west-1", R"({"country":"ie","name":"x"})").ok());
  EXPECT_FALSE(bad("eu-west-1", R"({"country":"IE"})").ok());
  EXPECT_FALSE(bad("eu-west-1", R"({"country":"IE","name":""})").ok());
  EXPECT_FALSE(bad("eu-west-1", R"({"country":"IE","name":"x","colour":"red"})").ok());
  EXPECT_FALSE(bad("eu-west-1", R"({"id":"other","country":"IE","name":"x"})").ok());
  EXPECT_FALSE(bad("EU_WEST", R"({"country":"IE","name":"x"})").ok());
  EXPECT_FALSE(bad("a/b", R"({"country":"IE","name":"x"})").ok());
  EXPECT_FALSE(bad("eu-west-1", R"([1,2])").ok());
}

TEST(ModelTest, ParsesTheProductBriefTenantBodyAndRendersItBack) {
  const auto body = J(R"({"home_region":"eu-west-1","status":"active",
      "allowed_regions":{"personal":["eu-west-1","eu-central-1"],"special":["eu-west-1"]},
      "safeguards":[{"jurisdiction":"US","mechanism":"scc","reference":"SCC-2021/914 module 2",
                     "valid_from":"2025-01-01"}]})");
  auto t = TenantFromJson("acme", body, Jur());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->home_region, "eu-west-1");
  EXPECT_EQ(t->status, TenantStatus::kActive);
  EXPECT_EQ(t->allowed_regions.at(Category::kPersonal).size(), 2u);
  ASSERT_EQ(t->safeguards.size(), 1u);
  EXPECT_EQ(t->safeguards[0].mechanism, Mechanism::kScc);
  EXPECT_FALSE(t->safeguards[0].valid_until.has_value());
  // Render, parse again: the same tenant.
  auto again = TenantFromJson("acme", TenantToJson(*t), Jur());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *t);
}

// adequacy_opt_out is kept sorted and without duplicates, and rendered only
// when set: a tenant without it renders (and a bundle holding it signs) the
// same bytes as before the field existed.
TEST(ModelTest, AdequacyOptOutIsCanonicalAndAbsentWhenEmpty) {
  auto t = TenantFromJson("acme", J(R"({"home_region":"eu-west-1","status":"active",
      "adequacy_opt_out":["KR","JP","KR","IN"]})"), Jur());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->adequacy_opt_out, (std::vector<std::string>{"IN", "JP", "KR"}));
  EXPECT_EQ(TenantToJson(*t)["adequacy_opt_out"], nlohmann::json({"IN", "JP", "KR"}));
  auto plain = TenantFromJson("acme", J(R"({"home_region":"eu-west-1","status":"active"})"), Jur());
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(TenantToJson(*plain).contains("adequacy_opt_out"));
}

// A DPF declaration is either the undated "dpf" of policies written before
// the dated form, rendered as it was, or dated entries in declared order.
TEST(ModelTest, DatedCertificationsRoundTripBesideTheUndatedForm) {
  auto dated = TenantFromJson("acme", J(R"({"home_region":"eu-west-1","status":"active","certifications":[
      {"name":"dpf","reference":"Example Cloud Inc.","valid_from":"2025-07-01","valid_until":"2026-06-30"},
      {"name":"dpf","reference":"Example Cloud Inc.","valid_from":"2024-07-01","valid_until":"2025-06-30"}]})"),
                              Jur());
  ASSERT_TRUE(dated.ok()) << dated.status().ToString();
  ASSERT_EQ(dated->certifications.size(), 2u);
  EXPECT_TRUE(dated->certifications[0].dated());
  EXPECT_EQ(dated->certifications[0].reference, "Example Cloud Inc.");
  EXPECT_EQ(FormatDate(dated->certifications[1].valid_until), "2025-06-30");
  EXPECT_FALSE(dated->certifications[0].ActiveOn(*ParseDate("2025-06-30")));
  EXPECT_TRUE(dated->certifications[0].ActiveOn(*ParseDate("2026-06-30")));
  const nlohmann::json rendered = TenantToJson(*dated);
  EXPECT_EQ(rendered["certifications"][1],
            J(R"({"name":"dpf","reference":"Example Cloud Inc.","valid_from":"2024-07-01","valid_until":"2025-06-30"})"));
  auto again = TenantFromJson("acme", rendered, Jur());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *dated);

  auto undated = TenantFromJson("acme", J(R"({"home_region":"eu-west-1","status":"active",
      "certifications":["dpf","dpf"]})"), Jur());
  ASSERT_TRUE(undated.ok()) << undated.status().ToString();
  ASSERT_EQ(undated->certifications.size(), 1u);
  EXPECT_FALSE(undated->certifications[0].dated());
  EXPECT_TRUE(undated->certifications[0].ActiveOn(0));
  EXPECT_EQ(TenantToJson(*undated)["certifications"], nlohmann::json({"dpf"}));
}

TEST(ModelTest, BadCertificationsAreNamed) {
  auto with = [](std::string_view certs) {
    return std::string(R"({"home_region":"eu-west-1","status":"active","certifications":)") + std::string(certs) +
           "}";
  };
  ExpectInvalid(with(R"(["iso27001"])"), "certifications[0]: unknown certification \"iso27001\" (want dpf)");
  ExpectInvalid(with(R"([{"name":"iso27001","reference":"r","valid_from":"2025-01-01","valid_until":"2025-12-31"}])"),
                "certifications[0].name: unknown certification \"iso27001\"");
  ExpectInvalid(with(R"([{"name":"dpf","valid_from":"2025-01-01","valid_until":"2025-12-31"}])"),
                "certifications[0].reference: required");
  ExpectInvalid(with(R"([{"name":"dpf","reference":"r","valid_from":"2025-01-01"}])"),
                "certifications[0].valid_until: required");
  ExpectInvalid(with(R"([{"name":"dpf","reference":"r","valid_until":"2025-12-31"}])"),
                "certifications[0].valid_from: required");
  ExpectInvalid(with(R"([{"name":"dpf","reference":"r","valid_from":"2025-02-01","valid_until":"2025-01-31"}])"),
                "certifications[0].valid_until: before valid_from");
  // A listing is renewed every year: 366 days from 2024-01-01 is too long.
  ExpectInvalid(with(R"([{"name":"dpf","reference":"r","valid_from":"2024-01-01","valid_until":"2025-01-01"}])"),
                "certifications[0].valid_until: more than a year after valid_from");
  EXPECT_TRUE(TenantError(with(R"([{"name":"dpf","reference":"r","valid_from":"2024-01-01","valid_until":"2024-12-31"}])")).ok());
  ExpectInvalid(with(R"([{"name":"dpf","reference":"a\tb","valid_from":"2025-01-01","valid_until":"2025-12-31"}])"),
                "certifications[0].reference: control characters are not allowed");
  ExpectInvalid(with(R"([{"name":"dpf","reference":"r","valid_from":"2025-01-01","valid_until":"2025-12-31",
                          "until":"2026-01-01"}])"),
                "unknown field \"certifications[0].until\"");
  ExpectInvalid(with(R"(["dpf",{"name":"dpf","reference":"r","valid_from":"2025-01-01","valid_until":"2025-12-31"}])"),
                "certifications[1]: the undated \"dpf\" and dated declarations cannot be combined");
  ExpectInvalid(with(R"([{"name":"dpf","reference":"r","valid_from":"2025-01-01","valid_until":"2025-12-31"},"dpf"])"),
                "cannot be combined");
  ExpectInvalid(with(R"([7])"), "certifications[0]: must be \"dpf\" or an object");
  ExpectInvalid(with(R"("dpf")"), "certifications: must be an array");
  nlohmann::json many = nlohmann::json::array();
  for (size_t i = 0; i <= kMaxCertifications; ++i)
    many.push_back({{"name", "dpf"}, {"reference", "r"}, {"valid_from", "2025-01-01"}, {"valid_until", "2025-12-31"}});
  ExpectInvalid(with(many.dump()), "certifications: too many entries (9 > 8)");
}

TEST(ModelTest, NamesTheFieldAndTheProblemForEveryBadTenant) {
  ExpectInvalid(R"({"home_region":"eu-west-1","status":"active","allowed_regions":{"biometric":[]}})",
                "unknown category \"biometric\"");
  ExpectInvalid(R"({"home_region":"eu-west-1","status":"active","allowed_regions":{"anonymous":[]}})",
                "anonymous data is not pinned");
  ExpectInvalid(R"({"home_region":"eu-west-1","status":"paused"})", "unknown status \"paused\"");
  ExpectInvalid(R"({"status":"active"})", "home_region: required");
  ExpectInvalid(R"({"home_region":"eu-west-1","status":"active","alowed_regions":{}})",
                "unknown field \"alowed_regions\"");
  ExpectInvalid(R"({"home_region":"eu-west-1","status":"active",
      "safeguards":[{"jurisdiction":"US","mechanism":"scc","reference":"r","valid_from":"2025-13-01"}]})",
                "safeguards[0].valid_from: bad date \"2025-13-01\"");
  ExpectInvalid(R"({"home_region":"eu-west-1","status":"active",
      "safeguards":[{"jurisdiction":"US","mechanism":"dpa","reference":"r","valid_from":"2025-01-01"}]})",
                "unknown mechanism \"dpa\"");
  ExpectInvalid(R"({"home_region":"eu-west-1","status":"active",
      "safeguards":[{"jurisdiction":"XX","mechanism":"scc","reference":"r","valid_from":"2025-01-01"}]})",
                "\"XX\" is not an ISO 3166-1 alpha-2 country code");
  ExpectInvalid(R"({"home_region":"eu-west-1","status":"active",
      "safeguards":[{"jurisdiction":"DE","mechanism":"scc","reference":"r","valid_from":"2025-01-01"}]})",
                "DE is in the EEA");
  ExpectInvalid(R"({"home_region":"eu-west-1","status":"active",
      "safeguards":[{"jurisdiction":"US","mechanism":"scc","reference":"r","valid_from":"2025-02-01",
                     "valid_until":"2025-01-01"}]})",
                "valid_until: before valid_from");
  ExpectInvalid(R"({"home_region":"eu-west-1","status":"active",
      "safeguards":[{"jurisdiction":"US","mechanism":"scc","valid_from":"2025-01-01"}]})",
                "safeguards[0].reference: required");
  ExpectInvalid(R"({"home_region":"eu-west-1","status":"active",
      "allowed_regions":{"personal":["eu-west-1","eu-west-1"]}})",
                "duplicate region");
  ExpectInvalid(R"({"home_region":"eu-west-1","status":"active","adequacy_opt_out":["KR","UK"]})",
                "adequacy_opt_out[1]: \"UK\" is not an ISO 3166-1 alpha-2 country code");
  ExpectInvalid(R"({"home_region":"eu-west-1","status":"active","adequacy_opt_out":["FR"]})", "FR is in the EEA");
  ExpectInvalid(R"({"home_region":"eu-west-1","status":"active","adequacy_opt_out":"KR"})", "must be an array");
  nlohmann::json opt_outs = J(R"({"home_region":"eu-west-1","status":"active","adequacy_opt_out":[]})");
  for (size_t i = 0; i <= kMaxAdequacyOptOuts; ++i) opt_outs["adequacy_opt_out"].push_back("JP");
  ExpectInvalid(opt_outs.dump(), "adequacy_opt_out: too many entries (33 > 32)");

  nlohmann::json many = J(R"({"home_region":"eu-west-1","status":"active","safeguards":[]})");
  for (size_t i = 0; i <= kMaxSafeguards; ++i)
    many["safeguards"].push_back({{"jurisdiction", "US"}, {"mechanism", "scc"},
                                  {"reference", "r" + std::to_string(i)}, {"valid_from", "2025-01-01"}});
  ExpectInvalid(many.dump(), "safeguards: too many entries (33 > 32)");
  nlohmann::json regions = J(R"({"home_region":"eu-west-1","status":"active","allowed_regions":{"personal":[]}})");
  for (size_t i = 0; i <= kMaxRegions; ++i)
    regions["allowed_regions"]["personal"].push_back("r-" + std::to_string(i));
  ExpectInvalid(regions.dump(), "too many entries (129 > 128)");
}

TEST(ModelTest, UnknownRegionReferencesAreNamed) {
  auto t = TenantFromJson("acme", J(R"({"home_region":"eu-west-1","status":"active",
      "allowed_regions":{"special":["eu-west-1","mars-1"]}})"), Jur());
  ASSERT_TRUE(t.ok());
  auto exists = [](const std::string& id) { return id == "eu-west-1"; };
  Status s = CheckTenantReferences(*t, exists);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "tenant acme: allowed_regions.special[1]: unknown region \"mars-1\"");
  t->home_region = "venus-1";
  EXPECT_NE(CheckTenantReferences(*t, exists).message().find("home_region"), std::string::npos);
}

TEST(ModelTest, EnumsRoundTripTheirWireNames) {
  for (Category c : kAllCategories) EXPECT_EQ(ParseCategory(CategoryName(c)), c);
  for (size_t i = 0; i < kOperationCount; ++i) {
    const auto op = static_cast<Operation>(i);
    EXPECT_EQ(ParseOperation(OperationName(op)), op);
  }
  EXPECT_EQ(OperationName(Operation::kSupportAccess), "support_access");
  EXPECT_FALSE(ParseOperation("support-access").has_value());
  EXPECT_FALSE(ParseJson("{", "x").ok());
}

}  // namespace
}  // namespace geoledger::residency
