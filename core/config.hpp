#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/expected.hpp"

namespace osb {

/// The whole server configuration. Keys mirror the original OpenSandbox TOML
/// (see reference/server-behavior.md §4); defaults apply when a key is absent.
struct node_config {
  struct server_section {
    std::string host = "0.0.0.0";
    uint16_t port = 8080;
    std::string api_key;             ///< empty = no key configured
    std::string eip;                 ///< public host for endpoints, optional
    int64_t max_sandbox_timeout_seconds = 0; ///< 0 = no cap
    int64_t timeout_keep_alive = 30;
    /// Seconds for a request's header to arrive (ours).
    int64_t timeout_header = 5;
    int64_t limit_concurrency = 1024; ///< 0 = unlimited
    int64_t backlog = 2048;
    int64_t thread_pool_size = 200;  ///< accepted for compatibility
    std::string loop = "auto";       ///< accepted for compatibility
    std::string http = "auto";       ///< accepted for compatibility
    int64_t io_threads = 0;          ///< 0 = number of cores (ours)
    /// SIGTERM: seconds to finish in-flight work before exiting (ours).
    int64_t shutdown_timeout_seconds = 10;
  } server;

  /// `[metrics]` (ours, issue 15): the Prometheus endpoint `GET /metrics`.
  struct metrics_section {
    /// Whether anything is recorded; off = `/metrics` answers 404.
    bool enabled = true;
    /// Whether `/metrics` needs the API key (when one is configured).
    bool auth = true;
  } metrics;

  struct log_section {
    std::string level = "INFO";      ///< DEBUG, INFO, WARNING, ERROR
    bool file_enabled = false;
    std::string file_path;
    std::string access_file_path;
    int64_t file_max_bytes = 104857600;
    int64_t file_backup_count = 5;
  } log;

  struct runtime_section {
    /// "docker", "kubernetes", or "fake" (in-memory, for benchmarks).
    std::string type = "docker";
    /// Kubernetes: the image whose init container copies execd into each
    /// pod (it holds /execd); empty = opensandbox/execd:latest, which
    /// deploy/build-execd-image.sh builds. Docker: accepted, unused.
    std::string execd_image;
    /// Host path of the static opensandbox-execd binary; empty = next to
    /// the server binary.
    std::string execd_path;
    /// How execd gets into sandboxes: "bind" (read-only bind mount, no
    /// copy), "archive" (one upload per sandbox, for remote Docker hosts),
    /// "none", or "auto" (bind for a local socket, archive otherwise).
    std::string execd_inject = "auto";
  } runtime;

  struct docker_section {
    std::string host;                ///< empty = $DOCKER_HOST or the unix socket
    /// Several Docker hosts supervised by this node, one supervisor each
    /// (`unix://`, `tcp://`); when set, `host` is ignored.
    std::vector<std::string> hosts;
    /// Host ports for sandboxes ("first-last"); nodes that share one Docker
    /// host need disjoint ranges.
    std::pair<uint16_t, uint16_t> host_port_range{40000, 60000};
    std::string network_mode = "bridge";
    int64_t api_timeout = 180;
    std::string host_ip;
    std::vector<std::string> drop_capabilities = {
      "AUDIT_WRITE", "MKNOD",    "NET_ADMIN", "NET_RAW",       "SYS_ADMIN",
      "SYS_MODULE",  "SYS_PTRACE", "SYS_TIME", "SYS_TTY_CONFIG"};
    std::string apparmor_profile;
    bool no_new_privileges = true;
    std::string seccomp_profile;
    int64_t pids_limit = 4096;       ///< 0 = no limit (TOML: absent default)
    /// Address at which the server proxy reaches the ports published on
    /// this machine: "auto" = a non-loopback address of this machine, so
    /// that Docker's NAT rules forward straight to the container (127.0.0.1
    /// would go through docker-proxy); or a numeric IP, e.g. "127.0.0.1".
    std::string proxy_host = "auto";
    /// Host address the sandboxes' published ports bind to (ours): "auto"
    /// = the address endpoints advertise when it is loopback or an address
    /// of this machine, else 0.0.0.0; or a numeric IP ("0.0.0.0" publishes
    /// on every address, bridge gateway included). Remote Docker hosts use
    /// 0.0.0.0 under "auto".
    std::string publish_address = "auto";
  } docker;

