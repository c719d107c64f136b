#include "runtimes/kubernetes/agent_sandbox.hpp"

#include "base/json.hpp"
#include "core/json.hpp"
#include "core/spec_json.hpp"
#include "core/time.hpp"

namespace osb::runtimes::kubernetes {

namespace {

using osb::json::writer;

std::string string_at(const json::Value& obj, std::string_view name) {
  auto v = json::present(obj, name);
  return v != nullptr && v->IsString() ? std::string{json::view(*v)}
                                       : std::string{};
}

const json::Value* object_at(const json::Value& obj, std::string_view name) {
  auto v = json::present(obj, name);
  return v != nullptr && v->IsObject() ? v : nullptr;
}

/// The API server's refusals that a retry of the controller cannot cure.
bool is_refusal(const std::string& message) {
  return message.find(" is invalid") != std::string::npos
         || message.find("forbidden") != std::string::npos;
}

} // namespace

std::string sandbox_collection(const std::string& namespace_name) {
  return std::string{"/apis/"} + agent_sandbox_group + "/"
         + agent_sandbox_version + "/namespaces/" + namespace_name + "/"
         + agent_sandbox_plural;
}

std::string make_sandbox(const node_config& cfg, const sandbox_instance& x,
                         const std::string& incarnation,
                         const std::vector<volume_mount>& volumes) {
  // The pod as the "pod" provider makes it, moved into the template: one
  // definition of the pod for both providers.
  auto pod_text = make_pod(cfg, x, incarnation, volumes);
  rapidjson::Document pod;
  pod.Parse(pod_text.data(), pod_text.size());
  auto& meta = pod["metadata"];
  writer o;
  o.begin_object();
  o.key("apiVersion")
    .str(std::string{agent_sandbox_group} + "/" + agent_sandbox_version);
  o.key("kind").str("Sandbox");
  o.key("metadata").begin_object();
  o.key("name").str(pod_name(x.id));
  // The same labels (this node's selector lists the Sandboxes) and state
  // annotations (what a restarted server adopts from).
  o.key("labels").value(meta["labels"]);
  o.key("annotations").value(meta["annotations"]);
  o.end_object();
  o.key("spec").begin_object();
  o.key("replicas").num(1);
  o.key("shutdownPolicy").str(cfg.agent_sandbox.shutdown_policy);
  // The controller's own expiry: the sandbox ends even when no server is
  // left to remove it. Renewals move it.
  if (x.expires_us != 0)
    o.key("shutdownTime").str(codec::format_time(x.expires_us));
  o.key("podTemplate").begin_object();
  o.key("metadata")
    .begin_object()
    .key("labels")
    .value(meta["labels"])
    .key("annotations")
    .value(meta["annotations"])
    .end_object();
  o.key("spec").value(pod["spec"]);
  o.end_object(); // podTemplate
  o.end_object(); // spec
  o.end_object();
  return o.release();
}

std::string sandbox_state_patch(int64_t expires_us,
                                const string_map& metadata) {
  writer o;
  o.begin_object().key("metadata").begin_object().key("annotations");
  o.begin_object();
  o.key(expires_annotation);
  write_expiry(o, expires_us);
  o.key(metadata_annotation).str(codec::map_to_json(metadata));
  o.end_object();
  o.end_object();
  o.key("spec").begin_object().key("shutdownTime");
  write_expiry(o, expires_us);
  o.end_object();
  o.end_object();
  return o.release();
}

std::optional<sandbox_facts> read_sandbox(std::string_view text) {
  auto meta = read_pod(text);
  if (!meta)
    return std::nullopt;
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  sandbox_facts s;
  s.meta = std::move(*meta);
  // Nothing of a pod's status applies to a Sandbox.
  s.meta.workload = s.meta.deleting ? "removing" : "pending";
  if (auto spec = object_at(doc, "spec"))
    s.shutdown_time = string_at(*spec, "shutdownTime");
  if (auto status = object_at(doc, "status")) {
    if (auto conds = json::present(*status, "conditions");
        conds != nullptr && conds->IsArray()) {
      for (auto& c : conds->GetArray()) {
        if (!c.IsObject() || string_at(c, "type") != "Ready")
          continue;
        s.ready = string_at(c, "status");
        s.ready_reason = string_at(c, "reason");
        s.ready_message = string_at(c, "message");
      }
    }
    if (auto ips = json::present(*status, "podIPs");
        ips != nullptr && ips->IsArray() && !ips->Empty()
        && (*ips)[0].IsString())
      s.pod_ip = std::string{json::view((*ips)[0])};
  }
  return s;
}

std::optional<sandbox_failure> sandbox_failed(const sandbox_facts& s) {
  if (s.ready != "False")
    return std::nullopt;
  if (s.ready_reason == "SandboxExpired")
    return sandbox_failure{"SANDBOX_EXPIRED",
                           "Sandbox " + s.meta.name
                             + " reached its spec.shutdownTime "
                             + s.shutdown_time
                             + " before it became ready"};
  if (s.ready_reason == "ReconcilerError" && is_refusal(s.ready_message))
    return sandbox_failure{"CONTAINER_CREATE_FAILED",
                           "The agent-sandbox controller cannot make the pod "
                           "of Sandbox "
                             + s.meta.name + ": " + s.ready_message};
  return std::nullopt;
}

workload_state sandbox_workload(const sandbox_facts& s, const pod_facts* pod) {
  workload_state w;
  w.id = s.meta.id;
  if (s.meta.deleting) {
    w.status = "removing";
  } else if (pod) {
    w.status = pod->workload;
    w.exit_code = pod->exit_code;
    w.address = pod->pod_ip;
  } else if (s.ready == "False"
             && (s.ready_reason == "SandboxExpired"
                 || s.ready_reason == "PodSucceeded"
                 || s.ready_reason == "PodFailed")) {
    // Retained after its end, its pod gone.
    w.status = workload::exited;
    w.exit_code = s.ready_reason == "PodFailed" ? 1 : 0;
  } else {
    w.status = "pending";
  }
  return w;
}

} // namespace osb::runtimes::kubernetes
