#pragma once
// Sample: one reading of one tag, as it travels from a driver to the publisher.
#include <cstdint>

#include "contract/quality.h"
#include "contract/value.h"
#include "core/clock.h"

namespace kiln::contract {

// Identifies a tag within one edge node: assigned at configuration time, dense from 0.
using TagId = uint32_t;

struct Sample {
  TagId tag = 0;
  Value value;
  Quality quality;
  Timestamp source_time;  // when the device produced (or the driver read) the value

  friend bool operator==(const Sample&, const Sample&) = default;
};

}  // namespace kiln::contract
