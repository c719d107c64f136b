#include "core/config.hpp"
#include "core/config_reader.hpp"

#include "core/base64.hpp"
#include "base/strings.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <optional>
#include <map>
#include <sstream>
#include <sys/stat.h>

#include <toml++/toml.h>

namespace osb {

namespace {

using namespace config_detail;

// -- sections -----------------------------------------------------------------

void read_server(reader& r, const toml::table& t, node_config& cfg) {
  auto& s = cfg.server;
  auto str = [&](std::string& out) {
    return [&r, &out](const toml::node& n, const std::string& p) {
      r.get(n, p, out);
    };
  };
  auto num = [&](int64_t& out, int64_t min, int64_t max) {
    return [&r, &out, min, max](const toml::node& n, const std::string& p) {
      r.get(n, p, out, min, max);
    };
  };
  r.keys(t, "server",
         {
           {"host", str(s.host)},
           {"port",
            [&](const toml::node& n, const std::string& p) {
              int64_t x = 0;
              if (r.get(n, p, x, 1, 65535))
                s.port = static_cast<uint16_t>(x);
            }},
           {"api_key", str(s.api_key)},
           {"eip", str(s.eip)},
           {"max_sandbox_timeout_seconds",
            num(s.max_sandbox_timeout_seconds, 60, INT64_MAX)},
           {"timeout_keep_alive", num(s.timeout_keep_alive, 1, INT64_MAX)},
           {"timeout_header", num(s.timeout_header, 1, 3600)},
           {"limit_concurrency", num(s.limit_concurrency, 0, INT64_MAX)},
           {"backlog", num(s.backlog, 1, INT64_MAX)},
           {"thread_pool_size", num(s.thread_pool_size, 1, INT64_MAX)},
           {"loop",
            [&](const toml::node& n, const std::string& p) {
              r.get_enum(n, p, s.loop, {"auto", "uvloop", "asyncio"}, false);
            }},
           {"http",
            [&](const toml::node& n, const std::string& p) {
              r.get_enum(n, p, s.http, {"auto", "httptools", "h11"}, false);
            }},
           {"io_threads", num(s.io_threads, 0, 1024)},
           {"shutdown_timeout_seconds",
            num(s.shutdown_timeout_seconds, 1, 3600)},
         });
}

/// `[metrics]` (ours): whether anything is recorded, whether `/metrics`
/// needs the API key.
void read_metrics(reader& r, const toml::table& t, node_config& cfg) {
  auto flag = [&](bool& out) {
    return [&r, &out](const toml::node& n, const std::string& p) {
      r.get(n, p, out);
    };
  };
  r.keys(t, "metrics",
         {
           {"enabled", flag(cfg.metrics.enabled)},
           {"auth", flag(cfg.metrics.auth)},
         });
}

void read_log(reader& r, const toml::table& t, node_config& cfg) {
  auto& l = cfg.log;
  r.keys(t, "log",
         {
           {"level",
            [&](const toml::node& n, const std::string& p) {
              std::string x;
              if (r.get_enum(n, p, x,
                             {"DEBUG", "INFO", "WARNING", "WARN", "ERROR",
                              "CRITICAL"},
                             true))
                l.level = upper(x);
            }},
           {"file_enabled",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, l.file_enabled);
            }},
           {"file_path",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, l.file_path);
            }},
           {"access_file_path",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, l.access_file_path);
            }},
           {"file_max_bytes",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, l.file_max_bytes, 1, INT64_MAX);
            }},
           {"file_backup_count",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, l.file_backup_count, 0, INT64_MAX);
            }},
         });
}

