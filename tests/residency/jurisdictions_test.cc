#include "residency/jurisdictions.h"

#include <gtest/gtest.h>

#include <set>

#include "tests/residency/fixtures.h"

namespace geoledger::residency {
namespace {

using testing::Jur;

TEST(JurisdictionsTest, EmbeddedTableParsesWithThirtyEeaStates) {
  auto j = BuiltinJurisdictions();
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  const auto& eea = (*j)->eea_states();
  EXPECT_EQ(eea.size(), 30u);
  std::set<std::string> set(eea.begin(), eea.end());
  EXPECT_EQ(set.size(), 30u);
  for (const char* c : {"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR",
                        "HU", "IE", "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK",
                        "SI", "ES", "SE", "IS", "LI", "NO"}) {
    EXPECT_TRUE(set.count(c)) << c;
    EXPECT_TRUE((*j)->IsEea(c)) << c;
  }
  EXPECT_EQ((*j)->country_count(), 249u);
}

TEST(JurisdictionsTest, FormerMemberAndNeighboursAreNotEea) {
  for (const char* c : {"GB", "CH", "US", "SJ", "GI", "FO", "TR"}) EXPECT_FALSE(Jur().IsEea(c)) << c;
  for (const char* c : {"AX", "GF", "GP", "MQ", "RE", "YT", "MF"}) EXPECT_TRUE(Jur().IsEea(c)) << c;
}

TEST(JurisdictionsTest, AdequacyEntriesCarryDateReferenceAndScope) {
  const std::set<std::string> expected = {"AD", "AR", "BR", "CA", "FO", "GG", "IL", "IM", "JP",
                                          "JE", "NZ", "KR", "CH", "GB", "US", "UY"};
  std::set<std::string> got;
  for (const Adequacy& a : Jur().adequacy()) {
    got.insert(a.code);
    EXPECT_FALSE(a.decision.empty()) << a.code;
    EXPECT_EQ(a.source.rfind("https://eur-lex.europa.eu/", 0), 0u) << a.code;
    EXPECT_EQ(a.legal_basis, "gdpr:art45:" + a.code);
  }
  EXPECT_EQ(got, expected);

  const Adequacy* us = Jur().FindAdequacy("US");
  ASSERT_NE(us, nullptr);
  EXPECT_NE(us->decision.find("2023/1795"), std::string::npos);
  EXPECT_EQ(FormatDate(us->date), "2023-07-10");
  EXPECT_EQ(us->scope, "certified-organisations");
  EXPECT_EQ(us->requires_declaration, "dpf");

  const Adequacy* ca = Jur().FindAdequacy("CA");
  ASSERT_NE(ca, nullptr);
  EXPECT_EQ(ca->scope, "commercial-organisations");
  const Adequacy* il = Jur().FindAdequacy("IL");
  ASSERT_NE(il, nullptr);
  EXPECT_EQ(il->scope, "automated-transfers");
  const Adequacy* jp = Jur().FindAdequacy("JP");
  ASSERT_NE(jp, nullptr);
  EXPECT_EQ(FormatDate(jp->date), "2019-01-23");
  const Adequacy* gb = Jur().FindAdequacy("GB");
  ASSERT_NE(gb, nullptr);
  ASSERT_TRUE(gb->in_force_until.has_value());
  EXPECT_TRUE(gb->InForceOn(*ParseDate("2026-01-01")));

  const Adequacy* br = Jur().FindAdequacy("BR");
  ASSERT_NE(br, nullptr);
  EXPECT_EQ(br->decision, "Commission Implementing Decision (EU) 2026/179");
  EXPECT_FALSE(br->InForceOn(*ParseDate("2026-01-27")));
  EXPECT_TRUE(br->InForceOn(*ParseDate("2026-01-28")));
  EXPECT_EQ(Jur().FindAdequacy("DE"), nullptr);  // EEA needs none
  EXPECT_EQ(Jur().FindAdequacy("IN"), nullptr);
}

TEST(JurisdictionsTest, IsoCodesAreStrict) {
  EXPECT_TRUE(Jur().IsCountry("IE"));
  EXPECT_FALSE(Jur().IsCountry("UK"));  // ISO code is GB
  EXPECT_FALSE(Jur().IsCountry("EL"));  // ISO code is GR
  EXPECT_FALSE(Jur().IsCountry("ie"));
  EXPECT_FALSE(Jur().IsCountry("XX"));
  EXPECT_FALSE(Jur().IsCountry(""));
}

TEST(JurisdictionsTest, MalformedTablesAreRejected) {
  EXPECT_FALSE(Jurisdictions::Parse("[unclosed").ok());
  EXPECT_FALSE(Jurisdictions::Parse("countries: [AA]\n").ok());
  EXPECT_FALSE(Jurisdictions::Parse("countries: [AA]\neea: [{code: ZZ}]\neea_territories: []\n"
                                    "adequacy: []\n").ok());
  auto ok = Jurisdictions::Parse(
      "countries: [AA, BB]\neea: [{code: AA}]\neea_territories: []\nadequacy:\n"
      "  - {code: BB, name: B, decision: D, date: 2020-01-01, in_force_from: 2020-01-01,"
      " scope: full, source: https://example.invalid}\n");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE((*ok)->IsEea("AA"));
  auto bad_date = Jurisdictions::Parse(
      "countries: [AA, BB]\neea: [{code: AA}]\neea_territories: []\nadequacy:\n"
      "  - {code: BB, name: B, decision: D, date: 2020-02-30, in_force_from: 2020-01-01,"
      " scope: full, source: s}\n");
  EXPECT_FALSE(bad_date.ok());
}

// A key the table does not know was ignored: a misspelt in_force_until made
// a decision open-ended, a misspelt requires granted the DPF decision to
// every tenant. Such tables are refused, as are an end before the start and
// a certified-organisations scope without its condition.
TEST(JurisdictionsTest, UnknownKeysAndInconsistentEntriesAreRefused) {
  const std::string yaml(BuiltinJurisdictionsYaml());
  ASSERT_TRUE(Jurisdictions::Parse(yaml).ok());
  const std::pair<std::string, std::string> edits[] = {
      {"in_force_until: 2031-12-27", "in_force_untill: 2031-12-27"},
      {"requires: dpf", "require: dpf"},
      {"requires: dpf", "scope_notes: dpf"},
      {"in_force_until: 2031-12-27", "in_force_until: 2021-06-27"},
      {"{code: AT, name: Austria, member: EU}", "{code: AT, name: Austria, membre: EU}"},
      {"\nadequacy:", "\nadequacies: []\nadequacy:"},
  };
  for (const auto& [from, to] : edits) {
    std::string edited = yaml;
    const size_t at = edited.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    edited.replace(at, from.size(), to);
    auto parsed = Jurisdictions::Parse(edited);
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << to;
    if (to.find("2021-06-27") == std::string::npos) {  // the others are unknown keys
      EXPECT_NE(parsed.status().message().find("unknown key"), std::string::npos) << parsed.status().message();
    }
  }
  std::string edited = yaml;
  const size_t at = edited.find("    requires: dpf\n");
  ASSERT_NE(at, std::string::npos);
  edited.erase(at, std::string("    requires: dpf\n").size());
  auto parsed = Jurisdictions::Parse(edited);
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(parsed.status().message().find("certified-organisations"), std::string::npos)
      << parsed.status().message();
}

// `requires` names what a tenant must declare before the engine relies on a
// partial adequacy decision (the EU-US Data Privacy Framework: "dpf"). A
// value tenants cannot declare ("DPF", a future condition) was read as no
// condition at all, granting adequacy to every tenant: the table is refused.
TEST(JurisdictionsTest, AnAdequacyConditionTenantsCannotDeclareIsRefused) {
  std::string yaml(BuiltinJurisdictionsYaml());
  const size_t at = yaml.find("requires: dpf");
  ASSERT_NE(at, std::string::npos);
  ASSERT_TRUE(Jurisdictions::Parse(yaml).ok());
  for (const char* other : {"requires: DPF", "requires: dpf2"}) {
    std::string edited = yaml;
    edited.replace(at, std::string("requires: dpf").size(), other);
    auto parsed = Jurisdictions::Parse(edited);
    ASSERT_FALSE(parsed.ok()) << other;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << other;
    EXPECT_NE(parsed.status().message().find("requires must be \"dpf\""), std::string::npos)
        << parsed.status().message();
  }
}

TEST(DateTest, ParsesStrictlyAndRoundTrips) {
  EXPECT_EQ(ParseDate("1970-01-01"), 0);
  EXPECT_EQ(ParseDate("2024-02-29").has_value(), true);
  EXPECT_FALSE(ParseDate("2025-02-29").has_value());
  EXPECT_FALSE(ParseDate("2025-13-01").has_value());
  EXPECT_FALSE(ParseDate("2025-1-01").has_value());
  EXPECT_FALSE(ParseDate("2025-01-01T00:00").has_value());
  EXPECT_FALSE(ParseDate("+025-01-01").has_value());
  EXPECT_EQ(FormatDate(*ParseDate("2031-12-27")), "2031-12-27");
  EXPECT_EQ(DayOf(-1), -1);
  EXPECT_EQ(DayOf(86399), 0);
  EXPECT_EQ(DayOf(86400), 1);
}

// A decision's second is rounded up: the last fraction of a day belongs to
// the next one, so nothing decided in it outlives the day's end.
TEST(DateTest, ADecisionsSecondIsRoundedUp) {
  EXPECT_EQ(DecisionSeconds(0), 0);
  EXPECT_EQ(DecisionSeconds(1), 1);
  EXPECT_EQ(DecisionSeconds(999), 1);
  EXPECT_EQ(DecisionSeconds(1000), 1);
  EXPECT_EQ(DecisionSeconds(86399'001), 86400);
  EXPECT_EQ(DayOf(DecisionSeconds(86399'999)), 1);
  EXPECT_EQ(DayOf(DecisionSeconds(86399'000)), 0);
}

}  // namespace
}  // namespace geoledger::residency
