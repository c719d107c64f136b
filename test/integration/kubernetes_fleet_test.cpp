// Several replicas of the server on one namespace (docs/runtimes.md,
// "Several replicas"): real server processes joined as a CAF cluster, each
// with its own store and Lease, against the API-server emulator (pods
// become Ready by its emulated kubelet; no Docker). A replica killed -9
// mid-workload: every acknowledged operation accounted for, its sandboxes
// adopted by a survivor within 5 s of its lease running out, one that
// expired during the gap deleted once. A replica frozen (SIGSTOP): adopted
// meanwhile; thawed, it gives up what was adopted without touching it.
// Short leases (3 s, renewed every second) keep the suite fast.

#include "cluster_support.hpp"
#include "k8s_emulator.hpp"
#include "server_process.hpp"

#include <gtest/gtest.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <iostream>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace osb;
using namespace osb::test;
using namespace std::chrono_literals;

namespace {

constexpr auto lease_duration = 3s;
/// The target: served again within 5 s of the lease running out (the lease
/// runs out at most a lease duration after the kill).
constexpr auto adoption_bound = lease_duration + 5s;

constexpr const char* create_body
  = R"({"image":{"uri":"python:3.12"},"entrypoint":["sleep","infinity"],)"
    R"("timeout":600,"resourceLimits":{"cpu":"500m","memory":"256Mi"}})";

/// One replica: its config names the emulator, short leases and its peers.
struct replica {
  std::unique_ptr<server_process> srv;
  uint16_t cluster_port = 0;
};

std::string fleet_config(server_process& srv, const std::string& kubeconfig,
                         uint16_t listen, const std::vector<uint16_t>& seeds) {
  return "[server]\nhost = \"127.0.0.1\"\nport = "
         + std::to_string(srv.port())
         + "\napi_key = \"test-key\"\n[log]\nlevel = \"DEBUG\"\n"
           "[runtime]\ntype = \"kubernetes\"\n[kubernetes]\nkubeconfig_path = \""
         + kubeconfig
         + "\"\nsandbox_create_timeout_seconds = 10\n"
           "lease_duration_seconds = 3\nlease_renew_seconds = 1\n"
           "[store]\npath = \""
         + srv.store_path() + "\"\n[cluster]\nnode_name = \"" + srv.node()
         + "\"\nplaintext = true\n" + listen_keys(listen, seeds);
}

/// The pods in the emulator: sandbox id -> owning node (label).
std::map<std::string, std::string> pod_owners(const k8s_emulator& emu) {
  std::map<std::string, std::string> result;
  auto r = emu.admin_call("GET", "/_emulator/state?resource=pods");
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  if (!doc.IsObject() || !doc.HasMember("objects"))
    return result;
  for (auto& p : doc["objects"]["pods"].GetArray()) {
    auto& labels = p["metadata"]["labels"];
    if (labels.HasMember("opensandbox.io/id"))
      result[labels["opensandbox.io/id"].GetString()]
        = labels["opensandbox.io/node"].GetString();
  }
  return result;
}

/// The lease of `node` in the emulator: its holder, "" when none.
std::string lease_holder(const k8s_emulator& emu, const std::string& node) {
  auto r = emu.admin_call("GET", "/_emulator/state?resource=leases");
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  if (!doc.IsObject() || !doc.HasMember("objects"))
    return {};
  for (auto& m : doc["objects"].GetObject())
    for (auto& l : m.value.GetArray())
      if (std::string{l["metadata"]["name"].GetString()}
          == "opensandbox-" + node)
        return l["spec"]["holderIdentity"].GetString();
  return {};
}

/// How often `needle` occurs in `hay`.
size_t occurrences(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (auto i = hay.find(needle); i != std::string::npos;
       i = hay.find(needle, i + 1))
    ++n;
  return n;
}

/// An RFC 3339 UTC time `secs` from now.
std::string in_seconds(int secs) {
  auto t = std::time(nullptr) + secs;
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string to_text(const rapidjson::Value& v) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w{out};
  v.Accept(w);
  return {out.GetString(), out.GetSize()};
}

/// Every replica's log, for failure messages.
std::string all_logs(const std::vector<replica>& replicas) {
  std::string out;
  for (auto& r : replicas)
    out += "==== " + r.srv->node() + "\n" + r.srv->read_log();
  return out;
}

class KubernetesFleet : public ::testing::Test {
protected:
  void start_fleet(size_t n) {
    auto run = random_suffix();
    std::vector<uint16_t> ports;
    for (size_t i = 0; i < n; ++i)
      ports.push_back(free_port());
    for (size_t i = 0; i < n; ++i) {
      replica r;
      r.cluster_port = ports[i];
      r.srv = std::make_unique<server_process>(
        "", "it-" + run + "-" + std::string(1, static_cast<char>('a' + i)));
      std::vector<uint16_t> seeds;
      for (size_t j = 0; j < n; ++j)
        if (j != i)
          seeds.push_back(ports[j]);
      r.srv->use_config(
        fleet_config(*r.srv, emu->kubeconfig, ports[i], seeds));
      replicas.push_back(std::move(r));
    }
    for (auto& r : replicas)
      ASSERT_TRUE(r.srv->start()) << r.srv->read_log();
    for (auto& r : replicas)
      ASSERT_TRUE(eventually(
        [&] {
          int up = 0;
          for (auto& o : replicas)
            up += has_member(*r.srv, o.srv->node(),
                             &o == &r ? "self" : "up");
          return up == static_cast<int>(n);
        },
        20s))
        << r.srv->read_log();
    // Every replica holds its lease.
    for (auto& r : replicas)
      ASSERT_TRUE(eventually(
        [&] { return !lease_holder(*emu, r.srv->node()).empty(); }, 10s))
        << r.srv->read_log();
  }