  /// `[kubernetes]` (runtime.type = "kubernetes"): keys of the original's
  /// KubernetesRuntimeConfig; sandboxes are plain Pods (docs/runtimes.md).
  struct kubernetes_section {
    /// kubeconfig file; empty = the in-cluster service account.
    std::string kubeconfig_path;
    /// Namespace of the sandbox pods; empty = the kubeconfig context's (or
    /// the service account's), else "default".
    std::string namespace_name;
    /// serviceAccountName of the sandbox pods; empty = the namespace's
    /// default.
    std::string service_account;
    /// "pod" (ours: plain Pods, no CRDs) or "agent-sandbox"
    /// (kubernetes-sigs/agent-sandbox Sandbox objects; its controller makes
    /// the pods). The original's "batchsandbox" needs its own controller
    /// and is refused.
    std::string workload_provider = "pod";
    /// "Always", "IfNotPresent" or "Never".
    std::string image_pull_policy = "IfNotPresent";
    /// Client-side rate limits (0 = unlimited; a burst of 0 = the qps).
    double read_qps = 0;
    int64_t read_burst = 0;
    double write_qps = 0;
    int64_t write_burst = 0;
    /// Full re-list interval of the pod informer (seconds).
    int64_t informer_resync_seconds = 300;
    /// timeoutSeconds of each watch request.
    int64_t informer_watch_timeout_seconds = 60;
    /// Seconds for a new pod to become Ready before the create fails.
    int64_t sandbox_create_timeout_seconds = 60;
    /// The replica's Lease (several replicas, docs/runtimes.md): its
    /// leaseDurationSeconds, and how often it is renewed.
    int64_t lease_duration_seconds = 10;
    int64_t lease_renew_seconds = 2;
    /// Resources of the execd init container; empty = none.
    std::map<std::string, std::string> execd_init_limits;
    std::map<std::string, std::string> execd_init_requests;
  } kubernetes;

  /// `[agent_sandbox]` (kubernetes.workload_provider = "agent-sandbox"):
  /// the seed's keys that apply.
  struct agent_sandbox_section {
    /// spec.shutdownPolicy of the Sandbox objects: what the agent-sandbox
    /// controller does at spec.shutdownTime, "Delete" or "Retain".
    std::string shutdown_policy = "Delete";
    /// The seed's hint that an ingress routes to the pods; accepted, no
    /// effect here (endpoints are the pod's address or the server proxy).
    bool ingress_enabled = true;
  } agent_sandbox;

  struct ingress_section {
    std::string mode = "direct";
    /// OSEP-0011 signing keys (`[ingress.secure_access]`): with Docker they
    /// sign the server proxy's signed URLs (ours; the original accepts them
    /// only with a gateway).
    struct signing_key {
      char id = 0;          ///< one of [0-9a-z]
      std::string secret;   ///< decoded bytes
    };
    struct secure_access_section {
      char active_key = 0;  ///< 0 = no secure_access block
      std::vector<signing_key> keys;
    } secure_access;
  } ingress;

  struct egress_section {
    std::string image;
    /// "dns" filters names only; "dns+nft" also drops traffic to addresses
    /// no allowed name resolved to, so IP literals cannot bypass a deny
    /// policy. The original defaults to "dns"; we default to the safe one.
    std::string mode = "dns+nft";
    bool disable_ipv6 = true;
    /// Resolver the sidecars forward allowed names to ("ip[:port]");
    /// empty = the sidecar's /etc/resolv.conf.
    std::string upstream_dns;
  } egress;

  struct storage_section {
    std::vector<std::string> allowed_host_paths;
    std::string volume_default_size = "1Gi";
    std::string ossfs_mount_root = "/mnt/ossfs";
  } storage;

