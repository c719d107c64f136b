// Three real server processes on 127.0.0.1 sharing this machine's Docker
// daemon form a cluster (TLS between them): any node serves any sandbox, a
// lost node's sandboxes answer 503 naming it, creates go elsewhere, a
// frozen node is detected, a restarted node heals the fleet; nothing lost,
// duplicated or leaked. Hostile peers: cluster_security_test.cpp.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <thread>

#include "cluster_support.hpp"
#include "server_process.hpp"

using namespace std::chrono_literals;
using osb::test::free_port;
using osb::test::random_suffix;
using osb::test::server_process;
using osb::test::shell;
using osb::test::test_certs;
using osb::test::tls_keys;

namespace {

class Cluster : public testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(test_certs::get().ok);
    auto run = random_suffix();
    for (int i = 0; i < 3; ++i)
      ports.push_back(free_port());
    std::string seeds = "seeds = [\"127.0.0.1:" + std::to_string(ports[0])
                        + "\"]\n";
    for (int i = 0; i < 3; ++i) {
      auto name = "it-" + run + "-n" + std::to_string(i + 1);
      auto keys = "listen = \"127.0.0.1:" + std::to_string(ports[i]) + "\"\n"
                  + seeds + tls_keys("n" + std::to_string(i + 1));
      nodes.push_back(std::make_unique<server_process>("", name, keys));
    }
    for (auto& n : nodes)
      ASSERT_TRUE(n->start()) << n->read_log();
    for (auto& n : nodes)
      ASSERT_TRUE(wait_members(*n, 3)) << n->read_log();
  }

  /// Waits until `n` sees `count` nodes up (itself included).
  bool wait_members(server_process& n, int count,
                    std::chrono::milliseconds timeout = 15s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = n.call("GET", "/v1/cluster/nodes");
      if (r.status == 200) {
        auto doc = r.json();
        int up = 0;
        for (auto& m : doc["nodes"].GetArray()) {
          std::string state = m["state"].GetString();
          up += state == "up" || state == "self";
        }
        if (up == count)
          return true;
      }
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  std::string create(server_process& n) {
    auto r = n.call("POST", "/v1/sandboxes",
                    R"({"image":{"uri":"opensandbox/busybox:latest"},)"
                    R"("entrypoint":["sleep","3600"],"resourceLimits":{}})");
    EXPECT_EQ(r.status, 202) << r.body;
    auto doc = r.json();
    return doc.IsObject() && doc.HasMember("id") ? doc["id"].GetString() : "";
  }

  /// Node name that owns `id`, from the containers' labels.
  std::string owner(const std::string& id) {
    auto out = shell("docker inspect -f '{{index .Config.Labels "
                     "\"opensandbox.io/node\"}}' sandbox-"
                     + id + " 2>/dev/null");
    while (!out.empty() && out.back() == '\n')
      out.pop_back();
    return out;
  }

  int total_containers() {
    int result = 0;
    for (auto& n : nodes)
      result += n->num_containers();
    return result;
  }

  std::vector<uint16_t> ports;
  std::vector<std::unique_ptr<server_process>> nodes;
};

} // namespace

