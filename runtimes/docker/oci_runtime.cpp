#include "runtimes/docker/oci_runtime.hpp"

#include <unistd.h>

#include "runtimes/docker/tar.hpp"

namespace osb::runtimes::docker {

namespace {

bool contains(const std::string& text, const char* x) {
  return text.find(x) != std::string::npos;
}

/// Where gVisor's setup on a Docker host is explained.
constexpr const char* see_docs = "see docs/gvisor.md";

} // namespace

std::optional<std::string> check_oci_runtime(const daemon_info& info,
                                             const std::string& name,
                                             const std::string& host,
                                             bool local_fs) {
  const daemon_info::oci_runtime* found = nullptr;
  std::string available;
  for (auto& rt : info.runtimes) {
    if (rt.name == name)
      found = &rt;
    available += (available.empty() ? "" : ", ") + rt.name;
  }
  if (found == nullptr)
    // The original's words, plus the host and what to do here.
    return "Configured Docker runtime '" + name
           + "' is not available on Docker host '" + host
           + "'. Available runtimes: "
           + (available.empty() ? std::string{"none"} : available)
           + ". Please install and configure the runtime before starting "
             "the server (gVisor: apt-get install runsc, then "
             "deploy/setup.sh registers it with dockerd; "
           + see_docs + ").";
  // dockerd looks a relative path up in its own PATH; an absolute one we
  // can check when the daemon shares our filesystem.
  if (local_fs && !found->path.empty() && found->path[0] == '/'
      && ::access(found->path.c_str(), X_OK) != 0)
    return "Docker runtime '" + name + "' is registered on Docker host '"
           + host + "' with path '" + found->path
           + "', which is not an executable file here (gVisor: apt-get "
             "install runsc; "
           + see_docs + ").";
  return std::nullopt;
}

std::string oci_runtime_hint(const std::string& name,
                             const std::string& docker_message) {
  if (name.empty())
    return {};
  auto& m = docker_message;
  if (contains(m, "network enabled in root network namespace"))
    return " (gVisor's own network stack cannot run on this host: register "
           "runsc with runtimeArgs [\"--platform=ptrace\", \"--network=host\"]"
           "; "
           + std::string{see_docs} + ")";
  if (contains(m, "nknown runtime") || contains(m, "OCI runtime")
      || contains(m, name.c_str()))
    return " (this server runs every sandbox under OCI runtime '" + name
           + "' ([secure_runtime]); " + see_docs + ")";
  return {};
}

bool is_gvisor(const node_config& cfg) {
  return cfg.secure_runtime.type == "gvisor";
}

std::shared_ptr<const std::string> gvisor_tmp_archive() {
  static const auto tar = std::make_shared<const std::string>(
    make_tar({{"tmp", 01777, true, {}}, {"tmp/.opensandbox", 0755, true, {}}}));
  return tar;
}

} // namespace osb::runtimes::docker
