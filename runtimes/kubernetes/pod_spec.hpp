#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/json.hpp"
#include "core/runtime_types.hpp"
#include "runtimes/volumes.hpp"

/// A sandbox as a Kubernetes Pod: the pod (and pull secret) the runtime
/// creates, and what it reads back from a pod the API server reports. The
/// pod carries everything that must survive this process (labels for the
/// selectors, annotations for the state), so that a restarted server, even
/// with an empty store, can adopt its pods.
namespace osb::runtimes::kubernetes {

// -- labels (selectors) -------------------------------------------------------

inline constexpr const char* id_label = "opensandbox.io/id";
inline constexpr const char* node_label = "opensandbox.io/node";
inline constexpr const char* host_label = "opensandbox.io/runtime-host";
/// The node incarnation (process) that made the pod: recovery's evidence.
inline constexpr const char* incarnation_label = "opensandbox.io/incarnation";
/// The pool whose member the pod was made as (docs/pools.md); it keeps the
/// label once claimed.
inline constexpr const char* pool_label = "opensandbox.io/pool";
/// On the pull secret: the sandbox it was made for.
inline constexpr const char* secret_for_label = "opensandbox.io/secret-for";

// -- annotations (state) ------------------------------------------------------

inline constexpr const char* created_annotation = "opensandbox.io/created-at";
/// RFC 3339; absent = manual cleanup.
inline constexpr const char* expires_annotation = "opensandbox.io/expires-at";
/// The user metadata as a JSON object (current: patches reach it).
inline constexpr const char* metadata_annotation = "opensandbox.io/metadata";
/// The validated create request (core/spec_json) and its hash.
inline constexpr const char* spec_annotation = "opensandbox.io/spec";
inline constexpr const char* spec_hash_annotation = "opensandbox.io/spec-hash";
inline constexpr const char* access_token_annotation
  = "opensandbox.io/access-token";
inline constexpr const char* egress_token_annotation
  = "opensandbox.io/egress-token";
/// A member's state: `member_idle` until a claim, then `member_claimed`
/// (runtimes/kubernetes/pod_claim.hpp).
inline constexpr const char* member_annotation = "opensandbox.io/pool-member";
inline constexpr const char* member_idle = "idle";
inline constexpr const char* member_claimed = "claimed";

// -- the pod ------------------------------------------------------------------

/// Where the init container puts execd, in the sandbox container too.
inline constexpr const char* execd_dir = "/opt/opensandbox";
inline constexpr const char* execd_path = "/opt/opensandbox/execd";
/// Where execd lies in `runtime.execd_image` (deploy/build-execd-image.sh).
inline constexpr const char* execd_image_path = "/execd";
/// `runtime.execd_image` when none is configured.
inline constexpr const char* default_execd_image = "opensandbox/execd:latest";
/// Container names.
inline constexpr const char* sandbox_container = "sandbox";
inline constexpr const char* egress_container = "egress";
inline constexpr const char* execd_init_container = "execd-installer";

/// The ports a pod serves at its IP: execd, 8080 and, with a sidecar, the
/// egress API.
port_map pod_ports(bool egress);

/// "sandbox-<id>".
std::string pod_name(const std::string& id);

/// "sandbox-<id>-pull": the registry credentials of `image.auth`.
std::string pull_secret_name(const std::string& id);

/// The label selector of this node's pods on this runtime host.
std::string node_selector(const std::string& node, const std::string& host);

/// The Pod of sandbox `x` (the body of its POST). `volumes` are the parsed
/// `volumes_json` (host paths already checked against the allowlist). A
/// pool member (`x.member_of`) runs execd `--await-claim` (its entrypoint
/// held back until the claim) and carries its pool and state.
std::string make_pod(const node_config& cfg, const sandbox_instance& x,
                     const std::string& incarnation,
                     const std::vector<volume_mount>& volumes);

/// The Secret (kubernetes.io/dockerconfigjson) of the image's registry
/// credentials; empty when the request has none.
std::string make_pull_secret(const sandbox_instance& x,
                             const std::string& incarnation);

/// Writes an expiry as RFC 3339, or null when there is none (in a merge
/// patch, null removes the field: manual cleanup).
void write_expiry(json::writer& o, int64_t expires_us);

/// A JSON merge patch that sets the annotations of what changes after the
/// create: the expiry (0 = manual cleanup) and the metadata.
std::string state_patch(int64_t expires_us, const string_map& metadata);

/// A stable hash of a stored spec (FNV-1a 64, hex).
std::string spec_hash(std::string_view spec_json);

// -- reading pods -------------------------------------------------------------

/// What a pod says about its sandbox.
struct pod_facts {
  std::string name;
  std::string id;
  std::string node;
  std::string host;
  std::string incarnation;
  /// Pending, Running, Succeeded, Failed, Unknown.
  std::string phase;
  /// The Ready condition is True.
  bool ready = false;
  /// metadata.deletionTimestamp is set.
  bool deleting = false;
  std::string pod_ip;
  /// One of runtimes::workload::* or "pending" / "removing".
  std::string workload;
  int32_t exit_code = 0;
  /// Set when the pod cannot become ready: the API's reason
  /// (IMAGE_PULL_FAILED, EXECD_DISTRIBUTION_FAILED, ...) and message.
  std::string fail_reason;
  std::string fail_message;
  /// PodScheduled=False: the scheduler's message (it may still place it).
  std::string unschedulable;
  /// A short description of where the pod is ("Pending: pulling image").
  std::string progress;
  /// The state annotations, as written by `make_pod` and `state_patch`.
  std::string spec_json;
  std::string spec_hash;
  std::string metadata_json;
  std::string access_token;
  std::string egress_token;
  int64_t created_us = 0;
  int64_t expires_us = 0;
  /// `pool_label` and `member_annotation` (empty for other pods).
  std::string pool;
  std::string member_state;
};

/// Reads a pod (JSON text of the API); nullopt if it is not one of ours.
std::optional<pod_facts> read_pod(std::string_view json);

} // namespace osb::runtimes::kubernetes
