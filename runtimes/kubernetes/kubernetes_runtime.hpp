#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "core/config.hpp"
#include "runtimes/kubernetes/agent_sandbox.hpp"
#include "runtimes/kubernetes/kube_api.hpp"
#include "runtimes/kubernetes/pod_claim.hpp"
#include "runtimes/kubernetes/pod_spec.hpp"
#include "runtimes/ownership.hpp"
#include "runtimes/runtime.hpp"

/// Sandboxes as Kubernetes Pods (`runtime.type = "kubernetes"`,
/// `kubernetes.workload_provider = "pod"`): one pod per sandbox in one
/// namespace, execd copied in by an init container, the egress sidecar as a
/// second container. Everything this runtime knows of its pods comes from
/// one informer (one list+watch, never a GET per pod).
namespace osb::runtimes::kubernetes {

class lease_keeper;

/// Runs a function after a delay on a runtime thread (the timeouts of
/// provisioning); tests fire them by hand.
using scheduler
  = std::function<void(std::chrono::milliseconds, std::function<void()>)>;

/// How the runtime is set up.
struct kubernetes_options {
  std::shared_ptr<const node_config> cfg;
  /// This node and its process: the pods carry both.
  std::string node;
  std::string incarnation;
  /// The runtime host's name ("default").
  std::string host = "default";
  /// Namespace of the pods.
  std::string namespace_name = "default";
  /// The API server's address, for messages.
  std::string server;
  /// Timeouts; required.
  scheduler after;
  /// The replica's lease (null: no fleet, never fenced) and the gate it
  /// moves: while fenced the runtime changes no pod.
  std::shared_ptr<lease_keeper> keeper;
  std::shared_ptr<const ownership_gate> gate;
  /// `workload_provider = "agent-sandbox"`: the informer of this node's
  /// Sandbox objects (runtimes/kubernetes/agent_sandbox.hpp); null = the
  /// "pod" provider.
  std::shared_ptr<informer> sandboxes;
  /// Delivers a member's claim to execd at the pod's address; empty =
  /// over HTTP (`post_claim`, runtimes/execd_claim.hpp). Tests replace it.
  execd_claimer claimer;
};

class kubernetes_runtime
  : public sandbox_runtime,
    public std::enable_shared_from_this<kubernetes_runtime> {
public:
  /// `pods` is the informer of this node's pods (selector
  /// `node_selector(node, host)`); `start` starts it.
  kubernetes_runtime(kube_client_ptr client, std::shared_ptr<informer> pods,
                     kubernetes_options opts);

  /// Starts the informer; call once, after construction.
  void start();

  void admit(const sandbox_spec& spec, callback<admission> cb) override;
  void provision(const sandbox_instance& x, provision_options opts,
                 std::function<void(provision_result)> cb) override;
  /// Claims a member (runtimes/kubernetes/pod_claim.cpp).
  void claim(const sandbox_instance& x, const claim_request& c,
             callback<unit> cb) override;
  void record(const sandbox_instance& x, callback<unit> cb) override;
  void pause(const sandbox_instance& x, callback<unit> cb) override;
  void resume(const sandbox_instance& x, callback<unit> cb) override;
  void remove(const sandbox_instance& x, bool never_ran,
              callback<unit> cb) override;
  void observe(callback<observation> cb) override;
  void ping(callback<unit> cb) override;
  void leftover_volumes(callback<std::vector<runtime_object>> cb) override;
  void remove_object(const runtime_object& x, callback<unit> cb) override;
  void diagnose(const sandbox_instance& x, const sandbox_view& now,
                const diagnostics_query& q, callback<std::string> cb) override;
  std::string image_of(const std::string& snapshot_id) const override;
  void snapshot(const std::string& sandbox_id, const std::string& snapshot_id,
                callback<std::string> cb) override;
  void image_exists(const std::string& ref, callback<bool> cb) override;
  void remove_image(const std::string& ref, callback<unit> cb) override;
  void snapshot_images(const std::vector<std::string>& incarnations,
                       callback<std::vector<snapshot_image>> cb) override;
  void verify(callback<unit> cb) override;
  void shutdown() override;

  /// "/api/v1/namespaces/<ns>/<plural>" (the agent-sandbox group's path
  /// for "sandboxes").
  std::string collection(const char* plural) const;

private:
  struct wait_state;
  using wait_ptr = std::shared_ptr<wait_state>;

  /// Why the API server cannot be used now; empty while it answers.
  std::string unavailable() const;

  /// An informer change: wakes the provisioning that waits for the pod.
  void on_change(const watch_event& e);

  /// Looks at the pod of a waiting provisioning (`deleted`: its last
  /// state) and finishes it when it is ready or cannot become ready.
  void check(const wait_ptr& w, const std::string& json, bool deleted = false);

  /// Finishes a provisioning once (later calls do nothing).
  void finish(const wait_ptr& w, provision_result r);

  /// Creates the pull secret (if any), then the pod.
  void create(const wait_ptr& w);

  /// Answers `cb` from the cache once the informer synced (waits up to
  /// `tries` x 50 ms for a first listing in progress).
  void observe_synced(int tries, callback<observation> cb);

  /// The merge patch `record` sends to the workload: the expiry and
  /// metadata, and for one made as a pool member its claimed spec too
  /// (pod_claim.cpp).
  std::string record_patch(const sandbox_instance& x) const;

  /// Why this replica may not change pods now; empty when it may.
  std::string fenced() const;

  // -- the workload provider seam (most in agent_sandbox_runtime.cpp) ------

  /// "pods", or "sandboxes" with the agent-sandbox provider.
  const char* workload_plural() const;
  /// The informer of the workload objects (pods or Sandboxes).
  informer& workloads() const;
  /// The body of the workload's POST.
  std::string make_workload(const sandbox_instance& x,
                            const std::vector<volume_mount>& volumes) const;
  /// A Sandbox change: fails the provisioning that waits for it when the
  /// controller cannot make it ready.
  void on_sandbox_change(const watch_event& e);
  /// `observe` from the Sandbox objects and their pods, into `result`
  /// (the lease's part filled in); `adoptable` are the names relabelled to
  /// this replica.
  void observe_sandboxes(observation result,
                         const std::set<std::string>& adoptable,
                         callback<observation> cb);
  /// Why the Sandbox informer cannot be used now; empty otherwise (and
  /// with the "pod" provider).
  std::string sandboxes_unavailable() const;
  /// The agent-sandbox CRD is served and readable (start-up check).
  void verify_sandboxes(callback<unit> cb);

  /// DELETE of one object; 404 = success.
  void remove_named(const char* plural, const std::string& name,
                    callback<unit> cb);

  kube_client_ptr client_;
  std::shared_ptr<informer> pods_;
  kubernetes_options opts_;
  mutable std::mutex mtx_;
  /// Provisionings waiting for their pod, by pod name.
  std::unordered_map<std::string, wait_ptr> waits_;
  /// What `observe` read from each cached pod text (the informer's texts
  /// are immutable and shared): a pod is parsed once per version, not at
  /// every reconciliation. Guarded by `observe_mtx_`.
  struct parsed {
    std::shared_ptr<const std::string> text;
    std::optional<pod_facts> facts;
  };
  std::mutex observe_mtx_;
  std::unordered_map<const std::string*, parsed> parsed_;
  /// The same for the Sandbox objects (`observe_sandboxes`).
  struct parsed_sandbox {
    std::shared_ptr<const std::string> text;
    std::optional<sandbox_facts> facts;
  };
  std::unordered_map<const std::string*, parsed_sandbox> parsed_sandboxes_;
};

} // namespace osb::runtimes::kubernetes
