#include "server/token_store.h"

#include <algorithm>
#include <mutex>

#include "common/encoding.h"
#include "common/proto_util.h"
#include "crypto/hash.h"
#include "geoledger/v1/token.pb.h"

namespace geoledger::server {
namespace {

constexpr char kNs[] = "tokens";
constexpr char kPrefix[] = "tok/";
constexpr size_t kIdBytes = 8;
constexpr size_t kSecretBytes = 32;

}  // namespace

const std::vector<std::string>& AllScopes() {
  static const std::vector<std::string> kScopes = {"decide", "audit:write", "audit:read",
                                                   "dsar",   "keys",        "admin"};
  return kScopes;
}

bool IsKnownScope(const std::string& scope) {
  const auto& all = AllScopes();
  return std::find(all.begin(), all.end(), scope) != all.end();
}

bool Principal::HasScope(const std::string& scope) const {
  return std::find(scopes.begin(), scopes.end(), scope) != scopes.end();
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == ':' || c == '-';
  });
}

StatusOr<std::unique_ptr<TokenStore>> TokenStore::Open(KvStore* kv, const Clock* clock) {
  std::unique_ptr<TokenStore> store(new TokenStore(kv, clock));
  Status parse_error;
  Status st = kv->Scan(kNs, kPrefix, [&](std::string_view key, std::string_view value) {
    v1::TokenRecord rec;
    if (!rec.ParseFromArray(value.data(), static_cast<int>(value.size())) ||
        rec.secret_sha256().size() != crypto::kSha256Bytes ||
        key.substr(sizeof(kPrefix) - 1) != rec.id()) {
      parse_error = DataLoss("token record " + std::string(key) + " is corrupt");
      return false;
    }
    Entry e;
    e.principal.id = rec.id();
    e.principal.name = rec.name();
    e.principal.scopes.assign(rec.scopes().begin(), rec.scopes().end());
    e.principal.tenant = rec.tenant();
    e.principal.created_unix_ms = rec.created_unix_ms();
    e.principal.created_by = rec.created_by();
    e.principal.revoked = rec.revoked();
    e.secret_sha256 = rec.secret_sha256();
    store->id_by_name_[e.principal.name] = e.principal.id;
    store->by_id_[e.principal.id] = std::move(e);
    return true;
  });
  GL_RETURN_IF_ERROR(st);
  GL_RETURN_IF_ERROR(parse_error);
  return store;
}

Status TokenStore::Persist(const Entry& e) {
  v1::TokenRecord rec;
  rec.set_id(e.principal.id);
  rec.set_name(e.principal.name);
  for (const auto& s : e.principal.scopes) rec.add_scopes(s);
  rec.set_secret_sha256(e.secret_sha256);
  rec.set_created_unix_ms(e.principal.created_unix_ms);
  rec.set_created_by(e.principal.created_by);
  rec.set_revoked(e.principal.revoked);
  if (e.principal.revoked) rec.set_revoked_unix_ms(clock_->UnixMillis());
  rec.set_tenant(e.principal.tenant);
  KvBatch batch;
  batch.Put(kNs, std::string(kPrefix) + e.principal.id, DeterministicSerialize(rec));
  return kv_->Write(batch, /*sync=*/true);
}

StatusOr<TokenStore::Issued> TokenStore::Create(const std::string& name,
                                                std::vector<std::string> scopes,
                                                const std::string& tenant,
                                                const std::string& created_by) {
  if (!IsValidName(name))
    return InvalidArgument("token name must be 1-64 characters of [A-Za-z0-9._:-]");
  if (scopes.empty()) return InvalidArgument("a token needs at least one scope");
  for (const auto& s : scopes)
    if (!IsKnownScope(s)) return InvalidArgument("unknown scope '" + s + "'");
  std::sort(scopes.begin(), scopes.end());
  if (std::adjacent_find(scopes.begin(), scopes.end()) != scopes.end())
    return InvalidArgument("duplicate scope");
  if (!tenant.empty() && !IsValidName(tenant))
    return InvalidArgument("tenant must be 1-64 characters of [A-Za-z0-9._:-]");

  std::string secret = crypto::RandomBytes(kSecretBytes);
  Entry e;
  e.principal.id = HexEncode(crypto::RandomBytes(kIdBytes));
  e.principal.name = name;
  e.principal.scopes = std::move(scopes);
  e.principal.tenant = tenant;
  e.principal.created_unix_ms = clock_->UnixMillis();
  e.principal.created_by = created_by;
  e.secret_sha256 = std::string(crypto::AsView(crypto::Sha256(secret)));

  std::unique_lock<std::shared_mutex> lock(mu_);
  if (id_by_name_.count(name) != 0) return AlreadyExists("a token named '" + name + "' exists");
  if (by_id_.count(e.principal.id) != 0) return Internal("token id collision; retry");
  GL_RETURN_IF_ERROR(Persist(e));
  Issued issued{e.principal, "gl_" + e.principal.id + "." + Base64UrlEncode(secret)};
  id_by_name_[name] = e.principal.id;
  by_id_[e.principal.id] = std::move(e);
  return issued;
}

StatusOr<Principal> TokenStore::Authenticate(std::string_view bearer) const {
  static const Status kBad = Unauthenticated("invalid or revoked token");
  // gl_ + 16 hex + . + 43 base64url
  if (bearer.size() != 3 + 2 * kIdBytes + 1 + 43 || bearer.substr(0, 3) != "gl_" ||
      bearer[3 + 2 * kIdBytes] != '.')
    return kBad;
  std::string id(bearer.substr(3, 2 * kIdBytes));
  auto secret = Base64UrlDecode(bearer.substr(3 + 2 * kIdBytes + 1));
  if (!secret || secret->size() != kSecretBytes) return kBad;
  auto digest = crypto::Sha256(*secret);

  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = by_id_.find(id);
  // Compare against a fixed digest for unknown ids so both paths do the same work.
  static const std::string kNoMatch(crypto::kSha256Bytes, '\xff');
  const std::string& expected = it == by_id_.end() ? kNoMatch : it->second.secret_sha256;
  bool equal = crypto::ConstantTimeEquals(crypto::AsView(digest), expected);
  if (it == by_id_.end() || !equal || it->second.principal.revoked) return kBad;
  return it->second.principal;
}

Status TokenStore::Revoke(const std::string& id) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return NotFound("no token with id '" + id + "'");
  if (it->second.principal.revoked) return Status::Ok();
  if (it->second.principal.HasScope("admin") && it->second.principal.tenant.empty()) {
    bool another_admin = false;
    for (const auto& [other_id, e] : by_id_)
      if (other_id != id && !e.principal.revoked && e.principal.tenant.empty() && e.principal.HasScope("admin"))
        another_admin = true;
    if (!another_admin) return FailedPrecondition("cannot revoke the last unrestricted admin token");
  }
  Entry updated = it->second;
  updated.principal.revoked = true;
  GL_RETURN_IF_ERROR(Persist(updated));
  it->second = std::move(updated);
  return Status::Ok();
}

StatusOr<Principal> TokenStore::Find(const std::string& id) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return NotFound("no token with id '" + id + "'");
  return it->second.principal;
}

std::vector<Principal> TokenStore::List() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  std::vector<Principal> out;
  for (const auto& [name, id] : id_by_name_) out.push_back(by_id_.at(id).principal);
  return out;
}

bool TokenStore::empty() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return by_id_.empty();
}

}  // namespace geoledger::server
