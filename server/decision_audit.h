// Audit of residency decisions through the ledger's group commit, with a
// bound on how many decision events may be outstanding (queued, not yet
// durable).
//
//   sync  (--decision-audit=sync, the default): the caller answers from
//         `durable`, so an answer implies a durable entry.
//   async (--decision-audit=async): the caller answers at once and `durable`
//         only records failures; nothing is dropped silently, because
//         Submit refuses (kUnavailable → 503 + Retry-After) instead of
//         queueing beyond the bound.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "audit/ledger.h"
#include "common/status.h"

namespace geoledger::server {

enum class DecisionAuditMode { kSync, kAsync };

// "sync" / "async".
std::string_view DecisionAuditModeName(DecisionAuditMode mode);

class DecisionAuditor {
 public:
  // How events reach the ledger: Ledger::AppendAsync, or a fake in tests.
  using Sink = std::function<Status(std::vector<audit::AuditEvent>, audit::Ledger::AppendCallback)>;

  // `max_outstanding` >= 1 bounds the decision events submitted and not yet
  // reported by the sink. `wake` (optional: Ledger::WakeWriter) is what
  // Wake() calls.
  DecisionAuditor(DecisionAuditMode mode, size_t max_outstanding, Sink sink, std::function<void()> wake = {});

  DecisionAuditMode mode() const { return mode_; }

  // Hands `events` to the sink. kUnavailable, without calling `durable`,
  // when the bound would be exceeded or the sink refuses (ledger full,
  // closed or failed). Otherwise OK and `durable` is called exactly once,
  // on the sink's thread, with the indexes or the write error.
  Status Submit(std::vector<audit::AuditEvent> events, audit::Ledger::AppendCallback durable);
  // In async mode, after the answer to a Submit is sent: lets the sink start
  // writing (see Ledger::WakeWriter), off the answer's critical path.
  void Wake() const {
    if (wake_) wake_();
  }

  uint64_t outstanding() const { return outstanding_.load(); }
  uint64_t rejected_total() const { return rejected_.load(); }
  // Accepted events whose write then failed (async answers already sent;
  // the ledger is unhealthy and refuses everything after).
  uint64_t failed_total() const { return failed_.load(); }
  uint64_t audited_total() const { return audited_.load(); }

 private:
  const DecisionAuditMode mode_;
  const size_t max_outstanding_;
  const Sink sink_;
  const std::function<void()> wake_;
  std::atomic<uint64_t> outstanding_{0}, rejected_{0}, failed_{0}, audited_{0};
};

}  // namespace geoledger::server
