// The request pipeline without sockets: routing, auth, scopes, limits,
// content types and problem rendering.
#include "server/dispatcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>

#include "server/problem.h"

namespace geoledger::server {
namespace {

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kv_ = NewMemoryKvStore();
    tokens_ = std::move(*TokenStore::Open(kv_.get(), &clock_));
    Dispatcher::Options o;
    o.access_log = false;
    o.tenant_limit = {1, 2, 100};
    o.token_limit = {0, 0, 100};
    d_ = std::make_unique<Dispatcher>(o, &clock_, &metrics_);
    d_->AddRoute("GET", "/open", Access::kPublic, "", [](RequestContext&) -> StatusOr<HttpResponse> {
      return JsonResponse(200, {{"ok", true}});
    });
    d_->AddRoute("POST", "/v1/things/{tenant}", Access::kScoped, "decide",
                 [this](RequestContext& ctx) -> StatusOr<HttpResponse> {
                   seen_body_ = ctx.body;
                   seen_tenant_ = ctx.tenant;
                   return JsonResponse(201, {{"tenant", ctx.tenant}});
                 });
    d_->AddRoute("GET", "/v1/fail/{code}", Access::kAuthenticated, "",
                 [](RequestContext& ctx) -> StatusOr<HttpResponse> {
                   if (ctx.params["code"] == "conflict") return AlreadyExists("thing 'x' exists");
                   if (ctx.params["code"] == "busy") return Unavailable("queue full");
                   if (ctx.params["code"] == "throw") throw std::runtime_error("secret-detail");
                   return Internal("disk said secret-detail");
                 });
    admin_ = tokens_->Create("admin", {"admin"}, "", "t")->token;
    decide_ = tokens_->Create("gw", {"decide"}, "", "t")->token;
  }
  HttpRequest Req(std::string method, std::string path, std::string token = "", std::string body = "",
                  std::string content_type = "application/json") {
    HttpRequest r;
    r.method = std::move(method);
    r.path = std::move(path);
    if (!token.empty()) r.headers.emplace_back("authorization", "Bearer " + token);
    if (!body.empty()) r.headers.emplace_back("content-type", content_type);
    r.body = std::move(body);
    return r;
  }
  std::string TypeOf(const HttpResponse& r) {
    return nlohmann::json::parse(r.body).value("type", "");
  }

  ManualClock clock_;
  HttpMetrics metrics_;
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<TokenStore> tokens_;
  std::unique_ptr<Dispatcher> d_;
  std::string admin_, decide_;
  nlohmann::json seen_body_;
  std::string seen_tenant_;
};

TEST_F(DispatcherTest, NotReadyUntilTokenStoreIsSet) {
  auto r = d_->Handle(Req("POST", "/v1/things/acme", decide_, "{}"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(TypeOf(r), "urn:geoledger:problem:unavailable");
  EXPECT_EQ(d_->Handle(Req("GET", "/open")).status, 200);  // public routes still answer
}

TEST_F(DispatcherTest, ScopedRouteNeedsTheScope) {
  d_->SetTokenStore(tokens_.get());
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/things/acme", "", "{}")).status, 401);
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/things/acme", admin_, "{}")).status, 403);
  auto ok = d_->Handle(Req("POST", "/v1/things/acme", decide_, R"({"a":1})"));
  EXPECT_EQ(ok.status, 201);
  EXPECT_EQ(seen_body_["a"], 1);
  EXPECT_EQ(seen_tenant_, "acme");
}

TEST_F(DispatcherTest, BodyMustBeJsonOfBoundedDepth) {
  d_->SetTokenStore(tokens_.get());
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/things/t1", decide_, "{}", "text/plain")).status, 415);
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/things/t2", decide_, "{}", "application/json; charset=utf-8")).status, 201);
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/things/t3", decide_, "{")).status, 400);
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/things/t4", decide_, std::string(100, '[') + std::string(100, ']'))).status,
            400);
  // Brackets inside strings do not count toward depth.
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/things/t5", decide_, "{\"s\":\"" + std::string(200, '[') + "\"}")).status,
            201);
}

