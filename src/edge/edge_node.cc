#include "edge/edge_node.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/check.h"

namespace kiln::edge {

using contract::Quality;
using contract::Sample;
using contract::Value;
using sparkplug::DataType;
using sparkplug::kBdSeqMetric;
using sparkplug::kRebirthMetric;
using sparkplug::MessageType;

namespace {
constexpr std::string_view kStoreDropped = "Store/Dropped Samples";
}  // namespace

struct EdgeNode::TagState {
  NodeTag info;
  DataType datatype = DataType::kUnknown;
  uint64_t alias = 0;
  Value value;  // null until the first sample
  Quality quality = contract::status::kBadWaitingForInitialData;
  Timestamp time;
  bool known = false;
};

struct EdgeNode::DeviceState {
  std::string id;
  std::vector<contract::TagId> tags;
  bool online = false;
};

EdgeNode::EdgeNode(EdgeNodeOptions options, std::vector<NodeDevice> devices, const Clock& clock,
                   uint64_t initial_bd_seq)
    : options_(std::move(options)), clock_(clock), bd_seq_(initial_bd_seq % 256) {
  KILN_CHECK(options_.max_metrics_per_message > 0);
  contract::TagId max_id = 0;
  for (const auto& d : devices) {
    for (const auto& t : d.tags) max_id = std::max(max_id, t.id);
  }
  tags_.resize(static_cast<size_t>(max_id) + 1);
  tag_device_.assign(static_cast<size_t>(max_id) + 1, -1);
  for (size_t i = 0; i < devices.size(); ++i) {
    DeviceState ds;
    ds.id = devices[i].id;
    for (auto& t : devices[i].tags) {
      KILN_CHECK(tag_device_[t.id] == -1) << "duplicate tag id " << t.id;
      tag_device_[t.id] = static_cast<int32_t>(i);
      TagState& ts = tags_[t.id];
      ts.datatype = sparkplug::DataTypeFor(t.type);
      ts.alias = static_cast<uint64_t>(t.id) + 1;  // aliases are unique across the node
      ts.info = std::move(t);
      ts.known = true;
      ds.tags.push_back(ts.info.id);
    }
    devices_.push_back(std::move(ds));
  }
}

EdgeNode::~EdgeNode() = default;

Message EdgeNode::Build(MessageType type, const std::string& device_id, sparkplug::Payload& payload,
                        bool with_seq) {
  Message m;
  m.type = type;
  m.topic = sparkplug::BuildTopic(
      {type, options_.group_id, options_.edge_node_id, device_id, std::string()});
  payload.timestamp = static_cast<uint64_t>(ToEpochMillis(clock_.Now()));
  if (with_seq) {
    payload.seq = seq_;
    seq_ = (seq_ + 1) % 256;
  }
  // Values come from our own typed state, so encoding cannot fail.
  Status s = encoder_.Encode(payload, m.payload);
  KILN_CHECK(s.ok()) << s.ToString();
  ++stats_.messages;
  return m;
}

Message EdgeNode::BeginSession() {
  in_session_ = true;
  births_sent_ = false;
  Message will = Death();
  --stats_.messages;  // a Will is not published by us
  return will;
}

void EdgeNode::EndSession(bool established) {
  in_session_ = false;
  births_sent_ = false;
  if (established) bd_seq_ = (bd_seq_ + 1) % 256;
}

sparkplug::Metric EdgeNode::BdSeqMetric() const {
  sparkplug::Metric bd;
  bd.name = std::string(kBdSeqMetric);
  bd.datatype = DataType::kInt64;
  bd.value = Value(static_cast<int64_t>(bd_seq_));
  return bd;
}

Message EdgeNode::Death() {
  sparkplug::Payload p;
  p.metrics.push_back(BdSeqMetric());  // no timestamp: NDEATH may be sent much later (Will)
  Message m = Build(MessageType::kNDeath, std::string(), p, /*with_seq=*/false);
  m.qos = 1;
  return m;
}

std::vector<std::string> EdgeNode::CommandTopics() const {
  std::vector<std::string> out;
  out.push_back(sparkplug::BuildTopic(
      {MessageType::kNCmd, options_.group_id, options_.edge_node_id, "", ""}));
  for (const auto& d : devices_) {
    out.push_back(sparkplug::BuildTopic(
        {MessageType::kDCmd, options_.group_id, options_.edge_node_id, d.id, ""}));
  }
  return out;
}

sparkplug::Metric EdgeNode::BirthMetric(const TagState& tag) const {
  sparkplug::Metric m;
  m.name = tag.info.name;
  m.alias = tag.alias;
  m.datatype = tag.datatype;
  m.timestamp = static_cast<uint64_t>(
      ToEpochMillis(tag.value.is_null() && tag.time == Timestamp() ? clock_.Now() : tag.time));
  if (tag.value.is_null()) {
    m.is_null = true;
  } else {
    m.value = tag.value;
  }
  if (!tag.info.unit.empty()) m.unit = tag.info.unit;
  sparkplug::SetQuality(m, tag.quality);
  return m;
}

void EdgeNode::Births(std::vector<Message>& out) {
  KILN_CHECK(in_session_);
  seq_ = 0;
  sparkplug::Payload p;
  const uint64_t now = static_cast<uint64_t>(ToEpochMillis(clock_.Now()));
  sparkplug::Metric bd = BdSeqMetric();
  bd.timestamp = now;
  p.metrics.push_back(std::move(bd));
  sparkplug::Metric rebirth;
  rebirth.name = std::string(kRebirthMetric);
  rebirth.datatype = DataType::kBoolean;
  rebirth.timestamp = now;
  rebirth.value = Value(false);
  p.metrics.push_back(std::move(rebirth));
  sparkplug::Metric dropped;
  dropped.name = std::string(kStoreDropped);
  dropped.datatype = DataType::kUInt64;
  dropped.timestamp = now;
  dropped.value = Value(store_dropped_);
  p.metrics.push_back(std::move(dropped));
  out.push_back(Build(MessageType::kNBirth, std::string(), p, /*with_seq=*/true));
  births_sent_ = true;
  for (auto& d : devices_) {
    if (d.online) DeviceBirth(d, out);
  }
}

void EdgeNode::DeviceBirth(DeviceState& device, std::vector<Message>& out) {
  sparkplug::Payload p;
  p.metrics.reserve(device.tags.size());
  for (contract::TagId id : device.tags) p.metrics.push_back(BirthMetric(tags_[id]));
  out.push_back(Build(MessageType::kDBirth, device.id, p, /*with_seq=*/true));
}

void EdgeNode::SetDeviceOnline(size_t device, bool online, std::vector<Message>& out) {
  KILN_CHECK(device < devices_.size());
  DeviceState& d = devices_[device];
  if (d.online == online) return;
  d.online = online;
  if (!in_session_ || !births_sent_) return;
  if (online) {
    DeviceBirth(d, out);
  } else {
    sparkplug::Payload p;
    out.push_back(Build(MessageType::kDDeath, d.id, p, /*with_seq=*/true));
  }
}

bool EdgeNode::device_online(size_t device) const {
  return device < devices_.size() && devices_[device].online;
}

void EdgeNode::Data(std::span<const Sample> samples, std::vector<Message>& out, bool historical) {
  const bool publish = in_session_ && births_sent_;
  // One pending DDATA per device, flushed when full and at the end, so per-device order holds.
  std::vector<sparkplug::Payload> pending(devices_.size());
  auto flush = [&](size_t dev) {
    if (pending[dev].metrics.empty()) return;
    stats_.metrics += pending[dev].metrics.size();
    out.push_back(Build(MessageType::kDData, devices_[dev].id, pending[dev], /*with_seq=*/true));
    pending[dev].metrics.clear();
  };
  for (const Sample& s : samples) {
    if (s.tag >= tags_.size() || tag_device_[s.tag] < 0) continue;
    TagState& ts = tags_[s.tag];
    const auto dev = static_cast<size_t>(tag_device_[s.tag]);
    Value value = s.value;
    if (!value.is_null() && value.type() != ts.info.type) {
      // A driver produced another type than declared: convert rather than break the birth.
      value = value.AsDouble() ? Value::FromDouble(*value.AsDouble(), ts.info.type) : Value();
    }
    if (!historical) {
      ts.value = value;
      ts.quality = s.quality;
      ts.time = s.source_time;
    }
    // A device without a birth in this session cannot have data: its history waits in the
    // queue for its next DBIRTH (the caller leaves it unacknowledged).
    if (!publish || !devices_[dev].online) continue;
    sparkplug::Metric m;
    m.alias = ts.alias;
    m.timestamp = static_cast<uint64_t>(ToEpochMillis(s.source_time));
    m.datatype = ts.datatype;
    m.is_historical = historical;
    if (value.is_null()) {
      m.is_null = true;
    } else {
      m.value = std::move(value);
    }
    sparkplug::SetQuality(m, s.quality);
    pending[dev].metrics.push_back(std::move(m));
    if (pending[dev].metrics.size() >= options_.max_metrics_per_message) flush(dev);
  }
  for (size_t d = 0; d < pending.size(); ++d) flush(d);
}

bool EdgeNode::CanPublish(contract::TagId tag) const {
  return in_session_ && births_sent_ && known_tag(tag) &&
         devices_[static_cast<size_t>(tag_device_[tag])].online;
}

void EdgeNode::SetStoreDropped(uint64_t dropped, std::vector<Message>& out) {
  if (dropped == store_dropped_) return;
  store_dropped_ = dropped;
  if (!in_session_ || !births_sent_) return;
  sparkplug::Payload p;
  sparkplug::Metric m;
  m.name = std::string(kStoreDropped);
  m.datatype = DataType::kUInt64;
  m.timestamp = static_cast<uint64_t>(ToEpochMillis(clock_.Now()));
  m.value = Value(dropped);
  p.metrics.push_back(std::move(m));
  out.push_back(Build(MessageType::kNData, std::string(), p, /*with_seq=*/true));
}

Result<EdgeNode::Command> EdgeNode::OnMessage(std::string_view topic, std::string_view payload) {
  auto t = sparkplug::ParseTopic(topic);
  if (!t.ok()) {
    ++stats_.bad_commands;
    return t.status();
  }
  if (t->type == MessageType::kDCmd && t->group_id == options_.group_id &&
      t->edge_node_id == options_.edge_node_id) {
    return OnDeviceCommand(t->device_id, topic, payload);
  }
  if (t->type != MessageType::kNCmd || t->group_id != options_.group_id ||
      t->edge_node_id != options_.edge_node_id) {
    ++stats_.bad_commands;
    return InvalidArgumentError(
        fmt::format("{}: {} is not supported yet", topic, sparkplug::MessageTypeName(t->type)));
  }
  auto p = decoder_.Decode(payload);
  if (!p.ok()) {
    ++stats_.bad_commands;
    return p.status().WithContext(topic);
  }
  bool rebirth = false;
  std::string unsupported;
  for (const auto& m : p->metrics) {
    if (m.name && *m.name == kRebirthMetric) {
      if (const bool* b = m.value.get_if<bool>(); b && *b) rebirth = true;
    } else {
      unsupported += (unsupported.empty() ? "" : ", ") + m.name.value_or("<alias>");
    }
  }
  if (!unsupported.empty()) ++stats_.bad_commands;  // counted, but a rebirth still happens
  if (!rebirth && !unsupported.empty()) {
    return InvalidArgumentError(
        fmt::format("{}: unsupported node command(s) {}", topic, unsupported));
  }
  if (!rebirth || !in_session_) return Command::kNone;
  ++stats_.rebirths;
  return Command::kRebirth;
}

Result<EdgeNode::Command> EdgeNode::OnDeviceCommand(std::string_view device, std::string_view topic,
                                                    std::string_view payload) {
  writes_.clear();
  auto dev = std::find_if(devices_.begin(), devices_.end(),
                          [&](const DeviceState& d) { return d.id == device; });
  if (dev == devices_.end()) {
    ++stats_.bad_commands;
    return InvalidArgumentError(fmt::format("{}: no device '{}' on this node", topic, device));
  }
  auto p = decoder_.Decode(payload);
  if (!p.ok()) {
    ++stats_.bad_commands;
    return p.status().WithContext(topic);
  }
  const size_t index = static_cast<size_t>(dev - devices_.begin());
  for (const auto& m : p->metrics) {
    WriteCommand w;
    w.device = index;
    w.device_id = dev->id;
    if (m.name) {
      w.request.tag = *m.name;
    } else if (m.alias) {
      // Aliases are tag id + 1 and unique across the node: only this device's count.
      const bool mine =
          *m.alias >= 1 && *m.alias <= tags_.size() &&
          std::find(dev->tags.begin(), dev->tags.end(), *m.alias - 1) != dev->tags.end();
      w.request.tag = mine ? tags_[*m.alias - 1].info.name : fmt::format("#{}", *m.alias);
    }
    w.request.value = m.is_null ? Value() : m.value;
    for (const auto& prop : m.properties) {
      if (prop.key == "kiln.commandId") {
        if (const auto* id = prop.value.get_if<std::string>()) w.command_id = *id;
      } else if (prop.key == "kiln.expiresAt") {
        // A UInt64 of ms since the epoch. Beyond what a Timestamp holds (about the year 2255,
        // e.g. UINT64_MAX as "never"), it does not expire.
        constexpr uint64_t kMaxMs = 9'000'000'000'000;
        std::optional<uint64_t> ms;
        if (const auto* u = prop.value.get_if<uint64_t>()) {
          ms = *u;
        } else if (const auto* i = prop.value.get_if<int64_t>(); i && *i >= 0) {
          ms = static_cast<uint64_t>(*i);
        }
        if (ms && *ms <= kMaxMs) w.request.expires_at = FromEpochMillis(static_cast<int64_t>(*ms));
      }
    }
    writes_.push_back(std::move(w));
  }
  return writes_.empty() ? Command::kNone : Command::kWrite;
}

}  // namespace kiln::edge
