// The workload provider seam of kubernetes_runtime: what differs between
// "pod" (the runtime's pods are its workloads) and "agent-sandbox" (the
// workloads are Sandbox objects whose pods the agent-sandbox controller
// makes). Provisioning waits on the pods in both cases (their labels are
// ours); the Sandbox objects carry the state that adoption reads.

#include "runtimes/kubernetes/kubernetes_runtime.hpp"

#include "runtimes/kubernetes/agent_sandbox.hpp"
#include "runtimes/kubernetes/lease_keeper.hpp"

namespace osb::runtimes::kubernetes {

const char* kubernetes_runtime::workload_plural() const {
  return opts_.sandboxes ? agent_sandbox_plural : "pods";
}

informer& kubernetes_runtime::workloads() const {
  return opts_.sandboxes ? *opts_.sandboxes : *pods_;
}

std::string
kubernetes_runtime::make_workload(const sandbox_instance& x,
                                  const std::vector<volume_mount>& v) const {
  return opts_.sandboxes ? make_sandbox(*opts_.cfg, x, opts_.incarnation, v)
                         : make_pod(*opts_.cfg, x, opts_.incarnation, v);
}

std::string kubernetes_runtime::sandboxes_unavailable() const {
  if (!opts_.sandboxes)
    return {};
  if (auto err = opts_.sandboxes->last_error(); !err.empty())
    return err;
  if (!opts_.sandboxes->synced())
    return "API server " + opts_.server
           + ": the first listing of Sandbox objects is not complete yet";
  return {};
}

void kubernetes_runtime::observe_sandboxes(
  observation result, const std::set<std::string>& adoptable,
  callback<observation> cb) {
  // Each object is parsed once per version, as in `observe`: the pods (by
  // name) first, then the Sandboxes.
  std::unique_lock guard{observe_mtx_};
  std::unordered_map<const std::string*, parsed> pods_seen;
  std::unordered_map<std::string, const pod_facts*> pods;
  for (auto& text : pods_->snapshot()) {
    auto& p = pods_seen[text.get()];
    if (auto i = parsed_.find(text.get()); i != parsed_.end())
      p = std::move(i->second);
    else
      p = parsed{text, read_pod(*text)};
    if (p.facts)
      pods[p.facts->name] = &*p.facts;
  }
  std::unordered_map<const std::string*, parsed_sandbox> seen;
  for (auto& text : opts_.sandboxes->snapshot()) {
    auto& p = seen[text.get()];
    if (auto i = parsed_sandboxes_.find(text.get());
        i != parsed_sandboxes_.end())
      p = std::move(i->second);
    else
      p = parsed_sandbox{text, read_sandbox(*text)};
    auto& s = p.facts;
    if (!s || s->meta.node != opts_.node || s->meta.host != opts_.host)
      continue;
    auto pod = pods.find(s->meta.name);
    auto w = sandbox_workload(*s, pod == pods.end() ? nullptr : pod->second);
    // The Sandbox's annotations are current (renewals and metadata patches
    // go there, not to the pod); an altered spec is not trusted.
    auto& f = s->meta;
    if (!f.spec_json.empty() && f.spec_hash == spec_hash(f.spec_json)) {
      kept_state k;
      k.spec_json = f.spec_json;
      k.metadata_json = f.metadata_json;
      k.access_token = f.access_token;
      k.egress_token = f.egress_token;
      k.created_us = f.created_us;
      k.expires_us = f.expires_us;
      k.ports = pod_ports(!f.egress_token.empty());
      k.pool = f.pool;
      k.unclaimed = !f.pool.empty() && f.member_state != member_claimed;
      w.kept = std::move(k);
    }
    // Relabelled to this replica by its lease keeper (pod first, then the
    // Sandbox): adopted like a pod.
    if (adoptable.count(f.name) != 0) {
      result.adopted.push_back(f.id);
      opts_.keeper->adopted(f.name);
    }
    result.workloads.push_back(std::move(w));
    result.objects.push_back({f.id, "sandbox", f.name, f.name, f.incarnation});
  }
  // Versions no longer cached go (the nodes `pods` points into move with
  // the swap).
  parsed_.swap(pods_seen);
  parsed_sandboxes_.swap(seen);
  guard.unlock();
  cb(std::move(result));
}

void kubernetes_runtime::verify_sandboxes(callback<unit> cb) {
  auto path = collection(agent_sandbox_plural) + "?limit=1";
  auto server = opts_.server;
  client_->request("GET", path, {}, [cb, path, server](kube_response r) {
    if (r.status == 200)
      return cb(unit{});
    std::string what = std::string{agent_sandbox_plural} + "."
                       + agent_sandbox_group + "/" + agent_sandbox_version;
    if (r.status == 404)
      return cb(failure{failure_kind::invalid,
                        "API server " + server + " does not serve " + what
                          + " (kubernetes.workload_provider = "
                            "'agent-sandbox' needs the agent-sandbox CRD "
                            "and controller installed)"});
    if (r.status == 401 || r.status == 403)
      return cb(failure{failure_kind::invalid,
                        "API server " + server + " refuses to list " + what
                          + " (HTTP " + std::to_string(r.status)
                          + "): the service account's Role needs get, list, "
                            "watch, create, patch and delete on "
                          + what});
    // Not answering now is not a failure: admission checks it again.
    cb(unit{});
  });
}

} // namespace osb::runtimes::kubernetes
