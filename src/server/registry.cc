#include "server/registry.h"

#include <fmt/format.h>

#include <algorithm>

#include "server/internal/sqlite.h"

namespace kiln::server {

namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups(
  group_id TEXT PRIMARY KEY,
  first_seen INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS nodes(
  group_id TEXT NOT NULL,
  node_id TEXT NOT NULL,
  online INTEGER NOT NULL,
  since INTEGER NOT NULL,
  bdseq INTEGER NOT NULL,
  PRIMARY KEY(group_id, node_id));
CREATE TABLE IF NOT EXISTS devices(
  group_id TEXT NOT NULL,
  node_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  online INTEGER NOT NULL,
  since INTEGER NOT NULL,
  PRIMARY KEY(group_id, node_id, device_id));
CREATE TABLE IF NOT EXISTS metrics(
  group_id TEXT NOT NULL,
  node_id TEXT NOT NULL,
  device_id TEXT NOT NULL,  -- '' for node metrics
  name TEXT NOT NULL,
  path TEXT NOT NULL,
  datatype TEXT NOT NULL,
  unit TEXT NOT NULL,
  ord INTEGER NOT NULL,     -- position in the birth
  PRIMARY KEY(group_id, node_id, device_id, name));
)sql";

}  // namespace

std::string_view DataTypeName(sparkplug::DataType type) {
  using sparkplug::DataType;
  switch (type) {
    case DataType::kInt8:
      return "Int8";
    case DataType::kInt16:
      return "Int16";
    case DataType::kInt32:
      return "Int32";
    case DataType::kInt64:
      return "Int64";
    case DataType::kUInt8:
      return "UInt8";
    case DataType::kUInt16:
      return "UInt16";
    case DataType::kUInt32:
      return "UInt32";
    case DataType::kUInt64:
      return "UInt64";
    case DataType::kFloat:
      return "Float";
    case DataType::kDouble:
      return "Double";
    case DataType::kBoolean:
      return "Boolean";
    case DataType::kString:
      return "String";
    case DataType::kDateTime:
      return "DateTime";
    case DataType::kText:
      return "Text";
    case DataType::kUUID:
      return "UUID";
    case DataType::kDataSet:
      return "DataSet";
    case DataType::kBytes:
      return "Bytes";
    case DataType::kFile:
      return "File";
    case DataType::kTemplate:
      return "Template";
    case DataType::kPropertySet:
      return "PropertySet";
    case DataType::kPropertySetList:
      return "PropertySetList";
    default:
      return "Unknown";
  }
}

Registry::Registry(std::unique_ptr<internal::Sqlite> db) : db_(std::move(db)) {}
Registry::~Registry() = default;

Result<std::unique_ptr<Registry>> Registry::Open(const std::filesystem::path& file) {
  // The registry is rebuilt by births after a loss, so NORMAL (no fsync per commit) is
  // enough; WAL keeps readers off the writer's back.
  KILN_ASSIGN_OR_RETURN(auto db, internal::Sqlite::Open(file, /*synchronous_full=*/false));
  KILN_RETURN_IF_ERROR(db->Exec(kSchema));
  KILN_RETURN_IF_ERROR(db->Run("INSERT OR IGNORE INTO meta(key, value) VALUES('schema', ?)",
                               std::to_string(kSchemaVersion)));
  std::unique_ptr<Registry> registry(new Registry(std::move(db)));
  KILN_RETURN_IF_ERROR(registry->Load());
  return registry;
}

Status Registry::Load() {
  MutexLock lock(mu_);
  using internal::Sqlite;
  // Nothing is online after a restart until it is born again.
  KILN_RETURN_IF_ERROR(
      db_->Query("SELECT group_id, node_id, since, bdseq FROM nodes", [&](sqlite3_stmt* s) {
        NodeRecord n;
        n.group = Sqlite::Text(s, 0);
        n.node = Sqlite::Text(s, 1);
        n.since = sqlite3_column_int64(s, 2);
        n.bdseq = static_cast<uint64_t>(sqlite3_column_int64(s, 3));
        nodes_[{n.group, n.node}] = std::move(n);
      }));
  KILN_RETURN_IF_ERROR(
      db_->Query("SELECT group_id, node_id, device_id, since FROM devices ORDER BY device_id",
                 [&](sqlite3_stmt* s) {
                   auto it = nodes_.find({Sqlite::Text(s, 0), Sqlite::Text(s, 1)});
                   if (it == nodes_.end()) return;
                   DeviceRecord d;
                   d.device = Sqlite::Text(s, 2);
                   d.since = sqlite3_column_int64(s, 3);
                   it->second.devices.push_back(std::move(d));
                 }));
  KILN_RETURN_IF_ERROR(
      db_->Query("SELECT group_id, node_id, device_id, name, path, datatype, unit FROM metrics "
                 "ORDER BY group_id, node_id, device_id, ord",
                 [&](sqlite3_stmt* s) {
                   auto it = nodes_.find({Sqlite::Text(s, 0), Sqlite::Text(s, 1)});
                   if (it == nodes_.end()) return;
                   const std::string device = Sqlite::Text(s, 2);
                   MetricRecord m{Sqlite::Text(s, 4), Sqlite::Text(s, 3), Sqlite::Text(s, 5),
                                  Sqlite::Text(s, 6)};
                   if (device.empty()) {
                     it->second.metrics.push_back(std::move(m));
                     return;
                   }
                   for (auto& d : it->second.devices) {
                     if (d.device == device) d.metrics.push_back(std::move(m));
                   }
                 }));
  return db_->Exec("UPDATE nodes SET online = 0; UPDATE devices SET online = 0;");
}

