// The Kubernetes runtime (runtime.type = "kubernetes") end to end: the real
// server against the API-server emulator (test/k8s-emulator), not a live
// cluster. The lifecycle over the API, kill -9 and restart (with the store
// kept, and emptied: the pods' annotations bring the sandboxes back), the
// API server down and back, and a kubeconfig that cannot be read. With
// the emulator's --docker mode a pod really runs (init container, emptyDir,
// execd's bootstrap): commands reach execd in it, directly and through the
// server proxy.

#include "k8s_emulator.hpp"
#include "kube_support.hpp"
#include "server_process.hpp"
#include "test_dns_server.hpp"

#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

using namespace osb;
using namespace osb::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* create_body
  = R"({"image":{"uri":"python:3.12"},"entrypoint":["sleep","infinity"],)"
    R"("timeout":600,"resourceLimits":{"cpu":"500m","memory":"256Mi"},)"
    R"("metadata":{"team":"ml"}})";

std::string create(server_process& srv) {
  auto r = srv.call("POST", "/v1/sandboxes", create_body);
  EXPECT_EQ(r.status, 202) << r.body;
  if (r.status != 202)
    return {};
  return r.json()["id"].GetString();
}

/// The pods of the emulator (its admin state) as a parsed document.
rapidjson::Document emulator_pods(const k8s_emulator& emu) {
  auto r = emu.admin_call("GET", "/_emulator/state?resource=pods");
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  return doc;
}

size_t num_pods(const k8s_emulator& emu) {
  auto doc = emulator_pods(emu);
  if (!doc.IsObject() || !doc.HasMember("objects"))
    return 0;
  return doc["objects"]["pods"].Size();
}

std::string annotation(const k8s_emulator& emu, const std::string& key) {
  auto doc = emulator_pods(emu);
  auto& pods = doc["objects"]["pods"];
  if (pods.Size() == 0)
    return {};
  auto& a = pods[0]["metadata"]["annotations"];
  return a.HasMember(key.c_str()) ? a[key.c_str()].GetString() : "";
}

} // namespace

TEST(Kubernetes, LifecycleOnTheEmulator) {
  OSB_REQUIRE_NODE();
  k8s_emulator emu{{"--no-events"}};
  ASSERT_TRUE(emu.ok()) << emu.error();
  server_process srv;
  srv.use_config(kube_config(srv, emu.kubeconfig));
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  auto id = create(srv);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(srv.wait_state(id, "Running", 15s), "Running") << srv.read_log();
  auto got = srv.call("GET", "/v1/sandboxes/" + id);
  ASSERT_EQ(got.status, 200);
  EXPECT_STREQ(got.json()["metadata"]["team"].GetString(), "ml");
  auto list = srv.call("GET", "/v1/sandboxes");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.json()["items"].Size(), 1u);
  // Endpoints: the pod's IP and port, execd's token in the headers.
  auto ep = srv.call("GET", "/v1/sandboxes/" + id + "/endpoints/8080");
  ASSERT_EQ(ep.status, 200) << ep.body;
  std::string endpoint = ep.json()["endpoint"].GetString();
  EXPECT_EQ(endpoint.rfind("10.244.", 0), 0u) << endpoint;
  EXPECT_EQ(endpoint.substr(endpoint.size() - 5), ":8080");
  auto execd = srv.call("GET", "/v1/sandboxes/" + id + "/endpoints/3000");
  ASSERT_EQ(execd.status, 200);
  EXPECT_NE(std::string{execd.json()["endpoint"].GetString()}.find(
              ":44772/proxy/3000"),
            std::string::npos);
  EXPECT_TRUE(execd.json()["headers"].HasMember("X-EXECD-ACCESS-TOKEN"));
  // Renew and metadata patches reach the pod's annotations.
  auto renew = srv.call("POST", "/v1/sandboxes/" + id + "/renew-expiration",
                        R"({"expiresAt":"2099-01-01T00:00:00Z"})");
  ASSERT_EQ(renew.status, 200) << renew.body;
  auto patch = srv.call("PATCH", "/v1/sandboxes/" + id + "/metadata",
                        R"({"team":"infra"})");
  ASSERT_EQ(patch.status, 200) << patch.body;
  std::string meta;
  for (int i = 0; i < 100 && meta != R"({"team":"infra"})"; ++i) {
    std::this_thread::sleep_for(20ms);
    meta = annotation(emu, "opensandbox.io/metadata");
  }
  EXPECT_EQ(meta, R"({"team":"infra"})");
  EXPECT_EQ(annotation(emu, "opensandbox.io/expires-at"),
            "2099-01-01T00:00:00Z");
  // Pods cannot be paused: the seed's error (400).
  auto pause = srv.call("POST", "/v1/sandboxes/" + id + "/pause");
  EXPECT_EQ(pause.status, 400) << pause.body;
  EXPECT_NE(pause.body.find("KUBERNETES::INVALID_STATE"), std::string::npos)
    << pause.body;
  EXPECT_NE(pause.body.find("Pause is not supported for this sandbox type"),
            std::string::npos)
    << pause.body;
  EXPECT_EQ(srv.wait_state(id, "Running", 5s), "Running");
  // Delete: 204, then 404, and the pod goes.
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(srv.wait_state(id, "404", 10s), "404");
  for (int i = 0; i < 100 && num_pods(emu) != 0; ++i)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(num_pods(emu), 0u);
}

