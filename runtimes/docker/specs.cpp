#include "runtimes/docker/specs.hpp"

#include <algorithm>

#include "core/ids.hpp"
#include "core/spec_json.hpp"
#include "core/time.hpp"
#include "base/strings.hpp"
#include "core/validation.hpp"
#include "runtimes/docker/labels.hpp"

namespace osb::runtimes::docker {

std::string container_name(const std::string& id) {
  return "sandbox-" + id;
}

std::string sidecar_name(const std::string& id) {
  return "sandbox-egress-" + id;
}

std::map<std::string, std::string> scope_labels(const std::string& node,
                                                const std::string& host) {
  return {{node_label, node}, {host_label, host}};
}

container_spec make_sidecar_spec(const node_config& cfg,
                                 const sandbox_instance& x,
                                 const std::string& publish_address) {
  container_spec c;
  c.name = sidecar_name(x.id);
  c.image = cfg.egress.image;
  c.labels[sidecar_for_label] = x.id;
  c.labels[node_label] = x.node;
  c.labels[host_label] = x.runtime_host;
  c.network_mode = cfg.docker.network_mode == "host" ? "bridge"
                                                     : cfg.docker.network_mode;
  c.cap_add = {"NET_ADMIN"};
  c.exposed_ports = {44772, 8080, 18080};
  c.ports.push_back({44772, x.ports.execd, publish_address});
  c.ports.push_back({8080, x.ports.http, publish_address});
  c.ports.push_back({18080, x.ports.egress, publish_address});
  c.env.push_back("OPENSANDBOX_EGRESS_RULES=" + x.spec.network_policy_json);
  c.env.push_back("OPENSANDBOX_EGRESS_MODE=" + cfg.egress.mode);
  c.env.push_back("OPENSANDBOX_EGRESS_TOKEN=" + x.egress_token);
  if (!cfg.egress.upstream_dns.empty())
    c.env.push_back("OPENSANDBOX_EGRESS_UPSTREAM_DNS="
                    + cfg.egress.upstream_dns);
  if (cfg.egress.disable_ipv6)
    c.sysctls = {{"net.ipv6.conf.all.disable_ipv6", "1"},
                 {"net.ipv6.conf.default.disable_ipv6", "1"},
                 {"net.ipv6.conf.lo.disable_ipv6", "1"}};
  c.pids_limit = 256;
  c.security_opt.push_back("no-new-privileges:true");
  return c;
}

container_spec make_container_spec(const node_config& cfg,
                                   const sandbox_instance& x,
                                   const std::string& publish_address) {
  container_spec c;
  c.name = container_name(x.id);
  c.image = x.spec.image;
  c.registry_username = x.spec.image_username;
  c.registry_password = x.spec.image_password;
  if (cfg.runtime.execd_inject == "none") {
    c.entrypoint = x.spec.entrypoint;
  } else {
    // execd's bootstrap mode starts the daemon, then execs the user's
    // command, which stays PID 1 of the container. A pool member's
    // bootstrap holds the command back until the claim (execd/claim.hpp).
    if (x.member_of.empty())
      c.entrypoint = {execd_container_path, "--bootstrap", "--"};
    else
      c.entrypoint = {execd_container_path, "--await-claim", "--bootstrap",
                      "--"};
    c.cmd = x.spec.entrypoint;
    if (cfg.runtime.execd_inject == "bind")
      c.binds.push_back(cfg.runtime.execd_path + ":" + execd_container_path
                        + ":ro");
  }
  for (auto& [k, v] : x.spec.env)
    if (k != "EXECD_ACCESS_TOKEN")
      c.env.push_back(k + "=" + v);
  // execd reads (and then drops from its environment) the token it
  // requires; it never reaches the user's processes.
  if (cfg.runtime.execd_inject != "none" && !x.access_token.empty())
    c.env.push_back("EXECD_ACCESS_TOKEN=" + x.access_token);
  // User metadata first, so that system labels always win.
  c.labels = x.spec.metadata;
  c.labels[id_label] = x.id;
  if (!x.spec.snapshot_id.empty())
    c.labels[snapshot_label] = x.spec.snapshot_id;
  if (!x.member_of.empty())
    c.labels[pool_label] = x.member_of;
  c.labels[node_label] = x.node;
  c.labels[host_label] = x.runtime_host;
  if (x.expires_us != 0) {
    auto ts = codec::format_time(x.expires_us);
    if (!ts.empty() && ts.back() == 'Z')
      ts.replace(ts.size() - 1, 1, "+00:00");
    c.labels[expires_label] = ts;
  } else {
    c.labels[manual_cleanup_label] = "true";
  }
  if (!x.spec.platform_os.empty()) {
    c.labels[platform_os_label] = x.spec.platform_os;
    c.labels[platform_arch_label] = x.spec.platform_arch;
    c.platform = x.spec.platform_os + "/" + x.spec.platform_arch;
  }
  if (auto i = x.spec.extensions.find("access.renew.extend.seconds");
      i != x.spec.extensions.end())
    c.labels[renew_extend_label] = std::string{trim(i->second)};
  c.network_mode = cfg.docker.network_mode;
  // `[secure_runtime]` applies to every sandbox; the sidecar keeps the
  // daemon's default runtime (it needs nftables of a real kernel).
  c.runtime = secure_docker_runtime(cfg);
  if (!x.egress_token.empty()) {
    // The sidecar owns the network namespace and its published ports.
    c.network_mode = "container:" + sidecar_name(x.id);
    c.labels[egress_token_label] = x.egress_token;
    c.labels[execd_port_label] = std::to_string(x.ports.execd);
    c.labels[http_port_label] = std::to_string(x.ports.http);
  } else if (cfg.docker.network_mode != "host") {
    c.labels[execd_port_label] = std::to_string(x.ports.execd);
    c.labels[http_port_label] = std::to_string(x.ports.http);
    c.exposed_ports = {44772, 8080};
    c.ports.push_back({44772, x.ports.execd, publish_address});
    c.ports.push_back({8080, x.ports.http, publish_address});
  }
  auto& limits = x.spec.resource_limits;
  if (auto i = limits.find("cpu"); i != limits.end())
    c.nano_cpus = validation::parse_cpu(i->second).value_or(0);
  if (auto i = limits.find("memory"); i != limits.end())
    c.memory_bytes = validation::parse_memory(i->second).value_or(0);
  if (auto i = limits.find("gpu"); i != limits.end())
    c.gpu_count = validation::parse_gpu(i->second).value_or(0);
  c.pids_limit = cfg.docker.pids_limit;
  c.cap_drop = cfg.docker.drop_capabilities;
  // Only the sidecar may change the shared network namespace.
  if (!x.egress_token.empty()
      && std::find(c.cap_drop.begin(), c.cap_drop.end(), "NET_ADMIN")
           == c.cap_drop.end())
    c.cap_drop.push_back("NET_ADMIN");
  if (cfg.docker.no_new_privileges)
    c.security_opt.push_back("no-new-privileges:true");
  if (!cfg.docker.apparmor_profile.empty())
    c.security_opt.push_back("apparmor=" + cfg.docker.apparmor_profile);
  if (!cfg.docker.seccomp_profile.empty())
    c.security_opt.push_back("seccomp=" + cfg.docker.seccomp_profile);
  return c;
}

} // namespace osb::runtimes::docker
