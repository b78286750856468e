// The edge pipeline from a driver's samples to Sparkplug bytes: report-by-exception filter,
// then EdgeNode::Data (DDATA by alias, protobuf encoding). Target: >= 2 M points/s on one core.
#include <benchmark/benchmark.h>

#include "edge/edge_node.h"
#include "edge/scan_engine.h"

namespace kiln::edge {
namespace {

using contract::Sample;
using contract::Value;

constexpr int kTags = 10000;

std::vector<NodeDevice> Devices() {
  NodeDevice d{"bench", {}};
  for (int i = 0; i < kTags; ++i) {
    d.tags.push_back(NodeTag{static_cast<contract::TagId>(i), "Tag" + std::to_string(i),
                             contract::ValueType::kDouble, "degC"});
  }
  return {d};
}

// Every iteration: one poll of 10,000 changing tags -> filter -> DDATA bytes.
void BM_SamplesToSparkplug(benchmark::State& state) {
  FakeClock clock;
  EdgeNode node({"Plant1", "gw-01", static_cast<size_t>(state.range(0))}, Devices(), clock);
  std::vector<Message> out;
  node.SetDeviceOnline(0, true, out);
  node.BeginSession();
  node.Births(out);
  std::vector<ScanTag> scan;
  for (int i = 0; i < kTags; ++i) scan.push_back({static_cast<contract::TagId>(i), 0.0, {}});
  ScanEngine engine(std::move(scan));
  std::vector<Sample> poll(kTags);
  std::vector<Sample> passed;
  passed.reserve(kTags);
  double v = 0;
  size_t bytes = 0;
  for (auto _ : state) {
    v += 1.0;
    const Timestamp now = clock.Now();
    for (int i = 0; i < kTags; ++i) {
      poll[i] = Sample{static_cast<contract::TagId>(i), Value(v + i), {}, now};
    }
    passed.clear();
    for (const auto& s : poll) {
      if (engine.Filter(s, MonoTime())) passed.push_back(s);
    }
    out.clear();
    node.Data(passed, out);
    for (const auto& m : out) bytes += m.payload.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kTags);
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_SamplesToSparkplug)->Arg(500)->Arg(1000)->ArgNames({"per_message"});

// EdgeNode::Data alone on prepared samples.
void BM_EdgeNodeData(benchmark::State& state) {
  FakeClock clock;
  EdgeNode node({"Plant1", "gw-01", 1000}, Devices(), clock);
  std::vector<Message> out;
  node.SetDeviceOnline(0, true, out);
  node.BeginSession();
  node.Births(out);
  std::vector<Sample> samples;
  for (int i = 0; i < kTags; ++i) {
    samples.push_back(Sample{static_cast<contract::TagId>(i), Value(1.5 * i), {}, clock.Now()});
  }
  for (auto _ : state) {
    out.clear();
    node.Data(samples, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kTags);
}
BENCHMARK(BM_EdgeNodeData);

}  // namespace
}  // namespace kiln::edge

BENCHMARK_MAIN();
