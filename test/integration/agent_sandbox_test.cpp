// kubernetes.workload_provider = "agent-sandbox" end to end: the real server
// against the API-server emulator serving the agents.x-k8s.io Sandbox CRD
// with its minimal agent-sandbox controller (Sandbox -> pod). The lifecycle
// over the API, renewals reaching the Sandbox's spec.shutdownTime, delete
// removing the Sandbox and its pod, a restart with an emptied store adopting
// from the Sandbox, a bad image failing with its reason, a missing CRD at
// start-up; with --docker, a command through execd in the controller's pod.
//
// The CRD is test/k8s-emulator/crds/agent-sandbox-v1alpha1.yaml, or the
// upstream one (kubernetes-sigs/agent-sandbox
// k8s/crds/agents.x-k8s.io_sandboxes.yaml) when OSB_AGENT_SANDBOX_CRD names
// it.

#include "k8s_emulator.hpp"
#include "server_process.hpp"

#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

using namespace osb;
using namespace osb::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* sandboxes_path
  = "/apis/agents.x-k8s.io/v1alpha1/namespaces/default/sandboxes/";

std::string crd_file() {
  if (auto env = std::getenv("OSB_AGENT_SANDBOX_CRD"); env && *env)
    return env;
  return std::string{OSB_SOURCE_DIR}
         + "/test/k8s-emulator/crds/agent-sandbox-v1alpha1.yaml";
}

