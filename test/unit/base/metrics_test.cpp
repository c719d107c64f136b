// The metrics registry: counters, gauges and fixed-bucket histograms in
// families, rendered as Prometheus text exposition 0.0.4; the `process_*`
// families; and `promtool check metrics` on the whole output.

#include "base/metrics.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

using namespace osb;

namespace {

/// Keeps recording on for a test and restores it afterwards.
struct recording_on {
  recording_on() {
    metrics::set_enabled(true);
  }
  ~recording_on() {
    metrics::set_enabled(true);
  }
};

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

} // namespace

TEST(BaseMetrics, CounterFamilyRendersSortedChildrenWithLabels) {
  recording_on on;
  metrics::registry reg;
  auto& f = reg.counters("t_requests_total", "Requests.", {"method", "code"});
  f.with({"GET", "200"}).inc();
  f.with({"GET", "200"}).inc(2);
  f.with({"DELETE", "404"}).inc();
  EXPECT_EQ(reg.render(), "# HELP t_requests_total Requests.\n"
                          "# TYPE t_requests_total counter\n"
                          "t_requests_total{method=\"DELETE\",code=\"404\"} 1\n"
                          "t_requests_total{method=\"GET\",code=\"200\"} 3\n");
}

TEST(BaseMetrics, SameNameReturnsTheSameFamily) {
  metrics::registry reg;
  auto& a = reg.counters("t_total", "A.");
  auto& b = reg.counters("t_total", "B.");
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(&a.with({}), &b.with({}));
}

TEST(BaseMetrics, GaugeGoesUpAndDown) {
  recording_on on;
  metrics::registry reg;
  auto& g = reg.gauges("t_items", "Items.", {"state"});
  g.with({"Running"}).inc();
  g.with({"Running"}).inc();
  g.with({"Running"}).dec();
  g.with({"Paused"}).add(-1);
  EXPECT_EQ(reg.render(), "# HELP t_items Items.\n"
                          "# TYPE t_items gauge\n"
                          "t_items{state=\"Paused\"} -1\n"
                          "t_items{state=\"Running\"} 1\n");
}

TEST(BaseMetrics, HistogramBucketsAreCumulativeAndEndInInf) {
  recording_on on;
  metrics::registry reg;
  static const std::vector<double> bounds{0.1, 1};
  auto& h = reg.histograms("t_seconds", "Durations.", {"op"}, bounds);
  auto& x = h.with({"start"});
  x.observe(0.05);
  x.observe(0.1); // on the bound: counted in le="0.1"
  x.observe(0.5);
  x.observe(7);
  EXPECT_EQ(x.count(), 4u);
  EXPECT_DOUBLE_EQ(x.sum(), 7.65);
  EXPECT_EQ(reg.render(), "# HELP t_seconds Durations.\n"
                          "# TYPE t_seconds histogram\n"
                          "t_seconds_bucket{op=\"start\",le=\"0.1\"} 2\n"
                          "t_seconds_bucket{op=\"start\",le=\"1\"} 3\n"
                          "t_seconds_bucket{op=\"start\",le=\"+Inf\"} 4\n"
                          "t_seconds_sum{op=\"start\"} 7.65\n"
                          "t_seconds_count{op=\"start\"} 4\n");
}

TEST(BaseMetrics, HistogramWithoutLabels) {
  recording_on on;
  metrics::registry reg;
  static const std::vector<double> bounds{1};
  reg.histograms("t_s", "S.", {}, bounds).with({}).observe(2);
  EXPECT_EQ(reg.render(), "# HELP t_s S.\n"
                          "# TYPE t_s histogram\n"
                          "t_s_bucket{le=\"1\"} 0\n"
                          "t_s_bucket{le=\"+Inf\"} 1\n"
                          "t_s_sum 2\n"
                          "t_s_count 1\n");
}

