#pragma once
// The [mqtt] table shared by every Kiln binary's config: url, client_id, keepalive_s,
// username, password, ca_file, cert_file, key_file (docs/CONFIGURATION.md).
#include <string>

#include "core/config.h"
#include "mqtt/client.h"

namespace kiln::mqtt {

// Reads `table` into `options` (client_id stays empty when not given: the caller derives
// one) and returns the url as written. Problems are recorded on the table (file:line: key).
std::string ParseMqttTable(const ConfigTable& table, ClientOptions& options);

}  // namespace kiln::mqtt
