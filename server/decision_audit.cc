#include "server/decision_audit.h"

#include "common/log.h"

namespace geoledger::server {

std::string_view DecisionAuditModeName(DecisionAuditMode mode) {
  return mode == DecisionAuditMode::kSync ? "sync" : "async";
}

DecisionAuditor::DecisionAuditor(DecisionAuditMode mode, size_t max_outstanding, Sink sink,
                                 std::function<void()> wake)
    : mode_(mode),
      max_outstanding_(max_outstanding < 1 ? 1 : max_outstanding),
      sink_(std::move(sink)),
      wake_(std::move(wake)) {}

Status DecisionAuditor::Submit(std::vector<audit::AuditEvent> events, audit::Ledger::AppendCallback durable) {
  const uint64_t n = events.size();
  // Reserve room first, so concurrent submitters cannot overshoot the bound.
  uint64_t before = outstanding_.fetch_add(n);
  if (before + n > max_outstanding_) {
    outstanding_.fetch_sub(n);
    rejected_.fetch_add(n);
    return Unavailable("decision audit queue is full");
  }
  Status st = sink_(std::move(events), [this, n, durable = std::move(durable)](StatusOr<std::vector<uint64_t>> r) {
    outstanding_.fetch_sub(n);
    if (r.ok()) audited_.fetch_add(n);
    else {
      failed_.fetch_add(n);
      log::Error("decision audit write failed", {{"events", n}, {"mode", std::string(DecisionAuditModeName(mode_))},
                                                 {"error", r.status().ToString()}});
    }
    durable(std::move(r));
  });
  if (!st.ok()) {
    outstanding_.fetch_sub(n);
    rejected_.fetch_add(n);
    if (st.code() == StatusCode::kInvalidArgument) return Internal("decision audit event refused: " + st.message());
    return Unavailable("decision audit: " + st.message());
  }
  return Status::Ok();
}

}  // namespace geoledger::server
