// The SANDBOX actor's requests that act on a provisioned sandbox: claiming a
// pool member, renewing the expiry, pausing and resuming, diagnostics. The
// state machine and provisioning are in sandbox.cpp.

#include "actors/sandbox_detail.hpp"

#include "actors/error.hpp"
#include "base/log.hpp"
#include "core/spec_json.hpp"
#include "core/time.hpp"

namespace osb::sandbox_detail {

namespace {

caf::error member_deleted() {
  return make_error(ec::sandbox_not_found, "The pool member was deleted.");
}

} // namespace

namespace {

/// Ends a claim that did not happen: the member may have started the
/// claim's entrypoint, so it is never handed out again but removed.
void claim_failed(self_ptr self,
                  caf::typed_response_promise<sandbox_view> rp,
                  const caf::error& err) {
  auto& st = self->state;
  auto api = to_api_error(err);
  OSB_WARN(component, st.origin_rid, sid(self),
           "pool member claim failed (" << api.message
                                        << "); the member is removed");
  rp.deliver(err);
  if (!finish_step(self) && st.phase != sandbox_phase::deleting)
    begin_delete(self, "removed after a failed claim");
}

} // namespace

/// Claims an idle member: "claiming" is durable before the runtime starts
/// the entrypoint (a crash from then on removes the member at recovery);
/// the claimed spec, metadata and expiry are durable before the answer.
caf::result<sandbox_view> claim_member(self_ptr self, sandbox_spec claimed,
                                       std::string rid) {
  auto& st = self->state;
  if (st.row.pool.empty() || st.row.phase != "idle"
      || st.phase != sandbox_phase::running || st.step_in_flight)
    return make_error(ec::sandbox_not_running,
                      "Sandbox " + sid(self) + " is not an idle pool member.");
  auto rp = self->make_response_promise<sandbox_view>();
  st.origin_rid = rid;
  st.step_in_flight = true;
  st.row.phase = "claiming";
  self->request(st.store, store_timeout, atom::put_v, st.row)
    .then(
      [self, rp, claimed](bool) mutable {
        auto& st = self->state;
        if (finish_step(self)) {
          rp.deliver(member_deleted());
          return;
        }
        st.step_in_flight = true;
        runtimes::claim_request c;
        c.entrypoint = claimed.entrypoint;
        c.env = claimed.env;
        self
          ->request(st.runtime, runtime_timeout(self), atom::claim_v,
                    instance(self), std::move(c))
          .then(
            [self, rp, claimed](bool) mutable {
              auto& st = self->state;
              auto row = st.row;
              auto now = codec::now_us();
              row.phase = "provisioned";
              row.spec_json = codec::spec_to_json(claimed);
              row.metadata_json = codec::map_to_json(claimed.metadata);
              row.created_us = now;
              row.expires_us
                = claimed.timeout_s > 0 ? now + claimed.timeout_s * 1000000
                                        : 0;
              row.last_transition_us = now;
              self->request(st.store, store_timeout, atom::put_v, row)
                .then(
                  [self, rp, claimed, row](bool) mutable {
                    auto& st = self->state;
                    if (finish_step(self)) {
                      rp.deliver(member_deleted());
                      return;
                    }
                    auto host = st.view.endpoint_host;
                    st.row = row;
                    st.spec = claimed;
                    st.view = make_view(*st.cfg, st.row, st.spec);
                    st.view.endpoint_host = host;
                    transition(self, sandbox_phase::running,
                               sandbox_state::running, "CONTAINER_RUNNING",
                               "Sandbox container is running. Pool '"
                                 + st.row.pool
                                 + "' served it from an idle member.");
                    arm_expiry(self);
                    OSB_INFO(component, st.origin_rid, sid(self),
                             "pool member of " << st.row.pool << " claimed");
                    rp.deliver(st.view);
                  },
                  [self, rp](caf::error& err) mutable {
                    claim_failed(self, rp, err);
                  });
            },
            [self, rp](caf::error& err) mutable {
              claim_failed(self, rp, err);
            });
      },
      [self, rp](caf::error& err) mutable {
        auto& st = self->state;
        st.row.phase = "idle";
        if (finish_step(self)) {
          rp.deliver(err);
          return;
        }
        rp.deliver(store_error(self, err, "the claim"));
      });
  return rp;
}

/// Moves the expiry to `expires_us` (durable before the answer).
caf::result<int64_t> renew_to(self_ptr self, int64_t expires_us,
                              const std::string& rid) {
  auto& st = self->state;
  if (st.phase == sandbox_phase::deleting)
    return not_found(self);
  if (expires_us <= codec::now_us())
    return make_error(ec::invalid_expiration,
                      "New expiration time must be in the future.");
  if (st.view.expires_us == 0)
    return make_error(ec::expiration_not_renewable,
                      "Sandbox " + sid(self)
                        + " does not have automatic expiration enabled.");
  auto rp = self->make_response_promise<int64_t>();
  auto row = st.row;
  row.expires_us = expires_us;
  // `await` keeps mutations in order: each write carries all earlier ones.
  self->request(st.store, store_timeout, atom::put_v, row)
    .await(
      [self, rp, row, rid](bool) mutable {
        auto& st = self->state;
        if (st.phase == sandbox_phase::deleting) {
          rp.deliver(not_found(self));
          return;
        }
        st.row.expires_us = row.expires_us;
        st.view.expires_us = row.expires_us;
        arm_expiry(self);
        self->send(st.node, atom::update_v, st.view);
        record(self);
        OSB_INFO(component, rid, sid(self),
                 "sandbox expiry renewed to "
                   << codec::format_time(row.expires_us));
        rp.deliver(row.expires_us);
      },
      [self, rp](caf::error& err) mutable {
        rp.deliver(store_error(self, err, "the new expiration"));
      });
  return rp;
}

/// Pauses (`on`) or resumes a sandbox through its runtime.
caf::result<sandbox_view> freeze(self_ptr self, bool on,
                                 const std::string& rid) {
  auto& st = self->state;
  if (st.phase == sandbox_phase::deleting)
    return not_found(self);
  auto from = on ? sandbox_phase::running : sandbox_phase::paused;
  auto via = on ? sandbox_phase::pausing : sandbox_phase::resuming;
  if (st.phase != from)
    return on ? make_error(ec::sandbox_not_running,
                           "Sandbox is not in a running state.")
              : make_error(ec::sandbox_not_paused,
                           "Sandbox is not in a paused state.");
  // The runtime may pause the sandbox during a snapshot (Docker's commit
  // does) and refuse a second pause.
  if (on && !st.snapshots_in_flight.empty())
    return make_error(ec::sandbox_not_running,
                      "Sandbox is being snapshotted; pause it once the "
                      "snapshot is Ready.");
  if (on)
    transition(self, via, sandbox_state::pausing, "CONTAINER_PAUSING",
               "Sandbox container is being paused.");
  else
    transition(self, via, sandbox_state::resuming, "CONTAINER_RESUMING",
               "Sandbox container is being resumed.");
  auto rp = self->make_response_promise<sandbox_view>();
  auto back = [self, on] {
    if (on)
      set_running(self);
    else
      set_paused(self);
  };
  auto req = on ? self->request(st.runtime, runtime_timeout(self),
                                atom::pause_v, instance(self))
                : self->request(st.runtime, runtime_timeout(self),
                                atom::resume_v, instance(self));
  req.then(
    [self, rp, rid, on, via](bool) mutable {
      if (self->state.phase == via) {
        if (on)
          set_paused(self);
        else
          set_running(self);
      }
      OSB_INFO(component, rid, sid(self),
               "sandbox " << (on ? "paused" : "resumed"));
      rp.deliver(self->state.view);
    },
    [self, rp, on, via, back](caf::error& err) mutable {
      if (self->state.phase == via)
        back();
      auto f = to_failure(err);
      if (f.kind == failure_kind::timeout) {
        // The runtime may still carry it out; reconciliation reports the
        // state.
        rp.deliver(make_error(
          ec::outcome_unknown,
          std::string{"Docker did not answer the "} + (on ? "pause" : "resume")
            + " in time; it may still happen. GET sandbox " + sid(self)
            + " to see its current state."));
        return;
      }
      // `invalid`: the runtime cannot pause at all (Kubernetes pods).
      auto code = f.kind == failure_kind::unavailable ? ec::runtime_unavailable
                  : f.kind == failure_kind::conflict
                    ? (on ? ec::sandbox_not_running : ec::sandbox_not_paused)
                  : f.kind == failure_kind::invalid ? ec::api_not_supported
                  : (on ? ec::pause_failed : ec::resume_failed);
      rp.deliver(make_error(code, std::string{"Failed to "}
                                    + (on ? "pause" : "resume")
                                    + " sandbox: " + f.message));
    });
  return rp;
}

/// Has the runtime render a diagnostics report. Runtime failures fail the
/// request (a missing workload is explained in the text).
void diagnose(self_ptr self, diagnostics_query q,
              caf::typed_response_promise<std::string> rp) {
  auto& st = self->state;
  self
    ->request(st.runtime, chain_timeout(self), atom::diagnose_v,
              instance(self), st.view, std::move(q))
    .then([rp](std::string& text) mutable { rp.deliver(std::move(text)); },
          [rp](caf::error& err) mutable {
            auto f = to_failure(err);
            rp.deliver(make_error(f.kind == failure_kind::unavailable
                                    ? ec::runtime_unavailable
                                    : ec::query_failed,
                                  "Failed to collect diagnostics: "
                                    + f.message));
          });
}

} // namespace osb::sandbox_detail
