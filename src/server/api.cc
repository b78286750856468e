#include "server/api.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

#include "core/config.h"
#include "core/json.h"
#include "core/time_format.h"
#include "web/web_assets.h"

namespace kiln::server {

namespace {

using historian::Aggregate;
using historian::SeriesKind;
using http::Request;
using http::Response;

constexpr size_t kDefaultLimit = 100000;
constexpr size_t kMaxLimit = 1000000;
constexpr int64_t kMaxBuckets = 100000;
constexpr auto kStreamHeartbeat = std::chrono::seconds(15);

// Stable numeric error ids (docs/API.md): 1xxx requests, 3xxx storage.
int ErrorId(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
      return 1001;
    case StatusCode::kNotFound:
      return 1002;
    case StatusCode::kFailedPrecondition:
      return 1003;
    case StatusCode::kUnimplemented:
      return 1004;
    case StatusCode::kResourceExhausted:
      return 1005;
    case StatusCode::kUnavailable:
      return 3001;
    case StatusCode::kDeadlineExceeded:
      return 1006;
    case StatusCode::kDataLoss:
      return 3002;
    default:
      return 1000;  // internal
  }
}

int HttpStatus(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kUnimplemented:
      return 501;
    case StatusCode::kResourceExhausted:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 408;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kUnauthenticated:
      return 401;
    default:
      return 500;
  }
}

Response Json(std::string body, int status = 200) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  r.headers.push_back({"Cache-Control", "no-store"});
  return r;
}

std::string_view Param(const Request& req, std::string_view key) {
  auto it = req.query.find(std::string(key));
  return it == req.query.end() ? std::string_view() : std::string_view(it->second);
}

Result<bool> BoolParam(const Request& req, std::string_view key) {
  const std::string_view v = Param(req, key);
  if (v.empty() || v == "false" || v == "0") return false;
  if (v == "true" || v == "1") return true;
  return InvalidArgumentError(fmt::format("{}={}: expected true or false", key, v));
}

Result<int64_t> TimeParam(const Request& req, std::string_view key, std::string_view fallback,
                          Timestamp now) {
  std::string_view v = Param(req, key);
  if (v.empty()) v = fallback;
  auto t = ParseTimeArg(v, now);
  if (!t.ok()) return t.status().WithContext(std::string(key));
  return ToEpochMillis(*t);
}

// step: milliseconds ("60000") or a duration ("1m").
Result<int64_t> StepParam(std::string_view v) {
  int64_t ms = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), ms);
  if (ec != std::errc() || end != v.data() + v.size()) {
    auto d = ParseDuration(v);
    if (!d.ok()) {
      return InvalidArgumentError(
          fmt::format("step={}: expected milliseconds or a duration such as 1m", v));
    }
    ms = d->count();
  }
  if (ms <= 0) return InvalidArgumentError(fmt::format("step={}: must be positive", v));
  return ms;
}

Result<historian::SeriesInfo> MetricParam(const ApiContext& ctx, const Request& req) {
  const std::string_view path = Param(req, "metric");
  if (path.empty()) {
    return InvalidArgumentError("metric is required: metric=group/node/device/metric");
  }
  auto info = ctx.historian.Find(path);
  if (!info) return NotFoundError(fmt::format("no metric '{}'", path));
  return *info;
}

void WriteNumber(json::Writer& w, const historian::Point& p) {
  if (p.is_null) {
    w.Null();
  } else {
    w.Number(p.v);
  }
}

void WriteLatest(json::Writer& w, const ApiContext& ctx, const historian::SeriesInfo& info,
                 bool good_only) {
  if (info.kind == SeriesKind::kText) {
    auto p = ctx.historian.LatestText(info.id, good_only);
    if (!p) {
      w.Null();
      return;
    }
    w.BeginObject().Key("t").Int(p->t).Key("v");
    if (p->is_null) {
      w.Null();
    } else {
      w.String(p->v);
    }
    w.Key("q").Uint(p->q).EndObject();
    return;
  }
  auto p = ctx.historian.Latest(info.id, good_only);
  if (!p) {
    w.Null();
    return;
  }
  w.BeginObject().Key("t").Int(p->t).Key("v");
  WriteNumber(w, *p);
  w.Key("q").Uint(p->q).EndObject();
}

