#pragma once
// Signals: how a simulated register changes over time. A SignalConfig is the parsed TOML;
// a Signal evaluates one instance of it at an elapsed time since the server started, so
// values depend only on the (injected) clock and the seed, never on thread scheduling.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace kiln::sim {

enum class SignalKind : uint8_t {
  kConstant,    // value
  kSine,        // offset + amplitude * sin(2 pi t / period_s)
  kRamp,        // sawtooth from min to max over period_s, then back to min
  kRandomWalk,  // from start, one step of uniform size in [-step, step] per update, in [min, max]
  kStep,        // each of values in turn, each held for period_s, cycling
};

// "constant" | "sine" | "ramp" | "random_walk" | "step".
std::optional<SignalKind> ParseSignalKind(std::string_view name);
std::string_view SignalKindName(SignalKind kind);

// The parameters of a signal; each kind reads only its own (see SignalKind).
struct SignalConfig {
  SignalKind kind = SignalKind::kConstant;
  double value = 0;
  double offset = 0;
  double amplitude = 0;
  double period_s = 1;  // > 0 for sine, ramp and step
  double min = 0;
  double max = 0;
  double start = 0;
  double step = 0;
  uint64_t seed = 1;
  std::vector<double> values;  // non-empty for step
};

// One instance of a signal. Instance `index` of `count` (a config's `count` key) is shifted
// by index/count of a cycle (sine, ramp, step) or uses seed + index (random walk), so the
// instances of one definition differ. Keeps a pointer to `config`, which must outlive it.
// Single-threaded: owned by its server's loop.
class Signal {
 public:
  // `update` is the evaluation period: a random walk takes one step per elapsed `update`.
  // REQUIRES: count > 0, index < count, update > 0.
  Signal(const SignalConfig& config, std::chrono::nanoseconds update, uint32_t index,
         uint32_t count);

  // The value at `elapsed` since the start. Random walks only move forward: an earlier time
  // than the last call gives the last value. A walk more than kMaxCatchUpSteps behind (after
  // a long freeze) skips the missed steps instead of replaying them.
  double ValueAt(std::chrono::nanoseconds elapsed);

  static constexpr int64_t kMaxCatchUpSteps = 1000;

 private:
  const SignalConfig* config_;
  double shift_s_ = 0;  // time shift of this instance
  int64_t update_ns_;
  uint64_t rng_state_ = 0;
  int64_t steps_taken_ = 0;
  double walk_value_ = 0;
};

}  // namespace kiln::sim
