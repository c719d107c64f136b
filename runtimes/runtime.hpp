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
#include "core/runtime_types.hpp"

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

  /// Starts the held-back entrypoint of a provisioned pool member with the
  /// claim's environment (`sandbox_instance::member_of`). Answers once it
  /// started; a repeated claim with the same content succeeds again (a
  /// restart may resend it), another one is a `conflict`.
  virtual void claim(const sandbox_instance& x, const claim_request& c,
                     callback<unit> cb) {
    (void) x;
    (void) c;
    cb(failure{failure_kind::invalid,
               "this runtime has no pre-provisioned sandboxes"});
  }

  /// Keeps what changed after the create (`x.expires_us`, the current
  /// metadata in `x.spec.metadata`) with the sandbox's workload, for
  /// runtimes whose state lives there (Kubernetes: annotations). Called
  /// after the store has the change. Default: nothing to keep.
  virtual void record(const sandbox_instance& x, callback<unit> cb) {
    (void) x;
    cb(unit{});
  }

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

  /// Readiness: whether the runtime answers at all (the cheapest call it
  /// has). The default lists the sandboxes.
  virtual void ping(callback<unit> cb) {
    observe([cb = std::move(cb)](expected<observation> r) {
      if (r)
        cb(unit{});
      else
        cb(r.error());
    });
  }

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
