#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace osb {

/// Lifecycle states of the API (`Sandbox.status.state`).
enum class sandbox_state : uint8_t {
  pending,
  running,
  pausing,
  paused,
  resuming,
  stopping,
  terminated,
  failed,
  unknown,
};

/// Returns the wire name ("Running", ...).
const char* to_string(sandbox_state x);

/// Parses a wire name case-insensitively; returns false if unknown.
bool from_string(const std::string& str, sandbox_state& x);

using string_map = std::map<std::string, std::string>;

/// A validated create request: everything needed to (re-)provision a sandbox.
/// Normalized by the decoder (http/codec_create); the store keeps it as JSON
/// (core/spec_json).
struct sandbox_spec {
  /// Image reference as requested (`image.uri`).
  std::string image;
  /// Registry credentials (`image.auth`), empty when absent.
  std::string image_username;
  std::string image_password;
  /// Snapshot to restore from (issue 6), empty when absent.
  std::string snapshot_id;
  /// The user command (argv).
  std::vector<std::string> entrypoint;
  /// Environment; null values were dropped by the decoder.
  string_map env;
  /// User metadata (labels) at create time.
  string_map metadata;
  /// Raw `resourceLimits` (cpu, memory, gpu, ...).
  string_map resource_limits;
  /// Requested platform, lower-cased; both empty when unconstrained.
  std::string platform_os;
  std::string platform_arch;
  /// Seconds until expiry; 0 means manual cleanup (never expires).
  int64_t timeout_s = 0;
  /// `extensions` as sent.
  string_map extensions;
  /// `networkPolicy` as compact JSON, empty when absent (issue 4).
  std::string network_policy_json;
  /// `volumes` as compact JSON, empty when absent (issue 6).
  std::string volumes_json;
};

/// Host ports reserved for a sandbox before its container exists, so that
/// endpoints resolve from the moment the 202 is sent.
struct port_map {
  /// Host port mapped to execd (container port 44772); 0 in host mode.
  uint16_t execd = 0;
  /// Host port mapped to container port 8080; 0 in host mode.
  uint16_t http = 0;
  /// Host port mapped to the egress API (18080); 0 without sidecar.
  uint16_t egress = 0;
};

/// The phases of a create, in order (issue 15): each one's time is on the
/// sandbox (`sandbox_view::create_phases_us`) and the time since the
/// previous one goes into `opensandbox_sandbox_create_phase_seconds`.
enum class create_phase : uint8_t {
  accepted,  ///< the 202 was decided (= createdAt)
  stored,    ///< the row is durable in the store
  prepared,  ///< volumes and egress sidecar ready; the container is asked for
  created,   ///< the container exists (image pulled if it was missing)
  started,   ///< the runtime started the container
  running,   ///< the sandbox is Running
};

/// Number of create phases.
constexpr size_t num_create_phases = 6;

/// "accepted", "stored", ... (metric labels and the JSON extension).
const char* to_string(create_phase x);

/// Everything the API reports about one sandbox (GET/list/create responses),
/// plus what endpoint resolution needs. Timestamps are microseconds since the
/// Unix epoch; 0 means "absent".
struct sandbox_view {
  std::string id;
  std::string image;
  std::string snapshot_id;
  std::string platform_os;
  std::string platform_arch;
  sandbox_state state = sandbox_state::pending;
  std::string reason;
  std::string message;
  int64_t last_transition_us = 0;
  string_map metadata;
  std::vector<std::string> entrypoint;
  int64_t expires_us = 0;
  int64_t created_us = 0;
  /// Name of the node that owns the sandbox.
  std::string node;
  /// Reserved host ports.
  port_map ports;
  /// Token of the egress sidecar (issue 4), empty without one.
  std::string egress_token;
  /// The sandbox's own access token: execd requires it in
  /// `X-EXECD-ACCESS-TOKEN`, the server proxy accepts it in
  /// `OpenSandbox-Secure-Access`. Empty for sandboxes created before
  /// tokens existed.
  std::string access_token;
  /// Public host of the owning node for endpoints; empty = this node's.
  std::string endpoint_host;
  /// Docker host (of the owning node) that runs the sandbox.
  std::string runtime_host;
  /// `extensions["access.renew.extend.seconds"]` (OSEP-0009): seconds a
  /// proxied access extends the expiry to (renew-on-access); 0 = none.
  int64_t renew_extend_s = 0;
  /// When each create_phase was reached (µs, by create_phase; 0 = not
  /// reached or not known, e.g. after a restart). Empty = none known.
  std::vector<int64_t> create_phases_us;
  /// The pool of an unclaimed member (warming, idle or claiming), empty
  /// for every other sandbox: listings leave members out.
  std::string member_of;
  /// The pool the sandbox was made for, also once claimed (its row's
  /// `pool`); empty for every other sandbox. The POOLS actor counts the
  /// claimed ones (`status.allocated`).
  std::string pool;
};

/// How a node introduces itself to its peers.
struct node_info {
  std::string name;
  /// Cluster protocol version; nodes of different versions do not join.
  std::string version;
  /// Cluster listen address ("host:port") for reconnects.
  std::string address;
  /// Sandboxes the node accepts; 0 = unlimited (placement respects it).
  int64_t max_sandboxes = 0;
  /// Identity of this process of the node (a new one per start); its
  /// containers carry it (label opensandbox.io/incarnation).
  std::string incarnation;
};

