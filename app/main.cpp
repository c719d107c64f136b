// opensandbox-server: parses flags, loads the configuration, spawns the
// actors and serves the lifecycle API until SIGINT/SIGTERM.

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "actors/cluster_transport.hpp"
#include "gateway/gateway.hpp"
#include "actors/host_supervisor.hpp"
#include "actors/node.hpp"
#include "actors/runtime_bridge.hpp"
#include "actors/pools.hpp"
#include "actors/snapshots.hpp"
#include "actors/store_actor.hpp"
#include "actors/system_config.hpp"
#include "core/ids.hpp"
#include "core/spec_json.hpp"
#include "core/time.hpp"
#include "core/config.hpp"
#include "actors/error.hpp"
#include "base/log.hpp"
#include "base/metrics.hpp"
#include "http/api.hpp"
#include "http/server.hpp"
#include "net/endpoints.hpp"
#include "runtimes/registry.hpp"
#include "store/node_ledger.hpp"

namespace {

constexpr const char* component = "main";
constexpr const char* version = "0.1.0";

void usage() {
  std::cout << "usage: opensandbox-server [--config PATH]\n"
               "  --config PATH  TOML configuration (default: "
               "$SANDBOX_CONFIG_PATH, then ~/.sandbox.toml, then built-in "
               "defaults)\n"
               "  --version      print the version\n";
}

/// The original's startup guard (issue #750): without an API key the server
/// only starts after an explicit confirmation.
bool confirm_insecure_start() {
  if (auto env = std::getenv("OPENSANDBOX_INSECURE_SERVER");
      env && std::string{env} == "YES") {
    OSB_WARN(component, "", "",
             "server.api_key is empty: the API is open to anyone who can "
             "reach it (confirmed through OPENSANDBOX_INSECURE_SERVER)");
    return true;
  }
  if (!isatty(STDIN_FILENO)) {
    OSB_ERROR(component, "", "",
              "Startup blocked: server.api_key is empty in non-interactive "
              "mode. Set OPENSANDBOX_INSECURE_SERVER=YES to run without an "
              "API key, or configure server.api_key.");
    return false;
  }
  std::cerr << "\033[31mserver.api_key is empty: anyone who can reach this "
               "server can create and control sandboxes.\nType YES within "
               "30 seconds to start anyway: \033[0m"
            << std::flush;
  pollfd pfd{STDIN_FILENO, POLLIN, 0};
  if (poll(&pfd, 1, 30000) <= 0) {
    OSB_ERROR(component, "", "",
              "Startup aborted: missing explicit confirmation (confirmation "
              "timed out).");
    return false;
  }
  std::string answer;
  std::getline(std::cin, answer);
  if (answer != "YES") {
    OSB_ERROR(component, "", "",
              "Startup aborted: missing explicit confirmation.");
    return false;
  }
  return true;
}

std::string node_name(const osb::node_config& cfg) {
  if (!cfg.cluster.node_name.empty())
    return cfg.cluster.node_name;
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) == 0 && buf[0] != '\0')
    return buf;
  return "node-1";
}

