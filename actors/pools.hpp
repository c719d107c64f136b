#pragma once

#include <caf/typed_event_based_actor.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "actors/replay.hpp"

namespace osb {

/// How the POOLS actor starts.
struct pools_init {
  /// Name of this node; records carry it as the origin of their changes.
  std::string node_name;
  store_actor store;
};

struct pools_state {
  static inline const char* name = "pools";
  pools_init init;
  /// Every pool record by name, tombstones included (loaded at start, kept
  /// in sync with the store): gets and lists never touch the store.
  std::map<std::string, pool_record> records;
  /// What each pool holds on this node and its counters since the start
  /// (read by the API's `status`; the later metrics registry reads them
  /// here too).
  std::map<std::string, pool_counts> counts;
  /// Names whose create, update or delete is being written: a second
  /// mutation of the same name waits for the first.
  std::map<std::string, std::vector<std::function<void()>>> busy;
  /// False until the records were loaded; requests wait for it.
  bool loaded = false;
  /// Requests that arrived before the records were loaded.
  std::vector<std::function<void()>> waiting;
  /// At most once per request id (actors/replay.hpp).
  replay_table<pool_view> view_replays;
  replay_table<bool> removal_replays;
};

/// Implements the POOLS actor: the pool definitions of this node, durable
/// in the store before each answer (create 409 on a live name, capacity
/// update, delete as a tombstone), and the claims of creates that name a
/// pool. Members are not pre-provisioned yet: every claim is served by a
/// cold create of the template and counted as such (docs/pools.md).
pools_actor::behavior_type
pools(pools_actor::stateful_pointer<pools_state> self, pools_init init);

} // namespace osb
