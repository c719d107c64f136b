#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/expected.hpp"
#include "core/model.hpp"

/// The runtime of one host as the actors see it: sandboxes described by core
/// types are admitted, provisioned, paused, snapshotted, observed and removed
/// by asynchronous operations. Containers, labels, network modes, volumes and
/// images of a particular runtime never show above this interface; Docker is
/// one implementation (runtimes/docker/), and a new runtime is a folder under
/// runtimes/ plus one line in runtimes/registry.cpp.
namespace osb::runtimes {

/// Callback of an asynchronous runtime operation. Invoked exactly once, on a
/// runtime I/O thread (never on the caller's stack for real runtimes).
template <class T>
using callback = std::function<void(expected<T>)>;

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

/// What a runtime observes of one sandbox of this node.
struct workload_state {
  std::string id;
  /// One of `workload::*`, or a transitional state the runtime names
  /// itself (Docker's "restarting", "removing").
  std::string status;
  int32_t exit_code = 0;
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
};

/// An image of a snapshot on a runtime host.
struct snapshot_image {
  std::string snapshot_id;
  /// The image reference (what `image_exists` and `remove_image` take).
  std::string ref;
};

/// The runtime of one host. Every operation is asynchronous and
/// thread-safe: it never blocks the caller, and its callback runs exactly
/// once on a runtime thread (the actors turn it into a message).
class sandbox_runtime {
public:
  virtual ~sandbox_runtime() = default;

  /// Checks a create request against this host (its platform, the volumes
  /// it can provide) and tells which host ports the sandbox needs.
  virtual void admit(const sandbox_spec& spec, callback<admission> cb) = 0;

  /// Makes everything a sandbox needs and starts it: one operation with
  /// progress messages. Never fails through `cb` but with a `failed`
  /// result that carries the API's reason.
  virtual void provision(const sandbox_instance& x, provision_options opts,
                         std::function<void(provision_result)> cb)
    = 0;

  /// Freezes / thaws all processes of a running sandbox.
  virtual void pause(const sandbox_instance& x, callback<unit> cb) = 0;
  virtual void resume(const sandbox_instance& x, callback<unit> cb) = 0;

  /// Removes every object of a sandbox: its workload and companions, then
  /// the volumes the server created for it, all of them when `never_ran`
  /// (nothing of value is in them), else those flagged to go with it (a
  /// volume another sandbox uses stays). Missing objects are success; a
  /// failure's message says what is left ("removing its container failed
  /// (...)").
  virtual void remove(const sandbox_instance& x, bool never_ran,
                      callback<unit> cb)
    = 0;

  /// Lists this node's sandboxes on this host with one call to the runtime
  /// (never one per sandbox).
  virtual void observe(callback<observation> cb) = 0;

  /// Lists the volumes this node made for sandboxes and flagged to go with
  /// them, which were still in use when their sandbox went.
  virtual void leftover_volumes(callback<std::vector<runtime_object>> cb)
    = 0;

  /// Removes one object (an orphan, a leftover volume). Missing = success;
  /// one still in use is a `conflict`.
  virtual void remove_object(const runtime_object& x, callback<unit> cb) = 0;

  /// Renders a diagnostics report (plain text) of a sandbox whose API state
  /// is `now`; a sandbox without a workload is explained from `now`.
  virtual void diagnose(const sandbox_instance& x, const sandbox_view& now,
                        const diagnostics_query& q, callback<std::string> cb)
    = 0;

  /// The image reference a snapshot gets (restores start from it); known
  /// before the snapshot is taken.
  virtual std::string image_of(const std::string& snapshot_id) const
    = 0;

  /// Captures a running sandbox's filesystem as the image of a snapshot
  /// (`image_of`); returns the image's id.
  virtual void snapshot(const std::string& sandbox_id,
                        const std::string& snapshot_id,
                        callback<std::string> cb)
    = 0;

  /// Reports whether an image exists on the host (never pulls).
  virtual void image_exists(const std::string& ref, callback<bool> cb) = 0;

  /// Removes an image; a missing one is success, one in use is a
  /// `conflict`.
  virtual void remove_image(const std::string& ref, callback<unit> cb) = 0;

  /// The snapshot images of this node on this host made by one of
  /// `incarnations` (empty = by any process of the node).
  virtual void snapshot_images(const std::vector<std::string>& incarnations,
                               callback<std::vector<snapshot_image>> cb)
    = 0;

  /// The start-up check: fails (`invalid`, with a message that says what
  /// to fix) when the host cannot run sandboxes as configured, e.g. a
  /// secure runtime it does not have. A host that cannot be asked now is
  /// not a failure: admission checks it again. Default: nothing to check.
  virtual void verify(callback<unit> cb) {
    cb(unit{});
  }

  /// Stops I/O; operations in flight end with `unavailable` (or `failed`).
  virtual void shutdown() = 0;
};

using runtime_ptr = std::shared_ptr<sandbox_runtime>;

} // namespace osb::runtimes
