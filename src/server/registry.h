#pragma once
// Registry: what the platform knows about its edge nodes, devices and metrics — groups,
// nodes, devices, each metric's name, datatype and unit from the births, and who is online
// since when. Kept in memory for the REST API and persisted in SQLite (registry.db) so it
// survives a restart. After a restart every node counts as offline until its next birth
// (the host cannot know what happened meanwhile). Thread-safe: the ingest thread writes,
// REST handlers read snapshots.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/mutex.h"
#include "core/status.h"
#include "server/host.h"

namespace kiln::server {

namespace internal {
class Sqlite;
}  // namespace internal

struct MetricRecord {
  std::string path;
  std::string name;
  std::string datatype;  // Sparkplug datatype name: "Float", "Int16", ...
  std::string unit;      // empty when the birth gave none
};

struct DeviceRecord {
  std::string device;
  bool online = false;
  int64_t since = 0;  // ms: time of the last birth or death
  std::vector<MetricRecord> metrics;
};

struct NodeRecord {
  std::string group;
  std::string node;
  bool online = false;
  int64_t since = 0;
  uint64_t bdseq = 0;
  std::vector<MetricRecord> metrics;  // node metrics
  std::vector<DeviceRecord> devices;  // sorted by id
};

// The Sparkplug name of a datatype ("Float"); "Unknown" for others.
std::string_view DataTypeName(sparkplug::DataType type);

class Registry {
 public:
  // Opens or creates `file` (SQLite). Errors: Unavailable / DataLoss naming the file.
  static Result<std::unique_ptr<Registry>> Open(const std::filesystem::path& file);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // A node (device empty) or device was born with these metrics (replacing those of its
  // previous birth). A node birth marks its devices offline until their own births.
  Status Birth(const NodeKey& node, std::string_view device, uint64_t bdseq,
               std::span<MetricInfo* const> metrics, int64_t t_ms);
  // A node (with its devices) or a device went offline.
  Status Death(const NodeKey& node, std::string_view device, int64_t t_ms);

  std::vector<NodeRecord> Nodes() const;  // sorted by group, node
  std::optional<NodeRecord> Node(std::string_view group, std::string_view node) const;
  // Every metric whose path starts with `prefix`, sorted by path.
  std::vector<MetricRecord> Metrics(std::string_view prefix) const;

 private:
  explicit Registry(std::unique_ptr<internal::Sqlite> db);
  Status Load();

  std::unique_ptr<internal::Sqlite> db_;  // used under mu_
  mutable Mutex mu_;
  std::map<std::pair<std::string, std::string>, NodeRecord> nodes_ KILN_GUARDED_BY(mu_);
};

}  // namespace kiln::server
