// Integration test of the Docker side of pool members (docs/pools.md)
// against the real daemon: the Docker runtime provisions a member whose
// execd holds the entrypoint back (`--await-claim`), a claim posted to
// execd's `POST /bootstrap/claim` starts it with the claim's environment,
// and removal leaves no container. The POOL actor does not make members yet
// (docs/pools.md "Status"); this covers the runtime it will use. Needs the
// image opensandbox/busybox:latest.

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "runtimes/docker/docker_engine.hpp"
#include "runtimes/docker/docker_runtime.hpp"
#include "runtimes/docker/labels.hpp"
#include "runtimes/docker/specs.hpp"

using namespace osb;
using namespace osb::runtimes;
using namespace osb::runtimes::docker;
using namespace std::chrono_literals;

namespace {

constexpr auto wait_limit = 60s;

/// Turns an asynchronous call into a blocking one (tests only).
template <class T, class F>
expected<T> await_result(F&& start) {
  auto promise = std::make_shared<std::promise<expected<T>>>();
  auto future = promise->get_future();
  std::forward<F>(start)(
    [promise](expected<T> x) { promise->set_value(std::move(x)); });
  if (future.wait_for(wait_limit) != std::future_status::ready)
    return failure{failure_kind::timeout, "test gave up waiting"};
  return future.get();
}

provision_result await_provision(docker_runtime& rt,
                                 const sandbox_instance& x) {
  auto promise = std::make_shared<std::promise<provision_result>>();
  auto future = promise->get_future();
  rt.provision(x, provision_options{}, [promise](provision_result r) {
    promise->set_value(std::move(r));
  });
  if (future.wait_for(wait_limit) != std::future_status::ready) {
    provision_result r;
    r.status = provision_result::outcome::failed;
    r.message = "test gave up waiting";
    return r;
  }
  return future.get();
}

/// Runs a shell command; returns its exit code and fills `out` with stdout.
int sh(const std::string& cmd, std::string* out = nullptr) {
  std::string text;
  auto pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr)
    return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0)
    text.append(buf, n);
  auto status = pclose(pipe);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  if (out != nullptr)
    *out = std::move(text);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// A port the kernel just handed out (free for the test's few seconds).
uint16_t free_port() {
  auto fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string random_id() {
  std::random_device rd;
  std::mt19937_64 gen{rd()};
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(gen()));
  return std::string{"itpm-"} + buf;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(
           std::chrono::steady_clock::now() - t0)
    .count();
}

class PoolMembers : public testing::Test {
protected:
  void SetUp() override {
    engine_ = make_docker_engine("unix:///var/run/docker.sock", 30s, 2);
    auto cfg = std::make_shared<node_config>();
    // The server injects execd from next to its own binary; so does this.
    std::string server = OSB_SERVER_BINARY;
    cfg->runtime.execd_inject = "bind";
    cfg->runtime.execd_path
      = server.substr(0, server.rfind('/')) + "/opensandbox-execd";
    docker_options opts;
    opts.cfg = cfg;
    opts.node = "it-pool-members";
    opts.incarnation = "it-inc";
    rt_ = std::make_shared<docker_runtime>(engine_, std::move(opts));
    x_.id = random_id();
    x_.node = "it-pool-members";
    x_.runtime_host = "default";
    x_.member_of = "it-pool";
    x_.access_token = "member-token";
    x_.spec.image = "opensandbox/busybox:latest";
    x_.spec.entrypoint
      = {"sh", "-c", "echo \"$GREETING\" > /tmp/claimed; exec sleep 300"};
    x_.ports = port_map{free_port(), free_port(), 0};
  }

  void TearDown() override {
    await_result<unit>([&](auto cb) { rt_->remove(x_, true, cb); });
    sh("docker rm -f " + container_name(x_.id) + " >/dev/null 2>&1");
    engine_->shutdown();
  }

  bool container_exists() {
    std::string out;
    sh("docker ps -aq --filter name=^" + container_name(x_.id) + "$", &out);
    return !out.empty();
  }

  engine_ptr engine_;
  std::shared_ptr<docker_runtime> rt_;
  sandbox_instance x_;
};

TEST_F(PoolMembers, MemberWaitsForItsClaimThenRunsWithTheClaimsEnv) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = await_provision(*rt_, x_);
  auto provision_ms = ms_since(t0);
  ASSERT_EQ(r.status, provision_result::outcome::running) << r.message;
  auto name = container_name(x_.id);
  std::string label;
  sh("docker inspect -f '{{index .Config.Labels \"" + std::string{pool_label}
       + "\"}}' " + name,
     &label);
  EXPECT_EQ(label, "it-pool");
  // Provisioning ended once execd answered; the entrypoint is held back
  // (the container runs: the file's absence is not a failed exec).
  ASSERT_EQ(sh("docker exec " + name + " true"), 0);
  EXPECT_NE(sh("docker exec " + name + " test -e /tmp/claimed"), 0);

  claim_request c;
  c.entrypoint = x_.spec.entrypoint;
  c.env = {{"GREETING", "hello-claim"}};
  t0 = std::chrono::steady_clock::now();
  auto claimed = await_result<unit>([&](auto cb) { rt_->claim(x_, c, cb); });
  auto claim_ms = ms_since(t0);
  ASSERT_TRUE(claimed) << claimed.error().message;
  std::string out;
  for (int i = 0; i < 100; ++i) {
    if (sh("docker exec " + name + " cat /tmp/claimed", &out) == 0)
      break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(out, "hello-claim");
  std::printf("member provisioned in %.0f ms, claim answered in %.1f ms\n",
              provision_ms, claim_ms);

  // The same claim again succeeds (a restart may resend it); another one
  // is a conflict.
  auto again = await_result<unit>([&](auto cb) { rt_->claim(x_, c, cb); });
  EXPECT_TRUE(again) << again.error().message;
  auto other = c;
  other.env["GREETING"] = "someone-else";
  auto refused = await_result<unit>([&](auto cb) { rt_->claim(x_, other, cb); });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, failure_kind::conflict);

  auto removed
    = await_result<unit>([&](auto cb) { rt_->remove(x_, true, cb); });
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_FALSE(container_exists());
}

TEST_F(PoolMembers, ClaimWithTheWrongTokenIsRefusedAndStartsNothing) {
  auto r = await_provision(*rt_, x_);
  ASSERT_EQ(r.status, provision_result::outcome::running) << r.message;
  auto forged = x_;
  forged.access_token = "not-the-token";
  claim_request c;
  c.entrypoint = x_.spec.entrypoint;
  c.env = {{"GREETING", "forged"}};
  auto refused
    = await_result<unit>([&](auto cb) { rt_->claim(forged, c, cb); });
  EXPECT_FALSE(refused);
  std::this_thread::sleep_for(200ms);
  ASSERT_EQ(sh("docker exec " + container_name(x_.id) + " true"), 0);
  EXPECT_NE(sh("docker exec " + container_name(x_.id)
                 + " test -e /tmp/claimed"),
            0);
}

} // namespace
