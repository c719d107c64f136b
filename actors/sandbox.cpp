#include "actors/sandbox.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>

#include "actors/error.hpp"
#include "actors/sandbox_detail.hpp"
#include "core/ids.hpp"
#include "core/pool.hpp"
#include "core/spec_json.hpp"
#include "core/time.hpp"
#include "base/log.hpp"
#include "base/strings.hpp"

namespace osb {

namespace sandbox_detail {

constexpr auto delete_retry = std::chrono::seconds(10);
/// Bound of a whole provisioning (image pulls included); the runtime
/// bounds each of its calls much earlier.
constexpr auto provision_timeout = std::chrono::minutes(30);

/// Runtime calls get the configured runtime API timeout plus slack.
caf::timespan runtime_timeout(self_ptr self) {
  return std::chrono::seconds(self->state.cfg->docker.api_timeout + 10);
}

/// Removals and diagnostics take a few runtime calls in a row.
caf::timespan chain_timeout(self_ptr self) {
  return std::chrono::seconds(3 * self->state.cfg->docker.api_timeout + 10);
}

const std::string& sid(self_ptr self) {
  return self->state.row.id;
}

/// The sandbox as its runtime sees it (ports may change before the start).
runtimes::sandbox_instance instance(self_ptr self) {
  return make_instance(self->state.row, self->state.spec);
}

void record(self_ptr self, std::function<void()> then) {
  auto x = instance(self);
  x.spec.metadata = self->state.view.metadata;
  x.expires_us = self->state.view.expires_us;
  self->request(self->state.runtime, runtime_timeout(self), atom::update_v,
                std::move(x))
    .then(
      [then](bool) {
        if (then)
          then();
      },
      [self, then](caf::error& err) {
        OSB_WARN(component, "", sid(self),
                 "sandbox could not keep its expiry and metadata with "
                 "its workload (the store has them): "
                   << to_failure(err).message);
        if (then)
          then();
      });
}

/// Answers endpoint lookups that waited for the start: the container runs
/// (or provisioning ended otherwise), so the SDK's first ping can succeed.
void release_start_waiters(self_ptr self) {
  auto& st = self->state;
  if (st.phase == sandbox_phase::provisioning)
    return;
  for (auto& rp : st.start_waiters)
    rp.deliver(st.view);
  st.start_waiters.clear();
}

/// Marks a phase of the create (if this actor saw it from its start) and
/// copies the times into the view.
void mark_phase(self_ptr self, create_phase p) {
  auto& st = self->state;
  if (!st.timeline)
    return;
  st.timeline->mark(p, codec::now_us());
  st.view.create_phases_us = st.timeline->snapshot();
}

/// Moves to `phase` with the given API status and tells the NODE actor.
void transition(self_ptr self, sandbox_phase phase, sandbox_state api_state,
                std::string reason, std::string message) {
  auto& st = self->state;
  st.phase = phase;
  st.view.state = api_state;
  st.counted.set(api_state);
  if (api_state == sandbox_state::running)
    mark_phase(self, create_phase::running);
  else if (st.timeline)
    st.view.create_phases_us = st.timeline->snapshot();
  st.view.reason = std::move(reason);
  st.view.message = std::move(message);
  st.local_transition_us = codec::now_us();
  st.view.last_transition_us = st.local_transition_us;
  self->send(st.node, atom::update_v, st.view);
  release_start_waiters(self);
}

void set_running(self_ptr self) {
  transition(self, sandbox_phase::running, sandbox_state::running,
             "CONTAINER_RUNNING",
             "Sandbox container is running." + pool_note(self->state.spec));
}

void set_paused(self_ptr self) {
  transition(self, sandbox_phase::paused, sandbox_state::paused,
             "CONTAINER_PAUSED", "Sandbox container is paused.");
}

void set_exited(self_ptr self, int32_t code) {
  if (code == 0)
    transition(self, sandbox_phase::exited, sandbox_state::terminated,
               "CONTAINER_EXITED", "Sandbox container exited successfully.");
  else
    transition(self, sandbox_phase::exited, sandbox_state::failed,
               "CONTAINER_EXITED_ERROR",
               "Sandbox container exited with code " + std::to_string(code)
                 + ".");
}

/// Writes the current row; failures are logged (the runtime stays the truth
/// of what exists, so a lost write degrades to the last stored state).
void persist(self_ptr self) {
  self->request(self->state.store, store_timeout, atom::put_v, self->state.row)
    .then([](bool) {},
          [self](caf::error& err) {
            OSB_ERROR(component, self->state.origin_rid, sid(self),
                      "sandbox failed to persist its state: "
                        << to_api_error(err).message);
          });
}

/// A write to the store that did not confirm in time may still land: the
/// caller must not be told that it did not happen.
caf::error store_error(self_ptr self, const caf::error& err,
                       const char* what) {
  if (err == caf::sec::request_timeout)
    return make_error(ec::outcome_unknown,
                      std::string{"The store did not confirm "} + what
                        + " in time; it may still be applied. GET sandbox "
                        + sid(self)
                        + " to see its current state; a retry with the same "
                          "X-Request-ID is applied at most once.");
  return make_error(ec::store_failed, std::string{"Failed to persist "} + what
                                        + ": " + to_api_error(err).message);
}

/// Arms the expiry timer for the current `expiresAt`; a new epoch voids any
/// pending timer (CAF 0.17 cannot cancel delayed messages).
void arm_expiry(self_ptr self) {
  auto& st = self->state;
  ++st.epoch;
  if (st.view.expires_us == 0)
    return;
  auto delay = std::max<int64_t>(0, st.view.expires_us - codec::now_us());
  self->delayed_send(self, std::chrono::microseconds(delay), atom::expire_v,
                     st.epoch);
}

/// Answers the DELETE requests: an error (nothing happened), or "" (the
/// sandbox is gone) or why the removal of its containers is still pending
/// (the deletion is durable and happens anyway).
void deliver_delete(self_ptr self, const caf::error& err,
                    const std::string& pending = {}) {
  for (auto& rp : self->state.delete_waiters) {
    if (err)
      rp.deliver(err);
    else
      rp.deliver(sandbox_answer{pending});
  }
  self->state.delete_waiters.clear();
}

/// Removes what the runtime made for the sandbox, then the row, then
/// quits. Retries while the runtime fails: the row stays in `deleting`, so a
/// restart finishes the job.
void remove_container(self_ptr self) {
  auto& st = self->state;
  self
    ->request(st.runtime, chain_timeout(self), atom::remove_v, instance(self),
              st.never_ran)
    .then(
      [self](bool) {
        self
          ->request(self->state.store, store_timeout, atom::remove_v,
                    sid(self))
          .then([](bool) {}, [](caf::error&) {});
        OSB_INFO(component, self->state.origin_rid, sid(self),
                 "sandbox removed its containers");
        deliver_delete(self, caf::none);
        self->quit();
      },
      [self](caf::error& err) {
        auto f = to_failure(err);
        OSB_ERROR(component, self->state.origin_rid, sid(self),
                  "sandbox failed to clean up, retrying in 10s: "
                    << f.message);
        // The deletion is durable (the row says "deleting"): tell the caller
        // it will happen, not that it failed.
        deliver_delete(self, caf::none, f.message);
        self->delayed_send(self, delete_retry, atom::expire_v,
                           self->state.epoch);
      });
}

/// Starts deleting: the intent is made durable first, so that a crash from
/// here on still ends with the container removed.
void begin_delete(self_ptr self, const std::string& why) {
  auto& st = self->state;
  auto previous = std::make_pair(st.phase, st.row.phase);
  st.phase = sandbox_phase::deleting;
  ++st.epoch;
  st.row.phase = "deleting";
  release_start_waiters(self);
  OSB_INFO(component, st.origin_rid, sid(self), "sandbox is being " << why);
  self->request(st.store, store_timeout, atom::put_v, st.row)
    .then(
      [self](bool) {
        auto& st = self->state;
        // From now on GET answers 404.
        self->send(st.node, atom::forget_v, sid(self));
        if (st.step_in_flight) {
          // Provisioning finishes the removal when its step returns; the
          // runtime stops at its next step.
          if (st.cancel)
            st.cancel->store(true);
          deliver_delete(self, caf::none);
          return;
        }
        remove_container(self);
      },
      [self, previous](caf::error& err) {
        auto& st = self->state;
        std::tie(st.phase, st.row.phase) = previous;
        // An overdue expiry would retry at once and forever (e.g. a full
        // disk): wait before the next attempt.
        if (st.view.expires_us != 0
            && st.view.expires_us <= codec::now_us()) {
          ++st.epoch;
          self->delayed_send(self, delete_retry, atom::expire_v, st.epoch);
        } else {
          arm_expiry(self);
        }
        deliver_delete(self, store_error(self, err, "the deletion"));
      });
}

/// Ends a provisioning step; returns true when a deletion arrived meanwhile
/// and has now taken over (the container is being removed).
bool finish_step(self_ptr self) {
  auto& st = self->state;
  st.step_in_flight = false;
  if (st.phase != sandbox_phase::deleting)
    return false;
  remove_container(self);
  return true;
}

/// Answers the create with the Pending view: from now on the sandbox is
/// listed, served and expires.
void acknowledge(self_ptr self,
                 caf::typed_response_promise<sandbox_view> rp) {
  auto& st = self->state;
  st.counted.set(st.view.state);
  self->send(st.node, atom::put_v, caf::actor_cast<sandbox_actor>(self),
             st.view);
  rp.deliver(st.view);
  arm_expiry(self);
  OSB_INFO(component, st.origin_rid, sid(self),
           "sandbox accepted, image " << st.spec.image);
}

/// Answers a create held back until its workload object exists
/// (`ack_when_created`); does nothing once answered.
void acknowledge_held(self_ptr self) {
  auto& st = self->state;
  if (!st.pending_ack)
    return;
  auto rp = std::move(*st.pending_ack);
  st.pending_ack.reset();
  acknowledge(self, std::move(rp));
}

/// A create held back until its workload object exists failed before that:
/// it is answered with the error (as a refused admission is) and leaves
/// nothing behind, row included.
void refuse_create(self_ptr self, const std::string& reason,
                   const std::string& msg) {
  auto& st = self->state;
  OSB_ERROR(component, st.origin_rid, sid(self),
            "sandbox create refused before its workload existed: " << msg);
  ops_metrics().create_failures.with({reason}).inc();
  self->request(st.runtime, chain_timeout(self), atom::remove_v,
                instance(self), true)
    .then([](bool) {}, [](caf::error&) {});
  self->request(st.store, store_timeout, atom::remove_v, sid(self))
    .then([](bool) {}, [](caf::error&) {});
  auto code = reason == "KUBERNETES_UNAVAILABLE" ? ec::runtime_unavailable
              : reason == "IMAGE_PULL_FAILED"    ? ec::image_pull_failed
                                                 : ec::start_failed;
  auto rp = std::move(*st.pending_ack);
  st.pending_ack.reset();
  rp.deliver(make_error(code, msg));
  self->quit();
}

/// Moves to Failed with `reason` and `msg` and removes what provisioning
/// made, with every volume the server created for the sandbox (it never
/// ran, so none of them holds anything of value).
void fail_with(self_ptr self, std::string reason, std::string msg) {
  auto& st = self->state;
  if (st.pending_ack)
    return refuse_create(self, reason, msg);
  OSB_ERROR(component, st.origin_rid, sid(self),
            "sandbox failed to provision: " << msg);
  self->request(st.runtime, chain_timeout(self), atom::remove_v,
                instance(self), true)
    .then([](bool) {},
          [self](caf::error& err) {
            OSB_WARN(component, self->state.origin_rid, sid(self),
                     "sandbox could not clean up after a failed create "
                     "(retried on delete): "
                       << to_failure(err).message);
          });
  ops_metrics().create_failures.with({reason}).inc();
  transition(self, sandbox_phase::failed, sandbox_state::failed,
             std::move(reason), std::move(msg));
  st.row.phase = "failed";
  st.row.reason = st.view.reason;
  st.row.message = st.view.message;
  st.row.last_transition_us = st.view.last_transition_us;
  persist(self);
}

void provision(self_ptr self);

/// A start failed because another program holds one of the sandbox's host
/// ports (reserved ports are probed, but the kernel hands out ephemeral
/// ports from the same range, and nodes in containers cannot see each
/// other's): takes new ports and provisions again. Returns false when the
/// retries are used up.
bool retry_with_new_ports(self_ptr self, const std::string& why) {
  auto& st = self->state;
  if (st.port_retries >= 3 || !st.supervisor)
    return false;
  ++st.port_retries;
  OSB_WARN(component, st.origin_rid, sid(self),
           "sandbox retries with new host ports, one was taken: " << why);
  st.step_in_flight = true;
  port_map old{st.row.execd_port, st.row.http_port, st.row.egress_port};
  self->request(st.supervisor, std::chrono::seconds(10), atom::update_v, old)
    .then(
      [self](port_map& fresh) {
        auto& st = self->state;
        st.row.execd_port = fresh.execd;
        st.row.http_port = fresh.http;
        st.row.egress_port = fresh.egress;
        st.view.ports = fresh;
        persist(self);
        self->send(st.node, atom::update_v, st.view);
        if (!finish_step(self))
          provision(self);
      },
      [self](caf::error& err) {
        self->state.step_in_flight = false;
        fail_with(self, "CONTAINER_START_FAILED",
                  "Failed to start sandbox container: no free host "
                  "ports: "
                    + to_api_error(err).message);
      });
  return true;
}

/// Takes the outcome of a provisioning: Running, a retry, or Failed with a
/// reason a person can act on.
void provisioned(self_ptr self, runtimes::provision_result& r) {
  using outcome = runtimes::provision_result::outcome;
  using remedy = runtimes::provision_result::remedy;
  auto& st = self->state;
  if (finish_step(self) || r.status == outcome::cancelled)
    return;
  if (r.status == outcome::running) {
    // Answered Pending first, as it would have been without waiting.
    acknowledge_held(self);
    st.never_ran = false;
    // A sandbox with an address of its own (a pod) is reached there.
    if (!r.address.empty())
      st.view.endpoint_host = r.address;
    if (!st.row.pool.empty() && st.row.phase == "provisioning") {
      // A pool member: its execd waits for a claim (docs/pools.md).
      transition(self, sandbox_phase::running, sandbox_state::running,
                 "POOL_MEMBER_IDLE",
                 "Pool member of '" + st.row.pool
                   + "' is idle, waiting for a claim.");
      st.row.phase = "idle";
      st.row.last_transition_us = st.view.last_transition_us;
      persist(self);
      OSB_INFO(component, st.origin_rid, sid(self),
               "pool member is idle after "
                 << (codec::now_us() - st.view.created_us) / 1000 << " ms");
      return;
    }
    set_running(self);
    st.row.phase = "provisioned";
    st.row.last_transition_us = st.view.last_transition_us;
    persist(self);
    OSB_INFO(component, st.origin_rid, sid(self),
             "sandbox is running after "
               << (codec::now_us() - st.view.created_us) / 1000 << " ms");
    return;
  }
  // An earlier create still holds the name (the runtime lists it only
  // later): give it a moment, clear it and try again.
  if (r.fix == remedy::retry_later && st.conflict_retries < 20) {
    ++st.conflict_retries;
    st.remove_before_create = true;
    self->delayed_send(self, std::chrono::milliseconds(250),
                       atom::provision_v);
    return;
  }
  if (r.fix == remedy::new_ports && retry_with_new_ports(self, r.message))
    return;
  fail_with(self, std::move(r.reason), std::move(r.message));
}

/// Starts (or restarts) provisioning: one request to the runtime, which
/// reports its pull progress and how it ended.
void provision(self_ptr self) {
  auto& st = self->state;
  if (st.phase != sandbox_phase::provisioning || st.step_in_flight)
    return;
  st.step_in_flight = true;
  st.cancel = std::make_shared<std::atomic<bool>>(false);
  runtimes::provision_options opts;
  // A crash interrupted an earlier provisioning: its leftovers go first.
  opts.fresh = !std::exchange(st.remove_before_create, false);
  opts.cancel = st.cancel;
  opts.progress = [hdl = caf::actor_cast<sandbox_actor>(self)](
                    const std::string& msg) {
    caf::anon_send(hdl, atom::progress_v, msg);
  };
  if (st.timeline || st.pending_ack)
    opts.on_phase = [timeline = st.timeline, held = st.pending_ack.has_value(),
                     hdl = caf::actor_cast<sandbox_actor>(self)](
                      create_phase p) {
      if (timeline)
        timeline->mark(p, codec::now_us());
      if (held && p == create_phase::created)
        caf::anon_send(hdl, atom::ready_v);
    };
  self
    ->request(st.runtime, provision_timeout, atom::provision_v,
              instance(self), std::move(opts))
    .then([self](runtimes::provision_result& r) { provisioned(self, r); },
          [self, cancel = st.cancel](caf::error& err) {
            // No answer in time: stop the runtime where it is.
            cancel->store(true);
            runtimes::provision_result r;
            r.status = runtimes::provision_result::outcome::failed;
            r.reason = "PROVISIONING_FAILED";
            r.message = "Failed to provision sandbox: "
                        + to_failure(err).message;
            provisioned(self, r);
          });
}

caf::error not_found(self_ptr self) {
  return make_error(ec::sandbox_not_found,
                    "Sandbox " + sid(self) + " not found.");
}

} // namespace sandbox_detail

namespace {

using namespace sandbox_detail;

} // namespace

sandbox_view make_view(const node_config& cfg, const store::sandbox_row& row,
                       const sandbox_spec& spec) {
  sandbox_view v;
  v.id = row.id;
  v.image = spec.snapshot_id.empty() ? spec.image : std::string{};
  v.snapshot_id = spec.snapshot_id;
  v.platform_os = spec.platform_os;
  v.platform_arch = spec.platform_arch;
  v.entrypoint = spec.entrypoint;
  v.created_us = row.created_us;
  v.expires_us = row.expires_us;
  v.last_transition_us = row.last_transition_us;
  codec::map_from_json(row.metadata_json, v.metadata);
  v.node = row.node;
  v.ports.execd = row.execd_port;
  v.ports.http = row.http_port;
  v.ports.egress = row.egress_port;
  v.egress_token = row.egress_token;
  v.access_token = row.access_token;
  v.runtime_host = row.runtime_host;
  v.pool = row.pool;
  if (!row.pool.empty()
      && (row.phase == "provisioning" || row.phase == "idle"
          || row.phase == "claiming"))
    v.member_of = row.pool;
  if (auto i = spec.extensions.find("access.renew.extend.seconds");
      i != spec.extensions.end())
    v.renew_extend_s
      = std::strtoll(std::string{trim(i->second)}.c_str(), nullptr, 10);
  (void) cfg;
  return v;
}

runtimes::sandbox_instance make_instance(const store::sandbox_row& row,
                                         const sandbox_spec& spec) {
  runtimes::sandbox_instance x;
  x.id = row.id;
  x.node = row.node;
  x.runtime_host = row.runtime_host;
  x.spec = spec;
  x.ports = port_map{row.execd_port, row.http_port, row.egress_port};
  x.egress_token = row.egress_token;
  x.access_token = row.access_token;
  x.created_us = row.created_us;
  x.expires_us = row.expires_us;
  if (!row.pool.empty()
      && (row.phase == "provisioning" || row.phase == "idle"
          || row.phase == "claiming"))
    x.member_of = row.pool;
  return x;
}

sandbox_actor_state::~sandbox_actor_state() {
  if (cancel)
    cancel->store(true);
}

sandbox_actor::behavior_type
sandbox(sandbox_actor::stateful_pointer<sandbox_actor_state> self,
        sandbox_init init) {
  auto& st = self->state;
  st.cfg = std::move(init.cfg);
  st.row = std::move(init.row);
  st.spec = std::move(init.spec);
  st.node = std::move(init.node);
  st.runtime = std::move(init.runtime);
  st.store = std::move(init.store);
  st.supervisor = std::move(init.supervisor);
  st.gate = std::move(init.gate);
  st.ack_when_created = init.ack_when_created && !init.recovered;
  st.view = make_view(*st.cfg, st.row, st.spec);
  st.view.endpoint_host = init.observed_address.empty()
                           ? init.endpoint_host
                           : init.observed_address;
  st.local_transition_us = codec::now_us();
  if (init.recovered) {
    // Bring the state machine back from the row and the container.
    auto& obs = init.observed_status;
    // A workload that ran means provisioning got to its last step; only
    // recording that may have failed (e.g. a full disk): adopt it rather
    // than replace a running sandbox.
    bool ran = obs == runtimes::workload::running
               || obs == runtimes::workload::paused
               || obs == runtimes::workload::exited;
    // A member that ran before its start was recorded was never probed
    // idle: it is removed below rather than adopted.
    bool member_ran = !st.row.pool.empty() && st.row.phase == "provisioning"
                      && ran;
    if (st.row.phase == "provisioning" && ran && !member_ran) {
      OSB_WARN(component, "", sid(self),
               "sandbox adopts its container, which ran although its start "
               "was not recorded");
      st.row.phase = "provisioned";
      persist(self);
    }
    st.never_ran = st.row.phase != "provisioned";
    bool member_lost = member_ran || st.row.phase == "claiming"
                       || (st.row.phase == "idle"
                           && obs != runtimes::workload::running);
    if (member_lost) {
      // A claim in flight at the crash may have started the entrypoint;
      // an idle member that is not running cannot be claimed: neither is
      // handed out, both are removed below (docs/pools.md).
      st.phase = sandbox_phase::running;
      st.view.state = sandbox_state::running;
      st.view.reason = "POOL_MEMBER_LOST";
      st.view.message = "Pool member is removed after a restart.";
    } else if (st.row.phase == "idle") {
      st.phase = sandbox_phase::running;
      st.view.state = sandbox_state::running;
      st.view.reason = "POOL_MEMBER_IDLE";
      st.view.message = "Pool member of '" + st.row.pool
                        + "' is idle, waiting for a claim.";
    } else if (st.row.phase == "provisioning") {
      st.phase = sandbox_phase::provisioning;
      st.view.state = sandbox_state::pending;
      st.view.reason = "PROVISIONING";
      st.view.message = "Sandbox provisioning resumed after a restart.";
      // Even without a workload in the listing: a create sent before the
      // crash may still land.
      st.remove_before_create = true;
      self->send(self, atom::provision_v);
    } else if (st.row.phase == "failed") {
      st.phase = sandbox_phase::failed;
      st.view.state = sandbox_state::failed;
      st.view.reason = st.row.reason;
      st.view.message = st.row.message;
    } else if (obs == runtimes::workload::paused) {
      st.phase = sandbox_phase::paused;
      st.view.state = sandbox_state::paused;
      st.view.reason = "CONTAINER_PAUSED";
      st.view.message = "Sandbox container is paused.";
    } else if (obs == runtimes::workload::exited
               || obs == runtimes::workload::created) {
      st.phase = sandbox_phase::exited;
      auto code = init.observed_exit_code;
      st.view.state = code == 0 ? sandbox_state::terminated
                                : sandbox_state::failed;
      st.view.reason = code == 0 ? "CONTAINER_EXITED"
                                 : "CONTAINER_EXITED_ERROR";
      st.view.message = code == 0 ? "Sandbox container exited successfully."
                                  : "Sandbox container exited with code "
                                      + std::to_string(code) + ".";
    } else {
      st.phase = sandbox_phase::running;
      st.view.state = sandbox_state::running;
      st.view.reason = "CONTAINER_RUNNING";
      st.view.message = "Sandbox container is running.";
    }
    st.counted.set(st.view.state);
    self->send(st.node, atom::put_v, caf::actor_cast<sandbox_actor>(self),
               st.view);
    if (member_lost)
      begin_delete(self, "removed at recovery (pool member was "
                           + st.row.phase + ")");
    else
      arm_expiry(self);
  } else {
    if (auto i = st.spec.extensions.find(pool_member_extension);
        i != st.spec.extensions.end()) {
      // A pool member: no expiry until its claim, its entrypoint held back.
      st.row.pool = i->second;
      st.spec.extensions.erase(i);
      st.row.spec_json = codec::spec_to_json(st.spec);
      st.row.expires_us = 0;
      st.view.expires_us = 0;
      st.view.member_of = st.row.pool;
      st.view.pool = st.row.pool;
    }
    st.phase = sandbox_phase::provisioning;
    st.view.state = sandbox_state::pending;
    st.view.reason = "PROVISIONING";
    st.view.message = "Sandbox is being provisioned." + pool_note(st.spec);
    st.view.last_transition_us = st.row.created_us;
    st.timeline = std::make_shared<create_timeline>();
    st.timeline->mark(create_phase::accepted, st.row.created_us);
  }
  return {
    [=](atom::create, std::string& rid) -> caf::result<sandbox_view> {
      auto& st = self->state;
      st.origin_rid = rid;
      auto rp = self->make_response_promise<sandbox_view>();
      // The 202 goes out only once the sandbox is durable.
      self->request(st.store, store_timeout, atom::put_v, st.row)
        .then(
          [self, rp](bool) mutable {
            auto& st = self->state;
            mark_phase(self, create_phase::stored);
            // Where the workload is the durable record, the 202 waits for
            // it: a replica killed before would lose the create.
            if (st.ack_when_created)
              st.pending_ack = std::move(rp);
            else
              acknowledge(self, std::move(rp));
            self->send(self, atom::provision_v);
          },
          [self, rp](caf::error& err) mutable {
            rp.deliver(make_error(ec::store_failed,
                                  "Failed to persist the sandbox: "
                                    + to_api_error(err).message));
            self->quit();
          });
      return rp;
    },
    [=](atom::provision) { provision(self); },
    [=](atom::ready) { acknowledge_held(self); },
    [=](atom::claim, sandbox_spec& claimed,
        std::string& rid) -> caf::result<sandbox_view> {
      return claim_member(self, std::move(claimed), std::move(rid));
    },
    [=](atom::call, sandbox_op& op,
        std::string& rid) -> caf::result<sandbox_answer> {
      auto rp = self->make_response_promise<sandbox_answer>();
      run_op(self, op, rid, rp);
      return rp;
    },
    [=](atom::observe, std::string& status, int32_t exit_code,
        int64_t observed_us) {
      auto& st = self->state;
      // A listing older than our own last transition says nothing new.
      if (observed_us < st.local_transition_us)
        return;
      switch (st.phase) {
        case sandbox_phase::running:
        case sandbox_phase::paused:
        case sandbox_phase::exited:
          break;
        case sandbox_phase::failed:
          // The cleanup after a failed create missed (e.g. Docker was down).
          if (!status.empty())
            self
              ->request(st.runtime, chain_timeout(self), atom::remove_v,
                        instance(self), true)
              .then([](bool) {}, [](caf::error&) {});
          return;
        default:
          return;
      }
      if (status.empty()) {
        OSB_WARN(component, "", sid(self),
                 "sandbox lost its container outside the server; forgetting "
                 "it");
        st.phase = sandbox_phase::deleting;
        ++st.epoch;
        self->send(st.node, atom::forget_v, sid(self));
        // The sidecar (if any) and the volumes that go with the sandbox
        // must not outlive it.
        auto forget_row = [self] {
          self
            ->request(self->state.store, store_timeout, atom::remove_v,
                      sid(self))
            .then([self](bool) { self->quit(); },
                  [self](caf::error&) { self->quit(); });
        };
        self
          ->request(st.runtime, chain_timeout(self), atom::remove_v,
                    instance(self), false)
          .then([forget_row](bool) { forget_row(); },
                [forget_row](caf::error&) { forget_row(); });
        return;
      }
      if (status == runtimes::workload::exited
          && st.phase != sandbox_phase::exited) {
        OSB_INFO(component, "", sid(self),
                 "sandbox entry process exited with code " << exit_code);
        set_exited(self, exit_code);
      } else if (status == runtimes::workload::running
                 && st.phase != sandbox_phase::running) {
        set_running(self);
      } else if (status == runtimes::workload::paused
                 && st.phase != sandbox_phase::paused
                 && st.snapshots_in_flight.empty()
                 && observed_us >= st.last_snapshot_end_us) {
        set_paused(self);
      }
    },
    [=](atom::snapshot, std::string& snap_id,
        std::string& rid) -> caf::result<std::string> {
      auto& st = self->state;
      if (st.phase == sandbox_phase::deleting)
        return not_found(self);
      if (st.phase != sandbox_phase::running)
        return make_error(ec::snapshot_invalid_source_state,
                          "Snapshot can only be created from a Running "
                          "sandbox.");
      st.snapshots_in_flight.insert(snap_id);
      OSB_DEBUG(component, rid, sid(self),
                "sandbox snapshot " << snap_id << " begins");
      return sid(self);
    },
    [=](atom::snap_end, std::string& snap_id) {
      auto& st = self->state;
      if (st.snapshots_in_flight.erase(snap_id) > 0)
        st.last_snapshot_end_us = codec::now_us();
    },
    [=](atom::progress, std::string& msg) {
      auto& st = self->state;
      // Progress of a pull is news only while the sandbox is Pending.
      if (st.phase != sandbox_phase::provisioning || st.view.message == msg)
        return;
      st.view.message = std::move(msg);
      self->send(st.node, atom::update_v, st.view);
    },
    [=](atom::started, int64_t max_wait_ms) -> caf::result<sandbox_view> {
      auto& st = self->state;
      if (st.phase != sandbox_phase::provisioning || max_wait_ms <= 0)
        return st.view;
      // Docker publishes the host port before the container's network
      // answers; a connection made then is lost and TCP retries after 1 s.
      // Answering once the start returned spares the SDK that second.
      auto rp = self->make_response_promise<sandbox_view>();
      st.start_waiters.push_back(rp);
      self->delayed_send(self, std::chrono::milliseconds(max_wait_ms),
                         atom::started_v, ++st.start_wait_gen);
      return rp;
    },
    [=](atom::started, uint64_t gen) {
      auto& st = self->state;
      // Only the newest timer releases; earlier waiters are covered by it.
      if (gen != st.start_wait_gen)
        return;
      for (auto& rp : st.start_waiters)
        rp.deliver(st.view);
      st.start_waiters.clear();
    },
    [=](atom::expire, uint64_t epoch) {
      auto& st = self->state;
      if (epoch != st.epoch)
        return;
      if (st.gate && st.gate->fenced()) {
        // Another replica may own the sandbox by now: wait until this one
        // renewed its lease (or dropped the sandbox having lost it).
        self->delayed_send(self, std::chrono::seconds(1), atom::expire_v,
                           epoch);
        return;
      }
      if (st.phase == sandbox_phase::deleting) {
        // Retry of a failed removal.
        remove_container(self);
        return;
      }
      OSB_INFO(component, st.origin_rid, sid(self),
               "sandbox expired at " << codec::format_time(st.view.expires_us));
      ops_metrics().expiries.inc();
      begin_delete(self, "expired");
    },
  };
}

} // namespace osb