/// The emulator with the Sandbox CRD and its controller (`more` appended).
std::vector<std::string> emulator_args(std::vector<std::string> more = {}) {
  std::vector<std::string> args{"--no-events", "--crd", crd_file(),
                                "--agent-sandbox-controller"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

std::string agent_config(server_process& srv, const std::string& kubeconfig,
                         const std::string& runtime_extra = {},
                         int create_timeout_seconds = 10) {
  return "[server]\nhost = \"127.0.0.1\"\nport = "
         + std::to_string(srv.port())
         + "\napi_key = \"test-key\"\n[log]\nlevel = \"DEBUG\"\n"
           "[runtime]\ntype = \"kubernetes\"\n"
         + runtime_extra + "[kubernetes]\nkubeconfig_path = \"" + kubeconfig
         + "\"\nsandbox_create_timeout_seconds = "
         + std::to_string(create_timeout_seconds)
         + "\nworkload_provider = \"agent-sandbox\"\n"
           "[agent_sandbox]\nshutdown_policy = \"Delete\"\n"
           "[store]\npath = \""
         + srv.store_path() + "\"\n[cluster]\nnode_name = \"" + srv.node()
         + "\"\n";
}

constexpr const char* create_body
  = R"({"image":{"uri":"python:3.12"},"entrypoint":["sleep","infinity"],)"
    R"("timeout":600,"resourceLimits":{"cpu":"500m","memory":"256Mi"},)"
    R"("metadata":{"team":"ml"}})";

std::string create(server_process& srv, const char* body = create_body) {
  auto r = srv.call("POST", "/v1/sandboxes", body);
  EXPECT_EQ(r.status, 202) << r.body;
  if (r.status != 202)
    return {};
  return r.json()["id"].GetString();
}

uint16_t api_port(const k8s_emulator& emu) {
  return static_cast<uint16_t>(std::stoi(emu.url.substr(emu.url.rfind(':') + 1)));
}

/// GET of one object of the emulator's API (plain HTTP): status and body.
http_reply get(const k8s_emulator& emu, const std::string& path) {
  return http_call(api_port(emu), "GET", path);
}

/// The Sandbox of sandbox `id`; null document when there is none.
rapidjson::Document sandbox_of(const k8s_emulator& emu, const std::string& id) {
  rapidjson::Document doc;
  auto r = get(emu, sandboxes_path + ("sandbox-" + id));
  if (r.status == 200)
    doc.Parse(r.body.c_str());
  return doc;
}

/// Polls (up to 5 s) until `pred` holds.
template <class Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 250; ++i) {
    if (pred())
      return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

std::string str(const rapidjson::Value& obj, const char* a, const char* b,
                const char* c = nullptr) {
  if (!obj.IsObject() || !obj.HasMember(a) || !obj[a].HasMember(b))
    return {};
  auto& v = obj[a][b];
  if (c == nullptr)
    return v.IsString() ? v.GetString() : "";
  return v.IsObject() && v.HasMember(c) && v[c].IsString() ? v[c].GetString()
                                                           : "";
}

} // namespace

TEST(AgentSandbox, LifecycleRenewalsDeleteAndAdoptionOnTheEmulator) {
  OSB_REQUIRE_NODE();
  k8s_emulator emu{emulator_args()};
  ASSERT_TRUE(emu.ok()) << emu.error();
  server_process srv;
  srv.use_config(agent_config(srv, emu.kubeconfig));
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  auto id = create(srv);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(srv.wait_state(id, "Running", 15s), "Running") << srv.read_log();
  auto name = "sandbox-" + id;
  // The Sandbox is ours; its pod is the controller's, owned by it.
  auto sb = sandbox_of(emu, id);
  ASSERT_TRUE(sb.IsObject()) << "no Sandbox " << name;
  EXPECT_EQ(str(sb, "metadata", "labels", "opensandbox.io/node"), srv.node());
  EXPECT_EQ(str(sb, "spec", "shutdownPolicy"), "Delete");
  EXPECT_FALSE(str(sb, "spec", "shutdownTime").empty());
  auto pod_reply = get(emu, "/api/v1/namespaces/default/pods/" + name);
  ASSERT_EQ(pod_reply.status, 200);
  auto pod = pod_reply.json();
  EXPECT_STREQ(pod["metadata"]["ownerReferences"][0]["kind"].GetString(),
               "Sandbox");
  EXPECT_STREQ(pod["metadata"]["ownerReferences"][0]["uid"].GetString(),
               sb["metadata"]["uid"].GetString());
  EXPECT_EQ(pod["spec"]["initContainers"][0]["name"].GetString(),
            std::string{"execd-installer"});
  // The API: GET, list, endpoints at the pod's address.
  auto got = srv.call("GET", "/v1/sandboxes/" + id);
  ASSERT_EQ(got.status, 200);
  EXPECT_STREQ(got.json()["metadata"]["team"].GetString(), "ml");
  EXPECT_EQ(srv.call("GET", "/v1/sandboxes").json()["items"].Size(), 1u);
  auto ep = srv.call("GET", "/v1/sandboxes/" + id + "/endpoints/8080");
  ASSERT_EQ(ep.status, 200) << ep.body;
  std::string endpoint = ep.json()["endpoint"].GetString();
  EXPECT_EQ(endpoint, pod["status"]["podIP"].GetString() + std::string{":8080"});
  // A renewal and a metadata patch reach the Sandbox.
  ASSERT_EQ(srv.call("POST", "/v1/sandboxes/" + id + "/renew-expiration",
                     R"({"expiresAt":"2099-01-01T00:00:00Z"})")
              .status,
            200);
  ASSERT_EQ(srv.call("PATCH", "/v1/sandboxes/" + id + "/metadata",
                     R"({"team":"infra"})")
              .status,
            200);
  EXPECT_TRUE(eventually([&] {
    auto s = sandbox_of(emu, id);
    return str(s, "spec", "shutdownTime") == "2099-01-01T00:00:00Z"
           && str(s, "metadata", "annotations", "opensandbox.io/expires-at")
                == "2099-01-01T00:00:00Z"
           && str(s, "metadata", "annotations", "opensandbox.io/metadata")
                == R"({"team":"infra"})";
  })) << get(emu, sandboxes_path + name).body;
  // kill -9 with the store lost: the Sandbox brings the sandbox back.
  srv.kill(SIGKILL);
  for (auto suffix : {"", "-wal", "-shm"})
    std::filesystem::remove(srv.store_path() + suffix);
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  got = srv.call("GET", "/v1/sandboxes/" + id);
  ASSERT_EQ(got.status, 200) << got.body << srv.read_log();
  EXPECT_STREQ(got.json()["status"]["state"].GetString(), "Running");
  EXPECT_STREQ(got.json()["expiresAt"].GetString(), "2099-01-01T00:00:00Z");
  EXPECT_STREQ(got.json()["metadata"]["team"].GetString(), "infra");
  EXPECT_EQ(srv.call("GET", "/v1/sandboxes/" + id + "/endpoints/8080")
              .json()["endpoint"]
              .GetString(),
            endpoint);
  EXPECT_NE(srv.read_log().find("supervisor adopts a sandbox"),
            std::string::npos);
  // Delete removes the Sandbox, and the controller its pod.
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  EXPECT_TRUE(eventually([&] {
    return get(emu, sandboxes_path + name).status == 404
           && get(emu, "/api/v1/namespaces/default/pods/" + name).status
                == 404;
  }));
}

TEST(AgentSandbox, ABadImageFailsTheCreateWithItsReason) {
  OSB_REQUIRE_NODE();
  k8s_emulator emu{emulator_args()};
  ASSERT_TRUE(emu.ok()) << emu.error();
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/image-failures",
                           R"({"image":"python:3.12"})")
              .status,
            200);
  server_process srv;
  srv.use_config(agent_config(srv, emu.kubeconfig));
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  auto id = create(srv);
  ASSERT_EQ(srv.wait_state(id, "Failed", 15s), "Failed");
  auto got = srv.call("GET", "/v1/sandboxes/" + id);
  EXPECT_STREQ(got.json()["status"]["reason"].GetString(),
               "IMAGE_PULL_FAILED");
  // The failed Sandbox is removed, and its pod with it.
  EXPECT_TRUE(eventually([&] {
    return get(emu, sandboxes_path + ("sandbox-" + id)).status == 404
           && get(emu, "/api/v1/namespaces/default/pods/sandbox-" + id).status
                == 404;
  }));
}