void read_runtime(reader& r, const toml::table& t, node_config& cfg) {
  r.keys(t, "runtime",
         {
           {"type",
            [&](const toml::node& n, const std::string& p) {
              std::string x;
              if (!r.get(n, p, x))
                return;
              // "fake" is an in-memory runtime for benchmarks of the
              // control plane (no containers are created).
              if (x == "docker" || x == "fake" || x == "kubernetes") {
                cfg.runtime.type = x;
              } else if (x == "podman") {
                r.fail(n, "runtime.type '" + x
                            + "' is not supported by this server");
              } else {
                r.fail(n, "runtime.type must be 'docker', 'kubernetes' or "
                          "'fake' (got '"
                            + x + "')");
              }
            }},
           {"execd_image",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, cfg.runtime.execd_image);
            }},
           {"execd_path",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, cfg.runtime.execd_path);
            }},
           {"execd_inject",
            [&](const toml::node& n, const std::string& p) {
              std::string x;
              if (!r.get(n, p, x))
                return;
              if (x == "auto" || x == "bind" || x == "archive" || x == "none")
                cfg.runtime.execd_inject = x;
              else
                r.fail(n, "runtime.execd_inject must be 'auto', 'bind', "
                          "'archive' or 'none' (got '"
                            + x + "')");
            }},
         });
}

void read_docker(reader& r, const toml::table& t, node_config& cfg) {
  auto& d = cfg.docker;
  auto str = [&](std::string& out) {
    return [&r, &out](const toml::node& n, const std::string& p) {
      r.get(n, p, out);
    };
  };
  // "auto" or a numeric IPv4/IPv6 address.
  auto auto_or_ip = [&](std::string& out) {
    return [&r, &out](const toml::node& n, const std::string& p) {
      std::string x;
      if (!r.get(n, p, x))
        return;
      in6_addr buf;
      if (x != "auto" && ::inet_pton(AF_INET, x.c_str(), &buf) != 1
          && ::inet_pton(AF_INET6, x.c_str(), &buf) != 1)
        r.fail(n, p + " must be \"auto\" or a numeric IP address");
      else
        out = x;
    };
  };
  r.keys(t, "docker",
         {
           {"host", str(d.host)},
           {"hosts",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, d.hosts);
            }},
           {"host_port_range",
            [&](const toml::node& n, const std::string& p) {
              std::string x;
              if (!r.get(n, p, x))
                return;
              unsigned first = 0, last = 0;
              char dash = 0;
              std::istringstream in{x};
              if (!(in >> first >> dash >> last) || dash != '-' || first < 1024
                  || last > 65535 || first >= last)
                r.fail(n, p + " must look like \"40000-60000\" (within "
                              "1024-65535)");
              else
                d.host_port_range = {static_cast<uint16_t>(first),
                                     static_cast<uint16_t>(last)};
            }},
           {"network_mode",
            [&](const toml::node& n, const std::string& p) {
              std::string x;
              if (!r.get(n, p, x))
                return;
              if (x.empty()) {
                r.fail(n, p + " must not be empty");
                return;
              }
              d.network_mode = lower(x);
            }},
           {"api_timeout",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, d.api_timeout, 1, INT64_MAX);
            }},
           {"host_ip", str(d.host_ip)},
           {"drop_capabilities",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, d.drop_capabilities);
            }},
           {"apparmor_profile", str(d.apparmor_profile)},
           {"no_new_privileges",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, d.no_new_privileges);
            }},
           {"seccomp_profile", str(d.seccomp_profile)},
           // TOML cannot express the original's `null` (no limit), so 0 means
           // "no limit" here.
           {"pids_limit",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, d.pids_limit, 0, INT64_MAX);
            }},
           {"publish_address", auto_or_ip(d.publish_address)},
           {"proxy_host", auto_or_ip(d.proxy_host)},
         });
}

void read_egress(reader& r, const toml::table& t, node_config& cfg) {
  auto& e = cfg.egress;
  r.keys(t, "egress",
         {
           {"image",
            [&](const toml::node& n, const std::string& p) {
              if (r.get(n, p, e.image) && e.image.empty())
                r.fail(n, p + " must not be empty");
            }},
           {"mode",
            [&](const toml::node& n, const std::string& p) {
              r.get_enum(n, p, e.mode, {"dns", "dns+nft"}, false);
            }},
           {"upstream_dns",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, e.upstream_dns);
            }},
           {"disable_ipv6",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, e.disable_ipv6);
            }},
         });
}