// A key named twice in one object: which value counts would be the parser's
// choice (nlohmann keeps the last), not the caller's. Refused at any depth;
// the same key in different objects is fine.
TEST_F(DispatcherTest, ABodyThatNamesAKeyTwiceInOneObjectIsRefused) {
  d_->SetTokenStore(tokens_.get());
  for (const char* body : {R"({"tenant":"a","tenant":"b"})", R"({"x":{"k":1,"k":1}})",
                           R"({"requests":[{"tenant":"a"},{"tenant":"a","region":"r","tenant":"b"}]})"}) {
    HttpResponse r = d_->Handle(Req("POST", "/v1/things/dup" + std::to_string(std::strlen(body)), decide_, body));
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_NE(r.body.find("names a key twice"), std::string::npos) << r.body;
  }
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/things/t7", decide_, R"({"a":{"k":1},"b":{"k":1},"k":[{"k":2}]})")).status,
            201);
  // Colons and quotes inside strings are not keys.
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/things/t8", decide_, R"({"s":"a:b\":c","t":{"u":"::","v":["x:y"]}})")).status,
            201);
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/things/t9", decide_, R"({"s":"a:b\":c","s":1})")).status, 400);
  // A key ending in an escaped backslash, and the same key escaped differently.
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/things/ta", decide_, R"({"a\\":1,"a\\":2})")).status, 400);
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/things/tb", decide_, R"({"a\\":1,"b\\":"\\"})")).status, 201);
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/things/tc", decide_, R"({"a":1,"\u0061":2})")).status, 400);
}

TEST_F(DispatcherTest, StatusesMapToStableProblems) {
  d_->SetTokenStore(tokens_.get());
  auto conflict = d_->Handle(Req("GET", "/v1/fail/conflict", admin_));
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(TypeOf(conflict), "urn:geoledger:problem:conflict");
  EXPECT_NE(conflict.body.find("thing 'x' exists"), std::string::npos);
  auto busy = d_->Handle(Req("GET", "/v1/fail/busy", admin_));
  EXPECT_EQ(busy.status, 503);
  bool retry_after = false;
  for (auto& [k, v] : busy.headers) retry_after |= (k == "Retry-After");
  EXPECT_TRUE(retry_after);
  for (const char* c : {"internal", "throw"}) {
    auto r = d_->Handle(Req("GET", std::string("/v1/fail/") + c, admin_));
    EXPECT_EQ(r.status, 500);
    EXPECT_EQ(r.body.find("secret-detail"), std::string::npos) << "internal detail leaked";
  }
}

TEST_F(DispatcherTest, TenantLimitAnswers429WithRetryAfter) {
  d_->SetTokenStore(tokens_.get());
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/things/acme", decide_, "{}")).status, 201);
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/things/acme", decide_, "{}")).status, 201);
  auto limited = d_->Handle(Req("POST", "/v1/things/acme", decide_, "{}"));
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(TypeOf(limited), "urn:geoledger:problem:rate-limited");
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/things/globex", decide_, "{}")).status, 201);
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/things/acme", decide_, "{}")).status, 201);
}

TEST_F(DispatcherTest, TenantNamedOnlyInTheBodyIsRateLimitedToo) {
  d_->AddRoute("POST", "/v1/keyish", Access::kScoped, "decide", [](RequestContext&) -> StatusOr<HttpResponse> {
    return JsonResponse(200, {{"ok", true}});
  });
  d_->SetTokenStore(tokens_.get());
  const std::string body = R"({"tenant":"acme","subject":"x"})";
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/keyish", decide_, body)).status, 200);
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/keyish", decide_, body)).status, 200);
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/keyish", decide_, body)).status, 429);
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/keyish", decide_, R"({"tenant":"globex"})")).status, 200);
  // The same bucket as the path or header tenant.
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/things/acme", decide_, "{}")).status, 429);
}

// Every connection closes after its last answer during the drain (answers
// to requests already pipelined behind one still go out first).
TEST_F(DispatcherTest, DrainingAnswers503ToApiCallsAndClosesEveryConnection) {
  d_->SetTokenStore(tokens_.get());
  d_->BeginDrain();
  auto api = d_->Handle(Req("POST", "/v1/things/acme", decide_, "{}"));
  EXPECT_EQ(api.status, 503);
  EXPECT_TRUE(api.close_when_last);
  auto probe = d_->Handle(Req("GET", "/open"));  // public probes still answer
  EXPECT_EQ(probe.status, 200);
  EXPECT_TRUE(probe.close_when_last);
  EXPECT_EQ(d_->in_flight(), 0);
}

