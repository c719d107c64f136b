// The cluster protocol between two NODE actors on two simulated CAF nodes
// (CAF's io test harness: earth and mars in one process, a deterministic
// network). The CAF test engine runs the scenario; GoogleTest drives the
// engine and reports its verdict.

// CAF 0.17.6's dsl.hpp calls an undeclared FAIL(msg); gtest's FAIL() is a
// macro, so declare ours and include the CAF headers first.
#include <string>
[[noreturn]] void FAIL(const std::string& msg);

#define CAF_SUITE cluster_protocol
#define CAF_TEST_NO_MAIN
#include <caf/test/io_dsl.hpp>
#include <caf/test/unit_test_impl.hpp>

#include <memory>
#include <stdexcept>
#include <type_traits>
#include <variant>
#include <vector>

void FAIL(const std::string& msg) {
  throw std::runtime_error(msg);
}

#include <gtest/gtest.h>

#include "actors/error.hpp"
#include "actors/node.hpp"
#include "actors/system_config.hpp"
#include "http/status.hpp"

using namespace osb;

namespace {

struct planet_config : system_config {
  planet_config() {
    load<caf::io::middleman>();
  }
};

using fixture_base = point_to_point_fixture<
  test_coordinator_fixture<planet_config>>;

/// A stand-in SANDBOX actor: answers pause with a Paused view, remove by
/// quitting, renewals with their time, diagnostics with a line of text.
sandbox_actor::behavior_type fake_sandbox(sandbox_actor::pointer self,
                                          sandbox_view view) {
  return {
    [=](atom::create, std::string&) -> sandbox_view { return view; },
    [=](atom::call, sandbox_op& op, std::string&) -> sandbox_answer {
      return std::visit(
        [&](auto& x) -> sandbox_answer {
          using op_type = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<op_type, pause_op>) {
            auto v = view;
            v.state = sandbox_state::paused;
            return v;
          } else if constexpr (std::is_same_v<op_type, remove_op>) {
            self->quit();
            return std::string{};
          } else if constexpr (std::is_same_v<op_type, renew_op>) {
            return x.expires_us;
          } else if constexpr (std::is_same_v<op_type, extend_op>) {
            return x.at_least_us;
          } else if constexpr (std::is_same_v<op_type, diagnose_op>) {
            return x.query.kind + " of " + view.id + " on " + view.node;
          } else {
            return view;
          }
        },
        op);
    },
    [=](atom::claim, sandbox_spec&, std::string&) -> sandbox_view {
      return view;
    },
    [=](atom::progress, std::string&) {},
    [=](atom::snapshot, std::string&, std::string&) -> std::string {
      return "c-" + view.id;
    },
    [=](atom::snap_end, std::string&) {},
    [=](atom::observe, std::string&, int32_t, int64_t) {},
    [=](atom::started, int64_t) -> sandbox_view { return view; },
    [=](atom::started, uint64_t) {},
    [=](atom::expire, uint64_t) {},
    [=](atom::provision) {},
    [=](atom::ready) {},
  };
}

/// A stand-in SNAPSHOTS actor holding one Ready snapshot of its node.
snapshots_actor::behavior_type fake_snapshots(snapshots_actor::pointer,
                                              snapshot_view snap) {
  auto missing = [](const std::string& id) {
    return make_error(ec::snapshot_not_found, "Snapshot " + id + " not found");
  };
  return {
    [=](atom::create, sandbox_actor&, sandbox_view& src, std::string& name,
        std::string&) -> snapshot_view {
      auto x = snap;
      x.id = "snap-new";
      x.sandbox_id = src.id;
      x.name = name;
      x.state = "Creating";
      return x;
    },
    [=](atom::get, std::string& id) -> caf::result<snapshot_view> {
      if (id == snap.id)
        return snap;
      return missing(id);
    },
    [=](atom::list, snapshot_query& q) -> snapshot_views {
      return matches(snap, q) ? snapshot_views{snap} : snapshot_views{};
    },
    [=](atom::remove, std::string& id, std::string&) -> caf::result<bool> {
      if (id == snap.id)
        return make_error(ec::snapshot_delete_conflict,
                          "snapshot image cannot be deleted due to a "
                          "conflict");
      return missing(id);
    },
    [=](atom::place, std::string& id) -> caf::result<snapshot_view> {
      if (id == snap.id)
        return snap;
      return missing(id);
    },
    [=](atom::recover) {},
    [=](atom::tick) {},
  };
}

/// What a stand-in POOLS actor received from its NODE actor, and how it
/// answers claims.
struct pools_seen {
  pool_records records;
  std::vector<std::vector<std::string>> memberships;
  std::vector<std::pair<std::string, pool_tallies>> loads;
  /// may_forward of each claim.
  std::vector<bool> claims;
  /// The idle member a claim gets, and the peer it is sent to otherwise.
  std::string member;
  std::string peer;
};

