#include "audit/export.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <sstream>

#include "audit/checkpoint.h"
#include "audit/ledger.h"
#include "common/clock.h"
#include "common/encoding.h"
#include "common/kv_store.h"
#include "common/proto_util.h"
#include "crypto/hash.h"
#include "geoledger/v1/audit.pb.h"

namespace geoledger::audit {
namespace {

constexpr char kOrigin[] = "geoledger/eu-west-1";
constexpr uint64_t kN = 50;

crypto::Ed25519Signer FreshSigner() {
  return std::move(*crypto::Ed25519Signer::FromSeed(crypto::SecretBytes::Random(32)));
}

std::string Sha(std::string_view s) { return std::string(crypto::AsView(crypto::Sha256(s))); }

void PutU32At(std::string& s, size_t at, uint32_t v) {
  s[at] = static_cast<char>(v >> 24);
  s[at + 1] = static_cast<char>(v >> 16);
  s[at + 2] = static_cast<char>(v >> 8);
  s[at + 3] = static_cast<char>(v);
}

// Where the pieces of an export are: header length, then per record the
// offset of its length field, then the checkpoint record's offset.
struct Layout {
  size_t header_len = 0;
  std::vector<size_t> records;
  size_t checkpoint = 0;
};
Layout Parse(const std::string& exp, uint64_t count) {
  Layout l;
  l.header_len = exp.find("\n\n") + 2;
  size_t at = l.header_len;
  for (uint64_t i = 0; i < count; ++i) {
    l.records.push_back(at);
    uint32_t len = (uint32_t{static_cast<uint8_t>(exp[at])} << 24) | (uint32_t{static_cast<uint8_t>(exp[at + 1])} << 16) |
                   (uint32_t{static_cast<uint8_t>(exp[at + 2])} << 8) | uint32_t{static_cast<uint8_t>(exp[at + 3])};
    at += 4 + len;
  }
  l.checkpoint = at;
  return l;
}

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kv_ = NewMemoryKvStore();
    signer_.emplace(FreshSigner());
    Ledger::Options o;
    o.region = "eu-west-1";
    auto l = Ledger::Open(kv_.get(), &*signer_, &SystemClock::Get(), o);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    ledger_ = std::move(*l);
    for (uint64_t b = 0; b < kN; b += 10) {
      std::vector<AuditEvent> events;
      for (uint64_t i = b; i < b + 10; ++i) {
        AuditEvent e;
        e.tenant = "acme";
        e.actor = "test";
        e.action = "test.event";
        e.resource = "r/" + std::to_string(i);
        e.outcome = "ok";
        e.details = {{"n", std::to_string(i)}};
        events.push_back(e);
      }
      ASSERT_TRUE(ledger_->Append(events).ok());
    }
    ASSERT_TRUE(ledger_->Close().ok());
    auto entries = ledger_->Entries(0, kN);
    ASSERT_TRUE(entries.ok());
    entries_ = *entries;
    note_ = ledger_->LatestCheckpoint();
  }

  // The export of [start, kN), with `entries` (default: the real ones) and
  // `note` (default: the ledger's final checkpoint).
  std::string Export(uint64_t start, std::vector<StoredEntry> entries = {}, std::string note = "") {
    if (entries.empty() && start < kN) entries.assign(entries_.begin() + start, entries_.end());
    for (size_t k = 0; k < entries.size(); ++k) entries[k].index = start + k;  // BuildExport's own check
    Frontier f;
    for (uint64_t i = 0; i < start; ++i) EXPECT_TRUE(f.Append(*HashFromBytes(entries_[i].leaf_hash), nullptr).ok());
    std::string prev = start == 0 ? std::string(32, '\0') : Sha(entries_[start - 1].bytes);
    auto exp = BuildExport(kOrigin, start, f.border(), prev, entries, note.empty() ? note_ : note);
    EXPECT_TRUE(exp.ok()) << exp.status().ToString();
    return exp.ok() ? *exp : "";
  }

  StatusOr<VerifyResult> Verify(const std::string& exp, std::string_view origin = kOrigin) {
    std::istringstream in(exp);
    return VerifyExport(in, signer_->public_key(), origin);
  }

  // Expects failure with `code` and a message containing `what`.
  void ExpectFailure(const std::string& exp, StatusCode code, const std::string& what,
                     std::string_view origin = kOrigin) {
    auto r = Verify(exp, origin);
    ASSERT_FALSE(r.ok()) << "tampered export verified";
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status().message();
  }

