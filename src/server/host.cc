#include "server/host.h"

#include <fmt/format.h>

#include <algorithm>

#include "contract/sparkplug/topic.h"

namespace kiln::server {

namespace {

using sparkplug::kBdSeqMetric;
using sparkplug::kRebirthMetric;
// How far behind the last seq a message may be and still count as a repeat, not a gap.
constexpr uint8_t kRepeatWindow = 16;

std::optional<uint64_t> BdSeqOf(const sparkplug::Payload& p) {
  for (const auto& m : p.metrics) {
    if (m.name && *m.name == kBdSeqMetric) {
      if (auto v = m.value.AsInt64()) return static_cast<uint64_t>(*v);
    }
  }
  return std::nullopt;
}

}  // namespace

std::string MetricPath(const NodeKey& node, std::string_view device, std::string_view name) {
  if (device.empty()) return fmt::format("{}/{}/{}", node.group, node.node, name);
  return fmt::format("{}/{}/{}/{}", node.group, node.node, device, name);
}

struct PrimaryHost::Device {
  bool online = false;
  std::vector<MetricInfo*> metrics;
  std::unordered_map<std::string, MetricInfo*> by_name;
};

struct PrimaryHost::Node {
  NodeKey key;
  bool online = false;  // a session is open (NBIRTH seen, no matching NDEATH since)
  uint64_t bdseq = 0;
  uint8_t expected_seq = 0;
  std::map<uint8_t, MonoTime> missing;  // seq -> reorder deadline
  std::optional<MonoTime> last_rebirth_request;
  std::vector<MetricInfo*> metrics;  // node metrics of the current NBIRTH
  std::unordered_map<std::string, MetricInfo*> by_name;
  std::unordered_map<uint64_t, MetricInfo*> by_alias;  // node and device metrics
  std::map<std::string, Device, std::less<>> devices;
};

PrimaryHost::PrimaryHost(HostListener& listener, const Clock& clock, Logger log,
                         HostOptions options)
    : listener_(listener),
      clock_(clock),
      log_(std::move(log)),
      options_(options),
      limiter_(clock, std::chrono::seconds(10), 3) {}

PrimaryHost::~PrimaryHost() = default;

int64_t PrimaryHost::NowMs() const { return ToEpochMillis(clock_.Now()); }

PrimaryHost::Node& PrimaryHost::NodeFor(const NodeKey& key) {
  auto it = nodes_.find(key);
  if (it == nodes_.end()) {
    auto node = std::make_unique<Node>();
    node->key = key;
    it = nodes_.emplace(key, std::move(node)).first;
  }
  return *it->second;
}

void PrimaryHost::Malformed(std::string_view source, std::string_view why) {
  ++stats_.malformed;
  KILN_LOG_RATE_LIMITED(log_, limiter_, LogLevel::kWarning, source, "malformed message from {}: {}",
                        source, why);
}

void PrimaryHost::OnMessage(std::string_view topic_str, std::string_view payload) {
  ++stats_.messages;
  auto topic = sparkplug::ParseTopic(topic_str);
  if (!topic.ok()) {
    Malformed(topic_str.substr(0, 200), topic.status().message());
    return;
  }
  using sparkplug::MessageType;
  switch (topic->type) {
    case MessageType::kState:
    case MessageType::kNCmd:
    case MessageType::kDCmd:
      return;  // the session layer handles STATE; commands are ours or another host's
    default:
      break;
  }
  NodeKey key{std::move(topic->group_id), std::move(topic->edge_node_id)};
  auto decoded = decoder_.Decode(payload);
  if (!decoded.ok()) {
    Malformed(key.Name(), fmt::format("{}: {}", sparkplug::MessageTypeName(topic->type),
                                      decoded.status().message()));
    return;
  }
  Node& node = NodeFor(key);
  switch (topic->type) {
    case MessageType::kNBirth:
      HandleBirth(node, *decoded, {});
      break;
    case MessageType::kDBirth:
      HandleBirth(node, *decoded, topic->device_id);
      break;
    case MessageType::kNDeath:
      HandleNodeDeath(node, *decoded);
      break;
    case MessageType::kDDeath:
      HandleDeviceDeath(node, *decoded, topic->device_id);
      break;
    case MessageType::kNData:
      HandleData(node, *decoded, {});
      break;
    case MessageType::kDData:
      HandleData(node, *decoded, topic->device_id);
      break;
    default:
      break;
  }
}

bool PrimaryHost::CheckSeq(Node& node, const sparkplug::Payload& p, std::string_view what) {
  if (!p.seq || *p.seq > 255) {
    Malformed(node.key.Name(), fmt::format("{} without a valid seq", what));
    return false;
  }
  const auto seq = static_cast<uint8_t>(*p.seq);
  if (seq == node.expected_seq) {
    node.expected_seq = static_cast<uint8_t>(seq + 1);
    return true;
  }
  ++stats_.seq_reorders;
  if (node.missing.erase(seq) > 0) return true;  // late, but within the reorder timeout
  // A seq just behind the last one is a repeat (at-least-once delivery) and is processed;
  // anything else is ahead, however far: a burst of up to 255 lost messages is a gap too.
  const auto behind = static_cast<uint8_t>(node.expected_seq - 1 - seq);
  if (behind >= kRepeatWindow) {
    const MonoTime deadline = clock_.Monotonic() + options_.reorder_timeout;
    for (uint8_t s = node.expected_seq; s != seq; ++s) node.missing.emplace(s, deadline);
    log_.Debug("{}: {} seq {} while {} was expected; waiting {} ms for the missing ones",
               node.key.Name(), what, seq, node.expected_seq, options_.reorder_timeout.count());
    node.expected_seq = static_cast<uint8_t>(seq + 1);
    if (options_.reorder_timeout.count() == 0) Tick();
  } else {
    log_.Debug("{}: {} seq {} is behind the expected {}; processed", node.key.Name(), what, seq,
               node.expected_seq);
  }
  return true;
}

void PrimaryHost::Tick() {
  const MonoTime now = clock_.Monotonic();
  for (auto& [key, node] : nodes_) {
    if (node->missing.empty()) continue;
    const auto expired = std::count_if(node->missing.begin(), node->missing.end(),
                                       [&](const auto& m) { return m.second <= now; });
    if (expired == 0) continue;
    // The rebirth starts the count over, so the numbers not yet due are forgotten too.
    stats_.seq_gaps += static_cast<uint64_t>(expired);
    const std::string why =
        fmt::format("seq {} missing after the reorder timeout of {} ms",
                    node->missing.begin()->first, options_.reorder_timeout.count());
    node->missing.clear();
    RequestRebirth(*node, why);
  }
}

std::optional<MonoTime> PrimaryHost::NextDeadline() const {
  std::optional<MonoTime> next;
  for (const auto& [key, node] : nodes_) {
    for (const auto& [seq, deadline] : node->missing) {
      if (!next || deadline < *next) next = deadline;
    }
  }
  return next;
}

void PrimaryHost::ResetSessions() {
  const int64_t now = NowMs();
  for (auto& [key, node] : nodes_) {
    if (node->online) {
      // What the node did meanwhile is unknown: offline, its values stale, until it is born
      // again.
      std::vector<MetricInfo*> stale = node->metrics;
      for (auto& [id, dev] : node->devices) {
        stale.insert(stale.end(), dev.metrics.begin(), dev.metrics.end());
      }
      log_.Info("{}: session reset (the host lost its broker connection)", key.Name());
      listener_.OnDeath(key, {}, stale, now);
    }
    node->online = false;
    node->last_rebirth_request.reset();  // a request may have been lost with the connection
    node->missing.clear();
    node->by_alias.clear();
    node->by_name.clear();
    node->metrics.clear();
    node->devices.clear();
  }
}

void PrimaryHost::RequestRebirth(Node& node, std::string_view why) {
  const MonoTime now = clock_.Monotonic();
  if (node.last_rebirth_request && now - *node.last_rebirth_request < options_.rebirth_debounce) {
    ++stats_.rebirths_debounced;
    return;
  }
  node.last_rebirth_request = now;
  ++stats_.rebirth_requests;
  log_.Info("{}: requesting a rebirth: {}", node.key.Name(), why);
  sparkplug::Payload p;
  p.timestamp = static_cast<uint64_t>(NowMs());
  sparkplug::Metric m;
  m.name = std::string(kRebirthMetric);
  m.timestamp = p.timestamp;
  m.datatype = sparkplug::DataType::kBoolean;
  m.value = contract::Value(true);
  p.metrics.push_back(std::move(m));
  std::string bytes;
  Status s = encoder_.Encode(p, bytes);
  if (!s.ok()) {
    log_.Error("{}: cannot encode a rebirth request: {}", node.key.Name(), s.ToString());
    return;
  }
  sparkplug::Topic topic;
  topic.type = sparkplug::MessageType::kNCmd;
  topic.group_id = node.key.group;
  topic.edge_node_id = node.key.node;
  listener_.PublishCommand(sparkplug::BuildTopic(topic), bytes);
}

MetricInfo& PrimaryHost::Define(Node& node, std::string_view device, const sparkplug::Metric& m) {
  const std::string path = MetricPath(node.key, device, *m.name);
  auto it = metrics_.find(path);
  if (it == metrics_.end()) {
    auto info = std::make_unique<MetricInfo>();
    info->path = path;
    info->device = std::string(device);
    info->name = *m.name;
    it = metrics_.emplace(path, std::move(info)).first;
  }
  MetricInfo& info = *it->second;
  info.datatype = m.datatype.value_or(sparkplug::DataType::kUnknown);
  info.unit = m.unit.value_or("");
  info.alias = m.alias;
  return info;
}

void PrimaryHost::HandleBirth(Node& node, const sparkplug::Payload& p, std::string_view device) {
  const bool is_node = device.empty();
  const std::string_view what = is_node ? "NBIRTH" : "DBIRTH";
  if (!is_node && !node.online) {
    ++stats_.data_before_birth;
    RequestRebirth(node, fmt::format("DBIRTH of {} before an NBIRTH", device));
    return;
  }
  // A malformed birth changes nothing: everything is checked before the session is touched.
  for (const auto& m : p.metrics) {
    if (!m.name || m.name->empty()) {
      Malformed(node.key.Name(), fmt::format("{}: a metric without a name", what));
      if (!is_node && p.seq && *p.seq <= 255) CheckSeq(node, p, what);
      return;
    }
  }
  if (is_node) {
    const std::optional<uint64_t> bdseq = BdSeqOf(p);
    if (!bdseq) {
      Malformed(node.key.Name(), "NBIRTH without a bdSeq metric");
      return;
    }
    if (!p.seq || *p.seq > 255) {
      Malformed(node.key.Name(), "NBIRTH without a valid seq");
      return;
    }
    // A new session: everything of the old one is forgotten; devices must be born again.
    // The NBIRTH's seq (0 by the specification; tolerated otherwise) starts the count.
    node.online = true;
    node.bdseq = *bdseq;
    node.last_rebirth_request.reset();  // answered: a gap from now on may ask again
    node.expected_seq = static_cast<uint8_t>(*p.seq + 1);
    node.missing.clear();
    node.metrics.clear();
    node.by_name.clear();
    node.by_alias.clear();
    node.devices.clear();
  } else if (!CheckSeq(node, p, what)) {
    return;
  }
  Device* dev = nullptr;
  if (!is_node) {
    dev = &node.devices[std::string(device)];
    // A DBIRTH again (without a DDEATH) replaces the device's metrics.
    for (MetricInfo* old : dev->metrics) {
      if (old->alias) node.by_alias.erase(*old->alias);
    }
    dev->metrics.clear();
    dev->by_name.clear();
    dev->online = true;
  }
  auto& list = is_node ? node.metrics : dev->metrics;
  auto& by_name = is_node ? node.by_name : dev->by_name;
  const int64_t now = NowMs();
  const int64_t payload_t = p.timestamp ? static_cast<int64_t>(*p.timestamp) : now;
  for (const auto& m : p.metrics) {
    MetricInfo& info = Define(node, device, m);
    list.push_back(&info);
    by_name[info.name] = &info;
    if (info.alias) {
      auto [it, fresh] = node.by_alias.emplace(*info.alias, &info);
      if (!fresh && it->second != &info) {
        log_.Warn("{}: {} alias {} of '{}' is already used by '{}'; the later one wins",
                  node.key.Name(), what, *info.alias, info.path, it->second->path);
        it->second = &info;
      }
    }
  }
  ++stats_.births;
  listener_.OnBirth(node.key, device, node.bdseq, list, payload_t);
  for (size_t i = 0; i < p.metrics.size(); ++i) {
    const auto& m = p.metrics[i];
    const int64_t t = m.timestamp ? static_cast<int64_t>(*m.timestamp) : payload_t;
    ++stats_.values;
    listener_.OnValue(*list[i], m, t, sparkplug::QualityOf(m));
  }
}

void PrimaryHost::HandleNodeDeath(Node& node, const sparkplug::Payload& p) {
  const auto bdseq = BdSeqOf(p);
  if (!node.online || !bdseq || *bdseq != node.bdseq) {
    ++stats_.stale_deaths;
    log_.Debug("{}: NDEATH with bdSeq {} ignored (session {}, bdSeq {})", node.key.Name(),
               bdseq ? std::to_string(*bdseq) : "none", node.online ? "open" : "closed",
               node.bdseq);
    return;
  }
  // The specification: the node and its devices go offline at the host's time.
  const int64_t now = NowMs();
  std::vector<MetricInfo*> stale = node.metrics;
  for (auto& [id, dev] : node.devices) {
    stale.insert(stale.end(), dev.metrics.begin(), dev.metrics.end());
  }
  node.online = false;
  node.missing.clear();
  node.devices.clear();
  node.metrics.clear();
  node.by_name.clear();
  node.by_alias.clear();
  ++stats_.deaths;
  log_.Info("{}: offline (NDEATH, bdSeq {})", node.key.Name(), *bdseq);
  listener_.OnDeath(node.key, {}, stale, now);
}

void PrimaryHost::HandleDeviceDeath(Node& node, const sparkplug::Payload& p,
                                    std::string_view device) {
  if (!node.online) {
    ++stats_.stale_deaths;
    return;
  }
  // Even a DDEATH of an unknown device takes its seq, or the next message would look like
  // a gap.
  if (!CheckSeq(node, p, "DDEATH")) return;
  auto it = node.devices.find(device);
  if (it == node.devices.end()) {
    ++stats_.stale_deaths;
    return;
  }
  // The specification: a device goes offline at the DDEATH's own timestamp.
  const int64_t t = p.timestamp ? static_cast<int64_t>(*p.timestamp) : NowMs();
  std::vector<MetricInfo*> stale = std::move(it->second.metrics);
  for (MetricInfo* m : stale) {
    if (m->alias) node.by_alias.erase(*m->alias);
  }
  node.devices.erase(it);
  ++stats_.deaths;
  log_.Info("{}/{}: offline (DDEATH)", node.key.Name(), device);
  listener_.OnDeath(node.key, device, stale, t);
}

void PrimaryHost::HandleData(Node& node, const sparkplug::Payload& p, std::string_view device) {
  const bool is_node = device.empty();
  const std::string_view what = is_node ? "NDATA" : "DDATA";
  Device* dev = nullptr;
  if (node.online && !is_node) {
    auto it = node.devices.find(device);
    if (it != node.devices.end()) dev = &it->second;
  }
  if (!node.online) {
    ++stats_.data_before_birth;
    RequestRebirth(node, fmt::format("{} before an NBIRTH", what));
    return;
  }
  if (!CheckSeq(node, p, what)) return;
  if (!is_node && dev == nullptr) {
    // Within a session the message still took its seq (checked above).
    ++stats_.data_before_birth;
    RequestRebirth(node, fmt::format("DDATA of {} before its DBIRTH", device));
    return;
  }
  const int64_t payload_t = p.timestamp ? static_cast<int64_t>(*p.timestamp) : NowMs();
  auto& by_name = is_node ? node.by_name : dev->by_name;
  bool unknown = false;
  for (const auto& m : p.metrics) {
    MetricInfo* info = nullptr;
    if (m.alias) {
      auto it = node.by_alias.find(*m.alias);
      if (it != node.by_alias.end() && it->second->device == device) info = it->second;
    } else if (m.name) {
      auto it = by_name.find(*m.name);
      if (it != by_name.end()) info = it->second;
    }
    if (info == nullptr) {
      ++stats_.unknown_metrics;
      unknown = true;
      continue;
    }
    const int64_t t = m.timestamp ? static_cast<int64_t>(*m.timestamp) : payload_t;
    ++stats_.values;
    listener_.OnValue(*info, m, t, sparkplug::QualityOf(m));
  }
  if (unknown) {
    RequestRebirth(node, fmt::format("{} of '{}' names a metric its birth did not declare", what,
                                     is_node ? node.key.Name() : std::string(device)));
  }
}

bool PrimaryHost::IsOnlineForTest(const NodeKey& key, std::string_view device) const {
  auto it = nodes_.find(key);
  if (it == nodes_.end() || !it->second->online) return false;
  if (device.empty()) return true;
  return it->second->devices.count(device) > 0;
}

}  // namespace kiln::server
