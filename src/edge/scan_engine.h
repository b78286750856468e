#pragma once
// ScanEngine: report by exception for the tags of one device. A sample passes when its
// quality changed, when its value moved by more than the tag's deadband since the last
// value passed (any change for bool and string values), or when the tag's heartbeat is due.
// It also derives the samples that mark a device's tags stale or failed.
// Single-threaded: owned by one device loop (guard it when shared).
#include <chrono>
#include <optional>
#include <vector>

#include "contract/sample.h"
#include "core/clock.h"

namespace kiln::edge {

struct ScanTag {
  contract::TagId id = 0;
  double deadband = 0;  // absolute, in the published unit; 0 = every change
  std::optional<std::chrono::milliseconds> heartbeat;  // republish an unchanged value this often
};

class ScanEngine {
 public:
  // REQUIRES: the ids of `tags` are consecutive, in order (the config assigns them so).
  explicit ScanEngine(std::vector<ScanTag> tags);

  // Returns true if `sample` must be published, and then remembers it as the tag's last
  // published state. `now` is monotonic time for heartbeats.
  bool Filter(const contract::Sample& sample, MonoTime now);

  // For every tag last published with a Good quality: the same value with `quality` at
  // time `when` (a device that stopped updating). Remembers them as published.
  std::vector<contract::Sample> MarkStale(contract::Quality quality, Timestamp when, MonoTime now);
  // For every tag not already published with `quality`: a null value with `quality` (a
  // device that cannot be reached). Remembers them as published.
  std::vector<contract::Sample> MarkAll(contract::Quality quality, Timestamp when, MonoTime now);

  size_t size() const { return tags_.size(); }

 private:
  struct State {
    ScanTag tag;
    bool published = false;
    contract::Sample last;
    MonoTime last_time;
  };
  State* Find(contract::TagId id);

  std::vector<State> tags_;
  contract::TagId first_id_ = 0;
};

}  // namespace kiln::edge