TEST(BaseMetrics, LabelValuesAndHelpAreEscaped) {
  recording_on on;
  metrics::registry reg;
  reg.counters("t_total", "Back\\slash\nnewline.", {"reason"})
    .with({"a\"b\\c\nd"})
    .inc();
  EXPECT_EQ(reg.render(), "# HELP t_total Back\\\\slash\\nnewline.\n"
                          "# TYPE t_total counter\n"
                          "t_total{reason=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(BaseMetrics, DisabledRecordingChangesNothing) {
  recording_on on;
  metrics::registry reg;
  auto& c = reg.counters("t_total", "T.").with({});
  auto& h = reg.histograms("t_seconds", "T.", {}).with({});
  metrics::set_enabled(false);
  c.inc();
  h.observe(1);
  metrics::set_enabled(true);
  EXPECT_EQ(c.value(), 0u);
  EXPECT_EQ(h.count(), 0u);
  c.inc();
  EXPECT_EQ(c.value(), 1u);
}

TEST(BaseMetrics, ConcurrentIncrementsAreNotLost) {
  recording_on on;
  metrics::registry reg;
  auto& f = reg.counters("t_total", "T.", {"k"});
  auto& h = reg.histograms("t_seconds", "T.", {"k"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        f.with({"x"}).inc();
        h.with({"x"}).observe(0.002);
      }
    });
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(f.with({"x"}).value(), 400000u);
  EXPECT_EQ(h.with({"x"}).count(), 400000u);
  EXPECT_NEAR(h.with({"x"}).sum(), 800.0, 1e-6);
}

TEST(BaseMetrics, FormatsValuesLikeTheExpositionFormat) {
  EXPECT_EQ(metrics::format_value(0.005), "0.005");
  EXPECT_EQ(metrics::format_value(60), "60");
  EXPECT_EQ(metrics::format_value(1.0 / 0.0), "+Inf");
  EXPECT_EQ(metrics::format_value(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(metrics::format_value(0.0 / 0.0), "NaN");
}

TEST(BaseMetrics, ProcessFamiliesComeFromProc) {
  std::string out;
  metrics::render_process(out);
  for (auto name :
       {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
        "process_virtual_memory_bytes ", "process_start_time_seconds ",
        "process_open_fds ", "process_max_fds "})
    EXPECT_TRUE(contains(out, std::string{"\n"} + name)) << name << out;
  // The start time is in the past and after 2020.
  auto pos = out.find("\nprocess_start_time_seconds ");
  ASSERT_NE(pos, std::string::npos);
  auto start = std::stod(out.substr(pos + 28));
  EXPECT_GT(start, 1.5e9);
  EXPECT_LE(start, static_cast<double>(time(nullptr)) + 1);
  // One more open descriptor shows.
  auto fds = [] {
    std::string text;
    metrics::render_process(text);
    auto p = text.find("\nprocess_open_fds ");
    return std::stod(text.substr(p + 18));
  };
  auto before = fds();
  auto fd = dup(0);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(fds(), before + 1);
  close(fd);
}

/// `promtool check metrics` (Debian package `prometheus`) accepts a
/// registry with every kind of family and the process families. The
/// package is part of deploy/setup.sh, so a missing promtool fails.
TEST(BaseMetrics, PromtoolAcceptsTheOutput) {
  recording_on on;
  metrics::registry reg;
  reg.counters("osb_test_requests_total", "Requests.", {"method", "code"})
    .with({"GET", "200"})
    .inc();
  reg.gauges("osb_test_items", "Items.", {"state"}).with({"Running"}).inc();
  reg.histograms("osb_test_duration_seconds", "Durations.", {"route"})
    .with({"/sandboxes/{id}"})
    .observe(0.003);
  reg.add_collector(metrics::render_process);
  auto path = std::filesystem::temp_directory_path()
              / ("osb-metrics-" + std::to_string(getpid()) + ".txt");
  {
    std::ofstream out{path};
    out << reg.render();
  }
  ASSERT_EQ(std::system("command -v promtool >/dev/null"), 0)
    << "promtool is missing: apt-get install prometheus";
  auto cmd = "promtool check metrics < " + path.string() + " 2>&1";
  auto rc = std::system(cmd.c_str());
  std::filesystem::remove(path);
  EXPECT_EQ(rc, 0) << "promtool check metrics failed (see above)";
}
