#include "crypto/keyring.h"

#include <sodium.h>

#include "crypto/hash.h"
#include "crypto/internal/keyring_format.h"
#include "geoledger/v1/keys.pb.h"

namespace geoledger::crypto {

using namespace keyring_internal;  // NOLINT: the format helpers of this component

Keyring::Keyring(KvStore* kv, Aead root_wrap, const Clock* clock, KeyringOptions options)
    : kv_(kv), root_wrap_(std::move(root_wrap)), clock_(clock), options_(std::move(options)) {}

StatusOr<std::unique_ptr<Keyring>> Keyring::Open(KvStore* kv, const SecretBytes& root_key,
                                                 const Clock* clock, KeyringOptions options) {
  if (root_key.size() != 32) return InvalidArgument("keyring: root key must be 32 bytes");
  if (options.region.empty() || options.region.size() > 64)
    return InvalidArgument("keyring: region must be 1-64 bytes");
  if (options.rewrap_batch == 0) return InvalidArgument("keyring: rewrap batch must be positive");
  auto derived = HmacSha256(root_key, kRootWrapLabel);
  SecretBytes wrap_key = SecretBytes::CopyFrom(AsView(derived));
  sodium_memzero(derived.data(), derived.size());
  GL_ASSIGN_OR_RETURN(Aead root_wrap, Aead::FromKey(std::move(wrap_key)));
  std::unique_ptr<Keyring> ring(new Keyring(kv, std::move(root_wrap), clock, std::move(options)));
  GL_RETURN_IF_ERROR(ring->FinishPurges());
  return ring;
}

Status Keyring::FinishPurges() {
  std::vector<std::string> owed;
  GL_RETURN_IF_ERROR(kv_->Scan(kNs, kPurgePrefix, [&](std::string_view key, std::string_view) {
    owed.emplace_back(key);
    return true;
  }));
  if (owed.empty()) return Status::Ok();
  // A shred or retirement was stored but stopped before its purge (a crash,
  // a failed compaction): the deleted key may still be in the files.
  return PurgeAndDrop(owed);
}

Status Keyring::PurgeAndDrop(const std::vector<std::string>& purge_keys) {
  GL_RETURN_IF_ERROR(kv_->PurgeDeleted(kNs));
  KvBatch done;
  for (const auto& key : purge_keys) done.Delete(kNs, key);
  return kv_->Write(done, /*sync=*/false);  // lost on a crash: purged once more
}

// ---- tenant KEKs -------------------------------------------------------------

StatusOr<std::shared_ptr<const Aead>> Keyring::Kek(std::string_view tenant, uint32_t version) const {
  auto cache_key = std::make_pair(std::string(tenant), version);
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = kek_cache_.find(cache_key);
    if (it != kek_cache_.end()) return it->second;
  }
  GL_ASSIGN_OR_RETURN(auto stored, kv_->Get(kNs, KekKey(tenant, version)));
  if (!stored)
    return FailedPrecondition("keyring: key version " + std::to_string(version) + " of tenant " +
                              std::string(tenant) + " is retired or does not exist");
  v1::WrappedTenantKey record;
  if (!record.ParseFromString(*stored) || record.version() != version)
    return DataLoss("keyring: stored key version " + std::to_string(version) + " of tenant " +
                    std::string(tenant) + " is corrupt");
  auto plain = root_wrap_.Decrypt(record.wrapped(), KekAd(options_.region, tenant, version));
  if (!plain.ok())
    return DataLoss("keyring: key version " + std::to_string(version) + " of tenant " + std::string(tenant) +
                    " does not unwrap under this region's root key");
  GL_ASSIGN_OR_RETURN(Aead aead, Aead::FromKey(TakeSecret(std::move(*plain))));
  auto shared = std::make_shared<const Aead>(std::move(aead));
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (kek_cache_.size() >= options_.kek_cache) kek_cache_.clear();
  kek_cache_.emplace(std::move(cache_key), shared);
  return shared;
}

StatusOr<TenantKeyInfo> Keyring::Info(std::string_view tenant) const {
  GL_RETURN_IF_ERROR(CheckTenant(tenant));
  GL_ASSIGN_OR_RETURN(auto state, LoadState(*kv_, tenant));
  if (!state) return NotFound("keyring: tenant " + std::string(tenant) + " has no keys yet");
  TenantKeyInfo info;
  info.current_version = state->current_version();
  info.min_decryption_version = state->min_decryption_version();
  for (uint32_t v = state->min_decryption_version(); v <= state->current_version(); ++v) info.versions.push_back(v);
  info.rewrap_active = state->rewrap().active();
  info.rewrap_target = state->rewrap().target_version();
  info.rewrapped = state->rewrap().rewrapped();
  v1::SubjectKeyRecord record;
  GL_RETURN_IF_ERROR(kv_->Scan(kNs, SubjectPrefix(tenant), [&](std::string_view, std::string_view value) {
    ++info.subject_keys;
    if (record.ParseFromArray(value.data(), static_cast<int>(value.size())) &&
        record.kek_version() < state->current_version())
      ++info.pending;
    return true;
  }));
  return info;
}

