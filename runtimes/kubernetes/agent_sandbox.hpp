#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/runtime_types.hpp"
#include "runtimes/kubernetes/pod_spec.hpp"
#include "runtimes/volumes.hpp"

/// `kubernetes.workload_provider = "agent-sandbox"`: a sandbox is a
/// kubernetes-sigs/agent-sandbox `Sandbox` object (agents.x-k8s.io/v1alpha1)
/// whose spec.podTemplate is the pod the "pod" provider makes; the
/// agent-sandbox controller makes that pod (same name, our labels and
/// annotations copied from the template). The Sandbox carries the state
/// (annotations, spec.shutdownTime) that renewals and metadata patches
/// change; the pod's status says how the sandbox runs.
namespace osb::runtimes::kubernetes {

inline constexpr const char* agent_sandbox_group = "agents.x-k8s.io";
inline constexpr const char* agent_sandbox_version = "v1alpha1";
/// The plural; `kubernetes_runtime::collection` maps it to its group.
inline constexpr const char* agent_sandbox_plural = "sandboxes";

/// "/apis/agents.x-k8s.io/v1alpha1/namespaces/<ns>/sandboxes".
std::string sandbox_collection(const std::string& namespace_name);

/// The Sandbox of sandbox `x` (the body of its POST): metadata (name,
/// labels, annotations) as the pod's, spec.podTemplate = the pod's metadata
/// and spec, replicas 1, shutdownPolicy from `[agent_sandbox]`,
/// shutdownTime = the expiry (none for manual cleanup).
std::string make_sandbox(const node_config& cfg, const sandbox_instance& x,
                         const std::string& incarnation,
                         const std::vector<volume_mount>& volumes);

/// A JSON merge patch of a Sandbox: the state annotations (as
/// `state_patch`) and spec.shutdownTime (null: manual cleanup).
std::string sandbox_state_patch(int64_t expires_us, const string_map& metadata);

/// What a Sandbox object says.
struct sandbox_facts {
  /// Labels and annotations, read as a pod's (`read_pod`); its status
  /// fields stay empty.
  pod_facts meta;
  /// The Ready condition: "True", "False", "Unknown" or "" (none yet).
  std::string ready;
  std::string ready_reason;
  std::string ready_message;
  /// spec.shutdownTime (RFC 3339) or empty.
  std::string shutdown_time;
  /// status.podIPs[0] or empty.
  std::string pod_ip;
};

/// Reads a Sandbox (JSON text of the API); nullopt if it is not one of
/// ours.
std::optional<sandbox_facts> read_sandbox(std::string_view json);

/// Why a provisioning cannot succeed, from the Sandbox alone (the pod's
/// failures come from the pod): its reason and message.
struct sandbox_failure {
  std::string reason;
  std::string message;
};

/// The controller expired the Sandbox (Ready=False, SandboxExpired), or
/// cannot make its pod (Ready=False, ReconcilerError with a refusal of the
/// API server: an invalid or forbidden pod); nullopt while it may still
/// become ready.
std::optional<sandbox_failure> sandbox_failed(const sandbox_facts& s);

/// The workload state of a sandbox from its Sandbox and, when the
/// controller made it, its pod (`pod`: read_pod of the pod, null when
/// there is none): the pod's state when there is one, else "removing"
/// (deleting), `workload::exited` (expired, or its pod ended and is gone)
/// or "pending".
workload_state sandbox_workload(const sandbox_facts& s, const pod_facts* pod);

} // namespace osb::runtimes::kubernetes
