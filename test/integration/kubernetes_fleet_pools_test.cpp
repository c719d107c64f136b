// Pools across replicas on Kubernetes (docs/pools.md, "Pools on
// Kubernetes" and "Cluster"; docs/runtimes.md, "Several replicas"): two
// real server processes joined as a CAF cluster, each with its own store
// and Lease, against the API-server emulator in --docker mode (member pods
// run execd --await-claim and become Ready through its probe). A pool
// created through one replica is seen on the other, its members spread, a
// claim through either is Running in its 202; one replica killed -9: once
// its lease ran out the survivor holds its member pods as members of the
// pool (none lost track of, none a plain sandbox) and its claimed sandbox
// as a sandbox; deleting the pool and the sandboxes leaves nothing.

#include "cluster_support.hpp"
#include "k8s_emulator.hpp"
#include "kube_support.hpp"
#include "server_process.hpp"

#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace osb::test;
using namespace std::chrono_literals;

namespace {

/// A member pod or sandbox pod in the emulator.
struct kpod {
  std::string node;
  std::string pool;
  std::string member;
};

/// The emulator's pods by name.
std::map<std::string, kpod> kpods(const k8s_emulator& emu) {
  std::map<std::string, kpod> out;
  auto r = emu.admin_call("GET", "/_emulator/state?resource=pods");
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  if (!doc.IsObject() || !doc.HasMember("objects"))
    return out;
  auto str = [](const rapidjson::Value& obj, const char* key) {
    return obj.IsObject() && obj.HasMember(key) && obj[key].IsString()
             ? std::string{obj[key].GetString()}
             : std::string{};
  };
  for (auto& p : doc["objects"]["pods"].GetArray()) {
    auto& meta = p["metadata"];
    kpod row;
    if (meta.HasMember("labels")) {
      row.node = str(meta["labels"], "opensandbox.io/node");
      row.pool = str(meta["labels"], "opensandbox.io/pool");
    }
    if (meta.HasMember("annotations"))
      row.member = str(meta["annotations"], "opensandbox.io/pool-member");
    out[meta["name"].GetString()] = row;
  }
  return out;
}

/// The pool's status.available on `srv` (-1 when not answered).
int available(server_process& srv, const std::string& pool) {
  auto r = srv.call("GET", "/v1/pools/" + pool);
  return r.status == 200 ? r.json()["status"]["available"].GetInt() : -1;
}

/// The ids `srv` lists as sandboxes.
std::set<std::string> listed(server_process& srv) {
  std::set<std::string> out;
  auto r = srv.call("GET", "/v1/sandboxes?pageSize=200");
  if (r.status != 200)
    return out;
  auto doc = r.json();
  for (auto& item : doc["items"].GetArray())
    out.insert(item["id"].GetString());
  return out;
}

} // namespace

