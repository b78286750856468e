#include "server/config.h"

#include <fmt/format.h>

#include "contract/sparkplug/topic.h"
#include "core/config.h"
#include "mqtt/config.h"

namespace kiln::server {

namespace {

Result<ServerConfig> FromDocument(ConfigDocument& doc) {
  ServerConfig cfg;
  const ConfigTable root = doc.root();
  root.RejectUnknownKeys({"mqtt", "sparkplug", "storage", "http", "log"});
  if (auto m = root.GetTable("mqtt")) {
    cfg.mqtt_url = mqtt::ParseMqttTable(*m, cfg.mqtt);
  } else {
    root.Error("mqtt", "missing required table [mqtt] with url");
  }
  if (auto sp = root.GetTable("sparkplug")) {
    sp->RejectUnknownKeys({"host_id", "groups", "reorder_timeout", "rebirth_debounce"});
    if (auto id = sp->RequireString("host_id")) {
      Status s = sparkplug::ValidateId(*id, "host_id");
      if (!s.ok()) sp->Error("host_id", s.message());
      cfg.host_id = *id;
    }
    for (const std::string& g : sp->GetStringArray("groups")) {
      Status s = sparkplug::ValidateId(g, "group");
      if (!s.ok()) sp->Error("groups", s.message());
      cfg.groups.push_back(g);
    }
    if (auto d = sp->GetDuration("reorder_timeout")) cfg.host.reorder_timeout = *d;
    if (auto d = sp->GetDuration("rebirth_debounce")) cfg.host.rebirth_debounce = *d;
  } else {
    root.Error("sparkplug", "missing required table [sparkplug] with host_id");
  }
  if (cfg.mqtt.client_id.empty()) cfg.mqtt.client_id = fmt::format("kiln-server:{}", cfg.host_id);
  if (auto st = root.GetTable("storage")) {
    st->RejectUnknownKeys({"path", "retention", "wal_sync", "wal_sync_interval"});
    cfg.storage_path = st->RequireString("path").value_or("");
    if (auto d = st->GetDuration("retention")) cfg.retention = *d;
    if (auto mode = st->GetString("wal_sync")) {
      if (*mode == "interval") {
        cfg.wal_sync = historian::WalSync::kInterval;
      } else if (*mode == "always") {
        cfg.wal_sync = historian::WalSync::kAlways;
      } else if (*mode == "never") {
        cfg.wal_sync = historian::WalSync::kNever;
      } else {
        st->Error("wal_sync", fmt::format("'{}' is not one of interval, always, never", *mode));
      }
    }
    if (auto d = st->GetDuration("wal_sync_interval")) cfg.wal_sync_interval = *d;
  } else {
    root.Error("storage", "missing required table [storage] with path");
  }
  if (auto h = root.GetTable("http")) {
    h->RejectUnknownKeys({"listen"});
    cfg.http_listen = h->GetString("listen", cfg.http_listen);
  }
  if (auto l = root.GetTable("log")) {
    l->RejectUnknownKeys({"level"});
    if (auto level = l->GetString("level"); level && !ParseLogLevel(*level, cfg.log_level)) {
      l->Error("level", fmt::format("'{}' is not one of debug, info, warning, error", *level));
    }
  }
  KILN_RETURN_IF_ERROR(doc.ToStatus());
  return cfg;
}

}  // namespace

Result<ServerConfig> ParseServerConfig(std::string_view text, const std::string& file_name) {
  KILN_ASSIGN_OR_RETURN(auto doc, ConfigDocument::Parse(text, file_name));
  return FromDocument(*doc);
}

Result<ServerConfig> LoadServerConfig(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto doc, ConfigDocument::Load(path));
  return FromDocument(*doc);
}

}  // namespace kiln::server
