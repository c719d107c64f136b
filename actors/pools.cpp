#include "actors/pools.hpp"

#include "core/server_metrics.hpp"

#include <caf/message.hpp>

#include "actors/error.hpp"
#include "base/log.hpp"
#include "core/time.hpp"

namespace osb {

namespace {

using self_ptr = pools_actor::stateful_pointer<pools_state>;

constexpr const char* component = "pools";

caf::error not_found(const std::string& name) {
  return make_error(ec::pool_not_found, "Pool '" + name + "' not found.");
}

/// The live record of `name`, or null (absent or deleted).
const pool_record* live(self_ptr self, const std::string& name) {
  auto i = self->state.records.find(name);
  if (i == self->state.records.end() || i->second.deleted)
    return nullptr;
  return &i->second;
}

pool_view view_of(self_ptr self, const pool_record& r) {
  pool_view result;
  result.record = r;
  result.status = self->state.counts[r.name];
  return result;
}

/// Identifies one mutation: operation, pool, request id and content (one
/// X-Request-ID with another body is another request).
template <class... Ts>
std::string replay_key(const char* op, const std::string& rid,
                       const Ts&... args) {
  auto content = caf::to_string(caf::make_message(args...));
  return std::string{op} + '\n' + rid + '\n'
         + std::to_string(std::hash<std::string>{}(content));
}

/// Runs `f` now if the records are loaded, else once they are.
template <class F>
void when_loaded(self_ptr self, F f) {
  if (self->state.loaded)
    f();
  else
    self->state.waiting.emplace_back(std::move(f));
}

/// Runs `f` once no other mutation of `name` is being written.
template <class F>
void when_free(self_ptr self, const std::string& name, F f) {
  auto i = self->state.busy.find(name);
  if (i == self->state.busy.end()) {
    self->state.busy[name];
    f();
  } else {
    i->second.emplace_back(std::move(f));
  }
}

/// Ends the mutation of `name` under way and starts the next one.
void release(self_ptr self, const std::string& name) {
  auto i = self->state.busy.find(name);
  if (i == self->state.busy.end())
    return;
  if (i->second.empty()) {
    self->state.busy.erase(i);
    return;
  }
  auto next = std::move(i->second.front());
  i->second.erase(i->second.begin());
  next();
}

/// Writes `next` (a new version of its pool) to the store, then adopts it
/// and answers `done` (or the store's error to `failed`).
template <class Done, class Failed>
void commit(self_ptr self, pool_record next, Done done, Failed failed) {
  self->request(self->state.init.store, caf::infinite, atom::put_v, next)
    .then(
      [self, next, done](bool) mutable {
        auto name = next.name;
        self->state.records[name] = next;
        if (next.deleted)
          self->state.counts.erase(name);
        done(next);
        release(self, name);
      },
      [self, name = next.name, failed](caf::error& err) mutable {
        failed(err);
        release(self, name);
      });
}

/// Runs a mutation at most once per request (see replay_key).
template <class T, class Run>
caf::result<T> once(self_ptr self, replay_table<T>& table,
                    const std::string& key, Run run) {
  if (auto x = table.find(key))
    return *x;
  auto rp = self->make_response_promise<T>();
  if (table.wait(key, rp))
    run([&table, key](const T& x) { table.succeed(key, x); },
        [&table, key](const caf::error& err) { table.fail(key, err); });
  return rp;
}

} // namespace

pools_actor::behavior_type pools(self_ptr self, pools_init init) {
  self->state.init = std::move(init);
  self->send(self, atom::recover_v);
  return {
    [=](atom::recover) {
      self->request(self->state.init.store, caf::infinite, atom::pool_list_v)
        .then(
          [=](pool_records& xs) {
            auto& st = self->state;
            for (auto& x : xs)
              st.records[x.name] = std::move(x);
            st.loaded = true;
            OSB_INFO(component, "", "",
                     "loaded " << st.records.size() << " pool records");
            auto waiting = std::move(st.waiting);
            for (auto& f : waiting)
              f();
          },
          [=](caf::error& err) {
            OSB_ERROR(component, "", "",
                      "cannot load the pools: " << to_string(err)
                                                << "; retrying");
            self->delayed_send(self, std::chrono::seconds(1),
                               atom::recover_v);
          });
    },
    [=](atom::pool_new, pool_record& x,
        std::string& rid) -> caf::result<pool_view> {
      auto key = replay_key("create", rid, x);
      return once(self, self->state.view_replays, key,
                  [=](auto ok, auto bad) {
        when_loaded(self, [=] {
          when_free(self, x.name, [=] {
            if (live(self, x.name) != nullptr) {
              bad(make_error(ec::pool_already_exists,
                             "Pool '" + x.name + "' already exists."));
              return release(self, x.name);
            }
            auto next = x;
            auto now = codec::now_us();
            next.created_us = now;
            next.updated_us = now;
            next.origin = self->state.init.node_name;
            next.deleted = false;
            // A tombstone's generation goes on, so that no node's older
            // record of the name wins over the new pool.
            auto i = self->state.records.find(x.name);
            next.generation
              = i == self->state.records.end() ? 1 : i->second.generation + 1;
            commit(
              self, std::move(next),
              [=](const pool_record& r) {
                auto& c = self->state.counts[r.name];
                c = pool_counts{};
                OSB_INFO(component, rid, "", "pool " << r.name << " created");
                ok(view_of(self, r));
              },
              bad);
          });
        });
      });
    },
    [=](atom::pool_get, std::string& name) -> caf::result<pool_view> {
      // Answered synchronously once loaded (a promise delivered inside its
      // own handler crashed CAF 0.17 here; see docs/pools.md).
      if (self->state.loaded) {
        if (auto r = live(self, name))
          return view_of(self, *r);
        return not_found(name);
      }
      auto rp = self->make_response_promise<pool_view>();
      when_loaded(self, [=]() mutable {
        if (auto r = live(self, name))
          rp.deliver(view_of(self, *r));
        else
          rp.deliver(not_found(name));
      });
      return rp;
    },
    [=](atom::pool_list) -> caf::result<pool_views> {
      auto list = [=] {
        pool_views result;
        for (auto& [name, r] : self->state.records)
          if (!r.deleted)
            result.push_back(view_of(self, r));
        return result;
      };
      if (self->state.loaded)
        return list();
      auto rp = self->make_response_promise<pool_views>();
      when_loaded(self, [=]() mutable { rp.deliver(list()); });
      return rp;
    },
    [=](atom::pool_put, std::string& name, pool_capacity& cap,
        std::string& rid) -> caf::result<pool_view> {
      auto key = replay_key("update", rid, name, cap);
      return once(self, self->state.view_replays, key,
                  [=](auto ok, auto bad) {
        when_loaded(self, [=] {
          when_free(self, name, [=] {
            auto r = live(self, name);
            if (r == nullptr) {
              bad(not_found(name));
              return release(self, name);
            }
            auto next = *r;
            next.capacity = cap;
            next.generation += 1;
            next.updated_us = codec::now_us();
            next.origin = self->state.init.node_name;
            commit(
              self, std::move(next),
              [=](const pool_record& r) { ok(view_of(self, r)); }, bad);
          });
        });
      });
    },
    [=](atom::pool_del, std::string& name,
        std::string& rid) -> caf::result<bool> {
      auto key = replay_key("delete", rid, name);
      return once(self, self->state.removal_replays, key,
                  [=](auto ok, auto bad) {
        when_loaded(self, [=] {
          when_free(self, name, [=] {
            auto r = live(self, name);
            if (r == nullptr) {
              bad(not_found(name));
              return release(self, name);
            }
            auto next = *r;
            next.deleted = true;
            next.generation += 1;
            next.updated_us = codec::now_us();
            next.origin = self->state.init.node_name;
            commit(
              self, std::move(next),
              [=](const pool_record&) {
                OSB_INFO(component, rid, "", "pool " << name << " deleted");
                ok(true);
              },
              bad);
          });
        });
      });
    },
    [=](atom::claim, const std::string& name) -> caf::result<pool_record> {
      if (!self->state.loaded)
        return make_error(ec::runtime_unavailable,
                          "The pools of this node are still loading.");
      auto r = live(self, name);
      if (r == nullptr)
        return not_found(name);
      // No member is pre-provisioned yet: the create runs the template
      // cold (docs/pools.md).
      auto& c = self->state.counts[name];
      ++c.num_claims;
      ++c.num_cold;
      ops_metrics().pool_claims.with({"cold"}).inc();
      return *r;
    },
  };
}

} // namespace osb
