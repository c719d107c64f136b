// Pools on the Kubernetes runtime (docs/pools.md, "Pools on Kubernetes"):
// the real server against the API-server emulator in --docker mode, so that
// member pods really run execd --await-claim. A pool's members become
// Ready pods, a claim is Running in its 202 and a command through execd
// sees the claim's env, an empty pool falls back to a cold create, kill -9
// and restart adopt the members (with the store kept; with it emptied the
// claimed pod comes back as a sandbox and the unclaimed ones as members of
// a pool the replica no longer knows, which it removes), a deleted pool
// removes its idle member pods, and nothing is left in the emulator or in
// Docker.

#include "k8s_emulator.hpp"
#include "kube_support.hpp"
#include "server_process.hpp"

#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>

using namespace osb::test;
using namespace std::chrono_literals;

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

/// Polls the pool until `available` is `n` (or the timeout).
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

/// The emulator's pods: name → (pool label, member annotation).
struct pod_row {
  std::string pool;
  std::string member;
  std::string expires;
  std::string metadata;
};

std::map<std::string, pod_row> pods_of(const k8s_emulator& emu) {
  auto r = emu.admin_call("GET", "/_emulator/state?resource=pods");
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  std::map<std::string, pod_row> out;
  if (!doc.IsObject() || !doc.HasMember("objects"))
    return out;
  auto str = [](const rapidjson::Value& obj, const char* key) {
    return obj.IsObject() && obj.HasMember(key) && obj[key].IsString()
             ? std::string{obj[key].GetString()}
             : std::string{};
  };
  for (auto& p : doc["objects"]["pods"].GetArray()) {
    auto& meta = p["metadata"];
    pod_row row;
    if (meta.HasMember("labels"))
      row.pool = str(meta["labels"], "opensandbox.io/pool");
    if (meta.HasMember("annotations")) {
      auto& a = meta["annotations"];
      row.member = str(a, "opensandbox.io/pool-member");
      row.expires = str(a, "opensandbox.io/expires-at");
      row.metadata = str(a, "opensandbox.io/metadata");
    }
    out[meta["name"].GetString()] = row;
  }
  return out;
}

/// Polls until the emulator holds `n` pods; returns how many it holds.
size_t wait_pods(const k8s_emulator& emu, size_t n,
                 std::chrono::seconds timeout = 30s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto got = pods_of(emu).size();
  while (got != n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
    got = pods_of(emu).size();
  }
  return got;
}

/// Runs `command` through execd at the sandbox's own endpoint (the pod IP).
http_reply run(server_process& srv, const std::string& id,
                           const std::string& command) {
  auto ep = srv.call("GET", "/v1/sandboxes/" + id + "/endpoints/44772");
  EXPECT_EQ(ep.status, 200) << ep.body;
  auto doc = ep.json();
  std::string endpoint = doc["endpoint"].GetString();
  std::string token = doc["headers"]["X-EXECD-ACCESS-TOKEN"].GetString();
  auto colon = endpoint.find(':');
  auto slash = endpoint.find('/', colon);
  auto port = static_cast<uint16_t>(
    std::stoi(endpoint.substr(colon + 1, slash - colon - 1)));
  auto prefix = slash == std::string::npos ? "" : endpoint.substr(slash);
  return http_call_at(endpoint.substr(0, colon), port, "POST",
                      prefix + "/command",
                      R"({"command":")" + command + R"("})",
                      {{"X-EXECD-ACCESS-TOKEN", token}});
}

} // namespace

