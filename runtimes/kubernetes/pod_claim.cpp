#include "runtimes/kubernetes/pod_claim.hpp"

#include "base/log.hpp"
#include "core/json.hpp"
#include "core/spec_json.hpp"
#include "core/time.hpp"
#include "runtimes/execd_claim.hpp"
#include "runtimes/kubernetes/agent_sandbox.hpp"
#include "runtimes/kubernetes/kubernetes_runtime.hpp"
#include "runtimes/kubernetes/pod_spec.hpp"

namespace osb::runtimes::kubernetes {

namespace {

constexpr const char* component = "kubernetes";

} // namespace

sandbox_spec claimed_spec(const sandbox_spec& member, const claim_request& c) {
  auto r = member;
  if (!c.entrypoint.empty())
    r.entrypoint = c.entrypoint;
  for (auto& [k, v] : c.env)
    r.env[k] = v;
  return r;
}

std::string claim_patch(const sandbox_spec& spec, bool with_state,
                        int64_t expires_us, bool sandbox_object) {
  auto spec_json = codec::spec_to_json(spec);
  json::writer o;
  o.begin_object().key("metadata").begin_object().key("annotations");
  o.begin_object();
  o.key(member_annotation).str(member_claimed);
  o.key(spec_annotation).str(spec_json);
  o.key(spec_hash_annotation).str(spec_hash(spec_json));
  if (with_state) {
    o.key(expires_annotation);
    write_expiry(o, expires_us);
    o.key(metadata_annotation).str(codec::map_to_json(spec.metadata));
  }
  o.end_object();
  o.end_object();
  if (with_state && sandbox_object) {
    // The agent-sandbox controller ends the Sandbox at its shutdownTime.
    o.key("spec").begin_object().key("shutdownTime");
    write_expiry(o, expires_us);
    o.end_object();
  }
  o.end_object();
  return o.release();
}

void kubernetes_runtime::claim(const sandbox_instance& x,
                               const claim_request& c, callback<unit> cb) {
  auto name = pod_name(x.id);
  auto json = pods_->object(name);
  auto f = json.empty() ? std::nullopt : read_pod(json);
  if (!f || f->deleting)
    return cb(failure{failure_kind::unavailable,
                      "the member's pod " + name + " is gone"});
  if (f->pod_ip.empty() || f->workload != workload::running)
    return cb(failure{failure_kind::unavailable,
                      "the member's pod " + name + " is not running ("
                        + f->phase + ")"});
  auto port = x.ports.execd != 0 ? x.ports.execd : pod_ports(false).execd;
  auto patch = claim_patch(claimed_spec(x.spec, c));
  auto self = shared_from_this();
  auto then = [self, name, patch, cb](expected<unit> r) {
    if (!r)
      return cb(r.error());
    // The entrypoint runs: the claim succeeded whatever the patch answers
    // (the store has the claim; `record` writes the annotations again).
    self->client_->request(
      "PATCH", self->collection(self->workload_plural()) + "/" + name, patch,
      [cb, name](kube_response r) {
        if (r.status != 200)
          OSB_WARN(component, "", "",
                   "marking member pod " << name << " claimed answered HTTP "
                                         << r.status << ": " << r.body);
        cb(unit{});
      },
      "application/merge-patch+json");
  };
  if (opts_.claimer)
    return opts_.claimer(f->pod_ip, port, x.access_token, c, std::move(then));
  post_claim(f->pod_ip, port, x.access_token, c, std::move(then));
}

std::string kubernetes_runtime::record_patch(const sandbox_instance& x) const {
  // A member's workload (claimed by now: members are not recorded before)
  // keeps the claimed spec: its create-time spec is the pool's template.
  // A Sandbox's labels and annotations read as a pod's.
  auto json = workloads().object(pod_name(x.id));
  auto f = json.empty() ? std::nullopt : read_pod(json);
  bool sandbox_object = opts_.sandboxes != nullptr;
  if (f && !f->pool.empty())
    return claim_patch(x.spec, true, x.expires_us, sandbox_object);
  return sandbox_object ? sandbox_state_patch(x.expires_us, x.spec.metadata)
                        : state_patch(x.expires_us, x.spec.metadata);
}

} // namespace osb::runtimes::kubernetes