void read_storage(reader& r, const toml::table& t, node_config& cfg) {
  auto& s = cfg.storage;
  r.keys(t, "storage",
         {
           {"allowed_host_paths",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, s.allowed_host_paths);
            }},
           {"volume_default_size",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, s.volume_default_size);
            }},
           {"ossfs_mount_root",
            [&](const toml::node& n, const std::string& p) {
              if (r.get(n, p, s.ossfs_mount_root)
                  && (s.ossfs_mount_root.empty()
                      || s.ossfs_mount_root[0] != '/'))
                r.fail(n, p + " must be an absolute path");
            }},
         });
}

void read_store(reader& r, const toml::table& t, node_config& cfg) {
  r.keys(t, "store",
         {
           {"type",
            [&](const toml::node& n, const std::string& p) {
              r.get_enum(n, p, cfg.store.type, {"sqlite"}, false);
            }},
           {"path",
            [&](const toml::node& n, const std::string& p) {
              if (r.get(n, p, cfg.store.path) && cfg.store.path.empty())
                r.fail(n, p + " must not be empty");
            }},
         });
}

bool readable(const std::string& path, std::string& why) {
  std::ifstream in{path, std::ios::binary};
  if (in)
    return true;
  why = std::strerror(errno);
  return false;
}

void read_cluster(reader& r, const toml::table& t, node_config& cfg) {
  auto& c = cfg.cluster;
  const toml::node* listen_node = nullptr;
  const toml::node* plaintext_node = nullptr;
  // The TLS keys in the order they are documented, with their nodes.
  const char* tls_keys[] = {"tls_ca_file", "tls_cert_file", "tls_key_file"};
  std::map<std::string, const toml::node*> tls_nodes;
  auto tls_file = [&](std::string& out) {
    return [&r, &out, &tls_nodes](const toml::node& n, const std::string& p) {
      if (!r.get(n, p, out))
        return;
      if (out.empty()) {
        r.fail(n, p + " must not be empty");
        return;
      }
      out = expand_home(out);
      std::string why;
      if (!readable(out, why)) {
        r.fail(n, p + ": cannot read '" + out + "' (" + why + ")");
        return;
      }
      tls_nodes[p.substr(p.find('.') + 1)] = &n;
    };
  };
  r.keys(t, "cluster",
         {
           {"node_name",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, c.node_name);
            }},
           {"listen",
            [&](const toml::node& n, const std::string& p) {
              if (r.get(n, p, c.listen))
                listen_node = &n;
            }},
           {"seeds",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, c.seeds);
            }},
           {"max_sandboxes",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, c.max_sandboxes, 0, INT64_MAX);
            }},
           {"protocol",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, c.protocol);
            }},
           {"tls_ca_file", tls_file(c.tls_ca_file)},
           {"tls_cert_file", tls_file(c.tls_cert_file)},
           {"tls_key_file", tls_file(c.tls_key_file)},
           {"plaintext",
            [&](const toml::node& n, const std::string& p) {
              if (r.get(n, p, c.plaintext))
                plaintext_node = &n;
            }},
           {"max_message_bytes",
            [&](const toml::node& n, const std::string& p) {
              // BASP announces payloads with 32 bits.
              r.get(n, p, c.max_message_bytes, 65536, UINT32_MAX);
            }},
           {"seed_timeout_seconds",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, c.seed_timeout_seconds, 0, 86400);
            }},
         });
  if (r.failed())
    return;
  // TLS needs all three files; plain TCP must be asked for, and not both.
  std::string missing;
  const toml::node* first_tls = nullptr;
  auto before = [](const toml::node* a, const toml::node* b) {
    auto& x = a->source().begin;
    auto& y = b->source().begin;
    return x.line < y.line || (x.line == y.line && x.column < y.column);
  };
  for (auto key : tls_keys) {
    if (auto i = tls_nodes.find(key); i != tls_nodes.end()) {
      // Errors point at the first of them in the file.
      if (first_tls == nullptr || before(i->second, first_tls))
        first_tls = i->second;
    } else {
      missing += missing.empty() ? "" : ", ";
      missing += std::string{"cluster."} + key;
    }
  }
  bool tls = first_tls != nullptr && missing.empty();
  if (first_tls != nullptr && !tls)
    r.fail(*first_tls, "cluster.tls_ca_file, cluster.tls_cert_file and "
                       "cluster.tls_key_file go together (missing: "
                         + missing + ")");
  else if (c.plaintext && first_tls != nullptr)
    r.fail(*plaintext_node, "cluster.plaintext = true cannot be combined "
                            "with the cluster.tls_* keys");
  else if (listen_node != nullptr && !c.listen.empty() && !tls
           && !c.plaintext)
    r.fail(*listen_node,
           "cluster.listen needs TLS between the nodes: set "
           "cluster.tls_ca_file, cluster.tls_cert_file and "
           "cluster.tls_key_file (deploy/make-cluster-certs.sh makes them), "
           "or cluster.plaintext = true to let anyone who reaches this "
           "address join");
}

