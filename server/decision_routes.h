// Residency decisions over HTTP, both scope `decide`:
//   POST /v1/decisions     {"tenant","category","operation","region"} or
//                          {"requests":[…]} (1-1000, one policy snapshot) →
//                          the decision, or {"decisions":[…]}
//   GET  /v1/gateway/check for nginx auth_request / Envoy ext_authz: reads
//                          X-Tenant-Id, X-Data-Category, X-Operation,
//                          X-Target-Region; 200 with X-Residency-Region and
//                          X-Residency-Decision-Id, or 403 with
//                          X-Residency-Reason. No body.
// Every decision (allow and deny) is audit-logged as residency.decision
// through the DecisionAuditor; in sync mode the answer waits for the entry
// to be durable. Answers carry ttl_s and Cache-Control: private, max-age.
// Unknown tenants, categories, operations and regions are denies with a
// reason code, never errors.
#pragma once

#include <functional>
#include <string>

#include "residency/engine.h"
#include "server/decision_audit.h"
#include "server/dispatcher.h"

namespace geoledger::server {

inline constexpr size_t kMaxDecisionBatch = 1000;

struct DecisionRouteDeps {
  std::function<const residency::Engine*()> engine;
  std::function<DecisionAuditor*()> auditor;  // non-null once the service is ready
};

void RegisterDecisionRoutes(Dispatcher& dispatcher, DecisionRouteDeps deps);

// A fresh decision id: 20 lowercase hex characters, unique within the
// process (random per-thread prefix and counter) and, with overwhelming
// probability, across processes.
std::string NewDecisionId();

}  // namespace geoledger::server
