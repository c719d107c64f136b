#include "runtimes/kubernetes/pod_spec.hpp"

#include <gtest/gtest.h>

#include <rapidjson/document.h>
#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/spec_json.hpp"
#include "core/time.hpp"
#include "runtimes/kubernetes/pod_claim.hpp"

using namespace osb;
using namespace osb::runtimes;
using namespace osb::runtimes::kubernetes;

namespace {

rapidjson::Document parse(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  EXPECT_FALSE(doc.HasParseError()) << json;
  return doc;
}

std::string at(const rapidjson::Document& doc, const char* pointer) {
  auto v = rapidjson::Pointer(pointer).Get(doc);
  if (v == nullptr)
    return "<absent>";
  if (v->IsString())
    return v->GetString();
  if (v->IsBool())
    return v->GetBool() ? "true" : "false";
  if (v->IsInt())
    return std::to_string(v->GetInt());
  return "<other>";
}

sandbox_instance instance() {
  sandbox_instance x;
  x.id = "0b6c1c9e-2f0a-4f7e-9d7e-1a2b3c4d5e6f";
  x.node = "node-a";
  x.runtime_host = "default";
  x.spec.image = "python:3.12";
  x.spec.entrypoint = {"python", "-m", "http.server"};
  x.spec.env = {{"A", "1"}, {"EXECD_ACCESS_TOKEN", "forged"}};
  x.spec.metadata = {{"team", "ml"}};
  x.spec.resource_limits = {{"cpu", "500m"}, {"memory", "512Mi"},
                            {"gpu", "1"}};
  x.spec.timeout_s = 600;
  x.access_token = "tok";
  x.created_us = 1'780'000'000'000'000;
  x.expires_us = x.created_us + 600'000'000;
  return x;
}

/// Wraps `pod` with a status (a JSON object text).
std::string with_status(const std::string& pod, const std::string& status) {
  auto doc = parse(pod);
  rapidjson::Document st;
  st.Parse(status.c_str());
  doc.AddMember("status", rapidjson::Value{st, doc.GetAllocator()},
                doc.GetAllocator());
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w{buf};
  doc.Accept(w);
  return buf.GetString();
}

} // namespace

TEST(PodSpec, TheSandboxIsAPodWithExecdFromAnInitContainer) {
  node_config cfg;
  cfg.runtime.execd_image = "registry.local/execd:1";
  cfg.kubernetes.execd_init_limits = {{"cpu", "100m"}};
  auto x = instance();
  auto doc = parse(make_pod(cfg, x, "inc-1", {}));
  EXPECT_EQ(at(doc, "/metadata/name"), "sandbox-" + x.id);
  EXPECT_EQ(at(doc, "/metadata/labels/opensandbox.io~1id"), x.id);
  EXPECT_EQ(at(doc, "/metadata/labels/opensandbox.io~1node"), "node-a");
  EXPECT_EQ(at(doc, "/metadata/labels/opensandbox.io~1incarnation"), "inc-1");
  EXPECT_EQ(at(doc, "/spec/restartPolicy"), "Never");
  EXPECT_EQ(at(doc, "/spec/automountServiceAccountToken"), "false");
  EXPECT_EQ(at(doc, "/spec/runtimeClassName"), "<absent>");
  // execd is copied into a shared emptyDir by the init container.
  EXPECT_EQ(at(doc, "/spec/initContainers/0/image"), "registry.local/execd:1");
  EXPECT_EQ(at(doc, "/spec/initContainers/0/command/0"), "cp");
  EXPECT_EQ(at(doc, "/spec/initContainers/0/command/2"),
            "/opt/opensandbox/execd");
  EXPECT_EQ(at(doc, "/spec/initContainers/0/resources/limits/cpu"), "100m");
  EXPECT_EQ(at(doc, "/spec/initContainers/0/volumeMounts/0/name"),
            at(doc, "/spec/volumes/0/name"));
  EXPECT_NE(rapidjson::Pointer("/spec/volumes/0/emptyDir").Get(doc), nullptr);
  // The sandbox container starts execd's bootstrap, then the entrypoint.
  EXPECT_EQ(at(doc, "/spec/containers/0/name"), "sandbox");
  EXPECT_EQ(at(doc, "/spec/containers/0/image"), "python:3.12");
  EXPECT_EQ(at(doc, "/spec/containers/0/imagePullPolicy"), "IfNotPresent");
  EXPECT_EQ(at(doc, "/spec/containers/0/command/0"), "/opt/opensandbox/execd");
  EXPECT_EQ(at(doc, "/spec/containers/0/command/1"), "--bootstrap");
  EXPECT_EQ(at(doc, "/spec/containers/0/args/2"), "http.server");
  EXPECT_EQ(at(doc, "/spec/containers/0/volumeMounts/0/mountPath"),
            "/opt/opensandbox");
  EXPECT_EQ(at(doc, "/spec/containers/0/resources/limits/cpu"), "500m");
  EXPECT_EQ(at(doc, "/spec/containers/0/resources/limits/memory"), "512Mi");
  EXPECT_EQ(at(doc, "/spec/containers/0/resources/limits/nvidia.com~1gpu"),
            "1");
  EXPECT_EQ(at(doc, "/spec/containers/0/ports/0/containerPort"), "44772");
  // The user's EXECD_ACCESS_TOKEN never wins over the sandbox's.
  auto& env = doc["spec"]["containers"][0]["env"];
  ASSERT_EQ(env.Size(), 2u);
  EXPECT_STREQ(env[0]["name"].GetString(), "A");
  EXPECT_STREQ(env[1]["name"].GetString(), "EXECD_ACCESS_TOKEN");
  EXPECT_STREQ(env[1]["value"].GetString(), "tok");
  // One container without a network policy.
  EXPECT_EQ(doc["spec"]["containers"].Size(), 1u);
  EXPECT_EQ(at(doc, "/spec/imagePullSecrets/0/name"), "<absent>");
}