/// Validated like the original (config.py): the type is one of four, an
/// empty type takes no runtime keys, gvisor and kata need at least one of
/// them (present, even if empty), firecracker needs `k8s_runtime_class`
/// and Kubernetes.
void read_secure_runtime(reader& r, const toml::table& t, node_config& cfg) {
  auto& s = cfg.secure_runtime;
  const toml::node* type_node = nullptr;
  const toml::node* docker_runtime = nullptr;
  const toml::node* k8s_class = nullptr;
  r.keys(t, "secure_runtime",
         {
           {"type",
            [&](const toml::node& n, const std::string& p) {
              if (r.get_enum(n, p, s.type,
                             {"", "gvisor", "kata", "firecracker"}, false))
                type_node = &n;
            }},
           {"docker_runtime",
            [&](const toml::node& n, const std::string& p) {
              if (r.get(n, p, s.docker_runtime))
                docker_runtime = &n;
            }},
           {"k8s_runtime_class",
            [&](const toml::node& n, const std::string& p) {
              if (r.get(n, p, s.k8s_runtime_class))
                k8s_class = &n;
            }},
         });
  if (r.failed())
    return;
  // A type other than "" means its node was read.
  if (s.type.empty()) {
    if (docker_runtime != nullptr || k8s_class != nullptr)
      r.fail(docker_runtime != nullptr ? *docker_runtime : *k8s_class,
             "docker_runtime and k8s_runtime_class must be omitted when "
             "secure_runtime.type is empty");
  } else if (s.type == "firecracker") {
    if (k8s_class == nullptr)
      r.fail(*type_node, "secure_runtime.k8s_runtime_class is required "
                         "when secure_runtime.type is 'firecracker'");
    else if (cfg.runtime.type != "kubernetes")
      r.fail(*type_node, "secure_runtime.type 'firecracker' is only "
                         "compatible with runtime.type='kubernetes'");
  } else if (docker_runtime == nullptr && k8s_class == nullptr) {
    r.fail(*type_node, "at least one of secure_runtime.docker_runtime or "
                       "secure_runtime.k8s_runtime_class must be specified "
                       "when secure_runtime.type is '"
                         + s.type + "'");
  }
}