/// One member of the cluster as the membership API shows it.
struct member_info {
  std::string name;
  std::string address;
  /// "up", "down" (unreachable) or "self".
  std::string state;
  /// Sandboxes owned by the node.
  int64_t sandboxes = 0;
  /// Microseconds since the epoch of the last state change.
  int64_t since_us = 0;
  std::string version;
  /// The member's process (node_info::incarnation).
  std::string incarnation;
};

/// Filters and page of `GET /sandboxes`.
struct list_query {
  /// OR of states (already validated); empty = any.
  std::vector<sandbox_state> states;
  /// True when a `state` parameter was given but matched no known state.
  bool match_nothing = false;
  /// AND of metadata pairs.
  string_map metadata;
  int32_t page = 1;
  int32_t page_size = 20;
  /// True for the POOLS actor's sync: only this node's sandboxes of pools,
  /// its unclaimed members (which other listings never show) and the
  /// claimed ones (docs/pools.md).
  bool members = false;
};

/// One page of sandboxes.
struct list_page {
  std::vector<sandbox_view> items;
  int32_t page = 1;
  int32_t page_size = 20;
  int64_t total_items = 0;
  /// True while the node may not know every sandbox of the fleet (cluster
  /// membership or its own recovery not complete).
  bool partial = false;
  /// Why the page is partial.
  std::string partial_reason;
  /// Peers not joined yet ("address (name)").
  std::vector<std::string> missing_peers;
};

/// What a diagnostics route asks for (`/sandboxes/{id}/diagnostics/...`).
struct diagnostics_query {
  /// "logs", "events", "inspect" or "summary".
  std::string kind;
  /// Trailing log lines (logs, summary).
  int32_t tail = 100;
  /// `since` as sent ("10m", "1 h", ...); empty = all logs (logs).
  std::string since;
  /// Health-log entries (events, summary).
  int32_t limit = 50;
};

/// A JSON merge patch of metadata: value or deletion per key.
struct metadata_patch {
  string_map set;
  std::vector<std::string> remove;
};

/// `GET /sandboxes/{id}/endpoints/{port}` result.
struct endpoint_view {
  std::string endpoint;
  string_map headers;
};

/// A snapshot of a sandbox's filesystem (`Snapshot` of the API) plus where
/// its image lives. Snapshots stay on the node and Docker host of their
/// source sandbox; a restore runs there.
struct snapshot_view {
  std::string id;
  std::string sandbox_id;
  /// Optional name; empty = absent.
  std::string name;
  /// "Creating", "Ready", "Failed" or "Deleting".
  std::string state;
  std::string reason;
  std::string message;
  int64_t last_transition_us = 0;
  int64_t created_us = 0;
  /// Image reference that a restore starts (`opensandbox-snapshots:<id>`).
  std::string image;
  /// Owning node and its Docker host.
  std::string node;
  std::string runtime_host;
};

/// Filters and page of `GET /snapshots`.
struct snapshot_query {
  /// Exact source sandbox id; empty = any.
  std::string sandbox_id;
  /// Exact snapshot name when `by_name` (the SDKs send it; the original
  /// ignored it).
  std::string name;
  bool by_name = false;
  /// OR of exact (case-sensitive) states; empty = any.
  std::vector<std::string> states;
  int32_t page = 1;
  int32_t page_size = 20;
};

/// One page of snapshots.
struct snapshot_page {
  std::vector<snapshot_view> items;
  int32_t page = 1;
  int32_t page_size = 20;
  int64_t total_items = 0;
};

/// Returns whether `x` passes the filters of `q`.
bool matches(const snapshot_view& x, const snapshot_query& q);

/// Sorts (createdAt desc, id desc) and copies out page `page` of size
/// `size` into `out`; returns the number of items. Only the requested page
/// is sorted and copied.
template <class View>
int64_t paginate_into(std::vector<const View*> xs, int32_t page,
                      int32_t size, std::vector<View>& out) {
  auto total = static_cast<int64_t>(xs.size());
  auto first = static_cast<int64_t>(page - 1) * size;
  if (first >= total)
    return total;
  auto last = std::min<int64_t>(first + size, total);
  std::partial_sort(xs.begin(), xs.begin() + last, xs.end(),
                    [](const View* a, const View* b) {
                      if (a->created_us != b->created_us)
                        return a->created_us > b->created_us;
                      return a->id > b->id;
                    });
  for (auto i = first; i < last; ++i)
    out.push_back(*xs[i]);
  return total;
}

/// Sorts (createdAt desc, id desc) and copies out the requested page; the
/// caller has applied the filters. Takes pointers so that only the page is
/// copied.
list_page paginate(std::vector<const sandbox_view*> xs, const list_query& q);

/// Convenience overload for owned views.
list_page paginate(const std::vector<sandbox_view>& xs, const list_query& q);

/// Returns whether `x` passes the filters of `q`.
bool matches(const sandbox_view& x, const list_query& q);

} // namespace osb
