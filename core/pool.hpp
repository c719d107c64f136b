#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/model.hpp"

/// Warm pools (docs/pools.md): definitions, their sizes and the rules that
/// turn a pool's state into work. No I/O; the POOL actor applies them.
namespace osb {

/// `capacitySpec` of the pool API: how many members a pool keeps idle
/// (`buffer*`) and how many it may have in all, claimed ones included
/// (`pool*`).
struct pool_capacity {
  int64_t buffer_max = 0;
  int64_t buffer_min = 0;
  int64_t pool_max = 0;
  int64_t pool_min = 0;
};

/// A pool as the cluster keeps it: the definition of the API plus what
/// replication needs. Every change (create, capacity update, delete) makes
/// a record with a higher generation; a deletion is kept as a tombstone so
/// that a node that missed it cannot bring the pool back.
struct pool_record {
  std::string name;
  /// The validated template: what each member runs (a create request).
  sandbox_spec tmpl;
  pool_capacity capacity;
  /// Microseconds since the epoch of the create.
  int64_t created_us = 0;
  /// Bumped by every change; the higher one wins (then `updated_us`, then
  /// `origin`).
  int64_t generation = 0;
  /// Microseconds since the epoch of the last change.
  int64_t updated_us = 0;
  /// The node that made the last change.
  std::string origin;
  /// True once deleted (a tombstone).
  bool deleted = false;
};

/// What a pool holds on one node (`status` of the API is the sum over the
/// nodes).
struct pool_counts {
  /// Members being made (container created, execd not answering yet).
  int64_t warming = 0;
  /// Idle members a claim can take.
  int64_t available = 0;
  /// Claimed members that still exist (ordinary sandboxes now).
  int64_t allocated = 0;
  /// Claims served by an idle member, cold creates instead (no member was
  /// idle), members made, members that failed to warm, members removed
  /// (scale-down, pool deleted, broken): counters since the start.
  int64_t num_claims = 0;
  int64_t num_cold = 0;
  int64_t num_warmed = 0;
  int64_t num_warm_failures = 0;
  int64_t num_removed = 0;
  /// Of `num_claims`: creates without `poolRef` served by an idle member
  /// (`[pool] match_creates`).
  int64_t num_matched = 0;
  /// Claims that found no idle member here and went to a peer that had
  /// one (a cluster; not in `num_claims`: the peer counts them).
  int64_t num_forwarded = 0;
  /// Why the last member failed to warm (empty after a success).
  std::string last_error;

  /// warming + available + allocated (`status.total`).
  int64_t total() const {
    return warming + available + allocated;
  }
};

/// A pool as the API shows it.
struct pool_view {
  pool_record record;
  /// Summed over the reachable nodes.
  pool_counts status;
};

/// What one node holds of one pool, as it tells its peers (cluster
/// `status` and the choice of a peer for a claim; docs/pools.md "Cluster").
struct pool_tally {
  std::string name;
  int64_t warming = 0;
  int64_t available = 0;
  int64_t allocated = 0;