  std::unique_ptr<KvStore> kv_;
  std::optional<crypto::Ed25519Signer> signer_;
  std::unique_ptr<Ledger> ledger_;
  std::vector<StoredEntry> entries_;
  std::string note_;
};

TEST_F(ExportTest, FullExportVerifies) {
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  std::istringstream in(Export(0));
  auto r = VerifyExport(in, signer_->public_key(), kOrigin,
                        [&](uint64_t d, uint64_t t) { calls.emplace_back(d, t); });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->entries_checked, kN);
  EXPECT_EQ(r->tree_size, kN);
  EXPECT_EQ(r->root, *ledger_->RootAt(kN));
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back(), std::make_pair(kN, kN));
}

TEST_F(ExportTest, SlicesVerifyWithTheirPrefixBorder) {
  for (uint64_t k : {1u, 2u, 17u, 32u, 37u, 49u, 50u}) {
    auto r = Verify(Export(k));
    ASSERT_TRUE(r.ok()) << "start " << k << ": " << r.status().ToString();
    EXPECT_EQ(r->entries_checked, kN - k);
    EXPECT_EQ(r->tree_size, kN);
    EXPECT_EQ(r->root, *ledger_->RootAt(kN));
  }
}

TEST_F(ExportTest, HeaderLayoutIsAsSpecified) {
  std::string exp = Export(37);  // 37 = 32 + 4 + 1: three prefix lines
  std::string header = exp.substr(0, exp.find("\n\n") + 2);
  EXPECT_EQ(header.rfind("geoledger-audit-export v1\norigin geoledger/eu-west-1\nstart 37\nend 50\nprefix ", 0), 0u)
      << header;
  size_t prefixes = 0;
  for (size_t p = header.find("\nprefix "); p != std::string::npos; p = header.find("\nprefix ", p + 1)) ++prefixes;
  EXPECT_EQ(prefixes, 3u);
  EXPECT_NE(header.find("\nprev " + Base64Encode(Sha(entries_[36].bytes)) + "\n\n"), std::string::npos);
}

// A byte flipped inside entry i's content (here: the resource string) leaves
// entry i parseable, correctly indexed and correctly chained to i-1, so it is
// caught at i+1, whose prev_entry_hash no longer matches.
TEST_F(ExportTest, FlippedContentByteIsCaughtByTheNextEntrysChainLink) {
  auto entries = entries_;
  size_t at = entries[17].bytes.find("r/17");
  ASSERT_NE(at, std::string::npos);
  entries[17].bytes[at + 2] = '9';
  ExpectFailure(Export(0, entries), StatusCode::kDataLoss,
                "entry 18: chain broken: prev_entry_hash does not match entry 17");
}

// In the last entry there is no next link: the root gives it away.
TEST_F(ExportTest, FlippedContentByteInTheLastEntryIsCaughtByTheRoot) {
  auto entries = entries_;
  size_t at = entries[kN - 1].bytes.find("r/49");
  ASSERT_NE(at, std::string::npos);
  entries[kN - 1].bytes[at + 2] = '0';
  ExpectFailure(Export(0, entries), StatusCode::kDataLoss,
                "root mismatch: recomputed root of 50 entries differs from the signed checkpoint");
}

// prev_entry_hash (field 12) is serialized last: flipping the final byte
// breaks entry i's own link.
TEST_F(ExportTest, FlippedChainByteIsCaughtAtThatEntry) {
  auto entries = entries_;
  entries[17].bytes.back() ^= 0x01;
  ExpectFailure(Export(0, entries), StatusCode::kDataLoss,
                "entry 17: chain broken: prev_entry_hash does not match entry 16");
}

TEST_F(ExportTest, FlippedIndexByteIsCaughtAtThatEntry) {
  auto entries = entries_;
  ASSERT_EQ(entries[5].bytes.substr(0, 2), std::string("\x08\x05", 2));  // field 1 varint = 5
  entries[5].bytes[1] = 6;
  ExpectFailure(Export(0, entries), StatusCode::kDataLoss, "entry 5: index field says 6");
}

TEST_F(ExportTest, UnparseableEntryIsCaughtAtThatEntry) {
  auto entries = entries_;
  entries[12].bytes[0] = 0x07;  // field 0, wire type 7: invalid
  ExpectFailure(Export(0, entries), StatusCode::kInvalidArgument, "entry 12: does not parse as AuditEntry");
}

