// Residency policy administration:
//   PUT/GET /v1/regions/{region}          scope admin (unrestricted tokens only for PUT)
//   PUT/GET /v1/tenants/{tenant}          scope admin
//   GET     /v1/tenants/{tenant}/history  scope admin
// Every change is audit-logged first (actions region.created /
// region.updated / tenant.created / tenant.updated, with the changed field
// names and the new policy version), then written to the policy store
// (versioned, with a history record that keeps the entry's index) and
// activated atomically in the engine, and answered with the entry's
// audit_index. When the entry cannot be written, nothing changes (503).
#pragma once

#include <functional>
#include <optional>

#include "audit/ledger.h"
#include "residency/policy_store.h"
#include "server/dispatcher.h"

namespace geoledger::server {

// The audit side of one policy change (residency::AuditChange): Hook()
// writes the change's entry, durably, before the store commits; Settle()
// then takes the store's result, and when the store failed after the entry
// was written, appends a second entry (action policy.change.not_applied,
// outcome failed, naming the first entry's index and the policy version)
// so that the log never claims a change that did not happen. A crash
// between the entry and the commit leaves an entry with no history record
// of that index: that change was not applied either.
class PolicyChangeAudit {
 public:
  using EventFn = std::function<audit::AuditEvent(const residency::ChangeRecord&)>;
  // `ledger` must outlive this object.
  PolicyChangeAudit(audit::Ledger* ledger, EventFn event) : ledger_(ledger), event_(std::move(event)) {}
  // Valid while this object lives; call the store once with it.
  residency::AuditChange Hook();
  void Settle(const Status& store_result);
  // The store called Hook() and the ledger refused the entry: nothing changed.
  bool hook_failed() const { return hook_failed_; }

 private:
  audit::Ledger* ledger_;
  EventFn event_;
  std::optional<audit::AuditEvent> written_;  // the entry Hook() wrote
  uint64_t written_index_ = 0;
  uint64_t version_ = 0;
  bool hook_failed_ = false;
};

void RegisterPolicyRoutes(Dispatcher& dispatcher, std::function<residency::PolicyStore*()> policy,
                          std::function<audit::Ledger*()> ledger);

}  // namespace geoledger::server
