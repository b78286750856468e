// Fuzz target: the Sparkplug B decoder must accept or reject any bytes from the network
// without crashing, and whatever it accepts must encode again.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "contract/sparkplug/payload.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static kiln::sparkplug::Decoder decoder;
  static kiln::sparkplug::Encoder encoder;
  auto payload = decoder.Decode(std::string_view(reinterpret_cast<const char*>(data), size));
  if (payload.ok()) {
    std::string out;
    // Decoded values are typed by their datatype, so they always encode again.
    if (!encoder.Encode(*payload, out).ok()) __builtin_trap();
  }
  return 0;
}
