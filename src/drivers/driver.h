#pragma once
// Driver: reads the tags of one field device and writes them on command. Each device runs its
// own loop (see edge/device_runner.h), so a Driver is single-threaded: owned and called by one
// thread.
#include <cstdint>
#include <string>
#include <vector>

#include "contract/sample.h"
#include "contract/value.h"
#include "core/status.h"

namespace kiln::drivers {

// What every driver knows of a tag, whatever the protocol.
struct TagInfo {
  contract::TagId id = 0;
  std::string name;                                         // the Sparkplug metric name
  contract::ValueType type = contract::ValueType::kDouble;  // type of the published value
  std::string unit;                                         // engineering unit, may be empty
};

class Driver {
 public:
  virtual ~Driver() = default;

  // Connects when not connected, then reads every tag once. Returns one Sample per tag, in
  // the order of the driver's tag list. A tag the device refused (e.g. a Modbus exception)
  // carries a Bad quality naming the cause; the device itself stays reachable.
  // Errors, meaning the device as a whole did not answer and its tags are stale:
  //   Unavailable: cannot connect, or the connection was lost;
  //   DeadlineExceeded: no answer within the timeout.
  virtual Result<std::vector<contract::Sample>> ReadAll() = 0;

  // Writes `value` to tag `id` and reads the tag back, returning what the device now holds
  // (decoded like a poll). Called on the device's own thread, between polls.
  // Errors: NotFound for an unknown tag; FailedPrecondition when the tag cannot be written by
  // its protocol (a Modbus input register or discrete input); InvalidArgument when the value
  // does not fit the tag (type, range after scale/offset); Aborted when the device refused
  // the write (a Modbus exception: the message names it, e.g. "exception 02 illegal data
  // address"); Unavailable / DeadlineExceeded when the device did not answer.
  virtual Result<contract::Value> WriteAndReadBack(contract::TagId id,
                                                   const contract::Value& value) = 0;

  // True for a driver whose device pushes changes (OPC UA subscriptions). Its ReadAll() waits
  // briefly (at most ~100 ms) for them and returns what arrived since the previous call:
  // possibly nothing, possibly several samples of one tag, oldest first. The device loop then
  // calls it back to back instead of on the poll timer.
  virtual bool pushes_changes() const { return false; }

  // Closes the connection; the next ReadAll() reconnects.
  virtual void Disconnect() = 0;

  // Requests sent to the device since the driver was created.
  virtual uint64_t requests_sent() const = 0;
};

}  // namespace kiln::drivers
