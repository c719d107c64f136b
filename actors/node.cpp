#include "actors/node.hpp"

#include <caf/make_message.hpp>

#include <caf/actor_cast.hpp>
#include <caf/system_messages.hpp>

#include "actors/error.hpp"
#include "actors/node_detail.hpp"
#include "actors/node_snapshots.hpp"
#include "core/ids.hpp"
#include "core/spec_json.hpp"
#include "core/time.hpp"
#include "base/log.hpp"

namespace osb {

namespace node_detail {

/// The supervisor that takes a create on this node: the one of `host`, or
/// the least loaded one when `host` is empty.
caf::expected<supervisor_actor> pick_supervisor(self_ptr self,
                                                const std::string& host) {
  auto& st = self->state;
  if (st.supervisors.empty())
    return make_error(ec::runtime_unavailable,
                      "No container runtime is configured on this node.");
  if (st.init.max_sandboxes > 0
      && st.num_owned[self_name(self)] >= st.init.max_sandboxes)
    return make_error(ec::capacity_exhausted,
                      "Node '" + self_name(self) + "' is at capacity ("
                        + std::to_string(st.init.max_sandboxes)
                        + " sandboxes).");
  if (!host.empty()) {
    for (auto& x : st.supervisors)
      if (x.second == host)
        return x.first;
    return make_error(ec::snapshot_invalid_restore_config,
                      "The Docker host '" + host
                        + "' of the snapshot is not configured on node '"
                        + self_name(self) + "'.");
  }
  // The runtime host with the fewest of this node's sandboxes.
  auto best = &st.supervisors.front();
  for (auto& x : st.supervisors)
    if (st.num_on_host[x.second] < st.num_on_host[best->second])
      best = &x;
  return best->first;
}

} // namespace node_detail

namespace {

using namespace node_detail;

constexpr const char* component = "node";
/// Reads routed to a peer; a frozen peer answers 503 after this.
constexpr auto remote_read_timeout = std::chrono::seconds(5);
/// Mutations routed to a peer (they wait for Docker there).
constexpr auto remote_write_timeout = std::chrono::seconds(60);

caf::error unavailable(const std::string& node, const std::string& id) {
  return make_error(ec::node_unavailable,
                    "Sandbox " + id + " lives on node '" + node
                      + "', which is unavailable.");
}

/// Returns the peer that owns `e`, or nullptr when it is this node.
node_state::member* owner_of(self_ptr self, const node_state::entry& e) {
  if (e.view.node == self_name(self))
    return nullptr;
  auto i = self->state.members.find(e.view.node);
  return i == self->state.members.end() ? nullptr : &i->second;
}

/// Routes a request for one sandbox to its owner: the local SANDBOX actor,
/// or the owning peer's NODE actor (one hop), or 503 when that peer is down.
/// `view_only`: the local part needs only the directory's view, no actor.
template <class Result, class Local, class Remote>
caf::result<Result> route(self_ptr self, const std::string& id, Local local,
                          Remote remote, bool view_only = false) {
  auto e = find_entry(self, id);
  if (e == nullptr)
    return unknown_sandbox(self, id);
  if (e->view.node == self_name(self)) {
    if (!e->hdl && !view_only) // shown from the store, Docker host down
      return make_error(ec::runtime_unavailable, e->view.message);
    return local(*e);
  }
  auto m = owner_of(self, *e);
  if (m == nullptr || !m->up)
    return unavailable(e->view.node, id);
  return remote(*m);
}

/// A mutation reached `owner`, whose answer never came: it may have been
/// applied there.
caf::error outcome_unknown(const std::string& owner, const std::string& id,
                           const caf::error& err) {
  auto what = id.empty() ? std::string{"the request"} : "sandbox " + id;
  return make_error(
    ec::outcome_unknown,
    "Node '" + owner + "' did not answer ("
      + (err == caf::sec::request_timeout ? "timed out" : "connection lost")
      + "); the request may still be applied there. GET " + what
      + " to see its current state; a retry with the same X-Request-ID is "
        "applied at most once.");
}

/// Forwards to a peer with a bounded wait; a timeout means the peer froze.
/// A read that got no answer is a 503 (`unavailable`); a mutation that got
/// none may have happened: 504 `outcome_unknown`.
template <class Result, class... Ts>
caf::result<Result> forward(self_ptr self, node_state::member& m,
                            caf::timespan timeout, const std::string& id,
                            bool mutation, Ts... xs) {
  auto rp = self->make_response_promise<Result>();
  auto owner = m.info.name;
  auto fail = [rp, owner, id, mutation](const caf::error& err) mutable {
    if (err != caf::sec::request_timeout
        && err != caf::sec::request_receiver_down)
      rp.deliver(err);
    else if (mutation)
      rp.deliver(outcome_unknown(owner, id, err));
    else
      rp.deliver(unavailable(owner, id));
  };
  auto n = ++self->state.num_forwarded;
  m.in_flight.emplace(n, fail);
  // Whichever comes first answers: the peer, its loss, or the timeout.
  auto done = [self, owner, n] {
    auto i = self->state.members.find(owner);
    if (i == self->state.members.end())
      return false;
    return i->second.in_flight.erase(n) > 0;
  };
  self->request(m.hdl, timeout, xs...)
    .then(
      [rp, done](Result& x) mutable {
        if (done())
          rp.deliver(std::move(x));
      },
      [fail, done](caf::error& err) mutable {
        if (done())
          fail(err);
      });
  return rp;
}

/// The NODE actor's own handle (for self-requests).
node_actor me(self_ptr self) {
  return caf::actor_cast<node_actor>(self);
}

/// Identifies one request: its operation, sandbox, request id and content
/// (so that a client that sends one X-Request-ID with different requests
/// does not get one request's answer for another).
template <class... Ts>
std::string replay_key(const char* op, const std::string& id,
                       const std::string& rid, const Ts&... args) {
  auto content = caf::to_string(caf::make_message(args...));
  return std::string{op} + '\n' + id + '\n' + rid + '\n'
         + std::to_string(std::hash<std::string>{}(content));
}

/// Runs the mutation `run()` (a request to this actor's INTERNAL handler)
/// at most once per request (see replay_key): a retry joins the attempt in
/// flight, or gets its answer while it is the sandbox's last change.
template <class T, class Run>
caf::result<T> once(self_ptr self, replay_table<T>& table, std::string key,
                    const std::string& id, Run run) {
  auto& last = self->state.last_mutation;
  if (auto x = table.find(key)) {
    auto i = last.find(id);
    if (id.empty() || (i != last.end() && i->second == key))
      return *x;
  }
  auto rp = self->make_response_promise<T>();
  if (!table.wait(key, rp))
    return rp;
  run().then(
    [self, &table, key, id](T& x) {
      if (!id.empty()) {
        auto& last = self->state.last_mutation;
        // Bounded without bookkeeping: deleted sandboxes leave entries.
        if (last.size() > 65536)
          last.clear();
        last[id] = key;
      }
      table.succeed(key, x);
    },
    [&table, key](caf::error& err) { table.fail(key, err); });
  return rp;
}

/// Routes an operation on one sandbox without knowing it: to the SANDBOX
/// actor when this node owns it, else to the owning peer's NODE actor (one
/// hop, bounded by the op's traits: a slow op waits 60 s, a read 5 s).
caf::result<sandbox_answer> route_call(self_ptr self,
                                       const sandbox_request& req) {
  auto& t = traits_of(req.op);
  return route<sandbox_answer>(
    self, req.id,
    [=](node_state::entry& e) -> caf::result<sandbox_answer> {
      return self->delegate(e.hdl, atom::call_v, req.op, req.rid);
    },
    [=, &t](node_state::member& m) {
      return forward<sandbox_answer>(
        self, m, t.slow ? remote_write_timeout : remote_read_timeout, req.id,
        t.mutation, atom::call_v, req);
    });
}

/// Creates on this node: the least loaded supervisor takes it.
caf::result<sandbox_view> create_here(self_ptr self, sandbox_spec spec,
                                      std::string rid) {
  auto sup = pick_supervisor(self, {});
  if (!sup)
    return std::move(sup.error());
  return self->delegate(*sup, atom::create_v, codec::make_uuid(),
                        std::move(spec), std::move(rid));
}

// -- pools --------------------------------------------------------------------

caf::error pools_unavailable() {
  return make_error(ec::not_implemented,
                    "Pools are not available on this server.");
}

/// A create that names a pool (`extensions.poolRef`): the POOLS actor
/// hands out the pool's record and an idle member of this node, or names a
/// peer that has one (`may_forward`: not for a claim a peer forwarded
/// here), which then serves the claim (one hop); with neither, the create
/// goes on with the template and the claim's own fields (core/pool.hpp
/// `merge_claim`), marked so that its sandbox says it was served cold.
caf::result<sandbox_view> claim(self_ptr self, const std::string& pool,
                                sandbox_spec spec, std::string rid,
                                bool may_forward) {
  if (!self->state.pools)
    return pools_unavailable();
  auto rp = self->make_response_promise<sandbox_view>();
  self
    ->request(self->state.pools, caf::infinite, atom::claim_v, pool,
              may_forward)
    .then(
      [=](pool_record& r, std::string& member, std::string& peer) mutable {
        auto merged = merge_claim(r.tmpl, spec);
        merged.extensions.erase("poolRef");
        auto cold = [=](sandbox_spec merged) mutable {
          merged.extensions[pool_cold_extension] = r.name;
          rp.delegate(me(self), atom::internal_v, atom::create_v,
                      std::move(merged), rid);
        };
        if (!peer.empty()) {
          // The sandbox is the peer's; a claim it refused (e.g. it does
          // not know the pool yet) goes on cold here, one that may have
          // happened there (no answer) is the caller's 504.
          self
            ->request(me(self), caf::infinite, atom::internal_v,
                      atom::claim_v, peer, pool, spec, rid)
            .then([=](sandbox_view& v) mutable { rp.deliver(std::move(v)); },
                  [=](caf::error& err) mutable {
                    auto e = to_api_error(err);
                    if (e.code == to_api_error(make_error(ec::outcome_unknown,
                                                          ""))
                                    .code)
                      return rp.deliver(std::move(err));
                    OSB_WARN(component, rid, "",
                             "claim of pool " << pool << " on node " << peer
                                              << " failed (" << e.message
                                              << "); creating cold");
                    cold(std::move(merged));
                  });
          return;
        }
        if (member.empty())
          return cold(std::move(merged));
        // Warm: the member's sandbox actor starts the claim's entrypoint
        // and answers once the claimed sandbox is durable.
        self
          ->request(me(self), caf::infinite, atom::internal_v, atom::claim_v,
                    member, merged, rid)
          .then([=](sandbox_view& v) mutable { rp.deliver(std::move(v)); },
                [=](caf::error& err) mutable {
                  OSB_WARN(component, rid, member,
                           "warm claim failed ("
                             << to_api_error(err).message
                             << "); creating cold");
                  self->send(self->state.pools, atom::forget_v, r.name,
                             member);
                  cold(std::move(merged));
                });
      },
      [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

/// A create without `poolRef` under `[pool] match_creates`: the POOLS actor
/// answers an idle member of a pool whose template serves the request as
/// it is (core/pool.hpp `pool_serves`); the member is claimed with the
/// request's own spec. With none (or when the claim fails) the create is
/// placed as usual.
caf::result<sandbox_view> match(self_ptr self, sandbox_spec spec,
                                std::string rid) {
  auto rp = self->make_response_promise<sandbox_view>();
  auto usual = [=](sandbox_spec spec) mutable {
    spec.extensions[pool_unmatched_extension] = "1";
    rp.delegate(me(self), atom::internal_v, atom::create_v, std::move(spec),
                rid);
  };
  self->request(self->state.pools, caf::infinite, atom::claim_v, spec)
    .then(
      [=](pool_record& r, std::string& member) mutable {
        if (member.empty())
          return usual(std::move(spec));
        self
          ->request(me(self), caf::infinite, atom::internal_v, atom::claim_v,
                    member, spec, rid)
          .then([=](sandbox_view& v) mutable { rp.deliver(std::move(v)); },
                [=](caf::error& err) mutable {
                  OSB_WARN(component, rid, member,
                           "matched warm claim failed ("
                             << to_api_error(err).message
                             << "); creating as usual");
                  self->send(self->state.pools, atom::forget_v, r.name,
                             member);
                  usual(std::move(spec));
                });
      },
      [=](caf::error&) mutable { usual(std::move(spec)); });
  return rp;
}

} // namespace

node_actor::behavior_type node(node_actor::stateful_pointer<node_state> self,
                               node_init init) {
  self->state.init = std::move(init);
  self->set_down_handler([self](const caf::down_msg& msg) {
    // A connection lost during a join (e.g. two nodes that dialed each
    // other at once: CAF closes both as redundant) leaves the join request
    // unanswered; retry at the next tick instead of at its timeout.
    if (auto i = self->state.joining.find(msg.source);
        i != self->state.joining.end()) {
      OSB_DEBUG(component, "", "",
                "node " << self_name(self) << " lost the connection to "
                        << i->second << " while joining; retrying");
      self->state.connecting.erase(i->second);
      self->state.joining.erase(i);
    }
    for (auto& [name, m] : self->state.members) {
      if (m.hdl && m.hdl.address() == msg.source && m.up) {
        m.up = false;
        m.since_us = codec::now_us();
        auto in_flight = std::move(m.in_flight);
        m.in_flight.clear();
        for (auto& [n, fail] : in_flight)
          fail(caf::sec::request_receiver_down);
        OSB_WARN(component, "", "",
                 "node " << self_name(self) << " lost peer " << name
                         << " at " << m.info.address << " ("
                         << to_string(msg.reason) << "); its "
                         << self->state.num_owned[name]
                         << " sandboxes answer 503 until it returns");
        // Its share of each pool is taken over by the others.
        pools_members_changed(self);
      }
    }
  });
  {
    // Without a cluster there is no peer to wait for; with one, the seeds
    // (and whom they name) must join first, for at most the seed timeout.
    auto& st = self->state;
    st.settled = !st.init.clustered;
    for (auto& a : st.init.seeds)
      st.seeds.insert(a);
    if (st.init.clustered) {
      if (st.init.reconnect_interval.count() > 0)
        self->delayed_send(self, st.init.reconnect_interval, atom::tick_v);
      check_membership(self);
      if (!st.settled)
        self->delayed_send(self, st.init.seed_timeout, atom::settle_v);
    }
  }
  return {
    [=](atom::create, sandbox_spec& spec,
        std::string& rid) -> caf::result<sandbox_view> {
      auto key = replay_key("create", {}, rid, spec);
      return once(self, self->state.view_replays, key, {}, [=] {
        return self->request(me(self), caf::infinite, atom::internal_v,
                             atom::create_v, spec, rid);
      });
    },
    [=](atom::internal, atom::create, sandbox_spec& spec,
        std::string& rid) -> caf::result<sandbox_view> {
      // Placement: the node owning the fewest sandboxes, but a create stays
      // on the receiving node unless it is ahead by more than one: a hop
      // costs more than a small imbalance (measured in bench/).
      auto& st = self->state;
      auto cap = st.init.max_sandboxes;
      auto local_load = st.num_owned[self_name(self)];
      bool local_ok = !st.supervisors.empty()
                      && (cap == 0 || local_load < cap);
      node_state::member* best = nullptr;
      auto best_load = INT64_MAX;
      for (auto& [name, m] : st.members) {
        auto load = st.num_owned[name];
        auto peer_cap = m.info.max_sandboxes;
        if (m.up && (peer_cap == 0 || load < peer_cap) && load < best_load) {
          best = &m;
          best_load = load;
        }
      }
      if (!spec.snapshot_id.empty())
        return restore(self, std::move(spec), std::move(rid), true);
      if (auto pool = pool_ref(spec); !pool.empty())
        return claim(self, pool, std::move(spec), std::move(rid), true);
      if (spec.extensions.erase(pool_unmatched_extension) == 0
          && st.init.match_creates && st.pools
          && spec.extensions.count(pool_cold_extension) == 0)
        return match(self, std::move(spec), std::move(rid));
      if (local_ok && (best == nullptr || local_load <= best_load + 1))
        best = nullptr;
      if (best == nullptr)
        return create_here(self, std::move(spec), std::move(rid));
      return forward<sandbox_view>(self, *best, remote_create_timeout,
                                   std::string{}, true, atom::place_v,
                                   std::move(spec), std::move(rid));
    },
    [=](atom::place, sandbox_spec& spec,
        std::string& rid) -> caf::result<sandbox_view> {
      if (!spec.snapshot_id.empty())
        return restore(self, std::move(spec), std::move(rid), false);
      return create_here(self, std::move(spec), std::move(rid));
    },
    [=](atom::snapshot, std::string& id, std::string& name,
        std::string& rid) -> caf::result<snapshot_view> {
      auto key = replay_key("snapshot", id, rid, name);
      return once(self, self->state.snapshot_replays, key, id, [=] {
        return self->request(me(self), caf::infinite, atom::internal_v,
                             atom::snapshot_v, id, name, rid);
      });
    },
    [=](atom::internal, atom::snapshot, std::string& id, std::string& name,
        std::string& rid) -> caf::result<snapshot_view> {
      return route<snapshot_view>(
        self, id,
        [=](node_state::entry& e) -> caf::result<snapshot_view> {
          if (e.view.state != sandbox_state::running)
            return make_error(ec::snapshot_invalid_source_state,
                              "Snapshot can only be created from a Running "
                              "sandbox.");
          if (!self->state.snapshots)
            return make_error(ec::not_implemented,
                              "Snapshots are not available on this node.");
          return self->delegate(self->state.snapshots, atom::create_v, e.hdl,
                                e.view, name, rid);
        },
        [=](node_state::member& m) {
          return forward<snapshot_view>(self, m, remote_write_timeout, id,
                                        true, atom::snapshot_v, id, name,
                                        rid);
        });
    },
    [=](atom::snap_get, std::string& id) -> caf::result<snapshot_view> {
      return ask_everywhere<snapshot_view>(
        self, id,
        [=] {
          return self->request(self->state.snapshots, caf::infinite,
                               atom::get_v, id);
        },
        [=](node_actor& peer) {
          return self->request(peer, remote_read_timeout, atom::local_v,
                               atom::snap_get_v, id);
        });
    },
    [=](atom::snap_del, std::string& id,
        std::string& rid) -> caf::result<bool> {
      return ask_everywhere<bool>(
        self, id,
        [=] {
          return self->request(self->state.snapshots, caf::infinite,
                               atom::remove_v, id, rid);
        },
        [=](node_actor& peer) {
          return self->request(peer, remote_write_timeout, atom::local_v,
                               atom::snap_del_v, id, rid);
        });
    },
    [=](atom::snap_list, snapshot_query& q) -> caf::result<snapshot_page> {
      // This node's snapshots, then every reachable peer's, merged; a peer
      // that does not answer is left out (and logged).
      struct gather {
        caf::typed_response_promise<snapshot_page> rp;
        snapshot_query q;
        snapshot_views all;
        size_t pending = 0;
      };
      auto g = std::make_shared<gather>();
      g->rp = self->make_response_promise<snapshot_page>();
      g->q = q;
      auto finish = [g] {
        if (--g->pending > 0)
          return;
        std::vector<const snapshot_view*> xs;
        xs.reserve(g->all.size());
        for (auto& x : g->all)
          xs.push_back(&x);
        snapshot_page page;
        page.page = g->q.page;
        page.page_size = g->q.page_size;
        page.total_items = paginate_into(std::move(xs), g->q.page,
                                         g->q.page_size, page.items);
        g->rp.deliver(std::move(page));
      };
      auto add = [g, finish](snapshot_views& xs) {
        for (auto& x : xs)
          g->all.push_back(std::move(x));
        finish();
      };
      g->pending = 1;
      for (auto& [name, m] : self->state.members) {
        if (!m.up)
          continue;
        ++g->pending;
        self->request(m.hdl, remote_read_timeout, atom::local_v,
                      atom::snap_list_v, q)
          .then(add, [finish, name = name](caf::error& err) {
            OSB_WARN(component, "", "",
                     "snapshot list misses node " << name << ": "
                                                  << to_string(err));
            finish();
          });
      }
      if (self->state.snapshots) {
        ++g->pending;
        self->request(self->state.snapshots, caf::infinite, atom::list_v, q)
          .then(add, [finish](caf::error& err) {
            OSB_ERROR(component, "", "",
                      "snapshot list failed locally: " << to_string(err));
            finish();
          });
      }
      finish();
      return g->rp;
    },
    [=](atom::local, atom::snap_get,
        std::string& id) -> caf::result<snapshot_view> {
      if (!self->state.snapshots)
        return snapshot_not_found(id);
      return self->delegate(self->state.snapshots, atom::get_v, id);
    },
    [=](atom::local, atom::snap_list,
        snapshot_query& q) -> caf::result<snapshot_views> {
      if (!self->state.snapshots)
        return snapshot_views{};
      return self->delegate(self->state.snapshots, atom::list_v, q);
    },
    [=](atom::local, atom::snap_del, std::string& id,
        std::string& rid) -> caf::result<bool> {
      if (!self->state.snapshots)
        return snapshot_not_found(id);
      return self->delegate(self->state.snapshots, atom::remove_v, id, rid);
    },
    [=](atom::put, snapshots_actor& hdl) {
      self->state.snapshots = std::move(hdl);
    },
    [=](atom::put, pools_actor& hdl) {
      self->state.pools = std::move(hdl);
      // Records of peers that joined before the wiring.
      pools_from_peer(self, {});
      pools_members_changed(self);
    },
    [=](atom::pool_rep, pool_records& xs) {
      pools_changed_here(self, std::move(xs));
    },
    [=](atom::replicate, pool_records& xs) {
      pools_from_peer(self, std::move(xs));
    },
    [=](atom::pool_load, pool_tallies& xs) {
      self->state.pool_tallies_here = xs;
      broadcast(self, atom::pool_load_v, self_name(self), std::move(xs));
    },
    [=](atom::pool_load, std::string& node, pool_tallies& xs) {
      if (self->state.pools)
        self->send(self->state.pools, atom::pool_load_v, std::move(node),
                   std::move(xs));
    },
    [=](atom::local, atom::claim, std::string& pool, sandbox_spec& spec,
        std::string& rid) -> caf::result<sandbox_view> {
      // Forwarded by a peer: served here, never forwarded again.
      return claim(self, pool, std::move(spec), std::move(rid), false);
    },
    [=](atom::internal, atom::claim, std::string& peer, std::string& pool,
        sandbox_spec& spec, std::string& rid) -> caf::result<sandbox_view> {
      auto i = self->state.members.find(peer);
      if (i == self->state.members.end() || !i->second.up)
        return make_error(ec::node_unavailable,
                          "Node '" + peer + "' is unavailable.");
      return forward<sandbox_view>(self, i->second, remote_create_timeout,
                                   std::string{}, true, atom::local_v,
                                   atom::claim_v, std::move(pool),
                                   std::move(spec), std::move(rid));
    },
    // Pools: the POOLS actor of this node owns them (docs/pools.md).
    [=](atom::pool_new, pool_record& x,
        std::string& rid) -> caf::result<pool_view> {
      if (!self->state.pools)
        return pools_unavailable();
      return self->delegate(self->state.pools, atom::pool_new_v, std::move(x),
                            std::move(rid));
    },
    [=](atom::pool_get, std::string& name) -> caf::result<pool_view> {
      if (!self->state.pools)
        return pools_unavailable();
      return self->delegate(self->state.pools, atom::pool_get_v,
                            std::move(name));
    },
    [=](atom::pool_list) -> caf::result<pool_views> {
      if (!self->state.pools)
        return pools_unavailable();
      return self->delegate(self->state.pools, atom::pool_list_v);
    },
    [=](atom::pool_put, std::string& name, pool_capacity& cap,
        std::string& rid) -> caf::result<pool_view> {
      if (!self->state.pools)
        return pools_unavailable();
      return self->delegate(self->state.pools, atom::pool_put_v,
                            std::move(name), cap, std::move(rid));
    },
    [=](atom::pool_del, std::string& name,
        std::string& rid) -> caf::result<bool> {
      if (!self->state.pools)
        return pools_unavailable();
      return self->delegate(self->state.pools, atom::pool_del_v,
                            std::move(name), std::move(rid));
    },
    [=](atom::get, std::string& id) -> caf::result<sandbox_view> {
      return route<sandbox_view>(
        self, id,
        [](node_state::entry& e) -> caf::result<sandbox_view> {
          return e.view;
        },
        [=](node_state::member& m) {
          return forward<sandbox_view>(self, m, remote_read_timeout, id,
                                       false, atom::get_v, id);
        },
        true);
    },
    [=](atom::started, std::string& id) -> caf::result<sandbox_view> {
      constexpr int64_t max_wait_ms = 15000;
      return route<sandbox_view>(
        self, id,
        [=](node_state::entry& e) -> caf::result<sandbox_view> {
          if (e.view.state != sandbox_state::pending || !e.hdl)
            return e.view;
          return self->delegate(e.hdl, atom::started_v, max_wait_ms);
        },
        [=](node_state::member& m) {
          return forward<sandbox_view>(self, m, std::chrono::seconds(20), id,
                                       false, atom::started_v, id);
        },
        true);
    },
    [=](atom::list, list_query& q) -> list_page {
      std::vector<const sandbox_view*> xs;
      xs.reserve(self->state.directory.size());
      for (auto& [id, e] : self->state.directory) {
        // Unclaimed pool members are no one's sandboxes: only the POOLS
        // actor of their node lists them (with the claimed ones it counts).
        if (q.members ? (e.view.pool.empty()
                         || e.view.node != self_name(self))
                      : !e.view.member_of.empty())
          continue;
        if (matches(e.view, q))
          xs.push_back(&e.view);
      }
      auto result = paginate(std::move(xs), q);
      if (q.members) {
        // This node's members are complete once its own recovery is.
        result.partial = !self->state.recovering.empty();
        return result;
      }
      result.partial_reason = incomplete_reason(self);
      if (!result.partial_reason.empty()) {
        result.partial = true;
        if (!self->state.settled)
          result.missing_peers = missing_peers(self);
      }
      return result;
    },
    [=](atom::call, sandbox_request& req) -> caf::result<sandbox_answer> {
      auto& t = traits_of(req.op);
      if (!t.replayed)
        return route_call(self, req);
      auto key = replay_key(t.name, req.id, req.rid, req.op);
      return once(self, self->state.call_replays, key, req.id, [=] {
        return self->request(me(self), caf::infinite, atom::internal_v,
                             atom::call_v, req);
      });
    },
    [=](atom::internal, atom::call,
        sandbox_request& req) -> caf::result<sandbox_answer> {
      return route_call(self, req);
    },
    [=](atom::internal, atom::claim, std::string& id, sandbox_spec& spec,
        std::string& rid) -> caf::result<sandbox_view> {
      return route<sandbox_view>(
        self, id,
        [=](node_state::entry& e) -> caf::result<sandbox_view> {
          return self->delegate(e.hdl, atom::claim_v, spec, rid);
        },
        [=](node_state::member&) -> caf::result<sandbox_view> {
          // Each node claims its own members (the POOLS actor is per node).
          return make_error(ec::sandbox_not_found,
                            "Pool member " + id + " is not on this node.");
        });
    },
    // The directory (node_directory.cpp).
    [=](atom::put, sandbox_actor& hdl, sandbox_view& view) {
      register_local(self, std::move(hdl), std::move(view));
    },
    [=](atom::update, sandbox_view& view) {
      update_local(self, std::move(view));
    },
    [=](atom::forget, std::string& id) { forget_local(self, id); },
    [=](atom::forget, std::string& id, bool) { forget_adopted(self, id); },
    [=](atom::replicate, sandbox_view& view) {
      apply_replica(self, std::move(view));
    },
    [=](atom::drop, std::string& id) { apply_drop(self, id); },
    [=](atom::put, supervisor_actor& sup, std::string& host) {
      // Its sandboxes are unknown until it reports its recovery (which may
      // arrive first: it comes from the supervisor, this from main).
      if (self->state.recovered.count(host) == 0)
        self->state.recovering.insert(host);
      self->state.supervisors.emplace_back(std::move(sup), std::move(host));
    },
    [=](atom::recover, std::string& host) {
      self->state.recovered.insert(host);
      self->state.recovering.erase(host);
    },
    [=](atom::join, node_info& info,
        sandbox_views& views) -> caf::result<node_info, sandbox_views,
                                             node_infos> {
      return accept_join(self, info, views);
    },
    [=](atom::join, std::string& address, caf::actor& peer) {
      join_peer(self, address, caf::actor_cast<node_actor>(peer));
    },
    [=](atom::connect, std::vector<std::string>& addresses) {
      // Seeds are retried on every tick until they answer.
      for (auto& a : addresses) {
        self->state.seeds.insert(a);
        connect_to(self, a);
      }
      check_membership(self);
    },
    [=](atom::members) -> member_infos {
      auto& st = self->state;
      member_infos result;
      result.push_back(member_info{self_name(self), st.init.self.address,
                                   "self", st.num_owned[self_name(self)], 0,
                                   st.init.self.version,
                                   st.init.self.incarnation});
      for (auto& [name, m] : st.members)
        result.push_back(member_info{name, m.info.address,
                                     m.up ? "up" : "down",
                                     st.num_owned[name], m.since_us,
                                     m.info.version, m.info.incarnation});
      return result;
    },
    [=](atom::ready) -> std::string { return incomplete_reason(self); },
    [=](atom::tick) {
      reconnect(self);
      self->delayed_send(self, self->state.init.reconnect_interval,
                         atom::tick_v);
    },
    [=](atom::settle) { give_up(self); },
  };
}

} // namespace osb
