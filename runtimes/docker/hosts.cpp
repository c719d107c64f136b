#include "runtimes/docker/hosts.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "base/log.hpp"
#include "runtimes/docker/docker_engine.hpp"
#include "runtimes/docker/docker_runtime.hpp"
#include "runtimes/docker/fake_engine.hpp"
#include "runtimes/docker/tar.hpp"

namespace osb::runtimes::docker {

namespace {

constexpr const char* component = "main";

/// The configured Docker hosts: `docker.hosts`, else `docker.host`.
std::vector<std::string> hosts_of(const node_config& cfg) {
  auto hosts = cfg.docker.hosts;
  if (hosts.empty())
    hosts.push_back(cfg.docker.host);
  return hosts;
}

/// The execd archive for `runtime.execd_inject = "archive"`, else null.
std::shared_ptr<const std::string> execd_archive(const node_config& cfg) {
  if (cfg.runtime.execd_inject != "archive")
    return nullptr;
  std::ifstream in{cfg.runtime.execd_path, std::ios::binary};
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  return std::make_shared<const std::string>(
    make_tar({{"opt", 0755, true, {}},
              {"opt/opensandbox", 0755, true, {}},
              {"opt/opensandbox/execd", 0755, false, std::move(bytes)}}));
}

bool is_wildcard(const std::string& address) {
  return address == "0.0.0.0" || address == "::" || address == "[::]";
}

/// One runtime per host, each over its own engine from `make_engine`.
template <class MakeEngine>
std::vector<host_runtime> make_all(const runtime_context& ctx,
                                   MakeEngine make_engine) {
  auto& cfg = *ctx.cfg;
  auto hosts = hosts_of(cfg);
  auto tar = execd_archive(cfg);
  std::vector<host_runtime> result;
  for (auto& host : hosts) {
    docker_options opts;
    opts.cfg = ctx.cfg;
    opts.node = ctx.node;
    // A single host keeps the stable name "default"; several are told
    // apart by their address.
    opts.host = hosts.size() == 1 ? "default" : host;
    opts.incarnation = ctx.incarnation;
    opts.local_fs = shares_filesystem(host);
    opts.publish_address = ctx.publish_address(!opts.local_fs);
    opts.execd_tar = tar;
    if (is_wildcard(opts.publish_address))
      OSB_WARN(component, "", "",
               "sandbox ports on Docker host '"
                 << opts.host << "' are published on " << opts.publish_address
                 << " (every address, the bridge gateway included): "
                    "sandboxes can reach each other's published ports "
                    "(execd still needs each sandbox's token); set "
                    "docker.publish_address to restrict them");
    else
      OSB_INFO(component, "", "",
               "sandbox ports on Docker host '"
                 << opts.host << "' are published on "
                 << opts.publish_address);
    auto name = opts.host;
    auto rt = std::make_shared<docker_runtime>(make_engine(host),
                                               std::move(opts));
    result.push_back(host_runtime{name, endpoint_host_of(host), rt});
  }
  return result;
}

} // namespace

bool prepare_hosts(node_config& cfg) {
  auto& rt = cfg.runtime;
  if (rt.execd_inject == "none")
    return true;
  if (rt.execd_path.empty()) {
    std::error_code ec;
    auto self_exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    rt.execd_path = (self_exe.parent_path() / "opensandbox-execd").string();
  }
  std::error_code ec;
  auto path = std::filesystem::canonical(rt.execd_path, ec);
  if (ec || !std::filesystem::is_regular_file(path)) {
    if (rt.execd_inject != "auto") {
      OSB_ERROR(component, "", "",
                "execd binary not found at " << rt.execd_path
                                             << " (runtime.execd_path)");
      return false;
    }
    OSB_WARN(component, "", "",
             "execd binary not found at "
               << rt.execd_path
               << "; sandboxes start without execd and SDK readiness "
                  "checks will fail (build opensandbox-execd or set "
                  "runtime.execd_path)");
    rt.execd_inject = "none";
    return true;
  }
  rt.execd_path = path.string();
  if (rt.execd_inject == "auto") {
    auto host = cfg.docker.host;
    if (host.empty())
      if (auto env = std::getenv("DOCKER_HOST"))
        host = env;
    rt.execd_inject = host.empty() || host.rfind("unix://", 0) == 0
                        ? "bind"
                        : "archive";
  }
  OSB_INFO(component, "", "",
           "execd " << rt.execd_path << " goes into sandboxes by "
                    << rt.execd_inject);
  return true;
}

bool prepare_fake_hosts(node_config& cfg) {
  cfg.runtime.execd_inject = "none";
  return true;
}

std::vector<host_runtime> make_hosts(const runtime_context& ctx) {
  auto timeout = std::chrono::seconds(ctx.cfg->docker.api_timeout);
  return make_all(ctx, [timeout](const std::string& host) {
    return make_docker_engine(host, timeout, 1);
  });
}

std::vector<host_runtime> make_fake_hosts(const runtime_context& ctx) {
  return make_all(ctx, [](const std::string&) {
    return std::make_shared<fake_engine>();
  });
}

std::string endpoint_host_of(const std::string& docker_host) {
  // tcp://host:port and ssh://[user@]host[:port]: the Docker host's machine
  // publishes the ports (never this one's, which may run other sandboxes).
  for (std::string scheme : {"tcp://", "ssh://"}) {
    if (docker_host.rfind(scheme, 0) != 0)
      continue;
    auto rest = docker_host.substr(scheme.size());
    if (auto at = rest.rfind('@'); at != std::string::npos)
      rest = rest.substr(at + 1);
    if (auto slash = rest.find('/'); slash != std::string::npos)
      rest = rest.substr(0, slash);
    auto colon = rest.rfind(':');
    return colon == std::string::npos ? rest : rest.substr(0, colon);
  }
  return {};
}

bool shares_filesystem(const std::string& docker_host) {
  if (docker_host.rfind("ssh://", 0) == 0)
    return false;
  auto host = endpoint_host_of(docker_host);
  return host.empty() || host == "localhost" || host == "::1" || host == "[::1]"
         || host.rfind("127.", 0) == 0;
}

} // namespace osb::runtimes::docker
