// Pools over HTTP against the real server binary and Docker
// (docs/pools.md): the seed's pool API, claims with `extensions.poolRef`
// (served by a cold create of the template: these pools keep no member;
// warm members are in pool_warm_test.cpp), bad input, and pool definitions
// that survive kill -9.

#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "server_process.hpp"

using osb::test::server_process;
using osb::test::shell;

namespace {

const std::string pool_json
  = R"({"name":"it-pool","template":{"image":{"uri":"opensandbox/busybox:latest"},)"
    R"("entrypoint":["sleep","3600"],"env":{"FROM_TEMPLATE":"t","SHARED":"t"},)"
    R"("resourceLimits":{"cpu":"500m","memory":"256Mi"},)"
    R"("metadata":{"team":"infra"}},)"
    R"("capacitySpec":{"bufferMax":0,"bufferMin":0,"poolMax":5,"poolMin":0}})";

std::string env_of(const std::string& id) {
  return shell("docker inspect -f '{{json .Config.Env}}' sandbox-" + id
               + " 2>/dev/null");
}

} // namespace

TEST(Pools, ApiAndClaimsOverHttp) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto r = srv.call("POST", "/v1/pools", pool_json);
  ASSERT_EQ(r.status, 201) << r.body;
  auto doc = r.json();
  EXPECT_STREQ(doc["name"].GetString(), "it-pool");
  EXPECT_EQ(doc["capacitySpec"]["bufferMax"].GetInt(), 0);
  EXPECT_EQ(doc["status"]["total"].GetInt(), 0);
  EXPECT_EQ(std::string{doc["status"]["revision"].GetString()}.size(), 16u);
  std::string created_at = doc["createdAt"].GetString();
  // The same name again: 409 with the seed's code.
  r = srv.call("POST", "/v1/pools", pool_json);
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_NE(r.body.find("POOL_ALREADY_EXISTS"), std::string::npos);
  // A retry with the same X-Request-ID gets the first answer, not a 409.
  auto body2 = pool_json;
  body2.replace(body2.find("it-pool"), 7, "it-pool2");
  auto a = srv.call("POST", "/v1/pools", body2, {{"X-Request-ID", "rq-1"}});
  auto b = srv.call("POST", "/v1/pools", body2, {{"X-Request-ID", "rq-1"}});
  EXPECT_EQ(a.status, 201) << a.body;
  EXPECT_EQ(b.status, 201) << b.body;
  EXPECT_EQ(a.body, b.body);
  r = srv.call("GET", "/v1/pools");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["items"].Size(), 2u);
  r = srv.call("GET", "/v1/pools/it-pool");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["createdAt"].GetString(), created_at);
  // Capacity updates; bad ones are refused.
  // (bufferMin and poolMin stay 0: this pool keeps no member, so that the
  // claim below is cold.)
  r = srv.call("PUT", "/v1/pools/it-pool",
               R"({"capacitySpec":{"bufferMax":4,"bufferMin":0,"poolMax":8,"poolMin":0}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["capacitySpec"]["poolMax"].GetInt(), 8);
  r = srv.call("PUT", "/v1/pools/it-pool",
               R"({"capacitySpec":{"bufferMax":1,"bufferMin":2,"poolMax":8,"poolMin":1}})");
  EXPECT_EQ(r.status, 400) << r.body;
  r = srv.call("PUT", "/v1/pools/it-pool",
               R"({"capacitySpec":{"bufferMax":1,"bufferMin":-2,"poolMax":8,"poolMin":1}})");
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(srv.call("PUT", "/v1/pools/nope",
                     R"({"capacitySpec":{"bufferMax":1,"bufferMin":0,"poolMax":8,"poolMin":0}})")
              .status,
            404);
  // A claim of an unknown pool: 404 with the seed's code, nothing made.
  r = srv.call("POST", "/v1/sandboxes", R"({"extensions":{"poolRef":"nope"}})");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_NE(r.body.find("POOL_NOT_FOUND"), std::string::npos);
  // Per-claim volumes and snapshotId are refused.
  r = srv.call("POST", "/v1/sandboxes",
               R"({"extensions":{"poolRef":"it-pool"},"volumes":[{"name":"v",)"
               R"("pvc":{"claimName":"it-v"},"mountPath":"/mnt"}]})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("poolRef"), std::string::npos) << r.body;
  r = srv.call("POST", "/v1/sandboxes",
               R"({"extensions":{"poolRef":"it-pool"},"snapshotId":"s"})");
  EXPECT_EQ(r.status, 422) << r.body;
  // A claim: the template runs with the claim's env, metadata and timeout.
  r = srv.call("POST", "/v1/sandboxes",
               R"({"extensions":{"poolRef":"it-pool"},"timeout":600,)"
               R"("env":{"SHARED":"c","FROM_CLAIM":"c"},"metadata":{"run":"7"}})");
  ASSERT_EQ(r.status, 202) << r.body << srv.read_log();
  std::string id = r.json()["id"].GetString();
  ASSERT_EQ(srv.wait_state(id, "Running"), "Running") << srv.read_log();
  auto g = srv.call("GET", "/v1/sandboxes/" + id).json();
  std::string msg = g["status"]["message"].GetString();
  EXPECT_NE(msg.find("Pool 'it-pool' had no idle member"), std::string::npos)
    << msg;
  EXPECT_STREQ(g["metadata"]["team"].GetString(), "infra");
  EXPECT_STREQ(g["metadata"]["run"].GetString(), "7");
  EXPECT_STREQ(g["image"]["uri"].GetString(), "opensandbox/busybox:latest");
  auto env = env_of(id);
  EXPECT_NE(env.find("FROM_TEMPLATE=t"), std::string::npos) << env;
  EXPECT_NE(env.find("SHARED=c"), std::string::npos) << env;
  EXPECT_NE(env.find("FROM_CLAIM=c"), std::string::npos) << env;
  // Deleting the pool leaves its claimed sandbox alone.
  EXPECT_EQ(srv.call("DELETE", "/v1/pools/it-pool").status, 204);
  EXPECT_EQ(srv.call("GET", "/v1/pools/it-pool").status, 404);
  EXPECT_EQ(srv.call("DELETE", "/v1/pools/it-pool").status, 404);
  r = srv.call("POST", "/v1/sandboxes", R"({"extensions":{"poolRef":"it-pool"}})");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(srv.call("GET", "/v1/sandboxes/" + id).status, 200);
  // The name is free again.
  EXPECT_EQ(srv.call("POST", "/v1/pools", pool_json).status, 201);
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(srv.wait_containers(0), 0);
}

TEST(Pools, DefinitionsSurviveKill9) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto r = srv.call("POST", "/v1/pools", pool_json);
  ASSERT_EQ(r.status, 201) << r.body;
  std::string created_at = r.json()["createdAt"].GetString();
  auto gone = pool_json;
  gone.replace(gone.find("it-pool"), 7, "it-gone");
  ASSERT_EQ(srv.call("POST", "/v1/pools", gone).status, 201);
  ASSERT_EQ(srv.call("DELETE", "/v1/pools/it-gone").status, 204);
  ASSERT_EQ(srv.call("PUT", "/v1/pools/it-pool",
                     R"({"capacitySpec":{"bufferMax":3,"bufferMin":0,"poolMax":6,"poolMin":0}})")
              .status,
            200);
  srv.kill(SIGKILL);
  ASSERT_TRUE(srv.start()) << srv.read_log();
  r = srv.call("GET", "/v1/pools/it-pool");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["createdAt"].GetString(), created_at);
  EXPECT_EQ(r.json()["capacitySpec"]["poolMax"].GetInt(), 6);
  EXPECT_EQ(srv.call("GET", "/v1/pools/it-gone").status, 404);
  EXPECT_EQ(srv.call("GET", "/v1/pools").json()["items"].Size(), 1u);
  EXPECT_EQ(srv.num_containers(), 0);
}
