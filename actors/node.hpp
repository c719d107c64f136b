#pragma once

#include <caf/io/middleman_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/interfaces.hpp"
#include "actors/replay.hpp"

namespace osb {

/// Cluster protocol version; peers with another version are refused.
/// 4: node incarnations, partial lists, TLS between nodes.
/// 5: sandbox views carry their pool, pool counts num_matched.
/// 6: operations on one sandbox travel as one `call` (core/sandbox_ops.hpp).
/// 7: pool records and counts replicated, claims forwarded (docs/pools.md).
constexpr const char* cluster_protocol_version = "osb-cluster/7";

/// How a NODE actor starts.
struct node_init {
  /// This node (name, version, cluster address).
  node_info self;
  /// Public host of this node for endpoints of its sandboxes.
  std::string public_host;
  /// True when the node takes part in a cluster (middleman loaded).
  bool clustered = false;
  /// Sandboxes this node accepts; 0 = unlimited.
  int64_t max_sandboxes = 0;
  /// `[pool] match_creates`: a create without `poolRef` that a pool's
  /// template can serve takes one of its idle members (docs/pools.md).
  bool match_creates = false;
  /// Interval of reconnect attempts to unreachable members; 0 = the node
  /// never dials by itself (the protocol tests connect their simulated
  /// network themselves and send `join` with the peer's handle).
  std::chrono::milliseconds reconnect_interval{2000};
  /// Cluster addresses to join at start (`cluster.seeds`); the node waits
  /// for them (and the members they name) before it calls a sandbox it
  /// does not know missing.
  std::vector<std::string> seeds;
  /// How long it waits for them at most (`cluster.seed_timeout_seconds`).
  std::chrono::milliseconds seed_timeout{30000};
  /// The cluster's MIDDLEMAN actor (spawn_transport) through which
  /// connectors reach peers; invalid = CAF's default middleman.
  caf::io::middleman_actor transport;
};

struct node_state {
  static inline const char* name = "node";
  struct entry {
    /// The SANDBOX actor; invalid for sandboxes of other nodes.
    sandbox_actor hdl;
    sandbox_view view;
  };
  struct member {
    node_info info;
    node_actor hdl;
    bool up = false;
    int64_t since_us = 0;
    /// True once it joined during this process's life.
    bool joined = false;
    /// Requests forwarded to the member and not answered yet, by number:
    /// each fails at once when the member is lost (CAF 0.17 leaves them to
    /// their timeout).
    std::unordered_map<uint64_t, std::function<void(const caf::error&)>>
      in_flight;
  };
  /// Numbers the entries of member::in_flight.
  uint64_t num_forwarded = 0;
  node_init init;
  /// Directory of the fleet's sandboxes with their last reported views:
  /// local ones from their actors, remote ones replicated by their owners.
  /// Lists are answered from here, never from the runtime.
  std::unordered_map<std::string, entry> directory;
  /// Peers' claims on sandboxes this node runs, kept aside (a replica that
  /// lost them to this one and has not dropped them yet, or the reverse):
  /// when this node gives such a sandbox up as adopted elsewhere, the
  /// claim tells who owns it now.
  std::unordered_map<std::string, sandbox_view> contested;
  /// Sandboxes per owning node (for placement and the membership API).
  std::unordered_map<std::string, int64_t> num_owned;
  /// Peers by name.
  std::unordered_map<std::string, member> members;
  /// Addresses with a connection attempt under way.
  std::unordered_map<std::string, bool> connecting;
  /// Peers with a join under way (their NODE actor) and their address.
  std::unordered_map<caf::actor_addr, std::string> joining;
  /// Seed addresses from the configuration, retried until reached.
  std::set<std::string> seeds;
  /// Which member answered at an address.
  std::unordered_map<std::string, std::string> reached;
  /// Host supervisors of this node with the runtime host each owns.
  std::vector<std::pair<supervisor_actor, std::string>> supervisors;
  /// This node's sandboxes per runtime host (placement across hosts).
  std::unordered_map<std::string, int64_t> num_on_host;
  /// The SNAPSHOTS actor of this node (invalid: snapshots answer 501).
  snapshots_actor snapshots;
  /// The POOLS actor of this node (invalid until wired: pools 501).
  pools_actor pools;
  /// Every pool record this node knows (its own and its peers', by name;
  /// the one that supersedes kept): what a peer that joins learns.
  std::map<std::string, pool_record> pool_records_known;
  /// What this node holds of each pool, as its POOLS actor last said: what
  /// a peer that joins learns.
  pool_tallies pool_tallies_here;
  /// True once every seed (and every member they named) joined, or the
  /// seed timeout passed: from then on an unknown sandbox is missing
  /// (404); before, it may live on a peer not joined yet (503).
  bool settled = false;
  /// Addresses of seeds that turned out to be this node.
  std::set<std::string> self_addresses;
  /// Runtime hosts whose supervisors have not recovered their sandboxes
  /// yet (their sandboxes are not in the directory yet).
  std::set<std::string> recovering;
  /// Runtime hosts whose supervisors have recovered.
  std::set<std::string> recovered;
  /// Incarnations of other processes refused under a member's name (by
  /// "name/incarnation"), logged once each.
  std::set<std::string> refused;
  /// Answers of recent mutations by operation, sandbox and request id: a
  /// retry with the same X-Request-ID is applied at most once.
  replay_table<sandbox_view> view_replays;
  replay_table<sandbox_answer> call_replays;
  replay_table<snapshot_view> snapshot_replays;
  /// Per sandbox, the key of its last successful mutation: only that one is
  /// replayed (another request that reuses an id after a different change
  /// of the sandbox is applied).
  std::unordered_map<std::string, std::string> last_mutation;
};

/// Implements the NODE actor: the directory of the fleet (see
/// node_directory.cpp), placement of creates, one-hop routing of requests
/// to the owning node, membership (join, replication, node loss via
/// monitoring, reconnects; see node_membership.cpp).
node_actor::behavior_type node(node_actor::stateful_pointer<node_state> self,
                               node_init init);

} // namespace osb
