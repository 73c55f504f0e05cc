// The residency rules as a table: category x operation x destination
// jurisdiction (EEA, adequacy, third country) x safeguards. Each row is one
// line of compliance-docs/residency-rules.md in executable form.
#include "residency/rules.h"

#include <gtest/gtest.h>

#include "residency/engine.h"
#include "tests/residency/fixtures.h"

namespace geoledger::residency {
namespace {

using testing::At;
using testing::R;
using testing::T;

struct Case {
  const char* tenant;
  const char* category;
  const char* operation;
  const char* region;
  bool allow;
  const char* reason;
  const char* basis;
  const char* route;
  const char* date = "2025-06-15";
};

std::unique_ptr<Engine> RulesEngine() {
  auto engine = testing::NewEngine();
  SnapshotBuilder b = engine->NewPolicy(7);
  for (const Region& r : {R("eu-west-1", "IE"), R("eu-central-1", "DE"), R("eu-south-1", "IT"),
                          R("eu-north-1", "SE"), R("is-1", "IS"), R("gf-1", "GF"),
                          R("uk-1", "GB"), R("jp-1", "JP"), R("us-east-1", "US"),
                          R("ca-1", "CA"), R("ch-1", "CH"), R("kr-1", "KR"), R("in-1", "IN"),
                          R("br-1", "BR"), R("sg-1", "SG")})
    EXPECT_TRUE(b.PutRegion(r).ok());
  const Tenant tenants[] = {
      T("acme", R"({"home_region":"eu-west-1","status":"active",
        "allowed_regions":{"personal":["eu-west-1","eu-central-1","us-east-1","jp-1","in-1","sg-1"],
                           "special":["eu-central-1"]},
        "safeguards":[
          {"jurisdiction":"IN","mechanism":"scc","reference":"SCC-IN-2025","valid_from":"2025-01-01","valid_until":"2026-12-31"},
          {"jurisdiction":"SG","mechanism":"art49","reference":"consent-2025","valid_from":"2025-01-01"},
          {"jurisdiction":"US","mechanism":"bcr","reference":"BCR-ACME","valid_from":"2027-01-01"}]})"),
      T("minimal", R"({"home_region":"eu-central-1","status":"active"})"),
      T("dpf-co", R"({"home_region":"eu-central-1","status":"active",
        "allowed_regions":{"personal":["us-east-1"]},"certifications":["dpf"]})"),
      T("wrongjur", R"({"home_region":"eu-west-1","status":"active",
        "allowed_regions":{"personal":["in-1"]},
        "safeguards":[{"jurisdiction":"CN","mechanism":"scc","reference":"SCC-CN","valid_from":"2020-01-01"}]})"),
      T("suspended", R"({"home_region":"eu-west-1","status":"suspended",
        "allowed_regions":{"personal":["eu-central-1"]}})"),
      T("ops-pinned", R"({"home_region":"eu-west-1","status":"active",
        "allowed_regions":{"operational":["eu-central-1"]}})"),
      T("special-wide", R"({"home_region":"eu-west-1","status":"active",
        "allowed_regions":{"special":["jp-1","us-east-1"]},
        "safeguards":[{"jurisdiction":"US","mechanism":"scc","reference":"SCC-US","valid_from":"2024-01-01"}]})"),
      T("us-home", R"({"home_region":"us-east-1","status":"active"})"),
      T("pseudo", R"({"home_region":"eu-west-1","status":"active",
        "allowed_regions":{"personal":["eu-central-1"],"pseudonymised":["eu-south-1"]}})"),
  };
  for (const Tenant& t : tenants) EXPECT_TRUE(b.PutTenant(t).ok()) << t.id;
  EXPECT_TRUE(engine->Install(std::move(b).Build()).ok());
  return engine;
}

