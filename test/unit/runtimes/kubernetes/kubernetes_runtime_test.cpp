#include "runtimes/kubernetes/kubernetes_runtime.hpp"

#include <gtest/gtest.h>

#include <optional>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/spec_json.hpp"
#include "test/unit/runtimes/kubernetes/fake_kube.hpp"

using namespace osb;
using namespace osb::runtimes;
using namespace osb::runtimes::kubernetes;
using osb::runtimes::kubernetes::test::fake_client;
using osb::runtimes::kubernetes::test::fake_informer;

namespace {

/// The pod `json` with `status` (a JSON object text) as its status.
std::string with_status(const std::string& json, const std::string& status) {
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  rapidjson::Document st;
  st.Parse(status.c_str());
  doc.RemoveMember("status");
  doc.AddMember("status", rapidjson::Value{st, doc.GetAllocator()},
                doc.GetAllocator());
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w{buf};
  doc.Accept(w);
  return buf.GetString();
}

constexpr const char* ready_status
  = R"({"phase":"Running","podIP":"10.244.0.9",
       "conditions":[{"type":"Ready","status":"True"}]})";

class KubernetesRuntime : public ::testing::Test {
protected:
  void SetUp() override {
    auto cfg = std::make_shared<node_config>();
    cfg->runtime.type = "kubernetes";
    cfg->kubernetes.sandbox_create_timeout_seconds = 7;
    cfg->storage.allowed_host_paths = {"/srv"};
    pods = std::make_shared<fake_informer>();
    client = std::make_shared<fake_client>(pods);
    kubernetes_options opts;
    opts.cfg = cfg;
    opts.node = "node-a";
    opts.incarnation = "inc-1";
    opts.server = "https://10.0.0.1:6443";
    opts.after = [this](std::chrono::milliseconds d, std::function<void()> f) {
      timers.emplace_back(d, std::move(f));
    };
    opts.claimer = [this](const std::string& address, uint16_t port,
                          const std::string& token, const claim_request& c,
                          callback<unit> cb) {
      claims.push_back({address + ":" + std::to_string(port), token, c});
      cb(claim_answer);
    };
    rt = std::make_shared<kubernetes_runtime>(client, pods, opts);
    rt->start();
  }

  sandbox_instance instance(const std::string& id = "sbx-1") {
    sandbox_instance x;
    x.id = id;
    x.node = "node-a";
    x.runtime_host = "default";
    x.spec.image = "python:3.12";
    x.spec.entrypoint = {"sleep", "infinity"};
    x.access_token = "tok";
    return x;
  }

  /// Starts a provisioning; its result lands in `result`.
  void provision(const sandbox_instance& x, bool fresh = true) {
    provision_options opts;
    opts.fresh = fresh;
    opts.progress = [this](const std::string& m) { progress.push_back(m); };
    opts.on_phase = [this](create_phase p) { phases.push_back(p); };
    rt->provision(x, opts, [this](provision_result r) { result = r; });
  }

  /// The kubelet's side: the pod gets `status`.
  void set_status(const std::string& name, const std::string& status) {
    auto json = pods->object(name);
    ASSERT_FALSE(json.empty()) << name;
    pods->emit("MODIFIED", name, with_status(json, status));
  }

  std::shared_ptr<fake_informer> pods;
  std::shared_ptr<fake_client> client;
  std::shared_ptr<kubernetes_runtime> rt;
  std::vector<std::pair<std::chrono::milliseconds, std::function<void()>>>
    timers;
  std::optional<provision_result> result;
  /// Claims delivered to execd: where, with which token, what.
  struct delivered {
    std::string where;
    std::string token;
    claim_request c;
  };
  std::vector<delivered> claims;
  expected<unit> claim_answer = unit{};
  std::vector<std::string> progress;
  std::vector<create_phase> phases;
};

} // namespace

