#include "actors/snapshots.hpp"

#include <caf/actor_cast.hpp>

#include "actors/error.hpp"
#include "core/codec.hpp"
#include "core/log.hpp"

namespace osb {

namespace {

using self_ptr = snapshots_actor::stateful_pointer<snapshots_state>;

constexpr const char* component = "snapshots";
constexpr auto store_timeout = std::chrono::seconds(30);
/// The sandbox answers at once whether it can be snapshotted.
constexpr auto sandbox_timeout = std::chrono::seconds(10);

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

/// The RUNTIME actor of a Docker host of this node, or an invalid handle.
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

/// Removes the image of a Deleting record, then the record. Calls `done`
/// with the outcome (none = removed).
template <class F>
void remove_image(self_ptr self, const std::string& id, F done) {
  auto x = find(self, id);
  if (x == nullptr)
    return done(caf::error{});
  auto rt = runtime_of(self, x->runtime_host);
  if (!rt)
    return done(make_error(ec::snapshot_image_remove_failed,
                           "DOCKER::SNAPSHOT_IMAGE_REMOVE_FAILED: the Docker "
                           "host '"
                             + x->runtime_host
                             + "' of this snapshot is not configured"));
  self->state.busy[id] = true;
  self->request(rt, caf::infinite, atom::img_remove_v, x->image)
    .then(
      [self, id, done](bool) mutable {
        OSB_INFO(component, "", "", "snapshot " << id << " deleted");
        forget(self, id);
        done(caf::error{});
      },
      [self, id, done](caf::error& err) mutable {
        self->state.busy.erase(id);
        auto f = to_failure(err);
        OSB_WARN(component, "", "",
                 "snapshot " << id << " image not removed (retried later): "
                             << f.message);
        if (f.kind == failure_kind::conflict)
          return done(make_error(ec::snapshot_delete_conflict,
                                 "snapshot image cannot be deleted due to a "
                                 "conflict"));
        if (f.kind == failure_kind::unavailable)
          return done(make_error(ec::runtime_unavailable,
                                 "The container runtime is unavailable: "
                                   + f.message));
        done(make_error(ec::snapshot_image_remove_failed,
                        "DOCKER::SNAPSHOT_IMAGE_REMOVE_FAILED: "
                          + f.message));
      });
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
                     "Recovered snapshot image after server restart.",
                     [] {});
        else if (codec::now_us() - x->created_us > grace)
          transition(self, *x, "Failed", "snapshot_recovery_missing_image",
                     "Snapshot image was not found after server restart.",
                     [] {});
      },
      [self, id](caf::error& err) {
        // The runtime is down: stay Creating, the next tick asks again.
        self->state.busy.erase(id);
        OSB_WARN(component, "", "",
                 "snapshot " << id << " not recovered yet: "
                             << to_failure(err).message);
      });
}

/// Settles every unsettled record that nothing works on right now.
void settle(self_ptr self) {
  std::vector<std::pair<std::string, std::string>> todo;
  for (auto& [id, x] : self->state.records)
    if (self->state.busy.count(id) == 0
        && (x.state == "Deleting" || x.state == "Creating"))
      todo.emplace_back(id, x.state);
  for (auto& [id, state] : todo) {
    if (state == "Deleting")
      remove_image(self, id, [](const caf::error&) {});
    else
      recover_creating(self, id);
  }
}

