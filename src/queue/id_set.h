#pragma once
// IdSet: a set of sample ids kept as disjoint half-open intervals, for the acknowledged ids of
// a queue. Acknowledgements arrive in two lanes (live and backlog), so the set is a few
// intervals, merged as they touch. Not thread-safe.
#include <cstdint>
#include <map>
#include <span>
#include <vector>

namespace kiln::queue {

// The ids [first, first + count).
struct IdRange {
  uint64_t first = 0;
  uint64_t count = 0;
  uint64_t end() const { return first + count; }
  friend bool operator==(const IdRange&, const IdRange&) = default;
};

// Appends [first, first + 1) to `ranges`, extending the last range when contiguous.
void AppendId(std::vector<IdRange>& ranges, uint64_t id);

class IdSet {
 public:
  // Adds [first, end); returns how many ids were not in the set before.
  uint64_t Add(uint64_t first, uint64_t end);
  uint64_t Add(const IdRange& r) { return Add(r.first, r.end()); }
  bool Contains(uint64_t id) const;
  // The smallest id >= `id` that is not in the set.
  uint64_t NextAbsent(uint64_t id) const;
  // Removes every id below `id`.
  void EraseBelow(uint64_t id);
  // Removes every id from `id` on.
  void EraseFrom(uint64_t id);
  // How many ids of [first, end) are in the set.
  uint64_t CountIn(uint64_t first, uint64_t end) const;
  uint64_t size() const { return size_; }
  bool empty() const { return intervals_.empty(); }
  std::vector<IdRange> ranges() const;

 private:
  std::map<uint64_t, uint64_t> intervals_;  // first -> end, disjoint and not touching
  uint64_t size_ = 0;
};

}  // namespace kiln::queue
