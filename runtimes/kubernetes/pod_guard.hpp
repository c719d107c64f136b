#pragma once

#include <functional>
#include <string>

#include "runtimes/kubernetes/kube_api.hpp"

/// Writes to a pod that hold only while the pod is still this replica's:
/// each DELETE carries preconditions (uid and resourceVersion) and each
/// merge patch a resourceVersion, taken from the informer's copy or a fresh
/// GET; a 409 (the pod changed) is looked at again and retried while the
/// pod is still labelled with this node. A pod that another replica adopted
/// (relabelled) is never written: a stale owner's delete fails instead of
/// deleting it (docs/runtimes.md, "Several replicas").
namespace osb::runtimes::kubernetes {

enum class guarded_outcome {
  /// The write was applied.
  done,
  /// The pod does not exist (any more).
  gone,
  /// The pod is labelled with another node: not written.
  not_ours,
  /// The API server refused or did not answer (`kube_response` says).
  failed,
};

struct guarded_write {
  /// "DELETE" or "PATCH" (a JSON merge patch whose text starts with
  /// `{"metadata":{`).
  std::string method;
  /// "/api/v1/namespaces/<ns>/pods/<name>".
  std::string path;
  /// The patch; ignored for DELETE.
  std::string patch;
  /// This replica's node name (label opensandbox.io/node).
  std::string node;
  /// The pod as the informer has it; empty = GET it first.
  std::string cached;
};

/// Runs `w`; `cb` runs once on the client's I/O thread.
void write_guarded(kube_client_ptr client, guarded_write w,
                   std::function<void(guarded_outcome, kube_response)> cb);

} // namespace osb::runtimes::kubernetes
