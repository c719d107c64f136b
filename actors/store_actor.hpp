#pragma once

#include <caf/typed_event_based_actor.hpp>

#include <memory>

#include "actors/interfaces.hpp"
#include "store/sqlite_store.hpp"

namespace osb {

struct store_state {
  static inline const char* name = "store";
  /// The database; owned by this actor, which must be spawned detached
  /// because SQLite calls block.
  std::shared_ptr<store::sqlite_store> db;
};

/// Implements the STORE actor. Spawn with `caf::detached`.
/// @param db An open store.
store_actor::behavior_type
store_actor_impl(store_actor::stateful_pointer<store_state> self,
                 std::shared_ptr<store::sqlite_store> db);

} // namespace osb