void WriteMetrics(json::Writer& w, const ApiContext& ctx,
                  const std::vector<MetricRecord>& metrics) {
  w.BeginArray();
  for (const MetricRecord& m : metrics) {
    w.BeginObject().Key("name").String(m.name).Key("path").String(m.path);
    w.Key("datatype").String(m.datatype);
    if (!m.unit.empty()) w.Key("unit").String(m.unit);
    w.Key("latest");
    if (auto info = ctx.historian.Find(m.path)) {
      WriteLatest(w, ctx, *info, false);
    } else {
      w.Null();
    }
    w.EndObject();
  }
  w.EndArray();
}

Response Nodes(const ApiContext& ctx) {
  std::string out;
  json::Writer w(out);
  w.BeginObject().Key("nodes").BeginArray();
  for (const NodeRecord& n : ctx.registry.Nodes()) {
    size_t online = 0;
    size_t metrics = n.metrics.size();
    for (const auto& d : n.devices) {
      online += d.online ? 1 : 0;
      metrics += d.metrics.size();
    }
    w.BeginObject()
        .Key("group")
        .String(n.group)
        .Key("node")
        .String(n.node)
        .Key("online")
        .Bool(n.online)
        .Key("since")
        .Int(n.since)
        .Key("bdseq")
        .Uint(n.bdseq)
        .Key("devices")
        .Uint(n.devices.size())
        .Key("devices_online")
        .Uint(online)
        .Key("metrics")
        .Uint(metrics)
        .EndObject();
  }
  w.EndArray().EndObject();
  return Json(std::move(out));
}

Response Node(const ApiContext& ctx, const Request& req) {
  auto node = ctx.registry.Node(req.params.at("group"), req.params.at("node"));
  if (!node) {
    return ErrorResponse(NotFoundError(
        fmt::format("no edge node '{}/{}'", req.params.at("group"), req.params.at("node"))));
  }
  std::string out;
  json::Writer w(out);
  w.BeginObject()
      .Key("group")
      .String(node->group)
      .Key("node")
      .String(node->node)
      .Key("online")
      .Bool(node->online)
      .Key("since")
      .Int(node->since)
      .Key("bdseq")
      .Uint(node->bdseq)
      .Key("metrics");
  WriteMetrics(w, ctx, node->metrics);
  w.Key("devices").BeginArray();
  for (const DeviceRecord& d : node->devices) {
    w.BeginObject()
        .Key("device")
        .String(d.device)
        .Key("online")
        .Bool(d.online)
        .Key("since")
        .Int(d.since)
        .Key("metrics");
    WriteMetrics(w, ctx, d.metrics);
    w.EndObject();
  }
  w.EndArray().EndObject();
  return Json(std::move(out));
}

Response Metrics(const ApiContext& ctx, const Request& req) {
  std::string out;
  json::Writer w(out);
  w.BeginObject().Key("metrics").BeginArray();
  for (const MetricRecord& m : ctx.registry.Metrics(Param(req, "prefix"))) {
    w.BeginObject().Key("path").String(m.path).Key("datatype").String(m.datatype);
    if (!m.unit.empty()) w.Key("unit").String(m.unit);
    w.EndObject();
  }
  w.EndArray().EndObject();
  return Json(std::move(out));
}

