// The residency rules as a table: category x operation x destination
// jurisdiction (EEA, adequacy, third country) x safeguards. Each row is one
// line of compliance-docs/residency-rules.md in executable form.
#include "residency/rules.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

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
                          R("ca-1", "CA"), R("ch-1", "CH"), R("kr-1", "KR"), R("il-1", "IL"), R("in-1", "IN"),
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
      T("kr-out", R"({"home_region":"eu-west-1","status":"active",
        "allowed_regions":{"personal":["kr-1","jp-1"]},"adequacy_opt_out":["KR"],
        "safeguards":[{"jurisdiction":"KR","mechanism":"scc","reference":"SCC-KR","valid_from":"2025-01-01"}]})"),
      T("jp-out", R"({"home_region":"eu-west-1","status":"active","adequacy_opt_out":["JP"]})"),
      T("dpf-co", R"({"home_region":"eu-central-1","status":"active",
        "allowed_regions":{"personal":["us-east-1"]},"certifications":["dpf"]})"),
      T("dpf-dated", R"({"home_region":"eu-central-1","status":"active",
        "allowed_regions":{"personal":["us-east-1"]},
        "certifications":[{"name":"dpf","reference":"Example Cloud Inc.","valid_from":"2025-03-01","valid_until":"2026-02-28"}],
        "safeguards":[{"jurisdiction":"US","mechanism":"scc","reference":"SCC-US-2026","valid_from":"2026-03-15"}]})"),
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
    // Each adequacy decision applies from its first day, not a day earlier.
    {"acme", "personal", "process", "ch-1", false, "no-transfer-basis", "", "eu-west-1", "2000-07-25"},
    {"acme", "personal", "process", "ch-1", true, "allowed", "gdpr:art45:CH", "ch-1", "2000-07-26"},
    {"acme", "personal", "process", "ca-1", false, "no-transfer-basis", "", "eu-west-1", "2001-12-19"},
    {"acme", "personal", "process", "ca-1", true, "allowed", "gdpr:art45:CA", "ca-1", "2001-12-20"},
    {"acme", "personal", "process", "il-1", false, "no-transfer-basis", "", "eu-west-1", "2011-01-30"},
    {"acme", "personal", "process", "il-1", true, "allowed", "gdpr:art45:IL", "il-1", "2011-01-31"},
    {"acme", "personal", "transfer", "il-1", true, "allowed", "gdpr:art45:IL", "il-1"},
    {"acme", "personal", "process", "kr-1", false, "no-transfer-basis", "", "eu-west-1", "2021-12-16"},
    {"acme", "personal", "process", "kr-1", true, "allowed", "gdpr:art45:KR", "kr-1", "2021-12-17"},
    {"acme", "personal", "process", "uk-1", false, "no-transfer-basis", "", "eu-west-1", "2021-06-27"},
    {"acme", "personal", "process", "uk-1", true, "allowed", "gdpr:art45:GB", "uk-1", "2021-06-28"},
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
    // A dated declaration names the organisation and applies only while its listing runs.
    {"dpf-dated", "personal", "store", "us-east-1", true, "allowed", "gdpr:art45:US:dpf:Example Cloud Inc.", "us-east-1"},
    {"dpf-dated", "personal", "process", "us-east-1", true, "allowed", "gdpr:art45:US:dpf:Example Cloud Inc.", "us-east-1", "2025-03-01"},
    {"dpf-dated", "personal", "process", "us-east-1", true, "allowed", "gdpr:art45:US:dpf:Example Cloud Inc.", "us-east-1", "2026-02-28"},
    {"dpf-dated", "personal", "process", "us-east-1", false, "no-transfer-basis", "", "eu-central-1", "2025-02-28"},
    {"dpf-dated", "personal", "process", "us-east-1", false, "no-transfer-basis", "", "eu-central-1", "2026-03-01"},
    {"dpf-dated", "personal", "process", "us-east-1", true, "allowed", "gdpr:art46:scc:SCC-US-2026", "us-east-1", "2026-03-15"},
    {"dpf-dated", "special", "process", "us-east-1", false, "special-outside-home", "", "eu-central-1"},
    // --- third countries: safeguards valid, expired, not yet valid, wrong place
    {"acme", "personal", "store", "in-1", true, "allowed", "gdpr:art46:scc:SCC-IN-2025", "in-1"},
    {"acme", "personal", "process", "in-1", true, "allowed", "gdpr:art46:scc:SCC-IN-2025", "in-1", "2026-12-31"},
    {"acme", "personal", "process", "in-1", false, "no-transfer-basis", "", "eu-west-1", "2027-01-01"},
    {"acme", "personal", "process", "in-1", false, "no-transfer-basis", "", "eu-west-1", "2024-12-31"},
    {"wrongjur", "personal", "store", "in-1", false, "no-transfer-basis", "", "eu-west-1"},
    {"acme", "personal", "process", "sg-1", false, "derogation-not-systematic", "", "eu-west-1"},
    {"acme", "personal", "read", "sg-1", true, "allowed", "gdpr:art49:consent-2025", "sg-1"},
    {"acme", "personal", "transfer", "sg-1", true, "allowed", "gdpr:art49:consent-2025", "sg-1"},
    {"acme", "personal", "support_access", "sg-1", true, "allowed", "gdpr:art49:consent-2025", "sg-1"},
    {"acme", "personal", "store", "sg-1", false, "derogation-not-systematic", "", "eu-west-1"},
    {"acme", "personal", "process", "br-1", false, "no-transfer-basis", "", "eu-west-1"},
    {"acme", "personal", "backup", "br-1", false, "region-not-allowed", "", "eu-west-1"},
    // A tenant that opted out of a country's adequacy decision needs a safeguard there.
    {"kr-out", "personal", "store", "kr-1", true, "allowed", "gdpr:art46:scc:SCC-KR", "kr-1"},
    {"kr-out", "personal", "process", "kr-1", true, "allowed", "gdpr:art46:scc:SCC-KR", "kr-1"},
    {"kr-out", "personal", "read", "jp-1", true, "allowed", "gdpr:art45:JP", "jp-1"},
    {"jp-out", "personal", "read", "jp-1", false, "no-transfer-basis", "", "eu-west-1"},
    {"jp-out", "anonymous", "read", "jp-1", true, "allowed", "not-personal-data", "jp-1"},
    // Brazil: adequate from 2026-01-28 (the table's start for (EU) 2026/179).
    {"acme", "personal", "process", "br-1", false, "no-transfer-basis", "", "eu-west-1", "2026-01-27"},
    {"acme", "personal", "process", "br-1", true, "allowed", "gdpr:art45:BR", "br-1", "2026-01-28"},
    {"acme", "personal", "store", "br-1", false, "region-not-allowed", "", "eu-west-1", "2026-01-28"},
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
  const OwnedDecision d = engine_->Decide(c.tenant, c.category, c.operation, c.region, At(c.date));
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
  OwnedDecision d = engine->Decide("acme", "personal", "process", "in-1", At("2026-12-31", 23, 59, 30));
  ASSERT_TRUE(d.allow);
  EXPECT_EQ(d.ttl_s, 30u);
  // A dated DPF declaration ends on 2026-02-28 (inclusive).
  d = engine->Decide("dpf-dated", "personal", "process", "us-east-1", At("2026-02-28", 23, 59, 15));
  ASSERT_TRUE(d.allow);
  EXPECT_EQ(d.ttl_s, 45u);
  // Open-ended bases keep the default.
  d = engine->Decide("acme", "personal", "process", "jp-1", At("2026-12-31", 23, 59, 30));
  EXPECT_EQ(d.ttl_s, 60u);
  // In the safeguard's last second, at whole seconds its allow is cached
  // for the rest of it; within that second, the decision's time rounds up
  // to midnight and the safeguard no longer applies.
  d = engine->Decide("acme", "personal", "process", "in-1", At("2026-12-31", 23, 59, 59));
  ASSERT_TRUE(d.allow);
  EXPECT_EQ(d.ttl_s, 1u);
  d = engine->Decide("acme", "personal", "process", "in-1",
                     DecisionSeconds(At("2026-12-31", 23, 59, 59) * 1000 + 400));
  EXPECT_NE(d.legal_basis, "gdpr:art46:scc:SCC-IN-2025");
}

