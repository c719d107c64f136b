// Resource limits and platforms against the real server binary and Docker
// daemon: GPUs become device requests (and their absence a clear Failed
// reason on a host without GPUs), a platform the host cannot run is refused
// before the 202, the host's own platform is pinned.

#include <gtest/gtest.h>

#include "server_process.hpp"

using namespace std::chrono_literals;
using osb::test::server_process;
using osb::test::shell;

namespace {

std::string body(const std::string& extra) {
  return R"({"image":{"uri":"opensandbox/busybox:latest"},)"
         R"("entrypoint":["sleep","3600"],)"
         + extra + "}";
}

std::string daemon_arch() {
  auto arch = shell("docker info -f '{{.Architecture}}'");
  if (arch == "x86_64\n")
    return "amd64";
  if (arch == "aarch64\n")
    return "arm64";
  return arch;
}

} // namespace

TEST(Resources, PlatformIsCheckedAgainstTheDockerHost) {
  auto native = daemon_arch();
  ASSERT_TRUE(native == "amd64" || native == "arm64") << native;
  auto foreign = native == "amd64" ? "arm64" : "amd64";
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto r = srv.call("POST", "/v1/sandboxes",
                    body(R"("resourceLimits":{},"platform":{"os":"linux",)"
                         R"("arch":")"
                         + std::string{foreign} + R"("})"));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("SANDBOX::INVALID_PARAMETER"), std::string::npos);
  EXPECT_NE(r.body.find("Platform linux/" + std::string{foreign}
                        + " is not supported"),
            std::string::npos)
    << r.body;
  EXPECT_EQ(srv.num_containers(), 0);
  r = srv.call("POST", "/v1/sandboxes",
               body(R"("resourceLimits":{},"platform":{"os":"Linux",)"
                    R"("arch":")"
                    + native + R"("})"));
  ASSERT_EQ(r.status, 202) << r.body;
  auto doc = r.json();
  std::string id = doc["id"].GetString();
  EXPECT_STREQ(doc["platform"]["arch"].GetString(), native.c_str());
  ASSERT_EQ(srv.wait_state(id, "Running"), "Running") << srv.read_log();
  EXPECT_EQ(shell("docker inspect -f "
                  "'{{index .Config.Labels \"opensandbox.io/platform-arch\"}}' "
                  "sandbox-"
                  + id),
            native + "\n");
}

TEST(Resources, GpuBecomesADeviceRequest) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto r = srv.call("POST", "/v1/sandboxes",
                    body(R"("resourceLimits":{"gpu":"1","cpu":"250m"})"));
  ASSERT_EQ(r.status, 202) << r.body;
  std::string id = r.json()["id"].GetString();
  auto has_gpus = !shell("docker info -f '{{json .Runtimes}}' | grep -o nvidia")
                     .empty();
  if (has_gpus) {
    ASSERT_EQ(srv.wait_state(id, "Running", 60s), "Running");
    EXPECT_EQ(shell("docker inspect -f "
                    "'{{(index .HostConfig.DeviceRequests 0).Count}}' "
                    "sandbox-"
                    + id),
              "1\n");
    return;
  }
  // No GPU runtime here: Docker refuses to start the container with the
  // device request, and the sandbox says so.
  ASSERT_EQ(srv.wait_state(id, "Failed", 60s), "Failed") << srv.read_log();
  auto doc = srv.call("GET", "/v1/sandboxes/" + id).json();
  EXPECT_STREQ(doc["status"]["reason"].GetString(), "GPU_UNAVAILABLE");
  std::string msg = doc["status"]["message"].GetString();
  EXPECT_NE(msg.find("could not select device driver"), std::string::npos)
    << msg;
  EXPECT_NE(msg.find("[[gpu]]"), std::string::npos) << msg;
  EXPECT_EQ(srv.wait_containers(0), 0);
}
