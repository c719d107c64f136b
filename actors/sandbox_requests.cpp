// The SANDBOX actor's requests that act on a provisioned sandbox: claiming a
// pool member, and the operations of core/sandbox_ops.hpp (pause, resume,
// remove, renew, extend, patch, diagnose), one run() each at the end of this
// file. The state machine and provisioning are in sandbox.cpp.

#include "actors/sandbox_detail.hpp"

#include "actors/error.hpp"
#include "base/log.hpp"
#include "core/spec_json.hpp"
#include "core/time.hpp"

#include <variant>

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
                    // Runtimes that keep state with the workload keep the
                    // claim's expiry, metadata and spec (Kubernetes).
                    record(self);
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
void renew_to(self_ptr self, int64_t expires_us, const std::string& rid,
              answer_promise rp) {
  auto& st = self->state;
  if (st.phase == sandbox_phase::deleting) {
    rp.deliver(not_found(self));
    return;
  }
  if (expires_us <= codec::now_us()) {
    rp.deliver(make_error(ec::invalid_expiration,
                          "New expiration time must be in the future."));
    return;
  }
  if (st.view.expires_us == 0) {
    rp.deliver(make_error(ec::expiration_not_renewable,
                          "Sandbox " + sid(self)
                            + " does not have automatic expiration "
                              "enabled."));
    return;
  }
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
        OSB_INFO(component, rid, sid(self),
                 "sandbox expiry renewed to "
                   << codec::format_time(row.expires_us));
        // Answered once the workload keeps it too: an adopter reads it there.
        record(self, [rp, at = row.expires_us]() mutable {
          rp.deliver(sandbox_answer{at});
        });
      },
      [self, rp](caf::error& err) mutable {
        rp.deliver(store_error(self, err, "the new expiration"));
      });
}

/// Pauses (`on`) or resumes a sandbox through its runtime.
void freeze(self_ptr self, bool on, const std::string& rid,
            answer_promise rp) {
  auto& st = self->state;
  if (st.phase == sandbox_phase::deleting) {
    rp.deliver(not_found(self));
    return;
  }
  auto from = on ? sandbox_phase::running : sandbox_phase::paused;
  auto via = on ? sandbox_phase::pausing : sandbox_phase::resuming;
  if (st.phase != from) {
    rp.deliver(on ? make_error(ec::sandbox_not_running,
                               "Sandbox is not in a running state.")
                  : make_error(ec::sandbox_not_paused,
                               "Sandbox is not in a paused state."));
    return;
  }
  // The runtime may pause the sandbox during a snapshot (Docker's commit
  // does) and refuse a second pause.
  if (on && !st.snapshots_in_flight.empty()) {
    rp.deliver(make_error(ec::sandbox_not_running,
                          "Sandbox is being snapshotted; pause it once the "
                          "snapshot is Ready."));
    return;
  }
  if (on)
    transition(self, via, sandbox_state::pausing, "CONTAINER_PAUSING",
               "Sandbox container is being paused.");
  else
    transition(self, via, sandbox_state::resuming, "CONTAINER_RESUMING",
               "Sandbox container is being resumed.");
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
      rp.deliver(sandbox_answer{self->state.view});
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
      // `invalid`: the runtime cannot pause at all (Kubernetes pods); the
      // seed's answer, word for word.
      if (f.kind == failure_kind::invalid) {
        rp.deliver(make_error(ec::pause_not_supported,
                              std::string{on ? "Pause" : "Resume"}
                                + " is not supported for this sandbox type"));
        return;
      }
      auto code = f.kind == failure_kind::unavailable ? ec::runtime_unavailable
                  : f.kind == failure_kind::conflict
                    ? (on ? ec::sandbox_not_running : ec::sandbox_not_paused)
                  : (on ? ec::pause_failed : ec::resume_failed);
      rp.deliver(make_error(code, std::string{"Failed to "}
                                    + (on ? "pause" : "resume")
                                    + " sandbox: " + f.message));
    });
}