// Removing record 20 shifts record 21 into position 20.
TEST_F(ExportTest, DeletedRecordIsCaughtByTheIndex) {
  std::string exp = Export(0);
  Layout l = Parse(exp, kN);
  exp.erase(l.records[20], l.records[21] - l.records[20]);
  ExpectFailure(exp, StatusCode::kDataLoss, "entry 20: index field says 21");
}

TEST_F(ExportTest, SwappedRecordsAreCaughtByTheIndex) {
  std::string exp = Export(0);
  Layout l = Parse(exp, kN);
  std::string a = exp.substr(l.records[30], l.records[31] - l.records[30]);
  std::string b = exp.substr(l.records[31], l.records[32] - l.records[31]);
  exp.replace(l.records[30], a.size() + b.size(), b + a);
  ExpectFailure(exp, StatusCode::kDataLoss, "entry 30: index field says 31");
}

// The last record is removed but the checkpoint kept: the checkpoint record
// now sits where entry 49 should be and does not parse as an entry.
TEST_F(ExportTest, DroppedLastRecordIsCaughtAtThatPosition) {
  std::string exp = Export(0);
  Layout l = Parse(exp, kN);
  exp.erase(l.records[kN - 1], l.checkpoint - l.records[kN - 1]);
  ExpectFailure(exp, StatusCode::kInvalidArgument, "entry 49: does not parse as AuditEntry");
}

// Cutting the file after entry 48 (no entry 49, no checkpoint).
TEST_F(ExportTest, FileEndingEarlyNamesTheMissingEntry) {
  std::string exp = Export(0);
  Layout l = Parse(exp, kN);
  exp.resize(l.records[kN - 1]);
  ExpectFailure(exp, StatusCode::kInvalidArgument, "entry 49: record missing: export ends after 49 of 50 entries");
}

// A consistent truncation (header end lowered too) is caught by the checkpoint.
TEST_F(ExportTest, ShortenedRangeIsCaughtByTheCheckpointSize) {
  std::vector<StoredEntry> first49(entries_.begin(), entries_.end() - 1);
  ExpectFailure(Export(0, first49), StatusCode::kDataLoss, "checkpoint: size 50 does not match export end 49");
}

TEST_F(ExportTest, TruncationMidRecordIsReported) {
  std::string exp = Export(0);
  Layout l = Parse(exp, kN);
  exp.resize(l.records[12] + 10);
  ExpectFailure(exp, StatusCode::kInvalidArgument, "entry 12: record truncated");
  exp.resize(l.records[12] + 2);
  ExpectFailure(exp, StatusCode::kInvalidArgument, "entry 12: record truncated (in length field)");
}

TEST_F(ExportTest, TruncatedCheckpointIsReported) {
  std::string exp = Export(0);
  exp.resize(exp.size() - 5);
  ExpectFailure(exp, StatusCode::kInvalidArgument, "checkpoint: record truncated");
  Layout l = Parse(exp, kN);
  exp.resize(l.checkpoint);
  ExpectFailure(exp, StatusCode::kInvalidArgument, "checkpoint: missing");
}

TEST_F(ExportTest, CheckpointSignedByAnotherKeyIsRejected) {
  auto cp = OpenCheckpoint(note_, kOrigin, signer_->public_key());
  ASSERT_TRUE(cp.ok());
  auto other = FreshSigner();
  ExpectFailure(Export(0, {}, SignCheckpoint(*cp, other)), StatusCode::kPermissionDenied,
                "checkpoint: signature does not verify");
}

TEST_F(ExportTest, CheckpointForAnotherSizeIsRejected) {
  Checkpoint cp{kOrigin, kN - 1, *ledger_->RootAt(kN - 1)};
  ExpectFailure(Export(0, {}, SignCheckpoint(cp, *signer_)), StatusCode::kDataLoss,
                "checkpoint: size 49 does not match export end 50");
}

TEST_F(ExportTest, CheckpointWithAnotherRootIsRejected) {
  Checkpoint cp{kOrigin, kN, *ledger_->RootAt(kN - 1)};
  ExpectFailure(Export(0, {}, SignCheckpoint(cp, *signer_)), StatusCode::kDataLoss,
                "root mismatch: recomputed root of 50 entries differs from the signed checkpoint");
}

TEST_F(ExportTest, WrongOriginIsRejected) {
  ExpectFailure(Export(0), StatusCode::kInvalidArgument,
                "header: origin \"geoledger/eu-west-1\" does not match expected origin \"geoledger/us-east-1\"",
                "geoledger/us-east-1");
  // Header rewritten to the other origin: the note is still signed for eu-west-1.
  std::string exp = Export(0);
  exp.replace(exp.find("eu-west-1"), 9, "us-east-1");
  ExpectFailure(exp, StatusCode::kPermissionDenied, "checkpoint: signature does not verify", "geoledger/us-east-1");
}

