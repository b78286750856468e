// kiln: the command-line client of kiln-server's REST API (docs/API.md).
//   kiln cmd write GROUP/NODE/DEVICE/METRIC VALUE [--ttl 30s] [--key K]   write and wait
//   kiln cmd list [--target GROUP/NODE/DEVICE] [--limit N]                recent commands
// Options everywhere: --server http://host:port (default $KILN_SERVER or
// http://127.0.0.1:8080), --user NAME (recorded in the audit trail; default $USER).
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/config.h"
#include "core/json.h"
#include "core/time_format.h"
#include "http/client.h"

namespace {

using namespace kiln;

constexpr int kExitOk = 0;
constexpr int kExitCommandFailed = 1;  // the command ended failed, rejected or expired
constexpr int kExitUsage = 2;
constexpr int kExitServer = 3;  // the server could not be reached or refused the request

constexpr char kUsage[] =
    "kiln: command-line client of kiln-server\n"
    "\n"
    "Usage:\n"
    "  kiln cmd write GROUP/NODE/DEVICE/METRIC VALUE [--ttl 30s] [--key IDEMPOTENCY_KEY]\n"
    "      writes VALUE (a number, true or false) to a device tag through the edge's gate,\n"
    "      waits for the final state and prints it (also the read-back value).\n"
    "      The metric is everything after the third '/'. Without --key a random idempotency\n"
    "      key is used and printed: repeat with --key KEY and it never writes twice.\n"
    "  kiln cmd list [--target GROUP/NODE/DEVICE] [--limit 20]\n"
    "      the most recent commands, newest first.\n"
    "  kiln --help | --version\n"
    "\n"
    "Options:\n"
    "  --server URL   kiln-server (default $KILN_SERVER, else http://127.0.0.1:8080)\n"
    "  --user NAME    who you are, for the audit trail (default $USER)\n"
    "\n"
    "Exit codes: 0 succeeded (write) or listed, 1 the command ended failed, rejected or\n"
    "expired, 2 usage, 3 the server could not be reached or refused the request (4xx/5xx).\n";

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;
};

std::optional<Args> Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string_view s = argv[i];
    if (s == "--help" || s == "-h" || s == "--version") {
      a.options[std::string(s.substr(s.find_first_not_of('-')))] = "";
    } else if (s.starts_with("--")) {
      s.remove_prefix(2);
      if (const size_t eq = s.find('='); eq != std::string_view::npos) {
        a.options[std::string(s.substr(0, eq))] = std::string(s.substr(eq + 1));
      } else if (i + 1 < argc) {
        a.options[std::string(s)] = argv[++i];
      } else {
        std::fprintf(stderr, "kiln: --%s needs a value (see --help)\n", std::string(s).c_str());
        return std::nullopt;
      }
    } else {
      a.positional.emplace_back(s);
    }
  }
  return a;
}

std::string Option(const Args& a, const std::string& key, std::string fallback) {
  auto it = a.options.find(key);
  return it == a.options.end() ? fallback : it->second;
}

struct Client {
  std::string host;
  uint16_t port = 0;
  std::string user;

  Result<http::ClientResponse> Call(const std::string& method, const std::string& path,
                                    const std::string& body = {}) const {
    http::ClientRequest r;
    r.method = method;
    r.path = path;
    r.body = body;
    if (!user.empty()) r.headers["X-Kiln-User"] = user;
    return http::Fetch(host, port, r);
  }
};

// Prints the server's error message of a non-2xx answer.
int ServerError(const http::ClientResponse& r) {
  auto doc = json::Parse(r.body);
  const json::Value* err = doc.ok() ? doc->Find("error") : nullptr;
  const json::Value* msg = err ? err->Find("message") : nullptr;
  std::fprintf(stderr, "kiln: the server answered %d: %s\n", r.status,
               msg && msg->AsString() ? std::string(*msg->AsString()).c_str() : r.body.c_str());
  return kExitServer;
}

std::string Str(const json::Value& obj, std::string_view key) {
  const json::Value* v = obj.Find(key);
  if (!v) return "";
  if (auto s = v->AsString()) return std::string(*s);
  if (v->is_null()) return "";
  return v->ToJson();
}

std::string When(const json::Value& obj, std::string_view key) {
  const json::Value* v = obj.Find(key);
  if (!v || !v->AsInt64()) return "-";
  return FormatRfc3339Millis(FromEpochMillis(*v->AsInt64()));
}