const Case kCases[] = {
    // --- personal data, EEA destinations -------------------------------------
    {"acme", "personal", "store", "eu-west-1", true, "allowed", "tenant-pinning", "eu-west-1"},
    {"acme", "personal", "store", "eu-central-1", true, "allowed", "tenant-pinning", "eu-central-1"},
    {"acme", "personal", "store", "eu-south-1", false, "region-not-allowed", "", "eu-west-1"},
    {"acme", "personal", "replicate", "eu-south-1", false, "region-not-allowed", "", "eu-west-1"},
    {"acme", "personal", "backup", "eu-north-1", false, "region-not-allowed", "", "eu-west-1"},
    {"acme", "personal", "backup", "eu-central-1", true, "allowed", "tenant-pinning", "eu-central-1"},
    {"acme", "personal", "replicate", "eu-central-1", true, "allowed", "tenant-pinning", "eu-central-1"},
    {"acme", "personal", "process", "eu-south-1", true, "allowed", "eea", "eu-south-1"},
    {"acme", "personal", "read", "is-1", true, "allowed", "eea", "is-1"},
    {"acme", "personal", "transfer", "eu-north-1", true, "allowed", "eea", "eu-north-1"},
    {"acme", "personal", "support_access", "eu-south-1", true, "allowed", "eea", "eu-south-1"},
    {"acme", "personal", "process", "gf-1", true, "allowed", "eea", "gf-1"},
    {"acme", "personal", "store", "gf-1", false, "region-not-allowed", "", "eu-west-1"},
    // --- personal data, adequacy destinations ---------------------------------
    {"acme", "personal", "process", "jp-1", true, "allowed", "gdpr:art45:JP", "jp-1"},
    {"acme", "personal", "store", "jp-1", true, "allowed", "gdpr:art45:JP", "jp-1"},
    {"acme", "personal", "process", "uk-1", true, "allowed", "gdpr:art45:GB", "uk-1"},
    {"acme", "personal", "store", "uk-1", false, "region-not-allowed", "", "eu-west-1"},
    {"acme", "personal", "process", "ch-1", true, "allowed", "gdpr:art45:CH", "ch-1"},
    {"acme", "personal", "transfer", "ca-1", true, "allowed", "gdpr:art45:CA", "ca-1"},
    {"acme", "personal", "read", "kr-1", true, "allowed", "gdpr:art45:KR", "kr-1"},
    {"acme", "personal", "process", "uk-1", false, "no-transfer-basis", "", "eu-west-1", "2031-12-28"},
    {"acme", "personal", "process", "jp-1", false, "no-transfer-basis", "", "eu-west-1", "2019-01-22"},
    // --- the US: DPF adequacy needs a declared certification ------------------
    {"acme", "personal", "store", "us-east-1", false, "no-transfer-basis", "", "eu-west-1"},
    {"acme", "personal", "process", "us-east-1", false, "no-transfer-basis", "", "eu-west-1"},
    {"acme", "personal", "process", "us-east-1", true, "allowed", "gdpr:art47:bcr:BCR-ACME", "us-east-1", "2027-03-01"},
    {"dpf-co", "personal", "store", "us-east-1", true, "allowed", "gdpr:art45:US", "us-east-1"},
    {"dpf-co", "personal", "process", "us-east-1", true, "allowed", "gdpr:art45:US", "us-east-1"},
    {"dpf-co", "personal", "process", "us-east-1", false, "no-transfer-basis", "", "eu-central-1", "2023-07-09"},
    {"dpf-co", "personal", "process", "us-east-1", true, "allowed", "gdpr:art45:US", "us-east-1", "2023-07-10"},
    {"dpf-co", "personal", "store", "jp-1", false, "region-not-allowed", "", "eu-central-1"},
    {"us-home", "personal", "store", "us-east-1", false, "no-transfer-basis", "", ""},
    // --- third countries: safeguards valid, expired, not yet valid, wrong place
    {"acme", "personal", "store", "in-1", true, "allowed", "gdpr:art46:scc:SCC-IN-2025", "in-1"},
    {"acme", "personal", "process", "in-1", true, "allowed", "gdpr:art46:scc:SCC-IN-2025", "in-1", "2026-12-31"},
    {"acme", "personal", "process", "in-1", false, "no-transfer-basis", "", "eu-west-1", "2027-01-01"},
    {"acme", "personal", "process", "in-1", false, "no-transfer-basis", "", "eu-west-1", "2024-12-31"},
    {"wrongjur", "personal", "store", "in-1", false, "no-transfer-basis", "", "eu-west-1"},
    {"acme", "personal", "process", "sg-1", true, "allowed", "gdpr:art49:consent-2025", "sg-1"},
    {"acme", "personal", "support_access", "sg-1", true, "allowed", "gdpr:art49:consent-2025", "sg-1"},
    {"acme", "personal", "store", "sg-1", false, "derogation-not-systematic", "", "eu-west-1"},
    {"acme", "personal", "process", "br-1", false, "no-transfer-basis", "", "eu-west-1"},
    {"acme", "personal", "backup", "br-1", false, "region-not-allowed", "", "eu-west-1"},
    // --- special-category data -----------------------------------------------
    {"acme", "special", "store", "eu-west-1", true, "allowed", "tenant-pinning", "eu-west-1"},
    {"acme", "special", "store", "eu-central-1", true, "allowed", "tenant-pinning", "eu-central-1"},
    {"acme", "special", "process", "eu-south-1", false, "special-outside-home", "", "eu-west-1"},
    {"acme", "special", "read", "jp-1", false, "special-outside-home", "", "eu-west-1"},
    {"acme", "special", "support_access", "us-east-1", false, "special-outside-home", "", "eu-west-1"},
    {"minimal", "special", "store", "eu-central-1", true, "allowed", "tenant-pinning", "eu-central-1"},
    {"minimal", "special", "process", "eu-west-1", false, "special-outside-home", "", "eu-central-1"},
    {"special-wide", "special", "store", "us-east-1", true, "allowed", "gdpr:art46:scc:SCC-US", "us-east-1"},
    {"special-wide", "special", "store", "jp-1", true, "allowed", "gdpr:art45:JP", "jp-1"},
    {"special-wide", "special", "store", "eu-central-1", false, "special-outside-home", "", "eu-west-1"},
    // --- pseudonymised data is personal data ----------------------------------
    {"acme", "pseudonymised", "store", "eu-central-1", true, "allowed", "tenant-pinning", "eu-central-1"},
    {"acme", "pseudonymised", "store", "eu-south-1", false, "region-not-allowed", "", "eu-west-1"},
    {"acme", "pseudonymised", "process", "in-1", true, "allowed", "gdpr:art46:scc:SCC-IN-2025", "in-1"},
    {"pseudo", "pseudonymised", "store", "eu-south-1", true, "allowed", "tenant-pinning", "eu-south-1"},
    {"pseudo", "pseudonymised", "store", "eu-central-1", false, "region-not-allowed", "", "eu-west-1"},
    // --- anonymous and operational data ---------------------------------------
    {"acme", "anonymous", "store", "br-1", true, "allowed", "not-personal-data", "br-1"},
    {"acme", "anonymous", "transfer", "us-east-1", true, "allowed", "not-personal-data", "us-east-1"},
    {"acme", "operational", "store", "us-east-1", true, "allowed", "not-personal-data", "us-east-1"},
    {"acme", "operational", "backup", "in-1", true, "allowed", "not-personal-data", "in-1"},
    {"ops-pinned", "operational", "store", "eu-south-1", false, "region-not-allowed", "", "eu-west-1"},
    {"ops-pinned", "operational", "store", "eu-central-1", true, "allowed", "tenant-pinning", "eu-central-1"},
    {"ops-pinned", "operational", "process", "us-east-1", true, "allowed", "not-personal-data", "us-east-1"},
    // --- minimal tenant: everything defaults to the home region ---------------
    {"minimal", "personal", "store", "eu-central-1", true, "allowed", "tenant-pinning", "eu-central-1"},
    {"minimal", "personal", "store", "eu-west-1", false, "region-not-allowed", "", "eu-central-1"},
    {"minimal", "personal", "process", "us-east-1", false, "no-transfer-basis", "", "eu-central-1"},
    // --- fail closed ----------------------------------------------------------
    {"suspended", "personal", "store", "eu-west-1", false, "tenant-suspended", "", ""},
    {"suspended", "anonymous", "read", "eu-central-1", false, "tenant-suspended", "", ""},
    {"ghost", "personal", "store", "eu-west-1", false, "tenant-unknown", "", ""},
    {"", "personal", "store", "eu-west-1", false, "tenant-unknown", "", ""},
    {"acme", "biometric", "store", "eu-west-1", false, "category-unknown", "", ""},
    {"acme", "Personal", "store", "eu-west-1", false, "category-unknown", "", ""},
    {"acme", "", "store", "eu-west-1", false, "category-unknown", "", ""},
    {"acme", "personal", "delete", "eu-west-1", false, "operation-unknown", "", ""},
    {"acme", "personal", "store", "mars-1", false, "region-unknown", "", "eu-west-1"},
    {"acme", "personal", "store", "", false, "region-unknown", "", "eu-west-1"},
};