TEST(RulesTest, EveryReasonHasAStableCode) {
  EXPECT_EQ(ReasonCode(Reason::kAllowed), "allowed");
  EXPECT_EQ(ReasonCode(Reason::kTenantUnknown), "tenant-unknown");
  EXPECT_EQ(ReasonCode(Reason::kDerogationNotSystematic), "derogation-not-systematic");
}

}  // namespace
}  // namespace geoledger::residency
namespace geoledger::residency {
namespace {

// A model of compliance-docs/residency-rules.md written from the document,
// not from the engine: its own types, the EEA and adequacy lists as the
// document gives them, and the rules in the document's order.
struct RefSafeguard {
  std::string cc, mech, ref, from;
  std::string until;  // "" = open
};
struct RefTenant {
  std::string id, home;
  bool suspended = false;
  std::map<std::string, std::vector<std::string>> allowed;  // category -> listed
  bool dpf = false;  // the undated declaration
  std::vector<RefSafeguard> sg;
  std::set<std::string> opt_out = {};  // adequacy_opt_out
  std::vector<RefSafeguard> dpf_dated = {};  // cc unused; ref, from, until
};
struct RefDecision {
  bool allow;
  std::string reason, basis, route;
  uint32_t ttl;
};

const std::set<std::string> kDocEea = {"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU",
                                       "IE", "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES",
                                       "SE", "IS", "LI", "NO", "AX", "GF", "GP", "MQ", "RE", "YT", "MF"};
const std::set<std::string> kDocAdequate = {"AD", "AR", "BR", "CA", "FO", "GG", "IL", "IM",
                                            "JP", "JE", "NZ", "KR", "CH", "GB", "US", "UY"};

RefDecision RefDecide(const std::vector<RefTenant>& tenants, const std::map<std::string, std::string>& regions,
                      const std::string& tid, const std::string& cat, const std::string& op, const std::string& rid,
                      int64_t now) {
  const RefTenant* t = nullptr;
  for (auto& x : tenants)
    if (x.id == tid) t = &x;
  auto deny = [&](std::string reason, std::string route) { return RefDecision{false, reason, "", route, 5}; };
  if (!t) return deny("tenant-unknown", "");
  if (t->suspended) return deny("tenant-suspended", "");
  static const std::set<std::string> cats = {"personal", "special", "pseudonymised", "anonymous", "operational"};
  static const std::set<std::string> ops = {"store",  "process",  "read",          "replicate",
                                            "backup", "transfer", "support_access"};
  if (!cats.count(cat)) return deny("category-unknown", "");
  if (!ops.count(op)) return deny("operation-unknown", "");
  if (!regions.count(rid)) return deny("region-unknown", t->home);
  const std::string hint = rid == t->home ? "" : t->home;
  const bool residency = op == "store" || op == "replicate" || op == "backup";
  auto allowed_set = [&](const std::string& c) {
    std::set<std::string> s;
    auto it = t->allowed.find(c);
    if (it == t->allowed.end()) {
      if (c == "pseudonymised") {
        auto p = t->allowed.find("personal");
        if (p != t->allowed.end()) s.insert(p->second.begin(), p->second.end());
      }
    } else {
      s.insert(it->second.begin(), it->second.end());
    }
    s.insert(t->home);
    return s;
  };
  const int64_t day = now >= 0 ? now / 86400 : -((-now + 86399) / 86400);
  auto allow = [&](std::string basis, int64_t until_day = -1) {
    uint32_t ttl = 60;
    if (until_day >= 0)
      ttl = static_cast<uint32_t>(std::min<int64_t>(60, std::max<int64_t>(0, (until_day + 1) * 86400 - now)));
    return RefDecision{true, "allowed", basis, rid, ttl};
  };
  if (cat == "anonymous") return allow("not-personal-data");
  if (cat == "operational") {
    bool pinned = t->allowed.count("operational");
    if (!pinned || !residency) return allow("not-personal-data");
    if (!allowed_set("operational").count(rid)) return deny("region-not-allowed", hint);
    return allow("tenant-pinning");
  }
  const bool in_allowed = allowed_set(cat).count(rid) != 0;
  if (cat == "special" && !in_allowed) return deny("special-outside-home", hint);
  if (!in_allowed && residency) return deny("region-not-allowed", hint);
  const std::string cc = regions.at(rid);
  if (kDocEea.count(cc)) return allow(in_allowed ? "tenant-pinning" : "eea");
  if (kDocAdequate.count(cc)) {
    const Adequacy* a = testing::Jur().FindAdequacy(cc);
    EXPECT_NE(a, nullptr) << cc;
    const int64_t a_until = a && a->in_force_until ? *a->in_force_until : -1;
    if (a && day >= a->in_force_from && (a_until < 0 || day <= a_until) && !t->opt_out.count(cc)) {
      if (cc != "US" || t->dpf) return allow("gdpr:art45:" + cc, a_until);
      // The document: the first dated declaration whose period covers the day.
      for (const auto& c : t->dpf_dated) {
        const int64_t from = *ParseDate(c.from), until = *ParseDate(c.until);
        if (day < from || day > until) continue;
        return allow("gdpr:art45:US:dpf:" + c.ref, a_until < 0 ? until : std::min(a_until, until));
      }
    }
  }
  const RefSafeguard* derog = nullptr;
  int64_t derog_until = -1;
  for (const auto& s : t->sg) {
    if (s.cc != cc) continue;
    const int64_t from = *ParseDate(s.from);
    const int64_t until = s.until.empty() ? -1 : *ParseDate(s.until);
    if (day < from || (until >= 0 && day > until)) continue;
    if (s.mech == "art49") {
      if (!derog) {
        derog = &s;
        derog_until = until;
      }
      continue;
    }
    return allow((s.mech == "scc" ? "gdpr:art46:scc:" : "gdpr:art47:bcr:") + s.ref, until);
  }
  if (derog) {
    if (residency || op == "process") return deny("derogation-not-systematic", hint);
    return allow("gdpr:art49:" + derog->ref, derog_until);
  }
  return deny("no-transfer-basis", hint);
}

std::string ToJson(const RefTenant& t) {
  nlohmann::json j = {{"home_region", t.home}, {"status", t.suspended ? "suspended" : "active"}};
  nlohmann::json a = nlohmann::json::object();
  for (auto& [c, l] : t.allowed) a[c] = l;
  j["allowed_regions"] = a;
  nlohmann::json sg = nlohmann::json::array();
  for (auto& s : t.sg) {
    nlohmann::json o = {{"jurisdiction", s.cc}, {"mechanism", s.mech}, {"reference", s.ref}, {"valid_from", s.from}};
    if (!s.until.empty()) o["valid_until"] = s.until;
    sg.push_back(o);
  }
  j["safeguards"] = sg;
  if (t.dpf) j["certifications"] = {"dpf"};
  for (auto& c : t.dpf_dated)
    j["certifications"].push_back({{"name", "dpf"}, {"reference", c.ref}, {"valid_from", c.from}, {"valid_until", c.until}});
  if (!t.opt_out.empty()) j["adequacy_opt_out"] = t.opt_out;
  return j.dump();
}

// Every combination of 9 tenants (active, suspended, unknown; default and
// listed regions; pinned and unpinned operational data; with and without the
// undated DPF certification, with dated ones that lapse; opted out of adequacy decisions; safeguards in mixed
// order, expired, not yet valid and open-ended), 7 categories, 8 operations, 33 regions (EEA states and
// territories, every adequacy country, third countries, an unknown region)
// and 60 instants (the boundary days at the start, middle and end of the
// day) against RefDecide, a separate reading of compliance-docs/
// residency-rules.md: allow, reason, legal basis, route and ttl must agree.
TEST(RulesModelTest, EngineAgreesWithAnIndependentModelOfTheRulesDocument) {
  const std::map<std::string, std::string> regions = {
      {"ie-1", "IE"}, {"de-1", "DE"}, {"is-1", "IS"}, {"li-1", "LI"}, {"no-1", "NO"}, {"gf-1", "GF"}, {"ax-1", "AX"},
      {"mf-1", "MF"}, {"sj-1", "SJ"}, {"gb-1", "GB"}, {"us-1", "US"}, {"jp-1", "JP"}, {"ca-1", "CA"}, {"ch-1", "CH"},
      {"kr-1", "KR"}, {"il-1", "IL"}, {"nz-1", "NZ"}, {"ar-1", "AR"}, {"uy-1", "UY"}, {"ad-1", "AD"}, {"fo-1", "FO"},
      {"gg-1", "GG"}, {"je-1", "JE"}, {"im-1", "IM"}, {"in-1", "IN"}, {"br-1", "BR"}, {"sg-1", "SG"}, {"cn-1", "CN"},
      {"gi-1", "GI"}, {"gl-1", "GL"}, {"bl-1", "BL"}, {"pm-1", "PM"}};
  std::vector<RefTenant> tenants;
  tenants.push_back({"a", "ie-1", false, {}, false, {}});
  tenants.push_back({"b",
                     "de-1",
                     false,
                     {{"personal", {"ie-1", "us-1", "in-1", "sg-1", "gb-1", "br-1", "jp-1", "sj-1"}},
                      {"special", {"us-1", "in-1", "no-1"}}},
                     false,
                     {{"IN", "art49", "d-in", "2025-01-01", ""},
                      {"IN", "scc", "s-in", "2025-03-01", "2025-06-30"},
                      {"IN", "bcr", "b-in", "2025-05-01", ""},
                      {"US", "scc", "s-us", "2024-01-01", "2025-06-15"},
                      {"SG", "art49", "d-sg", "2025-01-01", "2025-12-31"},
                      {"SG", "art49", "d-sg2", "2025-01-01", ""},
                      {"BR", "scc", "s-br", "2025-01-01", ""},
                      {"GB", "scc", "s-gb", "2025-01-01", ""},
                      {"SJ", "scc", "s-sj", "2025-01-01", ""}}});
  tenants.push_back({"c", "us-1", false, {{"pseudonymised", {"ie-1"}}, {"operational", {}}}, true, {}});
  tenants.push_back({"d",
                     "ie-1",
                     false,
                     {{"personal", {"us-1", "gb-1"}}, {"special", {"us-1"}}, {"operational", {"de-1", "in-1"}}},
                     true,
                     {{"US", "art49", "d-us", "2025-01-01", ""}}});
  tenants.push_back({"e", "ie-1", true, {}, false, {}});
  tenants.push_back({"f", "gb-1", false, {{"pseudonymised", {}}, {"personal", {"de-1"}}}, false, {}});
  tenants.push_back({"g",
                     "ie-1",
                     false,
                     {{"personal", {"kr-1", "br-1", "us-1"}}},
                     true,
                     {{"KR", "scc", "s-kr", "2025-01-01", "2025-12-31"}, {"BR", "art49", "d-br", "2025-01-01", ""}},
                     {"KR", "BR", "US", "IN"}});
  tenants.push_back({"h",
                     "de-1",
                     false,
                     {{"personal", {"us-1"}}, {"special", {"us-1"}}},
                     false,
                     {{"US", "scc", "s-us-h", "2025-06-30", ""}},
                     {},
                     {{"", "", "o-2025", "2025-07-01", "2026-01-27"}, {"", "", "o-2024", "2024-07-01", "2025-06-15"}}});

  auto engine = testing::NewEngine();
  SnapshotBuilder b = engine->NewPolicy(3);
  for (auto& [id, cc] : regions) ASSERT_TRUE(b.PutRegion(R(id, cc)).ok()) << id;
  for (auto& t : tenants) ASSERT_TRUE(b.PutTenant(T(t.id, ToJson(t))).ok()) << t.id;
  ASSERT_TRUE(engine->Install(std::move(b).Build()).ok());

  const std::vector<std::string> tids = {"a", "b", "c", "d", "e", "f", "g", "h", "zz"};
  const std::vector<std::string> cats = {"personal", "special", "pseudonymised", "anonymous", "operational",
                                         "Personal", ""};
  const std::vector<std::string> ops = {"store",  "process",  "read",           "replicate",
                                        "backup", "transfer", "support_access", "delete"};
  std::vector<std::string> rids;
  for (auto& [id, cc] : regions) rids.push_back(id);
  rids.push_back("nowhere-1");
  std::vector<int64_t> times;
  for (const char* d : {"2019-01-22", "2019-01-23", "2023-07-09", "2023-07-10", "2024-12-31", "2025-01-01",
                        "2025-02-28", "2025-03-01", "2025-04-30", "2025-05-01", "2025-06-15", "2025-06-16",
                        "2025-06-30", "2025-07-01", "2025-12-31", "2026-01-01", "2026-01-27", "2026-01-28",
                        "2031-12-27", "2031-12-28"})
    for (int hh : {0, 12, 23}) times.push_back(At(d, hh, hh == 23 ? 59 : 0, hh == 23 ? 30 : 0));
  size_t mismatches = 0, checked = 0;
  for (auto& tid : tids)
    for (auto& c : cats)
      for (auto& o : ops)
        for (auto& r : rids)
          for (int64_t now : times) {
            const OwnedDecision d = engine->Decide(tid, c, o, r, now);
            const RefDecision e = RefDecide(tenants, regions, tid, c, o, r, now);
            ++checked;
            if (d.allow != e.allow || ReasonCode(d.reason) != e.reason || d.legal_basis != e.basis ||
                d.route_region != e.route || d.ttl_s != e.ttl || d.policy_version != 3u) {
              if (++mismatches <= 40)
                ADD_FAILURE() << tid << " " << c << " " << o << " " << r << " " << FormatDate(DayOf(now)) << "+"
                              << (now % 86400) << ": engine " << d.allow << "/" << ReasonCode(d.reason) << "/"
                              << d.legal_basis << "/" << d.route_region << "/ttl" << d.ttl_s << "  doc " << e.allow
                              << "/" << e.reason << "/" << e.basis << "/" << e.route << "/ttl" << e.ttl;
            }
          }
  EXPECT_EQ(mismatches, 0u) << "of " << checked;
}

}  // namespace
}  // namespace geoledger::residency
