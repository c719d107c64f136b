#include "runtimes/kubernetes/agent_sandbox.hpp"

#include <gtest/gtest.h>

#include <rapidjson/document.h>
#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/spec_json.hpp"
#include "core/time.hpp"
#include "runtimes/kubernetes/kubernetes_runtime.hpp"
#include "test/unit/runtimes/kubernetes/fake_kube.hpp"

using namespace osb;
using namespace osb::runtimes;
using namespace osb::runtimes::kubernetes;
using osb::runtimes::kubernetes::test::fake_client;
using osb::runtimes::kubernetes::test::fake_informer;

namespace {

rapidjson::Document parse(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  EXPECT_FALSE(doc.HasParseError()) << json;
  return doc;
}

const rapidjson::Value* at(const rapidjson::Document& doc,
                           const char* pointer) {
  return rapidjson::Pointer(pointer).Get(doc);
}

std::string str_at(const rapidjson::Document& doc, const char* pointer) {
  auto v = at(doc, pointer);
  if (v == nullptr)
    return "<absent>";
  if (v->IsNull())
    return "<null>";
  return v->IsString() ? v->GetString() : "<other>";
}

std::string text(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w{buf};
  v.Accept(w);
  return buf.GetString();
}

/// `json` with `member` (a JSON text) set at the top level.
std::string with(const std::string& json, const char* member,
                 const std::string& value) {
  auto doc = parse(json);
  auto v = parse(value);
  doc.RemoveMember(member);
  doc.AddMember(rapidjson::Value{member, doc.GetAllocator()},
                rapidjson::Value{v, doc.GetAllocator()}, doc.GetAllocator());
  return text(doc);
}

sandbox_instance instance(const std::string& id = "sbx-1") {
  sandbox_instance x;
  x.id = id;
  x.node = "node-a";
  x.runtime_host = "default";
  x.spec.image = "python:3.12";
  x.spec.entrypoint = {"sleep", "infinity"};
  x.spec.metadata = {{"team", "a"}};
  x.access_token = "tok";
  x.created_us = 1'780'000'000'000'000;
  x.expires_us = x.created_us + 600'000'000;
  return x;
}

node_config config() {
  node_config cfg;
  cfg.runtime.type = "kubernetes";
  cfg.kubernetes.workload_provider = "agent-sandbox";
  cfg.runtime.execd_image = "opensandbox/execd:latest";
  return cfg;
}

std::string sandbox_with_ready(const std::string& status,
                               const std::string& reason,
                               const std::string& message = "") {
  auto json = make_sandbox(config(), instance(), "inc-1", {});
  return with(json, "status",
              R"({"conditions":[{"type":"Ready","status":")" + status
                + R"(","reason":")" + reason + R"(","message":")" + message
                + R"(","lastTransitionTime":"2026-01-01T00:00:00Z"}],
                  "podIPs":["10.244.0.7"]})");
}

} // namespace

// -- the Sandbox object -------------------------------------------------------

