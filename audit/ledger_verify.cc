// Ledger::Verify: the optional full verification of the stored log.
#include <utility>
#include <vector>

#include "audit/checkpoint.h"
#include "audit/internal/ledger_keys.h"
#include "audit/ledger.h"
#include "audit/merkle.h"
#include "crypto/hash.h"
#include "geoledger/v1/audit.pb.h"

namespace geoledger::audit {
namespace {

using internal::FromBigEndian64;
using internal::kLedgerNs;

constexpr uint64_t kProgressEvery = 65536;

Status EntryProblem(uint64_t index, const std::string& what) {
  return DataLoss("audit verify: entry " + std::to_string(index) + ": " + what);
}

std::string Raw(const Hash& h) { return std::string(crypto::AsView(h)); }

// The signed checkpoints stored under "c" be64(size), in size order, up to
// `max_size`. The latest-checkpoint key ("checkpoint") shares the "c" prefix
// and is told apart by its length.
StatusOr<std::vector<std::pair<uint64_t, std::string>>> StoredCheckpoints(const KvStore& kv,
                                                                          uint64_t max_size) {
  std::vector<std::pair<uint64_t, std::string>> out;
  GL_RETURN_IF_ERROR(kv.Scan(kLedgerNs, "c", [&](std::string_view key, std::string_view value) {
    if (key.size() != 9) return true;
    uint64_t size = FromBigEndian64(key.substr(1));
    if (size > max_size) return false;
    out.emplace_back(size, std::string(value));
    return true;
  }));
  return out;
}

}  // namespace

StatusOr<Ledger::VerifyReport> Ledger::Verify(
    const std::function<void(uint64_t, uint64_t)>& progress) const {
  uint64_t n;
  std::string head_last_hash;
  {
    std::lock_guard<std::mutex> lock(mu_);
    n = durable_.size;
    head_last_hash = durable_.last_hash;
  }
  GL_ASSIGN_OR_RETURN(auto checkpoints, StoredCheckpoints(*kv_, n));
  VerifyReport report;
  // Signatures first: a forged note is named even if the entries are fine.
  std::vector<std::pair<uint64_t, Checkpoint>> opened;
  for (const auto& [size, note] : checkpoints) {
    auto cp = OpenCheckpoint(note, origin_, signer_->public_key());
    if (!cp.ok())
      return DataLoss("audit verify: checkpoint at tree size " + std::to_string(size) +
                      " does not verify: " + cp.status().message());
    if (cp->size != size)
      return DataLoss("audit verify: checkpoint stored for tree size " + std::to_string(size) +
                      " is signed for size " + std::to_string(cp->size));
    opened.emplace_back(size, std::move(*cp));
  }
  size_t next_checkpoint = 0;

  Frontier frontier;
  std::string prev_hash(crypto::kSha256Bytes, '\0');
  uint64_t expected = 0;
  Status problem = Status::Ok();
  std::vector<Subtree> completed;
  v1::AuditEntry entry;
  auto check = [&](std::string_view key, std::string_view bytes) -> Status {
    if (key.size() != 9) return DataLoss("audit verify: unexpected entry key after entry " + std::to_string(expected));
    uint64_t index = FromBigEndian64(key.substr(1));
    if (index != expected) return EntryProblem(expected, "missing");
    if (!entry.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
      return EntryProblem(index, "does not parse as an AuditEntry");
    if (entry.index() != index)
      return EntryProblem(index, "index field says " + std::to_string(entry.index()) + " (entries moved or swapped)");
    if (entry.prev_entry_hash() != prev_hash)
      return EntryProblem(index, "prev_entry_hash does not match the SHA-256 of entry " +
                                     (index == 0 ? std::string("-1 (zero hash expected)") : std::to_string(index - 1)));
    completed.clear();
    GL_RETURN_IF_ERROR(frontier.Append(LeafHash(bytes), &completed));
    for (const Subtree& t : completed) {
      if (t.id.level < internal::kLowestStoredLevel) continue;  // hashed from entries, never stored
      GL_ASSIGN_OR_RETURN(std::string stored, SubtreeHash(static_cast<int>(t.id.level), t.id.index));
      if (stored != Raw(t.hash)) {
        uint64_t first = t.id.index << t.id.level;
        return DataLoss("audit verify: stored subtree over entries " + std::to_string(first) + " to " +
                        std::to_string(first + (uint64_t{1} << t.id.level) - 1) +
                        " differs from the hash recomputed from them");
      }
    }
    prev_hash = Raw(crypto::Sha256(bytes));
    ++expected;
    while (next_checkpoint < opened.size() && opened[next_checkpoint].first <= expected) {
      const auto& [size, cp] = opened[next_checkpoint];
      if (size == expected && Raw(frontier.Root()) != cp.root_hash)
        return DataLoss("audit verify: signed checkpoint at tree size " + std::to_string(size) +
                        " does not match the entries 0 to " + std::to_string(size - 1));
      ++next_checkpoint;
      ++report.checkpoints;
    }
    if (progress && expected % kProgressEvery == 0) progress(expected, n);
    return Status::Ok();
  };
  GL_RETURN_IF_ERROR(kv_->Scan(kLedgerNs, "e", [&](std::string_view key, std::string_view value) {
    if (expected >= n) return false;
    problem = check(key, value);
    return problem.ok();
  }));
  GL_RETURN_IF_ERROR(problem);
  if (expected < n) return EntryProblem(expected, "missing (the tree head counts " + std::to_string(n) + " entries)");
  if (n > 0 && prev_hash != head_last_hash)
    return DataLoss("audit verify: the tree head does not name entry " + std::to_string(n - 1) + " as the last entry");
  if (progress) progress(n, n);
  report.entries = n;
  return report;
}

}  // namespace geoledger::audit
