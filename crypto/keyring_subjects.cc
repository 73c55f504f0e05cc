// Keyring: subject data keys, data keys for other services, records and
// crypto-shredding.
#include <sodium.h>

#include "crypto/hash.h"
#include "crypto/internal/keyring_format.h"
#include "crypto/keyring.h"
#include "geoledger/v1/keys.pb.h"

namespace geoledger::crypto {

using namespace keyring_internal;  // NOLINT: the format helpers of this component

namespace {

Status Misbound(std::string_view what) {
  return PermissionDenied(std::string("keyring: ") + std::string(what) +
                          " does not open for this tenant, subject and region (wrong binding or altered)");
}

}  // namespace

StatusOr<Keyring::SubjectKey> Keyring::LoadSubjectKey(std::string_view tenant, std::string_view pseudonym) const {
  // A rewrap may move the record to a newer version and retire the old one
  // between our two reads; the second attempt sees the new record.
  for (int attempt = 0;; ++attempt) {
    GL_ASSIGN_OR_RETURN(auto stored, kv_->Get(kNs, keyring_internal::SubjectKey(tenant, pseudonym)));
    if (!stored) return NotFound("keyring: the subject has no data key");
    v1::SubjectKeyRecord record;
    if (!record.ParseFromString(*stored) || record.key_id().size() != kKeyIdBytes)
      return DataLoss("keyring: a subject key record of tenant " + std::string(tenant) + " is corrupt");
    auto kek = Kek(tenant, record.kek_version());
    if (!kek.ok()) {
      if (kek.status().code() == StatusCode::kFailedPrecondition && attempt == 0) continue;
      return kek.status();
    }
    auto plain = (*kek)->Decrypt(record.wrapped(),
                                 DekAd(options_.region, tenant, pseudonym, record.kek_version(), record.key_id()));
    if (!plain.ok())
      return DataLoss("keyring: a subject key of tenant " + std::string(tenant) +
                      " does not unwrap (stored record altered or moved)");
    return SubjectKey{record.key_id(), record.kek_version(), TakeSecret(std::move(*plain)),
                      record.creation_unaudited()};
  }
}

StatusOr<Keyring::SubjectKey> Keyring::EnsureSubjectKeyLocked(std::string_view tenant, std::string_view pseudonym) {
  auto existing = LoadSubjectKey(tenant, pseudonym);
  if (existing.ok() || existing.status().code() != StatusCode::kNotFound) return existing;
  GL_ASSIGN_OR_RETURN(uint32_t version, EnsureTenantLocked(tenant));
  GL_ASSIGN_OR_RETURN(auto kek, Kek(tenant, version));
  SubjectKey created{RandomBytes(kKeyIdBytes), version, SecretBytes::Random(kDataKeyBytes), true};
  GL_ASSIGN_OR_RETURN(std::string wrapped,
                      kek->Encrypt(View(created.key), DekAd(options_.region, tenant, pseudonym, version, created.key_id)));
  v1::SubjectKeyRecord record;
  record.set_key_id(created.key_id);
  record.set_kek_version(version);
  record.set_wrapped(std::move(wrapped));
  record.set_created_unix_ms(clock_->UnixMillis());
  record.set_creation_unaudited(true);
  KvBatch batch;
  batch.Put(kNs, keyring_internal::SubjectKey(tenant, pseudonym), record.SerializeAsString());
  // Not synced here: this runs where a request is handled (sealing an audit
  // event, issuing a data key), for a small one on an HTTP thread, where a
  // sync per new subject held up every connection of that thread, gateway
  // checks among them, for as long as the request's new subjects took to
  // sync one by one. Nothing under the new key is acknowledged before a
  // later sync of the same store: the audit entry that seals under it, or
  // announces the data key, is answered only once durable. The store's log
  // keeps its writes in order and recovers a prefix of them, so a durable
  // entry sealed under the key has the key (and its tenant's KEK, written
  // before it) durable too; one lost in a crash took no acknowledged use
  // with it.
  GL_RETURN_IF_ERROR(kv_->Write(batch, /*sync=*/false));
  return created;
}

Status Keyring::ConfirmCreationAudited(std::string_view tenant, std::string_view pseudonym,
                                       std::string_view key_id) {
  GL_RETURN_IF_ERROR(CheckTenant(tenant));
  GL_RETURN_IF_ERROR(CheckPseudonym(pseudonym));
  // Called from the ledger's syncer thread: never wait behind a synced key
  // write, a rewrap or a shred's compaction.
  std::unique_lock<std::mutex> lock(write_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return Unavailable("keyring: busy with another key write");
  const std::string key = keyring_internal::SubjectKey(tenant, pseudonym);
  GL_ASSIGN_OR_RETURN(auto stored, kv_->Get(kNs, key));
  if (!stored) return Status::Ok();  // shredded meanwhile
  v1::SubjectKeyRecord record;
  if (!record.ParseFromString(*stored) || record.key_id().size() != kKeyIdBytes)
    return DataLoss("keyring: a subject key record of tenant " + std::string(tenant) + " is corrupt");
  if (!record.creation_unaudited() || !ConstantTimeEquals(record.key_id(), key_id)) return Status::Ok();
  record.set_creation_unaudited(false);
  KvBatch batch;
  batch.Put(kNs, key, record.SerializeAsString());
  return kv_->Write(batch, /*sync=*/false);
}

StatusOr<Keyring::SubjectKey> Keyring::EnsureSubjectKeyFast(std::string_view tenant, std::string_view pseudonym) {
  // The common case, an existing key, needs no lock: a first use elsewhere
  // (a synced write) must not stall it.
  auto existing = LoadSubjectKey(tenant, pseudonym);
  if (existing.ok() || existing.status().code() != StatusCode::kNotFound) return existing;
  std::lock_guard<std::mutex> lock(write_mu_);
  return EnsureSubjectKeyLocked(tenant, pseudonym);
}

StatusOr<std::pair<std::string, bool>> Keyring::EnsureSubjectKey(std::string_view tenant,
                                                                 std::string_view pseudonym) {
  GL_RETURN_IF_ERROR(CheckTenant(tenant));
  GL_RETURN_IF_ERROR(CheckPseudonym(pseudonym));
  std::lock_guard<std::mutex> lock(write_mu_);
  GL_ASSIGN_OR_RETURN(SubjectKey key, EnsureSubjectKeyLocked(tenant, pseudonym));
  return std::make_pair(key.key_id, key.creation_unaudited);
}

StatusOr<std::string> Keyring::Shred(std::string_view tenant, std::string_view pseudonym,
                                     const CommitChange& commit) {
  GL_RETURN_IF_ERROR(CheckTenant(tenant));
  GL_RETURN_IF_ERROR(CheckPseudonym(pseudonym));
  std::unique_lock<std::mutex> lock(write_mu_);
  const std::string key = keyring_internal::SubjectKey(tenant, pseudonym);
  GL_ASSIGN_OR_RETURN(auto stored, kv_->Get(kNs, key));
  if (!stored) return NotFound("keyring: the subject has no data key (never created or already erased)");
  v1::SubjectKeyRecord record;
  if (!record.ParseFromString(*stored) || record.key_id().size() != kKeyIdBytes)
    return DataLoss("keyring: a subject key record of tenant " + std::string(tenant) + " is corrupt");
  v1::SubjectKeyTombstone tombstone;
  tombstone.set_key_id(record.key_id());
  tombstone.set_erased_unix_ms(clock_->UnixMillis());
  KvBatch batch;
  batch.Delete(kNs, key);
  const std::string tombstone_key = TombstoneKey(tenant, pseudonym, record.key_id());
  batch.Put(kNs, tombstone_key, tombstone.SerializeAsString());
  // Named by the tombstone, which names the key id: a later shred of the
  // same subject's next key owes a purge of its own.
  batch.Put(kNs, PurgeKey(tombstone_key), "");
  KeyChange change;
  change.key_id = record.key_id();
  GL_RETURN_IF_ERROR(commit(change, std::move(batch)));
  // The wrapped key must also leave the database files, not just the index.
  // The purge needs no keyring state, and may wait for a storage snapshot
  // (a policy bundle export): new subject keys need not wait with it.
  lock.unlock();
  GL_RETURN_IF_ERROR(PurgeAndDrop({PurgeKey(tombstone_key)}));
  return record.key_id();
}

Status Keyring::NotThisSubjectsKey(std::string_view tenant, std::string_view pseudonym,
                                   std::string_view key_id) const {
  GL_ASSIGN_OR_RETURN(auto tomb, kv_->Get(kNs, TombstoneKey(tenant, pseudonym, key_id)));
  if (tomb) {
    v1::SubjectKeyTombstone t;
    int64_t at = t.ParseFromString(*tomb) ? t.erased_unix_ms() : 0;
    return Erased("keyring: the subject's data key was erased (crypto-shredded) at unix ms " + std::to_string(at) +
                  "; data under it is permanently unreadable");
  }
  return Misbound("ciphertext");
}

StatusOr<IssuedDataKey> Keyring::IssueDataKey(std::string_view tenant, std::string_view pseudonym) {
  GL_RETURN_IF_ERROR(CheckTenant(tenant));
  GL_RETURN_IF_ERROR(CheckPseudonym(pseudonym));
  GL_ASSIGN_OR_RETURN(SubjectKey subject, EnsureSubjectKeyFast(tenant, pseudonym));
  const std::string& subject_key_id = subject.key_id;
  GL_ASSIGN_OR_RETURN(Aead dek, Aead::FromKey(std::move(subject.key)));
  IssuedDataKey out;
  out.subject_key_id = subject_key_id;
  out.key_id = RandomBytes(kKeyIdBytes);
  out.plaintext = SecretBytes::Random(kDataKeyBytes);
  out.subject_key_created = subject.creation_unaudited;
  GL_ASSIGN_OR_RETURN(std::string sealed,
                      dek.Encrypt(View(out.plaintext), DataKeyAd(options_.region, tenant, pseudonym,
                                                                 subject_key_id, out.key_id)));
  out.wrapped = std::string(kDataKeyTag, 2) + subject_key_id + out.key_id + sealed;
  return out;
}

StatusOr<UnwrappedDataKey> Keyring::UnwrapDataKey(std::string_view tenant, std::string_view pseudonym,
                                                  std::string_view wrapped) const {
  GL_RETURN_IF_ERROR(CheckTenant(tenant));
  GL_RETURN_IF_ERROR(CheckPseudonym(pseudonym));
  const size_t header = 2 + 2 * kKeyIdBytes;
  if (wrapped.size() != header + kDataKeyBytes + kAeadOverheadBytes || wrapped.substr(0, 2) != std::string_view(kDataKeyTag, 2))
    return InvalidArgument("keyring: wrapped_key is not a geoledger wrapped data key");
  std::string_view subject_key_id = wrapped.substr(2, kKeyIdBytes);
  std::string_view data_key_id = wrapped.substr(2 + kKeyIdBytes, kKeyIdBytes);
  auto subject = LoadSubjectKey(tenant, pseudonym);
  if (!subject.ok() && subject.status().code() != StatusCode::kNotFound) return subject.status();
  if (!subject.ok() || !ConstantTimeEquals(subject->key_id, subject_key_id))
    return NotThisSubjectsKey(tenant, pseudonym, subject_key_id);
  GL_ASSIGN_OR_RETURN(Aead dek, Aead::FromKey(std::move(subject->key)));
  auto plain = dek.Decrypt(wrapped.substr(header),
                           DataKeyAd(options_.region, tenant, pseudonym, subject_key_id, data_key_id));
  if (!plain.ok()) return Misbound("wrapped_key");
  return UnwrappedDataKey{std::string(data_key_id), TakeSecret(std::move(*plain))};
}

StatusOr<SealedRecord> Keyring::Seal(std::string_view tenant, std::string_view pseudonym,
                                     std::string_view record_id, std::string_view plaintext) {
  GL_RETURN_IF_ERROR(CheckTenant(tenant));
  GL_RETURN_IF_ERROR(CheckPseudonym(pseudonym));
  if (record_id.empty() || record_id.size() > kMaxRecordIdBytes)
    return InvalidArgument("keyring: record id must be 1-256 bytes");
  GL_ASSIGN_OR_RETURN(SubjectKey key, EnsureSubjectKeyFast(tenant, pseudonym));
  GL_ASSIGN_OR_RETURN(Aead dek, Aead::FromKey(std::move(key.key)));
  GL_ASSIGN_OR_RETURN(std::string sealed,
                      dek.Encrypt(plaintext, RecordAd(options_.region, tenant, pseudonym, key.key_id,
                                                      key.kek_version, record_id)));
  SealedRecord out;
  out.ciphertext = std::string(kRecordTag, 2) + Be32(key.kek_version) + key.key_id + sealed;
  out.key_id = key.key_id;
  out.subject_key_created = key.creation_unaudited;
  return out;
}

StatusOr<std::string> Keyring::Open(std::string_view tenant, std::string_view pseudonym,
                                    std::string_view record_id, std::string_view ciphertext) const {
  GL_RETURN_IF_ERROR(CheckTenant(tenant));
  GL_RETURN_IF_ERROR(CheckPseudonym(pseudonym));
  const size_t header = 2 + 4 + kKeyIdBytes;
  if (ciphertext.size() < header + kAeadOverheadBytes || ciphertext.substr(0, 2) != std::string_view(kRecordTag, 2))
    return InvalidArgument("keyring: not a geoledger record ciphertext");
  uint32_t version = FromBe32(ciphertext.substr(2, 4));
  std::string_view key_id = ciphertext.substr(6, kKeyIdBytes);
  auto subject = LoadSubjectKey(tenant, pseudonym);
  if (!subject.ok() && subject.status().code() != StatusCode::kNotFound) return subject.status();
  if (!subject.ok() || !ConstantTimeEquals(subject->key_id, key_id))
    return NotThisSubjectsKey(tenant, pseudonym, key_id);
  GL_ASSIGN_OR_RETURN(Aead dek, Aead::FromKey(std::move(subject->key)));
  auto plain = dek.Decrypt(ciphertext.substr(header),
                           RecordAd(options_.region, tenant, pseudonym, key_id, version, record_id));
  if (!plain.ok()) return Misbound("record ciphertext");
  return std::move(*plain);
}

}  // namespace geoledger::crypto