TEST_F(KubernetesRuntime, ProvisionCreatesThePodAndWaitsUntilItIsReady) {
  provision(instance());
  EXPECT_FALSE(result) << "nothing answered yet";
  client->run();
  ASSERT_EQ(client->count("POST", "/api/v1/namespaces/default/pods"), 1u);
  EXPECT_FALSE(result) << "the pod is not ready yet";
  ASSERT_EQ(timers.size(), 1u);
  EXPECT_EQ(timers[0].first, std::chrono::seconds(7));
  set_status("sandbox-sbx-1", R"({"phase":"Pending","containerStatuses":[
    {"name":"sandbox","state":{"waiting":{"reason":"ContainerCreating"}}}]})");
  ASSERT_EQ(progress.size(), 1u);
  EXPECT_EQ(progress[0], "Container 'sandbox' is waiting: ContainerCreating");
  set_status("sandbox-sbx-1", ready_status);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, provision_result::outcome::running);
  EXPECT_EQ(result->address, "10.244.0.9");
  EXPECT_EQ(phases, (std::vector<create_phase>{create_phase::prepared,
                                               create_phase::created,
                                               create_phase::started}));
  // The timeout of a finished provisioning does nothing.
  result.reset();
  timers[0].second();
  EXPECT_FALSE(result);
}

TEST_F(KubernetesRuntime, ImagePullErrorsFailTheCreateWithTheirReason) {
  provision(instance());
  client->run();
  set_status("sandbox-sbx-1", R"({"phase":"Pending","containerStatuses":[
    {"name":"sandbox","image":"python:3.12",
     "state":{"waiting":{"reason":"ErrImagePull","message":"manifest unknown"}}}]})");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, provision_result::outcome::failed);
  EXPECT_EQ(result->reason, "IMAGE_PULL_FAILED");
  EXPECT_EQ(result->message, "Failed to pull image python:3.12 "
                             "(ErrImagePull): manifest unknown");
}

TEST_F(KubernetesRuntime, AnUnschedulablePodFailsAtTheTimeoutWithTheReason) {
  provision(instance());
  client->run();
  set_status("sandbox-sbx-1", R"({"phase":"Pending","conditions":[
    {"type":"PodScheduled","status":"False","reason":"Unschedulable",
     "message":"0/1 nodes are available: insufficient cpu"}]})");
  EXPECT_FALSE(result);
  ASSERT_EQ(progress.size(), 1u);
  EXPECT_EQ(progress[0], "Pod cannot be scheduled yet: 0/1 nodes are "
                         "available: insufficient cpu");
  timers[0].second();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->reason, "POD_UNSCHEDULABLE");
  EXPECT_EQ(result->message, "Pod sandbox-sbx-1 cannot be scheduled: 0/1 "
                             "nodes are available: insufficient cpu");
}

TEST_F(KubernetesRuntime, APodThatNeverGetsReadyTimesOut) {
  provision(instance());
  client->run();
  timers[0].second();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->reason, "SANDBOX_CREATE_TIMEOUT");
  EXPECT_NE(result->message.find("within 7 s"), std::string::npos);
}

TEST_F(KubernetesRuntime, TheApiServerRefusingThePodFailsTheCreate) {
  client->answer = [](const std::string& method, const std::string&,
                      const std::string&) -> kube_response {
    if (method == "POST")
      return {422, R"({"kind":"Status","message":"Pod \"x\" is invalid"})"};
    return {};
  };
  provision(instance());
  client->run();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->reason, "CONTAINER_CREATE_FAILED");
  EXPECT_EQ(result->message, "The API server refused pod sandbox-sbx-1 "
                             "(HTTP 422): Pod \"x\" is invalid");
}

TEST_F(KubernetesRuntime, AnExistingPodIsRetriedThenAdoptedWhenItIsTheSame) {
  auto x = instance();
  provision(x);
  client->run();
  set_status("sandbox-sbx-1", ready_status);
  ASSERT_TRUE(result);
  // A second create of the same pod (a restart during provisioning).
  result.reset();
  provision(x);
  client->run();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->fix, provision_result::remedy::retry_later);
  // Not fresh: the same request is adopted without a POST.
  result.reset();
  auto posts = client->count("POST", "/");
  provision(x, false);
  client->run();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, provision_result::outcome::running);
  EXPECT_EQ(client->count("POST", "/"), posts);
  // Another request under the same name is removed first.
  result.reset();
  x.spec.image = "python:3.13";
  provision(x, false);
  client->run();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->fix, provision_result::remedy::retry_later);
  EXPECT_EQ(client->count("DELETE", "/api/v1/namespaces/default/pods/"
                                    "sandbox-sbx-1"),
            1u);
}

TEST_F(KubernetesRuntime, APodDeletedWhileWaitingFailsAndCancelStops) {
  provision(instance());
  client->run();
  pods->emit("DELETED", "sandbox-sbx-1", pods->object("sandbox-sbx-1"));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->reason, "CONTAINER_START_FAILED");
  result.reset();
  provision_options opts;
  opts.cancel = std::make_shared<std::atomic<bool>>(true);
  rt->provision(instance("sbx-2"), opts,
                [this](provision_result r) { result = r; });
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, provision_result::outcome::cancelled);
  EXPECT_EQ(client->count("POST", "/"), 1u);
}

