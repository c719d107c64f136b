#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <set>

namespace osb::net {

/// Reserves host ports for sandboxes before their containers exist. Unlike
/// the original (probe-and-release, racy), a port stays reserved until
/// released, and a candidate is also probed with bind() so ports used by
/// other programs are skipped. Not thread-safe: owned by one actor.
class port_allocator {
public:
  port_allocator(uint16_t first = 40000, uint16_t last = 60000);

  /// Reserves a free port; nullopt when the range is exhausted.
  std::optional<uint16_t> allocate();

  /// Marks a known port as reserved (recovery after restart).
  void reserve(uint16_t port);

  /// Returns a port to the pool; 0 is ignored.
  void release(uint16_t port);

  size_t num_reserved() const {
    return reserved_.size();
  }

private:
  uint16_t first_;
  uint16_t last_;
  std::set<uint16_t> reserved_;
  std::mt19937 rng_;
};

/// Returns whether nothing listens on TCP `port` (bind probe on 0.0.0.0).
bool port_is_free(uint16_t port);

} // namespace osb::net