int Write(const Client& client, const Args& a) {
  if (a.positional.size() != 4) {
    std::fprintf(stderr, "kiln: usage: kiln cmd write GROUP/NODE/DEVICE/METRIC VALUE\n");
    return kExitUsage;
  }
  // GROUP/NODE/DEVICE/METRIC: the metric is everything after the third '/' (metric names may
  // contain '/').
  const std::string& path = a.positional[2];
  size_t slash = std::string::npos;
  for (int i = 0, from = 0; i < 3; ++i) {
    slash = path.find('/', static_cast<size_t>(from));
    if (slash == std::string::npos) break;
    from = static_cast<int>(slash) + 1;
  }
  if (slash == std::string::npos || slash + 1 == path.size()) {
    std::fprintf(stderr, "kiln: '%s': expected GROUP/NODE/DEVICE/METRIC\n", path.c_str());
    return kExitUsage;
  }
  const std::string& value_text = a.positional[3];
  std::string value_json;
  if (value_text == "true" || value_text == "false") {
    value_json = value_text;
  } else {
    char* end = nullptr;
    const double v = std::strtod(value_text.c_str(), &end);
    if (end == value_text.c_str() || *end != '\0') {
      std::fprintf(stderr, "kiln: '%s' is not a number, true or false\n", value_text.c_str());
      return kExitUsage;
    }
    json::Writer w(value_json);
    w.Number(v);
  }
  auto ttl = ParseDuration(Option(a, "ttl", "30s"));
  if (!ttl.ok()) {
    std::fprintf(stderr, "kiln: --ttl: %s\n", ttl.status().message().c_str());
    return kExitUsage;
  }
  std::string body;
  json::Writer w(body);
  w.BeginObject()
      .Key("target")
      .String(path.substr(0, slash))
      .Key("metric")
      .String(path.substr(slash + 1))
      .Key("value")
      .Raw(value_json)
      .Key("ttl_s")
      .Number(static_cast<double>(ttl->count()) / 1000);
  // Always an idempotency key (a random one unless given), printed, so that running the same
  // command again with --key after a timeout can never write twice.
  std::string key = Option(a, "key", "");
  if (key.empty()) {
    std::random_device rd;
    key = fmt::format("cli-{:08x}{:08x}", rd(), rd());
  }
  w.Key("idempotency_key").String(key);
  w.EndObject();
  auto r = client.Call("POST", "/api/v1/commands", body);
  if (!r.ok()) {
    std::fprintf(stderr, "kiln: %s\n", r.status().ToString().c_str());
    return kExitServer;
  }
  if (r->status != 202) return ServerError(*r);
  std::fprintf(stderr, "idempotency key %s (repeat with --key %s: never a second write)\n",
               key.c_str(), key.c_str());
  auto doc = json::Parse(r->body);
  if (!doc.ok()) return ServerError(*r);
  const std::string id = Str(*doc, "id");
  std::fprintf(stderr, "command %s: %s\n", id.c_str(), Str(*doc, "state").c_str());
  // Wait for the final state: at most the ttl plus the server's grace for a result.
  const auto deadline = std::chrono::steady_clock::now() + *ttl + std::chrono::seconds(10);
  std::string last = Str(*doc, "state");
  while (true) {
    auto g = client.Call("GET", "/api/v1/commands/" + id);
    if (!g.ok()) {
      std::fprintf(stderr, "kiln: %s\n", g.status().ToString().c_str());
      return kExitServer;
    }
    if (g->status != 200) return ServerError(*g);
    auto c = json::Parse(g->body);
    if (!c.ok()) return ServerError(*g);
    const std::string state = Str(*c, "state");
    if (state != last) {
      std::fprintf(stderr, "command %s: %s\n", id.c_str(), state.c_str());
      last = state;
    }
    if (state != "pending" && state != "delivered") {
      std::printf("%s %s/%s = %s: %s", id.c_str(), Str(*c, "target").c_str(),
                  Str(*c, "metric").c_str(), Str(*c, "value").c_str(), state.c_str());
      if (const std::string rb = Str(*c, "read_back"); !rb.empty()) {
        std::printf(" (read back %s)", rb.c_str());
      }
      if (const std::string why = Str(*c, "reason"); !why.empty()) std::printf(": %s", why.c_str());
      std::printf("\n");
      return state == "succeeded" ? kExitOk : kExitCommandFailed;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "kiln: command %s still %s; see kiln cmd list\n", id.c_str(),
                   state.c_str());
      return kExitCommandFailed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

int List(const Client& client, const Args& a) {
  std::string path = "/api/v1/commands?limit=" + Option(a, "limit", "20");
  if (auto target = Option(a, "target", ""); !target.empty()) {
    std::string enc;
    for (unsigned char c : target) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        enc += static_cast<char>(c);
      } else {
        enc += fmt::format("%{:02X}", c);
      }
    }
    path += "&target=" + enc;
  }
  auto r = client.Call("GET", path);
  if (!r.ok()) {
    std::fprintf(stderr, "kiln: %s\n", r.status().ToString().c_str());
    return kExitServer;
  }
  if (r->status != 200) return ServerError(*r);
  auto doc = json::Parse(r->body);
  const json::Value* list = doc.ok() ? doc->Find("commands") : nullptr;
  if (!list) return ServerError(*r);
  std::printf("%-24s %-10s %-26s %-40s %-10s %s\n", "CREATED", "STATE", "ID", "TARGET/METRIC",
              "VALUE", "REASON / READ BACK");
  for (const json::Value& c : list->elements()) {
    std::string detail = Str(c, "reason");
    if (detail.empty() && !Str(c, "read_back").empty()) detail = "read back " + Str(c, "read_back");
    std::printf("%-24s %-10s %-26s %-40s %-10s %s\n", When(c, "created").c_str(),
                Str(c, "state").c_str(), Str(c, "id").c_str(),
                (Str(c, "target") + "/" + Str(c, "metric")).c_str(), Str(c, "value").c_str(),
                detail.c_str());
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  auto args = Parse(argc, argv);
  if (!args) return kExitUsage;
  if (args->options.count("help") || args->options.count("h")) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (args->options.count("version")) {
    std::printf("kiln %s\n", KILN_VERSION);
    return kExitOk;
  }
  const auto& pos = args->positional;
  if (pos.size() < 2 || pos[0] != "cmd" || (pos[1] != "write" && pos[1] != "list")) {
    std::fputs(kUsage, stderr);
    return kExitUsage;
  }
  const char* env_server = std::getenv("KILN_SERVER");
  auto url = http::ParseHttpUrl(
      Option(*args, "server", env_server ? env_server : "http://127.0.0.1:8080"));
  if (!url.ok()) {
    std::fprintf(stderr, "kiln: --server: %s\n", url.status().message().c_str());
    return kExitUsage;
  }
  const char* env_user = std::getenv("USER");
  Client client{url->first, url->second, Option(*args, "user", env_user ? env_user : "")};
  return pos[1] == "write" ? Write(client, *args) : List(client, *args);
}
