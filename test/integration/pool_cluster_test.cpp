// Pools in a cluster of three real server processes on 127.0.0.1 sharing
// this machine's Docker daemon (docs/pools.md "Cluster"): a pool created on
// one node is on every node, each node keeps its share of the members, a
// claim through a node without an idle member is served by a peer in one
// hop (Running in its 202), a killed node's share is refilled by the others
// and shrinks again when it returns; nothing leaks after the pool and its
// sandboxes are deleted. Two creates of one name on two nodes at once end
// as one pool on every node. Plain TCP between the nodes (TLS is not the
// subject here: cluster_test.cpp).

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server_process.hpp"

using namespace std::chrono_literals;
using osb::test::free_port;
using osb::test::random_suffix;
using osb::test::server_process;
using osb::test::shell;

namespace {

/// Polls `pred` every 100 ms until it holds or `timeout` passed.
bool eventually(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = 20s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred())
      return true;
    std::this_thread::sleep_for(100ms);
  }
  return pred();
}

std::string pool_json(const std::string& name, int buffer, int pool_max) {
  return R"({"name":")" + name
         + R"(","template":{"image":{"uri":"opensandbox/busybox:latest"},)"
           R"("entrypoint":["sleep","3600"],"resourceLimits":{}},)"
           R"("capacitySpec":{"bufferMax":)"
         + std::to_string(buffer) + R"(,"bufferMin":)"
         + std::to_string(buffer) + R"(,"poolMax":)"
         + std::to_string(pool_max) + R"(,"poolMin":0}})";
}

class PoolCluster : public testing::Test {
protected:
  void SetUp() override {
    auto run = random_suffix();
    for (int i = 0; i < 3; ++i)
      ports.push_back(free_port());
    // Every node seeds every other: any of them can be killed.
    std::string seeds = "seeds = [";
    for (int i = 0; i < 3; ++i)
      seeds += std::string{i ? ", " : ""} + "\"127.0.0.1:"
               + std::to_string(ports[i]) + "\"";
    seeds += "]\n";
    for (int i = 0; i < 3; ++i) {
      // Names sort as n1 < n2 < n3: the ranks of the shares.
      auto name = "it-" + run + "-n" + std::to_string(i + 1);
      auto keys = "listen = \"127.0.0.1:" + std::to_string(ports[i]) + "\"\n"
                  + seeds + "plaintext = true\nseed_timeout_seconds = 10\n";
      nodes.push_back(std::make_unique<server_process>("", name, keys));
    }
    for (auto& n : nodes)
      ASSERT_TRUE(n->start()) << n->read_log();
    for (auto& n : nodes)
      ASSERT_TRUE(wait_up(*n, 3)) << n->read_log();
  }

  /// Waits until `n` sees `count` nodes up (itself included).
  bool wait_up(server_process& n, int count) {
    return eventually([&] {
      auto r = n.call("GET", "/v1/cluster/nodes");
      if (r.status != 200)
        return false;
      int up = 0;
      for (auto& m : r.json()["nodes"].GetArray()) {
        std::string state = m["state"].GetString();
        up += state == "up" || state == "self";
      }
      return up == count;
    });
  }

  /// `status.<field>` of the pool as node `n` answers it (-1: no answer).
  int status(server_process& n, const std::string& field) {
    auto r = n.call("GET", "/v1/pools/" + pool);
    if (r.status != 200)
      return -1;
    return r.json()["status"][field.c_str()].GetInt();
  }

  /// The node that owns sandbox `id`, from its container's label.
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

  std::string pool = "it-spread-" + random_suffix();
  std::vector<uint16_t> ports;
  std::vector<std::unique_ptr<server_process>> nodes;
};

} // namespace

