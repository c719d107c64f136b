// Several replicas with kubernetes.workload_provider = "agent-sandbox"
// (docs/runtimes.md, "Several replicas" and "The agent-sandbox provider"):
// two real server processes joined as a CAF cluster against the emulator
// serving the Sandbox CRD with its minimal controller. One replica killed
// -9: once its lease ran out the survivor relabels its pods and Sandbox
// objects (pod template included) and serves its sandboxes; a delete
// through the survivor removes the Sandbox and its pod.

#include "cluster_support.hpp"
#include "k8s_emulator.hpp"
#include "kube_support.hpp"
#include "server_process.hpp"

#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace osb::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* sandboxes
  = "/apis/agents.x-k8s.io/v1alpha1/namespaces/default/sandboxes";
constexpr const char* pods = "/api/v1/namespaces/default/pods";

std::string crd_file() {
  if (auto env = std::getenv("OSB_AGENT_SANDBOX_CRD"); env && *env)
    return env;
  return std::string{OSB_SOURCE_DIR}
         + "/test/k8s-emulator/crds/agent-sandbox-v1alpha1.yaml";
}

uint16_t api_port(const k8s_emulator& emu) {
  return static_cast<uint16_t>(
    std::stoi(emu.url.substr(emu.url.rfind(':') + 1)));
}

/// The objects of `collection`: name -> owning replica (label); for a
/// Sandbox the label of its pod template is appended after a slash.
std::map<std::string, std::string> owners(const k8s_emulator& emu,
                                          const std::string& collection) {
  std::map<std::string, std::string> out;
  auto r = http_call(api_port(emu), "GET", collection);
  if (r.status != 200)
    return out;
  auto doc = r.json();
  auto label = [](const rapidjson::Value& meta) {
    if (!meta.IsObject() || !meta.HasMember("labels")
        || !meta["labels"].HasMember("opensandbox.io/node"))
      return std::string{};
    return std::string{meta["labels"]["opensandbox.io/node"].GetString()};
  };
  for (auto& item : doc["items"].GetArray()) {
    auto owner = label(item["metadata"]);
    if (item.HasMember("spec") && item["spec"].HasMember("podTemplate"))
      owner += "/" + label(item["spec"]["podTemplate"]["metadata"]);
    out[item["metadata"]["name"].GetString()] = owner;
  }
  return out;
}

} // namespace

TEST(KubernetesFleetAgentSandbox, ALostReplicasSandboxesAreAdoptedAndDeleted) {
  OSB_REQUIRE_NODE();
  k8s_emulator emu{{"--no-events", "--crd", crd_file(),
                    "--agent-sandbox-controller"}};
  ASSERT_TRUE(emu.ok()) << emu.error();
  auto rs = start_two_replicas(emu.kubeconfig,
                               "workload_provider = \"agent-sandbox\"\n");
  ASSERT_EQ(rs.size(), 2u);
  auto& a = *rs[0];
  auto& b = *rs[1];
  auto logs = [&] { return a.read_log() + "\n==== b\n" + b.read_log(); };

  // Sandboxes through A until B holds two (placement spreads them).
  std::vector<std::string> ids, lost;
  for (int i = 0; i < 8 && lost.size() < 2; ++i) {
    auto r = a.call("POST", "/v1/sandboxes",
                    R"({"image":{"uri":"python:3.12"},"entrypoint":["sleep",)"
                    R"("infinity"],"timeout":600,"metadata":{"n":"1"},)"
                    R"("resourceLimits":{"cpu":"500m","memory":"256Mi"}})");
    ASSERT_EQ(r.status, 202) << r.body;
    std::string id = r.json()["id"].GetString();
    ids.push_back(id);
    ASSERT_EQ(a.wait_state(id, "Running", 15s), "Running") << logs();
    if (owners(emu, sandboxes)["sandbox-" + id] == b.node() + "/" + b.node())
      lost.push_back(id);
  }
  ASSERT_EQ(lost.size(), 2u) << "placement gave B too few";

  // kill -9 of B: A relabels its pods and Sandboxes and serves them.
  b.kill(SIGKILL);
  ASSERT_TRUE(eventually(
    [&] {
      for (auto& [name, owner] : owners(emu, sandboxes))
        if (owner != a.node() + "/" + a.node())
          return false;
      for (auto& [name, owner] : owners(emu, pods))
        if (owner != a.node())
          return false;
      for (auto& id : lost)
        if (a.call("GET", "/v1/sandboxes/" + id).status != 200)
          return false;
      return true;
    },
    15s))
    << logs();
  EXPECT_NE(a.read_log().find("supervisor adopts a sandbox"),
            std::string::npos);
  for (auto& id : lost) {
    EXPECT_EQ(a.wait_state(id, "Running", 5s), "Running") << id;
    auto got = a.call("GET", "/v1/sandboxes/" + id);
    EXPECT_STREQ(got.json()["metadata"]["n"].GetString(), "1") << got.body;
  }
  // The adopter writes to them: a renewal reaches the Sandbox.
  ASSERT_EQ(a.call("POST", "/v1/sandboxes/" + lost[0] + "/renew-expiration",
                   R"({"expiresAt":"2099-01-01T00:00:00Z"})")
              .status,
            200);
  EXPECT_TRUE(eventually(
    [&] {
      auto s = http_call(api_port(emu), "GET",
                         std::string{sandboxes} + "/sandbox-" + lost[0]);
      return s.status == 200
             && s.body.find("\"shutdownTime\":\"2099-01-01T00:00:00Z\"")
                  != std::string::npos;
    },
    5s));
  // Deleted through the survivor: the Sandbox and its pod go.
  for (auto& id : ids) {
    EXPECT_EQ(a.call("DELETE", "/v1/sandboxes/" + id).status, 204) << id;
    EXPECT_TRUE(eventually(
      [&] {
        auto name = "/sandbox-" + id;
        return http_call(api_port(emu), "GET", sandboxes + name).status
                 == 404
               && http_call(api_port(emu), "GET", pods + name).status
                    == 404;
      },
      10s))
      << id;
  }
  EXPECT_TRUE(owners(emu, sandboxes).empty());
  EXPECT_TRUE(owners(emu, pods).empty());
}
