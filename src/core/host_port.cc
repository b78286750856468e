#include "core/host_port.h"

#include <fmt/format.h>

#include <charconv>

namespace kiln {

Result<HostPort> ParseHostPort(std::string_view text, const HostPortOptions& options) {
  std::string_view host = text;
  std::optional<std::string_view> port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgumentError(fmt::format("'{}' has no closing ']'", text));
    }
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return InvalidArgumentError(fmt::format("'{}': expected ':port' after ']'", text));
      }
      port = rest.substr(1);
    }
  } else if (const size_t colon = text.find(':'); colon != std::string_view::npos) {
    if (text.find(':', colon + 1) != std::string_view::npos) {
      return InvalidArgumentError(
          fmt::format("'{}': write an IPv6 address in brackets, as [addr]:port", text));
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty()) {
    return InvalidArgumentError(fmt::format("'{}' has no host (use host:port)", text));
  }
  HostPort out{std::string(host), 0};
  if (!port) {
    if (!options.default_port) {
      return InvalidArgumentError(fmt::format("'{}' has no port (use host:port)", text));
    }
    out.port = *options.default_port;
    return out;
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port->data(), port->data() + port->size(), value);
  const unsigned min = options.allow_port_zero ? 0 : 1;
  if (port->empty() || ec != std::errc() || end != port->data() + port->size() || value < min ||
      value > 65535) {
    return InvalidArgumentError(
        fmt::format("'{}': '{}' is not a port ({}..65535)", text, *port, min));
  }
  out.port = static_cast<uint16_t>(value);
  return out;
}

}  // namespace kiln
