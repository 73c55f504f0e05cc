// The key hierarchy (compliance-docs/key-management.md):
//
//   region root key (KeySource)
//     └─ root wrapping key = HMAC-SHA256(root, "geoledger/kek-wrap/v1")
//          └─ tenant key-encryption key (KEK), versioned 1, 2, ... (random)
//               └─ subject data key (DEK), one per subject (random)
//                    ├─ record ciphertexts (Seal / Open)
//                    └─ data keys issued to other services (IssueDataKey)
//
// Every key is stored only wrapped (XChaCha20-Poly1305, crypto/aead.h) by the
// key above it, with associated data that binds it to its region, tenant,
// subject (pseudonym), key version and key id; record ciphertexts also bind
// their record id. A ciphertext moved to another tenant, subject, record or
// region, or with its version changed, fails to decrypt.
//
// Subjects are named by their pseudonym (32 bytes, crypto/pseudonym.h), never
// by their id, so nothing stored here is personal data.
//
// Crypto-shredding: Shred deletes the subject's wrapped data key, leaves a
// tombstone (key id and time, no key material) and compacts the keys
// namespace so the old wrapped key leaves the live database files. Every
// later attempt to use that key fails with kErased. A shred (or retirement)
// stopped between its write and its compaction is compacted by the next Open.
//
// Rotation: Rotate adds a KEK version and starts a rewrap of the tenant's
// subject keys to it. RewrapStep moves one batch, writing the rewrapped keys
// and the advanced cursor in one synced batch, so a crash resumes where it
// stopped. RetireBelow deletes KEK versions below a minimum once no subject
// key needs them.
//
// Thread-safe. Writes (create, shred, rotate, retire, rewrap) are serialised
// by one mutex; reads take no lock beyond the KEK cache's.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/kv_store.h"
#include "common/status.h"
#include "crypto/aead.h"
#include "crypto/secret.h"

namespace geoledger::crypto {

inline constexpr size_t kDataKeyBytes = 32;
inline constexpr size_t kKeyIdBytes = 16;
inline constexpr size_t kPseudonymBytes = 32;

struct KeyringOptions {
  std::string region;          // bound into every key and ciphertext
  size_t rewrap_batch = 256;   // subject keys per RewrapStep write
  size_t kek_cache = 4096;     // unwrapped tenant KEK versions kept in memory
};

struct TenantKeyInfo {
  uint32_t current_version = 0;
  uint32_t min_decryption_version = 0;
  std::vector<uint32_t> versions;      // KEK versions present (not retired)
  bool rewrap_active = false;
  uint32_t rewrap_target = 0;
  uint64_t rewrapped = 0;              // by the active (or last) rewrap
  uint64_t subject_keys = 0;           // live subject keys
  uint64_t pending = 0;                // subject keys below current_version
};

struct RewrapProgress {
  uint32_t target_version = 0;
  uint64_t rewrapped_now = 0;  // by this step
  uint64_t rewrapped = 0;      // by the whole rewrap so far
  bool done = false;           // nothing left below target_version
  bool finished_now = false;   // this step finished the rewrap (through `finish`)
};

// subject_key_created (here and in SealedRecord): the subject's data key was
// made by this call, or by an earlier one whose creation was never confirmed
// audited. The caller then records key.created and, once that entry is
// durable, calls Keyring::ConfirmCreationAudited; until then every use says
// so again (at-least-once: a key's creation is never left unaudited).
struct IssuedDataKey {
  std::string key_id;          // kKeyIdBytes raw
  SecretBytes plaintext;       // kDataKeyBytes
  std::string wrapped;         // opaque; Unwrap gives the plaintext back
  std::string subject_key_id;  // the subject data key's id (raw)
  bool subject_key_created = false;
};

struct UnwrappedDataKey {
  std::string key_id;
  SecretBytes plaintext;
};

struct SealedRecord {
  std::string ciphertext;      // opaque; carries key id and KEK version
  std::string key_id;          // the subject data key's id (raw)
  bool subject_key_created = false;
};

// A change to the keys (Keyring::Shred, Rotate, RetireBelow and the last
// step of a rewrap), as its audit entry records it.
struct KeyChange {
  std::string key_id;      // Shred: the shredded subject key's id (raw)
  uint32_t version = 0;    // Rotate: the new KEK version; a rewrap: its target
  uint64_t rewrapped = 0;  // a rewrap: the subject keys it moved
};

// Commits a key change together with the audit entry that records it: the
// caller writes `batch` (the change's puts and deletes, namespace "keys") in
// the same atomic, synchronous write as the entry (audit::Ledger::Append's
// attached writes) and returns OK once both are durable. So no key change is
// ever stored without its entry: on an error the keyring treats the change
// as not made; either nothing was written, or (when the write's outcome is
// unknown) the change and its entry were stored together or not at all.
// Called with the keyring's write lock held; it may wait for a group commit,
// but must not call back into the keyring's writes.
using CommitChange = std::function<Status(const KeyChange& change, KvBatch batch)>;

class Keyring {
 public:
  // `kv` (namespace "keys") and `clock` must outlive the keyring. The root
  // key is used only to derive the root wrapping key here.
  static StatusOr<std::unique_ptr<Keyring>> Open(KvStore* kv, const SecretBytes& root_key,
                                                 const Clock* clock, KeyringOptions options);