TEST(AgentSandbox, TheSandboxTemplateIsThePodOfThePodProvider) {
  auto cfg = config();
  auto x = instance();
  auto sb = parse(make_sandbox(cfg, x, "inc-1", {}));
  auto pod = parse(make_pod(cfg, x, "inc-1", {}));
  EXPECT_EQ(str_at(sb, "/apiVersion"), "agents.x-k8s.io/v1alpha1");
  EXPECT_EQ(str_at(sb, "/kind"), "Sandbox");
  // The controller names the pod after the Sandbox: the pod provider's name.
  EXPECT_EQ(str_at(sb, "/metadata/name"), "sandbox-sbx-1");
  EXPECT_EQ(text(*at(sb, "/metadata/labels")),
            text(*at(pod, "/metadata/labels")));
  EXPECT_EQ(text(*at(sb, "/metadata/annotations")),
            text(*at(pod, "/metadata/annotations")));
  EXPECT_EQ(text(*at(sb, "/spec/podTemplate/metadata/labels")),
            text(*at(pod, "/metadata/labels")));
  EXPECT_EQ(text(*at(sb, "/spec/podTemplate/metadata/annotations")),
            text(*at(pod, "/metadata/annotations")));
  EXPECT_EQ(text(*at(sb, "/spec/podTemplate/spec")), text(*at(pod, "/spec")));
  EXPECT_EQ(str_at(sb, "/spec/podTemplate/spec/initContainers/0/name"),
            execd_init_container);
  EXPECT_EQ(at(sb, "/spec/replicas")->GetInt(), 1);
  EXPECT_EQ(str_at(sb, "/spec/shutdownPolicy"), "Delete");
  EXPECT_EQ(str_at(sb, "/spec/shutdownTime"),
            codec::format_time(x.expires_us));
  EXPECT_EQ(str_at(sb, "/metadata/labels/opensandbox.io~1node"), "node-a");
  EXPECT_EQ(str_at(sb, "/metadata/labels/opensandbox.io~1incarnation"),
            "inc-1");
}

TEST(AgentSandbox, ManualCleanupHasNoShutdownTimeAndRetainIsConfigurable) {
  auto cfg = config();
  cfg.agent_sandbox.shutdown_policy = "Retain";
  auto x = instance();
  x.expires_us = 0;
  auto sb = parse(make_sandbox(cfg, x, "inc-1", {}));
  EXPECT_EQ(at(sb, "/spec/shutdownTime"), nullptr);
  EXPECT_EQ(str_at(sb, "/spec/shutdownPolicy"), "Retain");
  EXPECT_EQ(at(sb, "/metadata/annotations/opensandbox.io~1expires-at"),
            nullptr);
}

