// Warm pool members through the real server and Docker (docs/pools.md,
// "Members"): a claim takes an idle member (Running at once, the claim's
// env seen by a command), members are hidden from listings, a deleted pool
// leaves no container, and kill -9 in the middle of a refill leaks nothing.

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <string>
#include <thread>

#include "server_process.hpp"

using namespace std::chrono_literals;
using osb::test::http_call;
using osb::test::server_process;

namespace {

std::string pool_json(const std::string& name, int min, int max) {
  return R"({"name":")" + name
         + R"(","template":{"image":{"uri":"opensandbox/busybox:latest"},)"
           R"("entrypoint":["sleep","3600"],"env":{"FROM_TEMPLATE":"t"},)"
           R"("resourceLimits":{"cpu":"500m","memory":"256Mi"}},)"
           R"("capacitySpec":{"bufferMax":)"
         + std::to_string(max) + R"(,"bufferMin":)" + std::to_string(min)
         + R"(,"poolMax":10,"poolMin":0}})";
}

/// Polls the pool until `available` idle members (or the timeout).
int wait_available(server_process& srv, const std::string& name, int n,
                   std::chrono::seconds timeout = 60s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int got = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = srv.call("GET", "/v1/pools/" + name);
    if (r.status == 200) {
      got = r.json()["status"]["available"].GetInt();
      if (got == n)
        return got;
    }
    std::this_thread::sleep_for(100ms);
  }
  return got;
}

} // namespace

TEST(PoolWarm, ClaimIsRunningAtOnceWithTheClaimsEnv) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  ASSERT_EQ(srv.call("POST", "/v1/pools", pool_json("it-warm", 1, 1)).status,
            201);
  ASSERT_EQ(wait_available(srv, "it-warm", 1), 1) << srv.read_log();
  EXPECT_EQ(srv.num_containers(), 1);
  // Members are nobody's sandboxes yet.
  EXPECT_EQ(srv.call("GET", "/v1/sandboxes").json()["items"].Size(), 0u);
  auto t0 = std::chrono::steady_clock::now();
  auto r = srv.call("POST", "/v1/sandboxes",
                    R"({"extensions":{"poolRef":"it-warm"},"timeout":600,)"
                    R"("env":{"FROM_CLAIM":"c"},"metadata":{"run":"7"}})");
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - t0)
              .count();
  ASSERT_EQ(r.status, 202) << r.body << srv.read_log();
  auto doc = r.json();
  std::string id = doc["id"].GetString();
  EXPECT_STREQ(doc["status"]["state"].GetString(), "Running") << r.body;
  EXPECT_LT(ms, 150) << "a warm claim took " << ms << " ms";
  auto g = srv.call("GET", "/v1/sandboxes/" + id).json();
  std::string msg = g["status"]["message"].GetString();
  EXPECT_EQ(msg.find("no idle member"), std::string::npos) << msg;
  EXPECT_STREQ(g["metadata"]["run"].GetString(), "7");
  EXPECT_EQ(srv.call("GET", "/v1/sandboxes").json()["items"].Size(), 1u);
  // A command sees the claim's env and the template's.
  auto ep = srv.call("GET", "/v1/sandboxes/" + id + "/endpoints/44772").json();
  std::string raw = ep["endpoint"].GetString();
  std::string token = ep["headers"]["X-EXECD-ACCESS-TOKEN"].GetString();
  auto colon = raw.find(':');
  auto slash = raw.find('/', colon);
  auto port = static_cast<uint16_t>(
    std::stoi(raw.substr(colon + 1, slash - colon - 1)));
  auto prefix = slash == std::string::npos ? std::string{} : raw.substr(slash);
  auto out = http_call(port, "POST", prefix + "/command",
                       R"({"command":"env"})",
                       {{"X-EXECD-ACCESS-TOKEN", token}});
  EXPECT_EQ(out.status, 200) << out.body;
  EXPECT_NE(out.body.find("FROM_CLAIM=c"), std::string::npos) << out.body;
  EXPECT_NE(out.body.find("FROM_TEMPLATE=t"), std::string::npos) << out.body;
  // The pool refills behind the claim.
  EXPECT_EQ(wait_available(srv, "it-warm", 1), 1) << srv.read_log();
  // Deleting the pool removes its idle member, not the claimed sandbox.
  EXPECT_EQ(srv.call("DELETE", "/v1/pools/it-warm").status, 204);
  EXPECT_EQ(srv.wait_containers(1, 20s), 1) << srv.read_log();
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(srv.wait_containers(0, 20s), 0);
}

TEST(PoolWarm, Kill9InTheMiddleOfARefillLeaksNothing) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  ASSERT_EQ(srv.call("POST", "/v1/pools", pool_json("it-refill", 3, 3)).status,
            201);
  // Kill once the first member's container exists, the refill under way.
  for (int i = 0; i < 200 && srv.num_containers() == 0; ++i)
    std::this_thread::sleep_for(25ms);
  srv.kill(SIGKILL);
  ASSERT_TRUE(srv.start()) << srv.read_log();
  ASSERT_EQ(wait_available(srv, "it-refill", 3), 3) << srv.read_log();
  // Exactly the members: nothing of the interrupted refill is left over.
  EXPECT_EQ(srv.wait_containers(3, 20s), 3) << srv.read_log();
  EXPECT_EQ(srv.call("GET", "/v1/sandboxes").json()["items"].Size(), 0u);
  EXPECT_EQ(srv.call("DELETE", "/v1/pools/it-refill").status, 204);
  EXPECT_EQ(srv.wait_containers(0, 30s), 0) << srv.read_log();
}