TEST(Kubernetes, ImagePullFailureFailsTheCreateWithItsReason) {
  OSB_REQUIRE_NODE();
  k8s_emulator emu{{"--no-events"}};
  ASSERT_TRUE(emu.ok()) << emu.error();
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/image-failures",
                           R"({"image":"python:3.12"})")
              .status,
            200);
  server_process srv;
  srv.use_config(kube_config(srv, emu.kubeconfig));
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  auto id = create(srv);
  ASSERT_EQ(srv.wait_state(id, "Failed", 15s), "Failed");
  auto got = srv.call("GET", "/v1/sandboxes/" + id);
  EXPECT_STREQ(got.json()["status"]["reason"].GetString(),
               "IMAGE_PULL_FAILED");
  // The failed pod is removed.
  for (int i = 0; i < 100 && num_pods(emu) != 0; ++i)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(num_pods(emu), 0u);
}

// The 202 waits for the pod (issue 19): a pod the API server refuses fails
// the create at once, as a refused admission does, and leaves nothing.
TEST(Kubernetes, ARefusedPodFailsTheCreateBeforeAny202) {
  OSB_REQUIRE_NODE();
  k8s_emulator emu{{"--no-events"}};
  ASSERT_TRUE(emu.ok()) << emu.error();
  server_process srv;
  srv.use_config(kube_config(srv, emu.kubeconfig));
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/faults",
                           R"({"verb":"create","resource":"pods","count":1,)"
                           R"("code":403,"message":"exceeded quota"})")
              .status,
            200);
  auto r = srv.call("POST", "/v1/sandboxes", create_body);
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_NE(r.body.find("DOCKER::SANDBOX_START_FAILED"), std::string::npos)
    << r.body;
  EXPECT_NE(r.body.find("HTTP 403"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("exceeded quota"), std::string::npos) << r.body;
  auto l = srv.call("GET", "/v1/sandboxes");
  ASSERT_EQ(l.status, 200) << l.body;
  EXPECT_EQ(l.json()["items"].Size(), 0u) << l.body;
  EXPECT_EQ(num_pods(emu), 0u);
  // The next create goes through.
  auto id = create(srv);
  EXPECT_EQ(srv.wait_state(id, "Running", 15s), "Running");
}

