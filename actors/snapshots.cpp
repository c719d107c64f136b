#include "actors/snapshots.hpp"

#include "core/server_metrics.hpp"

#include <caf/actor_cast.hpp>

#include "actors/error.hpp"
#include "core/ids.hpp"
#include "core/spec_json.hpp"
#include "core/time.hpp"
#include "base/log.hpp"

namespace osb {

namespace {

using self_ptr = snapshots_actor::stateful_pointer<snapshots_state>;

constexpr const char* component = "snapshots";
constexpr auto store_timeout = std::chrono::seconds(30);
/// The sandbox answers at once whether it can be snapshotted.
constexpr auto sandbox_timeout = std::chrono::seconds(10);
/// Every this many ticks, images of this node's snapshots without a record
/// (a snapshot that outlived its timeout) are removed.
constexpr int image_sweep_every = 6;

snapshots_actor me(self_ptr self) {
  return caf::actor_cast<snapshots_actor>(self);
}

caf::error not_found(const std::string& id) {
  return make_error(ec::snapshot_not_found, "Snapshot " + id + " not found");
}

snapshot_view* find(self_ptr self, const std::string& id) {
  auto i = self->state.records.find(id);
  return i == self->state.records.end() ? nullptr : &i->second;
}

/// The RUNTIME actor of a runtime host of this node, or an invalid handle.
runtime_actor runtime_of(self_ptr self, const std::string& host) {
  auto i = self->state.init.runtimes.find(host);
  return i == self->state.init.runtimes.end() ? runtime_actor{} : i->second;
}

/// Moves a record to `state` and persists it; `then` runs once stored
/// (a failed write is logged: the record in memory is still right, and the
/// next start settles what the store missed).
template <class F>
void transition(self_ptr self, snapshot_view& x, const char* state,
                std::string reason, std::string message, F then) {
  x.state = state;
  x.reason = std::move(reason);
  x.message = std::move(message);
  x.last_transition_us = codec::now_us();
  if (x.state == "Ready" || x.state == "Failed")
    ops_metrics().snapshot_transitions.with({x.state, x.reason}).inc();
  OSB_INFO(component, "", x.sandbox_id,
           "snapshot " << x.id << " is " << x.state << " (" << x.reason
                       << ")");
  self->request(self->state.init.store, store_timeout, atom::put_v, x)
    .then([then](bool) mutable { then(); },
          [self, id = x.id, then](caf::error& err) mutable {
            OSB_ERROR(component, "", "",
                      "snapshot " << id << " not persisted: "
                                  << to_api_error(err).message);
            then();
          });
}

void no_op() {
  // nop
}

/// Removes a record and its row.
void forget(self_ptr self, const std::string& id) {
  self->state.records.erase(id);
  self->state.busy.erase(id);
  self->request(self->state.init.store, store_timeout, atom::snap_del_v, id)
    .then([](bool) {},
          [id](caf::error& err) {
            OSB_ERROR(component, "", "",
                      "snapshot " << id << " row not deleted: "
                                  << to_api_error(err).message);
          });
}

/// Answers every DELETE waiting on the removal of `id`.
void finish_removal(self_ptr self, const std::string& id,
                    const caf::error& err) {
  auto i = self->state.removals.find(id);
  if (i == self->state.removals.end())
    return;
  auto waiters = std::move(i->second);
  self->state.removals.erase(i);
  for (auto& rp : waiters)
    if (err)
      rp.deliver(err);
    else
      rp.deliver(true);
}

/// Removes the image of a Deleting record, then the record; answers the
/// DELETEs in `removals[id]` (one removal per snapshot at a time).
void remove_image(self_ptr self, const std::string& id) {
  auto x = find(self, id);
  if (x == nullptr)
    return finish_removal(self, id, caf::error{});
  auto rt = runtime_of(self, x->runtime_host);
  if (!rt) {
    // The host left the configuration: its images are out of reach.
    OSB_WARN(component, "", x->sandbox_id,
             "snapshot " << id << " forgotten; its image "
                         << x->image << " stays on Docker host '"
                         << x->runtime_host
                         << "', which is no longer configured");
    forget(self, id);
    return finish_removal(self, id, caf::error{});
  }
  self->request(rt, caf::infinite, atom::img_remove_v, x->image)
    .then(
      [self, id](bool) {
        OSB_INFO(component, "", "", "snapshot " << id << " deleted");
        forget(self, id);
        finish_removal(self, id, caf::error{});
      },
      [self, id](caf::error& err) {
        auto f = to_failure(err);
        OSB_WARN(component, "", "",
                 "snapshot " << id << " image not removed (retried later): "
                             << f.message);
        if (f.kind == failure_kind::conflict)
          return finish_removal(self, id,
                                make_error(ec::snapshot_delete_conflict,
                                           "snapshot image cannot be deleted "
                                           "due to a conflict"));
        if (f.kind == failure_kind::unavailable)
          return finish_removal(self, id,
                                make_error(ec::runtime_unavailable,
                                           "The container runtime is "
                                           "unavailable: "
                                             + f.message));
        finish_removal(self, id,
                       make_error(ec::snapshot_image_remove_failed,
                                  "DOCKER::SNAPSHOT_IMAGE_REMOVE_FAILED: "
                                    + f.message));
      });
}

/// Starts deleting a record (or joins the deletion under way).
void begin_removal(self_ptr self, const std::string& id,
                   std::optional<caf::typed_response_promise<bool>> rp) {
  auto& st = self->state;
  auto i = st.removals.find(id);
  if (i != st.removals.end()) {
    if (rp)
      i->second.push_back(std::move(*rp));
    return;
  }
  auto& waiters = st.removals[id];
  if (rp)
    waiters.push_back(std::move(*rp));
  auto x = find(self, id);
  if (x == nullptr || x->state == "Deleting")
    return remove_image(self, id);
  transition(self, *x, "Deleting", "snapshot_delete_requested",
             "Snapshot deletion requested.",
             [self, id] { remove_image(self, id); });
}

/// Settles a record that a restart left Creating: the commit made the image
/// before the crash, or is still running in the daemon (it goes on without
/// us), or never will. A missing image counts as failed only once a commit
/// started then would have timed out, so that a late image is not leaked.
void recover_creating(self_ptr self, const std::string& id) {
  auto x = find(self, id);
  auto rt = x ? runtime_of(self, x->runtime_host) : runtime_actor{};
  if (!rt)
    return;
  self->state.busy[id] = true;
  self->request(rt, caf::infinite, atom::img_exists_v, x->image)
    .then(
      [self, id](bool exists) {
        self->state.busy.erase(id);
        auto x = find(self, id);
        if (x == nullptr || x->state != "Creating")
          return;
        auto grace = std::chrono::duration_cast<std::chrono::microseconds>(
                       self->state.init.commit_timeout)
                       .count();
        if (exists)
          transition(self, *x, "Ready", "snapshot_recovery_ready",
                     "Recovered snapshot image after server restart.", no_op);
        else if (codec::now_us() - x->created_us > grace)
          transition(self, *x, "Failed", "snapshot_recovery_missing_image",
                     "Snapshot image was not found after server restart.",
                     no_op);
      },
      [self, id](caf::error& err) {
        // The runtime is down: stay Creating, the next tick asks again.
        self->state.busy.erase(id);
        OSB_WARN(component, "", "",
                 "snapshot " << id << " not recovered yet: "
                             << to_failure(err).message);
      });
}

/// Removes images of this node's snapshots that have no record: a snapshot
/// that finished after its timeout (the record Failed, maybe deleted since).
/// One listing per runtime host, limited to the images of the incarnations
/// this node's store recorded.
void sweep_images(self_ptr self) {
  auto& st = self->state;
  for (auto& [host, runtime] : st.init.runtimes) {
    auto rt = runtime;
    self->request(rt, caf::infinite, atom::img_list_v, st.init.incarnations)
      .then(
        [self, rt](snapshot_images& xs) {
          for (auto& x : xs) {
            if (find(self, x.snapshot_id) != nullptr)
              continue;
            OSB_WARN(component, "", "",
                     "snapshots remove image " << x.ref
                                               << " of no snapshot record");
            self->request(rt, caf::infinite, atom::img_remove_v, x.ref)
              .then([](bool) {}, [](caf::error&) {});
          }
        },
        [](caf::error& err) {
          OSB_DEBUG(component, "", "",
                    "snapshots cannot list images: "
                      << to_failure(err).message);
        });
  }
}

/// Settles every unsettled record that nothing works on right now.
void settle(self_ptr self) {
  std::vector<std::pair<std::string, std::string>> todo;
  for (auto& [id, x] : self->state.records)
    if (self->state.busy.count(id) == 0
        && self->state.removals.count(id) == 0
        && (x.state == "Deleting" || x.state == "Creating"))
      todo.emplace_back(id, x.state);
  for (auto& [id, state] : todo) {
    if (state == "Deleting")
      begin_removal(self, id, std::nullopt);
    else
      recover_creating(self, id);
  }
}

/// Has the runtime snapshot the source sandbox and records the outcome.
void capture(self_ptr self, const std::string& id, const std::string& sandbox,
             sandbox_actor src, std::string rid) {
  auto x = find(self, id);
  auto rt = runtime_of(self, x->runtime_host);
  self->state.busy[id] = true;
  auto begun = std::chrono::steady_clock::now();
  self
    ->request(rt, self->state.init.commit_timeout, atom::commit_v, sandbox, id)
    .then(
      [self, id, src, rid, begun](std::string& image_id) {
        self->send(src, atom::snap_end_v, id);
        self->state.busy.erase(id);
        auto x = find(self, id);
        if (x == nullptr)
          return;
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - begun)
                    .count();
        OSB_INFO(component, rid, x->sandbox_id,
                 "snapshot " << id << " committed as " << image_id << " in "
                             << ms << " ms");
        ops_metrics().snapshot_commit.observe(static_cast<double>(ms) / 1000);
        transition(self, *x, "Ready", "snapshot_runtime_ready",
                   "Docker snapshot image created successfully.", no_op);
      },
      [self, id, src, rid](caf::error& err) {
        self->send(src, atom::snap_end_v, id);
        self->state.busy.erase(id);
        auto x = find(self, id);
        if (x == nullptr)
          return;
        auto f = to_failure(err);
        OSB_ERROR(component, rid, x->sandbox_id,
                  "snapshot " << id << " failed: " << f.message);
        // A timed-out commit may still finish in the daemon; the image
        // sweep removes what it leaves without a record.
        if (f.kind == failure_kind::timeout)
          transition(self, *x, "Failed", "snapshot_runtime_timeout",
                     "Docker snapshot creation timed out: " + f.message,
                     no_op);
        else if (f.kind == failure_kind::not_found)
          transition(self, *x, "Failed", "snapshot_runtime_failed",
                     "DOCKER::SANDBOX_NOT_FOUND: the sandbox container is "
                     "gone: "
                       + f.message,
                     no_op);
        else
          transition(self, *x, "Failed", "snapshot_runtime_failed",
                     "Docker snapshot creation failed: " + f.message, no_op);
      });
}

/// Records a snapshot the source sandbox accepted (Creating, durable
/// before the 202), answers it and takes it.
void accept(self_ptr self, caf::typed_response_promise<snapshot_view> rp,
            sandbox_actor src, std::string sandbox_id, std::string sandbox,
            std::string snap_id, std::string name, std::string host,
            std::string image, std::string rid) {
  snapshot_view x;
  x.id = snap_id;
  x.sandbox_id = sandbox_id;
  x.name = name;
  x.state = "Creating";
  x.reason = "snapshot_accepted";
  x.message = "Snapshot creation accepted.";
  x.created_us = codec::now_us();
  x.last_transition_us = x.created_us;
  x.image = std::move(image);
  x.node = self->state.init.node_name;
  x.runtime_host = std::move(host);
  self->state.records[x.id] = x;
  self->state.busy[x.id] = true;
  // Durable before the 202: a crash from here on is settled by the next
  // start.
  self->request(self->state.init.store, store_timeout, atom::put_v, x)
    .then(
      [=](bool) mutable {
        OSB_INFO(component, rid, sandbox_id,
                 "snapshot " << x.id << " accepted");
        rp.deliver(x);
        capture(self, x.id, sandbox, src, rid);
      },
      [=](caf::error& err) mutable {
        self->state.records.erase(x.id);
        self->state.busy.erase(x.id);
        self->send(src, atom::snap_end_v, x.id);
        rp.deliver(std::move(err));
      });
}

/// Answers a request once the records are loaded; 503 while the store
/// cannot be read.
template <class T, class... Ts>
caf::result<T> after_load(self_ptr self, Ts... xs) {
  if (!self->state.load_error.empty())
    return make_error(ec::store_failed, "Snapshot records cannot be read: "
                                          + self->state.load_error);
  auto rp = self->make_response_promise<T>();
  self->state.waiting.push_back(
    [self, rp, xs...]() mutable { rp.delegate(me(self), xs...); });
  return rp;
}

/// Takes the loaded records in; records of Docker hosts that are no longer
/// configured cannot be settled there.
void load(self_ptr self, snapshot_views xs) {
  auto& st = self->state;
  for (auto& x : xs) {
    auto id = x.id;
    auto configured = static_cast<bool>(runtime_of(self, x.runtime_host));
    auto state = x.state;
    st.records[id] = std::move(x);
    if (configured)
      continue;
    if (state == "Creating")
      transition(self, st.records[id], "Failed", "snapshot_runtime_failed",
                 "The Docker host '" + st.records[id].runtime_host
                   + "' of this snapshot is no longer configured.",
                 no_op);
    else if (state == "Deleting")
      begin_removal(self, id, std::nullopt);
  }
  st.loaded = true;
  st.load_error.clear();
  OSB_INFO(component, "", "",
           "snapshots loaded " << st.records.size() << " records");
  auto waiting = std::move(st.waiting);
  st.waiting.clear();
  for (auto& f : waiting)
    f();
  settle(self);
}

} // namespace

