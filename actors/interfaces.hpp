#pragma once

// Every typed actor interface of the server, one comment per handler.
// Handlers marked INTERNAL are sent by the actor to itself.

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"

namespace osb {

/// The RUNTIME actor: the runtime of one host (runtimes/runtime.hpp), spoken
/// to in runtime-neutral requests. Its I/O completes on runtime threads and
/// re-enters the actor as `completion`s.
using runtime_actor = caf::typed_actor<
  // Checks a create request against the host; answers which host ports the
  // sandbox needs, or refuses it with the API error.
  caf::replies_to<atom::admit, sandbox_spec>::with<runtimes::admission>,
  // Provisions a sandbox until it runs (or fails, or is cancelled); pull
  // progress goes to the options' callback.
  caf::replies_to<atom::provision, runtimes::sandbox_instance,
                  runtimes::provision_options>::with<runtimes::provision_result>,
  // Freezes a running sandbox.
  caf::replies_to<atom::pause, runtimes::sandbox_instance>::with<bool>,
  // Thaws a paused sandbox.
  caf::replies_to<atom::resume, runtimes::sandbox_instance>::with<bool>,
  // Removes a sandbox's objects; the bool says it never ran (then every
  // volume the server made for it goes too).
  caf::replies_to<atom::remove, runtimes::sandbox_instance, bool>::with<bool>,
  // Starts the held-back entrypoint of an idle pool member with the
  // claim's environment (runtime::claim).
  caf::replies_to<atom::claim, runtimes::sandbox_instance,
                  runtimes::claim_request>::with<bool>,
  // Lists this node's sandboxes and their objects on the host (one call).
  caf::replies_to<atom::observe>::with<runtimes::observation>,
  // Keeps a sandbox's changed expiry and metadata with its workload
  // (runtime::record).
  caf::replies_to<atom::update, runtimes::sandbox_instance>::with<bool>,
  // Lists the volumes that should have gone with their sandbox.
  caf::replies_to<atom::vol_list>::with<runtime_objects>,
  // Removes one object (an orphan, a leftover volume).
  caf::replies_to<atom::remove, runtimes::runtime_object>::with<bool>,
  // Renders a diagnostics report of a sandbox in its current state.
  caf::replies_to<atom::diagnose, runtimes::sandbox_instance, sandbox_view,
                  diagnostics_query>::with<std::string>,
  // Answers the image reference of a snapshot (id).
  caf::replies_to<atom::image, std::string>::with<std::string>,
  // Snapshots a sandbox (id) as a snapshot (id); answers the image id.
  caf::replies_to<atom::commit, std::string, std::string>::with<std::string>,
  // Reports whether an image exists on the host.
  caf::replies_to<atom::img_exists, std::string>::with<bool>,
  // Removes an image (missing = success, in use = conflict).
  caf::replies_to<atom::img_remove, std::string>::with<bool>,
  // Lists this node's snapshot images made by one of the incarnations
  // (none = any).
  caf::replies_to<atom::img_list, std::vector<std::string>>::with<
    snapshot_images>,
  // INTERNAL: runs an I/O completion on the actor thread.
  caf::reacts_to<atom::internal, completion>>;

/// The STORE actor: the node-local durable store, on its own thread.
using store_actor = caf::typed_actor<
  // Inserts or replaces a sandbox row.
  caf::replies_to<atom::put, store::sandbox_row>::with<bool>,
  // Deletes a sandbox row.
  caf::replies_to<atom::remove, std::string>::with<bool>,
  // Loads all rows of a node.
  caf::replies_to<atom::load, std::string>::with<sandbox_rows>,
  // Inserts or replaces a snapshot record.
  caf::replies_to<atom::put, snapshot_view>::with<bool>,
  // Deletes a snapshot record.
  caf::replies_to<atom::snap_del, std::string>::with<bool>,
  // Loads all snapshot records of a node.
  caf::replies_to<atom::snap_list, std::string>::with<snapshot_views>,
  // Inserts or replaces a pool record (tombstones too).
  caf::replies_to<atom::put, pool_record>::with<bool>,
  // Loads every pool record.
  caf::replies_to<atom::pool_list>::with<pool_records>,
  // Readiness: proves that the store takes a write (one tiny row).
  caf::replies_to<atom::ready>::with<bool>>;

/// The SANDBOX actor: owns one sandbox's state machine and expiry timer, and
/// asks its runtime for the rest. The trailing string of each request is
/// the request id.
using sandbox_actor = caf::typed_actor<
  // Persists the new sandbox, registers it, replies Pending, provisions.
  caf::replies_to<atom::create, std::string>::with<sandbox_view>,
  // Runs an operation on the sandbox (core/sandbox_ops.hpp: pause, resume,
  // remove, renew, extend, patch, diagnose, ...); answers the op's answer.
  caf::replies_to<atom::call, sandbox_op, std::string>::with<sandbox_answer>,
  // Claims an idle pool member (docs/pools.md): starts the claim's
  // entrypoint with its env, writes the claimed spec, metadata and expiry
  // to the row, then answers the sandbox as Running.
  caf::replies_to<atom::claim, sandbox_spec, std::string>::with<sandbox_view>,
  // INTERNAL: image pull progress while provisioning.
  caf::reacts_to<atom::progress, std::string>,
  // Snapshot (id) of the sandbox begins: answers the sandbox id to snapshot
  // if the sandbox is Running; the runtime may pause it meanwhile.
  caf::replies_to<atom::snapshot, std::string, std::string>::with<
    std::string>,
  // The snapshot (id) is over (committed, failed or abandoned).
  caf::reacts_to<atom::snap_end, std::string>,
  // Reports the sandbox's workload as the supervisor's reconciliation saw it
  // (status, runtimes::workload; "" = gone), its exit code, and when the
  // runtime was asked (µs).
  caf::reacts_to<atom::observe, std::string, int32_t, int64_t>,
  // Answers once the container has started (or provisioning ended, or
  // the given milliseconds passed): endpoint lookups wait on this.
  caf::replies_to<atom::started, int64_t>::with<sandbox_view>,
  // INTERNAL: releases the `started` waiters of the given generation.
  caf::reacts_to<atom::started, uint64_t>,
  // INTERNAL: expiry timer of the given epoch.
  caf::reacts_to<atom::expire, uint64_t>,
  // INTERNAL: starts (or restarts) provisioning.
  caf::reacts_to<atom::provision>,
  // INTERNAL: provisioning made the workload object (`created` phase).
  caf::reacts_to<atom::ready>>;

/// The HOST SUPERVISOR actor: one per runtime host. Spawns and monitors
/// sandbox actors, reserves host ports, recovers and reconciles with the
/// runtime.
using supervisor_actor = caf::typed_actor<
  // Creates a sandbox actor for a validated spec under the given id.
  caf::replies_to<atom::create, std::string, sandbox_spec, std::string>::with<
    sandbox_view>,
  // From a sandbox actor: replaces its host ports (another program took
  // one before its container started); answers the new ones.
  caf::replies_to<atom::update, port_map>::with<port_map>,
  // INTERNAL: recovers sandboxes from the store and the runtime.
  caf::reacts_to<atom::recover>,
  // INTERNAL: periodic reconciliation with the runtime.
  caf::reacts_to<atom::tick>>;

/// The SNAPSHOTS actor: one per node; owns the snapshot records of the
/// node's runtime hosts (durable in the store), has their runtimes take
/// snapshots of sandboxes and removes their images on delete.
using snapshots_actor = caf::typed_actor<
  // Snapshots a sandbox of this node (its actor and last view) under a name
  // ("" = none); replies the record in state Creating.
  caf::replies_to<atom::create, sandbox_actor, sandbox_view, std::string,
                  std::string>::with<snapshot_view>,
  // Returns one snapshot of this node.
  caf::replies_to<atom::get, std::string>::with<snapshot_view>,
  // Returns every snapshot of this node that matches (unpaginated).
  caf::replies_to<atom::list, snapshot_query>::with<snapshot_views>,
  // Deletes a snapshot of this node and its image.
  caf::replies_to<atom::remove, std::string, std::string>::with<bool>,
  // Returns a snapshot to restore from: Ready and its image present (a
  // missing image fails the snapshot).
  caf::replies_to<atom::place, std::string>::with<snapshot_view>,
  // INTERNAL: loads the records and settles unfinished ones.
  caf::reacts_to<atom::recover>,
  // INTERNAL: retries settling records (runtime was down, image in use).
  caf::reacts_to<atom::tick>>;

/// The POOLS actor: one per node; owns the node's pool definitions
/// (durable in the store) and their counters (docs/pools.md). The trailing
/// string of each mutation is the request id.
using pools_actor = caf::typed_actor<
  // Creates a pool (name, template, capacity of the record).
  caf::replies_to<atom::pool_new, pool_record, std::string>::with<pool_view>,
  // Returns one pool.
  caf::replies_to<atom::pool_get, std::string>::with<pool_view>,
  // Returns every pool, by name.
  caf::replies_to<atom::pool_list>::with<pool_views>,
  // Replaces a pool's capacity.
  caf::replies_to<atom::pool_put, std::string, pool_capacity,
                  std::string>::with<pool_view>,
  // Deletes a pool (its claimed sandboxes stay).
  caf::replies_to<atom::pool_del, std::string, std::string>::with<bool>,
  // A create names the pool: answers its record, the id of an idle
  // member taken for the claim and, when none is idle here but a peer
  // has one (and forwarding is allowed: the bool), that peer's name
  // (both "": the create runs the template cold).
  caf::replies_to<atom::claim, std::string, bool>::with<pool_record,
                                                        std::string,
                                                        std::string>,
  // A create without a pool (`[pool] match_creates`): answers the record of
  // a pool that serves it as it is and the id of an idle member taken for
  // it ("" = none: the create goes on as usual).
  caf::replies_to<atom::claim, sandbox_spec>::with<pool_record, std::string>,
  // A warm claim of the member (pool, id) failed: it is gone.
  caf::reacts_to<atom::forget, std::string, std::string>,
  // From the NODE actor: pool records of peers (replication, joins);
  // each is adopted when it supersedes the one kept (core/pool.hpp).
  caf::reacts_to<atom::pool_rep, pool_records>,
  // From the NODE actor: the up nodes of the cluster, this one included
  // (each node keeps its share of every pool).
  caf::reacts_to<atom::members, std::vector<std::string>>,
  // From the NODE actor: what a peer holds of each pool.
  caf::reacts_to<atom::pool_load, std::string, pool_tallies>,
  // INTERNAL: tells the NODE actor what this node holds, if it changed.
  caf::reacts_to<atom::pool_flush>,
  // INTERNAL: syncs the members with the node's directory and refills
  // (tick: and again after the tick interval).
  caf::reacts_to<atom::sync>,
  caf::reacts_to<atom::tick>,
  // INTERNAL: loads the records.
  caf::reacts_to<atom::recover>>;

/// The NODE actor: this process's directory of sandboxes (id -> actor and
/// last reported view); answers lists and gets from it, routes the rest.
using node_actor = caf::typed_actor<
  // Creates a sandbox on the least loaded host.
  caf::replies_to<atom::create, sandbox_spec, std::string>::with<sandbox_view>,
  // Returns one sandbox.
  caf::replies_to<atom::get, std::string>::with<sandbox_view>,
  // Returns one sandbox once its container has started (bounded wait).
  caf::replies_to<atom::started, std::string>::with<sandbox_view>,
  // Returns a filtered page of sandboxes.
  caf::replies_to<atom::list, list_query>::with<list_page>,
  // Routes an operation on one sandbox to its owner (this node's SANDBOX
  // actor, or the owning peer in one hop) without knowing the operation;
  // mutations marked `replayed` run at most once per request id.
  caf::replies_to<atom::call, sandbox_request>::with<sandbox_answer>,
  // Snapshots a sandbox (routed to its owner).
  caf::replies_to<atom::snapshot, std::string, std::string,
                  std::string>::with<snapshot_view>,
  // Returns a snapshot of any node.
  caf::replies_to<atom::snap_get, std::string>::with<snapshot_view>,
  // Returns a filtered page of the snapshots of all nodes.
  caf::replies_to<atom::snap_list, snapshot_query>::with<snapshot_page>,
  // Deletes a snapshot of any node.
  caf::replies_to<atom::snap_del, std::string, std::string>::with<bool>,
  // From a peer: the same, for this node's snapshots only.
  caf::replies_to<atom::local, atom::snap_get, std::string>::with<
    snapshot_view>,
  caf::replies_to<atom::local, atom::snap_list, snapshot_query>::with<
    snapshot_views>,
  caf::replies_to<atom::local, atom::snap_del, std::string,
                  std::string>::with<bool>,
  // Pools (routed to the POOLS actor of this node).
  caf::replies_to<atom::pool_new, pool_record, std::string>::with<pool_view>,
  caf::replies_to<atom::pool_get, std::string>::with<pool_view>,
  caf::replies_to<atom::pool_list>::with<pool_views>,
  caf::replies_to<atom::pool_put, std::string, pool_capacity,
                  std::string>::with<pool_view>,
  caf::replies_to<atom::pool_del, std::string, std::string>::with<bool>,
  // Adds the POOLS actor of this node (wiring at start).
  caf::reacts_to<atom::put, pools_actor>,
  // From the POOLS actor: records it changed or loaded (sent to every
  // peer); from a peer: its records (kept and handed to the POOLS actor).
  caf::reacts_to<atom::pool_rep, pool_records>,
  caf::reacts_to<atom::replicate, pool_records>,
  // From the POOLS actor: what this node holds of each pool (sent to every
  // peer); from a peer: the same of that peer (to the POOLS actor).
  caf::reacts_to<atom::pool_load, pool_tallies>,
  caf::reacts_to<atom::pool_load, std::string, pool_tallies>,
  // From a peer: a claim of its node found no idle member; claim one here
  // (never forwarded again; none idle: a cold create here).
  caf::replies_to<atom::local, atom::claim, std::string, sandbox_spec,
                  std::string>::with<sandbox_view>,
  // Adds the SNAPSHOTS actor of this node (wiring at start).
  caf::reacts_to<atom::put, snapshots_actor>,
  // A sandbox registers itself (create, recovery).
  caf::reacts_to<atom::put, sandbox_actor, sandbox_view>,
  // A sandbox reports a new view.
  caf::reacts_to<atom::update, sandbox_view>,
  // A sandbox is gone.
  caf::reacts_to<atom::forget, std::string>,
  // A sandbox another replica adopted (Kubernetes fleet): forgotten here
  // without a drop to the peers (they know the new owner).
  caf::reacts_to<atom::forget, std::string, bool>,
  // Adds the host supervisor of a runtime host (wiring at start).
  caf::reacts_to<atom::put, supervisor_actor, std::string>,
  // Creates a sandbox on THIS node; a peer already chose the node.
  caf::replies_to<atom::place, sandbox_spec, std::string>::with<sandbox_view>,
  // A peer joins with its info and its sandboxes; answers with ours and the
  // members we know (the sender is the peer's NODE actor).
  caf::replies_to<atom::join, node_info, sandbox_views>::with<
    node_info, sandbox_views, node_infos>,
  // A peer's sandbox changed.
  caf::reacts_to<atom::replicate, sandbox_view>,
  // A peer's sandbox is gone.
  caf::reacts_to<atom::drop, std::string>,
  // Connects to these cluster addresses ("host:port"; seeds at start).
  caf::reacts_to<atom::connect, std::vector<std::string>>,
  // Joins a peer whose NODE actor is already connected (address, handle);
  // also the seam for protocol tests on simulated networks.
  caf::reacts_to<atom::join, std::string, caf::actor>,
  // Lists the members of the cluster.
  caf::replies_to<atom::members>::with<member_infos>,
  // Readiness: "" once membership is complete and every host supervisor
  // has recovered its sandboxes, else why not.
  caf::replies_to<atom::ready>::with<std::string>,
  // A host supervisor recovered its sandboxes (its runtime host).
  caf::reacts_to<atom::recover, std::string>,
  // INTERNAL: retries connections to unreachable members.
  caf::reacts_to<atom::tick>,
  // INTERNAL: stops waiting for seeds that have not joined.
  caf::reacts_to<atom::settle>,

  // INTERNAL: the mutations themselves; their public handlers above run
  // each at most once per request id (actors/replay.hpp).
  caf::replies_to<atom::internal, atom::create, sandbox_spec,
                  std::string>::with<sandbox_view>,
  caf::replies_to<atom::internal, atom::call, sandbox_request>::with<
    sandbox_answer>,
  caf::replies_to<atom::internal, atom::snapshot, std::string, std::string,
                  std::string>::with<snapshot_view>,
  // Claims the idle pool member (id) of this node with the claimed spec
  // (docs/pools.md).
  caf::replies_to<atom::internal, atom::claim, std::string, sandbox_spec,
                  std::string>::with<sandbox_view>,
  // Forwards a claim of the pool to the peer (peer, pool, claim, request
  // id), one hop.
  caf::replies_to<atom::internal, atom::claim, std::string, std::string,
                  sandbox_spec, std::string>::with<sandbox_view>>;

/// The CONNECTOR actor: opens middleman connections to peers. Connecting
/// blocks in CAF 0.17, so it runs detached.
using connector_actor = caf::typed_actor<
  // Connects to a peer's NODE actor at "host:port".
  caf::replies_to<atom::connect, std::string>::with<node_actor>>;


} // namespace osb
