#include "residency/engine.h"

#include <chrono>
#include <utility>

namespace geoledger::residency {
namespace {

std::atomic<uint64_t> g_next_engine_id{1};

struct ReaderCache {
  uint64_t engine_id = 0;
  uint64_t generation = 0;
  std::shared_ptr<const Snapshot> snapshot;
};
thread_local ReaderCache t_cache;

}  // namespace

Engine::Engine(Options options)
    : id_(g_next_engine_id.fetch_add(1)),
      rules_(options.rules),
      jurisdictions_(std::move(options.jurisdictions)),
      pool_(std::make_shared<StringPool>()) {}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  retired_cv_.notify_all();
  if (releaser_.joinable()) releaser_.join();
}

StatusOr<std::unique_ptr<Engine>> Engine::Create(Options options) {
  if (!options.jurisdictions) {
    GL_ASSIGN_OR_RETURN(options.jurisdictions, BuiltinJurisdictions());
  }
  const bool background = options.release_in_background;
  std::unique_ptr<Engine> engine(new Engine(std::move(options)));
  engine->current_ = engine->NewPolicy(0).Build();
  if (background) engine->releaser_ = std::thread([e = engine.get()] { e->ReleaseLoop(); });
  return engine;
}

size_t Engine::ReleaseRetired() {
  std::vector<std::shared_ptr<const Snapshot>> unused;  // freed after the lock
  std::lock_guard<std::mutex> lock(mu_);
  // Ours is the only reference: no thread holds the snapshot and, as it is
  // no longer active, none can take it.
  auto only_ours = [](const std::shared_ptr<const Snapshot>& s) { return s.use_count() == 1; };
  for (auto& s : retired_)
    if (only_ours(s)) unused.push_back(std::move(s));
  std::erase(retired_, nullptr);
  return retired_.size();
}

void Engine::ReleaseLoop() {
  // A thread cache lets go of its snapshot when its thread next decides,
  // which no one signals, so retired snapshots still held are polled for.
  constexpr auto kPoll = std::chrono::milliseconds(200);
  size_t remaining = 0;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto woken = [this, &remaining] { return stopping_ || retired_.size() != remaining; };
      if (remaining == 0) retired_cv_.wait(lock, woken);
      else retired_cv_.wait_for(lock, kPoll, woken);
      if (stopping_) return;
    }
    remaining = ReleaseRetired();
  }
}

SnapshotBuilder Engine::NewPolicy(uint64_t version) const {
  return SnapshotBuilder::Fresh(jurisdictions_, pool_, rules_, version);
}

SnapshotBuilder Engine::EditCurrent() const { return SnapshotBuilder::On(*Current()); }

Status Engine::Install(std::shared_ptr<const Snapshot> snapshot) {
  if (!snapshot) return InvalidArgument("residency policy: no snapshot");
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t active = current_->version();
  if (snapshot->incremental()) {
    if (snapshot->base_version() != active)
      return FailedPrecondition("residency policy: change built on version " +
                                std::to_string(snapshot->base_version()) +
                                " but the active version is " + std::to_string(active));
  } else if (snapshot->version() <= active) {
    return FailedPrecondition("residency policy: version " + std::to_string(snapshot->version()) +
                              " is not newer than the active version " + std::to_string(active));
  }
  retired_.push_back(std::exchange(current_, std::move(snapshot)));
  generation_.fetch_add(1, std::memory_order_release);
  lock.unlock();
  retired_cv_.notify_all();
  return Status::Ok();
}

const Snapshot& Engine::Acquire() const {
  ReaderCache& c = t_cache;
  const uint64_t gen = generation_.load(std::memory_order_acquire);
  if (c.engine_id != id_ || c.generation != gen) {
    std::shared_ptr<const Snapshot> previous;  // released after the lock
    // Read the generation again under the lock so the tag never claims a
    // newer generation than the pointer copied.
    std::lock_guard<std::mutex> lock(mu_);
    previous = std::exchange(c.snapshot, current_);
    c.generation = generation_.load(std::memory_order_relaxed);
    c.engine_id = id_;
  }
  return *c.snapshot;
}

Decision Engine::Decide(std::string_view tenant, std::string_view category,
                        std::string_view operation, std::string_view region,
                        int64_t unix_seconds) const {
  return Acquire().Decide(tenant, category, operation, region, unix_seconds);
}

void Engine::DecideBatch(std::span<const DecisionRequest> requests, int64_t unix_seconds,
                         std::span<Decision> out) const {
  Acquire().DecideBatch(requests, unix_seconds, out);
}

std::shared_ptr<const Snapshot> Engine::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

uint64_t Engine::version() const { return Current()->version(); }

bool Engine::loaded() const {
  auto s = Current();
  return s->version() > 0 && (s->tenant_count() > 0 || s->region_count() > 0);
}

}  // namespace geoledger::residency
