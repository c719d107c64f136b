#pragma once

// Test support for the Kubernetes runtime's integration tests: a server
// configured against the API-server emulator (k8s_emulator.hpp), and what
// the emulator's --docker mode leaves in Docker.

#include "cluster_support.hpp"
#include "k8s_emulator.hpp"
#include "server_process.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace osb::test {

/// A server whose runtime is the emulator's API server.
/// `extra` goes in [kubernetes] (and may open tables after it),
/// `runtime_extra` in [runtime].
inline std::string kube_config(server_process& srv,
                               const std::string& kubeconfig,
                               const std::string& extra = {},
                               const std::string& runtime_extra = {}) {
  return "[server]\nhost = \"127.0.0.1\"\nport = "
         + std::to_string(srv.port())
         + "\napi_key = \"test-key\"\n[log]\nlevel = \"DEBUG\"\n"
           "[runtime]\ntype = \"kubernetes\"\n"
         + runtime_extra + "[kubernetes]\nkubeconfig_path = \""
         + kubeconfig
         + "\"\nsandbox_create_timeout_seconds = 10\n" + extra
         + "[store]\npath = \"" + srv.store_path()
         + "\"\n[cluster]\nnode_name = \"" + srv.node() + "\"\n";
}

/// Two replicas "it-<run>-a" and "it-<run>-b" against the emulator's API
/// server, joined as one cluster over plain TCP, with short leases (3 s,
/// renewed every second); `extra` and `runtime_extra` as in kube_config.
/// Empty (with the test failed and the logs said) when they did not start
/// or join within 20 s.
inline std::vector<std::unique_ptr<server_process>>
start_two_replicas(const std::string& kubeconfig,
                   const std::string& extra = {},
                   const std::string& runtime_extra = {}) {
  auto run = random_suffix();
  std::vector<uint16_t> ports{free_port(), free_port()};
  std::vector<std::unique_ptr<server_process>> rs;
  for (size_t i = 0; i < 2; ++i) {
    rs.push_back(std::make_unique<server_process>(
      "", "it-" + run + "-" + std::string(1, static_cast<char>('a' + i))));
    rs[i]->use_config(
      kube_config(*rs[i], kubeconfig,
                  "lease_duration_seconds = 3\nlease_renew_seconds = 1\n"
                    + extra,
                  runtime_extra)
      + "plaintext = true\n" + listen_keys(ports[i], {ports[1 - i]}));
  }
  for (auto& r : rs)
    if (!r->start()) {
      ADD_FAILURE() << "replica " << r->node() << " did not start: "
                    << r->read_log();
      return {};
    }
  auto& a = *rs[0];
  auto& b = *rs[1];
  for (auto& r : rs)
    if (!eventually(
          [&] {
            return has_member(*r, a.node(), &a == r.get() ? "self" : "up")
                   && has_member(*r, b.node(), &b == r.get() ? "self" : "up");
          },
          std::chrono::seconds(20))) {
      ADD_FAILURE() << "replica " << r->node() << " did not join: "
                    << r->read_log();
      return {};
    }
  return rs;
}

/// True when the Docker daemon answers.
inline bool docker_available() {
  return std::system("docker version >/dev/null 2>&1") == 0;
}

/// The output of `cmd` (stdout), trimmed.
inline std::string output_of(const std::string& cmd) {
  std::string out;
  if (auto* f = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0)
      out.append(buf, n);
    ::pclose(f);
  }
  while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back())))
    out.pop_back();
  return out;
}

/// The Docker containers and volumes the emulator made for pod `name`.
inline std::string pod_leftovers(const std::string& name) {
  auto filter = " --filter label=io.opensandbox.k8s-emulator.pod=default/"
                + name;
  return output_of("docker ps -aq" + filter) + output_of("docker volume ls -q"
                                                         + filter);
}

} // namespace osb::test

/// Skips without node or docker; fails without the execd image.
#define OSB_REQUIRE_REAL_PODS()                                                \
  do {                                                                         \
    OSB_REQUIRE_NODE();                                                        \
    if (!::osb::test::docker_available())                                      \
      GTEST_SKIP() << "docker is not available: the emulator's --docker "      \
                      "mode runs pods as Docker containers";                   \
    ASSERT_EQ(std::system("docker image inspect opensandbox/execd:latest "     \
                          ">/dev/null 2>&1"),                                  \
              0)                                                               \
      << "the image opensandbox/execd:latest is missing: run "                 \
         "deploy/setup.sh --tests (or deploy/build-execd-image.sh)";           \
  } while (false)