TEST_F(Cluster, AnyNodeServesAnySandboxAndLossIsContained) {
  auto& n1 = *nodes[0];
  auto& n2 = *nodes[1];
  auto& n3 = *nodes[2];
  // Creates spread over the fleet, whichever node receives them.
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i)
    ids.push_back(create(*nodes[i % 3]));
  std::map<std::string, int> per_node;
  for (auto& id : ids) {
    ASSERT_EQ(n1.wait_state(id, "Running"), "Running");
    ++per_node[owner(id)];
  }
  EXPECT_EQ(per_node.size(), 3u) << "placement should use every node";
  // Every node answers for every sandbox, and lists the whole fleet.
  for (auto& n : nodes) {
    for (auto& id : ids)
      EXPECT_EQ(n->call("GET", "/v1/sandboxes/" + id).status, 200);
    auto l = n->call("GET", "/v1/sandboxes?pageSize=200");
    EXPECT_EQ(l.json()["pagination"]["totalItems"].GetInt(), 6);
  }
  // Operations reach the owner in one hop.
  std::string on_n2;
  for (auto& id : ids)
    if (owner(id) == n2.node())
      on_n2 = id;
  ASSERT_FALSE(on_n2.empty());
  EXPECT_EQ(n1.call("POST", "/v1/sandboxes/" + on_n2 + "/pause").status, 202);
  EXPECT_EQ(n3.wait_state(on_n2, "Paused"), "Paused");
  EXPECT_EQ(n3.call("POST", "/v1/sandboxes/" + on_n2 + "/resume").status,
            202);
  // Lose node 2: its sandboxes answer 503 naming it, the rest works.
  n2.kill(SIGKILL);
  std::this_thread::sleep_for(500ms);
  auto lost = n1.call("GET", "/v1/sandboxes/" + on_n2);
  EXPECT_EQ(lost.status, 503) << lost.body;
  EXPECT_NE(lost.body.find(n2.node()), std::string::npos) << lost.body;
  for (auto& id : ids)
    if (owner(id) != n2.node())
      EXPECT_EQ(n3.call("GET", "/v1/sandboxes/" + id).status, 200);
  auto fresh = create(n1);
  EXPECT_EQ(n1.wait_state(fresh, "Running"), "Running");
  EXPECT_NE(owner(fresh), n2.node());
  ids.push_back(fresh);
  // Freeze node 3: detected within a few seconds by heartbeats.
  std::string on_n3;
  for (auto& id : ids)
    if (owner(id) == n3.node())
      on_n3 = id;
  ASSERT_FALSE(on_n3.empty());
  n3.signal(SIGSTOP);
  auto stopped = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(5s);
  auto frozen = n1.call("GET", "/v1/sandboxes/" + on_n3);
  EXPECT_EQ(frozen.status, 503) << frozen.body;
  EXPECT_LT(std::chrono::steady_clock::now() - stopped, 15s);
  n3.signal(SIGCONT);
  // Node 2 returns: it recovers its sandboxes from Docker and the fleet
  // heals; node 3 rejoins after the freeze.
  ASSERT_TRUE(n2.start()) << n2.read_log();
  for (auto& n : nodes)
    ASSERT_TRUE(wait_members(*n, 3, 20s)) << n->read_log();
  EXPECT_EQ(n1.wait_state(on_n2, "Running"), "Running");
  EXPECT_EQ(n1.wait_state(on_n3, "Running"), "Running");
  // Everything accounted for: each sandbox listed once everywhere, one
  // container per sandbox, none owned twice.
  for (auto& n : nodes) {
    auto l = n->call("GET", "/v1/sandboxes?pageSize=200").json();
    std::set<std::string> listed;
    for (auto& item : l["items"].GetArray())
      listed.insert(item["id"].GetString());
    EXPECT_EQ(listed, std::set<std::string>(ids.begin(), ids.end()));
  }
  EXPECT_EQ(total_containers(), static_cast<int>(ids.size()));
  for (auto& id : ids)
    EXPECT_EQ(n2.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(total_containers(), 0);
}

TEST(ClusterJoin, IncompatibleVersionsRefuseToJoinAndCapacityIsHonoured) {
  auto run = random_suffix();
  auto p1 = free_port();
  auto p2 = free_port();
  auto p3 = free_port();
  auto seeds = "seeds = [\"127.0.0.1:" + std::to_string(p1) + "\"]\n";
  ASSERT_TRUE(test_certs::get().ok);
  server_process n1("", "it-" + run + "-a",
                    "listen = \"127.0.0.1:" + std::to_string(p1)
                      + "\"\nmax_sandboxes = 1\n" + tls_keys("n1"));
  server_process n2("", "it-" + run + "-b",
                    "listen = \"127.0.0.1:" + std::to_string(p2) + "\"\n"
                      + seeds + tls_keys("n2"));
  server_process odd("", "it-" + run + "-odd",
                     "listen = \"127.0.0.1:" + std::to_string(p3) + "\"\n"
                       + seeds + "protocol = \"osb-cluster/999\"\n"
                       + tls_keys("n3"));
  ASSERT_TRUE(n1.start()) << n1.read_log();
  ASSERT_TRUE(n2.start()) << n2.read_log();
  ASSERT_TRUE(odd.start()) << odd.read_log();
  std::this_thread::sleep_for(4s);
  auto members = n1.call("GET", "/v1/cluster/nodes");
  ASSERT_EQ(members.status, 200);
  EXPECT_NE(members.body.find(n2.node()), std::string::npos);
  EXPECT_EQ(members.body.find(odd.node()), std::string::npos)
    << members.body;
  EXPECT_NE(odd.read_log().find("incompatible versions do not join"),
            std::string::npos)
    << odd.read_log();
  // Node a takes at most one sandbox; the rest goes to node b.
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto r = n1.call("POST", "/v1/sandboxes",
                     R"({"image":{"uri":"opensandbox/busybox:latest"},)"
                     R"("entrypoint":["sleep","3600"],"resourceLimits":{}})");
    ASSERT_EQ(r.status, 202) << r.body;
    ids.push_back(r.json()["id"].GetString());
  }
  for (auto& id : ids)
    EXPECT_EQ(n1.wait_state(id, "Running"), "Running");
  EXPECT_LE(n1.num_containers(), 1);
  EXPECT_EQ(n1.num_containers() + n2.num_containers(), 3);
  for (auto& id : ids)
    EXPECT_EQ(n2.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(n1.num_containers() + n2.num_containers(), 0);
}