TEST(AgentSandbox, AMissingCrdIsAClearStartUpError) {
  OSB_REQUIRE_NODE();
  k8s_emulator emu{{"--no-events"}};
  ASSERT_TRUE(emu.ok()) << emu.error();
  server_process srv;
  srv.use_config(agent_config(srv, emu.kubeconfig));
  srv.spawn();
  EXPECT_EQ(srv.wait_exit(20s), 2);
  auto log = srv.read_log();
  EXPECT_NE(log.find("does not serve sandboxes.agents.x-k8s.io/v1alpha1"),
            std::string::npos)
    << log;
}

TEST(AgentSandbox, ExecdAnswersInTheControllersRealPod) {
  OSB_REQUIRE_NODE();
  if (std::system("docker version >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "docker is not available (the emulator's --docker mode)";
  ASSERT_EQ(std::system("docker image inspect opensandbox/execd:latest "
                        ">/dev/null 2>&1"),
            0)
    << "the image opensandbox/execd:latest is missing";
  k8s_emulator emu{emulator_args({"--docker"})};
  ASSERT_TRUE(emu.ok()) << emu.error();
  server_process srv;
  // Real containers start slowly on a loaded machine.
  srv.use_config(agent_config(srv, emu.kubeconfig,
                              "execd_image = \"opensandbox/execd:latest\"\n",
                              60));
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  auto id = create(srv, R"({"image":{"uri":"opensandbox/busybox:latest"},)"
                        R"("entrypoint":["sleep","3600"],"timeout":600,)"
                        R"("resourceLimits":{"cpu":"500m","memory":"256Mi"}})");
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(srv.wait_state(id, "Running", 70s), "Running") << srv.read_log();
  auto proxied = http_call(srv.port(), "POST",
                           "/sandboxes/" + id + "/proxy/44772/command",
                           R"x({"command":"echo in-sandbox-$((6*7))"})x",
                           {{"OPEN-SANDBOX-API-KEY", "test-key"}});
  EXPECT_EQ(proxied.status, 200) << proxied.body;
  EXPECT_NE(proxied.body.find("in-sandbox-42"), std::string::npos)
    << proxied.body;
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  // The pod's containers and volumes go with the Sandbox.
  auto filter = std::string{" --filter label=io.opensandbox.k8s-emulator.pod="
                            "default/sandbox-"}
                + id;
  EXPECT_TRUE(eventually([&] {
    return std::system(("test -z \"$(docker ps -aq" + filter
                        + ")$(docker volume ls -q" + filter + ")\"")
                         .c_str())
           == 0;
  }));
}
