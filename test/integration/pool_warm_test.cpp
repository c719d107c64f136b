// Warm pool members through the real server and Docker (docs/pools.md,
// "Members"): a claim takes an idle member (Running at once, the claim's
// env seen by a command), members are hidden from listings, a deleted pool
// leaves no container, and kill -9 in the middle of a refill leaks nothing;
// `status.allocated` and poolMax; a template the host cannot run is refused
// at the pool's create; `[pool] match_creates` serves a matching create.

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

TEST(PoolWarm, AllocatedCountsClaimsAndPoolMaxBoundsThem) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto body = pool_json("it-alloc", 1, 1);
  body.replace(body.find(R"("poolMax":10)"), 12, R"("poolMax":1)");
  ASSERT_EQ(srv.call("POST", "/v1/pools", body).status, 201);
  ASSERT_EQ(wait_available(srv, "it-alloc", 1), 1) << srv.read_log();
  auto r = srv.call("POST", "/v1/sandboxes",
                    R"({"extensions":{"poolRef":"it-alloc"},"timeout":600})");
  ASSERT_EQ(r.status, 202) << r.body;
  std::string id = r.json()["id"].GetString();
  auto st = srv.call("GET", "/v1/pools/it-alloc").json();
  EXPECT_EQ(st["status"]["allocated"].GetInt(), 1);
  EXPECT_EQ(st["status"]["total"].GetInt(), 1);
  // At poolMax: no member is made while the claimed sandbox exists.
  std::this_thread::sleep_for(2500ms);
  st = srv.call("GET", "/v1/pools/it-alloc").json();
  EXPECT_EQ(st["status"]["available"].GetInt(), 0);
  EXPECT_EQ(srv.num_containers(), 1);
  // Counted from the store after a restart.
  srv.kill(SIGKILL);
  ASSERT_TRUE(srv.start()) << srv.read_log();
  for (int i = 0; i < 50; ++i) {
    st = srv.call("GET", "/v1/pools/it-alloc").json();
    if (st["status"]["allocated"].GetInt() == 1)
      break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(st["status"]["allocated"].GetInt(), 1);
  // Deleted: room for a member again.
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(wait_available(srv, "it-alloc", 1), 1) << srv.read_log();
  EXPECT_EQ(srv.call("GET", "/v1/pools/it-alloc")
              .json()["status"]["allocated"]
              .GetInt(),
            0);
  EXPECT_EQ(srv.call("DELETE", "/v1/pools/it-alloc").status, 204);
  EXPECT_EQ(srv.wait_containers(0, 30s), 0) << srv.read_log();
}

TEST(PoolWarm, ATemplateTheHostCannotRunIsRefused) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  // A platform the Docker host does not run (the codec accepts arm64; the
  // runtime's admission refuses it on this amd64 host).
  auto r = srv.call(
    "POST", "/v1/pools",
    R"({"name":"it-bad","template":{"image":{"uri":"opensandbox/busybox:latest"},)"
    R"("entrypoint":["sleep","3600"],"platform":{"os":"linux","arch":"arm64"}},)"
    R"("capacitySpec":{"bufferMax":1,"bufferMin":1,"poolMax":2,"poolMin":0}})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("Platform linux/arm64 is not supported"),
            std::string::npos)
    << r.body;
  EXPECT_EQ(srv.call("GET", "/v1/pools/it-bad").status, 404);
  EXPECT_EQ(srv.num_containers(), 0);
}

TEST(PoolWarm, MatchCreatesServesAPlainCreateFromAPool) {
  server_process srv{"[pool]\nmatch_creates = true\n"};
  ASSERT_TRUE(srv.start()) << srv.read_log();
  ASSERT_EQ(srv.call("POST", "/v1/pools", pool_json("it-match", 1, 1)).status,
            201);
  ASSERT_EQ(wait_available(srv, "it-match", 1), 1) << srv.read_log();
  auto plain = [](const std::string& cpu) {
    return R"({"image":{"uri":"opensandbox/busybox:latest"},)"
           R"("entrypoint":["sleep","999"],"timeout":600,)"
           R"("env":{"FROM_TEMPLATE":"mine","OWN":"o"},)"
           R"("resourceLimits":{"cpu":")"
           + cpu + R"(","memory":"256Mi"}})";
  };
  auto r = srv.call("POST", "/v1/sandboxes", plain("500m"));
  ASSERT_EQ(r.status, 202) << r.body << srv.read_log();
  auto doc = r.json();
  std::string id = doc["id"].GetString();
  EXPECT_STREQ(doc["status"]["state"].GetString(), "Running") << r.body;
  std::string msg = doc["status"]["message"].GetString();
  EXPECT_NE(msg.find("Pool 'it-match' served it"), std::string::npos) << msg;
  auto g = srv.call("GET", "/v1/sandboxes/" + id).json();
  auto& ep = g["entrypoint"];
  ASSERT_TRUE(ep.IsArray());
  EXPECT_STREQ(ep[1].GetString(), "999");
  // Other limits: a cold create, no member taken.
  r = srv.call("POST", "/v1/sandboxes", plain("250m"));
  ASSERT_EQ(r.status, 202) << r.body;
  std::string cold = r.json()["id"].GetString();
  msg = r.json()["status"]["message"].GetString();
  EXPECT_EQ(msg.find("Pool"), std::string::npos) << msg;
  EXPECT_EQ(wait_available(srv, "it-match", 1), 1) << srv.read_log();
  EXPECT_EQ(srv.call("DELETE", "/v1/pools/it-match").status, 204);
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + cold).status, 204);
  EXPECT_EQ(srv.wait_containers(0, 30s), 0) << srv.read_log();
}
