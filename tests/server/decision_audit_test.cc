// The decision audit queue: bounded, pushes back instead of dropping, and
// frees room only when the sink reports. Then the decision routes on top of
// it, through the dispatcher: what a full queue, a pending entry and a
// failed write make of the answers.
#include "server/decision_audit.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/kv_store.h"
#include "server/decision_routes.h"
#include "server/dispatcher.h"
#include "server/metrics.h"
#include "server/token_store.h"
#include "tests/residency/fixtures.h"

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

// The decision routes on a dispatcher, with the auditor's sink in the
// test's hands: an answer can be held, released or failed at will.
class DecisionRoutesAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    using residency::testing::R;
    using residency::testing::T;
    engine_ = residency::testing::NewEngine();
    auto b = engine_->NewPolicy(1);
    ASSERT_TRUE(b.PutRegion(R("eu-west-1", "IE")).ok());
    ASSERT_TRUE(b.PutRegion(R("us-east-1", "US")).ok());
    ASSERT_TRUE(b.PutTenant(T("acme", R"({"home_region":"eu-west-1","status":"active"})")).ok());
    ASSERT_TRUE(engine_->Install(std::move(b).Build()).ok());
    kv_ = NewMemoryKvStore();
    tokens_ = std::move(*TokenStore::Open(kv_.get(), &clock_));
    decide_ = tokens_->Create("gateway", {"decide"}, "", "test")->token;
  }
  // Starts the dispatcher with an auditor of `mode` bounded at `bound`.
  void Start(DecisionAuditMode mode, size_t bound) {
    auditor_.emplace(mode, bound, sink_.AsSink());
    Dispatcher::Options o;
    o.access_log = false;
    o.tenant_limit = {0, 0, 100};
    o.token_limit = {0, 0, 100};
    dispatcher_ = std::make_unique<Dispatcher>(o, &clock_, &metrics_);
    RegisterDecisionRoutes(*dispatcher_, {[this] { return engine_.get(); }, [this] { return &*auditor_; }});
    dispatcher_->SetTokenStore(tokens_.get());
  }
  HttpRequest Check(const std::string& region) const {
    HttpRequest r;
    r.method = "GET";
    r.path = "/v1/gateway/check";
    r.headers = {{"authorization", "Bearer " + decide_},
                 {"x-tenant-id", "acme"},
                 {"x-data-category", "personal"},
                 {"x-operation", "store"},
                 {"x-target-region", region}};
    return r;
  }
  HttpRequest Decide(const std::string& region) const {
    HttpRequest r;
    r.method = "POST";
    r.path = "/v1/decisions";
    r.headers = {{"authorization", "Bearer " + decide_}, {"content-type", "application/json"}};
    r.body = R"({"tenant":"acme","category":"personal","operation":"store","region":")" + region + "\"}";
    return r;
  }
  static std::string Header(const HttpResponse& r, const std::string& name) {
    for (const auto& [k, v] : r.headers)
      if (k == name) return v;
    return "";
  }
  // Sends `request`; the answer, once the dispatcher gives it.
  std::shared_ptr<std::optional<HttpResponse>> Send(HttpRequest request) {
    auto answer = std::make_shared<std::optional<HttpResponse>>();
    dispatcher_->HandleAsync(std::move(request), [answer](HttpResponse r) { *answer = std::move(r); });
    return answer;
  }

  FakeSink sink_;
  std::optional<DecisionAuditor> auditor_;
  ManualClock clock_;
  HttpMetrics metrics_;
  std::unique_ptr<residency::Engine> engine_;
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<TokenStore> tokens_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::string decide_;
};

