#pragma once
// The REST API under /api/v1, /health and /metrics (docs/API.md is the reference: every
// route, parameter, answer and error). Handlers are thread-safe; they read the registry and
// the historian and never block ingestion.
#include <functional>
#include <string>

#include "core/clock.h"
#include "core/metrics.h"
#include "historian/historian.h"
#include "http/server.h"
#include "server/commands.h"
#include "server/live.h"
#include "server/registry.h"

namespace kiln::server {

struct ApiContext {
  historian::Historian& historian;
  Registry& registry;
  LiveHub& live;
  MetricsRegistry& metrics;
  const Clock& clock;  // "now" of relative times
  std::string host_id;
  std::function<bool()> mqtt_connected;
  CommandService* commands = nullptr;  // nullptr: the /api/v1/commands routes answer 501
};

// Registers every route on `http`. The context's references must outlive the server.
void RegisterApi(http::HttpServer& http, ApiContext context);

// Historian gauges (series, points, bytes, ...) for /metrics.
void ExportHistorianMetrics(historian::Historian& historian, MetricsRegistry& metrics);

// The JSON error body {"error":{"code":"NOT_FOUND","id":1002,"message":"..."}} and the HTTP
// status that go with a Status.
http::Response ErrorResponse(const Status& status);

}  // namespace kiln::server
