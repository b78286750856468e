// Sparkplug payload encode/decode throughput (metrics per second).
#include <benchmark/benchmark.h>

#include "contract/sparkplug/payload.h"

namespace kiln::sparkplug {
namespace {

Payload MakeDData(int n) {
  Payload p;
  p.timestamp = 1700000000000;
  p.seq = 7;
  for (int i = 0; i < n; ++i) {
    Metric m;
    m.alias = static_cast<uint64_t>(i + 1);
    m.timestamp = 1700000000000 + i;
    m.datatype = DataType::kDouble;
    m.value = contract::Value(20.0 + i * 0.01);
    p.metrics.push_back(std::move(m));
  }
  return p;
}

void BM_EncodeDData(benchmark::State& state) {
  const Payload p = MakeDData(static_cast<int>(state.range(0)));
  Encoder enc;
  std::string out;
  for (auto _ : state) {
    benchmark::DoNotOptimize(enc.Encode(p, out));
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}
BENCHMARK(BM_EncodeDData)->Arg(1)->Arg(100)->Arg(1000)->ArgNames({"metrics"});

void BM_DecodeDData(benchmark::State& state) {
  Encoder enc;
  std::string bytes;
  if (!enc.Encode(MakeDData(static_cast<int>(state.range(0))), bytes).ok()) {
    state.SkipWithError("encode failed");
    return;
  }
  Decoder dec;
  for (auto _ : state) {
    auto p = dec.Decode(bytes);
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_DecodeDData)->Arg(100)->Arg(1000)->ArgNames({"metrics"});

}  // namespace
}  // namespace kiln::sparkplug

BENCHMARK_MAIN();
