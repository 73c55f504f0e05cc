// `geoledger audit verify` on exports of a real ledger.
#include "cli/audit_verify.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>

#include "audit/export.h"
#include "audit/ledger.h"
#include "audit/merkle.h"
#include "common/encoding.h"
#include "crypto/signer.h"

#include <nlohmann/json.hpp>

namespace geoledger::cli {
namespace {

std::string Slurp(std::FILE* f) {
  std::rewind(f);
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  return s;
}

class AuditVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/audit-verify-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::create_directories(dir_);
    kv_ = NewMemoryKvStore();
    signer_.emplace(std::move(*crypto::Ed25519Signer::FromSeed(crypto::SecretBytes::Random(32))));
    auto opened = audit::Ledger::Open(kv_.get(), &*signer_, &SystemClock::Get(), {"eu-west-1"});
    ASSERT_TRUE(opened.ok());
    ledger_ = std::move(*opened);
    auto* ledger = &ledger_;
    for (int i = 0; i < 30; ++i) {
      audit::AuditEvent e;
      e.tenant = "acme";
      e.actor = "t";
      e.action = "test";
      e.resource = "r" + std::to_string(i);
      e.outcome = "ok";
      ASSERT_TRUE((*ledger)->Append({e}).ok());
    }
    ASSERT_TRUE((*ledger)->Close().ok());
    note_ = (*ledger)->LatestCheckpoint();
    auto entries = (*ledger)->Entries(0, 30);
    ASSERT_TRUE(entries.ok());
    auto bytes = audit::BuildExport("geoledger/eu-west-1", 0, {}, std::string(32, '\0'), *entries, note_);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    export_ = *bytes;
    Write("export.bin", export_);
    Write("key.txt", crypto::NoteVerifierKey("geoledger/eu-west-1", signer_->public_key()) + "\n");
    Write("checkpoint.txt", note_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << bytes;
  }
  std::string P(const std::string& name) { return dir_ + "/" + name; }
  int Run(AuditVerifyOptions o) {
    std::FILE* out = std::tmpfile();
    std::FILE* err = std::tmpfile();
    int rc = RunAuditVerify(o, out, err);
    out_ = Slurp(out);
    err_ = Slurp(err);
    std::fclose(out);
    std::fclose(err);
    return rc;
  }
  int RunInclusion(VerifyInclusionOptions o) {
    std::FILE* out = std::tmpfile();
    std::FILE* err = std::tmpfile();
    int rc = RunVerifyInclusion(o, out, err);
    out_ = Slurp(out);
    err_ = Slurp(err);
    std::fclose(out);
    std::fclose(err);
    return rc;
  }
  std::string dir_, note_, export_, out_, err_;
  std::unique_ptr<KvStore> kv_;
  std::optional<crypto::Ed25519Signer> signer_;
  std::unique_ptr<audit::Ledger> ledger_;  // declared after kv_ and signer_: destroyed first
};

std::string ProofJson(const std::vector<std::string>& hashes, nlohmann::json j) {
  j["proof"] = nlohmann::json::array();
  for (const auto& h : hashes) j["proof"].push_back(Base64Encode(h));
  return j.dump();
}

// A GET /v1/audit/entries answer holding one entry with these bytes; the
// rendered fields say what `resource` says, whatever the bytes hold.
std::string EntriesJson(uint64_t index, const std::string& bytes, const std::string& leaf_hash,
                        const std::string& resource) {
  nlohmann::json e = {{"index", index}, {"leaf_hash", Base64Encode(leaf_hash)}, {"entry", Base64Encode(bytes)},
                      {"resource", resource}};
  return nlohmann::json{{"entries", {e}}, {"size", 30}}.dump();
}

TEST_F(AuditVerifyTest, InclusionProofVerifiesAgainstTheCheckpoint) {
  auto entries = ledger_->Entries(7, 8);
  auto proof = ledger_->InclusionProof(7, 30);
  ASSERT_TRUE(entries.ok() && proof.ok());
  const std::string& leaf = (*entries)[0].leaf_hash;
  Write("inc.json", ProofJson(*proof, {{"index", 7}, {"tree_size", 30}, {"leaf_hash", Base64Encode(leaf)}}));
  Write("entry.json", EntriesJson(7, (*entries)[0].bytes, leaf, "r7"));
  EXPECT_EQ(RunInclusion({P("inc.json"), P("entry.json"), P("checkpoint.txt"), P("key.txt")}), 0) << err_;
  EXPECT_NE(out_.find("OK: entry 7 is in the signed tree of size 30"), std::string::npos) << out_;
  EXPECT_NE(out_.find(R"("resource":"r7")"), std::string::npos) << out_;
  // One element of the list is enough.
  Write("one.json", nlohmann::json::parse(EntriesJson(7, (*entries)[0].bytes, leaf, "r7"))["entries"][0].dump());
  EXPECT_EQ(RunInclusion({P("inc.json"), P("one.json"), P("checkpoint.txt"), P("key.txt")}), 0) << err_;
  // Claiming another index for the same leaf fails.
  Write("wrong.json", ProofJson(*proof, {{"index", 8}, {"tree_size", 30}, {"leaf_hash", Base64Encode(leaf)}}));
  Write("entry8.json", EntriesJson(8, (*entries)[0].bytes, leaf, "r7"));
  EXPECT_EQ(RunInclusion({P("wrong.json"), P("entry8.json"), P("checkpoint.txt"), P("key.txt")}), 1);
  EXPECT_EQ(out_.find("OK"), std::string::npos) << out_;
}

TEST_F(AuditVerifyTest, EntryEditedInTransitFailsDespiteAGenuineProof) {
  auto entries = ledger_->Entries(7, 8);
  auto proof = ledger_->InclusionProof(7, 30);
  ASSERT_TRUE(entries.ok() && proof.ok());
  const std::string& leaf = (*entries)[0].leaf_hash;
  Write("inc.json", ProofJson(*proof, {{"index", 7}, {"tree_size", 30}, {"leaf_hash", Base64Encode(leaf)}}));
  // The entry's resource rewritten from r7 to r8 (same length), its leaf hash
  // left as the server gave it.
  std::string edited = (*entries)[0].bytes;
  size_t at = edited.find("r7");
  ASSERT_NE(at, std::string::npos);
  edited[at + 1] = '8';
  Write("edited.json", EntriesJson(7, edited, leaf, "r8"));
  EXPECT_EQ(RunInclusion({P("inc.json"), P("edited.json"), P("checkpoint.txt"), P("key.txt")}), 1);
  EXPECT_NE(err_.find("FAILED: entry 7 hashes to leaf"), std::string::npos) << err_;
  EXPECT_EQ(out_.find("OK"), std::string::npos) << out_;
  // A proof whose leaf hash was rewritten to match the edited entry does not
  // lead to the signed root.
  Write("forged.json", ProofJson(*proof, {{"index", 7}, {"tree_size", 30},
                                          {"leaf_hash", Base64Encode(crypto::AsView(audit::LeafHash(edited)))}}));
  EXPECT_EQ(RunInclusion({P("forged.json"), P("edited.json"), P("checkpoint.txt"), P("key.txt")}), 1);
  EXPECT_EQ(out_.find("OK"), std::string::npos) << out_;
  // Only the bytes count: rendered fields edited around genuine bytes verify,
  // and what is printed is decoded from the bytes.
  Write("relabelled.json", EntriesJson(7, (*entries)[0].bytes, leaf, "r8"));
  EXPECT_EQ(RunInclusion({P("inc.json"), P("relabelled.json"), P("checkpoint.txt"), P("key.txt")}), 0) << err_;
  EXPECT_NE(out_.find(R"("resource":"r7")"), std::string::npos) << out_;
}

TEST_F(AuditVerifyTest, InclusionWithoutTheEntryIsRefused) {
  auto entries = ledger_->Entries(6, 8);
  auto proof = ledger_->InclusionProof(7, 30);
  ASSERT_TRUE(entries.ok() && proof.ok());
  Write("inc.json", ProofJson(*proof, {{"index", 7}, {"tree_size", 30}, {"leaf_hash", Base64Encode((*entries)[1].leaf_hash)}}));
  // A page that does not hold entry 7, a missing file, bytes that are not base64.
  Write("entry6.json", EntriesJson(6, (*entries)[0].bytes, (*entries)[0].leaf_hash, "r6"));
  EXPECT_EQ(RunInclusion({P("inc.json"), P("entry6.json"), P("checkpoint.txt"), P("key.txt")}), 2);
  EXPECT_NE(err_.find("holds no entry 7"), std::string::npos) << err_;
  EXPECT_EQ(RunInclusion({P("inc.json"), P("missing.json"), P("checkpoint.txt"), P("key.txt")}), 2);
  Write("bad.json", R"({"entries":[{"index":7,"entry":"***"}]})");
  EXPECT_EQ(RunInclusion({P("inc.json"), P("bad.json"), P("checkpoint.txt"), P("key.txt")}), 2);
  EXPECT_EQ(out_.find("OK"), std::string::npos) << out_;
}

TEST_F(AuditVerifyTest, ConsistencyProofLinksAnOlderCheckpoint) {
  auto old_root = ledger_->RootAt(11);
  auto proof = ledger_->ConsistencyProof(11, 30);
  ASSERT_TRUE(old_root.ok() && proof.ok());
  Write("old.txt", audit::SignCheckpoint({"geoledger/eu-west-1", 11, *old_root}, *signer_));
  Write("cons.json", ProofJson(*proof, {{"first", 11}, {"second", 30}}));
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  EXPECT_EQ(RunVerifyConsistency(P("cons.json"), P("old.txt"), P("checkpoint.txt"), P("key.txt"), out, err), 0)
      << Slurp(err);
  EXPECT_NE(Slurp(out).find("extends the tree of size 11"), std::string::npos);
  // A forked history (a different root at 11) is caught.
  Write("fork.txt", audit::SignCheckpoint({"geoledger/eu-west-1", 11, std::string(32, 'f')}, *signer_));
  EXPECT_EQ(RunVerifyConsistency(P("cons.json"), P("fork.txt"), P("checkpoint.txt"), P("key.txt"), out, err), 1);
  std::fclose(out);
  std::fclose(err);
}

TEST_F(AuditVerifyTest, ValidExportVerifiesAndExitsZero) {
  EXPECT_EQ(Run({P("export.bin"), P("key.txt"), ""}), 0) << err_;
  EXPECT_NE(out_.find("OK: 30 entries verified; tree size 30"), std::string::npos) << out_;
  EXPECT_EQ(Run({P("export.bin"), P("key.txt"), P("checkpoint.txt")}), 0) << err_;
}

TEST_F(AuditVerifyTest, EditedExportNamesTheFirstBadEntry) {
  std::string bad = export_;
  // The first record starts after the header; flip a byte inside record 0's bytes.
  size_t header_end = bad.find("\n\n") + 2;
  bad[header_end + 4 + 2] ^= 0x01;
  Write("bad.bin", bad);
  EXPECT_EQ(Run({P("bad.bin"), P("key.txt"), ""}), 1);
  EXPECT_NE(err_.find("FAILED: entry "), std::string::npos) << err_;
}

TEST_F(AuditVerifyTest, WrongKeyOrMismatchedCheckpointFails) {
  auto other = crypto::Ed25519Signer::FromSeed(crypto::SecretBytes::Random(32));
  Write("other.txt", crypto::NoteVerifierKey("geoledger/eu-west-1", other->public_key()));
  EXPECT_EQ(Run({P("export.bin"), P("other.txt"), ""}), 1);
  EXPECT_NE(err_.find("signature"), std::string::npos) << err_;
  audit::Checkpoint smaller{"geoledger/eu-west-1", 29, std::string(32, 'x')};
  Write("small.txt", audit::SignCheckpoint(smaller, *signer_));
  EXPECT_EQ(Run({P("export.bin"), P("key.txt"), P("small.txt")}), 1);
  EXPECT_NE(err_.find("is for tree size 29"), std::string::npos) << err_;
}

TEST_F(AuditVerifyTest, UnusableArgumentsExitTwo) {
  EXPECT_EQ(Run({P("missing.bin"), P("key.txt"), ""}), 2);
  Write("garbage.txt", "not a key");
  EXPECT_EQ(Run({P("export.bin"), P("garbage.txt"), ""}), 2);
}

}  // namespace
}  // namespace geoledger::cli
