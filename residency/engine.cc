#include "residency/engine.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace geoledger::residency {
namespace internal {

// One thread's reads of one engine (engine.h). `epoch` and `depth` are
// written only by the owning thread; the release thread reads `epoch`.
struct ReaderSlot {
  static constexpr uint64_t kQuiescent = UINT64_MAX;
  // The generation the outermost read began in; kQuiescent between reads.
  std::atomic<uint64_t> epoch{kQuiescent};
  uint32_t depth = 0;             // reads open on this slot (they nest)
  // A live thread reads through it. Claimed under the engine's mutex;
  // cleared by the exiting thread (its reads all ended).
  std::atomic<bool> owned{false};
  std::atomic<bool> engine_alive{true};
};

}  // namespace internal
namespace {

using internal::ReaderSlot;

std::atomic<uint64_t> g_next_engine_id{1};

// This thread's slots, most recently used first. When the thread exits its
// slots become free for other threads. (No read may be made from a
// thread_local destructor that can run after this one.)
struct ThreadSlots {
  struct Entry {
    uint64_t engine_id;
    std::shared_ptr<ReaderSlot> slot;
  };
  std::vector<Entry> entries;
  ~ThreadSlots() {
    for (Entry& e : entries) e.slot->owned.store(false, std::memory_order_release);
  }
};
thread_local ThreadSlots t_slots;

}  // namespace

Engine::Read::~Read() {
  if (--slot_->depth == 0) slot_->epoch.store(ReaderSlot::kQuiescent, std::memory_order_release);
}

Engine::Engine(Options options)
    : id_(g_next_engine_id.fetch_add(1)),
      rules_(options.rules),
      jurisdictions_(std::move(options.jurisdictions)),
      pool_(std::make_shared<StringPool>()) {}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& slot : slots_) slot->engine_alive.store(false, std::memory_order_release);
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
  engine->active_.store(engine->current_.get(), std::memory_order_seq_cst);
  if (background) engine->releaser_ = std::thread([e = engine.get()] { e->ReleaseLoop(); });
  return engine;
}

size_t Engine::ReleaseRetired() {
  std::vector<std::shared_ptr<const Snapshot>> unused;  // freed after the lock
  std::lock_guard<std::mutex> lock(mu_);
  // The oldest generation a read in progress began in. A read that began in
  // generation g can see only snapshots replaced after g (Pin). The loads
  // are sequentially consistent with Pin's publication and Install's store
  // of active_: a read this scan misses began after the replacement, and
  // loaded the newer snapshot.
  uint64_t oldest = ReaderSlot::kQuiescent;
  for (const auto& slot : slots_) oldest = std::min(oldest, slot->epoch.load(std::memory_order_seq_cst));
  // A Current() copy holds a reference of its own; no new one can be taken
  // of a snapshot that is no longer active.
  for (Retired& r : retired_)
    if (r.replaced_at <= oldest && r.snapshot.use_count() == 1) unused.push_back(std::move(r.snapshot));
  std::erase_if(retired_, [](const Retired& r) { return r.snapshot == nullptr; });
  return retired_.size();
}

void Engine::ReleaseLoop() {
  // The end of a read and the drop of a Current() copy are not signalled,
  // so retired snapshots still held are polled for. Reads are short, so the
  // first or second try usually frees a snapshot.
  constexpr auto kPoll = std::chrono::milliseconds(10);
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

size_t Engine::reader_slots() const {
  std::lock_guard<std::mutex> lock(mu_);
  return slots_.size();
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
  // active_ before the generation: a read that sees the new generation
  // sees the new snapshot (Pin).
  active_.store(snapshot.get(), std::memory_order_seq_cst);
  const uint64_t replaced_at = generation_.fetch_add(1, std::memory_order_release) + 1;
  retired_.push_back({std::exchange(current_, std::move(snapshot)), replaced_at});
  lock.unlock();
  retired_cv_.notify_all();
  return Status::Ok();
}

ReaderSlot* Engine::Slot() const {
  auto& entries = t_slots.entries;
  if (!entries.empty() && entries.front().engine_id == id_) [[likely]]
    return entries.front().slot.get();
  return RegisterSlot();
}

ReaderSlot* Engine::RegisterSlot() const {
  auto& entries = t_slots.entries;
  // Slots of engines that are gone (no read can be open on them).
  std::erase_if(entries, [](const ThreadSlots::Entry& e) {
    return !e.slot->engine_alive.load(std::memory_order_acquire);
  });
  auto it = std::find_if(entries.begin(), entries.end(),
                         [this](const ThreadSlots::Entry& e) { return e.engine_id == id_; });
  if (it != entries.end()) {
    std::rotate(entries.begin(), it, it + 1);
    return entries.front().slot.get();
  }
  std::shared_ptr<ReaderSlot> slot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A slot left by a thread that exited: quiescent, no reads open.
    for (const auto& s : slots_)
      if (!s->owned.load(std::memory_order_acquire)) {
        slot = s;
        break;
      }
    if (!slot) slot = slots_.emplace_back(std::make_shared<ReaderSlot>());
    slot->owned.store(true, std::memory_order_relaxed);
  }
  entries.insert(entries.begin(), {id_, slot});
  return slot.get();
}

Engine::Read Engine::Pin() const {
  ReaderSlot* slot = Slot();
  if (slot->depth++ == 0) {
    // Publish the generation, then load the snapshot (both sequentially
    // consistent; ReleaseRetired). Install stores active_ before bumping
    // the generation, so the snapshot loaded was active in this generation
    // or a later one, and was not replaced before it.
    slot->epoch.store(generation_.load(std::memory_order_acquire), std::memory_order_seq_cst);
  }
  // A nested read may load a newer snapshot than the outer one: it too was
  // replaced (if at all) after the published generation.
  return Read(slot, active_.load(std::memory_order_seq_cst));
}

OwnedDecision Engine::Decide(std::string_view tenant, std::string_view category,
                             std::string_view operation, std::string_view region,
                             int64_t unix_seconds) const {
  const Read read = Pin();
  return OwnedDecision(read->Decide(tenant, category, operation, region, unix_seconds));
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