  friend bool operator==(const pool_tally& a, const pool_tally& b) {
    return a.name == b.name && a.warming == b.warming
           && a.available == b.available && a.allocated == b.allocated;
  }
};

/// What the refill policy asks for.
struct pool_plan {
  /// Members to make now.
  int64_t create = 0;
  /// Idle members to remove now.
  int64_t remove = 0;
};

/// The refill policy of one node's share. The buffer (idle and warming
/// members) is left alone while it lies in [bufferMin, bufferMax]; outside
/// it is steered to the middle of that range (the Kubernetes controller's
/// rule). The whole pool (buffer + claimed) stays at least `pool_min` and
/// never grows above `pool_max`: new members only while the total is below
/// it, and idle members go when the total is above it.
pool_plan plan_pool(const pool_capacity& share, const pool_counts& now);

/// The part of `total` that node `index` of `count` (live nodes in name
/// order) keeps: an even split, the remainder to the first nodes.
pool_capacity share_of(const pool_capacity& total, size_t index,
                       size_t count);

/// The place of `self` among the up nodes of a cluster (`up`, any order,
/// `self` among them or not): its index in name order and the number of
/// nodes, for `share_of`. Alone (no peer up): {0, 1}.
std::pair<size_t, size_t> rank_of(const std::string& self,
                                  std::vector<std::string> up);

/// The peer a claim that found no idle member on its node goes to: the one
/// with the most idle members of the pool (`idle` by node name), the
/// smallest name among equals; "" when none has one.
std::string pick_peer(const std::map<std::string, int64_t>& idle);

/// Adopts `x` into `records` (by name) when it is new there or supersedes
/// the record kept; returns whether it did. Applied in any order, the same
/// records leave the same map (replication converges).
bool merge_record(std::map<std::string, pool_record>& records,
                  const pool_record& x);

/// Checks a capacity beyond the schema (which refuses negative numbers):
/// returns why it is inconsistent, or "" when it is fine.
std::string check_capacity(const pool_capacity& x);

/// Returns whether `a` replaces `b` (same name): a higher generation, then a
/// later change, then the origin's name (the greater wins). Two creates of
/// one name on two nodes at once both have the generation after the
/// name's tombstone (1 for a new name): the later create wins, at equal
/// times the node with the greater name.
bool supersedes(const pool_record& a, const pool_record& b);

/// The revision of a template (`status.revision`): 16 hex digits of a hash
/// of its stored form, the same on every node.
std::string template_revision(const sandbox_spec& tmpl);

/// The entrypoint the SDKs send when the caller gives none
/// (`["tail","-f","/dev/null"]`): a claim with it runs the template's.
const std::vector<std::string>& default_entrypoint();

/// The sandbox a claim of `tmpl` becomes: the template with the claim's
/// entrypoint (unless absent or the SDKs' default), environment (added
/// over the template's), metadata (likewise), timeout (the template's when
/// the claim has none) and extensions. Image, limits, policy and volumes
/// stay the template's.
sandbox_spec merge_claim(const sandbox_spec& tmpl, const sandbox_spec& claim);

/// Whether a pool with template `tmpl` can serve the create request `req`
/// without a difference the caller could notice (`[pool] match_creates`):
/// same image and registry credentials, limits, network policy, platform
/// and extensions, no volumes (neither side) and no snapshot; environment,
/// metadata, entrypoint and timeout may differ (they apply at claim time),
/// except that every variable of the template's environment must be set by
/// the request too (a member's container has it from its create; the
/// claim's value replaces it, nothing can unset it).
bool pool_serves(const sandbox_spec& tmpl, const sandbox_spec& req);

/// The pool a create request names (`extensions.poolRef`, trimmed); "" for
/// none.
std::string pool_ref(const sandbox_spec& req);

/// The extension the node sets on a create it serves from a pool's
/// template because no member was idle (its value is the pool's name).
inline constexpr const char* pool_cold_extension = "opensandbox.io/pool-cold";

/// The extension the node sets on the create of a pool member (its value
/// is the pool's name): the sandbox actor moves it to `sandboxes.pool`,
/// gives the member no expiry and holds its entrypoint until a claim.
inline constexpr const char* pool_member_extension
  = "opensandbox.io/pool-member";

/// The extension the node sets on a create without `poolRef` that no pool
/// served (`[pool] match_creates`) before it places it as usual; removed
/// again before the spec is placed.
inline constexpr const char* pool_unmatched_extension
  = "opensandbox.io/pool-unmatched";

/// What a sandbox's status message adds when it was served cold from a
/// pool (`pool_cold_extension`): "" for other sandboxes.
std::string pool_note(const sandbox_spec& spec);

/// Stored JSON of a record (the store's `pools` table).
std::string pool_to_json(const pool_record& x);
bool pool_from_json(std::string_view json, pool_record& x);

} // namespace osb