TEST(AgentSandbox, TheStatePatchMovesAnnotationsAndShutdownTime) {
  auto p = parse(sandbox_state_patch(1'780'000'600'000'000, {{"k", "v"}}));
  EXPECT_EQ(str_at(p, "/spec/shutdownTime"), "2026-05-28T20:36:40Z");
  EXPECT_EQ(str_at(p, "/metadata/annotations/opensandbox.io~1expires-at"),
            "2026-05-28T20:36:40Z");
  EXPECT_EQ(str_at(p, "/metadata/annotations/opensandbox.io~1metadata"),
            R"({"k":"v"})");
  // Manual cleanup removes both (null in a merge patch).
  auto q = parse(sandbox_state_patch(0, {}));
  EXPECT_EQ(str_at(q, "/spec/shutdownTime"), "<null>");
  EXPECT_EQ(str_at(q, "/metadata/annotations/opensandbox.io~1expires-at"),
            "<null>");
}

TEST(AgentSandbox, ReadSandboxTakesTheStateFromItsAnnotationsAndReady) {
  auto s = read_sandbox(sandbox_with_ready("True", "DependenciesReady"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->meta.id, "sbx-1");
  EXPECT_EQ(s->meta.node, "node-a");
  EXPECT_EQ(s->meta.incarnation, "inc-1");
  EXPECT_EQ(s->meta.access_token, "tok");
  EXPECT_EQ(s->meta.expires_us, instance().expires_us);
  EXPECT_EQ(s->meta.spec_hash, spec_hash(s->meta.spec_json));
  EXPECT_EQ(s->ready, "True");
  EXPECT_EQ(s->ready_reason, "DependenciesReady");
  EXPECT_EQ(s->pod_ip, "10.244.0.7");
  EXPECT_EQ(s->shutdown_time, codec::format_time(instance().expires_us));
  // Not one of ours.
  EXPECT_FALSE(read_sandbox(R"({"metadata":{"name":"x","labels":{}}})"));
  EXPECT_FALSE(read_sandbox("not json"));
}

TEST(AgentSandbox, OnlyExpiryAndRefusedPodsFailAProvisioning) {
  auto expired = read_sandbox(
    sandbox_with_ready("False", "SandboxExpired", "Sandbox has expired"));
  ASSERT_TRUE(expired);
  auto f = sandbox_failed(*expired);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->reason, "SANDBOX_EXPIRED");
  auto refused = read_sandbox(sandbox_with_ready(
    "False", "ReconcilerError",
    "Error seen: pod create failed: Pod \\\"sandbox-sbx-1\\\" is invalid: "
    "spec.containers[0].image: Required value"));
  ASSERT_TRUE(refused);
  f = sandbox_failed(*refused);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->reason, "CONTAINER_CREATE_FAILED");
  EXPECT_NE(f->message.find("is invalid"), std::string::npos) << f->message;
  // A passing error of the controller, or a pod on its way, is no failure.
  for (auto [reason, msg] :
       {std::pair{"ReconcilerError", "Error seen: pod get failed: timeout"},
        std::pair{"DependenciesNotReady", "Pod exists with phase: Pending"}}) {
    auto s = read_sandbox(sandbox_with_ready("False", reason, msg));
    ASSERT_TRUE(s);
    EXPECT_FALSE(sandbox_failed(*s)) << reason;
  }
  auto ready = read_sandbox(sandbox_with_ready("True", "DependenciesReady"));
  EXPECT_FALSE(sandbox_failed(*ready));
}

TEST(AgentSandbox, TheWorkloadStateIsThePodsElseTheSandboxs) {
  auto s = *read_sandbox(sandbox_with_ready("True", "DependenciesReady"));
  pod_facts pod;
  pod.workload = workload::running;
  pod.pod_ip = "10.244.0.7";
  auto w = sandbox_workload(s, &pod);
  EXPECT_EQ(w.id, "sbx-1");
  EXPECT_EQ(w.status, workload::running);
  EXPECT_EQ(w.address, "10.244.0.7");
  pod.workload = workload::exited;
  pod.exit_code = 3;
  w = sandbox_workload(s, &pod);
  EXPECT_EQ(w.status, workload::exited);
  EXPECT_EQ(w.exit_code, 3);
  // No pod (yet, or any more).
  EXPECT_EQ(sandbox_workload(s, nullptr).status, "pending");
  auto expired = *read_sandbox(sandbox_with_ready("False", "SandboxExpired"));
  EXPECT_EQ(sandbox_workload(expired, nullptr).status, workload::exited);
  auto failed = *read_sandbox(sandbox_with_ready("False", "PodFailed"));
  EXPECT_EQ(sandbox_workload(failed, nullptr).exit_code, 1);
  s.meta.deleting = true;
  EXPECT_EQ(sandbox_workload(s, &pod).status, "removing");
}

// -- the runtime with the agent-sandbox provider ------------------------------

namespace {

constexpr const char* sandboxes_path
  = "/apis/agents.x-k8s.io/v1alpha1/namespaces/default/sandboxes";

class AgentSandboxRuntime : public ::testing::Test {
protected:
  void SetUp() override {
    auto cfg = std::make_shared<node_config>(config());
    cfg->kubernetes.sandbox_create_timeout_seconds = 7;
    pods = std::make_shared<fake_informer>();
    sandboxes = std::make_shared<fake_informer>();
    client = std::make_shared<fake_client>(pods);
    kubernetes_options opts;
    opts.cfg = cfg;
    opts.node = "node-a";
    opts.incarnation = "inc-1";
    opts.server = "https://10.0.0.1:6443";
    opts.after = [this](std::chrono::milliseconds d, std::function<void()> f) {
      timers.emplace_back(d, std::move(f));
    };
    opts.sandboxes = sandboxes;
    opts.claimer = [this](const std::string& address, uint16_t port,
                          const std::string&, const claim_request&,
                          callback<unit> cb) {
      claimed_at.push_back(address + ":" + std::to_string(port));
      cb(unit{});
    };
    rt = std::make_shared<kubernetes_runtime>(client, pods, opts);
    rt->start();
  }

  void provision(const sandbox_instance& x, bool fresh = true) {
    provision_options opts;
    opts.fresh = fresh;
    rt->provision(x, opts, [this](provision_result r) { result = r; });
  }

  /// The controller's side: the Sandbox POSTed last appears, then its pod
  /// (the template under the Sandbox's name) with `status`.
  void controller_makes_the_pod(const std::string& status) {
    std::string body;
    for (auto& r : client->seen)
      if (r.method == "POST" && r.path == sandboxes_path)
        body = r.body;
    ASSERT_FALSE(body.empty());
    auto sb = parse(body);
    auto name = str_at(sb, "/metadata/name");
    sandboxes->emit("ADDED", name, body);
    rapidjson::Document pod{rapidjson::kObjectType};
    auto& a = pod.GetAllocator();
    auto& tmpl = *at(sb, "/spec/podTemplate");
    rapidjson::Value meta{tmpl["metadata"], a};
    meta.AddMember("name", rapidjson::Value{name.c_str(), a}, a);
    pod.AddMember("metadata", meta, a);
    pod.AddMember("spec", rapidjson::Value{tmpl["spec"], a}, a);
    pods->emit("ADDED", name, with(text(pod), "status", status));
  }

  std::shared_ptr<fake_informer> pods;
  std::shared_ptr<fake_informer> sandboxes;
  std::shared_ptr<fake_client> client;
  std::shared_ptr<kubernetes_runtime> rt;
  std::vector<std::pair<std::chrono::milliseconds, std::function<void()>>>
    timers;
  std::optional<provision_result> result;
  /// Where claims reached execd.
  std::vector<std::string> claimed_at;
};

constexpr const char* ready_status
  = R"({"phase":"Running","podIP":"10.244.0.9",
       "conditions":[{"type":"Ready","status":"True"}]})";

} // namespace