Status Keyring::NewTenantWrites(std::string_view tenant, KvBatch& batch) const {
  GL_RETURN_IF_ERROR(PutNewKek(batch, root_wrap_, options_.region, tenant, 1, clock_->UnixMillis()));
  v1::TenantKeyState fresh;
  fresh.set_current_version(1);
  fresh.set_min_decryption_version(1);
  fresh.set_created_unix_ms(clock_->UnixMillis());
  batch.Put(kNs, StateKey(tenant), fresh.SerializeAsString());
  return Status::Ok();
}

StatusOr<uint32_t> Keyring::EnsureTenantLocked(std::string_view tenant) {
  GL_ASSIGN_OR_RETURN(auto state, LoadState(*kv_, tenant));
  if (state) return state->current_version();
  KvBatch batch;
  GL_RETURN_IF_ERROR(NewTenantWrites(tenant, batch));
  // Not synced here, as a subject key's creation (EnsureSubjectKeyLocked).
  GL_RETURN_IF_ERROR(kv_->Write(batch, /*sync=*/false));
  return 1u;
}

StatusOr<uint32_t> Keyring::Rotate(std::string_view tenant, const CommitChange& commit) {
  GL_RETURN_IF_ERROR(CheckTenant(tenant));
  std::lock_guard<std::mutex> lock(write_mu_);
  GL_ASSIGN_OR_RETURN(auto state, LoadState(*kv_, tenant));
  if (!state) {
    KvBatch batch;
    GL_RETURN_IF_ERROR(NewTenantWrites(tenant, batch));
    KeyChange change;
    change.version = 1;
    GL_RETURN_IF_ERROR(commit(change, std::move(batch)));
    return 1u;
  }
  uint32_t next = state->current_version() + 1;
  KvBatch batch;
  GL_RETURN_IF_ERROR(PutNewKek(batch, root_wrap_, options_.region, tenant, next, clock_->UnixMillis()));
  state->set_current_version(next);
  state->set_rotated_unix_ms(clock_->UnixMillis());
  bool any_subject = false;
  GL_RETURN_IF_ERROR(kv_->Scan(kNs, SubjectPrefix(tenant), [&](std::string_view, std::string_view) {
    any_subject = true;
    return false;
  }));
  auto* rewrap = state->mutable_rewrap();
  rewrap->Clear();
  if (any_subject) {
    rewrap->set_active(true);
    rewrap->set_target_version(next);
    rewrap->set_started_unix_ms(clock_->UnixMillis());
  }
  batch.Put(kNs, StateKey(tenant), state->SerializeAsString());
  KeyChange change;
  change.version = next;
  GL_RETURN_IF_ERROR(commit(change, std::move(batch)));
  return next;
}

StatusOr<bool> Keyring::RetireBelow(std::string_view tenant, uint32_t min_version, const CommitChange& commit) {
  GL_RETURN_IF_ERROR(CheckTenant(tenant));
  std::unique_lock<std::mutex> lock(write_mu_);
  GL_ASSIGN_OR_RETURN(auto state, LoadState(*kv_, tenant));
  if (!state) return NotFound("keyring: tenant " + std::string(tenant) + " has no keys yet");
  if (min_version == 0 || min_version > state->current_version())
    return FailedPrecondition("keyring: min_decryption_version must be between 1 and the current version " +
                              std::to_string(state->current_version()));
  if (min_version <= state->min_decryption_version()) return false;  // already retired
  uint64_t still_needed = 0;
  v1::SubjectKeyRecord record;
  GL_RETURN_IF_ERROR(kv_->Scan(kNs, SubjectPrefix(tenant), [&](std::string_view, std::string_view value) {
    if (!record.ParseFromArray(value.data(), static_cast<int>(value.size())) || record.kek_version() < min_version)
      ++still_needed;
    return true;
  }));
  if (still_needed > 0)
    return FailedPrecondition("keyring: " + std::to_string(still_needed) + " subject keys of tenant " +
                              std::string(tenant) + " are still wrapped under a version below " +
                              std::to_string(min_version) + "; wait for the rewrap to finish");
  KvBatch batch;
  for (uint32_t v = state->min_decryption_version(); v < min_version; ++v) batch.Delete(kNs, KekKey(tenant, v));
  const std::string last_retired = KekKey(tenant, min_version - 1);
  batch.Put(kNs, PurgeKey(last_retired), "");
  state->set_min_decryption_version(min_version);
  batch.Put(kNs, StateKey(tenant), state->SerializeAsString());
  KeyChange change;
  change.version = min_version;
  GL_RETURN_IF_ERROR(commit(change, std::move(batch)));
  {
    std::lock_guard<std::mutex> cache_lock(cache_mu_);
    for (uint32_t v = 1; v < min_version; ++v) kek_cache_.erase({std::string(tenant), v});
  }
  // The purge needs no keyring state, and may wait for a storage snapshot
  // (a policy bundle export): new subject keys need not wait with it.
  lock.unlock();
  GL_RETURN_IF_ERROR(PurgeAndDrop({PurgeKey(last_retired)}));
  return true;
}

