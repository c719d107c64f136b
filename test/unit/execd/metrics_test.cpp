#include "execd/metrics.hpp"
#include "execd/util.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <filesystem>
#include <fstream>
#include <thread>

using namespace osb::execd;

namespace {

void put(const std::string& path, const std::string& text) {
  make_dirs(dirname_of(path));
  std::ofstream{path} << text;
}

constexpr const char* meminfo = "MemTotal:       16384000 kB\n"
                                "MemFree:         1000000 kB\n"
                                "MemAvailable:    8192000 kB\n";

constexpr const char* proc_stat
  = "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 100 0 100 800 0 0 0 0 0 0\n";

class FakeRoot : public ::testing::Test {
protected:
  void SetUp() override {
    root = "/tmp/execd-metrics-test-" + random_hex(4);
    put(root + "/proc/meminfo", meminfo);
    put(root + "/proc/stat", proc_stat);
  }

  void TearDown() override {
    std::filesystem::remove_all(root);
  }

  std::string root;
};

} // namespace

TEST(ExecdMetrics, HostSanity) {
  metrics_sampler m;
  auto before = now_ms();
  auto s = m.sample();
  EXPECT_GT(s.cpu_count, 0);
  EXPECT_GE(s.cpu_used_pct, 0);
  EXPECT_LE(s.cpu_used_pct, 100);
  EXPECT_GT(s.mem_total_mib, 0);
  EXPECT_GE(s.mem_used_mib, 0);
  EXPECT_LE(s.mem_used_mib, s.mem_total_mib);
  EXPECT_GE(s.timestamp, before);
  EXPECT_LE(s.timestamp, now_ms());
  rapidjson::Document doc;
  doc.Parse(s.to_json().c_str());
  ASSERT_FALSE(doc.HasParseError());
  for (auto key : {"cpu_count", "cpu_used_pct", "mem_total_mib",
                   "mem_used_mib", "timestamp"})
    EXPECT_TRUE(doc.HasMember(key)) << key;
  EXPECT_TRUE(doc["timestamp"].IsInt64());
  // A second call soon after reuses the previous sample (no 100 ms sleep).
  auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  m.sample();
  EXPECT_LT(std::chrono::steady_clock::now() - start,
            std::chrono::milliseconds(200));
}

TEST_F(FakeRoot, ProcFallback) {
  metrics_sampler m{root};
  auto s = m.sample();
  EXPECT_EQ(s.mem_total_mib, 16000.0);
  EXPECT_EQ(s.mem_used_mib, 8000.0);
  EXPECT_EQ(s.cpu_used_pct, 0); // /proc/stat did not move
}

TEST_F(FakeRoot, CgroupV1Limits) {
  auto cg = root + "/sys/fs/cgroup";
  put(cg + "/memory/memory.limit_in_bytes", "2147483648\n");
  put(cg + "/memory/memory.usage_in_bytes", "1073741824\n");
  put(cg + "/memory/memory.stat", "cache 10\ntotal_inactive_file 536870912\n");
  put(cg + "/cpu/cpu.cfs_quota_us", "50000\n");
  put(cg + "/cpu/cpu.cfs_period_us", "100000\n");
  put(cg + "/cpuacct/cpuacct.usage", "1000\n");
  metrics_sampler m{root};
  auto s = m.sample();
  EXPECT_EQ(s.mem_total_mib, 2048.0);
  EXPECT_EQ(s.mem_used_mib, 512.0);
  EXPECT_EQ(s.cpu_count, 0.5);
  EXPECT_EQ(s.cpu_used_pct, 0);
}

TEST_F(FakeRoot, CgroupV1UnlimitedUsesHostTotal) {
  auto cg = root + "/sys/fs/cgroup";
  put(cg + "/memory/memory.limit_in_bytes", "9223372036854771712\n");
  put(cg + "/memory/memory.usage_in_bytes", "1073741824\n");
  put(cg + "/cpu/cpu.cfs_quota_us", "-1\n");
  metrics_sampler m{root};
  auto s = m.sample();
  EXPECT_EQ(s.mem_total_mib, 16000.0);
  EXPECT_EQ(s.mem_used_mib, 1024.0); // the cgroup's usage
  EXPECT_GE(s.cpu_count, 1);
}

TEST_F(FakeRoot, CgroupV2Limits) {
  auto cg = root + "/sys/fs/cgroup";
  put(cg + "/cgroup.controllers", "cpu memory\n");
  put(cg + "/memory.max", "1073741824\n");
  put(cg + "/memory.current", "2147483648\n"); // above the limit: clamped
  put(cg + "/memory.stat", "anon 1\ninactive_file 0\n");
  put(cg + "/cpu.max", "200000 100000\n");
  put(cg + "/cpu.stat", "usage_usec 5\nuser_usec 3\n");
  metrics_sampler m{root};
  auto s = m.sample();
  EXPECT_EQ(s.mem_total_mib, 1024.0);
  EXPECT_EQ(s.mem_used_mib, 1024.0);
  EXPECT_LE(s.cpu_count, 2.0);
  put(cg + "/memory.max", "max\n");
  put(cg + "/cpu.max", "max 100000\n");
  s = m.sample();
  EXPECT_EQ(s.mem_total_mib, 16000.0);
}
