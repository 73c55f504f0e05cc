// API bearer tokens with scopes.
//
// A token reads "gl_<id>.<secret>": <id> is 16 hex characters naming the
// record, <secret> is 32 random bytes in unpadded base64url. Only
// SHA-256(secret) is stored; Authenticate compares it in constant time.
// The plaintext token exists once, in the answer to Create.
//
// Thread-safe. Reads (Authenticate, List) take a shared lock on an in-memory
// index loaded at Open; writes go to storage with sync=true before the index
// changes.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/kv_store.h"
#include "common/status.h"

namespace geoledger::server {

// Every scope a token may carry. `admin` covers token administration only.
const std::vector<std::string>& AllScopes();
bool IsKnownScope(const std::string& scope);

struct Principal {
  std::string id;    // token id (public)
  std::string name;  // unique name; the actor recorded in audit entries
  std::vector<std::string> scopes;
  std::string tenant;  // empty: not restricted to one tenant
  int64_t created_unix_ms = 0;
  std::string created_by;
  bool revoked = false;

  bool HasScope(const std::string& scope) const;
};

class TokenStore {
 public:
  // Loads every token record from `kv` (namespace "tokens"). Both pointers
  // must outlive the store. kDataLoss if a stored record does not parse.
  static StatusOr<std::unique_ptr<TokenStore>> Open(KvStore* kv, const Clock* clock);

  struct Issued {
    Principal principal;
    std::string token;  // the only copy of the secret; show it once
  };
  // kInvalidArgument for a bad name, unknown or duplicate scope, bad tenant;
  // kAlreadyExists when the name is taken (revoked names stay taken).
  StatusOr<Issued> Create(const std::string& name, std::vector<std::string> scopes,
                          const std::string& tenant, const std::string& created_by);

  // kUnauthenticated for a malformed, unknown, wrong or revoked token. The
  // message never echoes the token.
  StatusOr<Principal> Authenticate(std::string_view bearer) const;

  // kNotFound for an unknown id. Revoking twice is OK. kFailedPrecondition
  // when `id` is the last unrevoked token with the admin scope (revoking it
  // would lock every administrator out).
  Status Revoke(const std::string& id);

  // The token's public record; kNotFound for an unknown id.
  StatusOr<Principal> Find(const std::string& id) const;

  std::vector<Principal> List() const;
  bool empty() const;

 private:
  struct Entry {
    Principal principal;
    std::string secret_sha256;
  };
  TokenStore(KvStore* kv, const Clock* clock) : kv_(kv), clock_(clock) {}
  Status Persist(const Entry& e);

  KvStore* kv_;
  const Clock* clock_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, Entry> by_id_;  // guarded by mu_
  std::map<std::string, std::string> id_by_name_;  // guarded by mu_
};

// Validation shared with other components: 1–64 of [A-Za-z0-9._:-].
bool IsValidName(std::string_view name);

}  // namespace geoledger::server