TEST_F(KubernetesRuntime, PullSecretsAreMadeFirstAndRemovedWithThePod) {
  auto x = instance();
  x.spec.image_username = "u";
  x.spec.image_password = "p";
  provision(x);
  client->run();
  ASSERT_GE(client->seen.size(), 2u);
  EXPECT_EQ(client->seen[0].path, "/api/v1/namespaces/default/secrets");
  EXPECT_EQ(client->seen[1].path, "/api/v1/namespaces/default/pods");
  std::optional<expected<unit>> removed;
  rt->remove(x, false, [&](expected<unit> r) { removed = r; });
  client->run();
  ASSERT_TRUE(removed);
  EXPECT_TRUE(*removed);
  EXPECT_EQ(client->count("DELETE", "/api/v1/namespaces/default/secrets/"
                                    "sandbox-sbx-1-pull"),
            1u);
  // Missing objects are success.
  removed.reset();
  rt->remove(x, false, [&](expected<unit> r) { removed = r; });
  client->run();
  ASSERT_TRUE(removed);
  EXPECT_TRUE(*removed);
}

TEST_F(KubernetesRuntime, ObserveAnswersFromTheInformerWithoutARequest) {
  for (auto id : {"a", "b"}) {
    provision(instance(id));
    client->run();
  }
  set_status("sandbox-a", ready_status);
  // A pod of another node is not ours.
  auto other = instance("c");
  other.node = "node-b";
  pods->emit("ADDED", "sandbox-c", make_pod(node_config{}, other, "", {}));
  auto requests = client->seen.size();
  std::optional<expected<observation>> obs;
  rt->observe([&](expected<observation> r) { obs = r; });
  ASSERT_TRUE(obs && *obs);
  EXPECT_EQ(client->seen.size(), requests);
  auto& o = **obs;
  ASSERT_EQ(o.workloads.size(), 2u);
  EXPECT_EQ(o.workloads[0].id, "a");
  EXPECT_EQ(o.workloads[0].status, workload::running);
  EXPECT_EQ(o.workloads[0].address, "10.244.0.9");
  EXPECT_EQ(o.workloads[1].status, "pending");
  ASSERT_EQ(o.objects.size(), 2u);
  EXPECT_EQ(o.objects[0].kind, "pod");
  EXPECT_EQ(o.objects[0].ref, "sandbox-a");
  EXPECT_EQ(o.objects[0].incarnation, "inc-1");
}

TEST_F(KubernetesRuntime, AnUnreachableApiServerRefusesCreatesAtOnce) {
  pods->set_error("API server https://10.0.0.1:6443 unreachable: connection "
                  "refused");
  std::optional<expected<admission>> a;
  rt->admit(sandbox_spec{}, [&](expected<admission> r) { a = r; });
  ASSERT_TRUE(a && *a);
  ASSERT_TRUE((*a)->refused);
  EXPECT_EQ((*a)->refused->code, ec::runtime_unavailable);
  EXPECT_NE((*a)->refused->message.find("unreachable: connection refused"),
            std::string::npos);
  std::optional<expected<unit>> ping;
  rt->ping([&](expected<unit> r) { ping = r; });
  ASSERT_TRUE(ping);
  EXPECT_FALSE(*ping);
  EXPECT_EQ(ping->error().kind, failure_kind::unavailable);
  std::optional<expected<observation>> obs;
  rt->observe([&](expected<observation> r) { obs = r; });
  ASSERT_TRUE(obs);
  EXPECT_FALSE(*obs);
  // Back: everything answers again.
  pods->set_error("");
  a.reset();
  rt->admit(sandbox_spec{}, [&](expected<admission> r) { a = r; });
  ASSERT_TRUE(a && *a);
  EXPECT_FALSE((*a)->refused);
  EXPECT_EQ((*a)->fixed.execd, 44772);
  EXPECT_EQ((*a)->fixed.http, 8080);
  EXPECT_EQ((*a)->fixed.egress, 0);
  EXPECT_FALSE((*a)->execd_port);
  // Not synced yet counts as unavailable too.
  pods->set_synced(false);
  ping.reset();
  rt->ping([&](expected<unit> r) { ping = r; });
  ASSERT_TRUE(ping);
  EXPECT_FALSE(*ping);
}

