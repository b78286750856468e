// kiln-bench commands: the round trip of a write, REST call to confirmed read-back.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "apps/kiln-bench/bench_tools.h"
#include "core/json.h"
#include "http/client.h"

namespace kiln::bench {

int RunCommands(const Args& args) {
  int64_t count = 0;
  if (!args.GetInt("count", 1000, count) || count < 1) return 2;
  auto url = http::ParseHttpUrl(args.Get("server", "http://127.0.0.1:8080"));
  if (!url.ok() || !args.Has("target") || !args.Has("metric")) {
    std::fprintf(stderr,
                 "kiln-bench commands: --server http://host:port --target G/N/D --metric M\n");
    return 2;
  }
  const std::string target = args.Get("target", "");
  const std::string metric = args.Get("metric", "");
  using Clock = std::chrono::steady_clock;
  std::vector<double> ms;
  ms.reserve(static_cast<size_t>(count));
  int failures = 0;
  for (int64_t i = 0; i < count; ++i) {
    std::string body;
    json::Writer w(body);
    w.BeginObject()
        .Key("target")
        .String(target)
        .Key("metric")
        .String(metric)
        .Key("value")
        .Int(i % 1000)
        .Key("ttl_s")
        .Int(10)
        .EndObject();
    http::ClientRequest post;
    post.method = "POST";
    post.path = "/api/v1/commands";
    post.body = body;
    const auto start = Clock::now();
    auto r = http::Fetch(url->first, url->second, post);
    if (!r.ok() || r->status != 202) {
      std::fprintf(stderr, "POST failed: %s\n",
                   r.ok() ? r->body.c_str() : r.status().ToString().c_str());
      return 1;
    }
    auto doc = json::Parse(r->body);
    const json::Value* id = doc.ok() ? doc->Find("id") : nullptr;
    if (!id || !id->AsString()) return 1;
    http::ClientRequest get;
    get.path = fmt::format("/api/v1/commands/{}", *id->AsString());
    std::string state;
    while (true) {
      auto g = http::Fetch(url->first, url->second, get);
      if (!g.ok() || g->status != 200) return 1;
      auto c = json::Parse(g->body);
      const json::Value* s = c.ok() ? c->Find("state") : nullptr;
      state = s && s->AsString() ? std::string(*s->AsString()) : "";
      if (state != "pending" && state != "delivered") break;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (state != "succeeded") {
      ++failures;
      if (failures <= 3)
        std::fprintf(stderr, "command %lld: %s\n", static_cast<long long>(i), state.c_str());
    }
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(p * static_cast<double>(ms.size())))];
  };
  std::printf(
      "%lld commands (%d not succeeded), REST call to confirmed read-back: p50 %.2f ms, "
      "p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
      static_cast<long long>(count), failures, pct(0.50), pct(0.90), pct(0.99), ms.back());
  return failures == 0 ? 0 : 1;
}

}  // namespace kiln::bench
