// A self-describing, offline-verifiable export of audit log entries
// [start, end). Layout (integers big-endian; compliance-docs/audit-log-format.md
// is the normative description):
//
//   "geoledger-audit-export v1\n"
//   "origin <origin>\n"
//   "start <start>\n"                       decimal, canonical
//   "end <end>\n"                           decimal, canonical, end >= start
//   "prefix <base64 hash>\n"  x popcount(start)
//                                           hashes of Frontier::BorderNodes(start),
//                                           largest first
//   "prev <base64 32-byte hash>\n"          SHA-256(bytes of entry start-1), or
//                                           32 zero bytes when start == 0
//   "\n"
//   (end - start) x { uint32 length, AuditEntry bytes }
//   uint32 length, signed checkpoint note (C2SP) of tree size `end`
//
// With the prefix border the verifier recomputes the root of [0, end) without
// the first `start` entries and compares it with the signed checkpoint.
//
// Thread-safety: free functions without state.
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

#include "audit/ledger.h"
#include "audit/merkle.h"
#include "common/status.h"

namespace geoledger::audit {

inline constexpr std::string_view kExportMagic = "geoledger-audit-export v1\n";
// Upper bound on one record (an entry); a larger length field is rejected
// before anything is allocated.
inline constexpr uint32_t kMaxExportRecordBytes = 1u << 20;
// Upper bound on the checkpoint note (as OpenNote).
inline constexpr uint32_t kMaxExportCheckpointBytes = 64u * 1024;

// Serializes an export. `prefix_border` holds the hashes of
// Frontier::BorderNodes(start) in that order; `prev_hash` is the 32-byte
// SHA-256 of entry start-1's bytes (32 zero bytes for start == 0); `entries`
// must be exactly the entries start, start+1, ... in order; `checkpoint_note`
// is a signed checkpoint whose size is start + entries.size() (not checked
// here: BuildExport holds no key). kInvalidArgument for anything inconsistent.
StatusOr<std::string> BuildExport(std::string_view origin, uint64_t start,
                                  const std::vector<Hash>& prefix_border, std::string_view prev_hash,
                                  const std::vector<StoredEntry>& entries,
                                  std::string_view checkpoint_note);

struct VerifyResult {
  uint64_t entries_checked = 0;  // end - start
  uint64_t tree_size = 0;        // end
  std::string root;              // 32 raw bytes: the verified root of [0, end)
};

// Streams an export from `in` and verifies it against the log `origin` and its
// raw 32-byte Ed25519 `public_key` (see ParseVerifierKey). Memory is bounded by
// one record. Checks, in order, and fails at the first problem with a message
// naming where and why ("entry 17: chain broken: ..."):
//   header syntax (and header origin == `origin`); per record: length bound,
//   completeness, protobuf parse, index field == position, prev_entry_hash
//   chain; the checkpoint record; no trailing bytes; the checkpoint signature;
//   checkpoint size == end; recomputed root == checkpoint root.
// Codes: kInvalidArgument for malformed/truncated input, kDataLoss for
// integrity failures (index, chain, size, root), kPermissionDenied when the
// checkpoint signature does not verify. `progress` (optional) is called with
// (entries done, total entries) every 1024 entries and once at the end of the
// records. Never throws.
StatusOr<VerifyResult> VerifyExport(std::istream& in, std::string_view public_key,
                                    std::string_view origin,
                                    const std::function<void(uint64_t done, uint64_t total)>& progress = {});

}  // namespace geoledger::audit