/// Validated like the original; `enabled` and `min_interval_seconds` drive
/// renew-on-access in proxy-only mode, the `redis` keys are validated, then
/// ignored (consuming intents from Redis is not implemented).
void read_renew_intent(reader& r, const toml::table& t, node_config& cfg) {
  bool redis_enabled = false;
  bool has_dsn = false;
  const toml::node* redis_node = nullptr;
  r.keys(
    t, "renew_intent",
    {
      {"enabled",
       [&](const toml::node& n, const std::string& p) {
         r.get(n, p, cfg.renew_intent.enabled);
       }},
      {"min_interval_seconds",
       [&](const toml::node& n, const std::string& p) {
         r.get(n, p, cfg.renew_intent.min_interval_seconds, 1, INT64_MAX);
       }},
      {"redis",
       [&](const toml::node& n, const std::string& p) {
         auto rt = r.table(n, p);
         if (rt == nullptr)
           return;
         redis_node = &n;
         r.keys(*rt, p,
                {
                  {"enabled",
                   [&](const toml::node& x, const std::string& xp) {
                     r.get(x, xp, redis_enabled);
                   }},
                  {"dsn",
                   [&](const toml::node& x, const std::string& xp) {
                     std::string s;
                     if (r.get(x, xp, s))
                       has_dsn = !s.empty();
                   }},
                  {"queue_key",
                   [&](const toml::node& x, const std::string& xp) {
                     std::string s;
                     r.get(x, xp, s);
                   }},
                  {"consumer_concurrency",
                   [&](const toml::node& x, const std::string& xp) {
                     int64_t v = 0;
                     r.get(x, xp, v, 1, INT64_MAX);
                   }},
                });
       }},
    });
  cfg.renew_intent.redis_requested = redis_enabled;
  if (!r.failed() && redis_enabled && !has_dsn)
    r.fail(*redis_node, "renew_intent.redis.dsn is required when "
                        "renew_intent.redis.enabled is true");
}

void read_pool(reader& r, const toml::table& t, node_config& cfg) {
  r.keys(t, "pool",
         {
           {"match_creates",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, cfg.pool.match_creates);
            }},
           {"warm_concurrency",
            [&](const toml::node& n, const std::string& p) {
              r.get(n, p, cfg.pool.warm_concurrency, 1, 64);
            }},
         });
}

void read_document(reader& r, const toml::table& doc, node_config& cfg) {
  using section_reader = std::function<void(const toml::table&)>;
  std::map<std::string, section_reader> sections = {
    {"server", [&](const toml::table& t) { read_server(r, t, cfg); }},
    {"log", [&](const toml::table& t) { read_log(r, t, cfg); }},
    {"metrics", [&](const toml::table& t) { read_metrics(r, t, cfg); }},
    {"runtime", [&](const toml::table& t) { read_runtime(r, t, cfg); }},
    {"docker", [&](const toml::table& t) { read_docker(r, t, cfg); }},
    {"ingress", [&](const toml::table& t) { read_ingress(r, t, cfg); }},
    {"egress", [&](const toml::table& t) { read_egress(r, t, cfg); }},
    {"storage", [&](const toml::table& t) { read_storage(r, t, cfg); }},
    {"store", [&](const toml::table& t) { read_store(r, t, cfg); }},
    {"cluster", [&](const toml::table& t) { read_cluster(r, t, cfg); }},
    {"secure_runtime",
     [&](const toml::table& t) { read_secure_runtime(r, t, cfg); }},
    {"renew_intent",
     [&](const toml::table& t) { read_renew_intent(r, t, cfg); }},
    {"pool", [&](const toml::table& t) { read_pool(r, t, cfg); }},
    // Legacy section the original silently ignores.
    {"pause", [](const toml::table&) {}},
  };
  // Runtime first: the other sections' cross-checks assume docker.
  if (auto rt = doc.get("runtime")) {
    if (auto t = r.table(*rt, "runtime"))
      read_runtime(r, *t, cfg);
  }
  // [agent_sandbox] may come before [kubernetes]: checked after the loop.
  std::optional<toml::source_region> agent_sandbox_at;
  for (auto&& [k, v] : doc) {
    if (r.failed())
      return;
    auto name = std::string{k.str()};
    if (name == "runtime")
      continue;
    bool kube = cfg.runtime.type == "kubernetes";
    if (name == "kubernetes" && kube) {
      if (auto t = r.table(v, name))
        read_kubernetes(r, *t, cfg);
      continue;
    }
    if (name == "agent_sandbox" && kube) {
      agent_sandbox_at = k.source();
      if (auto t = r.table(v, name))
        read_agent_sandbox(r, *t, cfg);
      continue;
    }
    if (name == "kubernetes" || name == "agent_sandbox") {
      r.fail(k.source(), "[" + name + "] must be omitted when runtime.type = '"
                           + cfg.runtime.type + "'");
      return;
    }
    auto i = sections.find(name);
    if (i == sections.end()) {
      if (v.is_table())
        r.fail(k.source(), "unknown section '[" + name + "]'");
      else
        r.fail(k.source(), "unknown key '" + name + "'");
      return;
    }
    if (auto t = r.table(v, name))
      i->second(*t);
  }
  if (!r.failed() && agent_sandbox_at
      && cfg.kubernetes.workload_provider != "agent-sandbox")
    r.fail(*agent_sandbox_at,
           "[agent_sandbox] applies only with kubernetes.workload_provider "
           "= 'agent-sandbox' (it is '"
             + cfg.kubernetes.workload_provider + "')");
}