TEST_F(DispatcherTest, EveryResponseCarriesRequestIdAndNoStore) {
  auto r = d_->Handle(Req("GET", "/open"));
  bool id = false, cache = false;
  for (auto& [k, v] : r.headers) {
    id |= k == "X-Request-Id" && v.size() == 24;
    cache |= k == "Cache-Control" && v == "no-store";
  }
  EXPECT_TRUE(id);
  EXPECT_TRUE(cache);
}

TEST(ProblemTest, EveryKindHasADistinctType) {
  std::set<int> statuses;
  std::set<std::string> types;
  for (int k = 0; k <= static_cast<int>(ProblemKind::kUnavailable); ++k) {
    auto kind = static_cast<ProblemKind>(k);
    statuses.insert(ProblemHttpStatus(kind));
    types.insert(ProblemTypeUri(kind));
    auto r = MakeProblem(kind, "d", "rid");
    EXPECT_EQ(r.content_type, "application/problem+json");
    auto doc = nlohmann::json::parse(r.body);
    EXPECT_EQ(doc["status"], r.status);
    EXPECT_EQ(doc["request_id"], "rid");
  }
  EXPECT_EQ(types.size(), static_cast<size_t>(ProblemKind::kUnavailable) + 1);
  for (int s : {400, 401, 403, 404, 405, 409, 413, 415, 429, 500, 503}) EXPECT_TRUE(statuses.count(s)) << s;
  // Only the two 500 kinds share a status.
  EXPECT_EQ(statuses.size() + 1, types.size());
}

}  // namespace
}  // namespace geoledger::server

