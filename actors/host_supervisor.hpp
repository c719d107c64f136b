#pragma once

#include <caf/actor_addr.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "actors/interfaces.hpp"
#include "core/config.hpp"
#include "net/ports.hpp"
#include "runtimes/ownership.hpp"

namespace osb {

/// How a HOST SUPERVISOR starts.
struct supervisor_init {
  std::shared_ptr<const node_config> cfg;
  /// Name of this node; its rows carry it.
  std::string node_name;
  /// The runtime host this supervisor owns ("default" for the node's only
  /// host); rows carry it, and the host's runtime only shows this host's
  /// objects, so that supervisors of one node never touch each other's.
  std::string runtime_host = "default";
  /// Host that reaches this runtime host's published ports; empty = the
  /// node's public host.
  std::string endpoint_host;
  node_actor node;
  /// The RUNTIME actor of this host.
  runtime_actor runtime;
  store_actor store;
  /// Interval of the reconciliation with the runtime.
  std::chrono::milliseconds reconcile_interval{5000};
  /// Every this many reconciliations, volumes flagged to go with their
  /// sandbox whose sandbox is gone (they were in use then) are removed.
  int volume_sweep_every = 12;
  /// Incarnations of this node recorded in its store (store::node_ledger),
  /// the current one included. A runtime object of this node without a row
  /// is removed only when the incarnation that made it is one of them:
  /// another process of the same name (with another store) keeps its own.
  /// Empty = no evidence needed (unit tests without a ledger).
  std::vector<std::string> incarnations;
  /// Whether this process may change the host's sandboxes now (a replica
  /// whose lease lapsed may not: runtimes/ownership.hpp); null = always.
  std::shared_ptr<const runtimes::ownership_gate> gate;
};

struct supervisor_state {
  static inline const char* name = "host_supervisor";
  supervisor_init init;
  /// Host ports reserved by live sandboxes.
  net::port_allocator ports;
  /// Live sandbox actors by id.
  std::unordered_map<std::string, sandbox_actor> sandboxes;
  /// Named volumes (claim names) each live sandbox mounts: the volume
  /// sweep never removes one of them.
  std::unordered_map<std::string, std::vector<std::string>> claims;
  /// Reserved ports per sandbox actor, released when it terminates.
  std::unordered_map<caf::actor_addr, std::pair<std::string, port_map>>
    by_addr;
  /// False while the runtime does not answer; creates fail fast then.
  bool runtime_up = true;
  /// Last runtime failure, for the 503 message.
  std::string runtime_error;
  /// True once recovery has finished.
  bool recovered = false;
  /// Reconciliations since the last volume sweep.
  int ticks_since_sweep = 0;
  /// Sandboxes shown as Unknown while the runtime could not be listed at
  /// start (no actor yet; the node answers 503 for them).
  std::unordered_set<std::string> placeholders;

  /// Sandboxes do not outlive their supervisor (e.g. at shutdown); their
  /// containers keep running and are recovered by the next start.
  ~supervisor_state();
};

/// Implements the HOST SUPERVISOR actor: spawns and monitors sandbox actors,
/// reserves host ports, recovers sandboxes at start (store + one runtime
/// listing; orphans removed, overdue ones expired) and reconciles
/// periodically with one listing (never one call per sandbox).
supervisor_actor::behavior_type
host_supervisor(supervisor_actor::stateful_pointer<supervisor_state> self,
                supervisor_init init);

} // namespace osb
