// The ledger's direct entry encoding (audit/internal/entry_encoding.h) must
// give exactly the bytes protobuf's deterministic serialization gives for the
// same AuditEntry: those bytes are hashed into the chain and the tree, and
// auditors parse them with the published .proto.
#include "audit/internal/entry_encoding.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "common/proto_util.h"

namespace geoledger::audit::internal {
namespace {

// The entry as the ledger used to build it: a message, then serialized.
std::string ViaProtobuf(uint64_t index, int64_t ts, const std::string& region, const AuditEvent& e,
                        const std::string& prev) {
  v1::AuditEntry entry;
  FillEntryMessage(index, ts, region, e, prev, &entry);
  return DeterministicSerialize(entry);
}

std::string Direct(uint64_t index, int64_t ts, const std::string& region, const AuditEvent& e,
                   const std::string& prev) {
  std::string out = "stale bytes from the previous entry";
  EncodeEntry(index, ts, region, e, prev, out);
  return out;
}

TEST(EntryEncodingTest, AFullDecisionEntryMatchesProtobuf) {
  AuditEvent e;
  e.tenant = "acme";
  e.actor = "token:bench-gateway";
  e.action = "residency.decision";
  e.resource = "tenant/acme";
  e.outcome = "allow";
  e.details = {{"category", "personal"}, {"decision_id", "a1b2c3d4e5f600000001"}, {"legal_basis", "tenant-pinning"},
               {"operation", "read"},    {"policy_version", "3"},                  {"reason", "allowed"},
               {"region", "eu-west-1"},  {"route_region", "eu-west-1"}};
  const std::string prev(32, '\x7f');
  EXPECT_EQ(Direct(41, 1764547200123, "eu-west-1", e, prev), ViaProtobuf(41, 1764547200123, "eu-west-1", e, prev));
}

TEST(EntryEncodingTest, DefaultsAreLeftOutAsProtobufDoes) {
  AuditEvent e;  // every field empty
  EXPECT_EQ(Direct(0, 0, "", e, ""), "");
  EXPECT_EQ(Direct(0, 0, "", e, ""), ViaProtobuf(0, 0, "", e, ""));
  e.action = "a";
  e.details = {{"k", ""}, {"", "v"}};        // empty halves of a detail
  e.sealed_key_id = "sk-1";                  // sealed present, ciphertext empty
  EXPECT_EQ(Direct(0, 0, "", e, std::string(32, '\0')), ViaProtobuf(0, 0, "", e, std::string(32, '\0')));
}

TEST(EntryEncodingTest, VarintBoundariesAndNegativeTimestampsMatchProtobuf) {
  AuditEvent e;
  e.action = "x";
  const uint64_t indexes[] = {1, 127, 128, 16383, 16384, (1ull << 35), (1ull << 63), std::numeric_limits<uint64_t>::max()};
  const int64_t times[] = {1, -1, 127, 128, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()};
  for (uint64_t i : indexes)
    for (int64_t t : times) EXPECT_EQ(Direct(i, t, "r", e, "h"), ViaProtobuf(i, t, "r", e, "h")) << i << " " << t;
}

TEST(EntryEncodingTest, RandomEventsMatchProtobufByteForByte) {
  std::mt19937_64 rng(20261201);
  // Lengths around the one- and two-byte length prefixes (127/128, 16383/16384).
  const size_t lengths[] = {0, 1, 5, 127, 128, 300, 16383, 16384, 20000};
  auto text = [&](bool binary) {
    size_t n = lengths[rng() % std::size(lengths)];
    std::string s;
    s.reserve(n);
    while (s.size() < n) {
      if (binary) s += static_cast<char>(rng());
      else if (rng() % 8 == 0 && s.size() + 3 <= n) s += "\xe2\x82\xac";  // U+20AC, three bytes
      else s += static_cast<char>('a' + rng() % 26);
    }
    return s;
  };
  for (int round = 0; round < 300; ++round) {
    AuditEvent e;
    e.tenant = text(false);
    e.actor = text(false);
    e.action = text(false);
    e.resource = text(false);
    e.outcome = text(false);
    e.subject_pseudonym = text(true);
    for (size_t d = rng() % 12; d > 0; --d) e.details[text(false)] = text(false);
    if (rng() % 2) {
      e.sealed_key_id = text(false);
      e.sealed_ciphertext = text(true);
    }
    const uint64_t index = rng() >> (rng() % 64);
    const int64_t ts = static_cast<int64_t>(rng());
    const std::string region = text(false), prev = text(true);
    const std::string direct = Direct(index, ts, region, e, prev);
    ASSERT_EQ(direct, ViaProtobuf(index, ts, region, e, prev)) << "round " << round;
    v1::AuditEntry back;
    ASSERT_TRUE(back.ParseFromString(direct)) << "round " << round;
    EXPECT_EQ(back.index(), index);
    EXPECT_EQ(back.details_size(), static_cast<int>(e.details.size()));
  }
}

}  // namespace
}  // namespace geoledger::audit::internal