TEST_F(KubernetesRuntime, AdmissionChecksVolumesLexically) {
  sandbox_spec spec;
  spec.volumes_json = R"([{"name":"x","mountPath":"/x",)"
                      R"("host":{"path":"/etc"}}])";
  std::optional<expected<admission>> a;
  rt->admit(spec, [&](expected<admission> r) { a = r; });
  ASSERT_TRUE(a && *a);
  ASSERT_TRUE((*a)->refused);
  EXPECT_EQ((*a)->refused->code, ec::volume_host_path_not_allowed);
}

TEST_F(KubernetesRuntime, PauseAndSnapshotsAreNotSupported) {
  std::optional<expected<unit>> paused;
  rt->pause(instance(), [&](expected<unit> r) { paused = r; });
  ASSERT_TRUE(paused);
  ASSERT_FALSE(*paused);
  EXPECT_EQ(paused->error().kind, failure_kind::invalid);
  EXPECT_NE(paused->error().message.find("Pause is not supported"),
            std::string::npos);
  std::optional<expected<std::string>> snap;
  rt->snapshot("sbx-1", "s1", [&](expected<std::string> r) { snap = r; });
  ASSERT_TRUE(snap);
  EXPECT_FALSE(*snap);
}

TEST_F(KubernetesRuntime, VerifyNamesAMissingNamespaceOrRefusedCredentials) {
  std::optional<expected<unit>> ok;
  rt->verify([&](expected<unit> r) { ok = r; });
  client->run();
  ASSERT_TRUE(ok);
  EXPECT_TRUE(*ok);
  client->answer = [](const std::string&, const std::string&,
                      const std::string&) -> kube_response {
    return {401, R"({"kind":"Status","message":"Unauthorized"})"};
  };
  ok.reset();
  rt->verify([&](expected<unit> r) { ok = r; });
  client->run();
  ASSERT_TRUE(ok);
  ASSERT_FALSE(*ok);
  EXPECT_NE(ok->error().message.find("refuses our credentials (HTTP 401): "
                                     "Unauthorized"),
            std::string::npos);
  // No answer is not a start-up failure.
  client->answer = [](const std::string&, const std::string&,
                      const std::string&) -> kube_response {
    return {0, "connection refused"};
  };
  ok.reset();
  rt->verify([&](expected<unit> r) { ok = r; });
  client->run();
  ASSERT_TRUE(ok);
  EXPECT_TRUE(*ok);
}

TEST_F(KubernetesRuntime, DiagnosticsShowThePodAndItsEvents) {
  provision(instance());
  client->run();
  client->answer = [](const std::string&, const std::string& path,
                      const std::string&) -> kube_response {
    if (path.find("/events?fieldSelector=involvedObject.name%3D"
                  "sandbox-sbx-1")
        != std::string::npos)
      return {200, R"({"items":[{"type":"Normal","reason":"Scheduled",
        "message":"assigned","lastTimestamp":"2026-12-06T10:00:00Z"}]})"};
    return {};
  };
  sandbox_view v;
  v.id = "sbx-1";
  diagnostics_query q;
  q.kind = "events";
  std::optional<expected<std::string>> text;
  rt->diagnose(instance(), v, q, [&](expected<std::string> r) { text = r; });
  client->run();
  ASSERT_TRUE(text && *text);
  EXPECT_EQ(**text, "2026-12-06T10:00:00Z Normal Scheduled: assigned\n");
  q.kind = "inspect";
  text.reset();
  rt->diagnose(instance(), v, q, [&](expected<std::string> r) { text = r; });
  ASSERT_TRUE(text && *text);
  EXPECT_NE((*text)->find("\"sandbox-sbx-1\""), std::string::npos);
}

