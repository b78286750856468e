#include "edge/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <utility>

#include "contract/sparkplug/topic.h"
#include "core/config.h"
#include "mqtt/config.h"

namespace kiln::edge {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

void CheckId(const ConfigTable& table, std::string_view key, const std::optional<std::string>& id) {
  if (!id) return;
  Status s = sparkplug::ValidateId(*id, key);
  if (!s.ok()) table.Error(key, s.message());
}

// The write rules of one [[devices.tags]] table; what needs the whole device (the interlock's
// tag, the register) is checked by CheckWriteRules.
void ParseWriteRules(const ConfigTable& t, WriteRules& w) {
  w.writable = t.GetBool("writable", false);
  for (auto [key, bound] : {std::pair{"min", &w.min}, std::pair{"max", &w.max}}) {
    if (auto v = t.GetDouble(key)) {
      if (!std::isfinite(*v)) {
        t.Error(key, "must be a finite number");
      } else {
        *bound = *v;
      }
    }
  }
  if (w.min && w.max && *w.min > *w.max) {
    t.Error("min", fmt::format("min {} is above max {}", *w.min, *w.max));
  }
  if (auto i = t.GetDuration("min_write_interval")) w.min_write_interval = *i;
  if (auto lock = t.GetTable("interlock")) {
    lock->RejectUnknownKeys({"tag", "equals"});
    auto tag = lock->RequireString("tag");
    std::optional<double> equals;
    if (!lock->Has("equals")) {
      lock->Error("equals", "missing required key (a number; 1 or 0 for a bool tag)");
    } else if ((equals = lock->GetDouble("equals")) && !std::isfinite(*equals)) {
      lock->Error("equals", "must be a finite number");
      equals.reset();
    }
    if (tag && equals) w.interlock = Interlock{*tag, *equals};
  }
  if (!w.writable) {
    for (std::string_view key : {"min", "max", "min_write_interval", "interlock"}) {
      if (t.Has(key)) t.Error(key, "only for writable tags (add writable = true)");
    }
  }
}

// Returns the [[devices.tags]] tables, in file order, for CheckWriteRules.
std::vector<ConfigTable> ParseTags(const ConfigTable& device, DeviceConfig& dev,
                                   const std::vector<std::string_view>& driver_keys,
                                   contract::TagId& next_id, EdgeConfig& cfg) {
  std::vector<std::string_view> known = {"name",     "unit", "deadband", "heartbeat_s",
                                         "writable", "min",  "max",      "min_write_interval",
                                         "interlock"};
  for (auto k : driver_keys) known.push_back(k);
  std::map<std::string, std::string> lower_names;
  std::set<std::string> names;
  auto tables = device.GetTableArray("tags");
  if (tables.empty()) device.Error("tags", "a device needs at least one [[devices.tags]]");
  for (size_t i = 0; i < tables.size(); ++i) {
    const ConfigTable& t = tables[i];
    t.RejectUnknownKeys(known);
    TagConfig tag;
    tag.id = next_id++;
    if (auto name = t.RequireString("name")) {
      tag.name = *name;
      if (name->empty()) t.Error("name", "must not be empty");
      if (!names.insert(*name).second) {
        t.Error("name", fmt::format("duplicate tag name '{}' in device '{}'", *name, dev.id));
      } else if (auto [it, fresh] = lower_names.emplace(Lower(*name), *name); !fresh) {
        cfg.warnings.push_back(
            fmt::format("{}: tags '{}' and '{}' of device '{}' differ only in case", t.path(),
                        it->second, *name, dev.id));
      }
    }
    tag.unit = t.GetString("unit", "");
    tag.deadband = t.GetDouble("deadband", 0.0);
    if (tag.deadband < 0) t.Error("deadband", "must not be negative");
    if (auto hb = t.GetDouble("heartbeat_s")) {
      if (!(*hb >= 0.01 && *hb <= 86400 * 365)) {
        t.Error("heartbeat_s", "must be between 0.01 and 31536000 seconds");
      } else {
        tag.heartbeat = std::chrono::milliseconds(static_cast<int64_t>(*hb * 1000));
      }
    }
    ParseWriteRules(t, tag.write);
    dev.tags.push_back(std::move(tag));
  }
  return tables;
}

// The write rules that need the whole device: the interlock names another tag of it (a bool
// one compares with 1 or 0), min/max are for numeric tags, and a Modbus tag is writable only
// on a table Modbus can write (holding registers and coils).
void CheckWriteRules(const std::vector<ConfigTable>& tables, const DeviceConfig& dev, bool modbus) {
  using drivers::modbus::RegisterKind;
  for (size_t i = 0; i < tables.size() && i < dev.tags.size(); ++i) {
    const ConfigTable& t = tables[i];
    const TagConfig& tag = dev.tags[i];
    const WriteRules& w = tag.write;
    if (w.writable && modbus && i < dev.modbus.tags.size()) {
      const drivers::modbus::ModbusTag& m = dev.modbus.tags[i];
      const std::string reg = drivers::modbus::FormatRegister(m.kind, m.address);
      if (m.kind == RegisterKind::kInputRegister) {
        t.Error("writable", fmt::format("{} is an input register, which Modbus cannot write (only "
                                        "holding registers and coils can be written)",
                                        reg));
      } else if (m.kind == RegisterKind::kDiscreteInput) {
        t.Error("writable", fmt::format("{} is a discrete input, which Modbus cannot write (only "
                                        "holding registers and coils can be written)",
                                        reg));
      }
    }
    if (tag.type == contract::ValueType::kBool) {
      for (std::string_view key : {"min", "max"}) {
        if (t.Has(key)) t.Error(key, "not for bool tags");
      }
    }
    if (!w.interlock) continue;
    auto lock = t.GetTable("interlock");
    if (!lock) continue;
    const auto other = std::find_if(dev.tags.begin(), dev.tags.end(),
                                    [&](const TagConfig& o) { return o.name == w.interlock->tag; });
    if (w.interlock->tag == tag.name) {
      lock->Error("tag", "must name another tag of the device, not the tag itself");
    } else if (other == dev.tags.end()) {
      lock->Error("tag", fmt::format("no tag '{}' in device '{}'", w.interlock->tag, dev.id));
    } else if (other->type == contract::ValueType::kBool && w.interlock->equals != 0 &&
               w.interlock->equals != 1) {
      lock->Error("equals", fmt::format("'{}' is a bool tag: equals must be 1 (true) or 0 (false)",
                                        other->name));
    }
  }
}

void ParseStore(const ConfigTable& t, EdgeConfig& cfg) {
  t.RejectUnknownKeys({"path", "max_bytes", "max_age", "segment_bytes", "fsync", "fsync_interval",
                       "fsync_batch", "compression", "replay_rate"});
  cfg.state_dir = t.GetString("path", "");
  queue::JournalOptions& j = cfg.journal;
  if (cfg.state_dir.empty()) {
    for (std::string_view key : {"max_bytes", "max_age", "segment_bytes", "fsync", "compression"}) {
      if (t.Has(key)) t.Error(key, "needs [store] path (without it samples are kept in memory)");
    }
  }
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  if (auto b = t.GetByteSize("max_bytes")) {
    if (*b < kMiB) {
      t.Error("max_bytes", "must be at least 1MiB");
    } else {
      j.max_bytes = *b;
    }
  }
  if (auto a = t.GetDuration("max_age", std::chrono::seconds(1))) {
    if (*a < std::chrono::minutes(1)) {
      t.Error("max_age", "must be at least 1 minute");
    } else {
      j.max_age = std::chrono::duration_cast<std::chrono::seconds>(*a);
    }
  }
  if (auto b = t.GetByteSize("segment_bytes")) {
    if (*b < 64 * 1024 || *b > 1024 * kMiB || *b % 4096 != 0) {
      t.Error("segment_bytes", "must be a multiple of 4KiB between 64KiB and 1GiB");
    } else if (*b * 3 > j.max_bytes) {
      t.Error("segment_bytes", "max_bytes must hold at least 3 segments");
    } else {
      j.segment_bytes = *b;
    }
  }
  const std::string fsync = t.GetString("fsync", "interval");
  if (fsync == "interval") {
    j.sync = queue::SyncPolicy::kInterval;
  } else if (fsync == "batch") {
    j.sync = queue::SyncPolicy::kBatch;
  } else if (fsync == "always") {
    j.sync = queue::SyncPolicy::kAlways;
  } else {
    t.Error("fsync", fmt::format("'{}' is not interval, batch or always", fsync));
  }
  if (auto i = t.GetDuration("fsync_interval")) {
    if (*i < std::chrono::milliseconds(1) || *i > std::chrono::minutes(1)) {
      t.Error("fsync_interval", "must be between 1ms and 1m");
    } else {
      j.sync_interval = *i;
    }
  }
  j.sync_batch = static_cast<size_t>(t.GetInt("fsync_batch", 1000, 1, 1000000));
  const std::string compression = t.GetString("compression", "none");
  if (compression == "zstd") {
    j.compress = true;
  } else if (compression != "none") {
    t.Error("compression", fmt::format("'{}' is not none or zstd", compression));
  }
  if (auto r = t.GetDouble("replay_rate")) {
    if (*r < 1) {
      t.Error("replay_rate", "must be at least 1 sample per second");
    } else {
      cfg.replay_rate = *r;
    }
  }
}

}  // namespace

