#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

/// Whether this process may change its sandboxes now. A runtime whose
/// sandboxes can be taken over by another replica (Kubernetes: a Lease per
/// replica) holds them only while its lease is fresh; once its own renewal
/// is older than the lease's duration another replica may already own them,
/// so it stops mutating them (expiry timers wait, deletes answer 503) until
/// it renewed. Runtimes without replicas have no gate (never fenced).
namespace osb::runtimes {

struct ownership_gate {
  using clock = std::chrono::steady_clock;

  /// Until when (steady clock, ns since its epoch) the last renewal that
  /// the API server accepted holds: its send time + the lease duration.
  /// The maximum = not fenced (no lease needed or none held yet).
  std::atomic<int64_t> valid_until_ns{std::numeric_limits<int64_t>::max()};

  static int64_t to_ns(clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
             t.time_since_epoch())
      .count();
  }

  /// True while this process must not mutate its sandboxes.
  bool fenced(clock::time_point now = clock::now()) const {
    return to_ns(now) >= valid_until_ns.load(std::memory_order_acquire);
  }

  /// Why, for messages ("" when not fenced).
  std::string reason(clock::time_point now = clock::now()) const {
    if (!fenced(now))
      return {};
    return "this replica's lease is not renewed (or was taken over); it "
           "changes no sandbox until it holds a lease again";
  }
};

} // namespace osb::runtimes