  struct store_section {
    std::string type = "sqlite";
    std::string path = "~/.opensandbox/opensandbox.db";
  } store;

  /// Renew-on-access (OSEP-0009), proxy-only mode: every server-proxy
  /// request for a sandbox created with `access.renew.extend.seconds`
  /// schedules a renewal. Consuming intents from Redis is not implemented
  /// (the `redis.*` keys are validated, then ignored).
  struct renew_intent_section {
    bool enabled = false;
    /// Per-sandbox cool-down between successful renewals (>= 1).
    int64_t min_interval_seconds = 60;
    /// `redis.enabled` as configured (not implemented; warned at start).
    bool redis_requested = false;
  } renew_intent;

  /// Warm pools (docs/pools.md).
  struct pool_section {
    /// Serve a create without `extensions.poolRef` from a pool whose
    /// template matches it (same image, limits, policy, platform, volumes).
    bool match_creates = false;
    /// Members this node makes at once, all pools together (>= 1): refills
    /// must not crowd out the creates and requests of users.
    int64_t warm_concurrency = 2;
  } pool;

  /// `[secure_runtime]` as configured (validated like the original): with
  /// a type, every sandbox of this server runs under that runtime (see
  /// `secure_docker_runtime`); the egress sidecar keeps the default one.
  struct secure_runtime_section {
    std::string type;                ///< "", "gvisor" or "kata"
    std::string docker_runtime;      ///< OCI runtime name; empty = default
    /// runtimeClassName of the sandbox pods (Kubernetes runtime).
    std::string k8s_runtime_class;
  } secure_runtime;

  struct cluster_section {
    std::string node_name;           ///< empty = hostname
    /// Middleman listen address "host:port"; empty = no cluster. Also
    /// advertised to peers for reconnects.
    std::string listen;
    /// Peers to join ("host:port"), retried until reached.
    std::vector<std::string> seeds;
    /// Sandboxes this node accepts; 0 = unlimited.
    int64_t max_sandboxes = 0;
    /// Overrides the cluster protocol version (tests of incompatible
    /// peers); empty = this build's version.
    std::string protocol;
    /// PEM certificate of the cluster's CA: a peer joins only with a
    /// certificate it signed (TLS with mutual authentication).
    std::string tls_ca_file;
    /// PEM certificate (chain) this node presents to its peers.
    std::string tls_cert_file;
    /// PEM private key of `tls_cert_file` (unencrypted).
    std::string tls_key_file;
    /// Plain TCP between nodes instead of TLS; only when set explicitly
    /// (anyone who reaches `listen` can then join; warned at start).
    bool plaintext = false;
    /// Largest cluster message (BASP payload bytes) a peer may send; a
    /// larger one closes its connection before it is read.
    int64_t max_message_bytes = 64 << 20;
    /// How long a starting node waits for its seeds (and the members they
    /// name) to join: until then it answers 503 for sandboxes it does not
    /// know and marks lists partial; after it, 404 and complete lists.
    int64_t seed_timeout_seconds = 30;
  } cluster;
};

/// The OCI runtime Docker runs every sandbox container with: the
/// configured `secure_runtime.docker_runtime`, else the default of the type
/// (gvisor -> "runsc", kata -> "kata-runtime"); empty = Docker's default
/// runtime (no secure runtime).
std::string secure_docker_runtime(const node_config& cfg);

/// Loads the configuration: `path` if given, else $SANDBOX_CONFIG_PATH, else
/// ~/.sandbox.toml; a missing default file yields the embedded defaults, a
/// missing explicit file is an error. Unknown sections/keys and type errors
/// fail with "file:line:col: message". $OPENSANDBOX_SERVER_API_KEY, if set,
/// overrides server.api_key. `~` in paths is expanded.
expected<node_config> load_config(const std::string& path);

/// Parses a TOML document (for tests); `source` names it in error messages.
expected<node_config> parse_config(const std::string& toml_text,
                                   const std::string& source);

} // namespace osb
