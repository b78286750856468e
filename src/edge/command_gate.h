#pragma once
// CommandGate: the OT-owned gate every write of a command passes before it reaches a device
// (docs/formats/commands.md). It applies the command's expiry (`kiln.expiresAt`) and the
// rules the edge config sets per tag (WriteRules: writable, min, max, min_write_interval,
// interlock), and either allows the write, with the value converted to the tag's type, or
// refuses it with the command-result state (`rejected` or `expired`) and a reason for people.
//
// Sans-IO: it reads the injected Clock, the current tag values it is handed, and nothing
// else. One gate per device, owned by that device's loop. Thread-compatible: Check() is
// const; RecordWrite() needs exclusive access.
//
// Usage on the device thread, for each metric of a DCMD:
//   GateDecision d = gate.Check({name, value, expires_at}, last_read_by_id);
//   if (!d.allowed()) { report d.state, d.reason; continue; }
//   gate.RecordWrite(name, clock.Monotonic());  // before or after the device write
//   write d.value to tag d.tag, read it back, report succeeded / failed.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "contract/sample.h"
#include "contract/value.h"
#include "core/clock.h"
#include "edge/config.h"

namespace kiln::edge {

// The gate's verdict. kRejected and kExpired are the command-result states of the same name.
enum class GateState : uint8_t {
  kAllowed,
  kRejected,  // a rule refused it: unknown tag, not writable, wrong kind of value, out of
              // range, too soon after the last write, interlock closed
  kExpired,   // it arrived after its kiln.expiresAt
};

// "allowed", "rejected", "expired".
std::string_view GateStateName(GateState state);

struct WriteRequest {
  std::string tag;                      // the metric name (resolve an alias with FindTag(id))
  contract::Value value;                // as the command sent it
  std::optional<Timestamp> expires_at;  // kiln.expiresAt; nullopt: never expires
};

struct GateDecision {
  GateState state = GateState::kAllowed;
  std::string reason;  // why it was refused; empty when allowed
  // The tag written, when the device has it (also set for most refusals).
  std::optional<contract::TagId> tag;
  // When allowed: the value to write, as the tag's published type (TagConfig::type), exact
  // (an integer tag gets the integer, a bool tag true or false). Null when refused.
  contract::Value value;

  bool allowed() const { return state == GateState::kAllowed; }
};

// The current value and quality of a tag of the device, by id; nullopt when it has none yet.
// For the interlock the caller should hand the last value read from the device, not the
// last one published (a deadband may hold that one back).
using CurrentSample = std::function<std::optional<contract::Sample>(contract::TagId id)>;

class CommandGate {
 public:
  // Copies the tags of `device`: their names, ids, published types, WriteRules and, for a
  // Modbus device, the raw register types and scaling (a value the register cannot hold is
  // refused rather than clamped). `clock` must outlive the gate.
  CommandGate(const DeviceConfig& device, const Clock& clock);

  // Decides one write, in this order:
  //   expired:  clock.Now() is after request.expires_at ("expired 1.2 s before it arrived");
  //   rejected: no such tag ("no tag X on device D"), not writable ("X is not writable"), a
  //             value of the wrong kind (null, a string for a number, a bool for a number,
  //             a fraction or an overflow for an integer tag, 2 for a bool tag, NaN), outside
  //             [min, max] ("72.5 is above max 70"), an interlock whose tag has no current
  //             Good value equal to `equals` ("interlock: Mode is 0, needs 1"), less than
  //             min_write_interval since the last RecordWrite of the tag ("last write 0.8 s
  //             ago; min_write_interval is 2 s").
  // Bounds compare in float precision when the value or the tag is float32. `current` may
  // be empty (then every interlock is closed). Does not count as a write: call RecordWrite.
  GateDecision Check(const WriteRequest& request, const CurrentSample& current) const;

  // Records that a write of `tag` was sent to the device at `when` (monotonic), for the
  // min_write_interval rule. Call it for every write the gate allowed and the device was sent,
  // whatever came of it: a failed write (Modbus exception, timeout) counts too, since a timed
  // out write may still have reached the device, and a retry loop must not hammer the process.
  // Refused writes are never recorded. An unknown tag is ignored.
  void RecordWrite(std::string_view tag, MonoTime when);

  // The tag named `name` / with id `id` (a Sparkplug alias is the id + 1), or nullptr.
  const TagConfig* FindTag(std::string_view name) const;
  const TagConfig* FindTag(contract::TagId id) const;
  const std::string& device_id() const { return device_id_; }

 private:
  struct Tag {
    TagConfig config;
    // The raw Modbus type and scaling, when the device is a Modbus device.
    std::optional<contract::ValueType> raw_type;
    double scale = 1;
    double offset = 0;
    std::optional<MonoTime> last_write;
  };
  const Tag* Find(std::string_view name) const;

  std::string device_id_;
  std::vector<Tag> tags_;
  std::map<std::string, size_t, std::less<>> by_name_;  // index in tags_
  const Clock& clock_;
};

}  // namespace kiln::edge
