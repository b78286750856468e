#include "edge/scan_engine.h"

#include <cmath>

#include "core/check.h"

namespace kiln::edge {

using contract::Quality;
using contract::Sample;

ScanEngine::ScanEngine(std::vector<ScanTag> tags) {
  if (!tags.empty()) first_id_ = tags.front().id;
  tags_.reserve(tags.size());
  for (size_t i = 0; i < tags.size(); ++i) {
    KILN_CHECK(tags[i].id == first_id_ + i) << "tag ids must be consecutive";
    tags_.push_back(State{tags[i], false, {}, {}});
  }
}

ScanEngine::State* ScanEngine::Find(contract::TagId id) {
  if (id < first_id_ || id - first_id_ >= tags_.size()) return nullptr;
  return &tags_[id - first_id_];
}

namespace {

bool ValueChanged(const contract::Value& before, const contract::Value& now, double deadband) {
  if (before.type() != now.type()) return true;
  const auto a = before.AsDouble();
  const auto b = now.AsDouble();
  if (a && b && before.type() != contract::ValueType::kBool) {
    if (std::isnan(*a) || std::isnan(*b)) return std::isnan(*a) != std::isnan(*b);
    return deadband > 0 ? std::fabs(*b - *a) > deadband : *a != *b;
  }
  return !(before == now);
}

}  // namespace

bool ScanEngine::Filter(const Sample& sample, MonoTime now) {
  State* st = Find(sample.tag);
  if (st == nullptr) return false;
  bool publish = !st->published || st->last.quality != sample.quality ||
                 ValueChanged(st->last.value, sample.value, st->tag.deadband);
  if (!publish && st->tag.heartbeat && now - st->last_time >= *st->tag.heartbeat) publish = true;
  if (publish) {
    st->published = true;
    st->last = sample;
    st->last_time = now;
  }
  return publish;
}

std::vector<Sample> ScanEngine::MarkStale(Quality quality, Timestamp when, MonoTime now) {
  std::vector<Sample> out;
  for (auto& st : tags_) {
    if (!st.published || !st.last.quality.IsGood()) continue;
    st.last.quality = quality;
    st.last.source_time = when;
    st.last_time = now;
    out.push_back(st.last);
  }
  return out;
}

std::vector<Sample> ScanEngine::MarkAll(Quality quality, Timestamp when, MonoTime now) {
  std::vector<Sample> out;
  for (auto& st : tags_) {
    if (st.published && st.last.quality == quality) continue;
    st.published = true;
    st.last = Sample{st.tag.id, contract::Value(), quality, when};
    st.last_time = now;
    out.push_back(st.last);
  }
  return out;
}

}  // namespace kiln::edge