TEST(Kubernetes, KillNineAndRestartLoseNothingEvenWithAnEmptiedStore) {
  OSB_REQUIRE_NODE();
  k8s_emulator emu{{"--no-events"}};
  ASSERT_TRUE(emu.ok()) << emu.error();
  server_process srv;
  srv.use_config(kube_config(srv, emu.kubeconfig));
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  auto id = create(srv);
  ASSERT_EQ(srv.wait_state(id, "Running", 15s), "Running");
  ASSERT_EQ(srv.call("POST", "/v1/sandboxes/" + id + "/renew-expiration",
                     R"({"expiresAt":"2099-01-01T00:00:00Z"})")
              .status,
            200);
  ASSERT_EQ(srv.call("PATCH", "/v1/sandboxes/" + id + "/metadata",
                     R"({"team":"infra"})")
              .status,
            200);
  std::string token
    = srv.call("GET", "/v1/sandboxes/" + id + "/endpoints/3000")
        .json()["headers"]["X-EXECD-ACCESS-TOKEN"]
        .GetString();
  ASSERT_FALSE(token.empty());
  std::string meta;
  for (int i = 0; i < 100 && meta != R"({"team":"infra"})"; ++i) {
    std::this_thread::sleep_for(20ms);
    meta = annotation(emu, "opensandbox.io/metadata");
  }
  auto check = [&](const char* when) {
    SCOPED_TRACE(when);
    auto got = srv.call("GET", "/v1/sandboxes/" + id);
    ASSERT_EQ(got.status, 200) << got.body;
    auto doc = got.json();
    EXPECT_STREQ(doc["status"]["state"].GetString(), "Running");
    EXPECT_STREQ(doc["expiresAt"].GetString(), "2099-01-01T00:00:00Z");
    EXPECT_STREQ(doc["metadata"]["team"].GetString(), "infra");
    auto ep = srv.call("GET", "/v1/sandboxes/" + id + "/endpoints/3000");
    ASSERT_EQ(ep.status, 200);
    EXPECT_EQ(std::string{ep.json()["headers"]["X-EXECD-ACCESS-TOKEN"]
                            .GetString()},
              token);
    EXPECT_EQ(std::string{ep.json()["endpoint"].GetString()}.rfind("10.244.",
                                                                   0),
              0u);
  };
  srv.kill(SIGKILL);
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  check("store kept");
  // The store is lost: the pods' annotations bring the sandbox back; it is
  // not removed as an orphan.
  srv.kill(SIGKILL);
  for (auto suffix : {"", "-wal", "-shm"})
    std::filesystem::remove(srv.store_path() + suffix);
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  check("store emptied");
  EXPECT_EQ(num_pods(emu), 1u);
  EXPECT_NE(srv.read_log().find("supervisor adopts a sandbox"),
            std::string::npos);
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
}