TEST_F(KubernetesRuntime, RecordPatchesTheAnnotationsAndObserveKeepsThem) {
  auto x = instance();
  x.created_us = 1'780'000'000'000'000;
  x.expires_us = x.created_us + 60'000'000;
  x.spec.metadata = {{"a", "1"}};
  provision(x);
  client->run();
  set_status("sandbox-sbx-1", ready_status);
  x.expires_us += 3'600'000'000;
  x.spec.metadata = {{"a", "2"}};
  std::optional<expected<unit>> done;
  rt->record(x, [&](expected<unit> r) { done = r; });
  client->run();
  ASSERT_TRUE(done && *done);
  auto& patch = client->seen.back();
  EXPECT_EQ(patch.method, "PATCH");
  EXPECT_EQ(patch.path, "/api/v1/namespaces/default/pods/sandbox-sbx-1");
  // Conditional on the version the cache has: a pod another replica
  // relabelled meanwhile is not written.
  auto expected_body = state_patch(x.expires_us, x.spec.metadata);
  expected_body.insert(std::string_view{"{\"metadata\":{"}.size(),
                       "\"resourceVersion\":\"2\",");
  EXPECT_EQ(patch.body, expected_body);
  // The observation carries what a server without rows adopts from.
  std::optional<expected<observation>> obs;
  rt->observe([&](expected<observation> r) { obs = r; });
  ASSERT_TRUE(obs && *obs);
  ASSERT_EQ((*obs)->workloads.size(), 1u);
  auto& kept = (*obs)->workloads[0].kept;
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->access_token, "tok");
  EXPECT_EQ(kept->created_us, x.created_us);
  EXPECT_EQ(kept->ports.execd, 44772);
  EXPECT_EQ(kept->ports.egress, 0);
  sandbox_spec spec;
  ASSERT_TRUE(codec::spec_from_json(kept->spec_json, spec));
  EXPECT_EQ(spec.image, "python:3.12");
}

TEST_F(KubernetesRuntime, ObserveWaitsForTheFirstListing) {
  pods->set_synced(false);
  std::optional<expected<observation>> obs;
  rt->observe([&](expected<observation> r) { obs = r; });
  EXPECT_FALSE(obs);
  ASSERT_EQ(timers.size(), 1u);
  pods->set_synced(true);
  timers[0].second();
  ASSERT_TRUE(obs);
  EXPECT_TRUE(*obs);
}

TEST_F(KubernetesRuntime, AMemberIsClaimedThroughExecdAtThePodIpThenMarked) {
  auto x = instance();
  x.member_of = "py";
  x.ports = pod_ports(false);
  provision(x);
  client->run();
  set_status("sandbox-sbx-1", ready_status);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, provision_result::outcome::running);
  // The member's pod holds its entrypoint back and says whose it is.
  auto pod = read_pod(pods->object("sandbox-sbx-1"));
  ASSERT_TRUE(pod);
  EXPECT_EQ(pod->pool, "py");
  EXPECT_EQ(pod->member_state, "idle");
  // Unclaimed: adopted as a member of its pool by a server without rows.
  std::optional<expected<observation>> obs;
  rt->observe([&](expected<observation> r) { obs = r; });
  ASSERT_TRUE(obs && *obs && (*obs)->workloads.size() == 1u);
  ASSERT_TRUE((*obs)->workloads[0].kept);
  EXPECT_EQ((*obs)->workloads[0].kept->pool, "py");
  EXPECT_TRUE((*obs)->workloads[0].kept->unclaimed);
  claim_request c;
  c.entrypoint = {"python", "app.py"};
  c.env = {{"RUN", "7"}};
  std::optional<expected<unit>> done;
  rt->claim(x, c, [&](expected<unit> r) { done = r; });
  // execd has it; the pod is marked before the claim answers.
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0].where, "10.244.0.9:44772");
  EXPECT_EQ(claims[0].token, "tok");
  EXPECT_EQ(claims[0].c.env.at("RUN"), "7");
  EXPECT_FALSE(done);
  client->run();
  ASSERT_TRUE(done && *done);
  auto& patch = client->seen.back();
  EXPECT_EQ(patch.method, "PATCH");
  EXPECT_EQ(patch.path, "/api/v1/namespaces/default/pods/sandbox-sbx-1");
  EXPECT_EQ(patch.body, claim_patch(claimed_spec(x.spec, c)));
  // `record` of the claimed sandbox keeps its spec with expiry and metadata.
  auto claimed = x;
  claimed.member_of.clear();
  claimed.spec = claimed_spec(x.spec, c);
  claimed.spec.metadata = {{"run", "7"}};
  claimed.expires_us = 1'780'000'000'000'000;
  done.reset();
  rt->record(claimed, [&](expected<unit> r) { done = r; });
  client->run();
  ASSERT_TRUE(done && *done);
  // Conditional on the version the informer has (docs/runtimes.md,
  // "Several replicas").
  auto expected_body = claim_patch(claimed.spec, true, claimed.expires_us);
  expected_body.insert(std::string_view{"{\"metadata\":{"}.size(),
                       "\"resourceVersion\":\"2\",");
  EXPECT_EQ(client->seen.back().body, expected_body);
}

