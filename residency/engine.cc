#include "residency/engine.h"

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

Engine::~Engine() = default;

StatusOr<std::unique_ptr<Engine>> Engine::Create(Options options) {
  if (!options.jurisdictions) {
    GL_ASSIGN_OR_RETURN(options.jurisdictions, BuiltinJurisdictions());
  }
  std::unique_ptr<Engine> engine(new Engine(std::move(options)));
  engine->current_ = engine->NewPolicy(0).Build();
  return engine;
}

SnapshotBuilder Engine::NewPolicy(uint64_t version) const {
  return SnapshotBuilder::Fresh(jurisdictions_, pool_, rules_, version);
}

SnapshotBuilder Engine::EditCurrent() const { return SnapshotBuilder::On(*Current()); }

Status Engine::Install(std::shared_ptr<const Snapshot> snapshot) {
  if (!snapshot) return InvalidArgument("residency policy: no snapshot");
  // Declared before the lock: the replaced snapshot is released after it.
  std::shared_ptr<const Snapshot> replaced;
  std::lock_guard<std::mutex> lock(mu_);
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
  replaced = std::exchange(current_, std::move(snapshot));
  generation_.fetch_add(1, std::memory_order_release);
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
