#include "cli/audit_verify.h"

#include <unistd.h>

#include <fstream>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>
#include <sstream>

#include "audit/checkpoint.h"
#include "audit/export.h"
#include "audit/merkle.h"
#include "common/encoding.h"
#include "crypto/hash.h"

namespace geoledger::cli {
namespace {

constexpr int kOk = 0, kFailed = 1, kUsage = 2;

bool ReadSmallFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return out->size() <= 64 * 1024;
}

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

}  // namespace

int RunVerifyInclusion(const std::string& proof_path, const std::string& checkpoint_path,
                       const std::string& public_key_path, std::FILE* out, std::FILE* err) {
  auto key = LoadKey(public_key_path, err);
  if (!key) return kUsage;
  int rc = kOk;
  auto cp = LoadCheckpoint(checkpoint_path, *key, err, &rc);
  if (!cp) return rc;
  std::map<std::string, uint64_t> n;
  std::vector<audit::Hash> proof;
  audit::Hash leaf{};
  if (!LoadProof(proof_path, {"index", "tree_size"}, true, &n, &proof, &leaf, err)) return kUsage;
  if (n["tree_size"] != cp->size) {
    std::fprintf(err, "FAILED: proof is for tree size %llu, the checkpoint for %llu\n",
                 static_cast<unsigned long long>(n["tree_size"]), static_cast<unsigned long long>(cp->size));
    return kFailed;
  }
  Status st = audit::VerifyInclusion(leaf, n["index"], cp->size, proof, *audit::HashFromBytes(cp->root_hash));
  if (!st.ok()) {
    std::fprintf(err, "FAILED: %s\n", st.message().c_str());
    return kFailed;
  }
  std::fprintf(out, "OK: entry %llu is in the signed tree of size %llu\n",
               static_cast<unsigned long long>(n["index"]), static_cast<unsigned long long>(cp->size));
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
