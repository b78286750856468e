#pragma once
// Driver: reads the tags of one field device. Each device runs its own loop (see
// edge/device_runner.h), so a Driver is single-threaded: owned and called by one thread.
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

  // Closes the connection; the next ReadAll() reconnects.
  virtual void Disconnect() = 0;

  // Requests sent to the device since the driver was created.
  virtual uint64_t requests_sent() const = 0;
};

}  // namespace kiln::drivers