TEST_F(AgentSandboxRuntime, ProvisionPostsASandboxAndWaitsForItsPod) {
  provision(instance());
  client->run();
  EXPECT_EQ(client->count("POST", sandboxes_path), 1u);
  EXPECT_EQ(client->count("POST", "/api/v1/namespaces/default/pods"), 0u);
  EXPECT_FALSE(result);
  controller_makes_the_pod(R"({"phase":"Pending"})");
  EXPECT_FALSE(result);
  pods->emit("MODIFIED", "sandbox-sbx-1",
             with(pods->object("sandbox-sbx-1"), "status", ready_status));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, provision_result::outcome::running);
  EXPECT_EQ(result->address, "10.244.0.9");
}

TEST_F(AgentSandboxRuntime, ThePodsFailuresAndTheSandboxsFailTheCreate) {
  provision(instance());
  client->run();
  controller_makes_the_pod(R"({"phase":"Pending","containerStatuses":[
    {"name":"sandbox","image":"python:3.12",
     "state":{"waiting":{"reason":"ErrImagePull","message":"not found"}}}]})");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->reason, "IMAGE_PULL_FAILED");
  // The controller cannot make the pod: the Sandbox says why.
  result.reset();
  auto x = instance("sbx-2");
  provision(x);
  client->run();
  auto sb = make_sandbox(config(), x, "inc-1", {});
  sandboxes->emit(
    "MODIFIED", "sandbox-sbx-2",
    with(sb, "status",
         R"({"conditions":[{"type":"Ready","status":"False",
             "reason":"ReconcilerError","message":"Error seen: Pod \"sandbox-sbx-2\" is invalid: x",
             "lastTransitionTime":"2026-01-01T00:00:00Z"}]})"));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->reason, "CONTAINER_CREATE_FAILED");
  // The Sandbox deleted while waiting.
  result.reset();
  auto y = instance("sbx-3");
  provision(y);
  client->run();
  sandboxes->emit("DELETED", "sandbox-sbx-3",
                  make_sandbox(config(), y, "inc-1", {}));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->reason, "CONTAINER_START_FAILED");
}