TEST(PodSpec, StateThatMustSurviveIsInAnnotations) {
  node_config cfg;
  auto x = instance();
  auto pod = make_pod(cfg, x, "inc-1", {});
  auto f = read_pod(pod);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->id, x.id);
  EXPECT_EQ(f->node, "node-a");
  EXPECT_EQ(f->host, "default");
  EXPECT_EQ(f->incarnation, "inc-1");
  EXPECT_EQ(f->created_us, x.created_us);
  EXPECT_EQ(f->expires_us, x.expires_us);
  EXPECT_EQ(f->access_token, "tok");
  EXPECT_EQ(f->metadata_json, R"({"team":"ml"})");
  sandbox_spec back;
  ASSERT_TRUE(codec::spec_from_json(f->spec_json, back));
  EXPECT_EQ(back.image, "python:3.12");
  EXPECT_EQ(back.entrypoint, x.spec.entrypoint);
  EXPECT_EQ(f->spec_hash, spec_hash(f->spec_json));
  EXPECT_EQ(f->workload, "pending");
  // Manual cleanup: no expiry annotation.
  x.expires_us = 0;
  EXPECT_EQ(read_pod(make_pod(cfg, x, "", {}))->expires_us, 0);
  // Not ours: no id label.
  EXPECT_FALSE(read_pod(R"({"metadata":{"name":"other"}})"));
  EXPECT_FALSE(read_pod("not json"));
}