TEST_F(PoolCluster, MembersSpreadAndClaimsAreServedInOneHop) {
  auto& n1 = *nodes[0];
  auto& n2 = *nodes[1];
  auto& n3 = *nodes[2];
  // Created on n1: on every node, under one definition; the name is taken
  // everywhere.
  ASSERT_EQ(n1.call("POST", "/v1/pools", pool_json(pool, 3, 6)).status, 201);
  for (auto& n : nodes)
    ASSERT_TRUE(eventually([&] { return status(*n, "total") >= 0; }))
      << n->node() << " does not know the pool: " << n->read_log();
  for (auto& n : nodes) {
    auto l = n->call("GET", "/v1/pools").json();
    ASSERT_EQ(l["items"].Size(), 1u) << n->node();
    EXPECT_EQ(std::string{l["items"][0]["name"].GetString()}, pool);
    EXPECT_EQ(l["items"][0]["capacitySpec"]["poolMax"].GetInt(), 6);
  }
  auto dup = n3.call("POST", "/v1/pools", pool_json(pool, 1, 1));
  EXPECT_EQ(dup.status, 409) << dup.body;
  // bufferMax 3 over three nodes: one idle member on each; every node's
  // status sums them.
  for (auto& n : nodes)
    EXPECT_TRUE(eventually([&] { return n->num_containers() == 1; }, 30s))
      << n->node() << " has " << n->num_containers() << " containers";
  for (auto& n : nodes)
    EXPECT_TRUE(eventually([&] { return status(*n, "available") == 3; }))
      << n->node() << ": " << status(*n, "available");
  // Capacity 2 (PUT on n2): n3, last by name, keeps none (its idle member
  // goes), n1 and n2 one each.
  auto put = n2.call("PUT", "/v1/pools/" + pool,
                     R"({"capacitySpec":{"bufferMax":2,"bufferMin":2,)"
                     R"("poolMax":4,"poolMin":0}})");
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_TRUE(eventually([&] { return n3.num_containers() == 0; }))
    << n3.read_log();
  EXPECT_TRUE(eventually([&] { return status(n3, "available") == 2; }));
  // A claim through n3, which has no idle member: a peer's member serves
  // it, Running in the 202.
  auto t0 = std::chrono::steady_clock::now();
  auto r = n3.call("POST", "/v1/sandboxes",
                   R"({"extensions":{"poolRef":")" + pool
                     + R"("},"metadata":{"via":"n3"}})");
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - t0)
              .count();
  ASSERT_EQ(r.status, 202) << r.body << n3.read_log();
  auto doc = r.json();
  std::string claimed = doc["id"].GetString();
  EXPECT_STREQ(doc["status"]["state"].GetString(), "Running") << r.body;
  auto by = owner(claimed);
  EXPECT_TRUE(by == n1.node() || by == n2.node()) << by;
  std::string msg = doc["status"]["message"].GetString();
  EXPECT_EQ(msg.find("no idle member"), std::string::npos) << msg;
  std::cout << "claim through a node without idle members: " << ms
            << " ms (served by " << by << ")\n";
  // Every node counts it allocated, and serves it.
  for (auto& n : nodes) {
    EXPECT_TRUE(eventually([&] { return status(*n, "allocated") == 1; }))
      << n->node() << ": " << status(*n, "allocated");
    EXPECT_EQ(n->call("GET", "/v1/sandboxes/" + claimed).status, 200);
  }
  // The owner refills its share.
  EXPECT_TRUE(eventually([&] { return status(n3, "available") == 2; }));
  // kill -9 of n2: n1 and n3 share the buffer (one each).
  n2.kill(SIGKILL);
  ASSERT_TRUE(wait_up(n1, 2));
  EXPECT_TRUE(eventually([&] { return n3.num_containers() == 1; }, 30s))
    << n3.read_log();
  EXPECT_TRUE(eventually([&] { return status(n1, "available") == 2; }));
  // n2 returns with its store: it re-adopts its members, and n3's share
  // shrinks to none again.
  ASSERT_TRUE(n2.start()) << n2.read_log();
  for (auto& n : nodes)
    ASSERT_TRUE(wait_up(*n, 3)) << n->read_log();
  EXPECT_TRUE(eventually([&] { return n3.num_containers() == 0; }, 30s))
    << n3.read_log();
  EXPECT_TRUE(eventually([&] { return status(n2, "available") == 2; }));
  // Deleted on n3: gone everywhere, idle members removed on every node;
  // the claimed sandbox stays until deleted.
  EXPECT_EQ(n3.call("DELETE", "/v1/pools/" + pool).status, 204);
  for (auto& n : nodes)
    EXPECT_TRUE(eventually([&] {
      return n->call("GET", "/v1/pools/" + pool).status == 404;
    })) << n->node();
  EXPECT_TRUE(eventually([&] { return total_containers() == 1; }, 30s))
    << total_containers();
  EXPECT_EQ(n3.call("DELETE", "/v1/sandboxes/" + claimed).status, 204);
  EXPECT_TRUE(eventually([&] { return total_containers() == 0; }))
    << total_containers();
}

TEST_F(PoolCluster, TwoCreatesOfOneNameAtOnceEndAsOnePool) {
  // No members (bufferMax 0): only the definitions race. poolMax tells
  // the two bodies apart.
  auto body = [&](int pool_max) {
    return R"({"name":")" + pool
           + R"(","template":{"image":{"uri":"opensandbox/busybox:latest"},)"
             R"("entrypoint":["sleep","3600"],"resourceLimits":{}},)"
             R"("capacitySpec":{"bufferMax":0,"bufferMin":0,"poolMax":)"
           + std::to_string(pool_max) + R"(,"poolMin":0}})";
  };
  int codes[2] = {0, 0};
  std::thread a([&] { codes[0] = nodes[0]->call("POST", "/v1/pools",
                                                body(1)).status; });
  std::thread b([&] { codes[1] = nodes[1]->call("POST", "/v1/pools",
                                                body(2)).status; });
  a.join();
  b.join();
  // Each is 201, or one saw the other's first (409).
  EXPECT_TRUE(codes[0] == 201 || codes[1] == 201);
  EXPECT_TRUE(codes[0] == 201 || codes[0] == 409) << codes[0];
  EXPECT_TRUE(codes[1] == 201 || codes[1] == 409) << codes[1];
  // Every node ends with the same pool (the later create, at equal times
  // the greater node name).
  auto seen = [&](server_process& n) {
    auto r = n.call("GET", "/v1/pools/" + pool);
    if (r.status != 200)
      return std::string{};
    auto doc = r.json();
    return std::string{doc["createdAt"].GetString()} + "/"
           + std::to_string(doc["capacitySpec"]["poolMax"].GetInt());
  };
  EXPECT_TRUE(eventually([&] {
    auto x = seen(*nodes[0]);
    return !x.empty() && x == seen(*nodes[1]) && x == seen(*nodes[2]);
  })) << seen(*nodes[0]) << " " << seen(*nodes[1]) << " " << seen(*nodes[2]);
  for (auto& n : nodes)
    EXPECT_EQ(n->call("GET", "/v1/pools").json()["items"].Size(), 1u);
  EXPECT_EQ(nodes[2]->call("DELETE", "/v1/pools/" + pool).status, 204);
  for (auto& n : nodes)
    EXPECT_TRUE(eventually([&] {
      return n->call("GET", "/v1/pools/" + pool).status == 404;
    }));
  EXPECT_EQ(total_containers(), 0);
}