/// Commits the source container and records the outcome.
void capture(self_ptr self, const std::string& id, const std::string& container,
             sandbox_actor src, std::string rid) {
  auto x = find(self, id);
  auto rt = runtime_of(self, x->runtime_host);
  self->state.busy[id] = true;
  auto begun = std::chrono::steady_clock::now();
  auto tag = id;
  self
    ->request(rt, self->state.init.commit_timeout, atom::commit_v, container,
              std::string{snapshot_repository}, tag)
    .then(
      [self, id, src, rid, begun](std::string& image_id) {
        self->send(src, atom::snap_end_v);
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
        transition(self, *x, "Ready", "snapshot_runtime_ready",
                   "Docker snapshot image created successfully.", [] {});
      },
      [self, id, src, rid](caf::error& err) {
        self->send(src, atom::snap_end_v);
        self->state.busy.erase(id);
        auto x = find(self, id);
        if (x == nullptr)
          return;
        auto f = to_failure(err);
        OSB_ERROR(component, rid, x->sandbox_id,
                  "snapshot " << id << " failed: " << f.message);
        if (f.kind == failure_kind::timeout)
          transition(self, *x, "Failed", "snapshot_runtime_timeout",
                     "Docker snapshot creation timed out after "
                       + std::to_string(self->state.init.commit_timeout.count())
                       + " seconds: " + f.message,
                     [] {});
        else if (f.kind == failure_kind::not_found)
          transition(self, *x, "Failed", "snapshot_runtime_failed",
                     "DOCKER::SANDBOX_NOT_FOUND: the sandbox container is "
                     "gone: "
                       + f.message,
                     [] {});
        else
          transition(self, *x, "Failed", "snapshot_runtime_failed",
                     "Docker snapshot creation failed: " + f.message, [] {});
      });
}

/// Answers a request once the records are loaded.
template <class T, class... Ts>
caf::result<T> after_load(self_ptr self, Ts... xs) {
  auto rp = self->make_response_promise<T>();
  self->state.waiting.push_back(
    [self, rp, xs...]() mutable { rp.delegate(me(self), xs...); });
  return rp;
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
      self->request(src, sandbox_timeout, atom::snapshot_v, rid)
        .then(
          [=](std::string& container) mutable {
            snapshot_view x;
            x.id = codec::make_uuid();
            x.sandbox_id = sandbox_id;
            x.name = name;
            x.state = "Creating";
            x.reason = "snapshot_accepted";
            x.message = "Snapshot creation accepted.";
            x.created_us = codec::now_us();
            x.last_transition_us = x.created_us;
            x.image = std::string{snapshot_repository} + ":" + x.id;
            x.node = self->state.init.node_name;
            x.runtime_host = source.runtime_host;
            self->state.records[x.id] = x;
            self->state.busy[x.id] = true;
            // Durable before the 202: a crash from here on is settled by
            // the next start.
            self->request(self->state.init.store, store_timeout, atom::put_v, x)
              .then(
                [=](bool) mutable {
                  OSB_INFO(component, rid, sandbox_id,
                           "snapshot " << x.id << " accepted");
                  rp.deliver(x);
                  capture(self, x.id, container, src, rid);
                },
                [=](caf::error& err) mutable {
                  self->state.records.erase(x.id);
                  self->state.busy.erase(x.id);
                  self->send(src, atom::snap_end_v);
                  rp.deliver(std::move(err));
                });
          },
          [=](caf::error& err) mutable {
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
      auto rp = self->make_response_promise<bool>();
      auto go = [=]() mutable {
        remove_image(self, id, [=](const caf::error& err) mutable {
          if (err) {
            OSB_WARN(component, rid, "",
                     "snapshot " << id << " delete: "
                                 << to_api_error(err).message);
            rp.deliver(err);
          } else {
            rp.deliver(true);
          }
        });
      };
      if (x->state == "Deleting")
        go();
      else
        transition(self, *x, "Deleting", "snapshot_delete_requested",
                   "Snapshot deletion requested.", go);
      return rp;
    },
    [=](atom::recover) {
      auto& st = self->state;
      self->request(st.init.store, store_timeout, atom::snap_list_v,
                    st.init.node_name)
        .then(
          [self](snapshot_views& xs) {
            auto& st = self->state;
            for (auto& x : xs)
              st.records[x.id] = std::move(x);
            st.loaded = true;
            OSB_INFO(component, "", "",
                     "snapshots loaded " << st.records.size() << " records");
            auto waiting = std::move(st.waiting);
            st.waiting.clear();
            for (auto& f : waiting)
              f();
            settle(self);
            self->delayed_send(self, st.init.retry_interval, atom::tick_v);
          },
          [self](caf::error& err) {
            OSB_ERROR(component, "", "",
                      "snapshots cannot load records (retrying): "
                        << to_api_error(err).message);
            self->delayed_send(self, std::chrono::seconds(2),
                               atom::recover_v);
          });
    },
    [=](atom::tick) {
      settle(self);
      self->delayed_send(self, self->state.init.retry_interval, atom::tick_v);
    },
  };
}

} // namespace osb
