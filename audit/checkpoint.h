// Signed checkpoints of the audit log in the C2SP tlog-checkpoint format,
// carried in a C2SP signed note with an Ed25519 signature:
//
//   geoledger/eu-west-1\n            origin
//   1234\n                           tree size, decimal
//   <base64 root hash>\n             RFC 9162 root of the first `size` entries
//   \n
//   — geoledger/eu-west-1 <base64(key hash[0:4] || signature)>\n
//
// The signature covers the note body (the three lines above the blank line,
// newlines included). key hash = SHA-256(origin || "\n" || 0x01 || public key).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/signer.h"

namespace geoledger::audit {

struct Checkpoint {
  std::string origin;  // "geoledger/<region>"
  uint64_t size = 0;
  std::string root_hash;  // 32 raw bytes

  // The note body that is signed.
  std::string Body() const;
};

// A C2SP signed note: `text` (non-empty, ending in a newline), a blank line,
// and one signature line "— <name> <base64(key hash[0:4] || signature)>".
std::string SignNote(std::string_view text, std::string_view name, const crypto::Ed25519Signer& signer);

// Returns the text of `note` when it carries a valid signature by
// (`name`, `public_key`). Signature lines of other keys are ignored (the note
// may be cosigned). kInvalidArgument for a malformed note, kPermissionDenied
// when no valid signature by this key is present.
StatusOr<std::string> OpenNote(std::string_view note, std::string_view name, std::string_view public_key);

// Signs `cp` with `signer`, whose verifier key name is cp.origin.
std::string SignCheckpoint(const Checkpoint& cp, const crypto::Ed25519Signer& signer);

// OpenNote with name `origin`, then parses the checkpoint body; extra body
// lines after the root hash (C2SP extension lines) are allowed and ignored.
StatusOr<Checkpoint> OpenCheckpoint(std::string_view note, std::string_view origin,
                                    std::string_view public_key);

// Parses a C2SP verifier key ("name+hash+base64(0x01||key)") into its name and
// raw Ed25519 public key; checks the embedded key hash.
struct VerifierKey {
  std::string name;
  std::string public_key;
};
StatusOr<VerifierKey> ParseVerifierKey(std::string_view text);

}  // namespace geoledger::audit