TEST(KubernetesPools, MemberPodsAreClaimedAdoptedAndRemovedWithNothingLeft) {
  OSB_REQUIRE_REAL_PODS();
  k8s_emulator emu{{"--no-events", "--docker"}};
  ASSERT_TRUE(emu.ok()) << emu.error();
  server_process srv;
  srv.use_config(kube_config(
    srv, emu.kubeconfig, {}, "execd_image = \"opensandbox/execd:latest\"\n"));
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  // Every pod seen, for the leftover check at the end.
  std::set<std::string> seen;
  auto note = [&] {
    for (auto& [name, row] : pods_of(emu))
      seen.insert(name);
  };

  // Members: Ready pods held back in execd, hidden from listings.
  ASSERT_EQ(srv.call("POST", "/v1/pools", pool_json("it-kp", 2, 2)).status,
            201);
  ASSERT_EQ(wait_available(srv, "it-kp", 2), 2) << srv.read_log();
  auto pods = pods_of(emu);
  ASSERT_EQ(pods.size(), 2u);
  for (auto& [name, row] : pods) {
    EXPECT_EQ(row.pool, "it-kp") << name;
    EXPECT_EQ(row.member, "idle") << name;
  }
  note();
  EXPECT_EQ(srv.call("GET", "/v1/sandboxes").json()["items"].Size(), 0u);

  // A claim: Running in its 202; a command sees the claim's env.
  auto r = srv.call("POST", "/v1/sandboxes",
                    R"({"extensions":{"poolRef":"it-kp"},"timeout":600,)"
                    R"("env":{"FROM_CLAIM":"c"},"metadata":{"run":"7"}})");
  ASSERT_EQ(r.status, 202) << r.body << srv.read_log();
  std::string id = r.json()["id"].GetString();
  EXPECT_STREQ(r.json()["status"]["state"].GetString(), "Running") << r.body;
  auto out = run(srv, id, "env");
  EXPECT_EQ(out.status, 200) << out.body;
  EXPECT_NE(out.body.find("FROM_CLAIM=c"), std::string::npos) << out.body;
  EXPECT_NE(out.body.find("FROM_TEMPLATE=t"), std::string::npos) << out.body;
  // The entrypoint runs (PID 1 is the template's `sleep 3600` now).
  out = run(srv, id, "cat /proc/1/cmdline | tr '\\\\0' ' '");
  EXPECT_NE(out.body.find("sleep 3600"), std::string::npos) << out.body;
  // The pod says it is claimed, with the claim's expiry and metadata.
  pod_row claimed;
  for (int i = 0; i < 100 && claimed.metadata != R"({"run":"7"})"; ++i) {
    claimed = pods_of(emu)["sandbox-" + id];
    if (claimed.metadata != R"({"run":"7"})")
      std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(claimed.member, "claimed");
  EXPECT_EQ(claimed.metadata, R"({"run":"7"})");
  EXPECT_NE(claimed.expires, "");

  // An empty pool: a cold create of its template, said in the message.
  ASSERT_EQ(srv.call("POST", "/v1/pools", pool_json("it-kp-empty", 0, 0))
              .status,
            201);
  r = srv.call("POST", "/v1/sandboxes",
               R"({"extensions":{"poolRef":"it-kp-empty"},"timeout":600})");
  ASSERT_EQ(r.status, 202) << r.body;
  std::string cold = r.json()["id"].GetString();
  EXPECT_EQ(srv.wait_state(cold, "Running", 30s), "Running")
    << srv.read_log();
  std::string msg
    = srv.call("GET", "/v1/sandboxes/" + cold).json()["status"]["message"]
        .GetString();
  EXPECT_NE(msg.find("no idle member"), std::string::npos) << msg;

  // The pool refills behind the claim.
  ASSERT_EQ(wait_available(srv, "it-kp", 2), 2) << srv.read_log();
  note();

  // kill -9, store kept: the idle members are idle again, the claimed one
  // a sandbox.
  srv.kill(SIGKILL);
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  EXPECT_EQ(wait_available(srv, "it-kp", 2), 2) << srv.read_log();
  EXPECT_EQ(srv.wait_state(id, "Running", 10s), "Running");
  EXPECT_EQ(pods_of(emu).size(), 4u);
  EXPECT_EQ(srv.call("GET", "/v1/pools/it-kp")
              .json()["status"]["allocated"]
              .GetInt(),
            1);

  // A deleted pool removes its idle member pods; claimed sandboxes stay.
  ASSERT_EQ(srv.call("POST", "/v1/pools", pool_json("it-kp-del", 1, 1))
              .status,
            201);
  ASSERT_EQ(wait_available(srv, "it-kp-del", 1), 1) << srv.read_log();
  note();
  EXPECT_EQ(pods_of(emu).size(), 5u);
  EXPECT_EQ(srv.call("DELETE", "/v1/pools/it-kp-del").status, 204);
  EXPECT_EQ(wait_pods(emu, 4), 4u);

  // kill -9 with the store emptied: the pods' labels and annotations bring
  // the claimed one back as a sandbox (with its claim's metadata and
  // expiry) and the unclaimed ones as members, never as sandboxes; their
  // pool's definition went with the store, so they are removed.
  auto before = srv.call("GET", "/v1/sandboxes/" + id).json();
  std::string expires = before["expiresAt"].GetString();
  srv.kill(SIGKILL);
  for (auto suffix : {"", "-wal", "-shm"})
    std::filesystem::remove(srv.store_path() + suffix);
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  auto got = srv.call("GET", "/v1/sandboxes/" + id);
  ASSERT_EQ(got.status, 200) << got.body << srv.read_log();
  EXPECT_STREQ(got.json()["status"]["state"].GetString(), "Running");
  EXPECT_STREQ(got.json()["metadata"]["run"].GetString(), "7");
  EXPECT_EQ(std::string{got.json()["expiresAt"].GetString()}, expires);
  auto listed = srv.call("GET", "/v1/sandboxes").json();
  EXPECT_EQ(listed["items"].Size(), 2u) << "the claimed and the cold one";
  EXPECT_EQ(wait_pods(emu, 2), 2u) << srv.read_log();
  auto log = srv.read_log();
  EXPECT_NE(log.find("supervisor adopts a sandbox"), std::string::npos);
  EXPECT_NE(log.find("pool member of it-kp removed: pool deleted"),
            std::string::npos)
    << log;
  out = run(srv, id, "echo $FROM_CLAIM");
  EXPECT_NE(out.body.find("c"), std::string::npos) << out.body;

  // Nothing is left: no pod, no container or volume of any pod seen.
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + cold).status, 204);
  EXPECT_EQ(wait_pods(emu, 0), 0u);
  note();
  for (auto& name : seen) {
    auto left = pod_leftovers(name);
    for (int i = 0; i < 100 && !left.empty(); ++i) {
      std::this_thread::sleep_for(50ms);
      left = pod_leftovers(name);
    }
    EXPECT_EQ(left, "") << "containers or volumes of " << name << " remain";
  }
}

