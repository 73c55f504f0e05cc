// Residency policy administration:
//   PUT/GET /v1/regions/{region}          scope admin (unrestricted tokens only for PUT)
//   PUT/GET /v1/tenants/{tenant}          scope admin
//   GET     /v1/tenants/{tenant}/history  scope admin
// Every change is written to the policy store (versioned, with a history
// record), activated atomically in the engine, then audit-logged (actions
// region.created / region.updated / tenant.created / tenant.updated, with the
// changed field names) and answered with the entry's audit_index.
#pragma once

#include <functional>

#include "audit/ledger.h"
#include "residency/policy_store.h"
#include "server/dispatcher.h"

namespace geoledger::server {

void RegisterPolicyRoutes(Dispatcher& dispatcher, std::function<residency::PolicyStore*()> policy,
                          std::function<audit::Ledger*()> ledger);

}  // namespace geoledger::server
