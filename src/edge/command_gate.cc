#include "edge/command_gate.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <utility>
#include <variant>

namespace kiln::edge {

namespace {

using contract::IsIntegerType;
using contract::Value;
using contract::ValueType;

// A refusal reason, or the value to write.
using Converted = std::variant<Value, std::string>;

std::string Num(double d) { return fmt::format("{}", d); }

// Seconds with millisecond resolution: "0.8", "2", "1.234".
std::string Seconds(std::chrono::nanoseconds d) {
  return Num(static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) /
             1000.0);
}

// How a value reads in a reason: 72.5, true, 'abc', null.
std::string Show(const Value& v) {
  if (v.type() == ValueType::kString) return fmt::format("'{}'", v.ToString());
  return v.ToString();
}

bool IsFloating(const Value& v) {
  return v.type() == ValueType::kFloat || v.type() == ValueType::kDouble;
}

}  // namespace

std::string_view GateStateName(GateState state) {
  switch (state) {
    case GateState::kAllowed:
      return "allowed";
    case GateState::kRejected:
      return "rejected";
    case GateState::kExpired:
      return "expired";
  }
  return "unknown";
}

CommandGate::CommandGate(const DeviceConfig& device, const Clock& clock)
    : device_id_(device.id), clock_(clock) {
  const bool modbus = (device.driver == "modbus-tcp" || device.driver == "modbus-rtu") &&
                      device.modbus.tags.size() == device.tags.size();
  tags_.reserve(device.tags.size());
  for (size_t i = 0; i < device.tags.size(); ++i) {
    Tag t;
    t.config = device.tags[i];
    if (modbus) {
      t.raw_type = device.modbus.tags[i].type;
      t.scale = device.modbus.tags[i].scale;
      t.offset = device.modbus.tags[i].offset;
    }
    by_name_.emplace(t.config.name, i);
    tags_.push_back(std::move(t));
  }
}

const CommandGate::Tag* CommandGate::Find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tags_[it->second];
}

const TagConfig* CommandGate::FindTag(std::string_view name) const {
  const Tag* t = Find(name);
  return t ? &t->config : nullptr;
}

const TagConfig* CommandGate::FindTag(contract::TagId id) const {
  // Ids are consecutive in file order within a device; fall back to a scan otherwise.
  if (!tags_.empty() && id >= tags_.front().config.id) {
    const size_t i = id - tags_.front().config.id;
    if (i < tags_.size() && tags_[i].config.id == id) return &tags_[i].config;
  }
  for (const Tag& t : tags_) {
    if (t.config.id == id) return &t.config;
  }
  return nullptr;
}

void CommandGate::RecordWrite(std::string_view tag, MonoTime when) {
  auto it = by_name_.find(tag);
  if (it != by_name_.end()) tags_[it->second].last_write = when;
}

namespace {

// The requested value as the tag's published type, or why it cannot be written.
Converted ToTagValue(std::string_view name, ValueType type, std::optional<ValueType> raw_type,
                     double scale, double offset, const Value& v) {
  if (v.is_null()) return fmt::format("no value to write to {}", name);
  if (type == ValueType::kString) {
    if (v.type() == ValueType::kString) return v;
    return fmt::format("{} takes a string, not {}", name, Show(v));
  }
  if (type == ValueType::kBool) {
    if (v.type() == ValueType::kBool) return v;
    const std::optional<double> d = v.AsDouble();
    if (d && (*d == 0 || *d == 1)) return Value(*d == 1);
    return fmt::format("{} takes true or false (or 1 or 0), not {}", name, Show(v));
  }
  if (v.type() == ValueType::kString || v.type() == ValueType::kBool) {
    return fmt::format("{} takes a number, not {}", name, Show(v));
  }
  const double d = *v.AsDouble();
  if (!std::isfinite(d)) return fmt::format("{} takes a finite number, not {}", name, Show(v));
  if (IsIntegerType(type)) {
    if (IsFloating(v) && std::trunc(d) != d) {
      return fmt::format("{} takes whole numbers, not {}", name, Show(v));
    }
    if (std::optional<Value> x = v.ToExactInteger(type)) return *x;
    const auto [min, max] = contract::IntegerLimits(type);
    return fmt::format("{} does not fit {} ({}: {} to {})", Show(v), name, ValueTypeName(type),
                       min.ToString(), max.ToString());
  }
  constexpr double kFloatMax = std::numeric_limits<float>::max();
  if (type == ValueType::kFloat) {
    if (std::fabs(d) > kFloatMax) return fmt::format("{} does not fit {} (float32)", Show(v), name);
    return Value(static_cast<float>(d));
  }
  // A float64 tag: a float64 register, or a scaled one whose raw value must fit its type.
  if (raw_type && *raw_type != ValueType::kDouble) {
    const double raw = (d - offset) / scale;
    bool fits = true;
    double lo = -kFloatMax;
    double hi = kFloatMax;
    if (IsIntegerType(*raw_type)) {
      const auto [min, end] = contract::IntegerRange(*raw_type);
      const double r = std::round(raw);
      fits = r >= min && r < end;
      lo = min;
      hi = *contract::IntegerLimits(*raw_type).second.AsDouble();
    } else {
      fits = std::fabs(raw) <= kFloatMax;
    }
    if (!fits) {
      double a = lo * scale + offset;
      double b = hi * scale + offset;
      if (a > b) std::swap(a, b);
      // 12 digits: -32768 * 0.1 reads -3276.8, not -3276.8000000000002.
      return fmt::format(
          "{} does not fit {}'s register ({} with scale {} and offset {}: {:.12g} to {:.12g})",
          Show(v), name, ValueTypeName(*raw_type), Num(scale), Num(offset), a, b);
    }
  }
  return Value(d);
}

}  // namespace

