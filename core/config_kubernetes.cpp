// The [kubernetes] section of the config (runtime.type = "kubernetes"):
// the keys of the original's KubernetesRuntimeConfig, validated like it,
// with what this server does not do refused by name.

#include "core/config.hpp"
#include "core/config_reader.hpp"

#include <cctype>
#include <map>

namespace osb::config_detail {

namespace {

/// A number (integer or float) >= `min`; `strict` excludes `min` itself.
bool get_number(reader& r, const toml::node& n, const std::string& path,
                double& out, double min, bool strict) {
  auto v = n.value<double>();
  if (!v || n.is_boolean()) {
    r.fail(n, path + " must be a number");
    return false;
  }
  if (strict ? *v <= min : *v < min) {
    std::ostringstream os;
    os << path << " must be " << (strict ? "> " : ">= ") << min << " (got "
       << *v << ")";
    r.fail(n, os.str());
    return false;
  }
  out = *v;
  return true;
}

/// A DNS-1123 label (namespace and service account names).
bool is_dns_label(const std::string& x) {
  if (x.empty() || x.size() > 63 || x.front() == '-' || x.back() == '-')
    return false;
  for (auto c : x)
    if (!(std::islower(static_cast<unsigned char>(c))
          || std::isdigit(static_cast<unsigned char>(c)) || c == '-'))
      return false;
  return true;
}

/// `{cpu = "100m", memory = "128Mi"}`: strings by resource name.
void get_resources(reader& r, const toml::node& n, const std::string& path,
                   std::map<std::string, std::string>& out) {
  auto t = r.table(n, path);
  if (t == nullptr)
    return;
  for (auto&& [k, v] : *t) {
    auto s = v.as_string();
    if (s == nullptr) {
      r.fail(v, path + "." + std::string{k.str()}
                  + " must be a string (e.g. \"100m\", \"128Mi\")");
      return;
    }
    out[std::string{k.str()}] = s->get();
  }
}

} // namespace

void read_kubernetes(reader& r, const toml::table& t, node_config& cfg) {
  auto& k = cfg.kubernetes;
  auto num = [&](int64_t& out, int64_t min, int64_t max) {
    return [&r, &out, min, max](const toml::node& n, const std::string& p) {
      r.get(n, p, out, min, max);
    };
  };
  auto qps = [&](double& out) {
    return [&r, &out](const toml::node& n, const std::string& p) {
      get_number(r, n, p, out, 0, false);
    };
  };
  auto dns_label = [&](std::string& out) {
    return [&r, &out](const toml::node& n, const std::string& p) {
      std::string x;
      if (!r.get(n, p, x))
        return;
      if (!is_dns_label(x))
        r.fail(n, p + " must be a DNS-1123 label (lower-case letters, "
                      "digits and '-', at most 63), got '"
                    + x + "'");
      else
        out = x;
    };
  };
  r.keys(
    t, "kubernetes",
    {
      {"kubeconfig_path",
       [&](const toml::node& n, const std::string& p) {
         if (r.get(n, p, k.kubeconfig_path))
           k.kubeconfig_path = expand_home(k.kubeconfig_path);
       }},
      {"namespace", dns_label(k.namespace_name)},
      {"service_account", dns_label(k.service_account)},
      {"workload_provider",
       [&](const toml::node& n, const std::string& p) {
         std::string x;
         if (!r.get(n, p, x))
           return;
         if (x == "pod" || x == "agent-sandbox")
           k.workload_provider = x;
         else if (x == "batchsandbox")
           r.fail(n, p + " '" + x
                       + "' needs the original's own controller and CRDs, "
                         "which this server does not use: it supports "
                         "'pod' (plain Pods, any cluster) and "
                         "'agent-sandbox' (kubernetes-sigs/agent-sandbox)");
         else
           r.fail(n, p + " must be 'pod' or 'agent-sandbox' (got '" + x
                       + "')");
       }},
      {"batchsandbox_template_file",
       [&](const toml::node& n, const std::string& p) {
         r.fail(n, p + " is not supported: this server runs sandboxes as "
                       "plain Pods or agent-sandbox Sandbox objects "
                       "(kubernetes.workload_provider), not BatchSandbox "
                       "resources");
       }},
      {"image_pull_policy",
       [&](const toml::node& n, const std::string& p) {
         r.get_enum(n, p, k.image_pull_policy,
                    {"Always", "IfNotPresent", "Never"}, false);
       }},
      {"read_qps", qps(k.read_qps)},
      {"read_burst", num(k.read_burst, 0, 1000000)},
      {"write_qps", qps(k.write_qps)},
      {"write_burst", num(k.write_burst, 0, 1000000)},
      {"informer_enabled",
       [&](const toml::node& n, const std::string& p) {
         bool x = true;
         if (r.get(n, p, x) && !x)
           r.fail(n, p + " = false is not supported: this server always "
                         "keeps one list+watch of its pods (never one GET "
                         "per sandbox)");
       }},
      {"informer_resync_seconds", num(k.informer_resync_seconds, 1, 86400)},
      {"informer_watch_timeout_seconds",
       num(k.informer_watch_timeout_seconds, 1, 3600)},
      {"sandbox_create_timeout_seconds",
       num(k.sandbox_create_timeout_seconds, 1, 86400)},
      {"lease_duration_seconds", num(k.lease_duration_seconds, 2, 3600)},
      {"lease_renew_seconds", num(k.lease_renew_seconds, 1, 3600)},
      // The informer reports readiness; there is nothing to poll. Accepted
      // (validated like the original) so that its configs load.
      {"sandbox_create_poll_interval_seconds",
       [&](const toml::node& n, const std::string& p) {
         double x = 0;
         get_number(r, n, p, x, 0, true);
       }},
      {"snapshot_create_timeout_seconds",
       [&](const toml::node& n, const std::string& p) {
         int64_t x = 0;
         if (r.get(n, p, x, 1, INT64_MAX))
           r.fail(n, p + " is not supported: snapshots are not available "
                         "with runtime.type = 'kubernetes'");
       }},
      {"execd_init_resources",
       [&](const toml::node& n, const std::string& p) {
         auto rt = r.table(n, p);
         if (rt == nullptr)
           return;
         r.keys(*rt, p,
                {
                  {"limits",
                   [&](const toml::node& x, const std::string& xp) {
                     get_resources(r, x, xp, k.execd_init_limits);
                   }},
                  {"requests",
                   [&](const toml::node& x, const std::string& xp) {
                     get_resources(r, x, xp, k.execd_init_requests);
                   }},
                });
       }},
    });
}

void read_agent_sandbox(reader& r, const toml::table& t, node_config& cfg) {
  auto& a = cfg.agent_sandbox;
  r.keys(t, "agent_sandbox",
         {
           {"template_file",
            [&](const toml::node& n, const std::string& p) {
              std::string x;
              if (r.get(n, p, x))
                r.fail(n, p + " is not supported: the Sandbox objects are "
                              "made from the request and [kubernetes] "
                              "alone (no template is merged in)");
            }},
           {"shutdown_policy",
            [&](const toml::node& n, const std::string& p) {
              r.get_enum(n, p, a.shutdown_policy, {"Delete", "Retain"},
                         false);
            }},
           {"ingress_enabled",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, a.ingress_enabled);
            }},
         });
}

} // namespace osb::config_detail