  /// Creates `n` sandboxes through replica 0 (placement spreads them) and
  /// waits until each is Running.
  std::vector<std::string> create_running(size_t n) {
    std::vector<std::string> ids;
    auto& srv = *replicas[0].srv;
    for (size_t i = 0; i < n; ++i) {
      auto r = srv.call("POST", "/v1/sandboxes", create_body);
      EXPECT_EQ(r.status, 202) << r.body;
      if (r.status == 202)
        ids.push_back(r.json()["id"].GetString());
    }
    for (auto& id : ids)
      EXPECT_EQ(srv.wait_state(id, "Running", 20s), "Running") << id;
    return ids;
  }

  void SetUp() override {
    if (!node_available())
      GTEST_SKIP() << "node is not installed (the emulator needs it)";
    emu = std::make_unique<k8s_emulator>(
      std::vector<std::string>{"--no-events"});
    ASSERT_TRUE(emu->ok()) << emu->error();
  }

  std::unique_ptr<k8s_emulator> emu;
  std::vector<replica> replicas;
};

} // namespace

/// Two or three replicas; the last one is killed -9 with creates, deletes
/// and renewals in flight.
void kill_mid_workload(KubernetesFleet& t, std::unique_ptr<k8s_emulator>& emu,
                       std::vector<replica>& replicas,
                       const std::vector<std::string>& ids) {
  auto& victim = *replicas.back().srv;
  auto& survivor = *replicas.front().srv;
  auto owners = pod_owners(*emu);
  std::vector<std::string> lost;
  for (auto& id : ids)
    if (owners[id] == victim.node())
      lost.push_back(id);
  ASSERT_GE(lost.size(), 3u) << "placement gave the victim too few";
  // One of the victim's sandboxes expires during the gap.
  auto expiring = lost[0];
  auto renew = survivor.call("POST", "/v1/sandboxes/" + expiring
                                       + "/renew-expiration",
                             R"({"expiresAt":")" + in_seconds(2) + R"("})");
  ASSERT_EQ(renew.status, 200) << renew.body;
  // The workload: creates through the survivor, a delete and renewals of
  // the victim's sandboxes (routed to it), all in flight at the kill.
  std::mutex mtx;
  std::vector<std::string> acked_creates;
  std::set<std::string> acked_deletes;
  std::set<std::string> renewal_values;
  std::vector<std::thread> ops;
  for (int i = 0; i < 4; ++i)
    ops.emplace_back([&] {
      auto r = survivor.call("POST", "/v1/sandboxes", create_body);
      if (r.status == 202) {
        std::lock_guard guard{mtx};
        acked_creates.push_back(r.json()["id"].GetString());
      }
    });
  ops.emplace_back([&] {
    auto r = survivor.call("DELETE", "/v1/sandboxes/" + lost[1]);
    if (r.status == 204 || r.status == 202) {
      std::lock_guard guard{mtx};
      acked_deletes.insert(lost[1]);
    }
  });
  for (int i = 0; i < 6; ++i)
    ops.emplace_back([&, i] {
      auto at = "2099-01-0" + std::to_string(1 + i) + "T00:00:00Z";
      {
        std::lock_guard guard{mtx};
        renewal_values.insert(at);
      }
      survivor.call("POST", "/v1/sandboxes/" + lost[2] + "/renew-expiration",
                    R"({"expiresAt":")" + at + R"("})");
    });
  std::this_thread::sleep_for(20ms);
  victim.kill(SIGKILL);
  auto killed = std::chrono::steady_clock::now();
  for (auto& th : ops)
    th.join();
  // While unowned: the existing 503 naming the lost replica.
  auto gap = survivor.call("GET", "/v1/sandboxes/" + lost[3 % lost.size()]);
  if (gap.status != 200) {
    EXPECT_EQ(gap.status, 503) << gap.body;
    EXPECT_NE(gap.body.find(victim.node()), std::string::npos) << gap.body;
  }
  // Adopted: served by a survivor, the pods relabelled away from the
  // victim, within 5 s of the lease running out.
  std::set<std::string> expect_alive;
  // (The delete in flight may have landed without its answer: lost[1]
  // is then gone although its delete was not acknowledged.)
  for (auto& id : lost)
    if (id != expiring && id != lost[1])
      expect_alive.insert(id);
  ASSERT_TRUE(eventually(
    [&] {
      auto now = pod_owners(*emu);
      for (auto& id : expect_alive) {
        if (now.count(id) == 0 || now[id] == victim.node())
          return false;
        if (survivor.call("GET", "/v1/sandboxes/" + id).status != 200)
          return false;
      }
      return true;
    },
    adoption_bound + 2s))
    << all_logs(replicas);
  auto took = std::chrono::steady_clock::now() - killed;
  std::cout << "[ fleet    ] " << lost.size() << " sandboxes of "
            << victim.node() << " served again "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took)
                 .count()
            << " ms after its kill (lease " << lease_duration.count()
            << " s); acknowledged: " << acked_creates.size() << " creates, "
            << acked_deletes.size() << " deletes\n";
  EXPECT_LE(took, adoption_bound)
    << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
    << " ms from the kill";
  // The one that expired during the gap is deleted once, by its adopter.
  EXPECT_EQ(survivor.wait_state(expiring, "404", 10s), "404");
  EXPECT_TRUE(eventually([&] { return pod_owners(*emu).count(expiring) == 0; },
                         5s));
  size_t expired_lines = 0;
  for (auto& r : replicas)
    if (r.srv->pid() > 0) {
      auto log = r.srv->read_log();
      for (auto i = log.find("sandbox expired at"); i != std::string::npos;
           i = log.find("sandbox expired at", i + 1)) {
        auto line_start = log.rfind('\n', i);
        auto line = log.substr(line_start == std::string::npos ? 0
                                                               : line_start,
                               i - (line_start == std::string::npos
                                      ? 0
                                      : line_start));
        if (line.find(expiring) != std::string::npos)
          ++expired_lines;
      }
    }
  EXPECT_EQ(expired_lines, 1u) << "the expiry fired " << expired_lines
                               << " times";
  // Acknowledged deletes are gone; acknowledged creates run; the renewed
  // sandbox keeps one of the renewals (each was acknowledged or unanswered).
  for (auto& id : acked_deletes) {
    EXPECT_EQ(survivor.wait_state(id, "404", 10s), "404") << id;
    EXPECT_EQ(pod_owners(*emu).count(id), 0u) << id;
  }
  for (auto& id : acked_creates)
    EXPECT_EQ(survivor.wait_state(id, "Running", 20s), "Running") << id;
  if (acked_deletes.count(lost[2]) == 0) {
    auto got = survivor.call("GET", "/v1/sandboxes/" + lost[2]);
    ASSERT_EQ(got.status, 200) << got.body;
    std::string at = got.json()["expiresAt"].GetString();
    EXPECT_EQ(at.rfind("2099-01-0", 0), 0u) << at;
  }
  // Everything accounted for: every replica lists exactly the pods, each
  // owned by a live replica.
  auto final_owners = pod_owners(*emu);
  std::set<std::string> pods;
  for (auto& [id, node] : final_owners) {
    pods.insert(id);
    EXPECT_NE(node, victim.node()) << id;
  }
  for (auto& r : replicas) {
    if (r.srv->pid() <= 0)
      continue;
    std::string last;
    ASSERT_TRUE(eventually(
      [&] {
        auto l = r.srv->call("GET", "/v1/sandboxes?pageSize=200");
        if (l.status != 200)
          return false;
        std::set<std::string> listed;
        last.clear();
        auto doc = l.json();
        for (auto& item : doc["items"].GetArray()) {
          listed.insert(item["id"].GetString());
          if (std::string{item["id"].GetString()}.empty())
            last += " item without id: " + to_text(item);
        }
        for (auto& id : listed)
          if (pods.count(id) == 0)
            last += " extra " + id + " (" + r.srv->call("GET", "/v1/sandboxes/" + id).body + ")";
        for (auto& id : pods)
          if (listed.count(id) == 0)
            last += " missing " + id + " (owner " + final_owners[id] + ")";
        return listed == pods;
      },
      5s))
      << r.srv->node() << " lists" << last << "\n" << all_logs(replicas);
  }
  (void) t;
  // Cleanup through the survivor.
  for (auto& id : pods)
    EXPECT_EQ(survivor.call("DELETE", "/v1/sandboxes/" + id).status, 204)
      << id;
  EXPECT_TRUE(eventually([&] { return pod_owners(*emu).empty(); }, 10s));
}