/// Has the runtime render a diagnostics report. Runtime failures fail the
/// request (a missing workload is explained in the text).
void diagnose(self_ptr self, diagnostics_query q, answer_promise rp) {
  auto& st = self->state;
  self
    ->request(st.runtime, chain_timeout(self), atom::diagnose_v,
              instance(self), st.view, std::move(q))
    .then(
      [rp](std::string& text) mutable {
        rp.deliver(sandbox_answer{std::move(text)});
      },
      [rp](caf::error& err) mutable {
        auto f = to_failure(err);
        rp.deliver(make_error(f.kind == failure_kind::unavailable
                                ? ec::runtime_unavailable
                                : ec::query_failed,
                              "Failed to collect diagnostics: " + f.message));
      });
}

// -- operations (core/sandbox_ops.hpp): one run() per op ----------------------

namespace {

void run(self_ptr self, pause_op&, const std::string& rid,
         answer_promise rp) {
  freeze(self, true, rid, std::move(rp));
}

void run(self_ptr self, resume_op&, const std::string& rid,
         answer_promise rp) {
  freeze(self, false, rid, std::move(rp));
}

void run(self_ptr self, remove_op&, const std::string& rid,
         answer_promise rp) {
  auto& st = self->state;
  if (st.phase != sandbox_phase::deleting && st.gate && st.gate->fenced()) {
    rp.deliver(make_error(ec::runtime_unavailable,
                          "Sandbox " + sid(self) + " cannot be deleted now: "
                            + st.gate->reason() + "; retry shortly."));
    return;
  }
  st.delete_waiters.push_back(std::move(rp));
  // A deletion under way (e.g. expiry): the caller sees it through.
  if (st.phase == sandbox_phase::deleting)
    return;
  OSB_INFO(component, rid, sid(self), "sandbox delete requested");
  begin_delete(self, "deleted");
}

void run(self_ptr self, renew_op& op, const std::string& rid,
         answer_promise rp) {
  renew_to(self, op.expires_us, rid, std::move(rp));
}

void run(self_ptr self, extend_op& op, const std::string& rid,
         answer_promise rp) {
  // Renew-on-access: only ever later, only while Running; decided here on
  // the current state (the proxy's view may be a second old).
  auto& st = self->state;
  if (st.phase == sandbox_phase::deleting) {
    rp.deliver(not_found(self));
    return;
  }
  if (st.phase != sandbox_phase::running || st.view.expires_us == 0
      || op.at_least_us <= st.view.expires_us) {
    rp.deliver(sandbox_answer{st.view.expires_us});
    return;
  }
  renew_to(self, op.at_least_us, rid, std::move(rp));
}

void run(self_ptr self, patch_op& op, const std::string& rid,
         answer_promise rp) {
  auto& st = self->state;
  if (st.phase == sandbox_phase::deleting) {
    rp.deliver(not_found(self));
    return;
  }
  auto metadata = st.view.metadata;
  for (auto& key : op.patch.remove)
    metadata.erase(key);
  for (auto& [k, v] : op.patch.set)
    metadata[k] = v;
  auto row = st.row;
  row.metadata_json = codec::map_to_json(metadata);
  // `await` keeps mutations in order: each write carries all earlier ones.
  self->request(st.store, store_timeout, atom::put_v, row)
    .await(
      [self, rp, row, metadata, rid](bool) mutable {
        auto& st = self->state;
        if (st.phase == sandbox_phase::deleting) {
          rp.deliver(not_found(self));
          return;
        }
        st.row.metadata_json = row.metadata_json;
        st.view.metadata = std::move(metadata);
        self->send(st.node, atom::update_v, st.view);
        OSB_INFO(component, rid, sid(self), "sandbox metadata patched");
        record(self, [rp, view = st.view]() mutable {
          rp.deliver(sandbox_answer{view});
        });
      },
      [self, rp](caf::error& err) mutable {
        rp.deliver(store_error(self, err, "the metadata"));
      });
}

void run(self_ptr self, diagnose_op& op, const std::string& rid,
         answer_promise rp) {
  if (self->state.phase == sandbox_phase::deleting) {
    rp.deliver(not_found(self));
    return;
  }
  OSB_DEBUG(component, rid, sid(self),
            "sandbox renders its " << op.query.kind << " diagnostics");
  diagnose(self, std::move(op.query), std::move(rp));
}

} // namespace

void run_op(self_ptr self, sandbox_op& op, const std::string& rid,
            answer_promise rp) {
  std::visit([&](auto& x) { run(self, x, rid, std::move(rp)); }, op);
}

} // namespace osb::sandbox_detail
