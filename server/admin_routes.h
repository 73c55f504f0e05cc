// Token administration and identity routes:
//   GET    /v1/whoami                  any valid token
//   POST   /v1/admin/tokens            scope admin — returns the token once
//   GET    /v1/admin/tokens            scope admin — never returns secrets
//   DELETE /v1/admin/tokens/{id}       scope admin
#pragma once

#include <functional>

#include "audit/ledger.h"
#include "server/dispatcher.h"
#include "server/token_store.h"

namespace geoledger::server {

// `tokens` returns the live store (non-null whenever the dispatcher lets an
// authenticated request through).
// Token creation and revocation are audit-logged (actions token.created and
// token.revoked) and answer the entry's audit_index.
void RegisterAdminRoutes(Dispatcher& dispatcher, std::function<TokenStore*()> tokens,
                         std::function<audit::Ledger*()> ledger);

}  // namespace geoledger::server