TEST_F(KubernetesFleet, TwoReplicasOneKilledMidWorkloadLosesNothing) {
  start_fleet(2);
  auto ids = create_running(8);
  kill_mid_workload(*this, emu, replicas, ids);
}

TEST_F(KubernetesFleet, ThreeReplicasOneKilledIsAdoptedOnce) {
  start_fleet(3);
  auto ids = create_running(12);
  kill_mid_workload(*this, emu, replicas, ids);
  // The lost lease went after the takeover; no sandbox is owned twice (each
  // pod has one node label, and only live replicas list it as theirs).
  EXPECT_TRUE(eventually(
    [&] { return lease_holder(*emu, replicas.back().srv->node()).empty(); },
    5s))
    << emu->admin_call("GET", "/_emulator/state?resource=leases").body
    << replicas[0].srv->read_log() << replicas[1].srv->read_log();
}

TEST_F(KubernetesFleet, AFrozenReplicaIsAdoptedAndGivesUpWhenThawed) {
  start_fleet(2);
  auto ids = create_running(6);
  auto& frozen = *replicas.back().srv;
  auto& other = *replicas.front().srv;
  std::vector<std::string> lost;
  for (auto& [id, node] : pod_owners(*emu))
    if (node == frozen.node())
      lost.push_back(id);
  ASSERT_GE(lost.size(), 2u);
  auto expiring = lost[0];
  ASSERT_EQ(other
              .call("POST", "/v1/sandboxes/" + expiring + "/renew-expiration",
                    R"({"expiresAt":")" + in_seconds(2) + R"("})")
              .status,
            200);
  frozen.signal(SIGSTOP);
  auto stopped = std::chrono::steady_clock::now();
  // Its lease expires; the other replica adopts what it had.
  ASSERT_TRUE(eventually(
    [&] {
      auto now = pod_owners(*emu);
      for (auto& id : lost)
        if (id != expiring && now.count(id) != 0 && now[id] == frozen.node())
          return false;
      return other.call("GET", "/v1/sandboxes/" + lost[1]).status == 200;
    },
    adoption_bound + 2s))
    << other.read_log();
  EXPECT_LE(std::chrono::steady_clock::now() - stopped, adoption_bound);
  EXPECT_EQ(other.wait_state(expiring, "404", 10s), "404");
  // Thawed: its renewal finds the lease gone, it drops what was adopted
  // without touching the pods, and holds a fresh lease.
  frozen.signal(SIGCONT);
  ASSERT_TRUE(eventually(
    [&] {
      return frozen.read_log().find("lost its lease") != std::string::npos;
    },
    10s))
    << frozen.read_log();
  ASSERT_TRUE(eventually(
    [&] {
      auto h = lease_holder(*emu, frozen.node());
      return h.rfind(frozen.node() + "/", 0) == 0;
    },
    10s));
  std::this_thread::sleep_for(2s);
  auto now = pod_owners(*emu);
  for (auto& id : lost) {
    if (id == expiring)
      continue;
    ASSERT_EQ(now.count(id), 1u) << id << " was deleted";
    EXPECT_EQ(now[id], other.node()) << id << " was taken back";
  }
  EXPECT_EQ(now.count(expiring), 0u);
  // The thawed replica never expired nor deleted anything.
  auto log = frozen.read_log();
  EXPECT_EQ(log.find("sandbox expired at"), std::string::npos);
  EXPECT_EQ(log.find("removed its containers"), std::string::npos);
  // Any replica serves every sandbox again (the directory healed).
  ASSERT_TRUE(eventually(
    [&] {
      for (auto& id : lost)
        if (id != expiring
            && (frozen.call("GET", "/v1/sandboxes/" + id).status != 200
                || other.call("GET", "/v1/sandboxes/" + id).status != 200))
          return false;
      return true;
    },
    15s))
    << frozen.read_log();
  for (auto& [id, node] : pod_owners(*emu))
    EXPECT_EQ(frozen.call("DELETE", "/v1/sandboxes/" + id).status, 204) << id;
  EXPECT_TRUE(eventually([&] { return pod_owners(*emu).empty(); }, 10s));
}