namespace geoledger::server {
namespace {

class DeferredDispatcherTest : public DispatcherTest {
 protected:
  void SetUp() override {
    DispatcherTest::SetUp();
    d_->SetTokenStore(tokens_.get());
    d_->AddDeferredRoute("GET", "/v1/later", Access::kScoped, "decide", [this](RequestContext& ctx, Reply reply) {
      if (ctx.request.Header("x-drop")) return;  // a buggy handler that never answers
      held_.push_back(std::move(reply));
    });
  }
  std::vector<Reply> held_;
};

TEST_F(DeferredDispatcherTest, DeferredReplyCompletesLaterAndCountsAsInFlightUntilThen) {
  HttpResponse got;
  bool done = false;
  d_->HandleAsync(Req("GET", "/v1/later", decide_), [&](HttpResponse r) {
    got = std::move(r);
    done = true;
  });
  EXPECT_FALSE(done);
  EXPECT_EQ(d_->in_flight(), 1);  // a drain waits for it
  ASSERT_EQ(held_.size(), 1u);
  std::thread other([&] { held_[0](JsonResponse(202, {{"later", true}})); });
  other.join();
  EXPECT_TRUE(done);
  EXPECT_EQ(got.status, 202);
  EXPECT_EQ(d_->in_flight(), 0);
  held_[0](JsonResponse(200, {}));  // a second answer is ignored
  EXPECT_EQ(got.status, 202);
}

TEST_F(DeferredDispatcherTest, ErrorsAndDroppedRepliesBecomeProblems) {
  d_->HandleAsync(Req("GET", "/v1/later", decide_), [](HttpResponse) {});
  HttpResponse got;
  held_.clear();
  HttpRequest drop = Req("GET", "/v1/later", decide_);
  drop.headers.emplace_back("x-drop", "1");
  got = d_->Handle(drop);  // the Reply is destroyed unanswered
  EXPECT_EQ(got.status, 500);
  EXPECT_EQ(d_->in_flight(), 0);
  // The pipeline still refuses before the handler runs.
  EXPECT_EQ(d_->Handle(Req("GET", "/v1/later")).status, 401);
  EXPECT_EQ(d_->Handle(Req("GET", "/v1/later", admin_)).status, 403);
}

// A route marked blocking whose handler waits (bounded) until released.
class BlockingDispatcherTest : public DispatcherTest {
 protected:
  void Build(size_t threads, size_t max_queued) {
    Dispatcher::Options o;
    o.access_log = false;
    o.blocking_threads = threads;
    o.max_queued_blocking = max_queued;
    d_ = std::make_unique<Dispatcher>(o, &clock_, &metrics_);
    d_->SetTokenStore(tokens_.get());
    d_->AddRoute("GET", "/open", Access::kPublic, "", [](RequestContext&) -> StatusOr<HttpResponse> {
      return JsonResponse(200, {{"ok", true}});
    });
    d_->AddRoute("POST", "/v1/slow", Access::kScoped, "admin", [this](RequestContext&) -> StatusOr<HttpResponse> {
      started_++;
      bool released = release_.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
      {
        std::lock_guard<std::mutex> lock(mu_);
        handler_threads_.push_back(std::this_thread::get_id());
      }
      return JsonResponse(released ? 200 : 504, {});
    });
    d_->MarkBlockingRoute("POST", "/v1/slow");
    d_->AddRoute("POST", "/v1/long", Access::kScoped, "admin", [this](RequestContext&) -> StatusOr<HttpResponse> {
      long_started_++;
      bool released = long_release_.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
      return JsonResponse(released ? 200 : 504, {});
    });
    d_->MarkBlockingRoute("POST", "/v1/long", /*long_running=*/true);
  }
  std::future<HttpResponse> Send(const char* path) {
    auto answer = std::make_shared<std::promise<HttpResponse>>();
    auto got = answer->get_future();
    d_->HandleAsync(Req("POST", path, admin_), [answer](HttpResponse r) { answer->set_value(std::move(r)); });
    return got;
  }
  // Waits (bounded) until `n` reaches `want`.
  static bool Reaches(const std::atomic<int>& n, int want) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (n.load() < want && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return n.load() >= want;
  }
  // Sends POST /v1/slow; its answer arrives in the returned future.
  std::future<HttpResponse> Slow() {
    auto answer = std::make_shared<std::promise<HttpResponse>>();
    auto got = answer->get_future();
    d_->HandleAsync(Req("POST", "/v1/slow", admin_), [answer](HttpResponse r) { answer->set_value(std::move(r)); });
    return got;
  }
  std::promise<void> release_promise_;
  std::shared_future<void> release_ = release_promise_.get_future().share();
  std::atomic<int> started_{0};
  std::promise<void> long_release_promise_;
  std::shared_future<void> long_release_ = long_release_promise_.get_future().share();
  std::atomic<int> long_started_{0};
  std::mutex mu_;
  std::vector<std::thread::id> handler_threads_;  // guarded by mu_
};

TEST_F(BlockingDispatcherTest, ABlockingHandlerRunsOffTheCallingThreadWhichKeepsServing) {
  Build(2, 16);
  auto slow = Slow();  // returns while the handler waits
  EXPECT_EQ(d_->Handle(Req("GET", "/open")).status, 200);
  EXPECT_EQ(d_->in_flight(), 1);
  release_promise_.set_value();
  ASSERT_EQ(slow.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(slow.get().status, 200);  // 504 would mean it ran here and waited for nothing
  EXPECT_NE(handler_threads_.at(0), std::this_thread::get_id());
  // The request stops counting as in flight just after its answer is handed
  // over (so a drain waits for the hand-over): allow the handler's thread
  // that instant.
  for (int i = 0; i < 10000 && d_->in_flight() != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(d_->in_flight(), 0);
  // The pipeline still runs first, on the calling thread.
  EXPECT_EQ(d_->Handle(Req("POST", "/v1/slow", decide_)).status, 403);
}

// A blocking route's body is checked and parsed on its blocking thread, not
// on the calling (HTTP) thread: a large one, such as a policy bundle, must
// not hold up the other requests that thread serves.
TEST_F(BlockingDispatcherTest, ABlockingRoutesBodyIsParsedOffTheCallingThread) {
  Build(1, 16);
  auto running = Slow();  // takes the only blocking thread
  ASSERT_TRUE(Reaches(started_, 1));
  auto answer = std::make_shared<std::promise<HttpResponse>>();
  auto got = answer->get_future();
  d_->HandleAsync(Req("POST", "/v1/slow", admin_, "{not json"),
                  [answer](HttpResponse r) { answer->set_value(std::move(r)); });
  // Parsed here, the bad body would have been answered by now.
  EXPECT_EQ(got.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  release_promise_.set_value();
  ASSERT_EQ(got.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  HttpResponse r = got.get();
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("not valid JSON"), std::string::npos) << r.body;
  ASSERT_EQ(running.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(started_.load(), 1);  // the handler never ran for the bad body
}

TEST_F(BlockingDispatcherTest, ABoundedQueueAndAStopAnswer503) {
  Build(1, 1);
  auto running = Slow();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (started_.load() == 0 && std::chrono::steady_clock::now() < deadline)  // the one thread has taken it
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(started_.load(), 1);
  auto queued = Slow();
  auto third = Slow();
  auto refused_now = [](std::future<HttpResponse>& f) {
    return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready && f.get().status == 503;
  };
  EXPECT_TRUE(refused_now(third)) << "the queue holds one";
  std::thread stopper([&] { d_->StopBlockingWorkers(); });
  ASSERT_EQ(queued.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(queued.get().status, 503);  // answered at the stop, never run
  release_promise_.set_value();
  stopper.join();
  EXPECT_EQ(running.get().status, 200);  // the running one finished
  auto after = Slow();
  ASSERT_EQ(after.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  HttpResponse r = after.get();
  EXPECT_EQ(r.status, 503);
  EXPECT_FALSE(r.headers.empty());
  EXPECT_EQ(d_->in_flight(), 0);
}

// Exports and shreds may run for long: they never take the last free
// blocking thread, so a policy or token write queued after them still runs.
TEST_F(BlockingDispatcherTest, LongRunningRequestsLeaveAThreadForTheOthers) {
  Build(2, 16);
  auto long1 = Send("/v1/long");
  ASSERT_TRUE(Reaches(long_started_, 1));
  auto long2 = Send("/v1/long");  // queued ahead of the short one
  auto short1 = Send("/v1/slow");
  ASSERT_TRUE(Reaches(started_, 1)) << "the short request waited behind a long one";
  EXPECT_EQ(long_started_.load(), 1);
  release_promise_.set_value();
  ASSERT_EQ(short1.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(short1.get().status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(long_started_.load(), 1) << "a long request took the last free thread";
  long_release_promise_.set_value();
  ASSERT_EQ(long1.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  ASSERT_EQ(long2.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(long1.get().status, 200);
  EXPECT_EQ(long2.get().status, 200);
  EXPECT_EQ(long_started_.load(), 2);

  // With one blocking thread, long and short requests share it in turn.
  Build(1, 16);
  auto only = Send("/v1/long");
  ASSERT_EQ(only.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(only.get().status, 200);
}

// Large bodies to a route that offloads them (a batch of audit events or
// decisions) are parsed and handled on a bulk thread, so the HTTP thread
// that received them goes on serving its other connections; small ones are
// handled where they arrive.
class BulkDispatcherTest : public DispatcherTest {
 protected:
  void Build(size_t threads, size_t max_queued) {
    Dispatcher::Options o;
    o.access_log = false;
    o.bulk_threads = threads;
    o.max_queued_bulk = max_queued;
    d_ = std::make_unique<Dispatcher>(o, &clock_, &metrics_);
    d_->SetTokenStore(tokens_.get());
    // Answers from a thread of its own once the test releases it, as a
    // route answered once its audit entries are durable; a body holding
    // "throw" makes the handler throw after taking its reply.
    d_->AddDeferredRoute("POST", "/v1/batch", Access::kScoped, "admin", [this](RequestContext& ctx, Reply reply) {
      std::lock_guard<std::mutex> lock(mu_);
      handler_threads_.push_back(std::this_thread::get_id());
      started_++;
      if (ctx.body.dump().find("throw") != std::string::npos) throw std::runtime_error("handler failed");
      repliers_.emplace_back([this, reply = std::move(reply)]() mutable {
        bool released = release_.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
        reply(JsonResponse(released ? 200 : 504, {{"batch", true}}));
      });
    });
    d_->OffloadLargeBodies("POST", "/v1/batch", 100);
    // Holds its bulk thread until the test releases it.
    d_->AddRoute("POST", "/v1/hold", Access::kScoped, "admin", [this](RequestContext&) -> StatusOr<HttpResponse> {
      held_++;
      bool released = release_.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
      return JsonResponse(released ? 200 : 504, {});
    });
    d_->OffloadLargeBodies("POST", "/v1/hold", 100);
  }
  // Whatever the test did, the handlers' answers go out and their threads
  // end before the dispatcher does.
  void TearDown() override {
    Release();
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      threads.swap(repliers_);
    }
    for (auto& t : threads) t.join();
    if (d_) d_->StopBlockingWorkers();
  }
  void Release() {
    if (!released_.exchange(true)) release_promise_.set_value();
  }
  std::future<HttpResponse> Post(const std::string& path, const std::string& body) {
    auto answer = std::make_shared<std::promise<HttpResponse>>();
    auto got = answer->get_future();
    d_->HandleAsync(Req("POST", path, admin_, body), [answer](HttpResponse r) { answer->set_value(std::move(r)); });
    return got;
  }
  static std::string Body(size_t pad, const std::string& word = "x") {
    return nlohmann::json{{"word", word}, {"pad", std::string(pad, 'p')}}.dump();
  }
  std::thread::id HandlerThread(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return handler_threads_.at(i);
  }
  // Waits (bounded) until `n` reaches `want`.
  static bool Reaches(const std::atomic<int>& n, int want) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (n.load() < want && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return n.load() >= want;
  }
  static bool ReadyNow(std::future<HttpResponse>& f) {
    return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }
  std::promise<void> release_promise_;
  std::shared_future<void> release_ = release_promise_.get_future().share();
  std::atomic<bool> released_{false};
  std::atomic<int> started_{0}, held_{0};
  std::mutex mu_;
  std::vector<std::thread::id> handler_threads_;  // guarded by mu_
  std::vector<std::thread> repliers_;             // guarded by mu_
};

TEST_F(BulkDispatcherTest, ALargeBodyIsHandledOffTheCallingThreadAndASmallOneOnIt) {
  Build(1, 16);
  auto small = Post("/v1/batch", Body(10));
  ASSERT_EQ(started_.load(), 1);  // ran here, before HandleAsync returned
  EXPECT_EQ(HandlerThread(0), std::this_thread::get_id());
  auto holding = Post("/v1/hold", Body(1000));
  ASSERT_TRUE(Reaches(held_, 1));  // the one bulk thread is taken
  auto large = Post("/v1/batch", Body(1000));
  // A malformed large body is refused on the bulk thread, not here: with
  // that thread held, neither is answered yet.
  auto bad = Post("/v1/batch", "{not json" + std::string(1000, ' '));
  EXPECT_FALSE(ReadyNow(large));
  EXPECT_FALSE(ReadyNow(bad));
  EXPECT_EQ(started_.load(), 1);
  Release();
  for (auto* f : {&small, &holding, &large}) {
    ASSERT_EQ(f->wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_EQ(f->get().status, 200);
  }
  ASSERT_EQ(bad.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  HttpResponse refused = bad.get();
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("not valid JSON"), std::string::npos) << refused.body;
  EXPECT_EQ(started_.load(), 2);  // the handler never ran for the bad body
  EXPECT_NE(HandlerThread(1), std::this_thread::get_id());
  // A handler that throws on a bulk thread is answered 500, once.
  auto thrown = Post("/v1/batch", Body(1000, "throw"));
  ASSERT_EQ(thrown.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(thrown.get().status, 500);
  for (int i = 0; i < 10000 && d_->in_flight() != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(d_->in_flight(), 0);
}

TEST_F(BulkDispatcherTest, ABoundedQueueAndAStopAnswer503) {
  Build(1, 1);
  auto running = Post("/v1/hold", Body(1000));
  ASSERT_TRUE(Reaches(held_, 1));  // the one bulk thread has taken it
  auto queued = Post("/v1/hold", Body(1000));
  auto refused = Post("/v1/hold", Body(1000));
  ASSERT_TRUE(ReadyNow(refused)) << "the queue holds one";
  HttpResponse r = refused.get();
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("too many large requests"), std::string::npos) << r.body;
  auto small = Post("/v1/batch", Body(10));  // still handled where it arrives
  EXPECT_EQ(started_.load(), 1);
  std::thread stopper([&] { d_->StopBlockingWorkers(); });
  ASSERT_EQ(queued.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(queued.get().status, 503);  // answered at the stop, never run
  EXPECT_FALSE(ReadyNow(running));      // the stop waits for it
  Release();
  stopper.join();
  ASSERT_TRUE(ReadyNow(running));  // answered before the stop returned
  EXPECT_EQ(running.get().status, 200);
  ASSERT_EQ(small.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(small.get().status, 200);
  EXPECT_EQ(held_.load(), 1);
}

}  // namespace
}  // namespace geoledger::server
