// Benchmarks of the Modbus driver: the codec, the read planner, and a ReadAll loop against a
// real libmodbus server on loopback.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "drivers/modbus/codec.h"
#include "drivers/modbus/modbus_driver.h"
#include "drivers/modbus/read_planner.h"
#include "drivers/modbus/testing/loopback_server.h"

namespace kiln::drivers::modbus {
namespace {

using contract::ValueType;

void BM_DecodeFloat32(benchmark::State& state) {
  const auto order = static_cast<WordOrder>(state.range(0));
  // 123.456f in each order, PROTOCOLS.md A3.
  const uint16_t golden[4][2] = {
      {0x42F6, 0xE979}, {0xE979, 0x42F6}, {0xF642, 0x79E9}, {0x79E9, 0xF642}};
  std::vector<uint16_t> registers(golden[state.range(0)], golden[state.range(0)] + 2);
  for (auto _ : state) {
    benchmark::DoNotOptimize(registers.data());
    Result<contract::Value> value = DecodeRegisters(registers, ValueType::kFloat, order);
    benchmark::DoNotOptimize(value);
  }
  state.SetLabel(std::string(WordOrderName(order)));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeFloat32)->DenseRange(0, 3)->ArgName("order");

void BM_PlanReads(benchmark::State& state) {
  std::vector<ModbusTag> tags;
  for (int64_t i = 0; i < state.range(0); ++i) {
    ModbusTag tag;
    tag.address = static_cast<uint16_t>(state.range(0) - 1 - i);  // reversed: the sort works
    tags.push_back(tag);
  }
  size_t requests = 0;
  for (auto _ : state) {
    std::vector<ReadRequest> plan = PlanReads(tags, PlanOptions{});
    requests = plan.size();
    benchmark::DoNotOptimize(plan);
  }
  if (requests != (tags.size() + kMaxReadRegisters - 1) / kMaxReadRegisters) {
    state.SkipWithError("the plan is not the optimal cover");
  }
  state.counters["requests"] = static_cast<double>(requests);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_PlanReads)->Arg(10'000)->ArgName("tags");

void BM_ModbusReadLoopback(benchmark::State& state) {
  const auto registers = static_cast<uint16_t>(state.range(0));
  auto server = LoopbackServer::Start();
  if (!server.ok()) {
    state.SkipWithError(server.status().ToString().c_str());
    return;
  }
  ModbusDeviceConfig config;
  config.host = "127.0.0.1";
  config.port = (*server)->port();
  for (uint16_t a = 0; a < registers; ++a) {
    ModbusTag tag;
    tag.id = a;
    tag.address = a;
    config.tags.push_back(tag);
    (*server)->SetRegister(RegisterKind::kHoldingRegister, a, a);
  }
  SystemClock clock;
  NullSink sink;
  auto driver = ModbusDriver::Create(config, clock, Logger(sink, "bench"));
  if (!driver.ok()) {
    state.SkipWithError(driver.status().ToString().c_str());
    return;
  }
  const uint64_t optimal = PlanReads(config.tags, PlanOptions{}).size();
  for (auto _ : state) {
    auto samples = (*driver)->ReadAll();
    if (!samples.ok()) {
      state.SkipWithError(samples.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(samples);
  }
  const uint64_t requests = (*driver)->stats().requests;
  if (requests != optimal * state.iterations()) {
    state.SkipWithError("requests issued differ from the optimal cover");
  }
  state.counters["requests/read"] = static_cast<double>(optimal);
  state.counters["requests"] =
      benchmark::Counter(static_cast<double>(requests), benchmark::Counter::kIsRate);
  state.SetItemsProcessed(state.iterations() * registers);  // registers/s
}
BENCHMARK(BM_ModbusReadLoopback)->Arg(1000)->ArgName("registers")->UseRealTime();

}  // namespace
}  // namespace kiln::drivers::modbus

BENCHMARK_MAIN();