/// A stand-in POOLS actor (docs/pools.md "Cluster"): records what its node
/// hands it, answers claims from `seen`.
pools_actor::behavior_type fake_pools(pools_actor::pointer,
                                      std::shared_ptr<pools_seen> seen) {
  auto missing = [](const std::string& name) {
    return make_error(ec::pool_not_found, "Pool '" + name + "' not found.");
  };
  return {
    [=](atom::pool_new, pool_record& x, std::string&) -> pool_view {
      return pool_view{x, {}};
    },
    [=](atom::pool_get, std::string& name) -> caf::result<pool_view> {
      return missing(name);
    },
    [=](atom::pool_list) -> pool_views { return {}; },
    [=](atom::pool_put, std::string& name, pool_capacity&,
        std::string&) -> caf::result<pool_view> { return missing(name); },
    [=](atom::pool_del, std::string& name,
        std::string&) -> caf::result<bool> { return missing(name); },
    [=](atom::claim, const std::string& name, bool may_forward)
      -> caf::result<pool_record, std::string, std::string> {
      seen->claims.push_back(may_forward);
      pool_record r;
      r.name = name;
      r.tmpl.image = "opensandbox/busybox:latest";
      return caf::result<pool_record, std::string, std::string>(
        r, seen->member, may_forward ? seen->peer : std::string{});
    },
    [=](atom::claim,
        const sandbox_spec&) -> caf::result<pool_record, std::string> {
      return caf::result<pool_record, std::string>(pool_record{},
                                                   std::string{});
    },
    [=](atom::forget, std::string&, std::string&) {},
    [=](atom::pool_rep, pool_records& xs) {
      for (auto& x : xs)
        seen->records.push_back(x);
    },
    [=](atom::members, std::vector<std::string>& up) {
      seen->memberships.push_back(up);
    },
    [=](atom::pool_load, std::string& node, pool_tallies& xs) {
      seen->loads.emplace_back(node, xs);
    },
    [=](atom::pool_flush) {},
    [=](atom::sync) {},
    [=](atom::tick) {},
    [=](atom::recover) {},
  };
}

node_init make_node(const std::string& name,
                    const std::string& incarnation = "1") {
  node_init result;
  result.self = node_info{name, cluster_protocol_version, name + ":4242"};
  result.self.incarnation = name + "-" + incarnation;
  return result;
}

/// Earth as a node of a cluster that waits for its seeds. It never dials
/// by itself (a tick would dial for real, outside the simulated network).
node_init waiting_node(std::vector<std::string> seeds) {
  auto result = make_node("earth");
  result.clustered = true;
  result.seeds = std::move(seeds);
  result.reconnect_interval = std::chrono::milliseconds{0};
  result.seed_timeout = std::chrono::seconds(30);
  return result;
}

/// Fixtures made so far: each CAF test makes one (see run_caf_tests).
int num_fixtures = 0;

struct two_nodes : fixture_base {
  two_nodes() : two_nodes(make_node("earth")) {
    // nop
  }

  explicit two_nodes(node_init earth_init) {
    ++num_fixtures;
    mars_node = mars.sys.spawn(node, make_node("mars"));
    // The network first: connecting runs every timer of the simulation,
    // which must not fire earth's (e.g. its seed timeout).
    prepare_connection(mars, earth, "mars", 4242);
    mars.publish(mars_node, 4242);
    remote_mars = earth.remote_actor<node_actor>("mars", 4242);
    earth_node = earth.sys.spawn(node, std::move(earth_init));
    // Runs the network without firing timers (see drain).
    drain();
  }

