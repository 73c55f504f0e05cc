#include "cli/audit_verify.h"

#include <unistd.h>

#include <fstream>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>
#include <sstream>

#include "audit/checkpoint.h"
#include "audit/export.h"
#include "audit/entry_json.h"
#include "audit/merkle.h"
#include "common/encoding.h"
#include "crypto/hash.h"
#include "geoledger/v1/audit.pb.h"

namespace geoledger::cli {
namespace {

constexpr int kOk = 0, kFailed = 1, kUsage = 2;

// An answer of GET /v1/audit/entries is bounded by the server's page budget
// (a few MiB) plus one entry; this leaves room for a page saved whole.
constexpr size_t kMaxEntriesFileBytes = 16 * 1024 * 1024;

bool ReadFileUpTo(const std::string& path, size_t max_bytes, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return out->size() <= max_bytes;
}

bool ReadSmallFile(const std::string& path, std::string* out) { return ReadFileUpTo(path, 64 * 1024, out); }

// Loads the verifier key and one checkpoint; prints the reason and returns
// nullopt (with *rc set) on failure.
std::optional<audit::Checkpoint> LoadCheckpoint(const std::string& path, const audit::VerifierKey& key,
                                                std::FILE* err, int* rc) {
  std::string note;
  if (!ReadSmallFile(path, &note)) {
    std::fprintf(err, "geoledger: cannot read checkpoint file %s\n", path.c_str());
    *rc = kUsage;
    return std::nullopt;
  }
  auto cp = audit::OpenCheckpoint(note, key.name, key.public_key);
  if (!cp.ok()) {
    std::fprintf(err, "FAILED: checkpoint %s: %s\n", path.c_str(), cp.status().message().c_str());
    *rc = kFailed;
    return std::nullopt;
  }
  return *cp;
}

std::optional<audit::VerifierKey> LoadKey(const std::string& path, std::FILE* err) {
  std::string text;
  if (!ReadSmallFile(path, &text)) {
    std::fprintf(err, "geoledger: cannot read public key file %s\n", path.c_str());
    return std::nullopt;
  }
  auto key = audit::ParseVerifierKey(text);
  if (!key.ok()) {
    std::fprintf(err, "geoledger: %s: %s\n", path.c_str(), key.status().message().c_str());
    return std::nullopt;
  }
  return *key;
}

// Parses a proof answer: the named integer fields, plus "proof" (and
// "leaf_hash" when wanted) as base64 hashes.
bool LoadProof(const std::string& path, const std::vector<std::string>& ints, bool want_leaf,
               std::map<std::string, uint64_t>* numbers, std::vector<audit::Hash>* proof, audit::Hash* leaf,
               std::FILE* err) {
  std::string text;
  auto fail = [&](const std::string& why) {
    std::fprintf(err, "geoledger: proof file %s: %s\n", path.c_str(), why.c_str());
    return false;
  };
  if (!ReadSmallFile(path, &text)) return fail("cannot read it (or larger than 64 KiB)");
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("proof") || !j["proof"].is_array()) return fail("not a proof answer");
  for (const auto& name : ints) {
    if (!j.contains(name) || !j[name].is_number_unsigned()) return fail("'" + name + "' missing");
    (*numbers)[name] = j[name].get<uint64_t>();
  }
  auto decode = [](const nlohmann::json& v) -> std::optional<audit::Hash> {
    if (!v.is_string()) return std::nullopt;
    auto raw = Base64Decode(v.get<std::string>());
    if (!raw) return std::nullopt;
    auto h = audit::HashFromBytes(*raw);
    if (!h.ok()) return std::nullopt;
    return *h;
  };
  for (const auto& v : j["proof"]) {
    auto h = decode(v);
    if (!h) return fail("proof hashes must be base64 of 32 bytes");
    proof->push_back(*h);
  }
  if (want_leaf) {
    auto h = j.contains("leaf_hash") ? decode(j["leaf_hash"]) : std::nullopt;
    if (!h) return fail("'leaf_hash' missing or malformed");
    *leaf = *h;
  }
  return true;
}

// The bytes of entry `index` from `path`: an answer of GET /v1/audit/entries
// whose "entries" hold that index, or one element of that list. Only the
// base64 "entry" field is taken; every other field there is the server's
// rendering of those bytes (its "leaf_hash" included) and proves nothing.
std::optional<std::string> LoadEntryBytes(const std::string& path, uint64_t index, std::FILE* err) {
  auto fail = [&](const std::string& why) -> std::optional<std::string> {
    std::fprintf(err, "geoledger: entry file %s: %s\n", path.c_str(), why.c_str());
    return std::nullopt;
  };
  std::string text;
  if (!ReadFileUpTo(path, kMaxEntriesFileBytes, &text)) return fail("cannot read it (or larger than 16 MiB)");
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return fail("not an answer of GET /v1/audit/entries");
  nlohmann::json candidates = nlohmann::json::array();
  if (j.contains("entries") && j["entries"].is_array()) {
    candidates = j["entries"];
  } else {
    candidates.push_back(j);
  }
  for (const auto& e : candidates) {
    if (!e.is_object() || !e.contains("index") || !e["index"].is_number_unsigned() ||
        e["index"].get<uint64_t>() != index)
      continue;
    if (!e.contains("entry") || !e["entry"].is_string()) return fail("entry " + std::to_string(index) + " has no 'entry' bytes");
    auto bytes = Base64Decode(e["entry"].get<std::string>());
    if (!bytes) return fail("entry " + std::to_string(index) + ": 'entry' is not base64");
    return bytes;
  }
  return fail("holds no entry " + std::to_string(index) + " (fetch GET /v1/audit/entries?start=" +
              std::to_string(index) + "&end=" + std::to_string(index + 1) + ")");
}

// The fields of a verified entry, decoded from the bytes that were hashed,
// as one JSON line (escaped: the text fields are the log writers' input).
std::string VerifiedEntryJson(const v1::AuditEntry& entry) {
  return audit::EntryFieldsJson(entry).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

int RunVerifyInclusion(const VerifyInclusionOptions& o, std::FILE* out, std::FILE* err) {
  auto key = LoadKey(o.public_key_path, err);
  if (!key) return kUsage;
  int rc = kOk;
  auto cp = LoadCheckpoint(o.checkpoint_path, *key, err, &rc);
  if (!cp) return rc;
  std::map<std::string, uint64_t> n;
  std::vector<audit::Hash> proof;
  audit::Hash proof_leaf{};
  if (!LoadProof(o.proof_path, {"index", "tree_size"}, true, &n, &proof, &proof_leaf, err)) return kUsage;
  const uint64_t index = n["index"];
  auto bytes = LoadEntryBytes(o.entry_path, index, err);
  if (!bytes) return kUsage;
  if (n["tree_size"] != cp->size) {
    std::fprintf(err, "FAILED: proof is for tree size %llu, the checkpoint for %llu\n",
                 static_cast<unsigned long long>(n["tree_size"]), static_cast<unsigned long long>(cp->size));
    return kFailed;
  }
  // The leaf is hashed here from the entry's bytes: the proof's leaf_hash
  // comes from the same server as the proof and would let an entry edited
  // in transit pass.
  const audit::Hash leaf = audit::LeafHash(*bytes);
  if (leaf != proof_leaf) {
    std::fprintf(err, "FAILED: entry %llu hashes to leaf %s, the proof is for leaf %s\n",
                 static_cast<unsigned long long>(index), Base64Encode(crypto::AsView(leaf)).c_str(),
                 Base64Encode(crypto::AsView(proof_leaf)).c_str());
    return kFailed;
  }
  Status st = audit::VerifyInclusion(leaf, index, cp->size, proof, *audit::HashFromBytes(cp->root_hash));
  if (!st.ok()) {
    std::fprintf(err, "FAILED: %s\n", st.message().c_str());
    return kFailed;
  }
  // A proven leaf that is no entry of this log, or that names another
  // position, is reported rather than shown as entry `index`.
  v1::AuditEntry entry;
  if (!entry.ParseFromString(*bytes)) {
    std::fprintf(err, "FAILED: entry %llu is in the signed tree but does not parse as an audit entry\n",
                 static_cast<unsigned long long>(index));
    return kFailed;
  }
  if (entry.index() != index) {
    std::fprintf(err, "FAILED: entry %llu is in the signed tree but its index field says %llu\n",
                 static_cast<unsigned long long>(index), static_cast<unsigned long long>(entry.index()));
    return kFailed;
  }
  std::fprintf(out, "OK: entry %llu is in the signed tree of size %llu\n%s\n", static_cast<unsigned long long>(index),
               static_cast<unsigned long long>(cp->size), VerifiedEntryJson(entry).c_str());
  return kOk;
}

int RunVerifyConsistency(const std::string& proof_path, const std::string& old_checkpoint_path,
                         const std::string& checkpoint_path, const std::string& public_key_path,
                         std::FILE* out, std::FILE* err) {
  auto key = LoadKey(public_key_path, err);
  if (!key) return kUsage;
  int rc = kOk;
  auto old_cp = LoadCheckpoint(old_checkpoint_path, *key, err, &rc);
  if (!old_cp) return rc;
  auto new_cp = LoadCheckpoint(checkpoint_path, *key, err, &rc);
  if (!new_cp) return rc;
  std::map<std::string, uint64_t> n;
  std::vector<audit::Hash> proof;
  if (!LoadProof(proof_path, {"first", "second"}, false, &n, &proof, nullptr, err)) return kUsage;
  if (n["first"] != old_cp->size || n["second"] != new_cp->size) {
    std::fprintf(err, "FAILED: proof is between sizes %llu and %llu, the checkpoints are %llu and %llu\n",
                 static_cast<unsigned long long>(n["first"]), static_cast<unsigned long long>(n["second"]),
                 static_cast<unsigned long long>(old_cp->size), static_cast<unsigned long long>(new_cp->size));
    return kFailed;
  }
  Status st = audit::VerifyConsistency(old_cp->size, new_cp->size, *audit::HashFromBytes(old_cp->root_hash),
                                       *audit::HashFromBytes(new_cp->root_hash), proof);
  if (!st.ok()) {
    std::fprintf(err, "FAILED: %s\n", st.message().c_str());
    return kFailed;
  }
  std::fprintf(out, "OK: the tree of size %llu extends the tree of size %llu\n",
               static_cast<unsigned long long>(new_cp->size), static_cast<unsigned long long>(old_cp->size));
  return kOk;
}

int RunAuditVerify(const AuditVerifyOptions& o, std::FILE* out, std::FILE* err) {
  std::string key_text;
  if (!ReadSmallFile(o.public_key_path, &key_text)) {
    std::fprintf(err, "geoledger: cannot read public key file %s\n", o.public_key_path.c_str());
    return kUsage;
  }
  auto key = audit::ParseVerifierKey(key_text);
  if (!key.ok()) {
    std::fprintf(err, "geoledger: %s: %s (expected the text of DATA_DIR/audit-public.key or GET /v1/audit/public-key)\n",
                 o.public_key_path.c_str(), key.status().message().c_str());
    return kUsage;
  }
  std::ifstream in(o.export_path, std::ios::binary);
  if (!in) {
    std::fprintf(err, "geoledger: cannot read export file %s\n", o.export_path.c_str());
    return kUsage;
  }
  const bool tty = ::isatty(::fileno(err)) != 0;
  uint64_t last_reported = 0;
  auto progress = [&](uint64_t done, uint64_t total) {
    // Long files report every million entries; a terminal sees a live counter.
    if (tty) {
      std::fprintf(err, "\rverified %llu/%llu entries", static_cast<unsigned long long>(done),
                   static_cast<unsigned long long>(total));
      if (done == total) std::fputc('\n', err);
    } else if (done - last_reported >= 1000000 || (done == total && total >= 1000000)) {
      std::fprintf(err, "verified %llu/%llu entries\n", static_cast<unsigned long long>(done),
                   static_cast<unsigned long long>(total));
      last_reported = done;
    }
  };
  auto result = audit::VerifyExport(in, key->public_key, key->name, progress);
  if (!result.ok()) {
    if (tty) std::fputc('\n', err);
    std::fprintf(err, "FAILED: %s\n", result.status().message().c_str());
    return kFailed;
  }
  if (!o.checkpoint_path.empty()) {
    std::string note;
    if (!ReadSmallFile(o.checkpoint_path, &note)) {
      std::fprintf(err, "geoledger: cannot read checkpoint file %s\n", o.checkpoint_path.c_str());
      return kUsage;
    }
    auto cp = audit::OpenCheckpoint(note, key->name, key->public_key);
    if (!cp.ok()) {
      std::fprintf(err, "FAILED: checkpoint %s: %s\n", o.checkpoint_path.c_str(), cp.status().message().c_str());
      return kFailed;
    }
    if (cp->size != result->tree_size) {
      std::fprintf(err, "FAILED: checkpoint %s is for tree size %llu, the export ends at %llu\n",
                   o.checkpoint_path.c_str(), static_cast<unsigned long long>(cp->size),
                   static_cast<unsigned long long>(result->tree_size));
      return kFailed;
    }
    if (!crypto::ConstantTimeEquals(cp->root_hash, result->root)) {
      std::fprintf(err, "FAILED: checkpoint %s has a different root for tree size %llu\n", o.checkpoint_path.c_str(),
                   static_cast<unsigned long long>(cp->size));
      return kFailed;
    }
  }
  std::fprintf(out, "OK: %llu entries verified; tree size %llu; root %s; origin %s\n",
               static_cast<unsigned long long>(result->entries_checked),
               static_cast<unsigned long long>(result->tree_size), Base64Encode(result->root).c_str(),
               key->name.c_str());
  return kOk;
}

}  // namespace geoledger::cli