TEST_F(KubernetesRuntime, AClaimOfAGoneOrRefusingMemberFails) {
  auto x = instance();
  x.member_of = "py";
  claim_request c;
  std::optional<expected<unit>> done;
  rt->claim(x, c, [&](expected<unit> r) { done = r; });
  ASSERT_TRUE(done);
  ASSERT_FALSE(*done);
  EXPECT_EQ(done->error().kind, failure_kind::unavailable);
  EXPECT_TRUE(claims.empty());
  provision(x);
  client->run();
  set_status("sandbox-sbx-1", ready_status);
  // execd refuses (claimed with another content): no patch, a conflict.
  claim_answer = failure{failure_kind::conflict, "execd refused the claim"};
  auto patches = client->count("PATCH", "/");
  done.reset();
  rt->claim(x, c, [&](expected<unit> r) { done = r; });
  client->run();
  ASSERT_TRUE(done);
  ASSERT_FALSE(*done);
  EXPECT_EQ(done->error().kind, failure_kind::conflict);
  EXPECT_EQ(client->count("PATCH", "/"), patches);
}

TEST_F(KubernetesRuntime, DeletesCarryPreconditionsAndSpareAdoptedPods) {
  provision(instance());
  client->run();
  set_status("sandbox-sbx-1", ready_status);
  // Our pod: the DELETE names the uid and resourceVersion the cache has.
  std::optional<expected<unit>> done;
  rt->remove(instance(), false, [&](expected<unit> r) { done = r; });
  client->run();
  ASSERT_TRUE(done && *done);
  ASSERT_EQ(client->count("DELETE", "/api/v1/namespaces/default/pods/"), 1u);
  EXPECT_NE(client->seen.back().body.find(R"("preconditions":{)"),
            std::string::npos)
    << client->seen.back().body;
  EXPECT_NE(client->seen.back().body.find(R"("resourceVersion":"2")"),
            std::string::npos)
    << client->seen.back().body;
  // A pod another replica relabelled (adopted) is not deleted, and the
  // sandbox counts as gone here.
  provision(instance("sbx-2"));
  client->run();
  auto json = pods->object("sandbox-sbx-2");
  auto at = json.find("\"node-a\"");
  ASSERT_NE(at, std::string::npos);
  json.replace(at, 8, "\"node-b\"");
  pods->emit("MODIFIED", "sandbox-sbx-2", json);
  done.reset();
  rt->remove(instance("sbx-2"), false, [&](expected<unit> r) { done = r; });
  client->run();
  ASSERT_TRUE(done && *done);
  EXPECT_EQ(client->count("DELETE", "/api/v1/namespaces/default/pods/"
                                    "sandbox-sbx-2"),
            0u);
}

TEST_F(KubernetesRuntime, AFencedReplicaChangesNoPod) {
  auto gate = std::make_shared<ownership_gate>();
  gate->valid_until_ns = 0;
  auto cfg = std::make_shared<node_config>();
  cfg->runtime.type = "kubernetes";
  kubernetes_options opts;
  opts.cfg = cfg;
  opts.node = "node-a";
  opts.incarnation = "inc-1";
  opts.after = [this](std::chrono::milliseconds d, std::function<void()> f) {
    timers.emplace_back(d, std::move(f));
  };
  opts.gate = gate;
  auto fenced = std::make_shared<kubernetes_runtime>(client, pods, opts);
  fenced->start();
  std::optional<expected<unit>> done;
  fenced->remove(instance(), false, [&](expected<unit> r) { done = r; });
  ASSERT_TRUE(done);
  EXPECT_FALSE(*done);
  EXPECT_EQ(done->error().kind, failure_kind::unavailable);
  done.reset();
  fenced->record(instance(), [&](expected<unit> r) { done = r; });
  ASSERT_TRUE(done);
  EXPECT_FALSE(*done);
  std::optional<provision_result> r;
  fenced->provision(instance(), {}, [&](provision_result x) { r = x; });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->reason, "KUBERNETES_UNAVAILABLE");
  client->run();
  EXPECT_TRUE(client->seen.empty());
  // Renewed: it may again.
  gate->valid_until_ns = ownership_gate::to_ns(ownership_gate::clock::now()
                                               + std::chrono::seconds(10));
  done.reset();
  fenced->record(instance(), [&](expected<unit> r) { done = r; });
  client->run();
  EXPECT_FALSE(client->seen.empty());
}