/// Fills in the derived defaults that depend on other keys.
void finish(node_config& cfg) {
  if (cfg.log.file_enabled) {
    if (cfg.log.file_path.empty())
      cfg.log.file_path = "~/logs/opensandbox/server.log";
    if (cfg.log.access_file_path.empty())
      cfg.log.access_file_path = "~/logs/opensandbox/access.log";
  }
  cfg.log.file_path = expand_home(cfg.log.file_path);
  cfg.log.access_file_path = expand_home(cfg.log.access_file_path);
  cfg.store.path = expand_home(cfg.store.path);
}

void apply_env(node_config& cfg) {
  // Presence matters, not content: an empty variable clears the key.
  if (auto key = std::getenv("OPENSANDBOX_SERVER_API_KEY"))
    cfg.server.api_key = key;
}

expected<node_config> load_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return failure{failure_kind::not_found,
                   "cannot open config file '" + path + "'"};
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad())
    return failure{failure_kind::failed,
                   "cannot read config file '" + path + "'"};
  auto result = parse_config(ss.str(), path);
  if (result)
    apply_env(*result);
  return result;
}

} // namespace

std::string secure_docker_runtime(const node_config& cfg) {
  auto& s = cfg.secure_runtime;
  if (s.type.empty())
    return {};
  // An empty docker_runtime falls back to the type's default, as upstream.
  if (!s.docker_runtime.empty())
    return s.docker_runtime;
  if (s.type == "gvisor")
    return "runsc";
  if (s.type == "kata")
    return "kata-runtime";
  return {};
}

expected<node_config> parse_config(const std::string& toml_text,
                                   const std::string& source) {
  toml::table doc;
  try {
    doc = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << source << ':' << e.source().begin.line << ':'
       << e.source().begin.column << ": " << e.description();
    return failure{failure_kind::invalid, os.str()};
  }
  node_config cfg;
  reader r{source};
  read_document(r, doc, cfg);
  if (r.failed())
    return failure{failure_kind::invalid, r.error()};
  finish(cfg);
  return cfg;
}

expected<node_config> load_config(const std::string& path) {
  if (!path.empty()) {
    auto p = expand_home(path);
    if (!file_exists(p))
      return failure{failure_kind::not_found,
                     "config file '" + p + "' does not exist"};
    return load_file(p);
  }
  if (auto env = std::getenv("SANDBOX_CONFIG_PATH"); env && *env != '\0') {
    auto p = expand_home(env);
    if (!file_exists(p))
      return failure{failure_kind::not_found,
                     "config file '" + p
                       + "' (from SANDBOX_CONFIG_PATH) does not exist"};
    return load_file(p);
  }
  auto p = home_dir() + "/.sandbox.toml";
  if (file_exists(p))
    return load_file(p);
  auto result = parse_config("", "<defaults>");
  if (result)
    apply_env(*result);
  return result;
}

} // namespace osb
