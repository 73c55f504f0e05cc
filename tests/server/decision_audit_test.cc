// The decision audit queue: bounded, pushes back instead of dropping, and
// frees room only when the sink reports.
#include "server/decision_audit.h"

#include <gtest/gtest.h>

#include <vector>

namespace geoledger::server {
namespace {

// A sink that holds every callback until the test releases it.
struct FakeSink {
  std::vector<std::pair<size_t, audit::Ledger::AppendCallback>> held;
  Status refuse = Status::Ok();
  uint64_t next_index = 0;
  DecisionAuditor::Sink AsSink() {
    return [this](std::vector<audit::AuditEvent> events, audit::Ledger::AppendCallback done) -> Status {
      if (!refuse.ok()) return refuse;
      held.emplace_back(events.size(), std::move(done));
      return Status::Ok();
    };
  }
  void ReleaseFirst(bool ok = true) {
    auto [n, done] = std::move(held.front());
    held.erase(held.begin());
    if (!ok) return done(Unavailable("audit: ledger storage failed"));
    std::vector<uint64_t> idx;
    for (size_t i = 0; i < n; ++i) idx.push_back(next_index++);
    done(std::move(idx));
  }
};

std::vector<audit::AuditEvent> Events(size_t n) {
  std::vector<audit::AuditEvent> out(n);
  for (auto& e : out) e.action = "residency.decision";
  return out;
}

TEST(DecisionAuditorTest, FullQueuePushesBackAndReleasedRoomIsReused) {
  FakeSink sink;
  DecisionAuditor auditor(DecisionAuditMode::kAsync, 3, sink.AsSink());
  int durable = 0;
  auto count = [&](StatusOr<std::vector<uint64_t>> r) { durable += r.ok(); };
  ASSERT_TRUE(auditor.Submit(Events(2), count).ok());
  ASSERT_TRUE(auditor.Submit(Events(1), count).ok());
  EXPECT_EQ(auditor.outstanding(), 3u);
  Status full = auditor.Submit(Events(1), count);
  EXPECT_EQ(full.code(), StatusCode::kUnavailable);
  EXPECT_EQ(auditor.rejected_total(), 1u);
  EXPECT_EQ(sink.held.size(), 2u);  // the refused event never reached the sink

  sink.ReleaseFirst();  // two events durable: room for two
  EXPECT_EQ(durable, 1);
  EXPECT_EQ(auditor.outstanding(), 1u);
  EXPECT_TRUE(auditor.Submit(Events(2), count).ok());
  EXPECT_EQ(auditor.Submit(Events(1), count).code(), StatusCode::kUnavailable);
  sink.ReleaseFirst();
  sink.ReleaseFirst();
  EXPECT_EQ(durable, 3);
  EXPECT_EQ(auditor.outstanding(), 0u);
  EXPECT_EQ(auditor.audited_total(), 5u);
}

TEST(DecisionAuditorTest, ABatchLargerThanTheBoundIsRefused) {
  FakeSink sink;
  DecisionAuditor auditor(DecisionAuditMode::kSync, 2, sink.AsSink());
  EXPECT_EQ(auditor.Submit(Events(3), [](StatusOr<std::vector<uint64_t>>) {}).code(), StatusCode::kUnavailable);
  EXPECT_EQ(auditor.outstanding(), 0u);
}

TEST(DecisionAuditorTest, SinkRefusalIsUnavailableAndFreesTheRoom) {
  FakeSink sink;
  sink.refuse = Unavailable("audit: append queue is full");
  DecisionAuditor auditor(DecisionAuditMode::kSync, 10, sink.AsSink());
  bool called = false;
  Status st = auditor.Submit(Events(1), [&](StatusOr<std::vector<uint64_t>>) { called = true; });
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_FALSE(called);
  EXPECT_EQ(auditor.outstanding(), 0u);
  sink.refuse = InvalidArgument("audit: event field too large");
  EXPECT_EQ(auditor.Submit(Events(1), [](StatusOr<std::vector<uint64_t>>) {}).code(), StatusCode::kInternal);
}

TEST(DecisionAuditorTest, FailedWriteIsReportedAndCounted) {
  FakeSink sink;
  DecisionAuditor auditor(DecisionAuditMode::kSync, 10, sink.AsSink());
  Status seen;
  ASSERT_TRUE(auditor.Submit(Events(2), [&](StatusOr<std::vector<uint64_t>> r) { seen = r.status(); }).ok());
  sink.ReleaseFirst(/*ok=*/false);
  EXPECT_EQ(seen.code(), StatusCode::kUnavailable);
  EXPECT_EQ(auditor.failed_total(), 2u);
  EXPECT_EQ(auditor.outstanding(), 0u);
}

}  // namespace
}  // namespace geoledger::server
