#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace osb::execd {

/// The `/metrics` body.
struct metrics_snapshot {
  double cpu_count = 0;
  double cpu_used_pct = 0;
  double mem_total_mib = 0;
  double mem_used_mib = 0;
  int64_t timestamp = 0;

  /// The JSON body (all five keys).
  std::string to_json() const;
};

/// Samples CPU and memory of the container: from its cgroup (v2, or v1 as
/// mounted by Docker) when there is one with a limit, otherwise from
/// /proc/meminfo and /proc/stat. CPU usage needs two samples; the previous
/// request's sample is used when it is recent, otherwise two samples are
/// taken ~100 ms apart. Thread-safe.
class metrics_sampler {
public:
  /// `root` prefixes /sys and /proc (for tests).
  explicit metrics_sampler(std::string root = "");

  /// Takes a snapshot (may sleep ~100 ms for the CPU sample).
  metrics_snapshot sample();

private:
  struct cpu_sample {
    std::chrono::steady_clock::time_point at;
    /// cgroup CPU time in ns, or /proc/stat busy jiffies.
    uint64_t busy = 0;
    /// /proc/stat total jiffies (0 when `busy` is cgroup time).
    uint64_t total = 0;
  };

  cpu_sample take_cpu() const;
  double cpu_count() const;
  double cpu_pct(const cpu_sample& a, const cpu_sample& b,
                 double cpus) const;
  void memory(double& total_mib, double& used_mib) const;
  std::optional<uint64_t> read_u64(const std::string& rel) const;
  std::optional<uint64_t> stat_field(const std::string& rel,
                                     const std::string& key) const;

  std::string root_;
  bool v2_ = false;
  std::mutex mtx_;
  std::optional<cpu_sample> last_;
};

} // namespace osb::execd