/// Configures the middleman for the cluster port: TLS with mutual
/// certificate authentication through CAF's OpenSSL module, or plain TCP
/// when `cluster.plaintext` asks for it. False when the TLS files are
/// unusable.
bool configure_cluster(osb::system_config& sys_cfg,
                       const osb::node_config& cfg) {
  auto& c = cfg.cluster;
  sys_cfg.load<caf::io::middleman>();
  // Without heartbeats a frozen peer is never noticed (CAF 0.17).
  sys_cfg.set("middleman.heartbeat-interval",
              caf::timespan{std::chrono::seconds(1)});
  sys_cfg.set("middleman.connection-timeout",
              caf::timespan{std::chrono::seconds(3)});
  // Only our nodes: CAF applications of another kind fail the handshake.
  sys_cfg.set("middleman.app-identifiers",
              std::vector<std::string>{"opensandbox-cluster"});
  if (c.plaintext) {
    OSB_WARN(component, "", "",
             "cluster.plaintext = true: the cluster port "
               << c.listen
               << " speaks plain TCP without authentication; anyone who "
                  "reaches it can join and act as a node. Use "
                  "cluster.tls_ca_file, tls_cert_file and tls_key_file "
                  "outside of tests.");
    return true;
  }
  if (auto err = osb::check_tls_files(c.tls_ca_file, c.tls_cert_file,
                                      c.tls_key_file);
      !err.empty()) {
    OSB_ERROR(component, "", "", "cluster TLS: " << err);
    return false;
  }
  // CAF's OpenSSL module requires and verifies a certificate of this CA
  // on both sides (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT).
  sys_cfg.openssl_cafile = c.tls_ca_file;
  sys_cfg.openssl_certificate = c.tls_cert_file;
  sys_cfg.openssl_key = c.tls_key_file;
  sys_cfg.load<caf::openssl::manager>();
  OSB_INFO(component, "", "",
           "cluster port speaks TLS; peers need a certificate of "
             << c.tls_ca_file);
  return true;
}

/// Publishes the NODE actor on `cluster.listen` through the cluster's
/// transport and asks it to connect to the seeds (asynchronously, retried
/// until they answer).
bool join_cluster(caf::actor_system& sys, const osb::node_actor& node,
                  const caf::io::middleman_actor& transport,
                  const osb::node_config& cfg) {
  auto& listen = cfg.cluster.listen;
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    OSB_ERROR(component, "", "",
              "cluster.listen must be host:port, got '" << listen << "'");
    return false;
  }
  auto host = listen.substr(0, colon);
  if (host == "0.0.0.0" || host == "::" || host.empty())
    OSB_WARN(component, "", "",
             "cluster.listen " << listen << " is a wildcard; peers use this "
                                  "address to reconnect, so give a "
                                  "reachable host instead");
  auto port = static_cast<uint16_t>(std::stoi(listen.substr(colon + 1)));
  auto bound = osb::publish_node(sys, transport, node, host, port);
  if (!bound) {
    OSB_ERROR(component, "", "",
              "cannot listen for cluster peers on "
                << listen << ": " << sys.render(bound.error()));
    return false;
  }
  OSB_INFO(component, "", "",
           "node listens for cluster peers on " << host << ":" << *bound
                                                << ", seeds: "
                                                << cfg.cluster.seeds.size());
  caf::anon_send(node, osb::atom::connect_v, cfg.cluster.seeds);
  return true;
}

/// SIGHUP: reads the configuration file again and applies what can change
/// without a restart (the log level); says which other changes wait for one.
void reload(const std::string& config_path, const osb::node_config& running) {
  auto fresh = osb::load_config(config_path);
  if (!fresh) {
    OSB_ERROR(component, "", "",
              "SIGHUP: the configuration is invalid, nothing reloaded: "
                << fresh.error().message);
    return;
  }
  // Logged before the new level applies, so that it shows at the old one.
  OSB_INFO(component, "", "",
           "SIGHUP: configuration reloaded; log level " << fresh->log.level
             << " (other settings apply at the next start)");
  osb::log::set_level(fresh->log.level);
  if (fresh->server.api_key != running.server.api_key
      || fresh->server.port != running.server.port
      || fresh->cluster.listen != running.cluster.listen)
    OSB_WARN(component, "", "",
             "SIGHUP: server.api_key, server.port or cluster.listen changed; "
             "restart the server to apply them");
}

/// Readiness checks beyond the node's own: every runtime host answers, and
/// the store takes a write.
std::vector<osb::gateway::readiness_check>
readiness_checks(caf::actor_system& sys, const osb::store_actor& store,
                 const std::vector<osb::runtimes::host_runtime>& hosts) {
  std::vector<osb::gateway::readiness_check> checks;
  for (auto& host : hosts)
    checks.push_back([rt = host.runtime, name = host.name](
                       std::function<void(std::string)> done) {
      rt->ping([done, name](osb::expected<osb::unit> r) {
        done(r ? std::string{}
               : "runtime host " + name + " does not answer: "
                   + r.error().message);
      });
    });
  checks.push_back([&sys, store](std::function<void(std::string)> done) {
    // A one-shot actor, so that the check never blocks an I/O thread.
    sys.spawn([store, done](caf::event_based_actor* self) {
      self->request(store, std::chrono::seconds(5), osb::atom::ready_v)
        .then([done](bool) { done({}); },
              [done](caf::error& err) {
                done("the store takes no writes: "
                     + osb::to_api_error(err).message);
              });
    });
  });
  return checks;
}