TEST_F(AgentSandboxRuntime, ARefusedSandboxNamesTheSandbox) {
  client->answer = [](const std::string& m, const std::string& p,
                      const std::string&) {
    if (m == "POST" && p == sandboxes_path)
      return kube_response{403, R"({"kind":"Status","message":"forbidden"})"};
    return kube_response{};
  };
  provision(instance());
  client->run();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->reason, "CONTAINER_CREATE_FAILED");
  EXPECT_EQ(result->message, "The API server refused Sandbox sandbox-sbx-1 "
                             "(HTTP 403): forbidden");
}

TEST_F(AgentSandboxRuntime, RecordPatchesTheSandboxAndObserveAdoptsFromIt) {
  auto x = instance();
  provision(x);
  client->run();
  controller_makes_the_pod(ready_status);
  ASSERT_TRUE(result);
  x.expires_us += 3'600'000'000;
  x.spec.metadata = {{"team", "b"}};
  std::optional<expected<unit>> done;
  rt->record(x, [&](expected<unit> r) { done = r; });
  client->run();
  ASSERT_TRUE(done && *done);
  auto& patch = client->seen.back();
  EXPECT_EQ(patch.method, "PATCH");
  EXPECT_EQ(patch.path, std::string{sandboxes_path} + "/sandbox-sbx-1");
  // Conditional on the version the informer has (docs/runtimes.md,
  // "Several replicas").
  auto expected_body = sandbox_state_patch(x.expires_us, x.spec.metadata);
  expected_body.insert(std::string_view{"{\"metadata\":{"}.size(),
                       "\"resourceVersion\":\"1\",");
  EXPECT_EQ(patch.body, expected_body);
  // The Sandbox changed (the pod keeps its first annotations): observe
  // reads the Sandbox's, and the pod's state and address.
  sandboxes->emit("MODIFIED", "sandbox-sbx-1",
                  make_sandbox(config(), x, "inc-1", {}));
  std::optional<expected<observation>> obs;
  rt->observe([&](expected<observation> r) { obs = r; });
  ASSERT_TRUE(obs && *obs);
  ASSERT_EQ((*obs)->workloads.size(), 1u);
  auto& w = (*obs)->workloads[0];
  EXPECT_EQ(w.status, workload::running);
  EXPECT_EQ(w.address, "10.244.0.9");
  ASSERT_TRUE(w.kept);
  EXPECT_EQ(w.kept->expires_us, x.expires_us);
  EXPECT_EQ(w.kept->metadata_json, R"({"team":"b"})");
  ASSERT_EQ((*obs)->objects.size(), 1u);
  EXPECT_EQ((*obs)->objects[0].kind, "sandbox");
  // Another node's Sandbox is not ours.
  auto other = instance("sbx-9");
  other.node = "node-b";
  sandboxes->emit("ADDED", "sandbox-sbx-9",
                  make_sandbox(config(), other, "inc-1", {}));
  obs.reset();
  rt->observe([&](expected<observation> r) { obs = r; });
  ASSERT_TRUE(obs && *obs);
  EXPECT_EQ((*obs)->workloads.size(), 1u);
}

TEST_F(AgentSandboxRuntime, RemoveDeletesTheSandboxNotThePod) {
  auto x = instance();
  // The informer has it: the DELETE carries its resourceVersion.
  sandboxes->emit("ADDED", "sandbox-sbx-1",
                  make_sandbox(config(), x, "inc-1", {}));
  std::optional<expected<unit>> done;
  rt->remove(x, false, [&](expected<unit> r) { done = r; });
  client->run();
  ASSERT_TRUE(done && *done);
  EXPECT_EQ(client->count("DELETE", std::string{sandboxes_path}
                                      + "/sandbox-sbx-1"),
            1u);
  EXPECT_EQ(client->count("DELETE", "/api/v1/namespaces/default/pods"), 0u);
  done.reset();
  rt->remove_object({"sbx-1", "sandbox", "sandbox-sbx-1", "sandbox-sbx-1", ""},
                    [&](expected<unit> r) { done = r; });
  client->run();
  EXPECT_EQ(client->count("DELETE", sandboxes_path), 2u);
}

