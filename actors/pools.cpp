#include "actors/pools.hpp"

#include "core/server_metrics.hpp"

#include <caf/message.hpp>

#include "actors/error.hpp"
#include "base/log.hpp"
#include "core/pool.hpp"
#include "core/time.hpp"

#include <algorithm>
#include <limits>

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
  // A cluster's status: summed over the up nodes (each counts its own).
  for (auto& [node, pools] : self->state.peers)
    if (auto i = pools.find(r.name); i != pools.end()) {
      result.status.warming += i->second.warming;
      result.status.available += i->second.available;
      result.status.allocated += i->second.allocated;
    }
  return result;
}

/// This node's share of a pool's capacity (the whole one when alone).
pool_capacity share(self_ptr self, const pool_capacity& total) {
  auto& st = self->state;
  if (st.up_nodes.empty())
    return total;
  auto [index, count] = rank_of(st.init.node_name, st.up_nodes);
  return share_of(total, index, count);
}

/// Queues a pool_flush (one at a time): peers learn what this node holds.
void queue_flush(self_ptr self) {
  if (!self->state.init.node || self->state.flush_queued)
    return;
  self->state.flush_queued = true;
  self->send(self, atom::pool_flush_v);
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
        // Every peer stores and applies it too (docs/pools.md "Cluster").
        if (self->state.init.node)
          self->send(self->state.init.node, atom::pool_rep_v,
                     pool_records{next});
        queue_flush(self);
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

/// Checks `tmpl` as a create of it is checked before its 202 (the
/// runtime's `admit`: platform, volumes, secure runtime) on every host of
/// this node, then runs `ok`, or `bad` with the first refusal.
template <class Ok, class Bad>
void admit(self_ptr self, const sandbox_spec& tmpl, size_t i, Ok ok,
           Bad bad) {
  auto& rts = self->state.init.runtimes;
  if (i >= rts.size())
    return ok();
  self->request(rts[i], std::chrono::seconds(30), atom::admit_v, tmpl)
    .then(
      [self, tmpl, i, ok, bad](runtimes::admission& a) mutable {
        // (The runtime bridge answers a refusal as its error already.)
        if (a.refused)
          return bad(make_error(a.refused->code, a.refused->message));
        admit(self, tmpl, i + 1, std::move(ok), std::move(bad));
      },
      [bad](caf::error& err) mutable { bad(err); });
}

// -- members -------------------------------------------------------------------

/// Counts of `name` with its member sets applied.
pool_counts& counted(self_ptr self, const std::string& name) {
  auto& c = self->state.counts[name];
  auto& m = self->state.members[name];
  c.warming = m.creating + static_cast<int64_t>(m.warming.size());
  c.available = static_cast<int64_t>(m.idle.size());
  c.allocated = m.claimed + static_cast<int64_t>(m.handed.size());
  queue_flush(self);
  return c;
}

/// Members being made on this node, all pools together.
int64_t num_making(self_ptr self) {
  int64_t n = 0;
  for (auto& [name, m] : self->state.members)
    n += m.creating + static_cast<int64_t>(m.warming.size());
  return n;
}

void refill(self_ptr self, const std::string& name);

/// Removes member `id` (idle, broken, or of a pool that is gone).
void remove_member(self_ptr self, const std::string& name,
                   const std::string& id, const char* why) {
  OSB_INFO(component, "", id, "pool member of " << name << " removed: " << why);
  if (auto i = self->state.counts.find(name); i != self->state.counts.end())
    ++i->second.num_removed;
  self
    ->request(self->state.init.node, caf::infinite, atom::call_v,
              sandbox_request{id, "pool-" + name + "-remove-" + id,
                              remove_op{}})
    .then([](sandbox_answer&) {},
          [self, id](caf::error& err) {
            // Retried by the next sync, which still lists it.
            OSB_WARN(component, "", id,
                     "pool member removal failed: " << to_string(err));
          });
}

/// Whether `name` is live and still the pool created at `created_us` (a
/// member made for a pool that a peer's record replaced is not its).
bool current(self_ptr self, const std::string& name, int64_t created_us) {
  auto r = live(self, name);
  return r != nullptr && r->created_us == created_us;
}

/// Follows a warming member of the pool created at `created_us` until it
/// is idle (or failed, or of a pool replaced meanwhile: removed).
void watch(self_ptr self, const std::string& name, const std::string& id,
           int64_t created_us) {
  self->request(self->state.init.node, caf::infinite, atom::started_v, id)
    .then(
      [self, name, id, created_us](sandbox_view& v) {
        auto& m = self->state.members[name];
        if (m.warming.count(id) == 0)
          return; // taken over by a sync or removed
        if (v.state == sandbox_state::pending)
          return watch(self, name, id, created_us);
        m.warming.erase(id);
        auto& c = self->state.counts[name];
        if (v.reason == "POOL_MEMBER_IDLE" && current(self, name, created_us)) {
          m.idle.insert(id);
          ++c.num_warmed;
          c.last_error.clear();
          OSB_INFO(component, "", id, "pool member of " << name << " is idle");
        } else {
          if (v.reason != "POOL_MEMBER_IDLE") {
            ++c.num_warm_failures;
            c.last_error = v.message;
          }
          remove_member(self, name, id, "not idle or pool gone");
        }
        counted(self, name);
        refill(self, name);
      },
      [self, name, id](caf::error&) {
        self->state.members[name].warming.erase(id);
        counted(self, name);
      });
}

/// Makes one member of `name` (a sandbox of this node with the template).
void make_member(self_ptr self, const pool_record& r) {
  auto name = r.name;
  auto created_us = r.created_us;
  auto spec = r.tmpl;
  spec.extensions[pool_member_extension] = name;
  ++self->state.members[name].creating;
  self
    ->request(self->state.init.node, caf::infinite, atom::place_v, spec,
              "pool-" + name + "-warm-" + std::to_string(codec::now_us()))
    .then(
      [self, name, created_us](sandbox_view& v) {
        auto& m = self->state.members[name];
        --m.creating;
        m.warming.insert(v.id);
        counted(self, name);
        watch(self, name, v.id, created_us);
      },
      [self, name](caf::error& err) {
        auto& m = self->state.members[name];
        --m.creating;
        auto& c = counted(self, name);
        ++c.num_warm_failures;
        c.last_error = to_api_error(err).message;
        OSB_WARN(component, "", "",
                 "pool " << name << " could not make a member: "
                         << c.last_error << " (retried at the next tick)");
      });
}

/// Applies the refill policy to `name`: makes members (bounded by
/// `warm_concurrency` over all pools) or removes idle ones.
void refill(self_ptr self, const std::string& name) {
  auto& st = self->state;
  if (!st.synced)
    return; // the first sync refills
  auto r = live(self, name);
  auto& m = st.members[name];
  if (r == nullptr) {
    auto idle = std::move(m.idle);
    m.idle.clear();
    for (auto& id : idle)
      remove_member(self, name, id, "pool deleted");
    return;
  }
  // In a cluster, this node's share (docs/pools.md "Cluster").
  auto plan = plan_pool(share(self, r->capacity), counted(self, name));
  for (int64_t i = 0; i < plan.remove && !m.idle.empty(); ++i) {
    auto id = *m.idle.begin();
    m.idle.erase(m.idle.begin());
    remove_member(self, name, id, "above the pool's capacity");
  }
  auto room = st.init.warm_concurrency - num_making(self);
  for (int64_t i = 0; i < std::min(plan.create, room); ++i)
    make_member(self, *r);
  counted(self, name);
}

/// Brings the member sets in line with the node's directory (members
/// recovered after a restart are adopted or, if their pool is gone,
/// removed; members deleted behind our back are dropped), then refills.
void sync(self_ptr self) {
  list_query q;
  q.members = true;
  q.page_size = std::numeric_limits<int32_t>::max();
  self->request(self->state.init.node, caf::infinite, atom::list_v, q)
    .then(
      [self](list_page& page) {
        auto& st = self->state;
        if (page.partial) {
          // The node is still recovering its sandboxes (members among
          // them): decide nothing until it knows them all.
          if (st.init.tick_interval.count() > 0)
            self->delayed_send(self, std::chrono::milliseconds(100),
                               atom::sync_v);
          else
            self->send(self, atom::sync_v);
          return;
        }
        st.synced = true;
        std::map<std::string, std::set<std::string>> listed;
        std::map<std::string, int64_t> claimed;
        for (auto& v : page.items) {
          if (v.member_of.empty()) {
            // Claimed: an ordinary sandbox now, allocated while it exists.
            // One claimed before its pool's create (a deleted pool of the
            // same name) is not this pool's.
            st.members[v.pool].handed.erase(v.id);
            st.members[v.pool].matched.erase(v.id);
            auto r = live(self, v.pool);
            if (r != nullptr && v.state != sandbox_state::terminated
                && v.created_us >= r->created_us)
              ++claimed[v.pool];
            continue;
          }
          auto& name = v.member_of;
          listed[name].insert(v.id);
          auto& m = st.members[name];
          if (m.idle.count(v.id) > 0 || m.warming.count(v.id) > 0
              || m.handed.count(v.id) > 0)
            continue;
          if (live(self, name) == nullptr) {
            remove_member(self, name, v.id, "pool deleted");
          } else if (v.created_us > 0
                     && v.created_us < live(self, name)->created_us) {
            // Made for an earlier pool of the name (deleted and created
            // again on a peer while this node was down): not this one's.
            remove_member(self, name, v.id, "of an earlier pool of the name");
          } else if (v.reason == "POOL_MEMBER_IDLE") {
            OSB_INFO(component, "", v.id,
                     "pool member of " << name << " adopted");
            m.idle.insert(v.id);
          } else if (v.state == sandbox_state::pending) {
            m.warming.insert(v.id);
            watch(self, name, v.id, live(self, name)->created_us);
          }
        }
        for (auto& [name, m] : st.members) {
          auto& ids = listed[name];
          for (auto i = m.idle.begin(); i != m.idle.end();)
            i = ids.count(*i) > 0 ? std::next(i) : m.idle.erase(i);
          for (auto i = m.handed.begin(); i != m.handed.end();)
            i = ids.count(*i) > 0 ? std::next(i) : m.handed.erase(i);
          for (auto i = m.matched.begin(); i != m.matched.end();)
            i = ids.count(*i) > 0 ? std::next(i) : m.matched.erase(i);
          m.claimed = claimed[name];
          counted(self, name);
        }
        for (auto& [name, r] : st.records)
          if (!r.deleted || st.members.count(name) > 0)
            refill(self, name);
      },
      [](caf::error& err) {
        OSB_WARN(component, "", "",
                 "pools cannot list their members: " << to_string(err));
      });
}

/// Applies a peer's record of its pool (one mutation of the name at a
/// time): stored and adopted when it supersedes the record kept (a
/// replayed or older one changes nothing; a tombstone is never undone by an
/// older create). A pool replaced by another of the name (a concurrent
/// create on another node won) loses its idle members.
void apply(self_ptr self, const pool_record& x) {
  auto& st = self->state;
  if (auto i = st.records.find(x.name);
      i != st.records.end() && !supersedes(x, i->second))
    return release(self, x.name);
  self->request(st.init.store, caf::infinite, atom::put_v, x)
    .then(
      [self, x](bool) {
        auto& st = self->state;
        auto before = live(self, x.name);
        auto replaced = before != nullptr && before->created_us != x.created_us;
        auto fresh = before == nullptr || replaced;
        st.records[x.name] = x;
        if (x.deleted) {
          st.counts.erase(x.name);
        } else if (fresh) {
          st.counts[x.name] = pool_counts{};
          st.members[x.name].claimed = 0;
        }
        OSB_INFO(component, "", "",
                 "pool " << x.name << (x.deleted ? " deleted" : " replicated")
                         << " from node " << x.origin << " (generation "
                         << x.generation << ")");
        if (replaced) {
          auto& m = st.members[x.name];
          auto idle = std::move(m.idle);
          m.idle.clear();
          for (auto& id : idle)
            remove_member(self, x.name, id, "pool replaced by a peer's");
        }
        if (st.init.node)
          refill(self, x.name);
        queue_flush(self);
        release(self, x.name);
      },
      [self, name = x.name](caf::error& err) {
        // The peer sends it again at the next join.
        OSB_ERROR(component, "", "",
                  "pool " << name << " from a peer not stored: "
                          << to_string(err));
        release(self, name);
      });
}

/// Tells the NODE actor (for its peers) what this node holds of each live
/// pool, when that changed since the last time.
void flush(self_ptr self) {
  auto& st = self->state;
  st.flush_queued = false;
  if (!st.init.node)
    return;
  pool_tallies now;
  for (auto& [name, r] : st.records) {
    if (r.deleted)
      continue;
    auto& c = st.counts[name];
    now.push_back(pool_tally{name, c.warming, c.available, c.allocated});
  }
  if (now == st.published)
    return;
  st.published = now;
  self->send(st.init.node, atom::pool_load_v, std::move(now));
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
            if (st.init.node) {
              // Peers learn what this store holds (changes made while
              // they were away); they keep what supersedes theirs.
              pool_records all;
              for (auto& [name, r] : st.records)
                all.push_back(r);
              if (!all.empty())
                self->send(st.init.node, atom::pool_rep_v, std::move(all));
              sync(self);
              if (st.init.tick_interval.count() > 0)
                self->delayed_send(self, st.init.tick_interval, atom::tick_v);
            }
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
            auto refused = [=](const caf::error& err) {
              bad(err);
              release(self, x.name);
            };
            admit(self, next.tmpl, 0, [=]() mutable {
            commit(
              self, std::move(next),
              [=](const pool_record& r) {
                auto& c = self->state.counts[r.name];
                c = pool_counts{};
                // Sandboxes claimed from an earlier pool of the name are
                // not this one's (the next sync counts from the store).
                self->state.members[r.name].claimed = 0;
                OSB_INFO(component, rid, "", "pool " << r.name << " created");
                ok(view_of(self, r));
                if (self->state.init.node)
                  refill(self, r.name);
              },
              bad);
            }, refused);
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
            // The template again: the host or the configuration (e.g. the
            // volume allow list) may have changed since the create.
            auto refused = [=](const caf::error& err) {
              bad(err);
              release(self, name);
            };
            admit(self, next.tmpl, 0, [=]() mutable {
            commit(
              self, std::move(next),
              [=](const pool_record& r) {
                ok(view_of(self, r));
                if (self->state.init.node)
                  refill(self, r.name);
              },
              bad);
            }, refused);
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
                // Idle members go now, warming ones once they are made.
                if (self->state.init.node)
                  refill(self, name);
              },
              bad);
          });
        });
      });
    },
    [=](atom::claim, const std::string& name, bool may_forward)
      -> caf::result<pool_record, std::string, std::string> {
      if (!self->state.loaded)
        return make_error(ec::runtime_unavailable,
                          "The pools of this node are still loading.");
      auto r = live(self, name);
      if (r == nullptr)
        return not_found(name);
      auto& c = self->state.counts[name];
      auto& m = self->state.members[name];
      std::string id;
      std::string peer;
      if (m.idle.empty() && may_forward) {
        // A peer with an idle member serves it (one hop; its counts are
        // a second old at most: with none left there, it creates cold).
        std::map<std::string, int64_t> idle;
        for (auto& [node, pools] : self->state.peers)
          if (auto i = pools.find(name); i != pools.end())
            idle[node] = i->second.available;
        peer = pick_peer(idle);
      }
      if (!peer.empty()) {
        // Until the peer says again: so that claims at once spread.
        --self->state.peers[peer][name].available;
        ++c.num_forwarded;
      } else if (m.idle.empty()) {
        // None idle: the create runs the template cold.
        ++c.num_claims;
        ++c.num_cold;
        ops_metrics().pool_claims.with({"cold"}).inc();
      } else {
        ++c.num_claims;
        id = *m.idle.begin();
        m.idle.erase(m.idle.begin());
        m.handed.insert(id);
        ops_metrics().pool_claims.with({"warm"}).inc();
      }
      auto record = *r;
      if (self->state.init.node)
        refill(self, name);
      return caf::result<pool_record, std::string, std::string>(
        std::move(record), std::move(id), std::move(peer));
    },
    [=](atom::claim,
        const sandbox_spec& spec) -> caf::result<pool_record, std::string> {
      using answer = caf::result<pool_record, std::string>;
      if (!self->state.loaded)
        return answer(pool_record{}, std::string{});
      // The first pool by name that serves the request and has an idle
      // member; pools without one are not waited for.
      for (auto& [name, r] : self->state.records) {
        if (r.deleted || !pool_serves(r.tmpl, spec))
          continue;
        auto& m = self->state.members[name];
        if (m.idle.empty())
          continue;
        auto id = *m.idle.begin();
        m.idle.erase(m.idle.begin());
        m.handed.insert(id);
        m.matched.insert(id);
        ++self->state.counts[name].num_claims;
        ++self->state.counts[name].num_matched;
        ops_metrics().pool_claims.with({"warm"}).inc();
        auto record = r;
        if (self->state.init.node)
          refill(self, name);
        return answer(std::move(record), std::move(id));
      }
      return answer(pool_record{}, std::string{});
    },
    [=](atom::forget, const std::string& name, const std::string& id) {
      // The member removes itself; the claim went on cold.
      OSB_WARN(component, "", id,
               "pool member of " << name << " could not be claimed");
      // (The metric counted this create as warm already: counted once.)
      auto& m = self->state.members[name];
      // A matched create goes on as an ordinary create, no pool's.
      if (m.matched.erase(id) == 0)
        ++self->state.counts[name].num_cold;
      m.handed.erase(id);
      counted(self, name);
    },
    [=](atom::pool_rep, pool_records& xs) {
      for (auto& x : xs)
        when_loaded(self, [=] {
          when_free(self, x.name, [=] { apply(self, x); });
        });
    },
    [=](atom::members, std::vector<std::string>& up) {
      auto& st = self->state;
      // Alone again: the whole capacity (no share).
      st.up_nodes = up.size() <= 1 ? std::vector<std::string>{} : up;
      for (auto i = st.peers.begin(); i != st.peers.end();)
        i = std::find(up.begin(), up.end(), i->first) == up.end()
              ? st.peers.erase(i)
              : std::next(i);
      // Shares change: a lost node's share is taken over, a returning
      // node's shrinks the others' (idle members only go).
      for (auto& [name, r] : st.records)
        if (!r.deleted)
          refill(self, name);
      // A new peer learns what this node holds.
      st.published.clear();
      queue_flush(self);
    },
    [=](atom::pool_load, std::string& node, pool_tallies& xs) {
      // (It may come before the membership update that adds the peer:
      // a joined node sends it with its join answer.)
      auto& pools = self->state.peers[node];
      pools.clear();
      for (auto& x : xs)
        pools[x.name] = x;
    },
    [=](atom::pool_flush) { flush(self); },
    [=](atom::sync) { sync(self); },
    [=](atom::tick) {
      sync(self);
      if (++self->state.num_ticks % 5 == 0) {
        self->state.published.clear();
        queue_flush(self);
      }
      if (self->state.init.tick_interval.count() > 0)
        self->delayed_send(self, self->state.init.tick_interval, atom::tick_v);
    },
  };
}

} // namespace osb
