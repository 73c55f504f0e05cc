// Residency policy administration:
//   PUT/GET /v1/regions/{region}          scope admin (unrestricted tokens only for PUT)
//   PUT/GET /v1/tenants/{tenant}          scope admin
//   GET     /v1/tenants/{tenant}/history  scope admin
// Every change is written in one atomic write with its audit entry (actions
// region.created / region.updated / tenant.created / tenant.updated, with the
// changed field names and the new policy version): the versioned policy
// store's records, a history record that keeps the entry's index, and the
// entry. Once that write is durable the change is activated atomically in
// the engine and answered with the entry's audit_index. When the write fails,
// nothing is active (503).
#pragma once

#include <functional>
#include <optional>

#include "audit/ledger.h"
#include "residency/policy_store.h"
#include "server/dispatcher.h"

namespace geoledger::server {

// The audit side of one policy change (residency::AuditChange): Hook()
// appends the change's entry with the store's writes attached to it
// (audit::Ledger::AttachedWrites), so the entry and the change reach the
// store in the same atomic write, or neither does. The log never names a
// change that is not stored, and no stored change lacks its entry, whatever
// fails or crashes.
class PolicyChangeAudit {
 public:
  using EventFn = std::function<audit::AuditEvent(const residency::ChangeRecord&)>;
  // `ledger` must outlive this object.
  PolicyChangeAudit(audit::Ledger* ledger, EventFn event) : ledger_(ledger), event_(std::move(event)) {}
  // Valid while this object lives; call the store once with it.
  residency::AuditChange Hook();
  // The store called Hook() and the append failed: nothing is active.
  bool hook_failed() const { return hook_failed_; }

 private:
  audit::Ledger* ledger_;
  EventFn event_;
  bool hook_failed_ = false;
};

void RegisterPolicyRoutes(Dispatcher& dispatcher, std::function<residency::PolicyStore*()> policy,
                          std::function<audit::Ledger*()> ledger);

}  // namespace geoledger::server