snapshots_actor::behavior_type
snapshots(snapshots_actor::stateful_pointer<snapshots_state> self,
          snapshots_init init) {
  self->state.init = std::move(init);
  self->send(self, atom::recover_v);
  return {
    [=](atom::create, sandbox_actor& src, sandbox_view& source,
        std::string& name, std::string& rid) -> caf::result<snapshot_view> {
      if (!self->state.loaded)
        return after_load<snapshot_view>(self, atom::create_v, src, source,
                                         name, rid);
      if (!runtime_of(self, source.runtime_host))
        return make_error(ec::internal, "The Docker host '"
                                          + source.runtime_host
                                          + "' is not configured.");
      auto rp = self->make_response_promise<snapshot_view>();
      auto sandbox_id = source.id;
      auto snap_id = codec::make_uuid();
      auto rt = runtime_of(self, source.runtime_host);
      self->request(src, sandbox_timeout, atom::snapshot_v, snap_id, rid)
        .then(
          [=](std::string& sandbox) mutable {
            // The runtime names the image before it exists: the record
            // holds it from the start, so a restart finds it either way.
            self->request(rt, sandbox_timeout, atom::image_v, snap_id)
              .then(
                [=](std::string& image) mutable {
                  accept(self, rp, src, sandbox_id, sandbox, snap_id, name,
                         source.runtime_host, image, rid);
                },
                [=](caf::error& err) mutable {
                  self->send(src, atom::snap_end_v, snap_id);
                  rp.deliver(std::move(err));
                });
          },
          [=](caf::error& err) mutable {
            // The sandbox may have begun before the answer got lost.
            self->send(src, atom::snap_end_v, snap_id);
            if (err == caf::sec::request_receiver_down)
              rp.deliver(make_error(ec::sandbox_not_found,
                                    "Sandbox " + sandbox_id + " not found."));
            else
              rp.deliver(std::move(err));
          });
      return rp;
    },
    [=](atom::get, std::string& id) -> caf::result<snapshot_view> {
      if (!self->state.loaded)
        return after_load<snapshot_view>(self, atom::get_v, id);
      if (auto x = find(self, id))
        return *x;
      return not_found(id);
    },
    [=](atom::list, snapshot_query& q) -> caf::result<snapshot_views> {
      if (!self->state.loaded)
        return after_load<snapshot_views>(self, atom::list_v, q);
      snapshot_views result;
      for (auto& [id, x] : self->state.records)
        if (matches(x, q))
          result.push_back(x);
      return result;
    },
    [=](atom::remove, std::string& id,
        std::string& rid) -> caf::result<bool> {
      if (!self->state.loaded)
        return after_load<bool>(self, atom::remove_v, id, rid);
      auto x = find(self, id);
      if (x == nullptr)
        return not_found(id);
      if (x->state == "Creating")
        return make_error(ec::snapshot_invalid_state,
                          "Snapshot " + id
                            + " is still being created and cannot be "
                              "deleted");
      OSB_INFO(component, rid, x->sandbox_id,
               "snapshot " << id << " delete requested");
      auto rp = self->make_response_promise<bool>();
      begin_removal(self, id, rp);
      return rp;
    },
    [=](atom::place, std::string& id) -> caf::result<snapshot_view> {
      if (!self->state.loaded)
        return after_load<snapshot_view>(self, atom::place_v, id);
      auto x = find(self, id);
      if (x == nullptr)
        return not_found(id);
      if (x->state != "Ready")
        return make_error(ec::snapshot_not_ready,
                          "Snapshot " + id + " is not ready for restore.");
      auto rt = runtime_of(self, x->runtime_host);
      if (x->image.empty() || !rt)
        return make_error(ec::snapshot_invalid_restore_config,
                          "Snapshot " + id + " has no image to restore from.");
      // Never pull a snapshot image: a missing one fails the snapshot.
      auto rp = self->make_response_promise<snapshot_view>();
      self->request(rt, caf::infinite, atom::img_exists_v, x->image)
        .then(
          [self, rp, id](bool exists) mutable {
            auto x = find(self, id);
            if (x == nullptr || x->state != "Ready") {
              rp.deliver(make_error(ec::snapshot_not_ready,
                                    "Snapshot " + id
                                      + " is not ready for restore."));
              return;
            }
            if (exists) {
              rp.deliver(*x);
              return;
            }
            transition(self, *x, "Failed", "snapshot_image_missing",
                       "The snapshot image " + x->image
                         + " is gone from its Docker host.",
                       no_op);
            rp.deliver(make_error(ec::snapshot_invalid_restore_config,
                                  "Snapshot " + id
                                    + " cannot be restored: its image is "
                                      "gone from its Docker host."));
          },
          [rp](caf::error& err) mutable {
            auto f = to_failure(err);
            rp.deliver(make_error(ec::runtime_unavailable,
                                  "Cannot check the snapshot image: "
                                    + f.message));
          });
      return rp;
    },
    [=](atom::recover) {
      auto& st = self->state;
      self->request(st.init.store, store_timeout, atom::snap_list_v,
                    st.init.node_name)
        .then(
          [self](snapshot_views& xs) {
            load(self, std::move(xs));
            self->delayed_send(self, self->state.init.retry_interval,
                               atom::tick_v);
          },
          [self](caf::error& err) {
            auto msg = to_api_error(err).message;
            OSB_ERROR(component, "", "",
                      "snapshots cannot load records (retrying): " << msg);
            // Waiting requests get 503 now; later ones until a load works.
            self->state.load_error = msg;
            auto waiting = std::move(self->state.waiting);
            self->state.waiting.clear();
            for (auto& f : waiting)
              f();
            self->delayed_send(self, std::chrono::seconds(2),
                               atom::recover_v);
          });
    },
    [=](atom::tick) {
      auto& st = self->state;
      settle(self);
      if (++st.ticks_since_sweep >= image_sweep_every) {
        st.ticks_since_sweep = 0;
        sweep_images(self);
      }
      self->delayed_send(self, st.init.retry_interval, atom::tick_v);
    },
  };
}

} // namespace osb
