#include "actors/host_supervisor.hpp"

#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include <algorithm>
#include <unordered_set>

#include "actors/error.hpp"
#include "actors/sandbox.hpp"
#include "core/ids.hpp"
#include "core/spec_json.hpp"
#include "core/time.hpp"
#include "base/log.hpp"
#include "core/server_metrics.hpp"
#include "runtimes/volumes.hpp"

namespace osb {

namespace {

using self_ptr = supervisor_actor::stateful_pointer<supervisor_state>;

constexpr const char* component = "supervisor";
constexpr auto store_timeout = std::chrono::seconds(30);
constexpr auto recover_retry = std::chrono::seconds(2);

caf::timespan runtime_timeout(self_ptr self) {
  return std::chrono::seconds(self->state.init.cfg->docker.api_timeout + 10);
}

/// Whether this node's store recorded the incarnation that made `x`; `why`
/// says otherwise. Without that evidence nothing is removed: it may belong
/// to another live process started under the same name.
bool created_here(self_ptr self, const runtimes::runtime_object& x,
                  std::string& why) {
  auto& known = self->state.init.incarnations;
  if (known.empty())
    return true;
  if (x.incarnation.empty()) {
    why = "it has no incarnation label (made by a server before "
          "incarnations), so nothing proves this process's store made it";
    return false;
  }
  if (std::find(known.begin(), known.end(), x.incarnation) != known.end())
    return true;
  why = "its incarnation " + x.incarnation + " is not recorded in this "
        + "node's store: another process named '"
        + self->state.init.node_name + "' (with another store) created it";
  return false;
}

/// Has the runtime remove what it holds of a sandbox that is gone (its
/// workload, companions and the volumes that go with it), then `then`.
void remove_remains(self_ptr self, runtimes::sandbox_instance x,
                    std::function<void(caf::error)> then) {
  auto& st = self->state;
  self
    ->request(st.init.runtime,
              std::chrono::seconds(3 * st.init.cfg->docker.api_timeout + 10),
              atom::remove_v, std::move(x), false)
    .then([then](bool) { then(caf::none); },
          [then](caf::error& err) { then(err); });
}

/// The instance of a stored row (its spec may be undecodable: empty then).
runtimes::sandbox_instance instance_of(const store::sandbox_row& row) {
  sandbox_spec spec;
  codec::spec_from_json(row.spec_json, spec);
  return make_instance(row, spec);
}

/// Rows written before hosts were labelled belong to the default host.
bool owns_row(self_ptr self, const store::sandbox_row& row) {
  auto& host = self->state.init.runtime_host;
  return row.runtime_host == host
         || (row.runtime_host.empty() && host == "default");
}

void mark_runtime(self_ptr self, bool up, const std::string& why = {}) {
  auto& st = self->state;
  if (up && !st.runtime_up)
    OSB_INFO(component, "", "", "supervisor reaches the runtime again");
  if (!up && st.runtime_up)
    OSB_ERROR(component, "", "", "supervisor lost the runtime: " << why);
  st.runtime_up = up;
  if (!up)
    st.runtime_error = why;
}

sandbox_actor spawn_sandbox(self_ptr self, sandbox_init init) {
  auto& st = self->state;
  auto id = init.row.id;
  port_map ports{init.row.execd_port, init.row.http_port,
                 init.row.egress_port};
  st.ports.reserve(ports.execd);
  st.ports.reserve(ports.http);
  st.ports.reserve(ports.egress);
  auto volumes = runtimes::parse_volumes(init.spec.volumes_json);
  if (auto xs = std::get_if<std::vector<runtimes::volume_mount>>(&volumes))
    for (auto& v : *xs)
      if (!v.claim_name.empty())
        st.claims[id].push_back(v.claim_name);
  auto hdl = self->spawn(sandbox, std::move(init));
  self->monitor(hdl);
  st.sandboxes[id] = hdl;
  st.by_addr[hdl.address()] = {id, ports};
  return hdl;
}

sandbox_init make_init(self_ptr self, store::sandbox_row row,
                       sandbox_spec spec) {
  auto& in = self->state.init;
  sandbox_init result;
  result.cfg = in.cfg;
  result.row = std::move(row);
  result.spec = std::move(spec);
  result.node = in.node;
  result.runtime = in.runtime;
  result.store = in.store;
  result.endpoint_host = in.endpoint_host;
  result.supervisor = caf::actor_cast<supervisor_actor>(self);
  result.gate = in.gate;
  return result;
}

/// Tells the node that it knows this host's sandboxes, once every restored
/// sandbox actor has registered its view there. Each registers as it starts
/// running, later than this actor goes on: an answer from each (to a
/// zero-wait `started`) orders its registration before the announcement,
/// so that no GET answers 404 for a stored sandbox after a restart.
void announce_recovered(self_ptr self, std::vector<sandbox_actor> restored) {
  auto announce = [self] {
    self->send(self->state.init.node, atom::recover_v,
               self->state.init.runtime_host);
  };
  if (restored.empty())
    return announce();
  auto pending = std::make_shared<size_t>(restored.size());
  auto one_done = [pending, announce] {
    if (--*pending == 0)
      announce();
  };
  for (auto& hdl : restored)
    self->request(hdl, std::chrono::seconds(10), atom::started_v, int64_t{0})
      .then([one_done](sandbox_view&) { one_done(); },
            [one_done](caf::error&) { one_done(); });
}

/// Adopts the sandboxes whose runtime keeps their state with them
/// (Kubernetes: annotations) but whose rows the store lost (an emptied or
/// new store, another replica's): their rows are rebuilt from what the
/// runtime kept, and they come back like stored ones. Returns how many.
size_t adopt(self_ptr self, const runtimes::observation& obs,
             std::unordered_set<std::string>& known,
             std::vector<sandbox_actor>& restored,
             const std::unordered_set<std::string>* only = nullptr) {
  auto& st = self->state;
  size_t n = 0;
  for (auto& w : obs.workloads) {
    if (!w.kept || known.count(w.id) != 0 || st.sandboxes.count(w.id) != 0
        || w.status == "removing" || (only != nullptr && only->count(w.id) == 0))
      continue;
    sandbox_spec spec;
    if (!codec::spec_from_json(w.kept->spec_json, spec))
      continue;
    auto& k = *w.kept;
    store::sandbox_row row;
    row.id = w.id;
    row.node = st.init.node_name;
    row.runtime_host = st.init.runtime_host;
    // A workload that never got to run resumes its provisioning.
    bool ran = w.status == runtimes::workload::running
               || w.status == runtimes::workload::paused
               || w.status == runtimes::workload::exited;
    row.phase = ran ? "provisioned" : "provisioning";
    // A member is adopted as a member (its pool's to adopt or remove), a
    // claimed one as a sandbox of its pool (docs/pools.md).
    row.pool = k.pool;
    if (!k.pool.empty() && k.unclaimed && ran)
      row.phase = "idle";
    row.spec_json = k.spec_json;
    row.metadata_json = k.metadata_json.empty() ? codec::map_to_json(
                                                    spec.metadata)
                                                : k.metadata_json;
    row.created_us = k.created_us;
    row.expires_us = k.expires_us;
    row.last_transition_us = codec::now_us();
    row.execd_port = k.ports.execd;
    row.http_port = k.ports.http;
    row.egress_port = k.ports.egress;
    row.access_token = k.access_token;
    row.egress_token = k.egress_token;
    OSB_WARN(component, "", row.id,
             "supervisor adopts a sandbox the store does not know from "
             "what its runtime kept");
    self->request(st.init.store, store_timeout, atom::put_v, row)
      .then([](bool) {},
            [id = row.id](caf::error& err) {
              OSB_ERROR(component, "", id,
                        "supervisor could not store an adopted sandbox: "
                          << to_api_error(err).message);
            });
    known.insert(row.id);
    auto init = make_init(self, std::move(row), std::move(spec));
    init.recovered = true;
    init.observed_status = w.status;
    init.observed_exit_code = w.exit_code;
    init.observed_address = w.address;
    restored.push_back(spawn_sandbox(self, std::move(init)));
    ops_metrics().recoveries.inc();
    ++n;
  }
  return n;
}

/// Brings back the sandboxes of this node from the store rows and one
/// runtime listing.
void recover(self_ptr self, sandbox_rows rows, runtimes::observation obs) {
  auto& st = self->state;
  std::unordered_map<std::string, const runtimes::workload_state*> by_id;
  for (auto& w : obs.workloads)
    by_id[w.id] = &w;
  std::unordered_set<std::string> known;
  std::vector<sandbox_actor> restored;
  size_t num_restored = 0;
  for (auto& row : rows) {
    if (!owns_row(self, row))
      continue;
    known.insert(row.id);
    auto i = by_id.find(row.id);
    auto* w = i == by_id.end() ? nullptr : i->second;
    if (row.phase == "deleting") {
      // A deletion was cut short: finish it. The row goes last, so that a
      // failure here is retried by the next start.
      auto id = row.id;
      remove_remains(self, instance_of(row), [self, id](caf::error err) {
        if (err) {
          OSB_ERROR(component, "", id,
                    "supervisor failed to finish a deletion: "
                      << to_failure(err).message);
          return;
        }
        self
          ->request(self->state.init.store, store_timeout, atom::remove_v, id)
          .then([](bool) {}, [](caf::error&) {});
        OSB_INFO(component, "", id,
                 "supervisor finished an interrupted deletion");
      });
      continue;
    }
    if (row.phase == "provisioned" && w == nullptr) {
      OSB_WARN(component, "", row.id,
               "supervisor drops a sandbox whose container is gone");
      remove_remains(self, instance_of(row), [](caf::error) {});
      self->request(st.init.store, store_timeout, atom::remove_v, row.id)
        .then([](bool) {}, [](caf::error&) {});
      continue;
    }
    sandbox_spec spec;
    if (!codec::spec_from_json(row.spec_json, spec)) {
      OSB_ERROR(component, "", row.id,
                "supervisor cannot decode a stored sandbox; removing it");
      remove_remains(self, instance_of(row), [](caf::error) {});
      self->request(st.init.store, store_timeout, atom::remove_v, row.id)
        .then([](bool) {}, [](caf::error&) {});
      continue;
    }
    auto init = make_init(self, row, std::move(spec));
    init.recovered = true;
    if (w != nullptr) {
      init.observed_status = w->status;
      init.observed_exit_code = w->exit_code;
      init.observed_address = w->address;
    }
    restored.push_back(spawn_sandbox(self, std::move(init)));
    ++num_restored;
    ops_metrics().recoveries.inc();
  }
  num_restored += adopt(self, obs, known, restored);
  // Objects of this node's sandboxes without a row were never acknowledged
  // to a user (the row is written before anything is created): orphans,
  // removed when this node's store recorded the incarnation that made them.
  size_t num_kept = 0;
  for (auto& x : obs.objects) {
    if (known.count(x.sandbox_id) != 0 || st.sandboxes.count(x.sandbox_id) != 0)
      continue;
    std::string why;
    if (!created_here(self, x, why)) {
      ++num_kept;
      OSB_WARN(component, "", x.sandbox_id,
               "supervisor keeps " << x.kind << " " << x.name
                                   << " without a row: " << why);
      continue;
    }
    OSB_WARN(component, "", x.sandbox_id,
             "supervisor removes an orphan " << x.kind << " " << x.name);
    self->request(st.init.runtime, runtime_timeout(self), atom::remove_v, x)
      .then([](bool) { ops_metrics().orphans_removed.inc(); },
            [](caf::error&) {});
  }
  // Placeholders that recovery did not bring back (e.g. their container
  // is gone) leave the directory; the others were replaced by their actors.
  for (auto& id : st.placeholders)
    if (st.sandboxes.count(id) == 0)
      self->send(st.init.node, atom::forget_v, id);
  st.placeholders.clear();
  st.recovered = true;
  OSB_INFO(component, "", "",
           "supervisor recovered " << num_restored << " sandboxes from "
                                   << rows.size() << " stored rows and "
                                   << obs.objects.size()
                                   << " runtime objects"
                                   << (num_kept > 0 ? ", kept " : "")
                                   << (num_kept > 0 ? std::to_string(num_kept)
                                                    : std::string{})
                                   << (num_kept > 0 ? " of other processes"
                                                    : ""));
  announce_recovered(self, std::move(restored));
  self->delayed_send(self, st.init.reconcile_interval, atom::tick_v);
}

/// While the runtime cannot be listed at start, shows this host's stored
/// sandboxes as Unknown instead of letting them answer 404.
void show_unknown(self_ptr self, const sandbox_rows& rows) {
  auto& st = self->state;
  for (auto& row : rows) {
    if (!owns_row(self, row) || row.phase == "deleting"
        || st.placeholders.count(row.id) > 0)
      continue;
    sandbox_spec spec;
    codec::spec_from_json(row.spec_json, spec);
    auto v = make_view(*st.init.cfg, row, spec);
    v.state = sandbox_state::unknown;
    v.reason = "RUNTIME_UNAVAILABLE";
    v.message = "The Docker host '" + st.init.runtime_host
                + "' does not answer (" + st.runtime_error
                + "); the sandbox's state is unknown until it does.";
    v.endpoint_host = st.init.endpoint_host;
    st.placeholders.insert(row.id);
    self->send(st.init.node, atom::put_v, sandbox_actor{}, std::move(v));
  }
}

void start_recovery(self_ptr self) {
  auto& st = self->state;
  self->request(st.init.store, store_timeout, atom::load_v, st.init.node_name)
    .then(
      [self](sandbox_rows& rows) {
        auto& st = self->state;
        self->request(st.init.runtime, runtime_timeout(self), atom::observe_v)
          .then(
            [self, rows](runtimes::observation& obs) mutable {
              mark_runtime(self, true);
              recover(self, std::move(rows), std::move(obs));
            },
            [self, rows](caf::error& err) {
              auto f = to_failure(err);
              mark_runtime(self, false, f.message);
              OSB_ERROR(component, "", "",
                        "supervisor cannot list containers, retrying: "
                          << f.message);
              show_unknown(self, rows);
              self->delayed_send(self, recover_retry, atom::recover_v);
            });
      },
      [self](caf::error& err) {
        OSB_ERROR(component, "", "",
                  "supervisor cannot load the store, retrying: "
                    << to_api_error(err).message);
        self->delayed_send(self, recover_retry, atom::recover_v);
      });
}

/// Removes the volumes that should have gone with their sandbox but were in
/// use by another one then: one listing of this host's volumes.
void sweep_volumes(self_ptr self) {
  auto& st = self->state;
  self->request(st.init.runtime, runtime_timeout(self), atom::vol_list_v)
    .then(
      [self](runtime_objects& xs) {
        // A live sandbox may be about to mount a volume whose creator is
        // gone (it found the volume existing): never pull it away.
        std::unordered_set<std::string> mounted;
        for (auto& [id, names] : self->state.claims)
          mounted.insert(names.begin(), names.end());
        for (auto& v : xs) {
          auto& owner = v.sandbox_id;
          std::string why;
          if (owner.empty() || self->state.sandboxes.count(owner) > 0
              || mounted.count(v.name) > 0)
            continue;
          if (!created_here(self, v, why)) {
            OSB_DEBUG(component, "", owner,
                      "supervisor keeps volume " << v.name << ": " << why);
            continue;
          }
          self
            ->request(self->state.init.runtime, runtime_timeout(self),
                      atom::remove_v, v)
            .then(
              [name = v.name, owner](bool) {
                OSB_INFO(component, "", owner,
                         "supervisor removed volume "
                           << name << ", left in use when its sandbox went");
              },
              [name = v.name, owner](caf::error& err) {
                // Still in use: the next sweep tries again.
                OSB_DEBUG(component, "", owner,
                          "supervisor keeps volume "
                            << name << ": " << to_failure(err).message);
              });
        }
      },
      [](caf::error& err) {
        OSB_DEBUG(component, "", "",
                  "supervisor cannot list volumes: "
                    << to_failure(err).message);
      });
}

/// Another replica took this node's sandboxes over (its lease lapsed):
/// their actors stop and their rows go, without a word to the runtime (the
/// workloads are the other replica's now).
void drop_all(self_ptr self) {
  auto& st = self->state;
  OSB_WARN(component, "", "",
           "supervisor drops its " << st.sandboxes.size()
                                   << " sandboxes: another replica adopted "
                                      "them");
  for (auto& [id, hdl] : st.sandboxes) {
    // Forgotten here first: the node keeps the new owner's claim if one
    // came meanwhile (the down message's forget then finds nothing).
    self->send(st.init.node, atom::forget_v, id, true);
    self->send_exit(hdl, caf::exit_reason::user_shutdown);
    self->request(st.init.store, store_timeout, atom::remove_v, id)
      .then([](bool) {}, [](caf::error&) {});
  }
  // Their down messages release ports and tell the node to forget them.
  st.sandboxes.clear();
  st.claims.clear();
}

/// One listing of this node's sandboxes, fanned out to their actors.
void reconcile(self_ptr self) {
  auto& st = self->state;
  if (st.recovered && ++st.ticks_since_sweep >= st.init.volume_sweep_every) {
    st.ticks_since_sweep = 0;
    sweep_volumes(self);
  }
  auto asked_us = codec::now_us();
  self->request(st.init.runtime, runtime_timeout(self), atom::observe_v)
    .then(
      [self, asked_us](runtimes::observation& obs) {
        auto& st = self->state;
        mark_runtime(self, true);
        if (obs.released)
          drop_all(self);
        if (st.init.gate && st.init.gate->fenced()) {
          // Nothing is judged while another replica may own the pods.
          self->delayed_send(self, st.init.reconcile_interval, atom::tick_v);
          return;
        }
        if (!obs.adopted.empty()) {
          std::unordered_set<std::string> only{obs.adopted.begin(),
                                               obs.adopted.end()};
          std::unordered_set<std::string> known;
          std::vector<sandbox_actor> restored;
          auto n = adopt(self, obs, known, restored, &only);
          OSB_INFO(component, "", "",
                   "supervisor adopted " << n << " sandboxes of a lost "
                                         << "replica");
        }
        std::unordered_map<std::string, const runtimes::workload_state*> seen;
        for (auto& w : obs.workloads)
          seen[w.id] = &w;
        for (auto& [id, hdl] : st.sandboxes) {
          auto i = seen.find(id);
          if (i == seen.end())
            self->send(hdl, atom::observe_v, std::string{}, int32_t{0},
                       asked_us);
          else
            self->send(hdl, atom::observe_v, i->second->status,
                       i->second->exit_code, asked_us);
        }
        self->delayed_send(self, st.init.reconcile_interval, atom::tick_v);
      },
      [self](caf::error& err) {
        mark_runtime(self, false, to_failure(err).message);
        self->delayed_send(self, self->state.init.reconcile_interval,
                           atom::tick_v);
      });
}

/// Spawns the actor of an admitted sandbox with the host ports its runtime
/// asked for; the actor answers Pending once the sandbox is durable.
void create_sandbox(self_ptr self, caf::typed_response_promise<sandbox_view> rp,
                    std::string id, sandbox_spec spec, std::string rid,
                    const runtimes::admission& a) {
  auto& st = self->state;
  store::sandbox_row row;
  row.id = std::move(id);
  row.node = st.init.node_name;
  row.runtime_host = st.init.runtime_host;
  row.phase = "provisioning";
  row.created_us = codec::now_us();
  row.last_transition_us = row.created_us;
  if (spec.timeout_s > 0)
    row.expires_us = row.created_us + spec.timeout_s * 1000000;
  row.metadata_json = codec::map_to_json(spec.metadata);
  row.spec_json = codec::spec_to_json(spec);
  // Ports the sandbox serves at its own address need no reservation.
  row.execd_port = a.fixed.execd;
  row.http_port = a.fixed.http;
  row.egress_port = a.fixed.egress;
  for (auto [wanted, port] : {std::pair{a.execd_port, &row.execd_port},
                              std::pair{a.http_port, &row.http_port},
                              std::pair{a.egress_port, &row.egress_port}}) {
    if (!wanted || *port != 0)
      continue;
    auto p = st.ports.allocate();
    if (!p) {
      for (auto x : {row.execd_port, row.http_port, row.egress_port})
        st.ports.release(x);
      rp.deliver(make_error(ec::start_failed, "Failed to allocate host ports "
                                              "for sandbox container."));
      return;
    }
    *port = *p;
  }
  if (!spec.network_policy_json.empty())
    row.egress_token = codec::make_token();
  row.access_token = codec::make_token();
  auto init = make_init(self, std::move(row), std::move(spec));
  init.ack_when_created = a.state_in_workload;
  auto hdl = spawn_sandbox(self, std::move(init));
  rp.delegate(hdl, atom::create_v, std::move(rid));
}

} // namespace

supervisor_state::~supervisor_state() {
  for (auto& [id, hdl] : sandboxes)
    caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
}

supervisor_actor::behavior_type
host_supervisor(supervisor_actor::stateful_pointer<supervisor_state> self,
                supervisor_init init) {
  self->state.init = std::move(init);
  auto [first, last] = self->state.init.cfg->docker.host_port_range;
  self->state.ports = net::port_allocator{first, last};
  self->set_down_handler([self](const caf::down_msg& msg) {
    auto& st = self->state;
    auto i = st.by_addr.find(msg.source);
    if (i == st.by_addr.end())
      return;
    auto& [id, ports] = i->second;
    st.ports.release(ports.execd);
    st.ports.release(ports.http);
    st.ports.release(ports.egress);
    auto j = st.sandboxes.find(id);
    if (j != st.sandboxes.end() && j->second.address() == msg.source) {
      st.sandboxes.erase(j);
      st.claims.erase(id);
    }
    // Covers actors that quit without saying goodbye (e.g. a failed create).
    self->send(st.init.node, atom::forget_v, id);
    st.by_addr.erase(i);
  });
  self->send(self, atom::recover_v);
  return {
    [=](atom::create, std::string& id, sandbox_spec& spec,
        std::string& rid) -> caf::result<sandbox_view> {
      auto& st = self->state;
      if (!st.runtime_up)
        return make_error(ec::runtime_unavailable,
                          "The container runtime is unavailable: "
                            + st.runtime_error);
      // The runtime refuses what its host cannot run before the 202 (a
      // platform, a host volume) and says which host ports it needs.
      auto rp = self->make_response_promise<sandbox_view>();
      self->request(st.init.runtime, runtime_timeout(self), atom::admit_v, spec)
        .then(
          [=](runtimes::admission& a) mutable {
            create_sandbox(self, rp, std::move(id), std::move(spec),
                           std::move(rid), a);
          },
          [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [=](atom::update, port_map& old) -> caf::result<port_map> {
      auto& st = self->state;
      auto i = st.by_addr.find(
        caf::actor_cast<caf::actor_addr>(self->current_sender()));
      if (i == st.by_addr.end())
        return make_error(ec::start_failed, "Unknown sandbox actor.");
      port_map fresh;
      for (auto [from, to] : {std::pair{old.execd, &fresh.execd},
                              std::pair{old.http, &fresh.http},
                              std::pair{old.egress, &fresh.egress}}) {
        if (from == 0)
          continue;
        auto p = st.ports.allocate();
        if (!p) {
          for (auto x : {fresh.execd, fresh.http, fresh.egress})
            st.ports.release(x);
          return make_error(ec::start_failed, "Failed to allocate host ports "
                                              "for sandbox container.");
        }
        *to = *p;
      }
      for (auto x : {old.execd, old.http, old.egress})
        st.ports.release(x);
      i->second.second = fresh;
      return fresh;
    },
    [=](atom::recover) { start_recovery(self); },
    [=](atom::tick) { reconcile(self); },
  };
}

} // namespace osb