class RulesTableTest : public ::testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() { engine_ = RulesEngine().release(); }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }
  static Engine* engine_;
};
Engine* RulesTableTest::engine_ = nullptr;

TEST_P(RulesTableTest, DecisionMatchesTheRulesDocument) {
  const Case& c = GetParam();
  const Decision d = engine_->Decide(c.tenant, c.category, c.operation, c.region, At(c.date));
  EXPECT_EQ(d.allow, c.allow);
  EXPECT_EQ(ReasonCode(d.reason), c.reason);
  EXPECT_EQ(d.legal_basis, c.basis);
  EXPECT_EQ(d.route_region, c.route);
  EXPECT_EQ(d.policy_version, 7u);
  EXPECT_EQ(d.ttl_s, c.allow ? 60u : 5u);
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  std::string name = std::to_string(info.index) + "_" + info.param.tenant + "_" +
                     info.param.category + "_" + info.param.operation + "_" + info.param.region;
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Table, RulesTableTest, ::testing::ValuesIn(kCases), CaseName);

TEST(RulesTest, TableHasAtLeastFiftyCases) { EXPECT_GE(std::size(kCases), 50u); }

TEST(RulesTest, AllowIsNotCachedPastTheEndOfItsSafeguard) {
  auto engine = RulesEngine();
  // SCC-IN-2025 ends on 2026-12-31 (inclusive): 30 s before midnight.
  Decision d = engine->Decide("acme", "personal", "process", "in-1", At("2026-12-31", 23, 59, 30));
  ASSERT_TRUE(d.allow);
  EXPECT_EQ(d.ttl_s, 30u);
  // Open-ended bases keep the default.
  d = engine->Decide("acme", "personal", "process", "jp-1", At("2026-12-31", 23, 59, 30));
  EXPECT_EQ(d.ttl_s, 60u);
}

TEST(RulesTest, EveryReasonHasAStableCode) {
  EXPECT_EQ(ReasonCode(Reason::kAllowed), "allowed");
  EXPECT_EQ(ReasonCode(Reason::kTenantUnknown), "tenant-unknown");
  EXPECT_EQ(ReasonCode(Reason::kDerogationNotSystematic), "derogation-not-systematic");
}

}  // namespace
}  // namespace geoledger::residency
