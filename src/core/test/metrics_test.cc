#include "core/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kiln {
namespace {

using ::testing::HasSubstr;

TEST(MetricsRegistryTest, RendersPrometheusText) {
  MetricsRegistry r;
  r.GetCounter("kiln_points_total", "Points published", {{"device", "press-3"}}).Increment(5);
  r.GetCounter("kiln_points_total", "Points published", {{"device", "press-3"}}).Increment();
  r.GetGauge("kiln_connected", "1 when connected").Set(1);
  r.AddGaugeCallback("kiln_queue_depth", "Queued samples", {}, [] { return 7.0; });
  const std::string text = r.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("# TYPE kiln_points_total counter\n"));
  EXPECT_THAT(text, HasSubstr("kiln_points_total{device=\"press-3\"} 6\n"));
  EXPECT_THAT(text, HasSubstr("kiln_connected 1\n"));
  EXPECT_THAT(text, HasSubstr("kiln_queue_depth 7\n"));
}

TEST(MetricsRegistryTest, EscapesLabelValues) {
  MetricsRegistry r;
  r.GetCounter("c", "h", {{"k", "a\"b\\c"}}).Increment();
  EXPECT_THAT(r.RenderPrometheus(), HasSubstr("c{k=\"a\\\"b\\\\c\"} 1"));
}

}  // namespace
TEST(MetricsRegistryTest, CounterCallbacksRenderAsCounters) {
  MetricsRegistry m;
  uint64_t total = 41;
  m.AddCounterCallback("kiln_x_total", "things", {}, [&] { return static_cast<double>(++total); });
  const std::string text = m.RenderPrometheus();
  EXPECT_NE(text.find("# TYPE kiln_x_total counter\nkiln_x_total 42\n"), std::string::npos) << text;
}

}  // namespace kiln