  // ---- tenant KEKs ----
  // kNotFound when the tenant has no keys yet.
  StatusOr<TenantKeyInfo> Info(std::string_view tenant) const;
  // Adds KEK version current+1 (version 1 for a new tenant) and, when subject
  // keys exist, starts a rewrap to it (replacing an unfinished one);
  // committed through `commit` (KeyChange::version).
  StatusOr<uint32_t> Rotate(std::string_view tenant, const CommitChange& commit);
  // Retires (deletes) every KEK version below `min_version`, committed
  // through `commit`. Returns whether anything changed: false, without
  // calling `commit`, when they are retired already.
  // kFailedPrecondition while a subject key is still wrapped under one of
  // them (finish the rewrap first) or when min_version > current_version.
  StatusOr<bool> RetireBelow(std::string_view tenant, uint32_t min_version, const CommitChange& commit);
  // Moves up to rewrap_batch subject keys of `tenant` to the rewrap target.
  // The step that finishes the rewrap is committed through `finish`
  // (KeyChange::version and ::rewrapped), the others are plain synchronous
  // writes. done=true (and nothing written) when no rewrap is pending;
  // finished_now=true when this step finished it.
  StatusOr<RewrapProgress> RewrapStep(std::string_view tenant, const CommitChange& finish);
  // Tenants with an unfinished rewrap (after a restart too).
  StatusOr<std::vector<std::string>> TenantsWithPendingRewrap() const;

  // ---- subject data keys ----
  // Creates the subject's data key if it has none. Returns its key id and
  // whether its creation is still to be audited (see IssuedDataKey). A key
  // made here (as by IssueDataKey and Seal) is written without a sync: it is
  // durable once a later synced write or Sync of the same KvStore returns,
  // which callers wait for before they acknowledge any use of it.
  StatusOr<std::pair<std::string, bool>> EnsureSubjectKey(std::string_view tenant,
                                                          std::string_view pseudonym);
  // Records that the creation of the subject's data key `key_id` (raw) is
  // audited. Nothing changes when the subject's key is another one (shredded
  // and made anew meanwhile) or already confirmed. Not synced: lost on a
  // crash, the creation is announced once more. Never waits: kUnavailable
  // (and the creation is announced again by the key's next use) while
  // another key write holds the keyring.
  Status ConfirmCreationAudited(std::string_view tenant, std::string_view pseudonym, std::string_view key_id);
  // Crypto-shreds the subject's data key, committed through `commit`
  // (KeyChange::key_id). kNotFound when it has none (never had one, or
  // already shredded). Returns the shredded key's id.
  StatusOr<std::string> Shred(std::string_view tenant, std::string_view pseudonym, const CommitChange& commit);