/// SIGTERM/SIGINT, step one: no new connections; waits (bounded) until
/// every request in flight has its answer. Acknowledged work needs no
/// wait: it is durable, and the next start continues it.
void drain(osb::http::server& srv, std::chrono::steady_clock::time_point deadline) {
  srv.stop_accepting();
  for (;;) {
    auto s = srv.stats();
    auto busy = s.open - s.waiting;
    if (busy <= 0)
      return;
    if (std::chrono::steady_clock::now() >= deadline) {
      OSB_WARN(component, "", "",
               "shutdown: " << busy << " connections still busy at the "
                               "deadline; closing them");
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

} // namespace

int main(int argc, char** argv) {
  std::string config_path;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
    } else if (arg == "--version") {
      std::cout << "opensandbox-server " << version << "\n";
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      usage();
      return 0;
    } else {
      std::cerr << "unknown argument: " << arg << "\n";
      usage();
      return 2;
    }
  }
  auto loaded = osb::load_config(config_path);
  if (!loaded) {
    std::cerr << "opensandbox-server: invalid configuration: "
              << loaded.error().message << "\n";
    return 2;
  }
  osb::log::set_level(loaded->log.level);
  osb::metrics::set_enabled(loaded->metrics.enabled);
  if (loaded->log.file_enabled) {
    // Defaults of the original: ~/logs/opensandbox/{server,access}.log.
    const char* home = std::getenv("HOME");
    auto dir = std::string{home ? home : "/root"} + "/logs/opensandbox/";
    auto& l = loaded->log;
    auto path = l.file_path.empty() ? dir + "server.log" : l.file_path;
    auto access = l.access_file_path.empty() ? dir + "access.log"
                                             : l.access_file_path;
    auto err = osb::log::to_files(path, access, l.file_max_bytes,
                                  l.file_backup_count);
    if (!err.empty()) {
      std::cerr << "opensandbox-server: " << err << "\n";
      return 2;
    }
    std::cerr << "opensandbox-server: logging to " << path
              << " (access log " << access << ")\n";
  }
  if (!osb::runtimes::prepare_runtime(*loaded))
    return 2;
  auto cfg = std::make_shared<const osb::node_config>(std::move(*loaded));
  if (cfg->server.api_key.empty() && !confirm_insecure_start())
    return 1;
  // Block the stop signals in every thread; main waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto name = node_name(*cfg);
  // This process's identity: its containers carry it, and recovery removes
  // an orphan only if this store recorded the incarnation that made it.
  auto incarnation = osb::codec::make_uuid();
  auto ledger = osb::store::node_ledger::open(cfg->store.path, name,
                                              incarnation);
  if (!ledger) {
    OSB_ERROR(component, "", "", "cannot claim the store: "
                                   << ledger.error().message);
    return 1;
  }
  OSB_INFO(component, "", "",
           "node " << name << " runs as incarnation " << incarnation << " ("
                   << (*ledger)->incarnations().size()
                   << " recorded in its store)");
  auto store = osb::store::sqlite_store::open(cfg->store.path);
  if (!store) {
    OSB_ERROR(component, "", "", "cannot open the store: "
                                   << store.error().message);
    return 1;
  }
  std::shared_ptr<osb::store::sqlite_store> db = std::move(*store);
  bool clustered = !cfg->cluster.listen.empty();
  int exit_code = 0;
  {
    osb::system_config sys_cfg;
    if (clustered && !configure_cluster(sys_cfg, *cfg))
      return 2;
    caf::actor_system sys{sys_cfg};
    caf::io::middleman_actor transport;
    if (clustered)
      transport = osb::spawn_transport(
        sys, osb::transport_options{
               !cfg->cluster.plaintext,
               static_cast<uint32_t>(cfg->cluster.max_message_bytes)});
    auto store_hdl = sys.spawn<caf::detached>(osb::store_actor_impl, db);
    osb::node_init node_init;
    node_init.self = osb::node_info{name,
                                    cfg->cluster.protocol.empty()
                                      ? osb::cluster_protocol_version
                                      : cfg->cluster.protocol,
                                    cfg->cluster.listen};
    node_init.max_sandboxes = cfg->cluster.max_sandboxes;
    node_init.match_creates = cfg->pool.match_creates;
    node_init.self.max_sandboxes = cfg->cluster.max_sandboxes;
    node_init.self.incarnation = incarnation;
    node_init.public_host = osb::net::detect_public_host(*cfg);
    node_init.clustered = clustered;
    node_init.seeds = cfg->cluster.seeds;
    node_init.seed_timeout
      = std::chrono::seconds(cfg->cluster.seed_timeout_seconds);
    node_init.transport = transport;
    auto node = sys.spawn(osb::node, node_init);
    // One RUNTIME actor and one HOST SUPERVISOR per runtime host.
    osb::runtimes::runtime_context rt_ctx;
    rt_ctx.cfg = cfg;
    rt_ctx.node = name;
    rt_ctx.incarnation = incarnation;
    rt_ctx.public_host = node_init.public_host;
    // Ports published outside this network namespace (a remote Docker
    // host, or this server runs in a container of its own network).
    rt_ctx.publish_address = [&](bool remote) {
      return osb::net::resolve_publish_address(
        *cfg, remote || !osb::net::docker_bridge_here(),
        node_init.public_host);
    };
    std::vector<osb::runtimes::host_runtime> hosts;
    if (auto made = osb::runtimes::make_runtimes(rt_ctx)) {
      hosts = std::move(*made);
    } else {
      OSB_ERROR(component, "", "", made.error().message);
      exit_code = 2;
    }
    // E.g. the OCI runtime of [secure_runtime] must exist on every host.
    if (auto ok = osb::runtimes::verify_runtimes(hosts,
                                                 std::chrono::seconds(10));
        exit_code == 0 && !ok) {
      OSB_ERROR(component, "", "", "start-up check failed: "
                                     << ok.error().message);
      exit_code = 2;
    }
    std::vector<caf::actor> roots;
    osb::snapshots_init snap_init;
    snap_init.node_name = name;
    snap_init.store = store_hdl;
    snap_init.commit_timeout
      = std::chrono::seconds(cfg->docker.api_timeout + 10);
    snap_init.incarnations = (*ledger)->incarnations();
    // After a failed start-up check no supervisor starts (no recovery).
    auto supervised = exit_code == 0 ? hosts : decltype(hosts){};
    std::vector<osb::runtime_actor> runtimes;
    for (auto& host : supervised) {
      auto runtime = sys.spawn(osb::runtime_bridge, host.runtime);
      runtimes.push_back(runtime);
      osb::supervisor_init sup_init;
      sup_init.cfg = cfg;
      sup_init.node_name = name;
      sup_init.node = node;
      sup_init.runtime = runtime;
      sup_init.store = store_hdl;
      sup_init.runtime_host = host.name;
      sup_init.endpoint_host = host.endpoint_host;
      sup_init.incarnations = (*ledger)->incarnations();
      sup_init.gate = host.gate;
      // A replica of a fleet adopts a lost peer's sandboxes at its next
      // reconciliation: soon after the takeover (from the informer's cache).
      if (host.gate)
        sup_init.reconcile_interval = std::chrono::seconds(1);
      auto sup = sys.spawn(osb::host_supervisor, sup_init);
      caf::anon_send(node, osb::atom::put_v, sup, sup_init.runtime_host);
      snap_init.runtimes.emplace(sup_init.runtime_host, runtime);
      roots.push_back(caf::actor_cast<caf::actor>(sup));
      roots.push_back(caf::actor_cast<caf::actor>(runtime));
    }
    auto snaps = sys.spawn(osb::snapshots, snap_init);
    caf::anon_send(node, osb::atom::put_v, snaps);
    roots.push_back(caf::actor_cast<caf::actor>(snaps));
    osb::pools_init pools_init;
    pools_init.node_name = name;
    pools_init.store = store_hdl;
    pools_init.node = node;
    pools_init.runtimes = std::move(runtimes);
    pools_init.warm_concurrency = cfg->pool.warm_concurrency;
    auto pools = sys.spawn(osb::pools, pools_init);
    caf::anon_send(node, osb::atom::put_v, pools);
    roots.push_back(caf::actor_cast<caf::actor>(pools));
    if (clustered && !join_cluster(sys, node, transport, *cfg))
      exit_code = 2;
    auto gw = osb::gateway::start(sys, node,
                                  readiness_checks(sys, store_hdl, hosts));
    osb::http::server_options opts;
    opts.host = cfg->server.host;
    opts.port = cfg->server.port;
    opts.threads = cfg->server.io_threads > 0
                     ? static_cast<int>(cfg->server.io_threads)
                     : static_cast<int>(
                       std::max(2u, std::thread::hardware_concurrency()));
    opts.keep_alive_s = cfg->server.timeout_keep_alive;
    opts.header_timeout_s = cfg->server.timeout_header;
    opts.limit_concurrency = cfg->server.limit_concurrency;
    opts.backlog = static_cast<int>(cfg->server.backlog);
    auto handler = osb::http::make_api_handler(cfg, gw.backend);
    auto srv = exit_code == 0
                 ? osb::http::server::start(opts, std::move(handler))
                 : osb::expected<std::unique_ptr<osb::http::server>>{
                   osb::failure{osb::failure_kind::invalid,
                                "the cluster setup failed"}};
    if (!srv) {
      // A failed start-up check keeps its own exit code (2).
      if (exit_code == 0) {
        OSB_ERROR(component, "", "", "cannot serve HTTP on "
                                       << opts.host << ":" << opts.port
                                       << ": " << srv.error().message);
        exit_code = 1;
      }
    } else {
      auto oci_runtime = osb::secure_docker_runtime(*cfg);
      OSB_INFO(component, "", "",
               "opensandbox-server " << version << " node " << name
                                     << " listens on " << opts.host << ":"
                                     << (*srv)->port() << " (runtime "
                                     << cfg->runtime.type << ", "
                                     << cfg->docker.network_mode
                                     << " network"
                                     << (oci_runtime.empty() ? "" : ", OCI "
                                                                   "runtime ")
                                     << oci_runtime << ")");
      int sig = 0;
      while (sigwait(&stop_signals, &sig) == 0 && sig == SIGHUP)
        reload(config_path, *cfg);
      auto grace = std::chrono::seconds(cfg->server.shutdown_timeout_seconds);
      OSB_INFO(component, "", "",
               "server stops on signal "
                 << sig << " (within " << grace.count()
                 << " s); sandboxes keep running");
      // Whatever hangs past the deadline, the process still ends in time:
      // acknowledged work is durable and the next start continues it.
      std::thread{[grace] {
        std::this_thread::sleep_for(grace);
        OSB_WARN(component, "", "",
                 "shutdown did not finish within "
                   << grace.count()
                   << " s (server.shutdown_timeout_seconds); exiting now");
        _exit(0);
      }}.detach();
      // Half of the time for requests in flight, the rest for the actors.
      drain(**srv, std::chrono::steady_clock::now() + grace / 2);
      (*srv)->stop();
    }
    roots.push_back(gw.actor);
    roots.push_back(caf::actor_cast<caf::actor>(node));
    roots.push_back(caf::actor_cast<caf::actor>(store_hdl));
    if (transport)
      roots.push_back(caf::actor_cast<caf::actor>(transport));
    for (auto& hdl : roots)
      caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    for (auto& host : hosts)
      host.runtime->shutdown();
  }
  return exit_code;
}
