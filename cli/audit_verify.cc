#include "cli/audit_verify.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "audit/checkpoint.h"
#include "audit/export.h"
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

}  // namespace

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
