#include "actors/host_supervisor.hpp"

#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include <algorithm>
#include <unordered_set>

#include "actors/error.hpp"
#include "actors/runtime_bridge.hpp"
#include "actors/sandbox.hpp"
#include "actors/volume_cleanup.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/spec_json.hpp"
#include "core/time.hpp"
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

string_map node_labels(self_ptr self) {
  return {{"opensandbox.io/node", self->state.init.node_name},
          {"opensandbox.io/runtime-host", self->state.init.runtime_host}};
}

/// Whether this node's store recorded the incarnation that created the
/// object carrying `labels`; `why` says otherwise. Without that evidence nothing is removed:
/// it may belong to another live process started under the same name.
bool created_here(self_ptr self, const string_map& labels, std::string& why) {
  auto& known = self->state.init.incarnations;
  if (known.empty())
    return true;
  auto i = labels.find(incarnation_label);
  if (i == labels.end()) {
    why = "it has no incarnation label (made by a server before "
          "incarnations), so nothing proves this process's store made it";
    return false;
  }
  if (std::find(known.begin(), known.end(), i->second) != known.end())
    return true;
  why = "its incarnation " + i->second + " is not recorded in this node's "
        + "store: another process named '" + self->state.init.node_name
        + "' (with another store) created it";
  return false;
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
  result.execd_tar = in.execd_tar;
  result.probe_sidecars = in.probe_sidecars;
  result.endpoint_host = in.endpoint_host;
  result.local_fs = in.local_fs;
  result.publish_address = in.publish_address;
  result.supervisor = caf::actor_cast<supervisor_actor>(self);
  return result;
}

/// Brings back the sandboxes of this node from the store rows and one
/// runtime listing.
void recover(self_ptr self, sandbox_rows rows, container_infos containers) {
  auto& st = self->state;
  std::unordered_map<std::string, const runtimes::container_info*> by_id;
  for (auto& c : containers) {
    auto i = c.labels.find("opensandbox.io/id");
    if (i != c.labels.end())
      by_id[i->second] = &c;
  }
  std::unordered_set<std::string> known;
  size_t num_restored = 0;
  for (auto& row : rows) {
    if (!owns_row(self, row))
      continue;
    known.insert(row.id);
    auto i = by_id.find(row.id);
    auto* c = i == by_id.end() ? nullptr : i->second;
    if (row.phase == "deleting") {
      // A deletion was cut short: finish it.
      auto id = row.id;
      if (!row.egress_token.empty())
        self->request(st.init.runtime, runtime_timeout(self), atom::remove_v,
                      sidecar_name(id))
          .then([](bool) {}, [](caf::error&) {});
      self->request(st.init.runtime, runtime_timeout(self), atom::remove_v,
                    container_name(id))
        .then(
          [self, id](bool) {
            // Volumes next; the row goes last, so that a failure here is
            // retried by the next start.
            remove_sandbox_volumes(
              self, self->state.init.runtime, runtime_timeout(self), id,
              false, std::string{}, [self, id](caf::error err) {
                if (err) {
                  OSB_ERROR(component, "", id,
                            "supervisor failed to remove the volumes of a "
                            "deleted sandbox: "
                              << to_failure(err).message);
                  return;
                }
                self
                  ->request(self->state.init.store, store_timeout,
                            atom::remove_v, id)
                  .then([](bool) {}, [](caf::error&) {});
                OSB_INFO(component, "", id,
                         "supervisor finished an interrupted deletion");
              });
          },
          [id](caf::error& err) {
            OSB_ERROR(component, "", id,
                      "supervisor failed to finish a deletion: "
                        << to_failure(err).message);
          });
      continue;
    }
    if (row.phase == "provisioned" && c == nullptr) {
      OSB_WARN(component, "", row.id,
               "supervisor drops a sandbox whose container is gone");
      if (!row.egress_token.empty())
        self->request(st.init.runtime, runtime_timeout(self), atom::remove_v,
                      sidecar_name(row.id))
          .then([](bool) {}, [](caf::error&) {});
      remove_sandbox_volumes(self, st.init.runtime, runtime_timeout(self),
                             row.id, false, std::string{},
                             [](caf::error) {});
      self->request(st.init.store, store_timeout, atom::remove_v, row.id)
        .then([](bool) {}, [](caf::error&) {});
      continue;
    }
    sandbox_spec spec;
    if (!codec::spec_from_json(row.spec_json, spec)) {
      OSB_ERROR(component, "", row.id,
                "supervisor cannot decode a stored sandbox; removing it");
      self->request(st.init.runtime, runtime_timeout(self), atom::remove_v,
                    container_name(row.id))
        .then([](bool) {}, [](caf::error&) {});
      self->request(st.init.store, store_timeout, atom::remove_v, row.id)
        .then([](bool) {}, [](caf::error&) {});
      continue;
    }
    auto init = make_init(self, row, std::move(spec));
    init.recovered = true;
    if (c != nullptr) {
      init.observed_status = c->status;
      init.observed_exit_code = c->exit_code;
    }
    spawn_sandbox(self, std::move(init));
    ++num_restored;
  }
  // Containers of this node without a row were never acknowledged to a
  // user (the row is written before the container is created): orphans,
  // removed when this node's store recorded the incarnation that made them.
  size_t num_kept = 0;
  auto remove_orphan = [&](const runtimes::container_info& c,
                           const std::string& id, const char* what) {
    std::string why;
    if (!created_here(self, c.labels, why)) {
      ++num_kept;
      OSB_WARN(component, "", id,
               "supervisor keeps " << what << " " << c.name
                                   << " without a row: " << why);
      return;
    }
    OSB_WARN(component, "", id,
             "supervisor removes an orphan " << what << " " << c.name);
    self->request(st.init.runtime, runtime_timeout(self), atom::remove_v, c.id)
      .then([](bool) {}, [](caf::error&) {});
  };
  // Sidecars whose sandbox has no row are orphans too.
  for (auto& c : containers) {
    auto i = c.labels.find("opensandbox.io/egress-sidecar-for");
    if (i == c.labels.end() || known.count(i->second) != 0
        || st.sandboxes.count(i->second) != 0)
      continue;
    remove_orphan(c, i->second, "egress sidecar");
  }
  for (auto& [id, c] : by_id)
    if (known.count(id) == 0 && st.sandboxes.count(id) == 0)
      remove_orphan(*c, id, "container");
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
                                   << containers.size() << " containers"
                                   << (num_kept > 0 ? ", kept " : "")
                                   << (num_kept > 0 ? std::to_string(num_kept)
                                                    : std::string{})
                                   << (num_kept > 0 ? " of other processes"
                                                    : ""));
  // The node knows this host's sandboxes from now on.
  self->send(st.init.node, atom::recover_v, st.init.runtime_host);
  self->delayed_send(self, st.init.reconcile_interval, atom::tick_v);
}

