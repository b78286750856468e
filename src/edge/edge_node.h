#pragma once
// EdgeNode: the Sparkplug B 3.0 edge node as a state machine without I/O. It turns
// sessions, samples, device status changes and received commands into the MQTT messages
// to publish (topic, payload, QoS, retain), keeping bdSeq, the one seq counter of the node,
// aliases and the current value of every metric for births. See docs/formats/sparkplug.md.
// Single-threaded: owned by the uplink loop.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "contract/sample.h"
#include "contract/sparkplug/payload.h"
#include "contract/sparkplug/topic.h"
#include "core/clock.h"
#include "core/status.h"
#include "edge/command_gate.h"

namespace kiln::edge {

struct NodeTag {
  contract::TagId id = 0;
  std::string name;
  contract::ValueType type = contract::ValueType::kDouble;
  std::string unit;
};

struct NodeDevice {
  std::string id;
  std::vector<NodeTag> tags;
};

struct EdgeNodeOptions {
  std::string group_id;
  std::string edge_node_id;
  size_t max_metrics_per_message = 1000;  // a larger batch is split into several DDATA
};

struct Message {
  sparkplug::MessageType type = sparkplug::MessageType::kNData;
  std::string topic;
  std::string payload;
  int qos = 0;
  bool retain = false;
};

struct EdgeNodeStats {
  uint64_t messages = 0;      // published births, data and deaths
  uint64_t metrics = 0;       // metric values in DDATA messages
  uint64_t rebirths = 0;      // rebirth requests honoured
  uint64_t bad_commands = 0;  // NCMD/DCMD that could not be decoded or are unsupported
};

class EdgeNode {
 public:
  // REQUIRES: tag ids are unique across devices; ids and names are valid (the config loader
  // checks them). `initial_bd_seq` is the bdSeq of the first session (persisted by the caller).
  EdgeNode(EdgeNodeOptions options, std::vector<NodeDevice> devices, const Clock& clock,
           uint64_t initial_bd_seq = 0);
  ~EdgeNode();

  // Starts a new MQTT connection attempt and returns the NDEATH to register as its Will.
  Message BeginSession();
  // The attempt or session ended. When the broker had accepted it (`established`), the next
  // one uses the next bdSeq (mod 256); attempts the broker never accepted keep it, since no
  // Will of theirs can ever be published.
  void EndSession(bool established);
  bool in_session() const { return in_session_; }
  const EdgeNodeOptions& options() const { return options_; }
  uint64_t bd_seq() const { return bd_seq_; }

  // Until the next Births(), samples and status changes only update the state (used to fold
  // everything queued into the births, which must declare current values).
  void PrepareBirths() { births_sent_ = false; }
  // The births of the session, once subscribed: NBIRTH (seq 0) and one DBIRTH per online device.
  void Births(std::vector<Message>& out);

  // Records samples and, in a session with births sent, appends DDATA messages (one per device
  // and at most max_metrics_per_message metrics each), in sample order. Samples of unknown tags
  // are ignored; samples of offline devices only update the state for the next DBIRTH.
  // `historical` samples predate the current births: they are published with is_historical
  // and do not change the state. Samples of offline devices are not published (see
  // CanPublish).
  void Data(std::span<const contract::Sample> samples, std::vector<Message>& out,
            bool historical = false);
  // Whether Data() would publish a sample of `tag` now: the births are out and its device
  // is online. False for tags not in the configuration.
  bool CanPublish(contract::TagId tag) const;
  bool known_tag(contract::TagId tag) const {
    return tag < tag_device_.size() && tag_device_[tag] >= 0;
  }

  // Sets the node metric "Store/Dropped Samples" (samples the store discarded unsent, see
  // docs/formats/sparkplug.md). It is in every NBIRTH; in a session with births sent, a
  // change appends an NDATA.
  void SetStoreDropped(uint64_t dropped, std::vector<Message>& out);

  // Marks a device (index into the constructor's list) online or offline; in a session this
  // appends its DBIRTH or DDEATH.
  void SetDeviceOnline(size_t device, bool online, std::vector<Message>& out);
  bool device_online(size_t device) const;

  enum class Command { kNone, kRebirth, kWrite };
  // Handles a message on a subscribed topic. NCMD `Node Control/Rebirth` = true gives
  // kRebirth: the caller stops data and publishes Births() again. A DCMD of one of the
  // node's devices gives kWrite: TakeWrites() has one WriteCommand per metric (by name, or
  // by alias resolved to its name; an unknown alias names the tag "#<alias>", which the gate
  // refuses). Errors: InvalidArgument for an undecodable or unsupported command (counted).
  Result<Command> OnMessage(std::string_view topic, std::string_view payload);

  // One write of a DCMD (docs/formats/commands.md).
  struct WriteCommand {
    size_t device = 0;  // index into the constructor's list
    std::string device_id;
    std::string command_id;  // kiln.commandId; empty from hosts that send none
    WriteRequest request;    // tag, value, kiln.expiresAt
  };
  // The writes of the last kWrite.
  std::vector<WriteCommand> TakeWrites() { return std::move(writes_); }

  // The NDEATH to publish before a deliberate disconnect (same bdSeq as the Will).
  Message Death();

  // Topics to subscribe (QoS 1) before the births: NCMD and the devices' DCMD.
  std::vector<std::string> CommandTopics() const;

  const EdgeNodeStats& stats() const { return stats_; }
  // Sets the next seq for tests of the 255 -> 0 wrap.
  void SetSeqForTest(uint64_t seq) { seq_ = seq; }

 private:
  struct TagState;
  struct DeviceState;

  sparkplug::Metric BirthMetric(const TagState& tag) const;
  Result<Command> OnDeviceCommand(std::string_view device, std::string_view topic,
                                  std::string_view payload);
  sparkplug::Metric BdSeqMetric() const;
  Message Build(sparkplug::MessageType type, const std::string& device_id,
                sparkplug::Payload& payload, bool with_seq);
  void DeviceBirth(DeviceState& device, std::vector<Message>& out);

  EdgeNodeOptions options_;
  const Clock& clock_;
  std::vector<DeviceState> devices_;
  std::vector<WriteCommand> writes_;  // of the last DCMD
  std::vector<TagState> tags_;        // indexed by TagId
  std::vector<int32_t> tag_device_;   // TagId -> device index, -1 if unknown
  uint64_t bd_seq_;
  bool in_session_ = false;
  bool births_sent_ = false;
  uint64_t seq_ = 0;
  uint64_t store_dropped_ = 0;
  sparkplug::Encoder encoder_;
  sparkplug::Decoder decoder_;
  EdgeNodeStats stats_;
};

}  // namespace kiln::edge