GateDecision CommandGate::Check(const WriteRequest& request, const CurrentSample& current) const {
  GateDecision out;
  auto refuse = [&out](GateState state, std::string reason) {
    out.state = state;
    out.reason = std::move(reason);
    out.value = Value();
    return out;
  };
  const Timestamp now = clock_.Now();
  if (request.expires_at && now > *request.expires_at) {
    return refuse(GateState::kExpired, fmt::format("expired {} s before it arrived",
                                                   Seconds(now - *request.expires_at)));
  }
  const Tag* tag = Find(request.tag);
  if (tag == nullptr) {
    return refuse(GateState::kRejected,
                  fmt::format("no tag {} on device {}", request.tag, device_id_));
  }
  const TagConfig& cfg = tag->config;
  const WriteRules& rules = cfg.write;
  out.tag = cfg.id;
  if (!rules.writable) {
    return refuse(GateState::kRejected, fmt::format("{} is not writable", cfg.name));
  }
  Converted converted =
      ToTagValue(cfg.name, cfg.type, tag->raw_type, tag->scale, tag->offset, request.value);
  if (auto* reason = std::get_if<std::string>(&converted)) {
    return refuse(GateState::kRejected, std::move(*reason));
  }
  out.value = std::get<Value>(std::move(converted));

  if (cfg.type != ValueType::kBool && cfg.type != ValueType::kString && (rules.min || rules.max)) {
    // In float precision when float32 is involved: 72.3f is not above max 72.3.
    const bool f32 = request.value.type() == ValueType::kFloat || cfg.type == ValueType::kFloat;
    auto precise = [f32](double x) { return f32 ? static_cast<double>(static_cast<float>(x)) : x; };
    const double x = precise(*request.value.AsDouble());
    if (rules.min && x < precise(*rules.min)) {
      return refuse(GateState::kRejected,
                    fmt::format("{} is below min {}", Show(request.value), Num(*rules.min)));
    }
    if (rules.max && x > precise(*rules.max)) {
      return refuse(GateState::kRejected,
                    fmt::format("{} is above max {}", Show(request.value), Num(*rules.max)));
    }
  }

  if (rules.interlock) {
    const Interlock& lock = *rules.interlock;
    const Tag* other = Find(lock.tag);
    const std::string needs = Num(lock.equals);
    if (other == nullptr) {
      return refuse(GateState::kRejected,
                    fmt::format("interlock: no tag {} on device {}", lock.tag, device_id_));
    }
    const std::optional<contract::Sample> s =
        current ? current(other->config.id) : std::optional<contract::Sample>();
    if (!s) {
      return refuse(GateState::kRejected,
                    fmt::format("interlock: {} has no value yet, needs {}", lock.tag, needs));
    }
    if (!s->quality.IsGood()) {
      return refuse(GateState::kRejected, fmt::format("interlock: {} is {}, needs {}", lock.tag,
                                                      s->quality.Name(), needs));
    }
    const std::optional<double> x = s->value.AsDouble();
    const bool f32 = s->value.type() == ValueType::kFloat;
    const double want = f32 ? static_cast<double>(static_cast<float>(lock.equals)) : lock.equals;
    if (!x || *x != want) {
      const std::string is =
          s->value.type() == ValueType::kBool ? Num(x.value_or(0)) : Show(s->value);
      return refuse(GateState::kRejected,
                    fmt::format("interlock: {} is {}, needs {}", lock.tag, is, needs));
    }
  }

  if (rules.min_write_interval.count() > 0 && tag->last_write) {
    const auto since = clock_.Monotonic() - *tag->last_write;
    if (since < rules.min_write_interval) {
      return refuse(GateState::kRejected,
                    fmt::format("last write {} s ago; min_write_interval is {} s",
                                Seconds(std::max(since, decltype(since)::zero())),
                                Seconds(rules.min_write_interval)));
    }
  }
  return out;
}

}  // namespace kiln::edge
