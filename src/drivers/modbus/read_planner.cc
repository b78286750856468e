#include "drivers/modbus/read_planner.h"

#include <algorithm>
#include <array>
#include <numeric>

#include "core/check.h"

namespace kiln::drivers::modbus {

// The plan is greedy: per kind, take the tags by start address and extend the current request
// with the next tag while the request stays within the limit and the hole before the tag (the
// registers between the request's end and the tag's start) is at most max_gap; otherwise start
// a new request at that tag.
//
// Why it is optimal: call the first tag of each greedy request its leader. No valid request
// can hold two leaders a < c. Let p be the leader just before c (a <= p < c in address order).
// c did not join p's request for one of two reasons. (1) The request would have exceeded the
// limit: c.end - p.start + 1 > limit, and as a.start <= p.start any request holding a and c is
// longer still. (2) The hole before c was wider than max_gap: every tag starting before c ends
// by the end of p's request (tags of earlier requests end before p, or no later than p's
// first tag, which was too long to join them), and every other tag starts at or after c, so
// those registers belong to no tag, lie between a and c, and a request holding both would
// have to read them. So any plan needs one request per leader: as many as the greedy makes.
// The planner tests also check this against an exhaustive search on small cases.

namespace {

constexpr std::array<RegisterKind, 4> kKindOrder = {
    RegisterKind::kCoil, RegisterKind::kDiscreteInput, RegisterKind::kHoldingRegister,
    RegisterKind::kInputRegister};

}  // namespace

uint16_t RequestLimit(RegisterKind kind, const PlanOptions& options) {
  return IsBitKind(kind) ? options.max_bits : options.max_registers;
}

std::vector<ReadRequest> PlanReads(std::span<const ModbusTag> tags,
                                   std::span<const uint32_t> subset, const PlanOptions& options) {
  KILN_CHECK(options.max_registers >= 4 && options.max_registers <= kMaxReadRegisters);
  KILN_CHECK(options.max_bits >= 1 && options.max_bits <= kMaxReadBits);

  std::vector<uint32_t> order(subset.begin(), subset.end());
  // By kind (in kKindOrder), then start, then end: ties do not change the request count.
  auto kind_rank = [](RegisterKind k) {
    return std::find(kKindOrder.begin(), kKindOrder.end(), k) - kKindOrder.begin();
  };
  std::sort(order.begin(), order.end(), [&](uint32_t x, uint32_t y) {
    const ModbusTag& a = tags[x];
    const ModbusTag& b = tags[y];
    if (a.kind != b.kind) return kind_rank(a.kind) < kind_rank(b.kind);
    if (a.address != b.address) return a.address < b.address;
    if (Width(a) != Width(b)) return Width(a) < Width(b);
    return x < y;
  });

  std::vector<ReadRequest> plan;
  uint32_t end = 0;  // last register (or bit) of the open request, plan.back()
  for (uint32_t index : order) {
    const ModbusTag& tag = tags[index];
    KILN_DCHECK(Width(tag) > 0);
    const uint32_t start = tag.address;
    const uint32_t tag_end = start + Width(tag) - 1;
    if (!plan.empty()) {
      ReadRequest& open = plan.back();
      const uint32_t new_end = std::max(end, tag_end);
      if (open.kind == tag.kind && start <= end + 1 + options.max_gap &&
          new_end - open.address + 1 <= RequestLimit(tag.kind, options)) {
        end = new_end;
        open.count = static_cast<uint16_t>(end - open.address + 1);
        open.tags.push_back(index);
        continue;
      }
    }
    end = tag_end;
    plan.push_back(ReadRequest{tag.kind, tag.address, Width(tag), {index}});
  }
  return plan;
}

std::vector<ReadRequest> PlanReads(std::span<const ModbusTag> tags, const PlanOptions& options) {
  std::vector<uint32_t> all(tags.size());
  std::iota(all.begin(), all.end(), 0u);
  return PlanReads(tags, all, options);
}

}  // namespace kiln::drivers::modbus
