#include "execd/metrics.hpp"

#include "execd/json.hpp"
#include "execd/util.hpp"

#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <thread>

namespace osb::execd {

namespace {

/// A cgroup "limit" at or above this means "no limit".
constexpr uint64_t unlimited = uint64_t{1} << 60;

constexpr double mib = 1024.0 * 1024.0;

} // namespace

std::string metrics_snapshot::to_json() const {
  json_writer w;
  w.begin_object();
  w.key("cpu_count").number(cpu_count);
  w.key("cpu_used_pct").number(cpu_used_pct);
  w.key("mem_total_mib").number(mem_total_mib);
  w.key("mem_used_mib").number(mem_used_mib);
  w.key("timestamp").integer(timestamp);
  w.end_object();
  return w.take();
}

metrics_sampler::metrics_sampler(std::string root) : root_(std::move(root)) {
  struct stat st{};
  v2_ = ::stat((root_ + "/sys/fs/cgroup/cgroup.controllers").c_str(), &st)
        == 0;
}

std::optional<uint64_t> metrics_sampler::read_u64(const std::string& rel) const {
  std::string text;
  if (!read_file(root_ + rel, text))
    return std::nullopt;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  if (text == "max")
    return unlimited;
  return parse_u64(text);
}

std::optional<uint64_t>
metrics_sampler::stat_field(const std::string& rel,
                            const std::string& key) const {
  std::string text;
  if (!read_file(root_ + rel, text))
    return std::nullopt;
  std::istringstream in{text};
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v)
    if (k == key)
      return v;
  return std::nullopt;
}

double metrics_sampler::cpu_count() const {
  double cpus = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0)
    cpus = CPU_COUNT(&set);
  if (cpus <= 0)
    cpus = static_cast<double>(::sysconf(_SC_NPROCESSORS_ONLN));
  if (cpus <= 0)
    cpus = 1;
  // A CPU quota caps the usable CPUs.
  double quota_cpus = 0;
  if (v2_) {
    std::string text;
    if (read_file(root_ + "/sys/fs/cgroup/cpu.max", text)) {
      std::istringstream in{text};
      std::string quota;
      uint64_t period = 0;
      if (in >> quota >> period && quota != "max" && period > 0)
        if (auto q = parse_u64(quota))
          quota_cpus = static_cast<double>(*q) / static_cast<double>(period);
    }
  } else {
    std::string text;
    if (read_file(root_ + "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", text)) {
      auto quota = std::strtoll(text.c_str(), nullptr, 10);
      auto period = read_u64("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
      if (quota > 0 && period && *period > 0)
        quota_cpus = static_cast<double>(quota) / static_cast<double>(*period);
    }
  }
  if (quota_cpus > 0 && quota_cpus < cpus)
    cpus = quota_cpus;
  return cpus;
}

metrics_sampler::cpu_sample metrics_sampler::take_cpu() const {
  cpu_sample s;
  s.at = std::chrono::steady_clock::now();
  if (v2_) {
    if (auto usec = stat_field("/sys/fs/cgroup/cpu.stat", "usage_usec")) {
      s.busy = *usec * 1000;
      return s;
    }
  } else {
    for (auto rel : {"/sys/fs/cgroup/cpuacct/cpuacct.usage",
                     "/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage"})
      if (auto ns = read_u64(rel)) {
        s.busy = *ns;
        return s;
      }
  }
  std::string text;
  if (read_file(root_ + "/proc/stat", text)) {
    std::istringstream in{text};
    std::string label;
    in >> label;
    if (label == "cpu") {
      uint64_t v[8] = {};
      for (auto& x : v)
        in >> x;
      uint64_t total = 0;
      for (auto x : v)
        total += x;
      auto idle = v[3] + v[4];
      s.total = total;
      s.busy = total - idle;
    }
  }
  return s;
}

double metrics_sampler::cpu_pct(const cpu_sample& a, const cpu_sample& b,
                                double cpus) const {
  double pct = 0;
  if (a.total == 0 && b.total == 0) {
    auto wall_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(b.at
                                                                        - a.at)
                     .count();
    if (wall_ns > 0 && b.busy >= a.busy && cpus > 0)
      pct = static_cast<double>(b.busy - a.busy)
            / (static_cast<double>(wall_ns) * cpus) * 100.0;
  } else if (b.total > a.total && b.busy >= a.busy) {
    pct = static_cast<double>(b.busy - a.busy)
          / static_cast<double>(b.total - a.total) * 100.0;
  }
  pct = std::clamp(pct, 0.0, 100.0);
  return std::round(pct * 100.0) / 100.0;
}

void metrics_sampler::memory(double& total_mib, double& used_mib) const {
  uint64_t host_total = 0;
  uint64_t host_available = 0;
  {
    std::string text;
    if (read_file(root_ + "/proc/meminfo", text)) {
      std::istringstream in{text};
      std::string key;
      uint64_t kb = 0;
      std::string unit;
      while (in >> key >> kb) {
        std::getline(in, unit);
        if (key == "MemTotal:")
          host_total = kb * 1024;
        else if (key == "MemAvailable:")
          host_available = kb * 1024;
      }
    }
  }
  std::optional<uint64_t> limit;
  std::optional<uint64_t> usage;
  std::optional<uint64_t> inactive;
  if (v2_) {
    limit = read_u64("/sys/fs/cgroup/memory.max");
    usage = read_u64("/sys/fs/cgroup/memory.current");
    inactive = stat_field("/sys/fs/cgroup/memory.stat", "inactive_file");
  } else {
    limit = read_u64("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    usage = read_u64("/sys/fs/cgroup/memory/memory.usage_in_bytes");
    inactive = stat_field("/sys/fs/cgroup/memory/memory.stat",
                          "total_inactive_file");
  }
  uint64_t total = host_total;
  uint64_t used = host_total > host_available ? host_total - host_available : 0;
  if (limit && *limit < unlimited && *limit > 0
      && (host_total == 0 || *limit < host_total))
    total = *limit;
  if (usage) {
    // The container's own usage, without reclaimable page cache (what
    // `docker stats` shows), also when it has no limit.
    auto cache = inactive ? *inactive : 0;
    used = *usage > cache ? *usage - cache : 0;
  }
  used = std::min(used, total);
  total_mib = std::round(static_cast<double>(total) / mib * 100.0) / 100.0;
  used_mib = std::round(static_cast<double>(used) / mib * 100.0) / 100.0;
  used_mib = std::min(used_mib, total_mib);
}

metrics_snapshot metrics_sampler::sample() {
  metrics_snapshot out;
  out.cpu_count = cpu_count();
  std::optional<cpu_sample> prev;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    prev = last_;
  }
  auto now = take_cpu();
  auto age = prev ? now.at - prev->at : std::chrono::hours(1);
  if (!prev || age < std::chrono::milliseconds(100)
      || age > std::chrono::seconds(10)) {
    prev = now;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    now = take_cpu();
  }
  out.cpu_used_pct = cpu_pct(*prev, now, out.cpu_count);
  {
    std::lock_guard<std::mutex> guard{mtx_};
    last_ = now;
  }
  memory(out.mem_total_mib, out.mem_used_mib);
  out.timestamp = now_ms();
  return out;
}

} // namespace osb::execd
