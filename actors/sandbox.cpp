#include "actors/sandbox.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>

#include "actors/error.hpp"
#include "actors/http_probe.hpp"
#include "actors/volume_cleanup.hpp"
#include "core/log.hpp"
#include "core/spec_json.hpp"
#include "core/strings.hpp"
#include "core/time.hpp"
#include "core/validation.hpp"
#include "runtimes/diagnostics.hpp"
#include "runtimes/volumes.hpp"

namespace osb {

namespace {

using self_ptr = sandbox_actor::stateful_pointer<sandbox_actor_state>;

constexpr auto store_timeout = std::chrono::seconds(30);
constexpr auto delete_retry = std::chrono::seconds(10);
constexpr auto create_timeout = std::chrono::minutes(30);
constexpr const char* component = "sandbox";

/// Runtime calls get the configured Docker API timeout plus slack.
caf::timespan runtime_timeout(self_ptr self) {
  return std::chrono::seconds(self->state.cfg->docker.api_timeout + 10);
}

const std::string& sid(self_ptr self) {
  return self->state.row.id;
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

/// Moves to `phase` with the given API status and tells the NODE actor.
void transition(self_ptr self, sandbox_phase phase, sandbox_state api_state,
                std::string reason, std::string message) {
  auto& st = self->state;
  st.phase = phase;
  st.view.state = api_state;
  st.view.reason = std::move(reason);
  st.view.message = std::move(message);
  st.local_transition_us = codec::now_us();
  st.view.last_transition_us = st.local_transition_us;
  self->send(st.node, atom::update_v, st.view);
  release_start_waiters(self);
}

void set_running(self_ptr self) {
  transition(self, sandbox_phase::running, sandbox_state::running,
             "CONTAINER_RUNNING", "Sandbox container is running.");
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
      rp.deliver(pending);
  }
  self->state.delete_waiters.clear();
}

bool has_sidecar(self_ptr self) {
  return !self->state.row.egress_token.empty();
}

/// Removes the sandbox container, then its egress sidecar (which owns the
/// network namespace the sandbox uses); `done` gets the first error.
void remove_containers(self_ptr self, std::function<void(caf::error)> done) {
  auto& st = self->state;
  self->request(st.runtime, runtime_timeout(self), atom::remove_v,
                container_name(sid(self)))
    .then(
      [self, done](bool) {
        if (!has_sidecar(self)) {
          done(caf::none);
          return;
        }
        self->request(self->state.runtime, runtime_timeout(self),
                      atom::remove_v, sidecar_name(sid(self)))
          .then([done](bool) { done(caf::none); },
                [done](caf::error& err) { done(err); });
      },
      [done](caf::error& err) { done(err); });
}

/// Removes the named volumes the server created for this sandbox (see
/// remove_sandbox_volumes); skips the runtime when no volume can qualify.
void remove_volumes(self_ptr self, bool all,
                    std::function<void(caf::error)> done) {
  auto& st = self->state;
  auto xs = runtimes::parse_volumes(st.spec.volumes_json);
  auto* mounts = std::get_if<std::vector<runtimes::volume_mount>>(&xs);
  if (mounts != nullptr
      && !(all ? runtimes::has_named_volumes(*mounts)
               : runtimes::has_volumes_to_delete(*mounts))) {
    done(caf::none);
    return;
  }
  remove_sandbox_volumes(self, st.runtime, runtime_timeout(self), sid(self),
                         all, st.origin_rid, std::move(done));
}

/// Removes the containers and the server's volumes, then the row, then
/// quits. Retries while the runtime fails: the row stays in `deleting`, so a
/// restart finishes the job.
void remove_container(self_ptr self) {
  auto on_error = [self](const caf::error& err, const char* what) {
    auto f = to_failure(err);
    OSB_ERROR(component, self->state.origin_rid, sid(self),
              "sandbox failed to remove its " << what
                                              << ", retrying in 10s: "
                                              << f.message);
    // The deletion is durable (the row says "deleting"): tell the caller it
    // will happen, not that it failed.
    deliver_delete(self, caf::none,
                   std::string{"removing its "} + what + " failed ("
                     + f.message + ")");
    self->delayed_send(self, delete_retry, atom::expire_v, self->state.epoch);
  };
  remove_containers(self, [self, on_error](caf::error err) {
    if (err)
      return on_error(err, "container");
    remove_volumes(self, self->state.never_ran,
                   [self, on_error](caf::error err) {
                     if (err)
                       return on_error(err, "volumes");
                     self
                       ->request(self->state.store, store_timeout,
                                 atom::remove_v, sid(self))
                       .then([](bool) {}, [](caf::error&) {});
                     OSB_INFO(component, self->state.origin_rid, sid(self),
                              "sandbox removed its containers");
                     deliver_delete(self, caf::none);
                     self->quit();
                   });
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
          // Provisioning finishes the removal when its step returns.
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

/// Moves to Failed with `reason` and `msg` and removes what provisioning
/// made: containers, and the volumes the server created for the sandbox
/// (it never ran, so none of them holds anything of value).
void fail_with(self_ptr self, std::string reason, std::string msg) {
  auto& st = self->state;
  OSB_ERROR(component, st.origin_rid, sid(self),
            "sandbox failed to provision: " << msg);
  remove_containers(self, [self](caf::error err) {
    if (err)
      return;
    remove_volumes(self, true, [self](caf::error err) {
      if (err)
        OSB_WARN(component, self->state.origin_rid, sid(self),
                 "sandbox could not remove its volumes after a failed "
                 "create (retried on delete): "
                   << to_failure(err).message);
    });
  });
  transition(self, sandbox_phase::failed, sandbox_state::failed,
             std::move(reason), std::move(msg));
  st.row.phase = "failed";
  st.row.reason = st.view.reason;
  st.row.message = st.view.message;
  st.row.last_transition_us = st.view.last_transition_us;
  persist(self);
}

/// Handles a failed provisioning step: removes what was created and reports
/// Failed with a reason a person can act on.
void provision(self_ptr self);

/// A start failed because another program holds one of the sandbox's host
/// ports (reserved ports are probed, but the kernel hands out ephemeral
/// ports from the same range, and nodes in containers cannot see each
/// other's): takes new ports and provisions again. Returns false when the
/// failure is another one or the retries are used up.
bool retry_with_new_ports(self_ptr self, const failure& f) {
  auto& st = self->state;
  bool taken = f.message.find("address already in use") != std::string::npos
               || f.message.find("port is already allocated")
                    != std::string::npos;
  if (!taken || st.port_retries >= 3 || !st.supervisor)
    return false;
  ++st.port_retries;
  OSB_WARN(component, st.origin_rid, sid(self),
           "sandbox retries with new host ports, one was taken: "
             << f.message);
  st.step_in_flight = true;
  remove_containers(self, [self](caf::error err) {
    auto& st = self->state;
    if (err) {
      st.step_in_flight = false;
      fail_with(self, "CONTAINER_START_FAILED",
                "Failed to start sandbox container: "
                  + to_failure(err).message);
      return;
    }
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
  });
  return true;
}

void fail_provisioning(self_ptr self, const caf::error& err,
                       const char* step) {
  auto& st = self->state;
  st.step_in_flight = false;
  auto f = to_failure(err);
  if (st.phase == sandbox_phase::deleting) {
    remove_container(self);
    return;
  }
  if ((std::string_view{step} == "start"
       || std::string_view{step} == "start the egress sidecar of")
      && retry_with_new_ports(self, f))
    return;
  std::string reason = "PROVISIONING_FAILED";
  if (f.kind == failure_kind::unavailable)
    reason = "DOCKER_UNAVAILABLE";
  else if (f.message.find("pull image") != std::string::npos)
    reason = "IMAGE_PULL_FAILED";
  else if (f.message.find("could not select device driver")
           != std::string::npos)
    reason = "GPU_UNAVAILABLE";
  else if (std::string{step} == "start")
    reason = "CONTAINER_START_FAILED";
  else if (std::string{step} == "inject execd into")
    reason = "EXECD_DISTRIBUTION_FAILED";
  else if (std::string{step}.find("egress sidecar") != std::string::npos)
    reason = "EGRESS_SIDECAR_FAILED";
  else
    reason = "CONTAINER_CREATE_FAILED";
  auto msg = std::string{"Failed to "} + step + " sandbox container: "
             + f.message;
  if (reason == "GPU_UNAVAILABLE")
    msg += " (resourceLimits.gpu needs a GPU and the NVIDIA container "
           "runtime on the Docker host)";
  fail_with(self, std::move(reason), std::move(msg));
}

/// Fails provisioning because a volume cannot be provided.
void fail_volume(self_ptr self, const runtimes::volume_error& e) {
  auto& st = self->state;
  st.step_in_flight = false;
  if (st.phase == sandbox_phase::deleting) {
    remove_container(self);
    return;
  }
  fail_with(self, "VOLUME_PREPARATION_FAILED",
            std::string{describe(e.code).code} + ": " + e.message);
}

void start_container(self_ptr self) {
  auto& st = self->state;
  st.step_in_flight = true;
  self->request(st.runtime, runtime_timeout(self), atom::start_v,
                container_name(sid(self)))
    .then(
      [self](bool) {
        auto& st = self->state;
        if (finish_step(self))
          return;
        st.never_ran = false;
        set_running(self);
        st.row.phase = "provisioned";
        st.row.last_transition_us = st.view.last_transition_us;
        persist(self);
        OSB_INFO(component, st.origin_rid, sid(self),
                 "sandbox is running after "
                   << (codec::now_us() - st.view.created_us) / 1000 << " ms");
      },
      [self](caf::error& err) { fail_provisioning(self, err, "start"); });
}

void provision(self_ptr self);
void create_container(self_ptr self);

/// Copies execd into the created container (remote Docker hosts, where the
/// server's files cannot be bind-mounted).
void upload_execd(self_ptr self) {
  auto& st = self->state;
  st.step_in_flight = true;
  self->request(st.runtime, runtime_timeout(self), atom::upload_v,
                container_name(sid(self)), std::string{"/"}, st.execd_tar)
    .then(
      [self](bool) {
        if (!finish_step(self))
          start_container(self);
      },
      [self](caf::error& err) {
        fail_provisioning(self, err, "inject execd into");
      });
}

/// Waits until the sidecar's policy API answers: its firewall is in place
/// before the sandbox's first process runs.
void await_sidecar(self_ptr self) {
  auto& st = self->state;
  if (!st.probe_sidecars) {
    create_container(self);
    return;
  }
  st.step_in_flight = true;
  auto probe = self->spawn<caf::detached>(http_probe);
  string_map headers{{"OPENSANDBOX-EGRESS-AUTH", st.row.egress_token}};
  self->request(probe, std::chrono::seconds(40), atom::ping_v,
                std::string{"127.0.0.1"}, st.row.egress_port,
                std::string{"/healthz"}, std::move(headers), int64_t{30000})
    .then(
      [self](bool) {
        if (!finish_step(self))
          create_container(self);
      },
      [self](caf::error& err) {
        fail_provisioning(self, err, "start the egress sidecar of");
      });
}

void create_sidecar(self_ptr self) {
  auto& st = self->state;
  st.step_in_flight = true;
  auto spec = make_sidecar_spec(*st.cfg, st.row, st.spec, st.publish_address);
  self->request(st.runtime, create_timeout, atom::create_v, std::move(spec))
    .then(
      [self](std::string&) {
        if (finish_step(self))
          return;
        auto& st = self->state;
        st.step_in_flight = true;
        self->request(st.runtime, runtime_timeout(self), atom::start_v,
                      sidecar_name(sid(self)))
          .then(
            [self](bool) {
              if (!finish_step(self))
                await_sidecar(self);
            },
            [self](caf::error& err) {
              fail_provisioning(self, err, "start the egress sidecar of");
            });
      },
      [self](caf::error& err) {
        fail_provisioning(self, err, "create the egress sidecar of");
      });
}

using mounts_ptr = std::shared_ptr<const std::vector<runtimes::volume_mount>>;

/// Binds named volume `i` from its Docker metadata, then goes on with the
/// next one.
void prepare_named_volumes(self_ptr self, mounts_ptr xs, size_t i,
                           std::function<void()> next);

void bind_named_volume(self_ptr self, mounts_ptr xs, size_t i,
                       const runtimes::volume_info& info,
                       std::function<void()> next) {
  auto& v = (*xs)[i];
  auto src = runtimes::named_volume_source(v, info, self->state.local_fs);
  if (auto e = std::get_if<runtimes::volume_error>(&src))
    return fail_volume(self, *e);
  self->state.volume_binds[i] = runtimes::make_bind(std::get<std::string>(src),
                                                    v);
  prepare_named_volumes(self, std::move(xs), i + 1, std::move(next));
}

void prepare_named_volumes(self_ptr self, mounts_ptr xs, size_t i,
                           std::function<void()> next) {
  auto& st = self->state;
  while (i < xs->size()
         && (*xs)[i].backend != runtimes::volume_mount::backend_kind::pvc)
    ++i;
  if (i == xs->size()) {
    // Keep the request's order; host volumes were filled in already.
    next();
    return;
  }
  auto quoted = [](const std::string& x) { return "'" + x + "'"; };
  auto& v = (*xs)[i];
  auto what = "Volume " + quoted(v.name) + ": Docker volume "
              + quoted(v.claim_name);
  st.step_in_flight = true;
  self->request(st.runtime, runtime_timeout(self), atom::vol_inspect_v,
                v.claim_name)
    .then(
      [self, xs, i, next](runtimes::volume_info& info) {
        if (!finish_step(self))
          bind_named_volume(self, xs, i, info, next);
      },
      [self, xs, i, next, what](caf::error& err) {
        if (finish_step(self))
          return;
        auto f = to_failure(err);
        auto& v = (*xs)[i];
        if (f.kind != failure_kind::not_found)
          return fail_volume(self, {ec::volume_pvc_inspect_failed,
                                    what + " cannot be inspected: "
                                      + f.message});
        if (!v.create_if_not_exists)
          return fail_volume(self,
                             {ec::volume_pvc_not_found,
                              what
                                + " does not exist and createIfNotExists is "
                                  "false."});
        auto& st = self->state;
        st.step_in_flight = true;
        self
          ->request(st.runtime, runtime_timeout(self), atom::vol_create_v,
                    v.claim_name,
                    runtimes::managed_volume_labels(v, sid(self),
                                                    st.row.node,
                                                    st.row.runtime_host))
          .then(
            [self, xs, i, next](runtimes::volume_info& info) {
              if (finish_step(self))
                return;
              OSB_INFO(component, self->state.origin_rid, sid(self),
                       "sandbox created volume " << info.name);
              bind_named_volume(self, xs, i, info, next);
            },
            [self, what](caf::error& err) {
              if (!finish_step(self))
                fail_volume(self, {ec::volume_pvc_inspect_failed,
                                   what + " cannot be created: "
                                     + to_failure(err).message});
            });
      });
}

/// Provides the sandbox's volumes before its container exists: host
/// directories (checked and created on this host) and Docker named volumes
/// (created when missing and allowed); their binds go to `volume_binds`.
void prepare_volumes(self_ptr self, std::function<void()> next) {
  auto& st = self->state;
  st.volume_binds.clear();
  auto parsed = runtimes::parse_volumes(st.spec.volumes_json);
  if (auto e = std::get_if<runtimes::volume_error>(&parsed))
    return fail_volume(self, *e);
  auto xs = std::make_shared<const std::vector<runtimes::volume_mount>>(
    std::move(std::get<std::vector<runtimes::volume_mount>>(parsed)));
  if (xs->empty()) {
    next();
    return;
  }
  st.volume_binds.resize(xs->size());
  for (size_t i = 0; i < xs->size(); ++i) {
    auto& v = (*xs)[i];
    if (v.backend == runtimes::volume_mount::backend_kind::ossfs)
      return fail_volume(self, *runtimes::precheck_volumes({v}, {}));
    if (v.backend != runtimes::volume_mount::backend_kind::host)
      continue;
    auto path = runtimes::prepare_host_path(
      v, st.cfg->storage.allowed_host_paths, st.local_fs);
    if (auto e = std::get_if<runtimes::volume_error>(&path))
      return fail_volume(self, *e);
    st.volume_binds[i] = runtimes::make_bind(std::get<std::string>(path), v);
  }
  prepare_named_volumes(self, std::move(xs), 0, std::move(next));
}

void create_container(self_ptr self) {
  auto& st = self->state;
  st.step_in_flight = true;
  auto spec = make_container_spec(*st.cfg, st.row, st.spec,
                                  st.publish_address);
  spec.binds.insert(spec.binds.end(), st.volume_binds.begin(),
                    st.volume_binds.end());
  spec.on_pull_progress = [hdl = caf::actor_cast<sandbox_actor>(self)](
                            const std::string& msg) {
    caf::anon_send(hdl, atom::progress_v, msg);
  };
  self->request(st.runtime, create_timeout, atom::create_v, std::move(spec))
    .then(
      [self](std::string&) {
        auto& st = self->state;
        if (finish_step(self))
          return;
        if (st.execd_tar)
          upload_execd(self);
        else
          start_container(self);
      },
      [self](caf::error& err) {
        auto& st = self->state;
        // A create from before a crash may still land after our cleanup:
        // clear the stale container and try again.
        // The daemon reserves the name before the container is listed, so
        // give the earlier create a moment to finish.
        if (to_failure(err).kind == failure_kind::conflict
            && st.phase == sandbox_phase::provisioning
            && st.conflict_retries < 20) {
          ++st.conflict_retries;
          st.step_in_flight = false;
          st.remove_before_create = true;
          self->delayed_send(self, std::chrono::milliseconds(250),
                             atom::provision_v);
          return;
        }
        fail_provisioning(self, err, "create");
      });
}

void provision(self_ptr self) {
  auto& st = self->state;
  if (st.phase != sandbox_phase::provisioning || st.step_in_flight)
    return;
  auto next = [self] {
    prepare_volumes(self, [self] {
      if (has_sidecar(self))
        create_sidecar(self);
      else
        create_container(self);
    });
  };
  if (!st.remove_before_create) {
    next();
    return;
  }
  // A crash interrupted an earlier provisioning: clear its leftovers first.
  st.step_in_flight = true;
  st.remove_before_create = false;
  remove_containers(self, [self, next](caf::error err) {
    if (err) {
      fail_provisioning(self, err, "create");
      return;
    }
    if (!finish_step(self))
      next();
  });
}

caf::error not_found(self_ptr self) {
  return make_error(ec::sandbox_not_found,
                    "Sandbox " + sid(self) + " not found.");
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

/// Pauses (`on`) or resumes a sandbox with `docker pause`/`unpause`.
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
  // Docker pauses the container during a commit and refuses a second pause.
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
                                atom::pause_v, container_name(sid(self)))
                : self->request(st.runtime, runtime_timeout(self),
                                atom::resume_v, container_name(sid(self)));
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
        // Docker may still carry it out; reconciliation reports the state.
        rp.deliver(make_error(
          ec::outcome_unknown,
          std::string{"Docker did not answer the "} + (on ? "pause" : "resume")
            + " in time; it may still happen. GET sandbox " + sid(self)
            + " to see its current state."));
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
  return rp;
}

/// What diagnostics say about a sandbox without a container (still
/// provisioning, or a create that failed).
std::string no_container_text(self_ptr self) {
  auto& v = self->state.view;
  return "(no container) Sandbox " + sid(self) + " is "
         + to_string(v.state) + " (" + v.reason + "): " + v.message;
}

/// Collects a diagnostics report from the runtime and renders it. A missing
/// container is reported in the text; other runtime failures fail the
/// request (single reports) or their section (summary).
void diagnose(self_ptr self, diagnostics_query q, std::string rid,
              caf::typed_response_promise<std::string> rp) {
  auto& st = self->state;
  auto name = container_name(sid(self));
  auto timeout = runtime_timeout(self);
  auto fail = [rp](const caf::error& err) mutable {
    auto f = to_failure(err);
    rp.deliver(make_error(f.kind == failure_kind::unavailable
                            ? ec::runtime_unavailable
                            : ec::query_failed,
                          "Failed to collect diagnostics: " + f.message));
  };
  auto missing = [](const caf::error& err) {
    return to_failure(err).kind == failure_kind::not_found;
  };
  runtimes::log_query lq;
  lq.tail = q.tail;
  if (!q.since.empty())
    lq.since_s = codec::now_us() / 1000000
                 - runtimes::parse_since_seconds(q.since);
  if (q.kind == "logs") {
    self->request(st.runtime, timeout, atom::logs_v, name, lq)
      .then(
        [rp](std::string& text) mutable {
          rp.deliver(runtimes::render_logs(std::move(text)));
        },
        [rp, fail, missing](caf::error& err) mutable {
          if (missing(err))
            rp.deliver(runtimes::render_logs({}));
          else
            fail(err);
        });
    return;
  }
  if (q.kind != "summary") {
    self->request(st.runtime, timeout, atom::details_v, name)
      .then(
        [rp, q](runtimes::container_details& d) mutable {
          rp.deliver(q.kind == "events" ? runtimes::render_events(d, q.limit)
                                        : runtimes::render_inspect(d));
        },
        [self, rp, fail, missing](caf::error& err) mutable {
          if (missing(err))
            rp.deliver(no_container_text(self));
          else
            fail(err);
        });
    return;
  }
  // Summary: one inspect for two sections, then the logs; a section that
  // fails is replaced by a line without details (logged here once).
  using text = std::optional<std::string>;
  auto section_failed = [self, rid](const caf::error& err, const char* what) {
    OSB_ERROR(component, rid, sid(self),
              "sandbox failed to collect " << what << " diagnostics: "
                                           << to_failure(err).message);
  };
  auto with_logs = [self, rp, q, lq, name, timeout, section_failed,
                    missing](text inspect, text events) mutable {
    self->request(self->state.runtime, timeout, atom::logs_v, name, lq)
      .then(
        [self, rp, q, inspect, events](std::string& logs) mutable {
          rp.deliver(runtimes::render_summary(
            sid(self), q.tail, inspect, events,
            runtimes::render_logs(std::move(logs))));
        },
        [self, rp, q, inspect, events, section_failed,
         missing](caf::error& err) mutable {
          text logs;
          if (missing(err))
            logs = runtimes::render_logs({});
          else
            section_failed(err, "log");
          rp.deliver(runtimes::render_summary(sid(self), q.tail, inspect,
                                              events, logs));
        });
  };
  self->request(st.runtime, timeout, atom::details_v, name)
    .then(
      [q, with_logs](runtimes::container_details& d) mutable {
        with_logs(runtimes::render_inspect(d),
                  runtimes::render_events(d, q.limit));
      },
      [self, with_logs, section_failed,
       missing](caf::error& err) mutable {
        if (missing(err)) {
          auto x = no_container_text(self);
          return with_logs(x, x);
        }
        section_failed(err, "inspect");
        with_logs(std::nullopt, std::nullopt);
      });
}


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
  if (auto i = spec.extensions.find("access.renew.extend.seconds");
      i != spec.extensions.end())
    v.renew_extend_s
      = std::strtoll(std::string{trim(i->second)}.c_str(), nullptr, 10);
  (void) cfg;
  return v;
}

std::string container_name(const std::string& id) {
  return "sandbox-" + id;
}

std::string sidecar_name(const std::string& id) {
  return "sandbox-egress-" + id;
}

runtimes::container_spec make_sidecar_spec(const node_config& cfg,
                                           const store::sandbox_row& row,
                                           const sandbox_spec& spec,
                                           const std::string& publish_address) {
  runtimes::container_spec c;
  c.name = sidecar_name(row.id);
  c.image = cfg.egress.image;
  c.labels["opensandbox.io/egress-sidecar-for"] = row.id;
  c.labels["opensandbox.io/node"] = row.node;
  c.labels["opensandbox.io/runtime-host"] = row.runtime_host;
  c.network_mode = cfg.docker.network_mode == "host" ? "bridge"
                                                     : cfg.docker.network_mode;
  c.cap_add = {"NET_ADMIN"};
  c.exposed_ports = {44772, 8080, 18080};
  c.ports.push_back({44772, row.execd_port, publish_address});
  c.ports.push_back({8080, row.http_port, publish_address});
  c.ports.push_back({18080, row.egress_port, publish_address});
  c.env.push_back("OPENSANDBOX_EGRESS_RULES=" + spec.network_policy_json);
  c.env.push_back("OPENSANDBOX_EGRESS_MODE=" + cfg.egress.mode);
  c.env.push_back("OPENSANDBOX_EGRESS_TOKEN=" + row.egress_token);
  if (!cfg.egress.upstream_dns.empty())
    c.env.push_back("OPENSANDBOX_EGRESS_UPSTREAM_DNS="
                    + cfg.egress.upstream_dns);
  if (cfg.egress.disable_ipv6)
    c.sysctls = {{"net.ipv6.conf.all.disable_ipv6", "1"},
                 {"net.ipv6.conf.default.disable_ipv6", "1"},
                 {"net.ipv6.conf.lo.disable_ipv6", "1"}};
  c.pids_limit = 256;
  c.security_opt.push_back("no-new-privileges:true");
  return c;
}

runtimes::container_spec make_container_spec(
  const node_config& cfg, const store::sandbox_row& row,
  const sandbox_spec& spec, const std::string& publish_address) {
  runtimes::container_spec c;
  c.name = container_name(row.id);
  c.image = spec.image;
  c.registry_username = spec.image_username;
  c.registry_password = spec.image_password;
  if (cfg.runtime.execd_inject == "none") {
    c.entrypoint = spec.entrypoint;
  } else {
    // execd's bootstrap mode starts the daemon, then execs the user's
    // command, which stays PID 1 of the container.
    c.entrypoint = {execd_container_path, "--bootstrap", "--"};
    c.cmd = spec.entrypoint;
    if (cfg.runtime.execd_inject == "bind")
      c.binds.push_back(cfg.runtime.execd_path + ":" + execd_container_path
                        + ":ro");
  }
  for (auto& [k, v] : spec.env)
    if (k != "EXECD_ACCESS_TOKEN")
      c.env.push_back(k + "=" + v);
  // execd reads (and then drops from its environment) the token it
  // requires; it never reaches the user's processes.
  if (cfg.runtime.execd_inject != "none" && !row.access_token.empty())
    c.env.push_back("EXECD_ACCESS_TOKEN=" + row.access_token);
  // User metadata first, so that system labels always win.
  c.labels = spec.metadata;
  c.labels["opensandbox.io/id"] = row.id;
  if (!spec.snapshot_id.empty())
    c.labels["opensandbox.io/snapshot-id"] = spec.snapshot_id;
  c.labels["opensandbox.io/node"] = row.node;
  c.labels["opensandbox.io/runtime-host"] = row.runtime_host;
  if (row.expires_us != 0) {
    auto ts = codec::format_time(row.expires_us);
    if (!ts.empty() && ts.back() == 'Z')
      ts.replace(ts.size() - 1, 1, "+00:00");
    c.labels["opensandbox.io/expires-at"] = ts;
  } else {
    c.labels["opensandbox.io/manual-cleanup"] = "true";
  }
  if (!spec.platform_os.empty()) {
    c.labels["opensandbox.io/platform-os"] = spec.platform_os;
    c.labels["opensandbox.io/platform-arch"] = spec.platform_arch;
    c.platform = spec.platform_os + "/" + spec.platform_arch;
  }
  if (auto i = spec.extensions.find("access.renew.extend.seconds");
      i != spec.extensions.end())
    c.labels["opensandbox.io/access-renew-extend-seconds"]
      = std::string{trim(i->second)};
  c.network_mode = cfg.docker.network_mode;
  if (!row.egress_token.empty()) {
    // The sidecar owns the network namespace and its published ports.
    c.network_mode = "container:" + sidecar_name(row.id);
    c.labels["opensandbox.io/egress-auth-token"] = row.egress_token;
    c.labels["opensandbox.io/embedding-proxy-port"]
      = std::to_string(row.execd_port);
    c.labels["opensandbox.io/http-port"] = std::to_string(row.http_port);
  } else if (cfg.docker.network_mode != "host") {
    c.labels["opensandbox.io/embedding-proxy-port"]
      = std::to_string(row.execd_port);
    c.labels["opensandbox.io/http-port"] = std::to_string(row.http_port);
    c.exposed_ports = {44772, 8080};
    c.ports.push_back({44772, row.execd_port, publish_address});
    c.ports.push_back({8080, row.http_port, publish_address});
  }
  auto& limits = spec.resource_limits;
  if (auto i = limits.find("cpu"); i != limits.end())
    c.nano_cpus = validation::parse_cpu(i->second).value_or(0);
  if (auto i = limits.find("memory"); i != limits.end())
    c.memory_bytes = validation::parse_memory(i->second).value_or(0);
  if (auto i = limits.find("gpu"); i != limits.end())
    c.gpu_count = validation::parse_gpu(i->second).value_or(0);
  c.pids_limit = cfg.docker.pids_limit;
  c.cap_drop = cfg.docker.drop_capabilities;
  // Only the sidecar may change the shared network namespace.
  if (!row.egress_token.empty()
      && std::find(c.cap_drop.begin(), c.cap_drop.end(), "NET_ADMIN")
           == c.cap_drop.end())
    c.cap_drop.push_back("NET_ADMIN");
  if (cfg.docker.no_new_privileges)
    c.security_opt.push_back("no-new-privileges:true");
  if (!cfg.docker.apparmor_profile.empty())
    c.security_opt.push_back("apparmor=" + cfg.docker.apparmor_profile);
  if (!cfg.docker.seccomp_profile.empty())
    c.security_opt.push_back("seccomp=" + cfg.docker.seccomp_profile);
  return c;
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
  st.execd_tar = std::move(init.execd_tar);
  st.probe_sidecars = init.probe_sidecars;
  st.local_fs = init.local_fs;
  st.publish_address = std::move(init.publish_address);
  st.view = make_view(*st.cfg, st.row, st.spec);
  st.view.endpoint_host = init.endpoint_host;
  st.local_transition_us = codec::now_us();
  if (init.recovered) {
    // Bring the state machine back from the row and the container.
    auto& obs = init.observed_status;
    // A container that ran means provisioning got to its last step; only
    // recording that may have failed (e.g. a full disk): adopt it rather
    // than replace a running sandbox.
    bool ran = obs == "running" || obs == "paused" || obs == "exited"
               || obs == "dead";
    if (st.row.phase == "provisioning" && ran) {
      OSB_WARN(component, "", sid(self),
               "sandbox adopts its container, which ran although its start "
               "was not recorded");
      st.row.phase = "provisioned";
      persist(self);
    }
    st.never_ran = st.row.phase != "provisioned";
    if (st.row.phase == "provisioning") {
      st.phase = sandbox_phase::provisioning;
      st.view.state = sandbox_state::pending;
      st.view.reason = "PROVISIONING";
      st.view.message = "Sandbox provisioning resumed after a restart.";
      // Even without a container in the listing: a create sent before the
      // crash may still land.
      st.remove_before_create = true;
      self->send(self, atom::provision_v);
    } else if (st.row.phase == "failed") {
      st.phase = sandbox_phase::failed;
      st.view.state = sandbox_state::failed;
      st.view.reason = st.row.reason;
      st.view.message = st.row.message;
    } else if (obs == "paused") {
      st.phase = sandbox_phase::paused;
      st.view.state = sandbox_state::paused;
      st.view.reason = "CONTAINER_PAUSED";
      st.view.message = "Sandbox container is paused.";
    } else if (obs == "exited" || obs == "dead" || obs == "created") {
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
    self->send(st.node, atom::put_v, caf::actor_cast<sandbox_actor>(self),
               st.view);
    arm_expiry(self);
  } else {
    st.phase = sandbox_phase::provisioning;
    st.view.state = sandbox_state::pending;
    st.view.reason = "PROVISIONING";
    st.view.message = "Sandbox is being provisioned.";
    st.view.last_transition_us = st.row.created_us;
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
            self->send(st.node, atom::put_v,
                       caf::actor_cast<sandbox_actor>(self), st.view);
            rp.deliver(st.view);
            arm_expiry(self);
            self->send(self, atom::provision_v);
            OSB_INFO(component, st.origin_rid, sid(self),
                     "sandbox accepted, image " << st.spec.image);
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
    [=](atom::pause, std::string& rid) -> caf::result<sandbox_view> {
      return freeze(self, true, rid);
    },
    [=](atom::resume, std::string& rid) -> caf::result<sandbox_view> {
      return freeze(self, false, rid);
    },
    [=](atom::remove, std::string& rid) -> caf::result<std::string> {
      auto& st = self->state;
      auto rp = self->make_response_promise<std::string>();
      if (st.phase == sandbox_phase::deleting) {
        // A deletion is under way (e.g. expiry); the caller sees it through.
        st.delete_waiters.push_back(rp);
        return rp;
      }
      st.delete_waiters.push_back(rp);
      OSB_INFO(component, rid, sid(self), "sandbox delete requested");
      begin_delete(self, "deleted");
      return rp;
    },
    [=](atom::renew, int64_t expires_us,
        std::string& rid) -> caf::result<int64_t> {
      return renew_to(self, expires_us, rid);
    },
    [=](atom::renew, int64_t at_least_us, bool,
        std::string& rid) -> caf::result<int64_t> {
      // Renew-on-access: only ever later, only while Running; decided here
      // on the current state (the proxy's view may be a second old).
      auto& st = self->state;
      if (st.phase == sandbox_phase::deleting)
        return not_found(self);
      if (st.phase != sandbox_phase::running || st.view.expires_us == 0
          || at_least_us <= st.view.expires_us)
        return st.view.expires_us;
      return renew_to(self, at_least_us, rid);
    },
    [=](atom::patch, metadata_patch& p,
        std::string& rid) -> caf::result<sandbox_view> {
      auto& st = self->state;
      if (st.phase == sandbox_phase::deleting)
        return not_found(self);
      auto metadata = st.view.metadata;
      for (auto& key : p.remove)
        metadata.erase(key);
      for (auto& [k, v] : p.set)
        metadata[k] = v;
      auto rp = self->make_response_promise<sandbox_view>();
      auto row = st.row;
      row.metadata_json = codec::map_to_json(metadata);
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
            rp.deliver(st.view);
          },
          [self, rp](caf::error& err) mutable {
            rp.deliver(store_error(self, err, "the metadata"));
          });
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
              ->request(st.runtime, runtime_timeout(self), atom::remove_v,
                        container_name(sid(self)))
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
        remove_containers(self, [self](caf::error) {
          remove_volumes(self, false, [self](caf::error) {
            self->request(self->state.store, store_timeout, atom::remove_v,
                          sid(self))
              .then([self](bool) { self->quit(); },
                    [self](caf::error&) { self->quit(); });
          });
        });
        return;
      }
      if ((status == "exited" || status == "dead")
          && st.phase != sandbox_phase::exited) {
        OSB_INFO(component, "", sid(self),
                 "sandbox entry process exited with code " << exit_code);
        set_exited(self, exit_code);
      } else if (status == "running" && st.phase != sandbox_phase::running) {
        set_running(self);
      } else if (status == "paused" && st.phase != sandbox_phase::paused
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
      return container_name(sid(self));
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
    [=](atom::diagnose, diagnostics_query& q,
        std::string& rid) -> caf::result<std::string> {
      if (self->state.phase == sandbox_phase::deleting)
        return not_found(self);
      auto rp = self->make_response_promise<std::string>();
      diagnose(self, std::move(q), std::move(rid), rp);
      return rp;
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
      if (st.phase == sandbox_phase::deleting) {
        // Retry of a failed removal.
        remove_container(self);
        return;
      }
      OSB_INFO(component, st.origin_rid, sid(self),
               "sandbox expired at " << codec::format_time(st.view.expires_us));
      begin_delete(self, "expired");
    },
  };
}

} // namespace osb
