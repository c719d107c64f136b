#pragma once

// What the runtime-neutral runtime interface (runtimes/runtime.hpp) speaks:
// plain data, so that the actors' message contract (actors/atoms.hpp) needs
// core types only. Namespace `osb::runtimes`, where the interface lives.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/model.hpp"

namespace osb::runtimes {

/// One sandbox as its runtime needs it: identity, request and what the node
/// reserved for it (built from the durable row, so a restart rebuilds it).
struct sandbox_instance {
  std::string id;
  /// The node that owns the sandbox.
  std::string node;
  /// The runtime host that runs it (this runtime's host).
  std::string runtime_host;
  /// The validated create request.
  sandbox_spec spec;
  /// Host ports the supervisor reserved (0 = none needed).
  port_map ports;
  /// Token of the egress sidecar; empty = no network policy, no sidecar.
  std::string egress_token;
  /// The sandbox's own access token (execd requires it); may be empty.
  std::string access_token;
  /// Microseconds since the epoch; `expires_us` 0 = manual cleanup.
  int64_t created_us = 0;
  int64_t expires_us = 0;
  /// The pool of a pre-provisioned member (docs/pools.md), empty for other
  /// sandboxes: `provision` then starts the sandbox with its entrypoint
  /// held back until `claim`, and answers once the sandbox can take it.
  std::string member_of;
};

/// What a claim of a pre-provisioned member starts (`claim`).
struct claim_request {
  /// The entrypoint to start now.
  std::vector<std::string> entrypoint;
  /// Environment added at claim time, for the entrypoint and for every
  /// command run in the sandbox later.
  string_map env;
};

/// A runtime's answer to a create request before anything exists.
struct admission {
  /// Why the host cannot run the sandbox (the API error and a message that
  /// names the cause); nullopt = admitted.
  struct refusal {
    ec code = ec::invalid_parameter;
    std::string message;
  };
  std::optional<refusal> refused;
  /// Host ports the sandbox needs (reserved before the 202, so that its
  /// endpoints resolve at once): execd, port 8080, the egress API.
  bool execd_port = false;
  bool http_port = false;
  bool egress_port = false;
  /// Ports the sandbox serves at its own address (Kubernetes: the pod's),
  /// used as they are instead of reserved host ports; 0 = none.
  port_map fixed;
  /// The sandbox's durable state lives in its workload object (Kubernetes:
  /// the pod's annotations, from which another replica adopts it), not in
  /// the node's store: the create is acknowledged only once provisioning
  /// made that object (its `created` phase), so that no replica that dies
  /// after the 202 loses it.
  bool state_in_workload = false;
};

/// Set by the caller to stop a provisioning between two of its steps.
using cancel_flag = std::shared_ptr<std::atomic<bool>>;

/// How to provision.
struct provision_options {
  /// False when an earlier attempt may have left objects behind (a restart
  /// during provisioning, a name conflict): they are removed first.
  bool fresh = true;
  /// Set once the sandbox is being deleted or its actor is gone: the
  /// provisioning ends `cancelled` at its next step, leaving what exists to
  /// `remove`. May be null.
  cancel_flag cancel;
  /// Receives human-readable progress for the Pending message ("Pulling
  /// image X: 42% (12.3/29.1 MB)"), on a runtime thread; may be empty.
  std::function<void(const std::string&)> progress;
  /// Told when provisioning reaches `prepared`, `created` and `started`
  /// (core/model.hpp create_phase), on a runtime thread; may be empty.
  std::function<void(create_phase)> on_phase;
};

/// How a provisioning ended.
struct provision_result {
  enum class outcome : uint8_t {
    /// The sandbox runs.
    running,
    /// It cannot run: `reason` and `message` say why.
    failed,
    /// The cancel flag stopped it.
    cancelled,
  };
  /// What the caller may try before it reports the failure.
  enum class remedy : uint8_t {
    none,
    /// Another program holds one of the reserved host ports (the kernel
    /// hands out ephemeral ports from the same range): reserve new ones and
    /// provision again. What was made is removed already.
    new_ports,
    /// Objects of an earlier attempt are still landing (a create from
    /// before a crash): provision again, not fresh, after a pause.
    retry_later,
  };
  outcome status = outcome::running;
  remedy fix = remedy::none;
  /// The API's `status.reason` of a failure: IMAGE_PULL_FAILED,
  /// CONTAINER_CREATE_FAILED, CONTAINER_START_FAILED,
  /// EGRESS_SIDECAR_FAILED, EXECD_DISTRIBUTION_FAILED,
  /// VOLUME_PREPARATION_FAILED, GPU_UNAVAILABLE, DOCKER_UNAVAILABLE, ...
  std::string reason;
  /// The API's `status.message`: what failed, in words a person can act on.
  std::string message;
  /// Where a running sandbox's ports are reached when that is its own
  /// address (Kubernetes: the pod IP); empty = its host's endpoint host.
  std::string address;
};

/// Observed states of a sandbox's workload; every runtime maps its own onto
/// these.
namespace workload {
/// Made but never started.
inline constexpr const char* created = "created";
inline constexpr const char* running = "running";
inline constexpr const char* paused = "paused";
/// Ran and ended (see `workload_state::exit_code`).
inline constexpr const char* exited = "exited";
} // namespace workload

/// What a runtime keeps of a sandbox with its workload (Kubernetes: the
/// pod's annotations): enough to rebuild the sandbox's stored row when the
/// store lost it.
struct kept_state {
  /// The stored spec (core/spec_json) and the current metadata (JSON).
  std::string spec_json;
  std::string metadata_json;
  std::string access_token;
  std::string egress_token;
  int64_t created_us = 0;
  /// 0 = manual cleanup.
  int64_t expires_us = 0;
  /// The ports the sandbox serves (`admission::fixed`).
  port_map ports;
  /// The pool of a member or of a sandbox claimed from one (the store's
  /// `sandboxes.pool`); empty for other sandboxes.
  std::string pool;
  /// A member no claim took yet: adopted as a member of `pool` (idle once
  /// it runs), not as a sandbox.
  bool unclaimed = false;
};

/// What a runtime observes of one sandbox of this node.
struct workload_state {
  std::string id;
  /// One of `workload::*`, or a transitional state the runtime names
  /// itself (Docker's "restarting", "removing").
  std::string status;
  int32_t exit_code = 0;
  /// The sandbox's own address (`provision_result::address`); empty = its
  /// host's endpoint host.
  std::string address;
  /// What the runtime keeps of the sandbox (`sandbox_runtime::record`);
  /// nullopt for runtimes that keep nothing (Docker: the store does).
  std::optional<kept_state> kept;
};

/// An object a runtime made for a sandbox of this node (its workload, an
/// egress sidecar, a volume): what the host supervisor needs to decide
/// whether it is an orphan.
struct runtime_object {
  /// The sandbox it was made for.
  std::string sandbox_id;
  /// What it is, for logs ("container", "egress sidecar", "volume").
  std::string kind;
  /// Its name in the runtime, for logs.
  std::string name;
  /// How the runtime finds it again (`remove_object`).
  std::string ref;
  /// The node incarnation (process) that made it: the evidence that this
  /// node's store knew it. Empty = unknown (made before incarnations).
  std::string incarnation;
};

/// One listing of this node's sandboxes on a runtime host.
struct observation {
  /// The workload of every sandbox found.
  std::vector<workload_state> workloads;
  /// Every object of this node's sandboxes (workloads and companions).
  std::vector<runtime_object> objects;
  /// Sandboxes (ids among `workloads`) this node took over from a lost
  /// replica since the last observation: the supervisor adopts them from
  /// what their runtime kept (Kubernetes fleet).
  std::vector<std::string> adopted;
  /// True once after another replica took this node's sandboxes over: the
  /// supervisor drops every sandbox it has without touching its workload.
  bool released = false;
};

/// An image of a snapshot on a runtime host.
struct snapshot_image {
  std::string snapshot_id;
  /// The image reference (what `image_exists` and `remove_image` take).
  std::string ref;
};

} // namespace osb::runtimes
