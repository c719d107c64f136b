#pragma once

#include <caf/typed_event_based_actor.hpp>

#include <functional>
#include <map>
#include <set>
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
  /// The NODE actor: members are sandboxes of this node (docs/pools.md).
  node_actor node;
  /// The runtimes of this node's hosts: a template each of them refuses
  /// (`admit`, as a create is checked) is refused at the pool's create and
  /// capacity update. Empty = not checked.
  std::vector<runtime_actor> runtimes;
  /// Members made at once, all pools together (`[pool] warm_concurrency`).
  int64_t warm_concurrency = 2;
  /// How often the members are synced with the node's directory and the
  /// pools refilled (0 = only after changes, e.g. in unit tests).
  caf::timespan tick_interval = std::chrono::seconds(1);
};

/// The members of one pool on this node (sandbox ids).
struct pool_members {
  /// Creates asked of the node, not answered yet.
  int64_t creating = 0;
  /// Created, not idle yet.
  std::set<std::string> warming;
  /// Idle: a claim takes one.
  std::set<std::string> idle;
  /// Taken by a claim, not seen claimed by a sync yet (the claim may still
  /// be under way): allocated, never adopted as idle again.
  std::set<std::string> handed;
  /// Of `handed`: taken for a create without `poolRef` (match_creates),
  /// whose failed claim is no cold create of the pool.
  std::set<std::string> matched;
  /// Claimed sandboxes of the pool on this node that still exist, as the
  /// last sync counted them (made after the pool's create).
  int64_t claimed = 0;
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
  /// The members of each pool on this node.
  std::map<std::string, pool_members> members;
  /// False until the members were first synced with a recovered node:
  /// no refill before (it would not see the members of a restart).
  bool synced = false;
  /// False until the records were loaded; requests wait for it.
  bool loaded = false;
  /// Requests that arrived before the records were loaded.
  std::vector<std::function<void()>> waiting;
  /// The up nodes of the cluster, this one included (empty: alone); this
  /// node keeps its share of each pool (`share_of` by its rank).
  std::vector<std::string> up_nodes;
  /// What each up peer holds of each pool (by node, then pool): summed
  /// into `status`, and where a claim goes that finds no idle member here.
  std::map<std::string, std::map<std::string, pool_tally>> peers;
  /// What this node last told its peers it holds.
  pool_tallies published;
  /// A pool_flush is queued.
  bool flush_queued = false;
  /// Ticks since the start (every fifth re-sends the counts to the peers,
  /// which heals one lost around a join).
  int64_t num_ticks = 0;
  /// At most once per request id (actors/replay.hpp).
  replay_table<pool_view> view_replays;
  replay_table<bool> removal_replays;
};

/// Implements the POOLS actor: the pool definitions of this node, durable
/// in the store before each answer (create 409 on a live name, capacity
/// update, delete as a tombstone), and the claims of creates that name a
/// pool: an idle member when there is one, else a cold create of the
/// template. Keeps each pool's buffer of members between `bufferMin` and
/// `bufferMax` (at most `warm_concurrency` being made at once), removes
/// idle members of a shrunk or deleted pool, and adopts the members the
/// node recovered after a restart (docs/pools.md, "Members").
pools_actor::behavior_type
pools(pools_actor::stateful_pointer<pools_state> self, pools_init init);

} // namespace osb
