#pragma once

// Internals of the NODE actor shared by node.cpp (placement, routing),
// node_directory.cpp (the directory), node_membership.cpp (joins,
// reconnects, completeness), node_pools.cpp and node_snapshots.cpp.

#include <chrono>
#include <string>
#include <vector>

#include "actors/node.hpp"

namespace osb::node_detail {

using self_ptr = node_actor::stateful_pointer<node_state>;

inline const std::string& self_name(self_ptr self) {
  return self->state.init.self.name;
}

/// Creates routed to a peer (image pulls can be slow).
constexpr auto remote_create_timeout = std::chrono::minutes(30);

/// Sends `xs` to every reachable peer.
template <class... Ts>
void broadcast(self_ptr self, Ts&&... xs) {
  for (auto& [name, m] : self->state.members)
    if (m.up)
      self->send(m.hdl, xs...);
}

// -- directory (node_directory.cpp) -------------------------------------------

/// Stores a view and keeps the per-node counts right.
void store_view(self_ptr self, sandbox_view view, sandbox_actor hdl = {});

/// The directory's entry of `id`, or nullptr.
node_state::entry* find_entry(self_ptr self, const std::string& id);

/// Erases the entry of `id` (if any) and keeps the counts right.
void erase_view(self_ptr self, const std::string& id);

/// This node's sandboxes.
sandbox_views local_views(self_ptr self);

/// Replaces everything known about `owner`'s sandboxes with a snapshot:
/// heals the directory after a partition or a restart of that node. A
/// claim on a sandbox this node runs is kept aside (`contested`).
void replace_owned(self_ptr self, const std::string& owner,
                   sandbox_views views);

/// A SANDBOX actor of this node registered: stored and replicated.
void register_local(self_ptr self, sandbox_actor hdl, sandbox_view view);

/// A sandbox of this node changed: stored and replicated (unknown: none).
void update_local(self_ptr self, sandbox_view view);

/// A sandbox of this node is gone: erased here and dropped on every peer.
void forget_local(self_ptr self, const std::string& id);

/// A sandbox of this node was adopted by another replica: erased here
/// without a drop; the adopter's claim kept aside (if any) takes its place.
void forget_adopted(self_ptr self, const std::string& id);

/// A peer's view of one of its sandboxes: stored, or kept aside when this
/// node runs that sandbox.
void apply_replica(self_ptr self, sandbox_view view);

/// A peer's drop of an entry: applied only when the sender owns it.
void apply_drop(self_ptr self, const std::string& id);

// -- pools in a cluster (node_pools.cpp) --------------------------------------

/// Tells the POOLS actor the up nodes (this one included): each keeps its
/// share of every pool.
void pools_members_changed(self_ptr self);

/// A peer joined (or returned): it learns every pool record and what this
/// node holds of each, and the POOLS actor the new membership.
void pools_joined(self_ptr self, const node_actor& peer);

/// Records the POOLS actor changed or loaded: kept and sent to every peer.
void pools_changed_here(self_ptr self, pool_records xs);

/// Records of a peer: those that supersede what this node knows go to the
/// POOLS actor (which stores and applies them). None: every record known
/// goes (the POOLS actor was just wired).
void pools_from_peer(self_ptr self, pool_records xs);

// -- membership (node_membership.cpp) ----------------------------------------

/// Connects to a cluster address (one attempt at a time), then joins the
/// peer found there.
void connect_to(self_ptr self, const std::string& address);

/// Connects to the members that are down and to the seeds where no member
/// is up (never to a live member: a second connection to a node is
/// redundant and CAF closes one of them).
void reconnect(self_ptr self);

/// Introduces this node to a connected peer and adds it as a member.
void join_peer(self_ptr self, const std::string& address, node_actor peer);

/// Answers a peer's join: refuses another protocol version and a second
/// live process under a member's name, else adds the peer and replies this
/// node's info, its sandboxes and the members it knows.
caf::result<node_info, sandbox_views, node_infos>
accept_join(self_ptr self, node_info& info, sandbox_views& views);

/// Peers this node has not joined yet: seed addresses where no joined
/// member answers, as "address (name)" when the name is known.
std::vector<std::string> missing_peers(self_ptr self);

/// Settles the membership once no peer is missing (logs it once).
void check_membership(self_ptr self);

/// Stops waiting for missing peers (the seed timeout passed).
void give_up(self_ptr self);

/// Why this node may not know every sandbox of the fleet; empty when it
/// knows them all (membership settled, local recovery done).
std::string incomplete_reason(self_ptr self);

/// The answer for a sandbox this node does not know: 503 naming what it
/// still waits for while incomplete, else 404.
caf::error unknown_sandbox(self_ptr self, const std::string& id);

/// The supervisor that takes a create on this node: the one of `host`, or
/// the least loaded one when `host` is empty.
caf::expected<supervisor_actor> pick_supervisor(self_ptr self,
                                                const std::string& host);

} // namespace osb::node_detail
