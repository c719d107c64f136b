#pragma once

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <functional>
#include <vector>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>

#include "actors/interfaces.hpp"

namespace osb {

/// How the SNAPSHOTS actor starts.
struct snapshots_init {
  /// Name of this node; records carry it.
  std::string node_name;
  store_actor store;
  /// The RUNTIME actor of each runtime host of this node, by host name.
  std::map<std::string, runtime_actor> runtimes;
  /// Bound of one snapshot (the runtime's API timeout plus a margin).
  std::chrono::seconds commit_timeout{190};
  /// Interval of retries of unsettled records (Deleting, or Creating after a
  /// restart while the runtime was down).
  std::chrono::milliseconds retry_interval{10000};
  /// Incarnations of this node recorded in its store: the image sweep only
  /// removes images their processes made, never another process's of the
  /// same name. Empty = every image of the node (unit tests without a
  /// ledger).
  std::vector<std::string> incarnations;
};

struct snapshots_state {
  static inline const char* name = "snapshots";
  snapshots_init init;
  /// Every snapshot of this node by id (loaded at start, kept in sync with
  /// the store): gets and lists never touch the store or the runtime.
  std::unordered_map<std::string, snapshot_view> records;
  /// Records whose capture or recovery is under way.
  std::unordered_map<std::string, bool> busy;
  /// Records whose image removal is under way, with the DELETEs waiting
  /// for it (one removal per snapshot at a time).
  std::unordered_map<std::string,
                     std::vector<caf::typed_response_promise<bool>>>
    removals;
  /// False until the records were loaded; requests wait for it.
  bool loaded = false;
  /// Why the last load failed (requests answer 503 meanwhile).
  std::string load_error;
  /// Requests that arrived before the records were loaded.
  std::vector<std::function<void()>> waiting;
  /// Ticks since the last sweep of images without a record.
  int ticks_since_sweep = 0;
};

/// Implements the SNAPSHOTS actor: the node's snapshot records (state
/// machine Creating → Ready | Failed, any settled state → Deleting → gone),
/// durable in the store before each answer; has the runtime take the
/// snapshot (the source sandbox actor vouches it is Running and ignores a
/// pause of the runtime meanwhile); removes a snapshot's image with its
/// record; at start, settles records that a crash left Creating or
/// Deleting.
snapshots_actor::behavior_type
snapshots(snapshots_actor::stateful_pointer<snapshots_state> self,
          snapshots_init init);

} // namespace osb