/// Learns the runtime host's platform (once; retried by reconciliation
/// while unknown).
void learn_platform(self_ptr self) {
  auto& st = self->state;
  if (st.platform)
    return;
  self->request(st.init.runtime, runtime_timeout(self), atom::info_v)
    .then(
      [self](runtimes::daemon_info& info) {
        OSB_INFO(component, "", "",
                 "supervisor runs on a " << info.os << "/" << info.arch
                                         << " Docker host (Docker "
                                         << info.version << ")");
        self->state.platform = std::move(info);
      },
      [](caf::error&) {
        // Unknown for now: creates go to Docker, which refuses a platform
        // it cannot run.
      });
}

/// Refuses a platform the runtime host cannot run (the daemon would pull
/// an image variant it then cannot start, or fail with a vaguer error).
caf::error check_platform(self_ptr self, const sandbox_spec& spec) {
  auto& st = self->state;
  if (spec.platform_os.empty() || !st.platform)
    return caf::none;
  auto& p = *st.platform;
  if (spec.platform_os == p.os && spec.platform_arch == p.arch)
    return caf::none;
  return make_error(ec::invalid_parameter,
                    "Platform " + spec.platform_os + "/" + spec.platform_arch
                      + " is not supported by this server's Docker host "
                      + "'" + st.init.runtime_host + "', which runs " + p.os
                      + "/" + p.arch + ".");
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
  learn_platform(self);
  self->request(st.init.store, store_timeout, atom::load_v, st.init.node_name)
    .then(
      [self](sandbox_rows& rows) {
        auto& st = self->state;
        self->request(st.init.runtime, runtime_timeout(self), atom::list_v,
                      node_labels(self))
          .then(
            [self, rows](container_infos& cs) mutable {
              mark_runtime(self, true);
              recover(self, std::move(rows), std::move(cs));
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
/// use by another one then: one labelled listing of this host's volumes.
void sweep_volumes(self_ptr self) {
  auto& st = self->state;
  auto filter = node_labels(self);
  filter[runtimes::volume_managed_label] = "server";
  filter[runtimes::volume_delete_label] = "true";
  self->request(st.init.runtime, runtime_timeout(self), atom::vol_list_v,
                std::move(filter))
    .then(
      [self](volume_infos& xs) {
        // A live sandbox may be about to mount a volume whose creator is
        // gone (it found the volume existing): never pull it away.
        std::unordered_set<std::string> mounted;
        for (auto& [id, names] : self->state.claims)
          mounted.insert(names.begin(), names.end());
        for (auto& v : xs) {
          auto owner = runtimes::volume_owner(v);
          std::string why;
          if (owner.empty() || self->state.sandboxes.count(owner) > 0
              || mounted.count(v.name) > 0)
            continue;
          if (!created_here(self, v.labels, why)) {
            OSB_DEBUG(component, "", owner,
                      "supervisor keeps volume " << v.name << ": " << why);
            continue;
          }
          self
            ->request(self->state.init.runtime, runtime_timeout(self),
                      atom::vol_remove_v, v.name)
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

/// One listing of this node's containers, fanned out to the sandboxes.
void reconcile(self_ptr self) {
  auto& st = self->state;
  if (st.recovered && ++st.ticks_since_sweep >= st.init.volume_sweep_every) {
    st.ticks_since_sweep = 0;
    sweep_volumes(self);
  }
  auto asked_us = codec::now_us();
  self->request(st.init.runtime, runtime_timeout(self), atom::list_v,
                node_labels(self))
    .then(
      [self, asked_us](container_infos& cs) {
        auto& st = self->state;
        mark_runtime(self, true);
        learn_platform(self);
        std::unordered_map<std::string, const runtimes::container_info*> seen;
        for (auto& c : cs) {
          auto i = c.labels.find("opensandbox.io/id");
          if (i != c.labels.end())
            seen[i->second] = &c;
        }
        for (auto& [id, hdl] : st.sandboxes) {
          auto i = seen.find(id);
          if (i == seen.end())
            self->send(hdl, atom::observe_v, std::string{}, int32_t{0},
                       asked_us);
          else
            self->send(hdl, atom::observe_v, i->second->status,
                       static_cast<int32_t>(i->second->exit_code), asked_us);
        }
        self->delayed_send(self, st.init.reconcile_interval, atom::tick_v);
      },
      [self](caf::error& err) {
        mark_runtime(self, false, to_failure(err).message);
        self->delayed_send(self, self->state.init.reconcile_interval,
                           atom::tick_v);
      });
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
      if (!spec.platform_os.empty() && !st.platform) {
        // The host's platform is not known yet (just started): learn it,
        // then handle the create again.
        auto rp = self->make_response_promise<sandbox_view>();
        self->request(st.init.runtime, runtime_timeout(self), atom::info_v)
          .then(
            [=](runtimes::daemon_info& info) mutable {
              self->state.platform = std::move(info);
              rp.delegate(caf::actor_cast<supervisor_actor>(self),
                          atom::create_v, id, spec, rid);
            },
            [=](caf::error& err) mutable {
              rp.deliver(make_error(ec::runtime_unavailable,
                                    "Cannot learn the platform of the "
                                    "Docker host: "
                                      + to_failure(err).message));
            });
        return rp;
      }
      if (auto err = check_platform(self, spec))
        return err;
      // Volume checks that need this host's filesystem but no runtime:
      // answered before the 202, naming the volume.
      auto volumes = runtimes::parse_volumes(spec.volumes_json);
      if (auto e = std::get_if<runtimes::volume_error>(&volumes))
        return make_error(e->code, e->message);
      if (auto e = runtimes::precheck_volumes(
            std::get<std::vector<runtimes::volume_mount>>(volumes),
            st.init.cfg->storage.allowed_host_paths, st.init.local_fs))
        return make_error(e->code, e->message);
      store::sandbox_row row;
      row.id = id;
      row.node = st.init.node_name;
      row.runtime_host = st.init.runtime_host;
      row.phase = "provisioning";
      row.created_us = codec::now_us();
      row.last_transition_us = row.created_us;
      if (spec.timeout_s > 0)
        row.expires_us = row.created_us + spec.timeout_s * 1000000;
      row.metadata_json = codec::map_to_json(spec.metadata);
      row.spec_json = codec::spec_to_json(spec);
      if (st.init.cfg->docker.network_mode != "host") {
        auto execd = st.ports.allocate();
        auto http = st.ports.allocate();
        if (!execd || !http) {
          if (execd)
            st.ports.release(*execd);
          if (http)
            st.ports.release(*http);
          return make_error(ec::start_failed, "Failed to allocate host ports "
                                              "for sandbox container.");
        }
        row.execd_port = *execd;
        row.http_port = *http;
      }
      if (!spec.network_policy_json.empty()) {
        // The sidecar publishes the ports, also in host network mode.
        for (auto* port : {&row.execd_port, &row.http_port, &row.egress_port}) {
          if (*port != 0)
            continue;
          auto p = st.ports.allocate();
          if (!p) {
            st.ports.release(row.execd_port);
            st.ports.release(row.http_port);
            st.ports.release(row.egress_port);
            return make_error(ec::start_failed,
                              "Failed to allocate host ports for sandbox "
                              "container.");
          }
          *port = *p;
        }
        row.egress_token = codec::make_token();
      }
      row.access_token = codec::make_token();
      auto hdl = spawn_sandbox(self, make_init(self, std::move(row),
                                               std::move(spec)));
      return self->delegate(hdl, atom::create_v, std::move(rid));
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