StatusOr<RewrapProgress> Keyring::RewrapStep(std::string_view tenant, const CommitChange& finish) {
  GL_RETURN_IF_ERROR(CheckTenant(tenant));
  std::lock_guard<std::mutex> lock(write_mu_);
  GL_ASSIGN_OR_RETURN(auto state, LoadState(*kv_, tenant));
  RewrapProgress progress;
  if (!state || !state->rewrap().active()) {
    progress.done = true;
    if (state) {
      progress.target_version = state->rewrap().target_version();
      progress.rewrapped = state->rewrap().rewrapped();
    }
    return progress;
  }
  const uint32_t target = state->rewrap().target_version();
  progress.target_version = target;
  GL_ASSIGN_OR_RETURN(auto new_kek, Kek(tenant, target));
  const std::string prefix = SubjectPrefix(tenant);
  // Resume just after the cursor (the last pseudonym handled).
  std::string start = prefix + state->rewrap().cursor();
  if (!state->rewrap().cursor().empty()) start.push_back('\0');
  KvBatch batch;
  size_t seen = 0;
  std::string last;
  bool more = false;
  Status problem = Status::Ok();
  GL_RETURN_IF_ERROR(kv_->ScanFrom(kNs, prefix, start, [&](std::string_view key, std::string_view value) {
    if (seen == options_.rewrap_batch) {
      more = true;
      return false;
    }
    ++seen;
    std::string_view pseudonym = key.substr(prefix.size());
    last = std::string(pseudonym);
    v1::SubjectKeyRecord record;
    if (!record.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      problem = DataLoss("keyring: a subject key record of tenant " + std::string(tenant) + " is corrupt");
      return false;
    }
    if (record.kek_version() >= target) return true;
    auto old_kek = Kek(tenant, record.kek_version());
    if (!old_kek.ok()) {
      problem = old_kek.status();
      return false;
    }
    auto dek = (*old_kek)->Decrypt(record.wrapped(),
                                   DekAd(options_.region, tenant, pseudonym, record.kek_version(), record.key_id()));
    if (!dek.ok()) {
      problem = DataLoss("keyring: a subject key of tenant " + std::string(tenant) + " does not unwrap");
      return false;
    }
    SecretBytes plain_dek = TakeSecret(std::move(*dek));
    auto rewrapped =
        new_kek->Encrypt(View(plain_dek), DekAd(options_.region, tenant, pseudonym, target, record.key_id()));
    if (!rewrapped.ok()) {
      problem = rewrapped.status();
      return false;
    }
    record.set_kek_version(target);
    record.set_wrapped(std::move(*rewrapped));
    batch.Put(kNs, key, record.SerializeAsString());
    ++progress.rewrapped_now;
    return true;
  }));
  GL_RETURN_IF_ERROR(problem);
  auto* rewrap = state->mutable_rewrap();
  rewrap->set_rewrapped(rewrap->rewrapped() + progress.rewrapped_now);
  rewrap->set_cursor(last);
  if (!more) {
    rewrap->set_active(false);
    rewrap->clear_cursor();
    progress.done = true;
  }
  progress.rewrapped = rewrap->rewrapped();
  // The rewrapped keys and the advanced cursor land together, or neither;
  // the last step also with the entry that records the finished rewrap.
  batch.Put(kNs, StateKey(tenant), state->SerializeAsString());
  if (!progress.done) {
    GL_RETURN_IF_ERROR(kv_->Write(batch, /*sync=*/true));
    return progress;
  }
  KeyChange change;
  change.version = target;
  change.rewrapped = progress.rewrapped;
  GL_RETURN_IF_ERROR(finish(change, std::move(batch)));
  progress.finished_now = true;
  return progress;
}

StatusOr<std::vector<std::string>> Keyring::TenantsWithPendingRewrap() const {
  std::vector<std::string> out;
  v1::TenantKeyState state;
  GL_RETURN_IF_ERROR(kv_->Scan(kNs, "t/", [&](std::string_view key, std::string_view value) {
    if (key.size() < 8 || key.substr(key.size() - 6) != "/state") return true;
    if (state.ParseFromArray(value.data(), static_cast<int>(value.size())) && state.rewrap().active())
      out.emplace_back(key.substr(2, key.size() - 8));
    return true;
  }));
  return out;
}

}  // namespace geoledger::crypto
