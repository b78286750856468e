#include "queue/id_set.h"

#include <algorithm>

namespace kiln::queue {

void AppendId(std::vector<IdRange>& ranges, uint64_t id) {
  if (!ranges.empty() && ranges.back().end() == id) {
    ++ranges.back().count;
  } else {
    ranges.push_back(IdRange{id, 1});
  }
}

uint64_t IdSet::Add(uint64_t first, uint64_t end) {
  if (first >= end) return 0;
  const uint64_t before = size_;
  // Merge every interval that overlaps or touches [first, end).
  auto it = intervals_.upper_bound(first);
  if (it != intervals_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= first) it = prev;
  }
  while (it != intervals_.end() && it->first <= end) {
    first = std::min(first, it->first);
    end = std::max(end, it->second);
    size_ -= it->second - it->first;
    it = intervals_.erase(it);
  }
  intervals_.emplace(first, end);
  size_ += end - first;
  return size_ - before;
}

bool IdSet::Contains(uint64_t id) const {
  auto it = intervals_.upper_bound(id);
  if (it == intervals_.begin()) return false;
  return std::prev(it)->second > id;
}

uint64_t IdSet::NextAbsent(uint64_t id) const {
  auto it = intervals_.upper_bound(id);
  if (it == intervals_.begin()) return id;
  auto prev = std::prev(it);
  return prev->second > id ? prev->second : id;
}

void IdSet::EraseBelow(uint64_t id) {
  while (!intervals_.empty() && intervals_.begin()->first < id) {
    auto it = intervals_.begin();
    const uint64_t first = it->first;
    const uint64_t end = it->second;
    intervals_.erase(it);
    size_ -= end - first;
    if (end > id) {
      intervals_.emplace(id, end);
      size_ += end - id;
      break;
    }
  }
}

void IdSet::EraseFrom(uint64_t id) {
  while (!intervals_.empty()) {
    auto it = std::prev(intervals_.end());
    if (it->second <= id) break;
    const uint64_t first = it->first;
    const uint64_t end = it->second;
    intervals_.erase(it);
    size_ -= end - first;
    if (first < id) {
      intervals_.emplace(first, id);
      size_ += id - first;
      break;
    }
  }
}

uint64_t IdSet::CountIn(uint64_t first, uint64_t end) const {
  uint64_t n = 0;
  auto it = intervals_.upper_bound(first);
  if (it != intervals_.begin()) --it;
  for (; it != intervals_.end() && it->first < end; ++it) {
    const uint64_t lo = std::max(first, it->first);
    const uint64_t hi = std::min(end, it->second);
    if (hi > lo) n += hi - lo;
  }
  return n;
}

std::vector<IdRange> IdSet::ranges() const {
  std::vector<IdRange> out;
  out.reserve(intervals_.size());
  for (const auto& [first, end] : intervals_) out.push_back(IdRange{first, end - first});
  return out;
}

}  // namespace kiln::queue
