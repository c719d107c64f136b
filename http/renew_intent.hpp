#pragma once

// Renew-on-access (OSEP-0009, reference §1.13 step 1 and §4.10) in
// proxy-only mode: every server-proxy request (HTTP or WebSocket) for a
// sandbox created with `extensions["access.renew.extend.seconds"]` may
// schedule a renewal to max(now + extend, current expiresAt) through the
// normal renew path. Consuming intents from Redis is not implemented.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/model.hpp"

namespace osb::http {

/// Decides which proxied accesses renew their sandbox, and remembers per
/// sandbox whether a renewal is under way and when the last one succeeded
/// (the cool-down). Memory is bounded: at most `max_entries` sandboxes are
/// remembered, the least recently accessed one is forgotten first (never
/// one with a renewal under way). Thread-safe; the clock is passed in, so
/// that tests are deterministic.
class renew_coordinator {
public:
  using clock = std::chrono::steady_clock;

  /// @param min_interval no second renewal of a sandbox within this time
  ///        after a successful one.
  /// @param max_entries sandboxes remembered at most (the original keeps
  ///        8192).
  explicit renew_coordinator(clock::duration min_interval,
                             size_t max_entries = 8192)
    : min_interval_(min_interval), max_entries_(max_entries) {
    // nop
  }

  /// Called for every proxied access to `v`. Returns the new expiry
  /// (microseconds since the epoch) when a renewal is due: the sandbox is
  /// Running, has an expiry and an extend value, the new time lies beyond
  /// its current expiry, no renewal of it is under way and the last
  /// successful one is older than the cool-down. The sandbox is then marked
  /// as being renewed until `done()`.
  /// @param now_us wall clock (microseconds since the epoch).
  /// @param now monotonic clock, for the cool-down.
  std::optional<int64_t> on_access(const sandbox_view& v, int64_t now_us,
                                   clock::time_point now);

  /// Reports the outcome of a renewal that `on_access` asked for.
  void done(const std::string& id, bool ok, clock::time_point now);

  /// Sandboxes remembered (for tests).
  size_t size() const;

private:
  struct entry {
    /// Position in `lru_` (front = most recently accessed).
    std::list<std::string>::iterator pos;
    /// A renewal was handed out and has not reported back.
    bool in_flight = false;
    /// When the last renewal succeeded; empty = never.
    std::optional<clock::time_point> renewed_at;
  };

  /// Makes room for one more entry; false when every entry is in flight.
  bool make_room();

  clock::duration min_interval_;
  size_t max_entries_;
  mutable std::mutex mtx_;
  std::list<std::string> lru_;
  std::unordered_map<std::string, entry> entries_;
};

} // namespace osb::http