  ~two_nodes() {
    // Actor systems wait for every actor at destruction.
    caf::anon_send_exit(earth_node, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(mars_node, caf::exit_reason::user_shutdown);
    if (mars_snapshots)
      caf::anon_send_exit(mars_snapshots, caf::exit_reason::user_shutdown);
    if (impostor)
      caf::anon_send_exit(impostor, caf::exit_reason::user_shutdown);
    if (jupiter_node)
      caf::anon_send_exit(jupiter_node, caf::exit_reason::user_shutdown);
    for (auto& x : sandboxes)
      caf::anon_send_exit(x, caf::exit_reason::user_shutdown);
    drain();
  }

  /// Mars owns one sandbox, earth joins mars over the network.
  sandbox_view join_mars() {
    sandbox_view v;
    v.id = "sbx-1";
    v.node = "mars";
    v.state = sandbox_state::running;
    v.created_us = 1;
    caf::anon_send(mars_node, atom::put_v, mars.sys.spawn(fake_sandbox, v), v);
    drain();
    caf::anon_send(earth_node, atom::join_v, std::string{"mars:4242"},
                   caf::actor_cast<caf::actor>(remote_mars));
    drain();
    return v;
  }

  /// Earth's view of the member `name`.
  caf::optional<member_info> member(const std::string& name) {
    return member_of(earth, earth_node, name);
  }

  /// `planet`'s view of the member `name` (itself included).
  template <class Planet>
  caf::optional<member_info> member_of(Planet& planet, node_actor hdl,
                                       const std::string& name) {
    auto [xs, err] = ask<member_infos>(planet, hdl, atom::members_v);
    if (xs)
      for (auto& x : *xs)
        if (x.name == name)
          return x;
    return caf::none;
  }

  /// The owner of sandbox `id` as `planet`'s NODE actor answers a get (the
  /// owner's view, one hop), or the HTTP status of its error.
  template <class Planet>
  std::string owner_seen(Planet& planet, node_actor hdl,
                         const std::string& id) {
    auto [v, err] = ask<sandbox_view>(planet, hdl, atom::get_v, id);
    if (v)
      return v->node;
    return std::to_string(http::status_of(to_api_error(err)));
  }

  /// Registers a running sandbox `id` owned by `node` with `planet`'s NODE
  /// actor, as its supervisor does.
  template <class Planet>
  void run_on(Planet& planet, node_actor hdl, const std::string& id,
              const std::string& node) {
    sandbox_view v;
    v.id = id;
    v.node = node;
    v.state = sandbox_state::running;
    v.created_us = 1;
    auto sbx = planet.sys.spawn(fake_sandbox, v);
    sandboxes.push_back(caf::actor_cast<caf::actor>(sbx));
    caf::anon_send(hdl, atom::put_v, sbx, v);
    drain();
  }

  /// Mars, a Kubernetes replica that froze, lost sbx-2 to earth (which
  /// adopted it) and, thawed, still runs it: both register it, then earth
  /// joins mars and each hears the other's claim.
  void both_claim_sbx2() {
    run_on(mars, mars_node, "sbx-2", "mars");
    run_on(earth, earth_node, "sbx-2", "earth");
    caf::anon_send(earth_node, atom::join_v, std::string{"mars:4242"},
                   caf::actor_cast<caf::actor>(remote_mars));
    drain();
  }

  /// Runs both nodes and the network until nothing moves, without firing
  /// timers (the fixture's run() fires every timer, request timeouts
  /// included). read_data() reports only what it read, not what the broker
  /// wrote meanwhile, so a few idle rounds are needed before stopping.
  void drain() {
    auto step = [](auto& p) {
      return p.mpx.try_exec_runnable() || p.sched.try_run_once()
             || p.mpx.read_data() || p.mpx.try_accept_connection();
    };
    for (int idle = 0; idle < 3;) {
      auto moved = step(earth);
      moved = step(mars) || moved;
      idle = moved ? 0 : idle + 1;
    }
  }

  /// Sends a request from `planet` and returns the answer (or the error).
  template <class T, class Planet, class Handle, class... Ts>
  std::pair<caf::optional<T>, caf::error> ask(Planet& planet, Handle hdl,
                                              Ts... xs) {
    caf::optional<T> value;
    caf::error err;
    auto h = planet.self->request(hdl, caf::infinite, xs...);
    drain();
    h.receive([&](T& x) { value = std::move(x); },
              [&](caf::error& e) { err = std::move(e); });
    return {std::move(value), std::move(err)};
  }

  /// Runs an operation (core/sandbox_ops.hpp) on sandbox `id` through `hdl`
  /// (a NODE actor) and answers the operation's answer.
  template <class T, class Planet, class Handle>
  std::pair<caf::optional<T>, caf::error> call(Planet& planet, Handle hdl,
                                               std::string id, sandbox_op op,
                                               std::string rid) {
    auto [x, err] = ask<sandbox_answer>(
      planet, hdl, atom::call_v,
      sandbox_request{std::move(id), std::move(rid), std::move(op)});
    if (!x)
      return {caf::none, std::move(err)};
    return {std::get<T>(std::move(*x)), std::move(err)};
  }

  node_actor earth_node;
  node_actor mars_node;
  /// Mars's NODE actor as earth reaches it over the simulated network.
  node_actor remote_mars;
  snapshots_actor mars_snapshots;
  node_actor impostor;
  /// A third node, in earth's process (see the directory tests).
  node_actor jupiter_node;
  /// Stand-in SANDBOX actors made by run_on.
  std::vector<caf::actor> sandboxes;
};

struct waiting_for_mars : two_nodes {
  waiting_for_mars() : two_nodes(waiting_node({"mars:4242"})) {
    // nop
  }
};

struct waiting_for_nowhere : two_nodes {
  waiting_for_nowhere() : two_nodes(waiting_node({"nowhere:1"})) {
    // nop
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(cluster_protocol_tests, two_nodes)

CAF_TEST(join replicate route and fail over the network) {
  CAF_MESSAGE("mars owns one sandbox");
  sandbox_view v;
  v.id = "sbx-1";
  v.node = "mars";
  v.state = sandbox_state::running;
  v.created_us = 1;
  v.metadata = {{"team", "infra"}};
  auto sbx = mars.sys.spawn(fake_sandbox, v);
  caf::anon_send(mars_node, atom::put_v, sbx, v);
  drain();
  CAF_MESSAGE("earth connects to mars and joins");
  caf::anon_send(earth_node, atom::join_v, std::string{"mars:4242"},
                 caf::actor_cast<caf::actor>(remote_mars));
  drain();
  CAF_MESSAGE("both sides see each other up");
  auto [em, e1] = ask<member_infos>(earth, earth_node, atom::members_v);
  CAF_REQUIRE(em);
  CAF_REQUIRE_EQUAL(em->size(), 2u);
  CAF_CHECK_EQUAL(em->at(1).name, "mars");
  CAF_CHECK_EQUAL(em->at(1).state, "up");
  CAF_CHECK_EQUAL(em->at(1).sandboxes, 1);
  auto [mm, e2] = ask<member_infos>(mars, mars_node, atom::members_v);
  CAF_REQUIRE(mm);
  CAF_CHECK_EQUAL(mm->at(1).name, "earth");
  CAF_MESSAGE("earth lists mars's sandbox from its replica");
  list_query q;
  q.metadata = {{"team", "infra"}};
  auto [page, e3] = ask<list_page>(earth, earth_node, atom::list_v, q);
  CAF_REQUIRE(page);
  CAF_CHECK_EQUAL(page->total_items, 1);
  CAF_MESSAGE("earth routes a get and a pause to mars in one hop");
  auto [got, e4] = ask<sandbox_view>(earth, earth_node, atom::get_v,
                                     std::string{"sbx-1"});
  CAF_REQUIRE(got);
  CAF_CHECK_EQUAL(got->node, "mars");
  auto [paused, e5] = call<sandbox_view>(
    earth, earth_node, std::string{"sbx-1"}, pause_op{}, std::string{"rid"});
  CAF_REQUIRE(paused);
  CAF_CHECK(paused->state == sandbox_state::paused);
  CAF_MESSAGE("earth routes diagnostics to mars's sandbox actor");
  diagnostics_query dq;
  dq.kind = "logs";
  auto [text, e11] = call<std::string>(earth, earth_node, std::string{"sbx-1"},
                                       diagnose_op{dq}, std::string{"rid"});
  CAF_REQUIRE(text);
  CAF_CHECK_EQUAL(*text, "logs of sbx-1 on mars");
  CAF_MESSAGE("mars's updates reach earth's replica");
  v.state = sandbox_state::paused;
  caf::anon_send(mars_node, atom::update_v, v);
  drain();
  list_query paused_q;
  paused_q.states = {sandbox_state::paused};
  auto [page2, e6] = ask<list_page>(earth, earth_node, atom::list_v,
                                    paused_q);
  CAF_REQUIRE(page2);
  CAF_CHECK_EQUAL(page2->total_items, 1);
  CAF_MESSAGE("domain errors keep their category across the network");
  auto [missing, e7] = call<sandbox_view>(
    earth, earth_node, std::string{"nope"}, pause_op{}, std::string{"rid"});
  CAF_CHECK(!missing);
  CAF_CHECK_EQUAL(http::status_of(to_api_error(e7)), 404);
  CAF_MESSAGE("snapshots live on their node; earth finds them on mars");
  snapshot_view snap;
  snap.id = "snap-1";
  snap.sandbox_id = "sbx-1";
  snap.state = "Ready";
  snap.node = "mars";
  snap.image = "opensandbox-snapshots:snap-1";
  snap.runtime_host = "default";
  snap.created_us = 5;
  mars_snapshots = mars.sys.spawn(fake_snapshots, snap);
  caf::anon_send(mars_node, atom::put_v, mars_snapshots);
  v.state = sandbox_state::running; // snapshots need a Running source
  caf::anon_send(mars_node, atom::update_v, v);
  drain();
  auto [taken, s1] = ask<snapshot_view>(earth, earth_node, atom::snapshot_v,
                                        std::string{"sbx-1"},
                                        std::string{"named"},
                                        std::string{"rid"});
  CAF_REQUIRE(taken);
  CAF_CHECK_EQUAL(taken->state, "Creating");
  CAF_CHECK_EQUAL(taken->name, "named");
  auto [found, s2] = ask<snapshot_view>(earth, earth_node, atom::snap_get_v,
                                        std::string{"snap-1"});
  CAF_REQUIRE(found);
  CAF_CHECK_EQUAL(found->node, "mars");
  snapshot_query sq;
  sq.sandbox_id = "sbx-1";
  auto [spage, s3] = ask<snapshot_page>(earth, earth_node, atom::snap_list_v,
                                        sq);
  CAF_REQUIRE(spage);
  CAF_CHECK_EQUAL(spage->total_items, 1);
  auto [nosnap, s4] = ask<snapshot_view>(earth, earth_node, atom::snap_get_v,
                                         std::string{"snap-x"});
  CAF_CHECK(!nosnap);
  CAF_CHECK_EQUAL(to_api_error(s4).code, "SNAPSHOT::NOT_FOUND");
  auto [deleted, s5] = ask<bool>(earth, earth_node, atom::snap_del_v,
                                 std::string{"snap-1"}, std::string{"rid"});
  CAF_CHECK(!deleted);
  CAF_CHECK_EQUAL(to_api_error(s5).code, "SNAPSHOT::DELETE_CONFLICT");
  CAF_MESSAGE("a restore goes to the snapshot's node (no runtime there)");
  sandbox_spec from_snap;
  from_snap.snapshot_id = "snap-1";
  auto [restored, s6] = ask<sandbox_view>(earth, earth_node, atom::create_v,
                                          from_snap, std::string{"rid"});
  CAF_CHECK(!restored);
  CAF_CHECK_EQUAL(to_api_error(s6).message,
                  "No container runtime is configured on this node.");
  CAF_MESSAGE("a create goes to mars, which has no runtime: 503 from mars");
  sandbox_spec spec;
  spec.image = "x";
  auto [created, e8] = ask<sandbox_view>(earth, earth_node, atom::create_v,
                                         spec, std::string{"rid"});
  CAF_CHECK(!created);
  CAF_CHECK_EQUAL(http::status_of(to_api_error(e8)), 503);
  CAF_MESSAGE("deleting on mars drops the replica on earth");
  auto [removed, e9] = call<std::string>(
    earth, earth_node, std::string{"sbx-1"}, remove_op{}, std::string{"rid"});
  CAF_REQUIRE(removed);
  caf::anon_send(mars_node, atom::forget_v, std::string{"sbx-1"});
  drain();
  auto [page3, e10] = ask<list_page>(earth, earth_node, atom::list_v,
                                     list_query{});
  CAF_REQUIRE(page3);
  CAF_CHECK_EQUAL(page3->total_items, 0);
}

CAF_TEST(a second process under the name of a live member is refused) {
  auto v = join_mars();
  CAF_REQUIRE(member("mars"));
  CAF_CHECK_EQUAL(member("mars")->incarnation, "mars-1");
  CAF_MESSAGE("a join under mars's name from another incarnation");
  node_info other{"mars", cluster_protocol_version, "mars:4243", 0, "mars-2"};
  bool admitted = false;
  caf::error e1;
  auto h = earth.self->request(earth_node, caf::infinite, atom::join_v, other,
                               sandbox_views{});
  drain();
  h.receive([&](node_info&, sandbox_views&, node_infos&) { admitted = true; },
            [&](caf::error& e) { e1 = std::move(e); });
  CAF_CHECK(!admitted);
  auto api = to_api_error(e1);
  CAF_CHECK_EQUAL(http::status_of(api), 409);
  CAF_CHECK_EQUAL(api.code, "CLUSTER::NODE_NAME_TAKEN");
  CAF_CHECK(api.message.find("taken by a live member of the cluster (at "
                             "mars:4242")
            != std::string::npos);
  CAF_MESSAGE("earth dials a second process named mars and refuses it too");
  impostor = mars.sys.spawn(node, make_node("mars", "2"));
  prepare_connection(mars, earth, "mars", 4243);
  mars.publish(impostor, 4243);
  auto remote = earth.remote_actor<node_actor>("mars", 4243);
  caf::anon_send(earth_node, atom::join_v, std::string{"mars:4243"},
                 caf::actor_cast<caf::actor>(remote));
  drain();
  CAF_MESSAGE("the real mars stays the member and keeps its sandbox");
  CAF_REQUIRE(member("mars"));
  CAF_CHECK_EQUAL(member("mars")->incarnation, "mars-1");
  CAF_CHECK_EQUAL(member("mars")->state, "up");
  CAF_CHECK_EQUAL(member("mars")->sandboxes, 1);
  auto [got, e2] = ask<sandbox_view>(earth, earth_node, atom::get_v, v.id);
  CAF_CHECK(got);
}

CAF_TEST(pools travel between the nodes and claims hop once) {
  auto earth_seen = std::make_shared<pools_seen>();
  auto mars_seen = std::make_shared<pools_seen>();
  earth_seen->peer = "mars";
  mars_seen->member = "sbx-m";
  auto earth_pools = earth.sys.spawn(fake_pools, earth_seen);
  auto mars_pools = mars.sys.spawn(fake_pools, mars_seen);
  caf::anon_send(earth_node, atom::put_v, earth_pools);
  caf::anon_send(mars_node, atom::put_v, mars_pools);
  drain();
  CAF_MESSAGE("alone, each POOLS actor hears of its own node only");
  CAF_REQUIRE(!earth_seen->memberships.empty());
  CAF_CHECK_EQUAL(earth_seen->memberships.back(),
                  std::vector<std::string>{"earth"});
  CAF_MESSAGE("each node's POOLS actor reports a record and its counts");
  auto record = [](const std::string& name, int64_t gen,
                   const std::string& origin) {
    pool_record r;
    r.name = name;
    r.tmpl.image = "opensandbox/busybox:latest";
    r.generation = gen;
    r.created_us = r.updated_us = 100 + gen;
    r.origin = origin;
    return r;
  };
  caf::anon_send(earth_node, atom::pool_rep_v,
                 pool_records{record("p", 1, "earth")});
  caf::anon_send(mars_node, atom::pool_rep_v,
                 pool_records{record("q", 1, "mars")});
  caf::anon_send(mars_node, atom::pool_load_v,
                 pool_tallies{pool_tally{"p", 0, 1, 0}});
  drain();
  CAF_MESSAGE("mars owns the idle member sbx-m; earth joins mars");
  sandbox_view m;
  m.id = "sbx-m";
  m.node = "mars";
  m.state = sandbox_state::running;
  m.pool = "p";
  auto member = mars.sys.spawn(fake_sandbox, m);
  caf::anon_send(mars_node, atom::put_v, member, m);
  drain();
  caf::anon_send(earth_node, atom::join_v, std::string{"mars:4242"},
                 caf::actor_cast<caf::actor>(remote_mars));
  drain();
  CAF_MESSAGE("the join exchanged the records, counts and membership");
  auto names = [](const pool_records& xs) {
    std::vector<std::string> result;
    for (auto& x : xs)
      result.push_back(x.name + "/" + std::to_string(x.generation));
    return result;
  };
  CAF_CHECK_EQUAL(names(mars_seen->records),
                  std::vector<std::string>{"p/1"});
  CAF_CHECK_EQUAL(names(earth_seen->records),
                  std::vector<std::string>{"q/1"});
  CAF_CHECK_EQUAL(earth_seen->memberships.back(),
                  (std::vector<std::string>{"earth", "mars"}));
  CAF_CHECK_EQUAL(mars_seen->memberships.back(),
                  (std::vector<std::string>{"earth", "mars"}));
  CAF_REQUIRE(!earth_seen->loads.empty());
  CAF_CHECK_EQUAL(earth_seen->loads.back().first, "mars");
  CAF_REQUIRE_EQUAL(earth_seen->loads.back().second.size(), 1u);
  CAF_CHECK_EQUAL(earth_seen->loads.back().second[0].available, 1);
  CAF_MESSAGE("a change after the join reaches mars; a stale one does not");
  caf::anon_send(earth_node, atom::pool_rep_v,
                 pool_records{record("p", 2, "earth")});
  drain();
  caf::anon_send(earth_node, atom::pool_rep_v,
                 pool_records{record("p", 1, "earth")});
  drain();
  CAF_CHECK_EQUAL(names(mars_seen->records),
                  (std::vector<std::string>{"p/1", "p/2"}));
  CAF_MESSAGE("a claim on earth (none idle there) is served by mars");
  sandbox_spec claim;
  claim.extensions = {{"poolRef", "p"}};
  auto [v, err] = ask<sandbox_view>(earth, earth_node, atom::create_v, claim,
                                    std::string{"rid-claim"});
  CAF_REQUIRE(v);
  CAF_CHECK_EQUAL(v->id, "sbx-m");
  CAF_CHECK_EQUAL(v->node, "mars");
  CAF_CHECK_EQUAL(earth_seen->claims, std::vector<bool>{true});
  // Served there, never sent on.
  CAF_CHECK_EQUAL(mars_seen->claims, std::vector<bool>{false});
  CAF_MESSAGE("mars is lost: earth's POOLS actor is alone again");
  caf::anon_send_exit(mars_node, caf::exit_reason::kill);
  drain();
  CAF_CHECK_EQUAL(earth_seen->memberships.back(),
                  std::vector<std::string>{"earth"});
  for (auto hdl : {caf::actor_cast<caf::actor>(earth_pools),
                   caf::actor_cast<caf::actor>(mars_pools),
                   caf::actor_cast<caf::actor>(member)})
    caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
  drain();
}

// The directory's ownership rules for Kubernetes replicas (docs/runtimes.md
// "The directory", actors/node_directory.cpp).

CAF_TEST(a drop counts only from the owner of the entry) {
  CAF_MESSAGE("jupiter, a third node in earth's process, joins earth");
  jupiter_node = earth.sys.spawn(node, make_node("jupiter"));
  caf::anon_send(jupiter_node, atom::join_v, std::string{"jupiter:4242"},
                 caf::actor_cast<caf::actor>(earth_node));
  drain();
  CAF_REQUIRE(member("jupiter"));
  CAF_REQUIRE_EQUAL(member("jupiter")->state, "up");
  CAF_MESSAGE("mars runs sbx-1; earth joins mars and sees it there");
  join_mars();
  CAF_CHECK_EQUAL(owner_seen(earth, earth_node, "sbx-1"), "mars");
  CAF_MESSAGE("jupiter adopts sbx-1: its claim flips the owner on earth");
  run_on(earth, jupiter_node, "sbx-1", "jupiter");
  CAF_CHECK_EQUAL(owner_seen(earth, earth_node, "sbx-1"), "jupiter");
  CAF_MESSAGE("mars, which lost it, drops sbx-1: not the owner, ignored");
  caf::anon_send(mars_node, atom::forget_v, std::string{"sbx-1"});
  drain();
  CAF_CHECK_EQUAL(owner_seen(earth, earth_node, "sbx-1"), "jupiter");
  CAF_CHECK_EQUAL(member("jupiter")->sandboxes, 1);
  CAF_CHECK_EQUAL(member("mars")->sandboxes, 0);
  CAF_MESSAGE("a drop from no member at all is ignored too");
  caf::anon_send(earth_node, atom::drop_v, std::string{"sbx-1"});
  drain();
  CAF_CHECK_EQUAL(owner_seen(earth, earth_node, "sbx-1"), "jupiter");
  CAF_MESSAGE("jupiter, the owner, deletes it: earth drops the entry");
  caf::anon_send(jupiter_node, atom::forget_v, std::string{"sbx-1"});
  drain();
  CAF_CHECK_EQUAL(owner_seen(earth, earth_node, "sbx-1"), "404");
  CAF_CHECK_EQUAL(member("jupiter")->sandboxes, 0);
}

CAF_TEST(a claim of a peer on a sandbox this node runs is kept aside) {
  both_claim_sbx2();
  CAF_REQUIRE(member("mars"));
  CAF_REQUIRE_EQUAL(member("mars")->state, "up");
  CAF_MESSAGE("the join's snapshot did not move sbx-2 on either side");
  CAF_CHECK_EQUAL(owner_seen(earth, earth_node, "sbx-2"), "earth");
  CAF_CHECK_EQUAL(owner_seen(mars, mars_node, "sbx-2"), "mars");
  CAF_CHECK_EQUAL(member("earth")->sandboxes, 1);
  CAF_CHECK_EQUAL(member("mars")->sandboxes, 0);
  CAF_MESSAGE("neither does a replicated view of it from mars");
  sandbox_view v;
  v.id = "sbx-2";
  v.node = "mars";
  v.state = sandbox_state::paused;
  v.created_us = 1;
  caf::anon_send(mars_node, atom::update_v, v);
  drain();
  auto [got, e1] = ask<sandbox_view>(earth, earth_node, atom::get_v,
                                     std::string{"sbx-2"});
  CAF_REQUIRE(got);
  CAF_CHECK_EQUAL(got->node, "earth");
  CAF_CHECK(got->state == sandbox_state::running);
  CAF_MESSAGE("earth lists it once, as its own");
  auto [page, e2] = ask<list_page>(earth, earth_node, atom::list_v,
                                   list_query{});
  CAF_REQUIRE(page);
  CAF_CHECK_EQUAL(page->total_items, 1);
  CAF_CHECK_EQUAL(member("earth")->sandboxes, 1);
  CAF_CHECK_EQUAL(member("mars")->sandboxes, 0);
}

CAF_TEST(a node giving up an adopted sandbox takes the claim of the adopter) {
  both_claim_sbx2();
  CAF_MESSAGE("mars's supervisor finds its lease taken over: drops sbx-2");
  caf::anon_send(mars_node, atom::forget_v, std::string{"sbx-2"}, true);
  // Then the sandbox actor's end tells the node to forget it once more.
  caf::anon_send(mars_node, atom::forget_v, std::string{"sbx-2"});
  drain();
  CAF_MESSAGE("both ends agree on earth: no 404 from mars, none on earth");
  CAF_CHECK_EQUAL(owner_seen(mars, mars_node, "sbx-2"), "earth");
  CAF_CHECK_EQUAL(owner_seen(earth, earth_node, "sbx-2"), "earth");
  auto earth_on_mars = member_of(mars, mars_node, "earth");
  CAF_REQUIRE(earth_on_mars);
  CAF_CHECK_EQUAL(earth_on_mars->sandboxes, 1);
  CAF_CHECK_EQUAL(member_of(mars, mars_node, "mars")->sandboxes, 0);
  CAF_MESSAGE("given up before the adopter's claim came: mars hears it later");
  run_on(mars, mars_node, "sbx-3", "mars");
  caf::anon_send(mars_node, atom::forget_v, std::string{"sbx-3"}, true);
  drain();
  CAF_CHECK_EQUAL(owner_seen(mars, mars_node, "sbx-3"), "404");
  run_on(earth, earth_node, "sbx-3", "earth");
  CAF_CHECK_EQUAL(owner_seen(mars, mars_node, "sbx-3"), "earth");
  CAF_CHECK_EQUAL(owner_seen(earth, earth_node, "sbx-3"), "earth");
}

CAF_TEST_FIXTURE_SCOPE_END()

CAF_TEST_FIXTURE_SCOPE(cluster_membership_tests, waiting_for_mars)

CAF_TEST(a node waits for its seeds before it calls a sandbox missing) {
  CAF_MESSAGE("before mars joined, earth cannot know mars's sandbox");
  auto [got, e1] = ask<sandbox_view>(earth, earth_node, atom::get_v,
                                     std::string{"sbx-1"});
  CAF_CHECK(!got);
  auto api = to_api_error(e1);
  CAF_CHECK_EQUAL(http::status_of(api), 503);
  CAF_CHECK_EQUAL(api.code, "CLUSTER::MEMBERSHIP_INCOMPLETE");
  CAF_CHECK(api.message.find("cluster membership not complete: waiting for "
                             "mars:4242")
            != std::string::npos);
  auto [gone, e2] = call<std::string>(earth, earth_node, std::string{"sbx-1"},
                                      remove_op{}, std::string{"rid"});
  CAF_CHECK(!gone);
  CAF_CHECK_EQUAL(http::status_of(to_api_error(e2)), 503);
  auto [page, e3] = ask<list_page>(earth, earth_node, atom::list_v,
                                   list_query{});
  CAF_REQUIRE(page);
  CAF_CHECK(page->partial);
  CAF_CHECK_EQUAL(page->missing_peers, std::vector<std::string>{"mars:4242"});
  CAF_MESSAGE("once mars joined, earth knows the whole fleet");
  join_mars();
  auto [found, e4] = ask<sandbox_view>(earth, earth_node, atom::get_v,
                                       std::string{"sbx-1"});
  CAF_CHECK(found);
  auto [missing, e5] = ask<sandbox_view>(earth, earth_node, atom::get_v,
                                         std::string{"nope"});
  CAF_CHECK(!missing);
  CAF_CHECK_EQUAL(http::status_of(to_api_error(e5)), 404);
  auto [full, e6] = ask<list_page>(earth, earth_node, atom::list_v,
                                   list_query{});
  CAF_REQUIRE(full);
  CAF_CHECK(!full->partial);
  CAF_CHECK_EQUAL(full->total_items, 1);
}

CAF_TEST(a node also waits for the members its seeds name) {
  CAF_MESSAGE("mars knows jupiter, which earth has never heard of");
  node_info jupiter{"jupiter", cluster_protocol_version, "jupiter:4242", 0,
                    "jupiter-1"};
  auto h = mars.self->request(mars_node, caf::infinite, atom::join_v, jupiter,
                              sandbox_views{});
  drain();
  h.receive([](node_info&, sandbox_views&, node_infos&) {},
            [](caf::error& e) { CAF_FAIL("jupiter cannot join: " << e); });
  join_mars();
  CAF_MESSAGE("earth joined its seed but not jupiter: still incomplete");
  auto [got, e1] = ask<sandbox_view>(earth, earth_node, atom::get_v,
                                     std::string{"nope"});
  CAF_CHECK_EQUAL(http::status_of(to_api_error(e1)), 503);
  CAF_CHECK(to_api_error(e1).message.find("waiting for jupiter:4242")
            != std::string::npos);
  auto [page, e2] = ask<list_page>(earth, earth_node, atom::list_v,
                                   list_query{});
  CAF_REQUIRE(page);
  CAF_CHECK_EQUAL(page->missing_peers,
                  std::vector<std::string>{"jupiter:4242"});
}

CAF_TEST(a node knows its sandboxes only once its supervisors recovered) {
  join_mars();
  caf::anon_send(earth_node, atom::put_v, supervisor_actor{},
                 std::string{"default"});
  drain();
  auto [got, e1] = ask<sandbox_view>(earth, earth_node, atom::get_v,
                                     std::string{"nope"});
  CAF_CHECK_EQUAL(http::status_of(to_api_error(e1)), 503);
  CAF_CHECK(to_api_error(e1).message.find("still recovering its sandboxes "
                                          "(Docker host default)")
            != std::string::npos);
  caf::anon_send(earth_node, atom::recover_v, std::string{"default"});
  drain();
  auto [again, e2] = ask<sandbox_view>(earth, earth_node, atom::get_v,
                                       std::string{"nope"});
  CAF_CHECK_EQUAL(http::status_of(to_api_error(e2)), 404);
}

CAF_TEST_FIXTURE_SCOPE_END()

CAF_TEST_FIXTURE_SCOPE(cluster_give_up_tests, waiting_for_nowhere)

CAF_TEST(a node gives up on its seeds after the seed timeout) {
  auto [got, e1] = ask<sandbox_view>(earth, earth_node, atom::get_v,
                                     std::string{"x"});
  CAF_CHECK_EQUAL(http::status_of(to_api_error(e1)), 503);
  CAF_CHECK(to_api_error(e1).message.find("nowhere:1") != std::string::npos);
  CAF_MESSAGE("the seed timeout passes");
  CAF_REQUIRE(earth.sched.trigger_timeout());
  drain();
  auto [again, e2] = ask<sandbox_view>(earth, earth_node, atom::get_v,
                                       std::string{"x"});
  CAF_CHECK_EQUAL(http::status_of(to_api_error(e2)), 404);
  auto [page, e3] = ask<list_page>(earth, earth_node, atom::list_v,
                                   list_query{});
  CAF_REQUIRE(page);
  CAF_CHECK(!page->partial);
}

CAF_TEST_FIXTURE_SCOPE_END()

namespace {

/// Runs the CAF tests whose names match `regex` (the engine keeps its own
/// bookkeeping: checks need a current test); false when any check failed
/// or when no test matched.
bool run_caf_tests(const std::string& regex) {
  auto before = num_fixtures;
  auto ok = caf::test::engine::run(false, "", 1, 0, "cluster_protocol", "",
                                   regex, "");
  return ok && num_fixtures > before;
}

} // namespace

TEST(ClusterProtocol, TwoSimulatedNodes) {
  EXPECT_TRUE(run_caf_tests("join replicate route and fail over the "
                            "network"));
}

TEST(ClusterProtocol, SecondProcessUnderAMembersNameIsRefused) {
  EXPECT_TRUE(run_caf_tests("a second process under the name of a live "
                            "member is refused"));
}

TEST(ClusterProtocol, UnknownSandboxIs503UntilTheSeedsJoined) {
  EXPECT_TRUE(run_caf_tests("a node waits for its seeds before it calls a "
                            "sandbox missing"));
}

TEST(ClusterProtocol, UnknownSandboxIs503UntilThePeersOfSeedsJoined) {
  EXPECT_TRUE(run_caf_tests("a node also waits for the members its seeds "
                            "name"));
}

TEST(ClusterProtocol, UnknownSandboxIs503UntilSupervisorsRecovered) {
  EXPECT_TRUE(run_caf_tests("a node knows its sandboxes only once its "
                            "supervisors recovered"));
}

TEST(ClusterProtocol, NodeGivesUpOnItsSeedsAfterTheTimeout) {
  EXPECT_TRUE(run_caf_tests("a node gives up on its seeds after the seed "
                            "timeout"));
}

TEST(ClusterProtocol, PoolsTravelBetweenNodesAndClaimsHopOnce) {
  EXPECT_TRUE(run_caf_tests("pools travel between the nodes and claims hop "
                            "once"));
}

TEST(ClusterProtocol, DropCountsOnlyFromTheEntrysOwner) {
  EXPECT_TRUE(run_caf_tests("a drop counts only from the owner of the entry"));
}

TEST(ClusterProtocol, PeersClaimOnASandboxRunHereIsKeptAside) {
  EXPECT_TRUE(run_caf_tests("a claim of a peer on a sandbox this node runs is "
                            "kept aside"));
}

TEST(ClusterProtocol, GivingUpAnAdoptedSandboxTakesTheAdoptersClaim) {
  EXPECT_TRUE(run_caf_tests("a node giving up an adopted sandbox takes the "
                            "claim of the adopter"));
}
