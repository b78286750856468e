#pragma once
// Server: kiln-server's runtime. Opens the historian and registry under [storage] path,
// connects to the broker as the Sparkplug primary host, ingests, and serves the REST API,
// server-sent events, the dashboard, /health and /metrics over HTTP.
//
// The MQTT session follows Sparkplug 3.0 for host applications: every CONNECT (clean
// session) carries a retained QoS 1 Will {"online":false,"timestamp":T} on
// spBv1.0/STATE/<host_id>; after the SUBACKs of its own STATE topic and of the namespace it
// publishes the retained QoS 1 birth {"online":true,"timestamp":T} with the same T; if it
// sees an offline STATE of its own it publishes the birth again; on Stop it publishes
// {"online":false} with the current time before DISCONNECT. A lost connection is retried
// with backoff, each time with a new client and a new T.
#include <memory>

#include "core/clock.h"
#include "core/log.h"
#include "core/status.h"
#include "server/config.h"

namespace kiln::server {

class Server {
 public:
  // Opens storage and binds the HTTP port; nothing is connected yet. Errors: from the
  // historian, the registry (naming their files) and the HTTP listener.
  static Result<std::unique_ptr<Server>> Create(const ServerConfig& config, LogSink& sink,
                                                const Clock& clock);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Starts the MQTT session, ingestion and HTTP serving in the background.
  void Start();
  // Publishes the offline STATE, disconnects, drains ingestion, seals the historian heads.
  void Stop();
  uint16_t http_port() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::server
