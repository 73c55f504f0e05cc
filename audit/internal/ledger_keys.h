// The ledger's key layout in its KvStore namespace. Private to audit/.
//   "e" be64(index)             entry bytes (deterministic AuditEntry)
//   "t" level be64(index)       hash of a complete subtree, level >= kLowestStoredLevel
//   "c" be64(size)              every signed checkpoint, by tree size
//   "head"                      be64(size) || SHA-256 of the last entry
//   "checkpoint"                the latest signed checkpoint
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace geoledger::audit::internal {

inline constexpr char kLedgerNs[] = "audit";
inline constexpr char kHeadKey[] = "head";
inline constexpr char kCheckpointKey[] = "checkpoint";
// Complete subtrees of 2^kLowestStoredLevel leaves and more are stored;
// smaller ones (at most 8 leaves) are hashed from their entries when a proof
// or root needs them.
inline constexpr uint32_t kLowestStoredLevel = 4;

inline std::string BigEndian64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}

inline uint64_t FromBigEndian64(std::string_view s) {
  uint64_t v = 0;
  for (char c : s.substr(0, 8)) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

inline std::string EntryKey(uint64_t index) { return "e" + BigEndian64(index); }
inline std::string SubtreeKey(int level, uint64_t index) {
  return "t" + std::string(1, static_cast<char>(level)) + BigEndian64(index);
}
inline std::string CheckpointKey(uint64_t size) { return "c" + BigEndian64(size); }

}  // namespace geoledger::audit::internal