// A create is acknowledged only once its pod exists (the pod's annotations
// are the durable record on Kubernetes): a replica killed -9 right after
// its 202s, with its pods not scheduled yet, loses none of them; the other
// replica adopts each and it becomes Running (issue 19).
TEST_F(KubernetesFleet, CreateAcknowledgedBeforeAKillIsAdoptedAndRuns) {
  start_fleet(2);
  auto& victim = *replicas.back().srv;
  auto& survivor = *replicas.front().srv;
  // Pods stay Pending well past the kill.
  auto d = emu->admin_call("POST", "/_emulator/delays",
                           R"({"scheduleMs": 6000})");
  ASSERT_EQ(d.status, 200) << d.body;
  std::vector<std::string> acked;
  for (int i = 0; i < 4; ++i) {
    auto r = victim.call("POST", "/v1/sandboxes", create_body);
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_STREQ(r.json()["status"]["state"].GetString(), "Pending");
    acked.push_back(r.json()["id"].GetString());
  }
  victim.kill(SIGKILL);
  // Each acknowledged create has its pod, none of them Ready yet.
  auto owners = pod_owners(*emu);
  size_t victims = 0;
  for (auto& id : acked) {
    ASSERT_EQ(owners.count(id), 1u) << id << " has no pod";
    victims += owners[id] == victim.node();
  }
  EXPECT_GE(victims, 1u) << "placement gave the victim none";
  // Adopted while still Pending (the pod is scheduled 6 s after its POST):
  // the create goes on rather than failing.
  EXPECT_TRUE(eventually(
    [&] {
      auto now = pod_owners(*emu);
      for (auto& id : acked)
        if (now[id] == victim.node())
          return false;
      return true;
    },
    adoption_bound))
    << all_logs(replicas);
  for (auto& id : acked) {
    http_reply g;
    ASSERT_TRUE(eventually(
      [&] {
        g = survivor.call("GET", "/v1/sandboxes/" + id);
        return g.status == 200;
      },
      5s))
      << g.status << " " << g.body;
    std::string state = g.json()["status"]["state"].GetString();
    EXPECT_TRUE(state == "Pending" || state == "Running") << g.body;
  }
  for (auto& id : acked)
    EXPECT_EQ(survivor.wait_state(id, "Running", 15s), "Running")
      << id << "\n" << all_logs(replicas);
  for (auto& [id, node] : pod_owners(*emu))
    EXPECT_NE(node, victim.node()) << id;
  for (auto& id : acked)
    EXPECT_EQ(survivor.call("DELETE", "/v1/sandboxes/" + id).status, 204)
      << id;
  EXPECT_TRUE(eventually([&] { return pod_owners(*emu).empty(); }, 10s));
}
