#include "sim/signal.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/check.h"

namespace kiln::sim {

namespace {

// SplitMix64: tiny, portable and good enough for a simulated random walk; unlike the
// standard distributions it gives the same sequence with every standard library.
uint64_t NextRandom(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) from the top 53 bits.
double NextUnit(uint64_t& state) {
  return static_cast<double>(NextRandom(state) >> 11) * 0x1.0p-53;
}

double Seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

// The fraction of a cycle of `period` reached at `t`, in [0, 1).
double CycleFraction(double t, double period) {
  const double f = t / period;
  return f - std::floor(f);
}

}  // namespace

std::optional<SignalKind> ParseSignalKind(std::string_view name) {
  if (name == "constant") return SignalKind::kConstant;
  if (name == "sine") return SignalKind::kSine;
  if (name == "ramp") return SignalKind::kRamp;
  if (name == "random_walk") return SignalKind::kRandomWalk;
  if (name == "step") return SignalKind::kStep;
  return std::nullopt;
}

std::string_view SignalKindName(SignalKind kind) {
  switch (kind) {
    case SignalKind::kConstant:
      return "constant";
    case SignalKind::kSine:
      return "sine";
    case SignalKind::kRamp:
      return "ramp";
    case SignalKind::kRandomWalk:
      return "random_walk";
    case SignalKind::kStep:
      return "step";
  }
  return "unknown";
}

Signal::Signal(const SignalConfig& config, std::chrono::nanoseconds update, uint32_t index,
               uint32_t count)
    : config_(&config), update_ns_(update.count()) {
  KILN_CHECK(count > 0 && index < count && update_ns_ > 0);
  const double share = static_cast<double>(index) / count;
  switch (config.kind) {
    case SignalKind::kSine:
    case SignalKind::kRamp:
      shift_s_ = share * config.period_s;
      break;
    case SignalKind::kStep:
      shift_s_ = share * config.period_s * static_cast<double>(config.values.size());
      break;
    case SignalKind::kRandomWalk:
      rng_state_ = config.seed + index;
      walk_value_ = std::clamp(config.start, config.min, config.max);
      break;
    case SignalKind::kConstant:
      break;
  }
}

double Signal::ValueAt(std::chrono::nanoseconds elapsed) {
  const SignalConfig& c = *config_;
  const double t = Seconds(elapsed) + shift_s_;
  switch (c.kind) {
    case SignalKind::kConstant:
      return c.value;
    case SignalKind::kSine:
      return c.offset + c.amplitude * std::sin(2 * std::numbers::pi * CycleFraction(t, c.period_s));
    case SignalKind::kRamp:
      return c.min + (c.max - c.min) * CycleFraction(t, c.period_s);
    case SignalKind::kStep: {
      if (c.values.empty()) return 0;
      const auto n = static_cast<int64_t>(c.values.size());
      const auto slot = static_cast<int64_t>(std::floor(t / c.period_s));
      return c.values[static_cast<size_t>(((slot % n) + n) % n)];
    }
    case SignalKind::kRandomWalk: {
      const int64_t due = elapsed.count() / update_ns_;
      if (due - steps_taken_ > kMaxCatchUpSteps) steps_taken_ = due - kMaxCatchUpSteps;
      for (; steps_taken_ < due; ++steps_taken_) {
        walk_value_ += c.step * (2 * NextUnit(rng_state_) - 1);
        walk_value_ = std::clamp(walk_value_, c.min, c.max);
      }
      return walk_value_;
    }
  }
  return 0;
}

}  // namespace kiln::sim
