// `geoledger audit verify`: offline verification of an audit export file
// (compliance-docs/audit-log-format.md) against the log's public key,
// optionally also against a checkpoint obtained independently.
#pragma once

#include <cstdio>
#include <string>

namespace geoledger::cli {

struct AuditVerifyOptions {
  std::string export_path;
  std::string public_key_path;  // C2SP verifier key text ("origin+hash+key"), as /v1/audit/public-key serves
  std::string checkpoint_path;  // optional signed note; must be for the export's end and root
};

// Returns the process exit code: 0 only when the chain, every leaf, the tree
// and the checkpoint signature check out; 1 with the first bad index and the
// reason on `err` otherwise; 2 for unusable arguments (unreadable files, bad key).
// Progress goes to `err` on long files.
int RunAuditVerify(const AuditVerifyOptions& options, std::FILE* out, std::FILE* err);

struct VerifyInclusionOptions {
  std::string proof_path;       // the JSON answer of GET /v1/audit/proof/inclusion
  std::string entry_path;       // a JSON answer of GET /v1/audit/entries holding the proof's index
                                // (or one element of its "entries")
  std::string checkpoint_path;  // signed note of the proof's tree size
  std::string public_key_path;  // C2SP verifier key text
};

// `geoledger audit verify-inclusion PROOF --entry FILE --checkpoint FILE
// --public-key FILE`: hashes the entry's bytes (the base64 "entry" field; the
// other fields of the entries answer are not trusted) into its leaf hash,
// which must equal the proof's, and checks the proof from it to the signed
// root. The proof's tree_size must equal the checkpoint's, and the entry must
// parse with its own index field equal to the proof's index. On success
// prints the entry's fields decoded from the hashed bytes. Exit codes as above.
int RunVerifyInclusion(const VerifyInclusionOptions& options, std::FILE* out, std::FILE* err);

// `geoledger audit verify-consistency PROOF --old-checkpoint FILE --checkpoint
// FILE --public-key FILE`: PROOF is the JSON answer of
// GET /v1/audit/proof/consistency between the two checkpoints' sizes.
int RunVerifyConsistency(const std::string& proof_path, const std::string& old_checkpoint_path,
                         const std::string& checkpoint_path, const std::string& public_key_path,
                         std::FILE* out, std::FILE* err);

}  // namespace geoledger::cli