TEST_F(ExportTest, TrailingGarbageIsRejected) {
  ExpectFailure(Export(0) + "x", StatusCode::kInvalidArgument, "trailing garbage after the checkpoint record");
}

TEST_F(ExportTest, HugeLengthFieldIsRejectedWithoutAllocating) {
  std::string exp = Export(0);
  Layout l = Parse(exp, kN);
  PutU32At(exp, l.records[7], 0xFFFFFFFFu);
  ExpectFailure(exp, StatusCode::kInvalidArgument, "entry 7: record length 4294967295 exceeds the limit");
  exp = Export(0);
  PutU32At(exp, l.checkpoint, 0x7FFFFFFFu);
  ExpectFailure(exp, StatusCode::kInvalidArgument, "checkpoint: record length 2147483647 exceeds the limit");
}

TEST_F(ExportTest, SliceWithWrongPrevOrPrefixIsRejected) {
  std::string exp = Export(37);
  size_t at = exp.find("\nprev ") + 6;
  exp.replace(at, 44, Base64Encode(Sha("not the previous entry")));
  ExpectFailure(exp, StatusCode::kDataLoss,
                "entry 37: chain broken: prev_entry_hash does not match the header's prev hash");
  exp = Export(37);
  at = exp.find("\nprefix ") + 8;
  exp.replace(at, 44, Base64Encode(Sha("not a subtree")));
  ExpectFailure(exp, StatusCode::kDataLoss, "root mismatch");
}

TEST_F(ExportTest, MalformedHeadersAreRejected) {
  std::string exp = Export(37);
  ExpectFailure("geoledger-audit-export v2\n" + exp.substr(26), StatusCode::kInvalidArgument, "bad magic");
  std::string missing_prefix = exp;
  size_t p = missing_prefix.find("prefix ");
  missing_prefix.erase(p, missing_prefix.find('\n', p) + 1 - p);
  // The prev line is read as the third prefix line.
  ExpectFailure(missing_prefix, StatusCode::kInvalidArgument, "header: expected \"prefix\" line");
  std::string bad_start = exp;
  bad_start.replace(bad_start.find("start 37"), 8, "start 037");
  ExpectFailure(bad_start, StatusCode::kInvalidArgument, "header: malformed start");
  ExpectFailure("", StatusCode::kInvalidArgument, "bad magic");
}

TEST_F(ExportTest, StreamsThatThrowDoNotEscape) {
  std::string exp = Export(0);
  exp.resize(exp.size() / 2);
  std::istringstream in(exp);
  in.exceptions(std::ios::failbit | std::ios::badbit | std::ios::eofbit);
  StatusOr<VerifyResult> r = InvalidArgument("unset");
  EXPECT_NO_THROW(r = VerifyExport(in, signer_->public_key(), kOrigin));
  EXPECT_FALSE(r.ok());
}

TEST_F(ExportTest, BuildExportRejectsInconsistentInput) {
  std::vector<StoredEntry> e(entries_.begin() + 3, entries_.end());
  EXPECT_FALSE(BuildExport(kOrigin, 3, {}, Sha(entries_[2].bytes), e, note_).ok());  // needs 2 prefix hashes
  EXPECT_FALSE(BuildExport(kOrigin, 0, {}, "short", entries_, note_).ok());
  EXPECT_FALSE(BuildExport(kOrigin, 0, {}, std::string(32, '\0'), e, note_).ok());  // indexes start at 3
  EXPECT_FALSE(BuildExport("bad origin", 0, {}, std::string(32, '\0'), entries_, note_).ok());
}

// ---- the worked example of compliance-docs/audit-log-format.md ---------------

std::string ExampleEntry(uint64_t i, const std::string& prev) {
  v1::AuditEntry e;
  e.set_index(i);
  e.set_timestamp_unix_ms(1700000000000 + static_cast<int64_t>(i) * 1000);
  e.set_region("eu-west-1");
  e.set_tenant("acme");
  e.set_actor("svc-a");
  e.set_action("residency.decision");
  e.set_resource("doc/" + std::to_string(i));
  e.set_outcome("allow");
  auto* d = e.add_details();
  d->set_key("n");
  d->set_value(std::to_string(i));
  e.set_prev_entry_hash(prev);
  return DeterministicSerialize(e);
}