TEST(KubernetesFleetPools, ClaimsFromEitherReplicaAndALostReplicasMembersAdopted) {
  OSB_REQUIRE_REAL_PODS();
  k8s_emulator emu{{"--no-events", "--docker"}};
  ASSERT_TRUE(emu.ok()) << emu.error();
  auto rs = start_two_replicas(emu.kubeconfig, {},
                               "execd_image = \"opensandbox/execd:latest\"\n");
  ASSERT_EQ(rs.size(), 2u);
  auto& a = *rs[0];
  auto& b = *rs[1];
  auto logs = [&] { return a.read_log() + "\n==== b\n" + b.read_log(); };

  // Created through A, seen on B; the members spread (2 each).
  ASSERT_EQ(a.call("POST", "/v1/pools",
                   R"({"name":"it-fp","template":{"image":{"uri":)"
                   R"("opensandbox/busybox:latest"},"entrypoint":["sleep",)"
                   R"("3600"],"resourceLimits":{"cpu":"500m","memory":)"
                   R"("256Mi"}},"capacitySpec":{"bufferMax":4,"bufferMin":4,)"
                   R"("poolMax":10,"poolMin":0}})")
              .status,
            201);
  ASSERT_TRUE(eventually([&] { return available(b, "it-fp") == 4
                                      && available(a, "it-fp") == 4; },
                         90s))
    << logs();
  std::map<std::string, int> per_node;
  std::set<std::string> seen;
  for (auto& [name, p] : kpods(emu)) {
    seen.insert(name);
    EXPECT_EQ(p.pool, "it-fp") << name;
    EXPECT_EQ(p.member, "idle") << name;
    ++per_node[p.node];
  }
  EXPECT_EQ(per_node[a.node()], 2);
  EXPECT_EQ(per_node[b.node()], 2);

  // A claim through each replica: Running in its 202.
  std::vector<std::string> claimed;
  for (auto* r : {&a, &b}) {
    auto c = r->call("POST", "/v1/sandboxes",
                     R"({"extensions":{"poolRef":"it-fp"},"timeout":600})");
    ASSERT_EQ(c.status, 202) << c.body;
    EXPECT_STREQ(c.json()["status"]["state"].GetString(), "Running")
      << c.body;
    claimed.push_back(c.json()["id"].GetString());
  }
  // Refilled; B's claimed sandbox and idle members are B's pods.
  ASSERT_TRUE(eventually([&] { return available(a, "it-fp") == 4; }, 60s))
    << logs();
  std::string b_claimed;
  size_t b_idle = 0;
  for (auto& [name, p] : kpods(emu)) {
    seen.insert(name);
    if (p.node != b.node())
      continue;
    if (p.member == "idle")
      ++b_idle;
    else
      b_claimed = name;
  }
  ASSERT_GE(b_idle, 1u);
  ASSERT_FALSE(b_claimed.empty());

  // kill -9 of B: after its lease ran out A holds every pod; B's claimed
  // sandbox is served by A, its idle members are members of the pool on A
  // (never sandboxes); the pool holds its buffer on A alone.
  b.kill(SIGKILL);
  ASSERT_TRUE(eventually(
    [&] {
      for (auto& [name, p] : kpods(emu))
        if (p.node != a.node())
          return false;
      return a.call("GET", "/v1/sandboxes/" + claimed[1]).status == 200;
    },
    20s))
    << logs();
  ASSERT_TRUE(eventually(
    [&] {
      if (available(a, "it-fp") != 4)
        return false;
      // Every pod is claimed (listed) or an idle member counted in the pool.
      size_t idle = 0, sandboxes = 0;
      for (auto& [name, p] : kpods(emu)) {
        seen.insert(name);
        if (p.member == "idle")
          ++idle;
        else
          ++sandboxes;
      }
      return idle == 4 && sandboxes == 2;
    },
    30s))
    << logs();
  EXPECT_EQ(listed(a), (std::set<std::string>{claimed[0], claimed[1]}));
  EXPECT_EQ(a.call("GET", "/v1/pools/it-fp").json()["status"]["allocated"]
              .GetInt(),
            2);
  EXPECT_EQ(a.wait_state(claimed[1], "Running", 10s), "Running");
  // A claim through the survivor still takes a member.
  auto c = a.call("POST", "/v1/sandboxes",
                  R"({"extensions":{"poolRef":"it-fp"},"timeout":600})");
  ASSERT_EQ(c.status, 202) << c.body;
  EXPECT_STREQ(c.json()["status"]["state"].GetString(), "Running") << c.body;
  claimed.push_back(c.json()["id"].GetString());

  // Nothing left once the pool and the sandboxes are deleted.
  EXPECT_EQ(a.call("DELETE", "/v1/pools/it-fp").status, 204);
  for (auto& id : claimed)
    EXPECT_EQ(a.call("DELETE", "/v1/sandboxes/" + id).status, 204) << id;
  EXPECT_TRUE(eventually([&] { return kpods(emu).empty(); }, 30s)) << logs();
  for (auto& [name, p] : kpods(emu))
    seen.insert(name);
  for (auto& name : seen)
    EXPECT_TRUE(eventually([&] { return pod_leftovers(name).empty(); }, 10s))
      << "containers or volumes of " << name << " remain";
}