TEST(Kubernetes, ApiServerDownAnswers503AndRecoversByItself) {
  OSB_REQUIRE_NODE();
  k8s_emulator emu{{"--no-events"}};
  ASSERT_TRUE(emu.ok()) << emu.error();
  server_process srv;
  srv.use_config(kube_config(srv, emu.kubeconfig));
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/down").status, 200);
  http_reply ready;
  for (int i = 0; i < 100; ++i) {
    ready = srv.call("GET", "/ready");
    if (ready.status == 503)
      break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("API server http://127.0.0.1:"),
            std::string::npos)
    << ready.body;
  auto t0 = std::chrono::steady_clock::now();
  auto refused = srv.call("POST", "/v1/sandboxes", create_body);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_LT(took, 1s);
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/up").status, 200);
  // Recovery by itself: readiness, then creates (the supervisor's next
  // reconciliation, every 5 s).
  int status = 0;
  for (int i = 0; i < 300 && status != 202; ++i) {
    auto r = srv.call("POST", "/v1/sandboxes", create_body);
    status = r.status;
    if (status == 202)
      EXPECT_EQ(srv.wait_state(r.json()["id"].GetString(), "Running", 15s),
                "Running");
    else
      std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(status, 202);
  EXPECT_EQ(srv.call("GET", "/ready").status, 200);
}

TEST(Kubernetes, ABadKubeconfigIsAClearStartUpError) {
  server_process srv;
  auto missing = "/nonexistent/" + srv.node() + "/kubeconfig";
  srv.use_config(kube_config(srv, missing));
  srv.spawn();
  EXPECT_EQ(srv.wait_exit(20s), 2);
  auto log = srv.read_log();
  EXPECT_NE(log.find("kubernetes: kubeconfig " + missing), std::string::npos)
    << log;
}

TEST(Kubernetes, ABrokenOrExpiredWatchIsResumedAndCreatesStillComplete) {
  OSB_REQUIRE_NODE();
  k8s_emulator emu{{"--no-events"}};
  ASSERT_TRUE(emu.ok()) << emu.error();
  server_process srv;
  srv.use_config(kube_config(srv, emu.kubeconfig));
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  // One watch of pods (the replica's lease informer watches leases).
  auto watches = [&] {
    rapidjson::Document doc;
    doc.Parse(emu.admin_call("GET", "/_emulator/watches").body.c_str());
    if (!doc.IsObject() || !doc.HasMember("watches"))
      return 0u;
    unsigned n = 0;
    for (auto& w : doc["watches"].GetArray())
      n += std::string{w["resource"].GetString()} == "pods";
    return n;
  };
  EXPECT_EQ(watches(), 1u);
  auto create_runs = [&] {
    auto id = create(srv);
    EXPECT_EQ(srv.wait_state(id, "Running", 15s), "Running") << srv.read_log();
    size_t n = 0;
    for (int i = 0; i < 100 && (n = watches()) != 1; ++i)
      std::this_thread::sleep_for(50ms);
    EXPECT_EQ(n, 1u) << "one watch connection, resumed";
  };
  // The API server ends every watch (as a restart of it would): resumed
  // from the last resourceVersion.
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/close-watches").status, 200);
  create_runs();
  // While it is away, things change and its history is compacted: the
  // resumed watch gets 410 Gone and the informer lists again.
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/down").status, 200);
  auto other = R"({"namespace":"default","count":1,"prefix":"other-",)"
               R"("template":{"apiVersion":"v1","kind":"Pod","metadata":{},)"
               R"("spec":{"containers":[{"name":"c","image":"busybox:1"}]}}})";
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/pods/bulk", other).status, 200);
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/compact").status, 200);
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/up").status, 200);
  // Creates are refused until the supervisor sees the runtime back.
  int status = 0;
  for (int i = 0; i < 300 && status != 202; ++i) {
    auto r = srv.call("POST", "/v1/sandboxes", create_body);
    status = r.status;
    if (status == 202)
      EXPECT_EQ(srv.wait_state(r.json()["id"].GetString(), "Running", 15s),
                "Running");
    else
      std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(status, 202);
  // The first listing, and the one after 410 Gone.
  auto log = srv.read_log();
  size_t lists = 0;
  for (auto at = log.find("listed "); at != std::string::npos;
       at = log.find("listed ", at + 1))
    ++lists;
  EXPECT_GE(lists, 2u) << log;
}

TEST(Kubernetes, ExecdRunsInARealPodAndAnswersDirectlyAndThroughTheProxy) {
  OSB_REQUIRE_REAL_PODS();
  k8s_emulator emu{{"--no-events", "--docker"}};
  ASSERT_TRUE(emu.ok()) << emu.error();
  server_process srv;
  srv.use_config(kube_config(
    srv, emu.kubeconfig, {}, "execd_image = \"opensandbox/execd:latest\"\n"));
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  auto r = srv.call("POST", "/v1/sandboxes",
                    R"({"image":{"uri":"opensandbox/busybox:latest"},)"
                    R"("entrypoint":["sleep","3600"],"timeout":600,)"
                    R"("resourceLimits":{"cpu":"500m","memory":"256Mi"}})");
  ASSERT_EQ(r.status, 202) << r.body;
  std::string id = r.json()["id"].GetString();
  ASSERT_EQ(srv.wait_state(id, "Running", 15s), "Running") << srv.read_log();
  auto ep = srv.call("GET", "/v1/sandboxes/" + id + "/endpoints/44772");
  ASSERT_EQ(ep.status, 200) << ep.body;
  auto doc = ep.json();
  std::string endpoint = doc["endpoint"].GetString();
  ASSERT_TRUE(doc.HasMember("headers")) << ep.body;
  std::string token = doc["headers"]["X-EXECD-ACCESS-TOKEN"].GetString();
  // The pod IP is the sandbox container's on the Docker bridge.
  auto colon = endpoint.find(':');
  ASSERT_NE(colon, std::string::npos) << endpoint;
  auto ip = endpoint.substr(0, colon);
  auto slash = endpoint.find('/', colon);
  auto port = static_cast<uint16_t>(
    std::stoi(endpoint.substr(colon + 1, slash - colon - 1)));
  auto prefix = slash == std::string::npos ? "" : endpoint.substr(slash);
  EXPECT_EQ(port, 44772);
  auto command = R"({"command":"echo in-pod-$((6*7)); id -u"})";
  // Ready means execd listens: no retries.
  auto direct = http_call_at(ip, port, "POST", prefix + "/command", command,
                             {{"X-EXECD-ACCESS-TOKEN", token}});
  EXPECT_EQ(direct.status, 200) << direct.body << srv.read_log();
  EXPECT_NE(direct.body.find("in-pod-42"), std::string::npos) << direct.body;
  EXPECT_EQ(http_call_at(ip, port, "POST", prefix + "/command", command)
              .status,
            401);
  auto proxied = http_call(srv.port(), "POST",
                           "/sandboxes/" + id + "/proxy/44772/command",
                           command, {{"OPEN-SANDBOX-API-KEY", "test-key"}});
  EXPECT_EQ(proxied.status, 200) << proxied.body;
  EXPECT_NE(proxied.body.find("in-pod-42"), std::string::npos)
    << proxied.body;
  auto pod = "sandbox-" + id;
  EXPECT_NE(pod_leftovers(pod), "");
  // Delete: the pod's containers and its emptyDir volume go with it.
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(srv.wait_state(id, "404", 10s), "404");
  std::string left = pod_leftovers(pod);
  for (int i = 0; i < 100 && !left.empty(); ++i) {
    std::this_thread::sleep_for(50ms);
    left = pod_leftovers(pod);
  }
  EXPECT_EQ(left, "") << "containers or volumes of " << pod << " remain";
}

TEST(Kubernetes, ARealPodsEgressSidecarResolvesAllowedNamesOnly) {
  OSB_REQUIRE_REAL_PODS();
  ASSERT_EQ(std::system("docker image inspect opensandbox/egress:latest "
                        ">/dev/null 2>&1"),
            0)
    << "the image opensandbox/egress:latest is missing: run deploy/setup.sh";
  // The upstream DNS server on the Docker bridge's gateway (no internet).
  auto gateway = output_of(
    "ip -4 -o addr show dev \"$(docker network inspect bridge -f "
    "'{{index .Options \"com.docker.network.bridge.name\"}}')\" "
    "| awk '{print $4}' | cut -d/ -f1 | head -n1");
  test_dns_server dns{gateway};
  ASSERT_TRUE(dns.ok) << "cannot bind a DNS server on " << gateway;
  dns.set("allowed.test", gateway);
  dns.set("denied.test", gateway);
  k8s_emulator emu{{"--no-events", "--docker"}};
  ASSERT_TRUE(emu.ok()) << emu.error();
  server_process srv;
  srv.use_config(kube_config(
    srv, emu.kubeconfig,
    "[egress]\nimage = \"opensandbox/egress:latest\"\nmode = "
    "\"dns+nft\"\nupstream_dns = \""
      + gateway + ":" + std::to_string(dns.port) + "\"\n",
    "execd_image = \"opensandbox/execd:latest\"\n"));
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  auto r = srv.call(
    "POST", "/v1/sandboxes",
    R"({"image":{"uri":"opensandbox/busybox:latest"},)"
    R"("entrypoint":["sleep","3600"],"timeout":600,"resourceLimits":{},)"
    R"("networkPolicy":{"defaultAction":"deny","egress":[)"
    R"({"action":"allow","target":"allowed.test"}]}})");
  ASSERT_EQ(r.status, 202) << r.body;
  std::string id = r.json()["id"].GetString();
  ASSERT_EQ(srv.wait_state(id, "Running", 15s), "Running") << srv.read_log();
  auto run = [&](const std::string& cmd) {
    return http_call(srv.port(), "POST",
                     "/sandboxes/" + id + "/proxy/44772/command",
                     R"({"command":")" + cmd + R"("})",
                     {{"OPEN-SANDBOX-API-KEY", "test-key"}});
  };
  auto allowed = run("nslookup allowed.test; echo rc=$?");
  EXPECT_EQ(allowed.status, 200) << allowed.body;
  EXPECT_NE(allowed.body.find(gateway), std::string::npos) << allowed.body;
  EXPECT_NE(allowed.body.find("rc=0"), std::string::npos) << allowed.body;
  auto denied = run("nslookup denied.test; echo rc=$?");
  EXPECT_EQ(denied.status, 200) << denied.body;
  EXPECT_NE(denied.body.find("NXDOMAIN"), std::string::npos) << denied.body;
  EXPECT_EQ(denied.body.find("rc=0"), std::string::npos) << denied.body;
  auto pod = "sandbox-" + id;
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(srv.wait_state(id, "404", 10s), "404");
  std::string left = pod_leftovers(pod);
  for (int i = 0; i < 100 && !left.empty(); ++i) {
    std::this_thread::sleep_for(50ms);
    left = pod_leftovers(pod);
  }
  EXPECT_EQ(left, "") << "containers or volumes of " << pod << " remain";
}