uint64_t TagFingerprint(const EdgeConfig& config) {
  // FNV-1a over "device\0tag\0type\0" in id order: stable across runs and builds.
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
    h ^= 0;
    h *= 0x100000001b3ULL;
  };
  for (const auto& d : config.devices) {
    for (const auto& t : d.tags) {
      mix(d.id);
      mix(t.name);
      mix(contract::ValueTypeName(t.type));
    }
  }
  return h;
}

namespace {

Result<EdgeConfig> FromDocument(ConfigDocument& doc) {
  ConfigTable root = doc.root();
  EdgeConfig cfg;
  cfg.file = doc.file();
  root.RejectUnknownKeys({"node", "mqtt", "http", "store", "queue", "log", "sparkplug", "devices"});

  if (auto node = root.GetTable("node")) {
    node->RejectUnknownKeys({"group_id", "edge_node_id"});
    auto group = node->RequireString("group_id");
    auto edge = node->RequireString("edge_node_id");
    CheckId(*node, "group_id", group);
    CheckId(*node, "edge_node_id", edge);
    cfg.group_id = group.value_or("");
    cfg.edge_node_id = edge.value_or("");
  } else {
    root.Error("node", "missing required table [node] with group_id and edge_node_id");
  }
  if (auto m = root.GetTable("mqtt")) {
    cfg.mqtt_url = mqtt::ParseMqttTable(*m, cfg.mqtt);
  } else {
    root.Error("mqtt", "missing required table [mqtt] with url");
  }
  if (cfg.mqtt.client_id.empty()) {
    cfg.mqtt.client_id = fmt::format("kiln-edge:{}:{}", cfg.group_id, cfg.edge_node_id);
  }
  if (auto h = root.GetTable("http")) {
    h->RejectUnknownKeys({"listen"});
    cfg.http_listen = h->GetString("listen", cfg.http_listen);
  }
  if (auto s = root.GetTable("store")) ParseStore(*s, cfg);
  if (auto q = root.GetTable("queue")) {
    q->RejectUnknownKeys({"max_samples"});
    cfg.queue_max_samples = static_cast<size_t>(q->GetInt("max_samples", 100000, 1, 100000000));
  }
  if (auto sp = root.GetTable("sparkplug")) {
    sp->RejectUnknownKeys({"max_metrics_per_message", "primary_host_id"});
    cfg.max_metrics_per_message =
        static_cast<size_t>(sp->GetInt("max_metrics_per_message", 1000, 1, 100000));
    auto host = sp->GetString("primary_host_id");
    CheckId(*sp, "primary_host_id", host);
    cfg.primary_host_id = host.value_or("");
  }
  if (auto l = root.GetTable("log")) {
    l->RejectUnknownKeys({"level"});
    if (auto level = l->GetString("level"); level && !ParseLogLevel(*level, cfg.log_level)) {
      l->Error("level", fmt::format("'{}' is not one of debug, info, warning, error", *level));
    }
  }

  // Each driver has its own device and tag keys besides the common ones.
  auto with = [](std::vector<std::string_view> keys, const std::vector<std::string_view>& more) {
    for (auto k : more) {
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    }
    return keys;
  };
  const std::vector<std::string_view> common_keys = {"id", "driver", "poll_ms", "tags"};
  const std::vector<std::string_view> modbus_keys =
      with(common_keys, drivers::modbus::ModbusDeviceKeys());
  const std::vector<std::string_view> opcua_keys =
      with(common_keys, drivers::opcua::OpcUaDeviceKeys());
  std::set<std::string> ids;
  std::map<std::string, std::string> lower_ids;
  contract::TagId next_id = 0;
  for (const ConfigTable& d : root.GetTableArray("devices")) {
    auto driver = d.RequireString("driver");
    const bool modbus = driver && (*driver == "modbus-tcp" || *driver == "modbus-rtu");
    const bool opcua = driver && *driver == "opcua";
    if (driver && !modbus && !opcua) {
      d.Error("driver",
              fmt::format("unknown driver '{}' (modbus-tcp, modbus-rtu, opcua)", *driver));
    }
    d.RejectUnknownKeys(opcua ? opcua_keys : modbus ? modbus_keys : with(modbus_keys, opcua_keys));
    DeviceConfig dev;
    dev.driver = driver.value_or("");
    auto id = d.RequireString("id");
    CheckId(d, "id", id);
    dev.id = id.value_or("");
    if (id && !ids.insert(*id).second) {
      d.Error("id", fmt::format("duplicate device id '{}'", *id));
    } else if (id) {
      if (auto [it, fresh] = lower_ids.emplace(Lower(*id), *id); !fresh) {
        cfg.warnings.push_back(
            fmt::format("devices '{}' and '{}' differ only in case", it->second, *id));
      }
    }
    dev.poll = std::chrono::milliseconds(d.GetInt("poll_ms", 1000, 10, 86400000));
    const std::vector<std::string_view>& tag_keys =
        opcua    ? drivers::opcua::OpcUaTagKeys()
        : modbus ? drivers::modbus::ModbusTagKeys()
                 : with(drivers::modbus::ModbusTagKeys(), drivers::opcua::OpcUaTagKeys());
    const std::vector<ConfigTable> tag_tables = ParseTags(d, dev, tag_keys, next_id, cfg);
    if (opcua) {
      dev.opcua = drivers::opcua::ParseOpcUaDevice(d);
      dev.opcua.poll = dev.poll;
      for (size_t i = 0; i < dev.tags.size() && i < dev.opcua.tags.size(); ++i) {
        drivers::opcua::OpcUaTag& tag = dev.opcua.tags[i];
        tag.id = dev.tags[i].id;
        tag.name = dev.tags[i].name;
        tag.deadband = dev.tags[i].deadband;
        dev.tags[i].type = tag.type;
      }
    }
    if (modbus) {
      dev.modbus = drivers::modbus::ParseModbusDevice(d);
      // The Modbus parser reads the same tags in the same order.
      for (size_t i = 0; i < dev.tags.size() && i < dev.modbus.tags.size(); ++i) {
        dev.modbus.tags[i].id = dev.tags[i].id;
        dev.tags[i].type = drivers::modbus::PublishedType(dev.modbus.tags[i]);
      }
    }
    CheckWriteRules(tag_tables, dev, modbus);
    cfg.devices.push_back(std::move(dev));
  }
  KILN_RETURN_IF_ERROR(doc.ToStatus());
  return cfg;
}

}  // namespace

Result<EdgeConfig> ParseEdgeConfig(std::string_view text, const std::string& file_name) {
  KILN_ASSIGN_OR_RETURN(auto doc, ConfigDocument::Parse(text, file_name));
  return FromDocument(*doc);
}

Result<EdgeConfig> LoadEdgeConfig(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto doc, ConfigDocument::Load(path));
  return FromDocument(*doc);
}

}  // namespace kiln::edge