// Async mode: an answer at once while there is room; once the bound is
// reached, 503 with Retry-After and no decision, until the entries already
// accepted are reported durable.
TEST_F(DecisionRoutesAuditTest, AsyncAnswersAtOnceAndAFullQueueIsRefusedWithoutADecision) {
  Start(DecisionAuditMode::kAsync, 1);
  auto first = Send(Check("eu-west-1"));
  ASSERT_TRUE(first->has_value());  // answered before its entry is durable
  EXPECT_EQ((*first)->status, 200);
  EXPECT_EQ(Header(**first, "X-Residency-Region"), "eu-west-1");
  EXPECT_EQ(Header(**first, "X-Residency-Decision-Id").size(), 20u);
  ASSERT_EQ(sink_.held.size(), 1u);

  for (const HttpRequest& request : {Check("eu-west-1"), Check("us-east-1"), Decide("eu-west-1")}) {
    auto refused = Send(request);
    ASSERT_TRUE(refused->has_value());
    EXPECT_EQ((*refused)->status, 503) << request.path;
    EXPECT_EQ(Header(**refused, "Retry-After"), "1") << request.path;
    EXPECT_EQ(Header(**refused, "X-Residency-Region"), "");
    EXPECT_EQ(Header(**refused, "X-Residency-Reason"), "");
    EXPECT_EQ(Header(**refused, "X-Residency-Decision-Id"), "");
  }
  EXPECT_EQ(sink_.held.size(), 1u);  // nothing refused reached the ledger
  EXPECT_EQ(auditor_->rejected_total(), 3u);

  sink_.ReleaseFirst();  // the first entry is durable: room again
  auto again = Send(Check("us-east-1"));
  ASSERT_TRUE(again->has_value());
  EXPECT_EQ((*again)->status, 403);
  EXPECT_EQ(Header(**again, "X-Residency-Reason"), "region-not-allowed");
  EXPECT_EQ(sink_.held.size(), 1u);
}

// Sync mode: no answer until the entry is durable; then the answer names
// its index. An entry that cannot be written is a 503, never a decision.
TEST_F(DecisionRoutesAuditTest, SyncAnswersOnlyOnceTheEntryIsDurable) {
  Start(DecisionAuditMode::kSync, 10);
  auto check = Send(Check("eu-west-1"));
  auto decide = Send(Decide("us-east-1"));
  EXPECT_FALSE(check->has_value());
  EXPECT_FALSE(decide->has_value());
  ASSERT_EQ(sink_.held.size(), 2u);

  sink_.ReleaseFirst();
  ASSERT_TRUE(check->has_value());
  EXPECT_EQ((*check)->status, 200);
  EXPECT_EQ(Header(**check, "X-Residency-Region"), "eu-west-1");
  EXPECT_EQ(Header(**check, "X-Residency-Audit-Index"), "0");
  EXPECT_FALSE(decide->has_value());

  sink_.ReleaseFirst(/*ok=*/false);
  ASSERT_TRUE(decide->has_value());
  EXPECT_EQ((*decide)->status, 503);
  EXPECT_EQ(Header(**decide, "Retry-After"), "1");
  EXPECT_EQ((*decide)->body.find("\"allow\""), std::string::npos) << (*decide)->body;
  EXPECT_EQ(auditor_->failed_total(), 1u);
}

// An answer that waited for its entry past a second boundary carries only
// what is left of its ttl: a gateway's cache counts max-age from the
// answer, and must not keep it past the decision's ttl.
TEST_F(DecisionRoutesAuditTest, AnAnswerThatWaitedForItsEntryCarriesWhatIsLeftOfItsTtl) {
  Start(DecisionAuditMode::kSync, 10);
  auto check = Send(Check("eu-west-1"));
  auto decide = Send(Decide("eu-west-1"));
  ASSERT_EQ(sink_.held.size(), 2u);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past at least one whole second
  sink_.ReleaseFirst();
  sink_.ReleaseFirst();
  ASSERT_TRUE(check->has_value());
  ASSERT_TRUE(decide->has_value());
  ASSERT_EQ((*check)->status, 200);
  const std::string cache_control = Header(**check, "Cache-Control");
  ASSERT_EQ(cache_control.rfind("public, max-age=", 0), 0u) << cache_control;
  const int max_age = std::atoi(cache_control.c_str() + std::strlen("public, max-age="));
  EXPECT_LE(max_age, 59) << cache_control;  // the decided ttl is 60
  EXPECT_GE(max_age, 0) << cache_control;
  const auto body = nlohmann::json::parse((*decide)->body);
  EXPECT_LE(body["ttl_s"].get<int>(), 59) << (*decide)->body;
  EXPECT_EQ(Header(**decide, "Cache-Control"), "private, max-age=" + std::to_string(body["ttl_s"].get<int>()));
}

}  // namespace
}  // namespace geoledger::server