Result<std::string> Query(const ApiContext& ctx, const Request& req) {
  KILN_ASSIGN_OR_RETURN(historian::SeriesInfo info, MetricParam(ctx, req));
  const Timestamp now = ctx.clock.Now();
  KILN_ASSIGN_OR_RETURN(int64_t from, TimeParam(req, "from", "-1h", now));
  KILN_ASSIGN_OR_RETURN(int64_t to, TimeParam(req, "to", "now", now));
  if (to <= from) {
    return InvalidArgumentError(fmt::format("to ({}) must be after from ({})", to, from));
  }
  historian::QueryOptions options;
  KILN_ASSIGN_OR_RETURN(options.good_only, BoolParam(req, "good_only"));
  std::string out;
  json::Writer w(out);
  w.BeginObject().Key("metric").String(info.path);
  const std::string_view step_arg = Param(req, "step");
  const std::string_view agg_arg = Param(req, "agg");
  if (!step_arg.empty() || !agg_arg.empty()) {
    if (step_arg.empty()) return InvalidArgumentError("agg needs a step");
    KILN_ASSIGN_OR_RETURN(int64_t step, StepParam(step_arg));
    if ((to - from) / step > kMaxBuckets) {
      return InvalidArgumentError(fmt::format(
          "step={} makes more than {} buckets; use a larger step", step_arg, kMaxBuckets));
    }
    const auto agg = historian::ParseAggregate(agg_arg.empty() ? "avg" : agg_arg);
    if (!agg) {
      return InvalidArgumentError(
          fmt::format("agg={}: expected avg, min, max, first, last or count", agg_arg));
    }
    KILN_ASSIGN_OR_RETURN(auto buckets,
                          ctx.historian.QueryBuckets(info.id, from, to, step, *agg, options));
    w.Key("step").Int(step).Key("agg").String(historian::AggregateName(*agg));
    w.Key("points").BeginArray();
    for (const auto& b : buckets) {
      w.BeginObject().Key("t").Int(b.start).Key("v").Number(b.value).Key("count").Uint(b.count);
      w.EndObject();
    }
    w.EndArray().EndObject();
    return out;
  }
  size_t limit = kDefaultLimit;
  if (auto l = Param(req, "limit"); !l.empty()) {
    auto [end, ec] = std::from_chars(l.data(), l.data() + l.size(), limit);
    if (ec != std::errc() || end != l.data() + l.size() || limit == 0 || limit > kMaxLimit) {
      return InvalidArgumentError(fmt::format("limit={}: expected 1..{}", l, kMaxLimit));
    }
  }
  options.limit = limit + 1;  // one more tells whether the answer was cut
  bool truncated = false;
  w.Key("points").BeginArray();
  if (info.kind == SeriesKind::kText) {
    KILN_ASSIGN_OR_RETURN(auto points, ctx.historian.QueryText(info.id, from, to, options));
    truncated = points.size() > limit;
    if (truncated) points.resize(limit);
    for (const auto& p : points) {
      w.BeginObject().Key("t").Int(p.t).Key("v");
      if (p.is_null) {
        w.Null();
      } else {
        w.String(p.v);
      }
      w.Key("q").Uint(p.q).EndObject();
    }
  } else {
    KILN_ASSIGN_OR_RETURN(auto points, ctx.historian.QueryRaw(info.id, from, to, options));
    truncated = points.size() > limit;
    if (truncated) points.resize(limit);
    for (const auto& p : points) {
      w.BeginObject().Key("t").Int(p.t).Key("v");
      WriteNumber(w, p);
      w.Key("q").Uint(p.q).EndObject();
    }
  }
  w.EndArray();
  if (truncated) w.Key("truncated").Bool(true);
  w.EndObject();
  return out;
}

Result<std::string> Latest(const ApiContext& ctx, const Request& req) {
  KILN_ASSIGN_OR_RETURN(historian::SeriesInfo info, MetricParam(ctx, req));
  KILN_ASSIGN_OR_RETURN(bool good_only, BoolParam(req, "good_only"));
  std::string latest;
  json::Writer lw(latest);
  WriteLatest(lw, ctx, info, good_only);
  if (latest == "null") {
    return NotFoundError(
        fmt::format("'{}' has no {}value yet", info.path, good_only ? "Good " : ""));
  }
  // {"metric": .., "t": .., "v": .., "q": ..}: the latest object with the path in front.
  std::string out;
  json::Writer w(out);
  w.BeginObject().Key("metric").String(info.path).EndObject();
  out.pop_back();
  out += ",";
  out.append(latest, 1);
  return out;
}