TEST(KubernetesPools, ATemplateTheRuntimeRefusesIsRefusedAtThePoolsCreate) {
  OSB_REQUIRE_NODE();
  k8s_emulator emu{{"--no-events"}};
  ASSERT_TRUE(emu.ok()) << emu.error();
  server_process srv;
  srv.use_config(kube_config(srv, emu.kubeconfig));
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  // A host volume outside [storage] allowed_host_paths (empty: none): the
  // Kubernetes runtime's admission refuses it, as it refuses such a create.
  auto body = pool_json("it-kp-bad", 1, 1);
  body.replace(body.find(R"("resourceLimits")"), 0,
               R"("volumes":[{"name":"etc","host":{"path":"/etc"},)"
               R"("mountPath":"/host-etc"}],)");
  auto r = srv.call("POST", "/v1/pools", body);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("VOLUME::"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("allowed"), std::string::npos) << r.body;
  EXPECT_EQ(srv.call("GET", "/v1/pools/it-kp-bad").status, 404);
  // A template it can run is stored, and answered the same way.
  ASSERT_EQ(srv.call("POST", "/v1/pools", pool_json("it-kp-good", 0, 0))
              .status,
            201);
  EXPECT_EQ(srv.call("POST", "/v1/pools", pool_json("it-kp-good", 0, 0))
              .status,
            409);
  EXPECT_EQ(srv.call("DELETE", "/v1/pools/it-kp-good").status, 204);
  EXPECT_EQ(wait_pods(emu, 0, 1s), 0u);
}