TEST_F(AgentSandboxRuntime, AnUnsyncedSandboxInformerRefusesCreates) {
  sandboxes->set_synced(false);
  std::optional<expected<admission>> a;
  rt->admit(sandbox_spec{}, [&](expected<admission> x) { a = x; });
  ASSERT_TRUE(a && *a && (*a)->refused);
  EXPECT_NE((*a)->refused->message.find("Sandbox objects"), std::string::npos)
    << (*a)->refused->message;
}

TEST_F(AgentSandboxRuntime, VerifyNamesAMissingCrd) {
  std::optional<expected<unit>> done;
  rt->verify([&](expected<unit> r) { done = r; });
  client->run();
  ASSERT_TRUE(done);
  ASSERT_FALSE(*done);
  EXPECT_NE(done->error().message.find(
              "does not serve sandboxes.agents.x-k8s.io/v1alpha1"),
            std::string::npos)
    << done->error().message;
  client->answer = [](const std::string& m, const std::string& p,
                      const std::string&) {
    if (m == "GET" && p.rfind(sandboxes_path, 0) == 0)
      return kube_response{200, R"({"items":[]})"};
    return kube_response{};
  };
  done.reset();
  rt->verify([&](expected<unit> r) { done = r; });
  client->run();
  ASSERT_TRUE(done && *done);
}

TEST_F(AgentSandboxRuntime, AMemberIsClaimedAtItsPodAndMarkedOnItsSandbox) {
  auto x = instance();
  x.member_of = "py";
  x.expires_us = 0;
  provision(x);
  client->run();
  controller_makes_the_pod(ready_status);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, provision_result::outcome::running);
  // Unclaimed: a server without rows adopts it as a member of its pool.
  std::optional<expected<observation>> obs;
  rt->observe([&](expected<observation> r) { obs = r; });
  ASSERT_TRUE(obs && *obs && (*obs)->workloads.size() == 1u);
  ASSERT_TRUE((*obs)->workloads[0].kept);
  EXPECT_EQ((*obs)->workloads[0].kept->pool, "py");
  EXPECT_TRUE((*obs)->workloads[0].kept->unclaimed);
  claim_request c;
  c.env = {{"RUN", "7"}};
  std::optional<expected<unit>> done;
  rt->claim(x, c, [&](expected<unit> r) { done = r; });
  client->run();
  ASSERT_TRUE(done && *done);
  ASSERT_EQ(claimed_at.size(), 1u);
  EXPECT_EQ(claimed_at[0], "10.244.0.9:44772");
  // The Sandbox (whose annotations a restart reads) is marked claimed.
  auto& patch = client->seen.back();
  EXPECT_EQ(patch.method, "PATCH");
  EXPECT_EQ(patch.path, std::string{sandboxes_path} + "/sandbox-sbx-1");
  EXPECT_EQ(patch.body, claim_patch(claimed_spec(x.spec, c)));
  // `record` keeps the claimed spec with the expiry and shutdownTime.
  auto claimed = x;
  claimed.member_of.clear();
  claimed.spec = claimed_spec(x.spec, c);
  claimed.expires_us = 1'780'000'000'000'000;
  done.reset();
  rt->record(claimed, [&](expected<unit> r) { done = r; });
  client->run();
  ASSERT_TRUE(done && *done);
  auto body = parse(client->seen.back().body);
  EXPECT_EQ(str_at(body, "/metadata/annotations/opensandbox.io~1pool-member"),
            "claimed");
  EXPECT_EQ(str_at(body, "/spec/shutdownTime"),
            codec::format_time(claimed.expires_us));
}