Response Stream(const ApiContext& ctx, const Request& req) {
  Response r;
  r.content_type = "text/event-stream";
  r.headers.push_back({"Cache-Control", "no-store"});
  r.headers.push_back({"X-Accel-Buffering", "no"});
  auto sub = ctx.live.Subscribe(std::string(Param(req, "prefix")));
  r.stream = [sub](http::StreamWriter& writer, std::stop_token stop) {
    if (!writer.Write("retry: 2000\n: connected\n\n")) return;
    std::string buf;
    while (!stop.stop_requested()) {
      uint64_t dropped = 0;
      std::vector<LiveEvent> events = sub->Wait(stop, kStreamHeartbeat, dropped);
      buf.clear();
      if (dropped > 0) buf += fmt::format("event: dropped\ndata: {{\"count\":{}}}\n\n", dropped);
      for (const LiveEvent& e : events) {
        buf += "event: ";
        buf += e.type;
        buf += "\ndata: ";
        buf += e.data;
        buf += "\n\n";
      }
      if (buf.empty()) buf = ": keep-alive\n\n";
      if (!writer.Write(buf)) return;
    }
  };
  return r;
}

Response Health(const ApiContext& ctx) {
  const bool connected = ctx.mqtt_connected();
  size_t online = 0;
  const auto nodes = ctx.registry.Nodes();
  for (const auto& n : nodes) online += n.online ? 1 : 0;
  const auto hs = ctx.historian.stats();
  std::string out;
  json::Writer w(out);
  w.BeginObject()
      .Key("status")
      .String(connected ? "ok" : "degraded")
      .Key("host_id")
      .String(ctx.host_id)
      .Key("mqtt")
      .String(connected ? "connected" : "disconnected")
      .Key("nodes")
      .Uint(nodes.size())
      .Key("nodes_online")
      .Uint(online)
      .Key("series")
      .Uint(hs.series)
      .EndObject();
  return Json(std::move(out), connected ? 200 : 503);
}

void WriteCommand(json::Writer& w, const Command& c) {
  w.BeginObject()
      .Key("id")
      .String(c.id)
      .Key("state")
      .String(CommandStateName(c.state))
      .Key("reason")
      .String(c.reason)
      .Key("target")
      .String(c.target)
      .Key("metric")
      .String(c.metric)
      .Key("value");
  if (const auto* b = c.value.get_if<bool>()) {
    w.Bool(*b);
  } else if (auto d = c.value.AsDouble()) {
    w.Number(*d);
  } else {
    w.Null();
  }
  w.Key("read_back");
  if (c.read_back) {
    w.Number(*c.read_back);
  } else {
    w.Null();
  }
  w.Key("ttl_s").Number(static_cast<double>(c.ttl_ms) / 1000);
  if (!c.idempotency_key.empty()) w.Key("idempotency_key").String(c.idempotency_key);
  w.Key("who").String(c.who);
  w.Key("created").Int(c.created_ms).Key("expires").Int(c.expires_ms);
  w.Key("delivered");
  c.delivered_ms ? w.Int(c.delivered_ms) : w.Null();
  w.Key("finished");
  c.finished_ms ? w.Int(c.finished_ms) : w.Null();
  w.EndObject();
}

Result<CommandService*> Commands(const ApiContext& ctx) {
  if (ctx.commands == nullptr) return UnimplementedError("commands are not enabled");
  return ctx.commands;
}

