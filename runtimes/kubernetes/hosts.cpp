#include "runtimes/kubernetes/hosts.hpp"

#include <memory>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/log.hpp"
#include "runtimes/kubernetes/kube_api.hpp"
#include "runtimes/kubernetes/kubernetes_runtime.hpp"
#include "runtimes/kubernetes/pod_spec.hpp"

namespace osb::runtimes::kubernetes {

namespace {

constexpr const char* component = "main";

/// One thread that runs delayed functions (the provisioning timeouts).
class timer_thread {
public:
  timer_thread() : work_(ctx_.get_executor()), thread_([this] { ctx_.run(); }) {
    // nop
  }

  ~timer_thread() {
    work_.reset();
    ctx_.stop();
    // The last reference may go on this very thread (a timer's function
    // held the runtime).
    if (thread_.get_id() == std::this_thread::get_id())
      thread_.detach();
    else
      thread_.join();
  }

  void after(std::chrono::milliseconds delay, std::function<void()> f) {
    auto t = std::make_shared<boost::asio::steady_timer>(ctx_, delay);
    t->async_wait([t, f = std::move(f)](const boost::system::error_code& ec) {
      if (!ec)
        f();
    });
  }

private:
  boost::asio::io_context ctx_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type>
    work_;
  std::thread thread_;
};

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
  auto timers = std::make_shared<timer_thread>();
  opts.after = [timers](std::chrono::milliseconds d, std::function<void()> f) {
    timers->after(d, std::move(f));
  };
  OSB_INFO(component, "", "",
           "sandboxes are pods in namespace " << opts.namespace_name
                                              << " of API server "
                                              << opts.server);
  auto rt = std::make_shared<kubernetes_runtime>(*client, std::move(pods),
                                                 std::move(opts));
  rt->start();
  return std::vector<host_runtime>{host_runtime{"default", "", rt}};
}

} // namespace osb::runtimes::kubernetes
