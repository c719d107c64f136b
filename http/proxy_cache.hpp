#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/model.hpp"

namespace osb::http {

/// Recently looked-up sandboxes for the server proxy, so that a stream of
/// proxied requests does not cost a round trip through the actors each (that
/// hop, two thread switches, dominated the proxy's CPU time). Keeps only
/// what endpoint resolution needs. An entry lives `ttl`; a DELETE through
/// this server drops it at once. Misses (unknown sandboxes) are never
/// cached, so a new sandbox is reachable right after its 202. Thread-safe.
class proxy_cache {
public:
  using clock = std::chrono::steady_clock;

  explicit proxy_cache(clock::duration ttl, size_t max_entries = 4096)
    : ttl_(ttl), max_entries_(max_entries) {
    // nop
  }

  /// Returns the cached view of `id` (what endpoint resolution and
  /// renew-on-access need only) if it is younger than the TTL at `now`;
  /// shared, so that a hit copies no strings.
  std::shared_ptr<const sandbox_view>
  find(const std::string& id, clock::time_point now = clock::now()) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = entries_.find(id);
    if (i == entries_.end())
      return nullptr;
    if (now - i->second.at >= ttl_) {
      entries_.erase(i);
      return nullptr;
    }
    return i->second.view;
  }

  /// Remembers what endpoint resolution needs of `x`, as of `now`.
  void put(const sandbox_view& x, clock::time_point now = clock::now()) {
    auto v = std::make_shared<sandbox_view>();
    v->id = x.id;
    v->ports = x.ports;
    v->egress_token = x.egress_token;
    v->access_token = x.access_token;
    v->node = x.node;
    v->endpoint_host = x.endpoint_host;
    // What renew-on-access decides on.
    v->state = x.state;
    v->expires_us = x.expires_us;
    v->renew_extend_s = x.renew_extend_s;
    entry e;
    e.view = std::move(v);
    e.at = now;
    std::lock_guard<std::mutex> guard{mtx_};
    // Bounded without bookkeeping: a full table starts over.
    if (entries_.size() >= max_entries_)
      entries_.clear();
    entries_[x.id] = std::move(e);
  }

  /// Forgets `id` (deleted through this server).
  void erase(const std::string& id) {
    std::lock_guard<std::mutex> guard{mtx_};
    entries_.erase(id);
  }

private:
  struct entry {
    std::shared_ptr<const sandbox_view> view;
    clock::time_point at;
  };

  clock::duration ttl_;
  size_t max_entries_;
  std::mutex mtx_;
  std::unordered_map<std::string, entry> entries_;
};

} // namespace osb::http