// POST /api/v1/commands {"target","metric","value","ttl_s","idempotency_key"}
Response PostCommand(const ApiContext& ctx, const Request& req) {
  auto service = Commands(ctx);
  if (!service.ok()) return ErrorResponse(service.status());
  auto doc = json::Parse(req.body);
  if (!doc.ok()) return ErrorResponse(doc.status().WithContext("request body"));
  if (!doc->is_object()) return ErrorResponse(InvalidArgumentError("the body must be an object"));
  CommandRequest r;
  for (const auto& [key, value] : doc->items()) {
    if (key == "target" && value.AsString()) {
      r.target = std::string(*value.AsString());
    } else if (key == "metric" && value.AsString()) {
      r.metric = std::string(*value.AsString());
    } else if (key == "value" && (value.is_number() || value.is_bool())) {
      r.value =
          value.is_bool() ? contract::Value(*value.AsBool()) : contract::Value(*value.AsDouble());
    } else if (key == "ttl_s" && value.AsDouble()) {
      r.ttl = std::chrono::milliseconds(
          static_cast<int64_t>(std::clamp(*value.AsDouble(), -1.0, 1e9) * 1000));
    } else if (key == "idempotency_key" && value.AsString()) {
      r.idempotency_key = std::string(*value.AsString());
    } else {
      return ErrorResponse(InvalidArgumentError(fmt::format(
          "'{}': unknown key or wrong type (target, metric: strings; value: a number or a "
          "boolean; ttl_s: seconds; idempotency_key: a string)",
          key)));
    }
  }
  if (r.target.empty()) return ErrorResponse(InvalidArgumentError("target is required"));
  if (!doc->Find("ttl_s")) return ErrorResponse(InvalidArgumentError("ttl_s is required"));
  auto user = req.headers.find("x-kiln-user");
  r.who = user != req.headers.end() && !user->second.empty()
              ? user->second
              : fmt::format("api@{}", req.remote_address.substr(0, req.remote_address.rfind(':')));
  auto submitted = (*service)->Submit(r);
  if (!submitted.ok()) return ErrorResponse(submitted.status());
  std::string out;
  json::Writer w(out);
  WriteCommand(w, submitted->command);
  Response resp = Json(std::move(out), 202);
  resp.headers.push_back({"Location", "/api/v1/commands/" + submitted->command.id});
  return resp;
}

Response GetCommand(const ApiContext& ctx, const Request& req) {
  auto service = Commands(ctx);
  if (!service.ok()) return ErrorResponse(service.status());
  auto c = (*service)->Get(req.params.at("id"));
  if (!c) return ErrorResponse(NotFoundError(fmt::format("no command '{}'", req.params.at("id"))));
  std::string out;
  json::Writer w(out);
  WriteCommand(w, *c);
  return Json(std::move(out));
}

Response ListCommands(const ApiContext& ctx, const Request& req) {
  auto service = Commands(ctx);
  if (!service.ok()) return ErrorResponse(service.status());
  size_t limit = 100;
  if (auto l = Param(req, "limit"); !l.empty()) {
    auto [end, ec] = std::from_chars(l.data(), l.data() + l.size(), limit);
    if (ec != std::errc() || end != l.data() + l.size() || limit == 0 || limit > 10000) {
      return ErrorResponse(InvalidArgumentError(fmt::format("limit={}: expected 1..10000", l)));
    }
  }
  std::string out;
  json::Writer w(out);
  w.BeginObject().Key("commands").BeginArray();
  for (const Command& c : (*service)->List(Param(req, "target"), limit)) WriteCommand(w, c);
  w.EndArray().EndObject();
  return Json(std::move(out));
}

// Wraps a handler that may fail into one that answers errors as JSON.
http::Handler Wrap(std::function<Result<std::string>(const Request&)> fn) {
  return [fn = std::move(fn)](const Request& req) {
    auto r = fn(req);
    if (!r.ok()) return ErrorResponse(r.status());
    return Json(std::move(*r));
  };
}

}  // namespace

Response ErrorResponse(const Status& status) {
  std::string out;
  json::Writer w(out);
  w.BeginObject()
      .Key("error")
      .BeginObject()
      .Key("code")
      .String(StatusCodeName(status.code()))
      .Key("id")
      .Int(ErrorId(status.code()))
      .Key("message")
      .String(status.message())
      .EndObject()
      .EndObject();
  return Json(std::move(out), HttpStatus(status.code()));
}

