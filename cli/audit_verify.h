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

// `geoledger audit verify-inclusion PROOF --checkpoint FILE --public-key FILE`:
// PROOF is the JSON answer of GET /v1/audit/proof/inclusion; its tree_size
// must equal the checkpoint's. Exit codes as above.
int RunVerifyInclusion(const std::string& proof_path, const std::string& checkpoint_path,
                       const std::string& public_key_path, std::FILE* out, std::FILE* err);

// `geoledger audit verify-consistency PROOF --old-checkpoint FILE --checkpoint
// FILE --public-key FILE`: PROOF is the JSON answer of
// GET /v1/audit/proof/consistency between the two checkpoints' sizes.
int RunVerifyConsistency(const std::string& proof_path, const std::string& old_checkpoint_path,
                         const std::string& checkpoint_path, const std::string& public_key_path,
                         std::FILE* out, std::FILE* err);

}  // namespace geoledger::cli