  // ---- data keys for other services ----
  // A fresh random data key for the subject, wrapped under the subject's
  // data key (created if needed). Shredding the subject makes `wrapped`
  // permanently unusable.
  StatusOr<IssuedDataKey> IssueDataKey(std::string_view tenant, std::string_view pseudonym);
  // kErased when the subject key it was wrapped under was shredded;
  // kInvalidArgument for malformed input; kPermissionDenied when it was
  // wrapped for another tenant, subject or region (or altered).
  StatusOr<UnwrappedDataKey> UnwrapDataKey(std::string_view tenant, std::string_view pseudonym,
                                           std::string_view wrapped) const;

  // ---- records ----
  // Encrypts `plaintext` under the subject's data key (created if needed),
  // bound to `record_id`.
  StatusOr<SealedRecord> Seal(std::string_view tenant, std::string_view pseudonym,
                              std::string_view record_id, std::string_view plaintext);
  // Errors as UnwrapDataKey.
  StatusOr<std::string> Open(std::string_view tenant, std::string_view pseudonym,
                             std::string_view record_id, std::string_view ciphertext) const;

 private:
  struct SubjectKey {
    std::string key_id;
    uint32_t kek_version = 0;
    SecretBytes key;
    bool creation_unaudited = false;  // made, its key.created entry not yet confirmed durable
  };
  Keyring(KvStore* kv, Aead root_wrap, const Clock* clock, KeyringOptions options);

  // Unwrapped KEK `version` of `tenant` (cached). kErased-free: a missing
  // version is kFailedPrecondition ("retired").
  StatusOr<std::shared_ptr<const Aead>> Kek(std::string_view tenant, uint32_t version) const;
  // The subject's live data key; kNotFound when it has none.
  StatusOr<SubjectKey> LoadSubjectKey(std::string_view tenant, std::string_view pseudonym) const;
  // Purges the keys namespace when a stored shred or retirement did not
  // finish its purge (each leaves a purge key, PurgeKey, until it has); at
  // Open, before any snapshot can exist.
  Status FinishPurges();
  // Purges the keys namespace, then drops `purge_keys` (the PurgeKeys the
  // deletions wrote), which are owed no longer.
  Status PurgeAndDrop(const std::vector<std::string>& purge_keys);
  // Requires write_mu_. Creates the tenant's KEK v1 when missing (not
  // synced: see EnsureSubjectKey).
  StatusOr<uint32_t> EnsureTenantLocked(std::string_view tenant);
  // The writes that create a tenant's KEK v1 and its state.
  Status NewTenantWrites(std::string_view tenant, KvBatch& batch) const;
  StatusOr<SubjectKey> EnsureSubjectKeyLocked(std::string_view tenant, std::string_view pseudonym);
  // Loads without the write lock; takes it only to create.
  StatusOr<SubjectKey> EnsureSubjectKeyFast(std::string_view tenant, std::string_view pseudonym);
  // Why a ciphertext under `key_id` cannot be opened for this subject:
  // kErased when that key was shredded, else kPermissionDenied.
  Status NotThisSubjectsKey(std::string_view tenant, std::string_view pseudonym,
                            std::string_view key_id) const;

  KvStore* kv_;
  const Aead root_wrap_;
  const Clock* clock_;
  const KeyringOptions options_;

  std::mutex write_mu_;  // serialises every write to the keys namespace
  mutable std::mutex cache_mu_;
  mutable std::map<std::pair<std::string, uint32_t>, std::shared_ptr<const Aead>>
      kek_cache_;  // guarded by cache_mu_
};

}  // namespace geoledger::crypto
