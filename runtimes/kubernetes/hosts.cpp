#include "runtimes/kubernetes/hosts.hpp"

#include <cctype>
#include <memory>

#include "base/log.hpp"
#include "runtimes/kubernetes/agent_sandbox.hpp"
#include "runtimes/kubernetes/kube_api.hpp"
#include "runtimes/kubernetes/kubernetes_runtime.hpp"
#include "runtimes/kubernetes/lease_keeper.hpp"
#include "runtimes/kubernetes/pod_spec.hpp"

namespace osb::runtimes::kubernetes {

namespace {

constexpr const char* component = "main";

/// A label value: at most 63 of [A-Za-z0-9._-], alphanumeric at both ends.
bool is_label_value(const std::string& x) {
  if (x.size() > 63)
    return false;
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)); };
  if (!x.empty() && (!alnum(x.front()) || !alnum(x.back())))
    return false;
  for (auto c : x)
    if (!alnum(c) && c != '-' && c != '_' && c != '.')
      return false;
  return !x.empty();
}

} // namespace

bool prepare(node_config& cfg) {
  // Nothing of this machine goes into pods: execd comes from its image.
  cfg.runtime.execd_inject = "none";
  if (cfg.runtime.execd_image.empty())
    cfg.runtime.execd_image = default_execd_image;
  OSB_INFO(component, "", "",
           "execd goes into pods by an init container of image "
             << cfg.runtime.execd_image);
  return true;
}

expected<std::vector<host_runtime>> make_hosts(const runtime_context& ctx) {
  auto& k = ctx.cfg->kubernetes;
  if (!is_label_value(ctx.node))
    return failure{failure_kind::invalid,
                   "node name '" + ctx.node
                     + "' cannot be a Kubernetes label value (at most 63 "
                       "letters, digits, '-', '_' or '.'; set "
                       "cluster.node_name)"};
  auto endpoint = k.kubeconfig_path.empty() ? load_in_cluster()
                                            : load_kubeconfig(k.kubeconfig_path);
  if (!endpoint)
    return failure{failure_kind::invalid,
                   "kubernetes: " + endpoint.error().message
                     + (k.kubeconfig_path.empty()
                          ? " (not in a cluster: set "
                            "kubernetes.kubeconfig_path)"
                          : std::string{})};
  kubernetes_options opts;
  opts.cfg = ctx.cfg;
  opts.node = ctx.node;
  opts.incarnation = ctx.incarnation;
  opts.server = endpoint->server;
  opts.namespace_name = !k.namespace_name.empty() ? k.namespace_name
                        : !endpoint->default_namespace.empty()
                          ? endpoint->default_namespace
                          : "default";
  rate_limits limits;
  limits.read_qps = k.read_qps;
  limits.read_burst = static_cast<int>(k.read_burst);
  limits.write_qps = k.write_qps;
  limits.write_burst = static_cast<int>(k.write_burst);
  auto client = make_kube_client(*endpoint, limits);
  if (!client)
    return failure{failure_kind::invalid,
                   "kubernetes: " + client.error().message};
  informer_options io;
  io.collection = "/api/v1/namespaces/" + opts.namespace_name + "/pods";
  io.label_selector = node_selector(opts.node, opts.host);
  io.watch_timeout_seconds
    = static_cast<int>(k.informer_watch_timeout_seconds);
  auto pods = make_informer(*client, io);
  if (k.lease_renew_seconds >= k.lease_duration_seconds)
    return failure{failure_kind::invalid,
                   "kubernetes.lease_renew_seconds ("
                     + std::to_string(k.lease_renew_seconds)
                     + ") must be less than kubernetes.lease_duration_seconds ("
                     + std::to_string(k.lease_duration_seconds) + ")"};
  // The replica's lease: peers adopt its pods when it lapses, and it changes
  // no pod while its own renewal is older than the lease's duration.
  auto gate = std::make_shared<ownership_gate>();
  informer_options lo;
  lo.collection = "/apis/coordination.k8s.io/v1/namespaces/"
                  + opts.namespace_name + "/leases";
  lo.label_selector = std::string{lease_label} + "=" + lease_label_value;
  lo.watch_timeout_seconds = io.watch_timeout_seconds;
  lo.backoff_max = std::chrono::milliseconds(1000);
  lease_keeper_options ko;
  ko.node = opts.node;
  ko.incarnation = opts.incarnation;
  ko.namespace_name = opts.namespace_name;
  ko.duration = std::chrono::seconds(k.lease_duration_seconds);
  ko.renew = std::chrono::seconds(k.lease_renew_seconds);
  ko.gate = gate;
  if (k.workload_provider == "agent-sandbox")
    ko.sandboxes = sandbox_collection(opts.namespace_name);
  opts.keeper = std::make_shared<lease_keeper>(
    *client, make_informer(*client, lo), std::move(ko));
  opts.gate = gate;
  if (k.workload_provider == "agent-sandbox") {
    // This node's Sandbox objects carry the same labels as its pods.
    io.collection = sandbox_collection(opts.namespace_name);
    opts.sandboxes = make_informer(*client, io);
  }
  // Timeouts run on the client's I/O thread; a weak reference, so that
  // the runtime (which owns the client) is not kept alive by its timers.
  std::weak_ptr<kube_client> weak = *client;
  opts.after = [weak](std::chrono::milliseconds d, std::function<void()> f) {
    if (auto c = weak.lock())
      c->after(d, std::move(f));
  };
  OSB_INFO(component, "", "",
           "sandboxes are "
             << (opts.sandboxes ? "agent-sandbox Sandbox objects"
                                : "pods")
             << " in namespace " << opts.namespace_name
             << " of API server " << opts.server);
  auto rt = std::make_shared<kubernetes_runtime>(*client, std::move(pods),
                                                 std::move(opts));
  rt->start();
  return std::vector<host_runtime>{host_runtime{"default", "", rt, gate}};
}

} // namespace osb::runtimes::kubernetes
