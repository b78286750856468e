#include "mqtt/config.h"

namespace kiln::mqtt {

std::string ParseMqttTable(const ConfigTable& t, ClientOptions& options) {
  t.RejectUnknownKeys({"url", "client_id", "keepalive_s", "username", "password", "ca_file",
                       "cert_file", "key_file"});
  std::string url;
  if (auto u = t.RequireString("url")) {
    url = *u;
    auto broker = ParseBrokerUrl(*u);
    if (broker.ok()) {
      options.broker = *broker;
    } else {
      t.Error("url", broker.status().message());
    }
  }
  options.client_id = t.GetString("client_id", "");
  options.keepalive_s = static_cast<int>(t.GetInt("keepalive_s", 30, 5, 3600));
  options.username = t.GetString("username", "");
  options.password = t.GetString("password", "");
  options.ca_file = t.GetString("ca_file", "");
  options.cert_file = t.GetString("cert_file", "");
  options.key_file = t.GetString("key_file", "");
  if (options.cert_file.empty() != options.key_file.empty()) {
    t.Error(options.cert_file.empty() ? "key_file" : "cert_file",
            "cert_file and key_file go together");
  }
  if (!options.broker.tls && (!options.ca_file.empty() || !options.cert_file.empty())) {
    t.Error("ca_file", "TLS files are set but the url is not mqtts://");
  }
  return url;
}

}  // namespace kiln::mqtt