void RegisterApi(http::HttpServer& http, ApiContext context) {
  auto ctx = std::make_shared<const ApiContext>(std::move(context));
  http.SetErrorHandler([](int status, std::string_view message) {
    StatusCode code = StatusCode::kInvalidArgument;  // 400 and the other 4xx
    if (status == 404) code = StatusCode::kNotFound;
    if (status == 405) code = StatusCode::kFailedPrecondition;
    if (status == 408) code = StatusCode::kDeadlineExceeded;
    if (status == 413 || status == 431 || status == 503) code = StatusCode::kResourceExhausted;
    if (status == 500) code = StatusCode::kInternal;
    if (status == 501 || status == 505) code = StatusCode::kUnimplemented;
    Response r = ErrorResponse(Status(code, std::string(message)));
    r.status = status;
    return r;
  });
  http.Get("/health", [ctx](const Request&) { return Health(*ctx); });
  http.Get("/metrics", [ctx](const Request&) {
    Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = ctx->metrics.RenderPrometheus();
    return r;
  });
  http.Get("/api/v1/nodes", [ctx](const Request&) { return Nodes(*ctx); });
  http.Get("/api/v1/nodes/{group}/{node}", [ctx](const Request& req) { return Node(*ctx, req); });
  http.Get("/api/v1/metrics", [ctx](const Request& req) { return Metrics(*ctx, req); });
  http.Get("/api/v1/query", Wrap([ctx](const Request& req) { return Query(*ctx, req); }));
  http.Get("/api/v1/latest", Wrap([ctx](const Request& req) { return Latest(*ctx, req); }));
  http.Get("/api/v1/stream", [ctx](const Request& req) { return Stream(*ctx, req); });
  http.Route("POST", "/api/v1/commands",
             [ctx](const Request& req) { return PostCommand(*ctx, req); });
  http.Get("/api/v1/commands", [ctx](const Request& req) { return ListCommands(*ctx, req); });
  http.Get("/api/v1/commands/{id}", [ctx](const Request& req) { return GetCommand(*ctx, req); });
  // The dashboard: every other path is a static file embedded in the binary.
  http.Get("/{path...}", [](const Request& req) {
    const web::Asset* asset = web::FindAsset(req.path);
    if (asset == nullptr)
      return ErrorResponse(NotFoundError(fmt::format("no page '{}'", req.path)));
    Response r;
    r.content_type = std::string(asset->content_type);
    r.body = std::string(asset->body);
    r.headers.push_back({"Cache-Control", "no-cache"});
    return r;
  });
}

void ExportHistorianMetrics(historian::Historian& historian, MetricsRegistry& metrics) {
  struct Field {
    const char* name;
    const char* help;
    uint64_t historian::HistorianStats::*member;
  };
  using HS = historian::HistorianStats;
  static constexpr Field kFields[] = {
      {"kiln_historian_series", "series stored", &HS::series},
      {"kiln_historian_points_written_total", "points accepted since start", &HS::points_written},
      {"kiln_historian_duplicates_total", "points written again identically (stored once)",
       &HS::duplicates},
      {"kiln_historian_head_points", "points in memory, not yet in a chunk", &HS::head_points},
      {"kiln_historian_chunks", "compressed chunks", &HS::chunks},
      {"kiln_historian_chunk_points", "points in chunks", &HS::chunk_points},
      {"kiln_historian_disk_bytes", "bytes on disk (database and WAL)", &HS::disk_bytes},
      {"kiln_historian_wal_bytes", "bytes of write-ahead log", &HS::wal_bytes},
      {"kiln_historian_retired_chunks_total", "chunks deleted by retention", &HS::retired_chunks},
      {"kiln_historian_wal_syncs_total", "fdatasync calls of the WAL", &HS::wal_syncs},
      {"kiln_historian_write_errors_total", "failed writes", &HS::write_errors},
  };
  for (const Field& f : kFields) {
    auto fn = [&historian, member = f.member] {
      return static_cast<double>(historian.stats().*member);
    };
    if (std::string_view(f.name).ends_with("_total")) {
      metrics.AddCounterCallback(f.name, f.help, {}, fn);
    } else {
      metrics.AddGaugeCallback(f.name, f.help, {}, fn);
    }
  }
}

}  // namespace kiln::server