TEST(PodSpec, TheStatePatchSetsExpiryAndMetadata) {
  auto doc = parse(state_patch(1'780'000'000'000'000, {{"k", "v"}}));
  EXPECT_EQ(at(doc, "/metadata/annotations/opensandbox.io~1expires-at"),
            codec::format_time(1'780'000'000'000'000));
  EXPECT_EQ(at(doc, "/metadata/annotations/opensandbox.io~1metadata"),
            R"({"k":"v"})");
  // Manual cleanup removes the annotation (merge patch null).
  auto manual = parse(state_patch(0, {}));
  auto v = rapidjson::Pointer("/metadata/annotations/opensandbox.io~1expires-at")
             .Get(manual);
  ASSERT_NE(v, nullptr);
  EXPECT_TRUE(v->IsNull());
}

TEST(PodSpec, NetworkPolicyAddsTheEgressSidecarWithNetAdminOnlyThere) {
  node_config cfg;
  cfg.egress.image = "opensandbox/egress:latest";
  cfg.docker.drop_capabilities = {"MKNOD"};
  auto x = instance();
  x.spec.network_policy_json = R"({"defaultAction":"deny"})";
  x.egress_token = "etok";
  auto doc = parse(make_pod(cfg, x, "", {}));
  ASSERT_EQ(doc["spec"]["containers"].Size(), 2u);
  EXPECT_EQ(at(doc, "/spec/containers/1/name"), "egress");
  EXPECT_EQ(at(doc, "/spec/containers/1/image"), "opensandbox/egress:latest");
  EXPECT_EQ(at(doc, "/spec/containers/1/securityContext/capabilities/add/0"),
            "NET_ADMIN");
  EXPECT_EQ(at(doc, "/spec/containers/1/env/0/value"),
            R"({"defaultAction":"deny"})");
  EXPECT_EQ(at(doc, "/spec/containers/1/env/2/value"), "etok");
  EXPECT_EQ(at(doc, "/spec/containers/1/ports/2/containerPort"), "18080");
  // Ready (and with it the pod) once the policy API listens, which the
  // sidecar does only after installing its rules.
  EXPECT_EQ(at(doc, "/spec/containers/1/readinessProbe/tcpSocket/port"),
            "18080");
  EXPECT_EQ(at(doc, "/spec/containers/0/readinessProbe/tcpSocket/port"),
            "44772");
  // The sandbox container drops it (after the configured drops).
  EXPECT_EQ(at(doc, "/spec/containers/0/securityContext/capabilities/drop/0"),
            "MKNOD");
  EXPECT_EQ(at(doc, "/spec/containers/0/securityContext/capabilities/drop/1"),
            "NET_ADMIN");
  EXPECT_EQ(at(doc, "/spec/containers/0/securityContext/capabilities/add"),
            "<absent>");
  EXPECT_EQ(read_pod(make_pod(cfg, x, "", {}))->egress_token, "etok");
}

TEST(PodSpec, RuntimeClassVolumesAndPullSecrets) {
  node_config cfg;
  cfg.secure_runtime.type = "gvisor";
  cfg.secure_runtime.k8s_runtime_class = "gvisor";
  cfg.kubernetes.service_account = "sandboxes";
  cfg.kubernetes.image_pull_policy = "Always";
  auto x = instance();
  x.spec.image = "registry.example.com:5000/team/app:1";
  x.spec.image_username = "u";
  x.spec.image_password = "p";
  volume_mount pvc;
  pvc.name = "data";
  pvc.backend = volume_mount::backend_kind::pvc;
  pvc.claim_name = "claim-1";
  pvc.mount_path = "/data";
  pvc.sub_path = "a/b";
  volume_mount host;
  host.name = "cache";
  host.host_path = "/srv/cache";
  host.mount_path = "/cache";
  host.read_only = true;
  auto doc = parse(make_pod(cfg, x, "", {pvc, host}));
  EXPECT_EQ(at(doc, "/spec/runtimeClassName"), "gvisor");
  EXPECT_EQ(at(doc, "/spec/serviceAccountName"), "sandboxes");
  EXPECT_EQ(at(doc, "/spec/containers/0/imagePullPolicy"), "Always");
  EXPECT_EQ(at(doc, "/spec/imagePullSecrets/0/name"),
            "sandbox-" + x.id + "-pull");
  EXPECT_EQ(at(doc, "/spec/volumes/1/persistentVolumeClaim/claimName"),
            "claim-1");
  EXPECT_EQ(at(doc, "/spec/volumes/2/hostPath/path"), "/srv/cache");
  EXPECT_EQ(at(doc, "/spec/containers/0/volumeMounts/1/subPath"), "a/b");
  EXPECT_EQ(at(doc, "/spec/containers/0/volumeMounts/2/readOnly"), "true");
  auto secret = parse(make_pull_secret(x, ""));
  EXPECT_EQ(at(secret, "/type"), "kubernetes.io/dockerconfigjson");
  auto config = parse(at(secret, "/stringData/.dockerconfigjson"));
  EXPECT_EQ(at(config, "/auths/registry.example.com:5000/auth"), "dTpw");
  x.spec.image_username.clear();
  x.spec.image_password.clear();
  EXPECT_EQ(make_pull_secret(x, ""), "");
}

TEST(PodSpec, ReadsWhyAPodCannotRun) {
  node_config cfg;
  auto pod = make_pod(cfg, instance(), "", {});
  auto pull = read_pod(with_status(pod, R"({"phase":"Pending",
    "containerStatuses":[{"name":"sandbox","image":"python:3.12",
      "state":{"waiting":{"reason":"ErrImagePull","message":"not found"}}}]})"));
  EXPECT_EQ(pull->fail_reason, "IMAGE_PULL_FAILED");
  EXPECT_EQ(pull->fail_message,
            "Failed to pull image python:3.12 (ErrImagePull): not found");
  auto init = read_pod(with_status(pod, R"({"phase":"Pending",
    "initContainerStatuses":[{"name":"execd-installer","image":"x",
      "state":{"waiting":{"reason":"ImagePullBackOff"}}}]})"));
  EXPECT_EQ(init->fail_reason, "EXECD_DISTRIBUTION_FAILED");
  auto unsched = read_pod(with_status(pod, R"({"phase":"Pending",
    "conditions":[{"type":"PodScheduled","status":"False",
      "reason":"Unschedulable","message":"0/3 nodes are available"}]})"));
  EXPECT_EQ(unsched->fail_reason, "");
  EXPECT_EQ(unsched->unschedulable, "0/3 nodes are available");
  auto ready = read_pod(with_status(pod, R"({"phase":"Running",
    "podIP":"10.244.0.7","conditions":[{"type":"Ready","status":"True"}]})"));
  EXPECT_TRUE(ready->ready);
  EXPECT_EQ(ready->pod_ip, "10.244.0.7");
  EXPECT_EQ(ready->workload, workload::running);
  auto exited = read_pod(with_status(pod, R"({"phase":"Failed",
    "containerStatuses":[{"name":"sandbox",
      "state":{"terminated":{"exitCode":3}}}]})"));
  EXPECT_EQ(exited->workload, workload::exited);
  EXPECT_EQ(exited->exit_code, 3);
  auto done = read_pod(with_status(pod, R"({"phase":"Succeeded"})"));
  EXPECT_EQ(done->exit_code, 0);
}

TEST(PodSpec, AMemberPodHoldsItsEntrypointBackAndNamesItsPool) {
  node_config cfg;
  auto x = instance();
  x.member_of = "py311";
  x.expires_us = 0;
  auto pod = make_pod(cfg, x, "inc-1", {});
  auto doc = parse(pod);
  EXPECT_EQ(at(doc, "/spec/containers/0/command/0"), "/opt/opensandbox/execd");
  EXPECT_EQ(at(doc, "/spec/containers/0/command/1"), "--await-claim");
  EXPECT_EQ(at(doc, "/spec/containers/0/command/2"), "--bootstrap");
  EXPECT_EQ(at(doc, "/spec/containers/0/command/3"), "--");
  EXPECT_EQ(at(doc, "/spec/containers/0/args/0"), "python");
  EXPECT_EQ(at(doc, "/metadata/labels/opensandbox.io~1pool"), "py311");
  EXPECT_EQ(at(doc, "/metadata/annotations/opensandbox.io~1pool-member"),
            "idle");
  // Ready once execd answers, which it does while it waits for the claim.
  EXPECT_EQ(at(doc, "/spec/containers/0/readinessProbe/tcpSocket/port"),
            "44772");
  auto f = read_pod(pod);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->pool, "py311");
  EXPECT_EQ(f->member_state, "idle");
  EXPECT_EQ(f->expires_us, 0);
  // Other sandboxes have neither.
  auto plain = read_pod(make_pod(cfg, instance(), "inc-1", {}));
  EXPECT_EQ(plain->pool, "");
  EXPECT_EQ(plain->member_state, "");
  EXPECT_EQ(at(parse(make_pod(cfg, instance(), "inc-1", {})),
               "/spec/containers/0/command/1"),
            "--bootstrap");
}

TEST(PodSpec, AClaimMarksTheMemberAndKeepsTheClaimedSpec) {
  auto x = instance();
  claim_request c;
  c.entrypoint = {"sleep", "5"};
  c.env = {{"RUN", "7"}, {"A", "2"}};
  auto spec = claimed_spec(x.spec, c);
  EXPECT_EQ(spec.entrypoint, c.entrypoint);
  EXPECT_EQ(spec.env.at("RUN"), "7");
  EXPECT_EQ(spec.env.at("A"), "2");
  EXPECT_EQ(spec.image, x.spec.image);
  // No entrypoint in the claim: the template's stays.
  EXPECT_EQ(claimed_spec(x.spec, claim_request{}).entrypoint,
            x.spec.entrypoint);
  auto doc = parse(claim_patch(spec));
  EXPECT_EQ(at(doc, "/metadata/annotations/opensandbox.io~1pool-member"),
            "claimed");
  auto json = at(doc, "/metadata/annotations/opensandbox.io~1spec");
  EXPECT_EQ(at(doc, "/metadata/annotations/opensandbox.io~1spec-hash"),
            spec_hash(json));
  sandbox_spec back;
  ASSERT_TRUE(codec::spec_from_json(json, back));
  EXPECT_EQ(back.entrypoint, c.entrypoint);
  // Without the state: expiry and metadata are left alone.
  EXPECT_EQ(at(doc, "/metadata/annotations/opensandbox.io~1expires-at"),
            "<absent>");
  auto full = parse(claim_patch(spec, true, 1'780'000'000'000'000));
  EXPECT_EQ(at(full, "/metadata/annotations/opensandbox.io~1expires-at"),
            codec::format_time(1'780'000'000'000'000));
  EXPECT_EQ(at(full, "/metadata/annotations/opensandbox.io~1metadata"),
            R"({"team":"ml"})");
}