TEST(ExportWorkedExampleTest, MatchesTheDocumentedValues) {
  std::string seed;
  for (int i = 1; i <= 32; ++i) seed.push_back(static_cast<char>(i));
  auto signer = std::move(*crypto::Ed25519Signer::FromSeed(crypto::SecretBytes::CopyFrom(seed)));
  std::string prev(32, '\0');
  std::vector<std::string> bytes, chain;
  std::vector<Hash> leaves;
  std::vector<StoredEntry> stored;
  for (uint64_t i = 0; i < 3; ++i) {
    bytes.push_back(ExampleEntry(i, prev));
    chain.push_back(prev);
    leaves.push_back(LeafHash(bytes.back()));
    stored.push_back({i, bytes.back(), std::string(crypto::AsView(leaves.back()))});
    prev = Sha(bytes.back());
  }
  Hash n01 = NodeHash(leaves[0], leaves[1]);
  Hash root = NodeHash(n01, leaves[2]);
  EXPECT_EQ(root, RootFromLeafHashes(leaves));
  std::string note = SignCheckpoint({kOrigin, 3, std::string(crypto::AsView(root))}, signer);

  std::ostringstream out;
  out << "public key " << HexEncode(signer.public_key()) << "\n";
  out << "verifier key " << crypto::NoteVerifierKey(kOrigin, signer.public_key()) << "\n";
  for (int i = 0; i < 3; ++i) {
    out << "entry " << i << " bytes " << HexEncode(bytes[i]) << "\n";
    out << "entry " << i << " prev_entry_hash " << HexEncode(chain[i]) << "\n";
    out << "entry " << i << " sha256 " << HexEncode(Sha(bytes[i])) << "\n";
    out << "entry " << i << " leaf " << HexEncode(crypto::AsView(leaves[i])) << "\n";
  }
  out << "node(0,1) " << HexEncode(crypto::AsView(n01)) << "\n";
  out << "root " << HexEncode(crypto::AsView(root)) << "\n";
  out << "root base64 " << Base64Encode(crypto::AsView(root)) << "\n";
  out << "checkpoint\n" << note;
  auto exp = BuildExport(kOrigin, 0, {}, std::string(32, '\0'), stored, note);
  ASSERT_TRUE(exp.ok());
  out << "export " << HexEncode(*exp) << "\n";
  std::istringstream in(*exp);
  auto r = VerifyExport(in, signer.public_key(), kOrigin);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // Slice [2, 3): prefix = border of size 2 = node(0,1); prev = sha256(entry 1).
  auto slice = BuildExport(kOrigin, 2, {n01}, Sha(bytes[1]), {stored[2]}, note);
  ASSERT_TRUE(slice.ok());
  std::istringstream sin(*slice);
  auto sr = VerifyExport(sin, signer.public_key(), kOrigin);
  ASSERT_TRUE(sr.ok()) << sr.status().ToString();
  out << "slice " << HexEncode(*slice) << "\n";

  const char* expected = R"ex(public key 79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664
verifier key geoledger/eu-west-1+424e89aa+AXm1Vi6P5lT5QHixEuipi6eQH4U65pW+1+DjkQutBJZk
entry 0 bytes 1080d095ffbc311a0965752d776573742d31220461636d652a057376632d6132127265736964656e63792e6465636973696f6e3a05646f632f304205616c6c6f7752060a016e12013062200000000000000000000000000000000000000000000000000000000000000000
entry 0 prev_entry_hash 0000000000000000000000000000000000000000000000000000000000000000
entry 0 sha256 0121d0255d33d7ff7c8bcbf2d5aaa44f5c630c8aaa152c7f71ac3fc005416201
entry 0 leaf fa5092e338352c9b99101c5d260d85cca5780cc69540dab265edea7c7aa2723a
entry 1 bytes 080110e8d795ffbc311a0965752d776573742d31220461636d652a057376632d6132127265736964656e63792e6465636973696f6e3a05646f632f314205616c6c6f7752060a016e12013162200121d0255d33d7ff7c8bcbf2d5aaa44f5c630c8aaa152c7f71ac3fc005416201
entry 1 prev_entry_hash 0121d0255d33d7ff7c8bcbf2d5aaa44f5c630c8aaa152c7f71ac3fc005416201
entry 1 sha256 ba9ffb132deaeb3ef83769d09f4aac688ba4178af0af698ccf54949843027ef9
entry 1 leaf 0c34b393645a13a99f6411902e2787bb0a0d814528dc0d88d309906c24a04e8d
entry 2 bytes 080210d0df95ffbc311a0965752d776573742d31220461636d652a057376632d6132127265736964656e63792e6465636973696f6e3a05646f632f324205616c6c6f7752060a016e1201326220ba9ffb132deaeb3ef83769d09f4aac688ba4178af0af698ccf54949843027ef9
entry 2 prev_entry_hash ba9ffb132deaeb3ef83769d09f4aac688ba4178af0af698ccf54949843027ef9
entry 2 sha256 eb000179fbc52e15b909cd6e0806e73bcc5a0c34b1cf1322b92af01bd5c42a6f
entry 2 leaf 21838f611607166de294f8e35bec41e761170902cd58c84195ef72b1d67a170d
node(0,1) 9c7d2557838a3beeae4fa59fa74f12d43e17357af7d8073a347fe012dd4cb41a
root 83254c609211110cd322969e6e64010b1ce4ec4a68d1b7dcadf2dc68b9b13e3d
root base64 gyVMYJIREQzTIpaebmQBCxzk7Epo0bfcrfLcaLmxPj0=
checkpoint
geoledger/eu-west-1
3
gyVMYJIREQzTIpaebmQBCxzk7Epo0bfcrfLcaLmxPj0=

— geoledger/eu-west-1 Qk6Jql7gbN6FFLmaa7ePZJDKAPZixrgniI7paSzAyldCBqb+dPHyL0qUg1aK+JZYdv+/tJqb+iqoBkS7k6rPhX8y6Q0=
export 67656f6c65646765722d61756469742d6578706f72742076310a6f726967696e2067656f6c65646765722f65752d776573742d310a737461727420300a656e6420330a7072657620414141414141414141414141414141414141414141414141414141414141414141414141414141414141413d0a0a0000006b1080d095ffbc311a0965752d776573742d31220461636d652a057376632d6132127265736964656e63792e6465636973696f6e3a05646f632f304205616c6c6f7752060a016e120130622000000000000000000000000000000000000000000000000000000000000000000000006d080110e8d795ffbc311a0965752d776573742d31220461636d652a057376632d6132127265736964656e63792e6465636973696f6e3a05646f632f314205616c6c6f7752060a016e12013162200121d0255d33d7ff7c8bcbf2d5aaa44f5c630c8aaa152c7f71ac3fc0054162010000006d080210d0df95ffbc311a0965752d776573742d31220461636d652a057376632d6132127265736964656e63792e6465636973696f6e3a05646f632f324205616c6c6f7752060a016e1201326220ba9ffb132deaeb3ef83769d09f4aac688ba4178af0af698ccf54949843027ef9000000b967656f6c65646765722f65752d776573742d310a330a6779564d594a495245517a5449706165626d514243787a6b3745706f3062666372664c63614c6d78506a303d0a0ae280942067656f6c65646765722f65752d776573742d3120516b364a716c3767624e3646464c6d61613765505a4a444b41505a697872676e6949377061537a41796c64434271622b645048794c3071556731614b2b4a5a5964762b2f744a71622b69716f426b53376b367250685838793651303d0a
slice 67656f6c65646765722d61756469742d6578706f72742076310a6f726967696e2067656f6c65646765722f65752d776573742d310a737461727420320a656e6420330a707265666978206e48306c56344f4b4f2b36755436576670303853314434584e587233324163364e482f674574314d74426f3d0a707265762075702f3745793371367a37344e326e516e3071736149756b4634727772326d4d7a3153556d454d4366766b3d0a0a0000006d080210d0df95ffbc311a0965752d776573742d31220461636d652a057376632d6132127265736964656e63792e6465636973696f6e3a05646f632f324205616c6c6f7752060a016e1201326220ba9ffb132deaeb3ef83769d09f4aac688ba4178af0af698ccf54949843027ef9000000b967656f6c65646765722f65752d776573742d310a330a6779564d594a495245517a5449706165626d514243787a6b3745706f3062666372664c63614c6d78506a303d0a0ae280942067656f6c65646765722f65752d776573742d3120516b364a716c3767624e3646464c6d61613765505a4a444b41505a697872676e6949377061537a41796c64434271622b645048794c3071556731614b2b4a5a5964762b2f744a71622b69716f426b53376b367250685838793651303d0a
)ex";
  if (std::getenv("GEOLEDGER_PRINT_EXAMPLE")) std::cout << out.str();
  EXPECT_EQ(out.str(), expected);
}

}  // namespace
}  // namespace geoledger::audit