Status Registry::Birth(const NodeKey& key, std::string_view device, uint64_t bdseq,
                       std::span<MetricInfo* const> metrics, int64_t t_ms) {
  std::vector<MetricRecord> records;
  records.reserve(metrics.size());
  for (const MetricInfo* m : metrics) {
    records.push_back({m->path, m->name, std::string(DataTypeName(m->datatype)), m->unit});
  }
  MutexLock lock(mu_);
  NodeRecord& node = nodes_[{key.group, key.node}];
  node.group = key.group;
  node.node = key.node;
  internal::Sqlite& db = *db_;
  KILN_RETURN_IF_ERROR(db.Exec("BEGIN"));
  auto rollback = [&](Status s) {
    db.Exec("ROLLBACK").IgnoreError();
    return s;
  };
  Status s =
      db.Run("INSERT OR IGNORE INTO groups(group_id, first_seen) VALUES(?, ?)", key.group, t_ms);
  if (device.empty()) {
    node.online = true;
    node.since = t_ms;
    node.bdseq = bdseq;
    node.metrics = records;
    for (auto& d : node.devices) {
      d.online = false;
      d.since = t_ms;
    }
    if (s.ok()) {
      s = db.Run(
          "INSERT INTO nodes(group_id, node_id, online, since, bdseq) VALUES(?, ?, 1, ?, ?) "
          "ON CONFLICT(group_id, node_id) DO UPDATE SET online = 1, since = excluded.since, "
          "bdseq = excluded.bdseq",
          key.group, key.node, t_ms, static_cast<int64_t>(bdseq));
    }
    if (s.ok()) {
      s = db.Run("UPDATE devices SET online = 0, since = ? WHERE group_id = ? AND node_id = ?",
                 t_ms, key.group, key.node);
    }
  } else {
    auto it =
        std::lower_bound(node.devices.begin(), node.devices.end(), device,
                         [](const DeviceRecord& d, std::string_view id) { return d.device < id; });
    if (it == node.devices.end() || it->device != device) {
      it = node.devices.insert(it, DeviceRecord{std::string(device), false, 0, {}});
    }
    it->online = true;
    it->since = t_ms;
    it->metrics = records;
    if (s.ok()) {
      s = db.Run(
          "INSERT INTO devices(group_id, node_id, device_id, online, since) VALUES(?, ?, ?, 1, ?) "
          "ON CONFLICT(group_id, node_id, device_id) DO UPDATE SET online = 1, "
          "since = excluded.since",
          key.group, key.node, device, t_ms);
    }
  }
  if (s.ok()) {
    s = db.Run("DELETE FROM metrics WHERE group_id = ? AND node_id = ? AND device_id = ?",
               key.group, key.node, device);
  }
  for (size_t i = 0; s.ok() && i < records.size(); ++i) {
    const MetricRecord& m = records[i];
    s = db.Run(
        "INSERT OR REPLACE INTO metrics(group_id, node_id, device_id, name, path, datatype, "
        "unit, ord) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
        key.group, key.node, device, m.name, m.path, m.datatype, m.unit, static_cast<int64_t>(i));
  }
  if (!s.ok()) return rollback(s);
  return db.Exec("COMMIT");
}

Status Registry::Death(const NodeKey& key, std::string_view device, int64_t t_ms) {
  MutexLock lock(mu_);
  auto it = nodes_.find({key.group, key.node});
  if (it == nodes_.end()) return OkStatus();
  NodeRecord& node = it->second;
  if (device.empty()) {
    node.online = false;
    node.since = t_ms;
    for (auto& d : node.devices) {
      if (d.online) {
        d.online = false;
        d.since = t_ms;
      }
    }
    KILN_RETURN_IF_ERROR(
        db_->Run("UPDATE nodes SET online = 0, since = ? WHERE group_id = ? AND node_id = ?", t_ms,
                 key.group, key.node));
    return db_->Run(
        "UPDATE devices SET online = 0, since = ? WHERE group_id = ? AND node_id = ? AND "
        "online = 1",
        t_ms, key.group, key.node);
  }
  for (auto& d : node.devices) {
    if (d.device == device) {
      d.online = false;
      d.since = t_ms;
    }
  }
  return db_->Run(
      "UPDATE devices SET online = 0, since = ? WHERE group_id = ? AND node_id = ? AND "
      "device_id = ?",
      t_ms, key.group, key.node, device);
}

std::vector<NodeRecord> Registry::Nodes() const {
  MutexLock lock(mu_);
  std::vector<NodeRecord> out;
  out.reserve(nodes_.size());
  for (const auto& [key, node] : nodes_) out.push_back(node);
  return out;
}

std::optional<NodeRecord> Registry::Node(std::string_view group, std::string_view node) const {
  MutexLock lock(mu_);
  auto it = nodes_.find({std::string(group), std::string(node)});
  if (it == nodes_.end()) return std::nullopt;
  return it->second;
}

std::vector<MetricRecord> Registry::Metrics(std::string_view prefix) const {
  std::vector<MetricRecord> out;
  {
    MutexLock lock(mu_);
    for (const auto& [key, node] : nodes_) {
      auto take = [&](const std::vector<MetricRecord>& ms) {
        for (const auto& m : ms) {
          if (std::string_view(m.path).substr(0, prefix.size()) == prefix) out.push_back(m);
        }
      };
      take(node.metrics);
      for (const auto& d : node.devices) take(d.metrics);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const MetricRecord& a, const MetricRecord& b) { return a.path < b.path; });
  return out;
}

}  // namespace kiln::server
