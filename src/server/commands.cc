#include "server/commands.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "contract/sparkplug/topic.h"
#include "core/json.h"
#include "server/internal/sqlite.h"

namespace kiln::server {

namespace {

using internal::Sqlite;
using sparkplug::DataType;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS commands(
  id TEXT PRIMARY KEY,
  idempotency_key TEXT UNIQUE,          -- NULL when none was given
  target TEXT NOT NULL,
  metric TEXT NOT NULL,
  value TEXT NOT NULL,                  -- JSON
  ttl_ms INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL,
  read_back REAL,
  delivered_ms INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL,
  who TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS commands_created ON commands(created_ms);
CREATE TABLE IF NOT EXISTS audit(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  t_ms INTEGER NOT NULL,
  who TEXT NOT NULL,
  action TEXT NOT NULL,                 -- submitted, delivered, or the final state
  command_id TEXT NOT NULL,
  target TEXT NOT NULL,
  metric TEXT NOT NULL,
  value TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
)sql";

constexpr const char* kColumns =
    "id, idempotency_key, target, metric, value, ttl_ms, created_ms, expires_ms, state, reason, "
    "read_back, delivered_ms, finished_ms, who";

constexpr auto kMaxTtl = std::chrono::hours(24);

std::string ValueJson(const contract::Value& v) {
  std::string out;
  json::Writer w(out);
  if (const auto* b = v.get_if<bool>()) {
    w.Bool(*b);
  } else if (auto d = v.AsDouble()) {
    w.Number(*d);
  } else if (const auto* s = v.get_if<std::string>()) {
    w.String(*s);
  } else {
    w.Null();
  }
  return out;
}

contract::Value ValueFromJson(const json::Value& j) {
  if (auto b = j.AsBool()) return contract::Value(*b);
  if (auto d = j.AsDouble()) return contract::Value(*d);
  if (auto s = j.AsString()) return contract::Value(std::string(*s));
  return contract::Value();
}

std::optional<DataType> DataTypeNamed(std::string_view name) {
  for (uint32_t i = 1; i <= static_cast<uint32_t>(DataType::kPropertySetList); ++i) {
    if (DataTypeName(static_cast<DataType>(i)) == name) return static_cast<DataType>(i);
  }
  return std::nullopt;
}

// The value as the metric's type, exactly: a fraction or an out-of-range number for an integer
// type, or a number beyond float for Float, is refused rather than rounded or saturated (the
// edge's gate could not see what was meant). Errors: InvalidArgument.
Result<contract::Value> ExactValue(const contract::Value& v, contract::ValueType type) {
  using contract::ValueType;
  if (type == ValueType::kBool) {
    if (v.get_if<bool>()) return v;
    return InvalidArgumentError("expected true or false");
  }
  const std::optional<double> d = v.get_if<bool>() ? std::nullopt : v.AsDouble();
  if (!d || !std::isfinite(*d)) return InvalidArgumentError("expected a finite number");
  double lo = 0, hi = 0;
  switch (type) {
    case ValueType::kFloat:
      if (std::fabs(*d) > std::numeric_limits<float>::max()) {
        return InvalidArgumentError(fmt::format("{} does not fit a Float", *d));
      }
      return contract::Value(static_cast<float>(*d));
    case ValueType::kDouble:
      return contract::Value(*d);
    case ValueType::kInt8:
      lo = -128;
      hi = 127;
      break;
    case ValueType::kInt16:
      lo = -32768;
      hi = 32767;
      break;
    case ValueType::kInt32:
      lo = -2147483648.0;
      hi = 2147483647.0;
      break;
    case ValueType::kInt64:
      lo = -9223372036854775808.0;
      hi = 9223372036854774784.0;
      break;
    case ValueType::kUInt8:
      hi = 255;
      break;
    case ValueType::kUInt16:
      hi = 65535;
      break;
    case ValueType::kUInt32:
      hi = 4294967295.0;
      break;
    case ValueType::kUInt64:
      hi = 18446744073709549568.0;
      break;
    default:
      return InvalidArgumentError("not a writable type");
  }
  if (*d != std::trunc(*d))
    return InvalidArgumentError(fmt::format("{} is not a whole number", *d));
  if (*d < lo || *d > hi) {
    return InvalidArgumentError(fmt::format("{} is out of range ({}..{})", *d, lo, hi));
  }
  return contract::Value::FromDouble(*d, type);
}

struct Target {
  std::string group, node, device;
};

Result<Target> ParseTarget(std::string_view text) {
  Target t;
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t slash = text.find('/', start);
    parts.emplace_back(text.substr(start, slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() < 2 || parts.size() > 3) {
    return InvalidArgumentError(fmt::format(
        "target '{}': expected group/node/device (or group/node for a node metric)", text));
  }
  for (const auto& p : parts) {
    KILN_RETURN_IF_ERROR(
        sparkplug::ValidateId(p, "target part").WithContext(fmt::format("target '{}'", text)));
  }
  t.group = parts[0];
  t.node = parts[1];
  if (parts.size() == 3) t.device = parts[2];
  return t;
}

// What the registry says of a command's target now: whether its node and device are known,
// the metric of their current birth, and whether the device (or node) is online.
struct TargetNow {
  bool node_known = false;
  bool device_known = false;
  std::optional<MetricRecord> metric;
  bool online = false;
};

TargetNow LookUp(const Registry& registry, const Target& target, std::string_view metric) {
  TargetNow out;
  const auto node = registry.Node(target.group, target.node);
  if (!node) return out;
  out.node_known = true;
  const std::vector<MetricRecord>* metrics = &node->metrics;
  out.online = node->online;
  if (!target.device.empty()) {
    auto dev = std::find_if(node->devices.begin(), node->devices.end(),
                            [&](const DeviceRecord& d) { return d.device == target.device; });
    if (dev == node->devices.end()) return out;
    metrics = &dev->metrics;
    out.online = out.online && dev->online;
  }
  out.device_known = true;
  auto m = std::find_if(metrics->begin(), metrics->end(),
                        [&](const MetricRecord& r) { return r.name == metric; });
  if (m != metrics->end()) out.metric = *m;
  return out;
}

}  // namespace

std::string_view CommandStateName(CommandState state) {
  switch (state) {
    case CommandState::kPending:
      return "pending";
    case CommandState::kDelivered:
      return "delivered";
    case CommandState::kSucceeded:
      return "succeeded";
    case CommandState::kFailed:
      return "failed";
    case CommandState::kRejected:
      return "rejected";
    case CommandState::kExpired:
      return "expired";
  }
  return "unknown";
}

std::optional<CommandState> ParseCommandState(std::string_view name) {
  for (auto s : {CommandState::kPending, CommandState::kDelivered, CommandState::kSucceeded,
                 CommandState::kFailed, CommandState::kRejected, CommandState::kExpired}) {
    if (CommandStateName(s) == name) return s;
  }
  return std::nullopt;
}

bool IsFinal(CommandState state) {
  return state != CommandState::kPending && state != CommandState::kDelivered;
}

CommandService::CommandService(std::unique_ptr<Sqlite> db, Registry& registry, const Clock& clock,
                               Logger log, PublishFn publish, CommandOptions options)
    : db_(std::move(db)),
      registry_(registry),
      clock_(clock),
      log_(std::move(log)),
      publish_(std::move(publish)),
      options_(options) {}

CommandService::~CommandService() = default;

Result<std::unique_ptr<CommandService>> CommandService::Open(const std::filesystem::path& file,
                                                             Registry& registry, const Clock& clock,
                                                             Logger log, PublishFn publish,
                                                             CommandOptions options) {
  KILN_ASSIGN_OR_RETURN(auto db, Sqlite::Open(file, /*synchronous_full=*/true));
  KILN_RETURN_IF_ERROR(db->Exec(kSchema));
  std::unique_ptr<CommandService> service(new CommandService(
      std::move(db), registry, clock, std::move(log), std::move(publish), options));
  MutexLock lock(service->mu_);
  KILN_RETURN_IF_ERROR(service->Load());
  return service;
}

namespace {

Command RowToCommand(sqlite3_stmt* s) {
  Command c;
  c.id = Sqlite::Text(s, 0);
  c.idempotency_key = Sqlite::Text(s, 1);
  c.target = Sqlite::Text(s, 2);
  c.metric = Sqlite::Text(s, 3);
  if (auto v = json::Parse(Sqlite::Text(s, 4)); v.ok()) c.value = ValueFromJson(*v);
  c.ttl_ms = sqlite3_column_int64(s, 5);
  c.created_ms = sqlite3_column_int64(s, 6);
  c.expires_ms = sqlite3_column_int64(s, 7);
  c.state = ParseCommandState(Sqlite::Text(s, 8)).value_or(CommandState::kFailed);
  c.reason = Sqlite::Text(s, 9);
  if (sqlite3_column_type(s, 10) != SQLITE_NULL) c.read_back = sqlite3_column_double(s, 10);
  c.delivered_ms = sqlite3_column_int64(s, 11);
  c.finished_ms = sqlite3_column_int64(s, 12);
  c.who = Sqlite::Text(s, 13);
  return c;
}

}  // namespace

Status CommandService::Load() {
  const std::string sql = fmt::format(
      "SELECT {} FROM commands WHERE state IN ('pending', 'delivered') ORDER BY "
      "created_ms",
      kColumns);
  KILN_RETURN_IF_ERROR(
      db_->Query(sql.c_str(), [&](sqlite3_stmt* s) { open_.push_back(RowToCommand(s)); }));
  return db_->Query("SELECT count(*) FROM commands", [&](sqlite3_stmt* s) {
    next_id_ = static_cast<uint64_t>(sqlite3_column_int64(s, 0)) + 1;
  });
}

Status CommandService::Save(const Command& c) {
  const std::string sql = fmt::format(
      "INSERT INTO commands({}) VALUES(?, NULLIF(?, ''), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
      "ON CONFLICT(id) DO UPDATE SET state = excluded.state, reason = excluded.reason, "
      "read_back = excluded.read_back, delivered_ms = excluded.delivered_ms, "
      "finished_ms = excluded.finished_ms",
      kColumns);
  return db_->Run(sql.c_str(), c.id, c.idempotency_key, c.target, c.metric, ValueJson(c.value),
                  c.ttl_ms, c.created_ms, c.expires_ms, std::string(CommandStateName(c.state)),
                  c.reason, c.read_back, c.delivered_ms, c.finished_ms, c.who);
}

Status CommandService::Record(const Command& c, std::string_view action) {
  // One transaction, so one fsync, per state change: the command and its audit row.
  KILN_RETURN_IF_ERROR(db_->Exec("BEGIN"));
  Status s = Save(c);
  if (s.ok()) s = Audit(c, action);
  if (s.ok()) s = db_->Exec("COMMIT");
  if (!s.ok()) db_->Exec("ROLLBACK").IgnoreError();
  return s;
}

Status CommandService::Audit(const Command& c, std::string_view action) {
  return db_->Run(
      "INSERT INTO audit(t_ms, who, action, command_id, target, metric, value, state, reason) "
      "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
      NowMs(), c.who, action, c.id, c.target, c.metric, ValueJson(c.value),
      CommandStateName(c.state), c.reason);
}

std::optional<Command> CommandService::Read(const char* where_sql, std::string_view arg) const {
  std::optional<Command> out;
  const std::string sql = fmt::format("SELECT {} FROM commands WHERE {}", kColumns, where_sql);
  Status s = db_->Query(
      sql.c_str(), [&](sqlite3_stmt* st) { out = RowToCommand(st); }, arg);
  if (!s.ok()) log_.Error("commands: {}", s.ToString());
  return out;
}

Result<CommandService::Submitted> CommandService::Submit(const CommandRequest& request) {
  auto submitted = Validate(request);
  if (!submitted.ok()) {
    // A refused request is part of the trail too: who tried what, and why it was refused.
    Command refused;
    refused.target = request.target;
    refused.metric = request.metric;
    refused.value = request.value;
    refused.who = request.who;
    refused.reason = submitted.status().message();
    MutexLock lock(mu_);
    Status s = db_->Run(
        "INSERT INTO audit(t_ms, who, action, command_id, target, metric, value, state, reason) "
        "VALUES(?, ?, 'refused', '', ?, ?, ?, 'refused', ?)",
        NowMs(), refused.who, refused.target, refused.metric, ValueJson(refused.value),
        refused.reason);
    if (!s.ok()) log_.Error("audit: {}", s.ToString());
  }
  return submitted;
}

Result<CommandService::Submitted> CommandService::Validate(const CommandRequest& request) {
  if (request.metric.empty()) return InvalidArgumentError("metric is required");
  if (request.value.is_null()) return InvalidArgumentError("value is required");
  if (request.ttl.count() <= 0 || request.ttl > kMaxTtl) {
    return InvalidArgumentError(
        fmt::format("ttl must be within 1 ms..24 h, not {} ms", request.ttl.count()));
  }
  if (request.idempotency_key.size() > 200) {
    return InvalidArgumentError("idempotency_key is longer than 200 characters");
  }
  KILN_ASSIGN_OR_RETURN(Target target, ParseTarget(request.target));
  if (target.device.empty()) {
    // The edge gates device tags only (NCMD carries Node Control, not tag writes).
    return InvalidArgumentError(
        fmt::format("target '{}': expected group/node/device (node metrics cannot be written)",
                    request.target));
  }
  MutexLock lock(mu_);
  if (!request.idempotency_key.empty()) {
    if (auto existing = Read("idempotency_key = ?", request.idempotency_key)) {
      // Values compare as stored (JSON): an int 70 and a double 70 are the same request.
      if (existing->target != request.target || existing->metric != request.metric ||
          ValueJson(existing->value) != ValueJson(request.value)) {
        return FailedPreconditionError(
            fmt::format("idempotency_key '{}' was used for another command ({})",
                        request.idempotency_key, existing->id));
      }
      // The same request again: the same command, nothing written twice.
      for (const Command& c : open_) {
        if (c.id == existing->id) return Submitted{c, false};
      }
      return Submitted{*existing, false};
    }
  }
  // The metric must exist in the target's current birth, with a type one can write.
  const TargetNow now_target = LookUp(registry_, target, request.metric);
  if (!now_target.node_known) {
    return NotFoundError(fmt::format("no edge node '{}/{}'", target.group, target.node));
  }
  if (!now_target.device_known) return NotFoundError(fmt::format("no device '{}'", request.target));
  if (!now_target.metric) {
    return NotFoundError(fmt::format("'{}' has no metric '{}'", request.target, request.metric));
  }
  const MetricRecord* m = &*now_target.metric;
  const auto datatype = DataTypeNamed(m->datatype);
  const auto vt = datatype ? sparkplug::ValueTypeFor(*datatype) : std::nullopt;
  if (!vt || *vt == contract::ValueType::kString) {
    return InvalidArgumentError(
        fmt::format("{}/{} is a {} metric: only numbers and booleans can be written",
                    request.target, request.metric, m->datatype));
  }
  if (auto exact = ExactValue(request.value, *vt); !exact.ok()) {
    return InvalidArgumentError(fmt::format("{}/{} is {}: value {} does not fit: {}",
                                            request.target, request.metric, m->datatype,
                                            ValueJson(request.value), exact.status().message()));
  }
  Command c;
  const int64_t now = NowMs();
  c.id = fmt::format("c{:x}-{}", now, next_id_++);
  c.idempotency_key = request.idempotency_key;
  c.target = request.target;
  c.metric = request.metric;
  c.value = request.value;
  c.ttl_ms = request.ttl.count();
  c.created_ms = now;
  c.expires_ms = now + c.ttl_ms;
  c.who = request.who;
  KILN_RETURN_IF_ERROR(Record(c, "submitted"));
  log_.Info("command {} by {}: {}/{} = {} (ttl {} ms)", c.id, c.who, c.target, c.metric,
            ValueJson(c.value), c.ttl_ms);
  const bool online = now_target.online;
  if (online) {
    Status s = Deliver(c, *datatype);
    if (!s.ok()) log_.Warn("command {}: not sent yet: {}", c.id, s.ToString());
  }
  open_.push_back(c);
  return Submitted{c, true};
}

Status CommandService::Deliver(Command& c, sparkplug::DataType datatype) {
  KILN_ASSIGN_OR_RETURN(Target target, ParseTarget(c.target));
  sparkplug::Payload p;
  p.timestamp = static_cast<uint64_t>(NowMs());
  sparkplug::Metric m;
  m.name = c.metric;
  m.timestamp = p.timestamp;
  m.datatype = datatype;
  const auto vt = sparkplug::ValueTypeFor(datatype);
  if (!vt)
    return FailedPreconditionError(fmt::format("{} is not writable", DataTypeName(datatype)));
  // Exactly, or not at all (a rebirth may have changed the metric's type since the submit).
  KILN_ASSIGN_OR_RETURN(m.value, ExactValue(c.value, *vt));
  m.properties.push_back({"kiln.commandId", DataType::kString, contract::Value(c.id)});
  m.properties.push_back(
      {"kiln.expiresAt", DataType::kUInt64, contract::Value(static_cast<uint64_t>(c.expires_ms))});
  p.metrics.push_back(std::move(m));
  std::string bytes;
  sparkplug::Encoder encoder;
  KILN_RETURN_IF_ERROR(encoder.Encode(p, bytes));
  sparkplug::Topic topic;
  topic.type =
      target.device.empty() ? sparkplug::MessageType::kNCmd : sparkplug::MessageType::kDCmd;
  topic.group_id = target.group;
  topic.edge_node_id = target.node;
  topic.device_id = target.device;
  // The intent is durable before the DCMD leaves: after a crash a command is never sent again.
  c.state = CommandState::kDelivered;
  c.delivered_ms = NowMs();
  KILN_RETURN_IF_ERROR(Record(c, "delivered"));
  Status sent = publish_(sparkplug::BuildTopic(topic), bytes);
  if (!sent.ok()) {
    // Not sent after all (no connection): pending again, for the next Tick.
    c.state = CommandState::kPending;
    c.delivered_ms = 0;
    Status s = Save(c);
    if (!s.ok()) log_.Error("command {}: {}", c.id, s.ToString());
  }
  return sent;
}

Status CommandService::Finish(Command& c, CommandState state, std::string reason) {
  Command done = c;
  done.state = state;
  done.reason = std::move(reason);
  done.finished_ms = NowMs();
  Status s = Record(done, CommandStateName(state));
  if (!s.ok()) {
    // Stays open (and as it was): the next Tick tries again.
    log_.Error("command {}: cannot record {}: {}", c.id, CommandStateName(state), s.ToString());
    return s;
  }
  c = std::move(done);
  log_.Info("command {} {}{}{}", c.id, CommandStateName(state), c.reason.empty() ? "" : ": ",
            c.reason);
  return OkStatus();
}

void CommandService::OnResult(std::string_view group, std::string_view node,
                              std::string_view text) {
  auto doc = json::Parse(text);
  const json::Value* id = doc.ok() ? doc->Find("id") : nullptr;
  const json::Value* state_v = doc.ok() ? doc->Find("state") : nullptr;
  CommandState final_state = CommandState::kPending;  // not final: refused below
  if (state_v && state_v->AsString()) {
    final_state = ParseCommandState(*state_v->AsString()).value_or(CommandState::kPending);
  }
  if (!id || !id->AsString() || !IsFinal(final_state)) {
    log_.Warn("{}/{}: malformed command result: {}", group, node, text.substr(0, 200));
    return;
  }
  if (id->AsString()->empty()) return;  // a command of another host
  MutexLock lock(mu_);
  auto it = std::find_if(open_.begin(), open_.end(),
                         [&](const Command& c) { return c.id == *id->AsString(); });
  if (it == open_.end()) {
    log_.Info("{}/{}: result for command {} which is not open (already final?)", group, node,
              *id->AsString());
    return;
  }
  const std::string node_path = fmt::format("{}/{}", group, node);
  if (it->target != node_path && !it->target.starts_with(node_path + "/")) {
    log_.Warn("{}/{}: result for command {} of another node ({})", group, node, it->id, it->target);
    return;
  }
  const json::Value* reason = doc->Find("reason");
  Command& c = *it;
  if (const json::Value* rb = doc->Find("read_back")) {
    if (auto b = rb->AsBool()) {
      c.read_back = *b ? 1.0 : 0.0;
    } else {
      c.read_back = rb->AsDouble();
    }
  }
  if (Finish(c, final_state,
             reason && reason->AsString() ? std::string(*reason->AsString()) : std::string())
          .ok()) {
    open_.erase(it);
  }
}

void CommandService::Tick() {
  MutexLock lock(mu_);
  const int64_t now = NowMs();
  for (auto it = open_.begin(); it != open_.end();) {
    Command& c = *it;
    if (c.state == CommandState::kPending && now >= c.expires_ms) {
      const bool done =
          Finish(c, CommandState::kExpired, "not delivered within its ttl: the device was offline")
              .ok();
      it = done ? open_.erase(it) : it + 1;
      continue;
    }
    if (c.state == CommandState::kDelivered &&
        now >= c.expires_ms + options_.result_grace.count()) {
      const bool done =
          Finish(c, CommandState::kFailed,
                 "no result from the edge within the ttl (it may or may not have been written)")
              .ok();
      it = done ? open_.erase(it) : it + 1;
      continue;
    }
    if (c.state == CommandState::kPending) {
      auto target = ParseTarget(c.target);
      const TargetNow now_target = target.ok() ? LookUp(registry_, *target, c.metric) : TargetNow{};
      const bool online = now_target.online;
      const MetricRecord* metric = now_target.metric ? &*now_target.metric : nullptr;
      if (online && metric != nullptr) {
        if (auto dt = DataTypeNamed(metric->datatype)) {
          Status s = Deliver(c, *dt);
          if (!s.ok()) log_.Warn("command {}: not sent yet: {}", c.id, s.ToString());
        }
      }
    }
    ++it;
  }
}

std::optional<Command> CommandService::Get(std::string_view id) const {
  MutexLock lock(mu_);
  for (const Command& c : open_) {
    if (c.id == id) return c;
  }
  return Read("id = ?", id);
}

std::vector<Command> CommandService::List(std::string_view target_prefix, size_t limit) const {
  MutexLock lock(mu_);
  std::vector<Command> out;
  const std::string sql = fmt::format(
      "SELECT {} FROM commands WHERE substr(target, 1, length(?1)) = ?1 ORDER BY created_ms "
      "DESC, rowid DESC LIMIT {}",
      kColumns, limit);
  Status s = db_->Query(
      sql.c_str(), [&](sqlite3_stmt* st) { out.push_back(RowToCommand(st)); }, target_prefix);
  if (!s.ok()) log_.Error("commands: {}", s.ToString());
  return out;
}

}  // namespace kiln::server
