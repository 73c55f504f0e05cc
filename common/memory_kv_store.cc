#include <algorithm>
#include <map>
#include <memory>
#include <mutex>

#include "common/kv_store.h"

namespace geoledger {
namespace {

class MemoryKvStore final : public KvStore {
 public:
  StatusOr<std::optional<std::string>> Get(std::string_view ns,
                                           std::string_view key) const override {
    std::lock_guard<std::mutex> lock(mu_);
    auto nit = data_.find(std::string(ns));
    if (nit == data_.end()) return std::optional<std::string>();
    auto it = nit->second.find(std::string(key));
    if (it == nit->second.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }

  Status Sync() override { return Status::Ok(); }  // nothing to make durable

  Status Write(const KvBatch& batch, bool /*sync*/) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& op : batch.ops()) {
      if (op.is_delete) data_[op.ns].erase(op.key);
      else data_[op.ns][op.key] = op.value;
    }
    return Status::Ok();
  }

  Status PurgeDeleted(std::string_view) override { return Status::Ok(); }  // nothing persists

  Status ScanFrom(std::string_view ns, std::string_view prefix, std::string_view start,
                  const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    std::vector<std::pair<std::string, std::string>> rows;
    {
      std::lock_guard<std::mutex> lock(mu_);
      rows = Rows(data_, ns, prefix, start);
    }
    for (const auto& [k, v] : rows)
      if (!fn(k, v)) break;
    return Status::Ok();
  }

  Status ScanBackFrom(std::string_view ns, std::string_view prefix, std::string_view before,
                      const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    std::vector<std::pair<std::string, std::string>> rows;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto nit = data_.find(std::string(ns));
      if (nit == data_.end()) return Status::Ok();
      const auto& m = nit->second;
      const std::string bound = BackwardScanBound(prefix, before);
      auto it = bound.empty() ? m.end() : m.lower_bound(bound);
      while (it != m.begin()) {
        --it;
        if (it->first.compare(0, prefix.size(), prefix) != 0) break;  // below every key with the prefix
        rows.emplace_back(it->first, it->second);
      }
    }
    for (const auto& [k, v] : rows)
      if (!fn(k, v)) break;
    return Status::Ok();
  }

  std::unique_ptr<KvSnapshot> Snapshot() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return std::make_unique<Copy>(data_);
  }

 private:
  using Data = std::map<std::string, std::map<std::string, std::string>>;
  // The rows of `ns` from max(prefix, start) that start with `prefix`.
  static std::vector<std::pair<std::string, std::string>> Rows(const Data& data, std::string_view ns,
                                                               std::string_view prefix, std::string_view start) {
    std::vector<std::pair<std::string, std::string>> rows;
    auto nit = data.find(std::string(ns));
    if (nit == data.end()) return rows;
    for (auto it = nit->second.lower_bound(std::string(std::max(prefix, start))); it != nit->second.end(); ++it) {
      if (it->first.compare(0, prefix.size(), prefix) != 0) break;
      rows.emplace_back(it->first, it->second);
    }
    return rows;
  }
  // A snapshot: a copy of everything (tests only; the stores are small).
  class Copy final : public KvSnapshot {
   public:
    explicit Copy(Data data) : data_(std::move(data)) {}
    Status ScanFrom(std::string_view ns, std::string_view prefix, std::string_view start,
                    const std::function<bool(std::string_view, std::string_view)>& fn) const override {
      for (const auto& [k, v] : Rows(data_, ns, prefix, start))
        if (!fn(k, v)) break;
      return Status::Ok();
    }

   private:
    const Data data_;
  };

 private:
  mutable std::mutex mu_;
  Data data_;  // guarded by mu_
};

}  // namespace

std::unique_ptr<KvStore> NewMemoryKvStore() { return std::make_unique<MemoryKvStore>(); }

}  // namespace geoledger
