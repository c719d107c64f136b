#pragma once

// The one metrics registry of the server: counters, gauges and histograms
// with fixed buckets, grouped in families with a fixed set of label names,
// rendered as Prometheus text exposition 0.0.4 (`GET /metrics`).
//
// Recording is a relaxed atomic add on a child the caller already holds;
// finding a child by its label values takes a mutex, so hot paths look a
// child up once (or cache it) and keep the reference: children live as
// long as the registry and never move. Labels must have few values (states,
// routes, operations, reasons): never a sandbox id.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace osb::metrics {

/// Whether recording is on (`[metrics] enabled`, default true). When off,
/// every record is one relaxed load and a branch, and `/metrics` is 404.
bool enabled();

/// Switches recording on or off (once, at startup, before any record).
void set_enabled(bool on);

/// A monotonically increasing count.
class counter {
public:
  void inc(uint64_t n = 1) {
    if (enabled())
      value_.fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t value() const {
    return value_.load(std::memory_order_relaxed);
  }

private:
  std::atomic<uint64_t> value_{0};
};

/// A value that goes up and down (an integer: counts, bytes).
class gauge {
public:
  void add(int64_t n) {
    if (enabled())
      value_.fetch_add(n, std::memory_order_relaxed);
  }
  void inc() {
    add(1);
  }
  void dec() {
    add(-1);
  }
  void set(int64_t n) {
    if (enabled())
      value_.store(n, std::memory_order_relaxed);
  }
  int64_t value() const {
    return value_.load(std::memory_order_relaxed);
  }

private:
  std::atomic<int64_t> value_{0};
};

/// Bucket upper bounds for latencies in seconds: 1 ms … 60 s.
const std::vector<double>& latency_buckets();

/// Bucket upper bounds for whole-create phases in seconds: 1 ms … 300 s
/// (image pulls).
const std::vector<double>& phase_buckets();

/// Observations counted in fixed buckets (upper bounds, ascending; `+Inf`
/// is implied) with their sum. The sum is kept in nanoseconds of an
/// integer, so that an observation is two relaxed adds and no CAS loop.
class histogram {
public:
  explicit histogram(const std::vector<double>& bounds);

  /// Records one observation in seconds (or the family's unit).
  void observe(double x);

  /// The bounds (without +Inf).
  const std::vector<double>& bounds() const {
    return *bounds_;
  }
  /// Non-cumulative count of bucket `i` (`i == bounds().size()` = +Inf).
  uint64_t bucket(size_t i) const {
    return buckets_[i].load(std::memory_order_relaxed);
  }
  /// Sum of the observations.
  double sum() const;
  /// Number of observations.
  uint64_t count() const;

private:
  const std::vector<double>* bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<int64_t> sum_nanos_{0};
};

/// One metric family: a name, its help, its label names and one child per
/// combination of label values in use.
template <class T>
class family {
public:
  family(std::string name, std::string help, std::vector<std::string> labels,
         const std::vector<double>* bounds = nullptr)
    : name_(std::move(name)),
      help_(std::move(help)),
      labels_(std::move(labels)),
      bounds_(bounds) {
  }

  /// The child for `values` (one per label name, in order), made on first
  /// use. The reference stays valid for the registry's lifetime.
  T& with(std::initializer_list<std::string_view> values);

  /// The child for `values` (one per label name, in order).
  T& with(const std::vector<std::string>& values);

  const std::string& name() const {
    return name_;
  }

  /// Appends the family in text exposition format 0.0.4.
  void render(std::string& out) const;

private:
  T& find(std::string key, size_t num_values);

  std::string name_;
  std::string help_;
  std::vector<std::string> labels_;
  const std::vector<double>* bounds_;
  mutable std::mutex mtx_;
  /// Label values joined by '\x1f' (sorted, so the output is stable).
  std::map<std::string, std::unique_ptr<T>> children_;
};

using counter_family = family<counter>;
using gauge_family = family<gauge>;
using histogram_family = family<histogram>;

/// Appends families computed at render time (e.g. `process_*`). Must append
/// complete families with `# HELP` and `# TYPE` lines.
using collector = std::function<void(std::string& out)>;

/// All families of a process. Registering a name twice returns the first
/// family (its help and labels win).
class registry {
public:
  counter_family& counters(const std::string& name, const std::string& help,
                           std::vector<std::string> labels = {});
  gauge_family& gauges(const std::string& name, const std::string& help,
                       std::vector<std::string> labels = {});
  histogram_family& histograms(const std::string& name,
                               const std::string& help,
                               std::vector<std::string> labels,
                               const std::vector<double>& bounds
                               = latency_buckets());
  /// Adds a collector called on every render, after the families.
  void add_collector(collector f);

  /// The exposition text of every family, sorted by name, then the
  /// collectors' output.
  std::string render() const;

private:
  mutable std::mutex mtx_;
  std::map<std::string, std::unique_ptr<counter_family>> counters_;
  std::map<std::string, std::unique_ptr<gauge_family>> gauges_;
  std::map<std::string, std::unique_ptr<histogram_family>> histograms_;
  std::vector<collector> collectors_;
};

/// The process's registry.
registry& global();

/// Formats a sample value as the exposition format wants it (`+Inf`,
/// `NaN`, shortest round-trip decimal otherwise).
std::string format_value(double x);

/// Escapes a label value (`\\`, `\"`, `\n`).
std::string escape_label(std::string_view x);

/// Appends `# HELP` and `# TYPE` lines.
void write_header(std::string& out, std::string_view name,
                  std::string_view help, std::string_view type);

/// Appends the standard `process_*` families of this process from /proc:
/// cpu seconds, resident and virtual memory, open and max fds, start time.
void render_process(std::string& out);

/// Seconds between two steady-clock points, for observe().
template <class Duration>
double seconds(Duration d) {
  return std::chrono::duration<double>(d).count();
}

} // namespace osb::metrics
