// Unit tests of the POOLS actor and of claims through the NODE actor on
// CAF's deterministic scheduler, with the Docker runtime over the fake
// engine: definitions (409, capacity updates, tombstones), idempotency per
// request id, durability across a crash, and claims served cold.

#include <caf/actor_system.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>

#include <gtest/gtest.h>

#include "core/time.hpp"
#include "core/server_metrics.hpp"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "actors/error.hpp"
#include "actors/host_supervisor.hpp"
#include "actors/node.hpp"
#include "actors/pools.hpp"
#include "actors/runtime_bridge.hpp"
#include "actors/store_actor.hpp"
#include "actors/system_config.hpp"
#include "core/ids.hpp"
#include "http/status.hpp"
#include "runtimes/docker/docker_runtime.hpp"
#include "runtimes/docker/fake_engine.hpp"

using namespace osb;

namespace {

struct test_config : system_config {
  test_config() {
    set("scheduler.policy", caf::atom("testing"));
  }
};

struct process {
  node_actor node;
  supervisor_actor sup;
  runtime_actor runtime;
  store_actor store;
  pools_actor pools;

  std::vector<caf::actor> all() const {
    return {caf::actor_cast<caf::actor>(node), caf::actor_cast<caf::actor>(sup),
            caf::actor_cast<caf::actor>(runtime),
            caf::actor_cast<caf::actor>(store),
            caf::actor_cast<caf::actor>(pools)};
  }
};

class PoolActors : public testing::Test {
protected:
  PoolActors()
    : sys(cfg_),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())),
      self(sys, true) {
    db_path = std::filesystem::temp_directory_path()
              / ("osb-pools-" + codec::make_uuid() + ".db");
    rt = std::make_shared<runtimes::docker::fake_engine>();
    node_cfg = std::make_shared<node_config>();
  }

  ~PoolActors() override {
    for (auto& p : procs)
      for (auto& hdl : p.all())
        caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    sched.run();
    std::error_code ec;
    for (auto ext : {"", "-wal", "-shm"})
      std::filesystem::remove(db_path.string() + ext, ec);
  }

  process& boot() {
    auto db = store::sqlite_store::open(db_path.string());
    EXPECT_TRUE(db.has_value());
    process p;
    runtimes::docker::docker_options opts;
    opts.cfg = node_cfg;
    opts.node = "n1";
    opts.probe_sidecars = false;
    opts.probe_members = false;
    opts.claimer = [this](const runtimes::sandbox_instance& x,
                          const runtimes::claim_request& c,
                          runtimes::callback<unit> cb) {
      claims.emplace_back(x.id, c);
      if (fail_claims)
        cb(failure{failure_kind::conflict, "already claimed"});
      else
        cb(unit{});
    };
    p.runtime = sys.spawn(runtime_bridge,
                          std::make_shared<runtimes::docker::docker_runtime>(
                            rt, std::move(opts)));
    p.store = sys.spawn(store_actor_impl,
                        std::shared_ptr<store::sqlite_store>(std::move(*db)));
    node_init ni;
    ni.self = node_info{"n1", cluster_protocol_version, ""};
    ni.match_creates = match_creates;
    p.node = sys.spawn(node, ni);
    supervisor_init init;
    init.cfg = node_cfg;
    init.node_name = "n1";
    init.node = p.node;
    init.runtime = p.runtime;
    init.store = p.store;
    p.sup = sys.spawn(host_supervisor, init);
    caf::anon_send(p.node, atom::put_v, p.sup, std::string{"default"});
    pools_init pi;
    pi.node_name = "n1";
    pi.store = p.store;
    pi.node = p.node;
    pi.runtimes = {p.runtime};
    pi.warm_concurrency = warm_concurrency;
    pi.tick_interval = caf::timespan{0}; // tests send ticks themselves
    p.pools = sys.spawn(pools, pi);
    caf::anon_send(p.node, atom::put_v, p.pools);
    sched.run();
    procs.push_back(p);
    return procs.back();
  }

  /// Simulates kill -9: the actors vanish without any cleanup.
  void crash(process& p) {
    for (auto& hdl : p.all())
      caf::anon_send_exit(hdl, caf::exit_reason::kill);
    sched.run();
  }

  template <class T, class Handle, class... Ts>
  std::pair<std::optional<T>, api_error> ask(const Handle& hdl, Ts&&... xs) {
    std::optional<T> value;
    api_error err;
    auto h = self->request(hdl, caf::infinite, std::forward<Ts>(xs)...);
    sched.run();
    h.receive([&](T& x) { value = std::move(x); },
              [&](caf::error& e) { err = to_api_error(e); });
    return {std::move(value), std::move(err)};
  }

  pool_record record(const std::string& name) {
    pool_record r;
    r.name = name;
    r.tmpl.image = "opensandbox/busybox:latest";
    r.tmpl.entrypoint = {"sleep", "3600"};
    r.tmpl.env = {{"FROM_TEMPLATE", "t"}, {"SHARED", "t"}};
    r.tmpl.metadata = {{"team", "infra"}};
    r.tmpl.resource_limits = {{"cpu", "500m"}, {"memory", "512Mi"}};
    r.tmpl.timeout_s = 3600;
    r.capacity.buffer_max = 2;
    r.capacity.buffer_min = 1;
    r.capacity.pool_max = 5;
    return r;
  }

  /// Claims the runtime was asked for (member id, claim).
  std::vector<std::pair<std::string, runtimes::claim_request>> claims;
  bool fail_claims = false;
  int64_t warm_concurrency = 2;
  /// `[pool] match_creates`.
  bool match_creates = false;

  /// A pool that keeps members: buffer [min, max].
  pool_record warm(const std::string& name, int64_t min, int64_t max) {
    auto r = record(name);
    r.capacity.buffer_min = min;
    r.capacity.buffer_max = max;
    r.capacity.pool_max = 100;
    return r;
  }

  /// The members of pool `name` the node lists (hidden elsewhere).
  std::vector<sandbox_view> members(process& p, const std::string& name) {
    list_query q;
    q.members = true;
    q.page_size = 1000;
    std::vector<sandbox_view> result;
    auto page = ask<list_page>(p.node, atom::list_v, q).first;
    for (auto& v : page->items)
      if (v.member_of == name)
        result.push_back(v);
    return result;
  }

  /// What GET /sandboxes lists.
  size_t num_listed(process& p) {
    list_query q;
    q.page_size = 1000;
    return ask<list_page>(p.node, atom::list_v, q).first->items.size();
  }

  test_config cfg_;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  caf::scoped_actor self;
  std::filesystem::path db_path;
  std::shared_ptr<runtimes::docker::fake_engine> rt;
  std::shared_ptr<node_config> node_cfg;
  std::vector<process> procs;
};

} // namespace

TEST_F(PoolActors, DefinitionsFollowTheSeedsRules) {
  auto& p = boot();
  auto [a, err] = ask<pool_view>(p.node, atom::pool_new_v, record("p1"),
                                 std::string{"r1"});
  ASSERT_TRUE(a) << err.message;
  EXPECT_EQ(a->record.generation, 1);
  EXPECT_GT(a->record.created_us, 0);
  // The same request again is its answer; another request is a 409.
  auto again = ask<pool_view>(p.node, atom::pool_new_v, record("p1"),
                              std::string{"r1"});
  ASSERT_TRUE(again.first);
  EXPECT_EQ(again.first->record.created_us, a->record.created_us);
  auto dup = ask<pool_view>(p.node, atom::pool_new_v, record("p1"),
                            std::string{"r2"});
  EXPECT_FALSE(dup.first);
  EXPECT_EQ(http::status_of(dup.second), 409);
  EXPECT_EQ(dup.second.code, "KUBERNETES::POOL_ALREADY_EXISTS");
  pool_capacity cap;
  cap.buffer_max = 4;
  cap.pool_max = 9;
  auto up = ask<pool_view>(p.node, atom::pool_put_v, std::string{"p1"}, cap,
                           std::string{"r3"});
  ASSERT_TRUE(up.first) << up.second.message;
  EXPECT_EQ(up.first->record.capacity.pool_max, 9);
  EXPECT_EQ(up.first->record.generation, 2);
  auto missing = ask<pool_view>(p.node, atom::pool_get_v, std::string{"nope"});
  EXPECT_EQ(http::status_of(missing.second), 404);
  EXPECT_EQ(missing.second.code, "KUBERNETES::POOL_NOT_FOUND");
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, record("p2"),
                             std::string{"r4"})
                .first);
  auto del = ask<bool>(p.node, atom::pool_del_v, std::string{"p2"},
                       std::string{"r5"});
  ASSERT_TRUE(del.first) << del.second.message;
  EXPECT_EQ(http::status_of(ask<pool_view>(p.node, atom::pool_get_v, std::string{"p2"})
              .second),
            404);
  EXPECT_EQ(http::status_of(ask<bool>(p.node, atom::pool_del_v, std::string{"p2"},
                      std::string{"r6"})
              .second),
            404);
  auto list = ask<pool_views>(p.node, atom::pool_list_v);
  ASSERT_TRUE(list.first);
  ASSERT_EQ(list.first->size(), 1u);
  EXPECT_EQ(list.first->front().record.name, "p1");
  // A deleted name can be created again, after its tombstone's generation.
  auto re = ask<pool_view>(p.node, atom::pool_new_v, record("p2"),
                           std::string{"r7"});
  ASSERT_TRUE(re.first);
  EXPECT_EQ(re.first->record.generation, 3);
}

TEST_F(PoolActors, DefinitionsSurviveACrash) {
  auto& p = boot();
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, record("p1"),
                             std::string{"r1"})
                .first);
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, record("p2"),
                             std::string{"r2"})
                .first);
  ASSERT_TRUE(ask<bool>(p.node, atom::pool_del_v, std::string{"p2"},
                        std::string{"r3"})
                .first);
  auto before = procs.back();
  crash(before);
  auto& q = boot();
  auto g = ask<pool_view>(q.node, atom::pool_get_v, std::string{"p1"});
  ASSERT_TRUE(g.first) << g.second.message;
  EXPECT_EQ(g.first->record.tmpl.env.at("FROM_TEMPLATE"), "t");
  EXPECT_EQ(g.first->record.capacity.pool_max, 5);
  EXPECT_EQ(http::status_of(ask<pool_view>(q.node, atom::pool_get_v, std::string{"p2"})
              .second),
            404);
}

TEST_F(PoolActors, AClaimRunsTheTemplateColdWithTheClaimsFields) {
  auto& p = boot();
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, warm("p1", 0, 0),
                             std::string{"r1"})
                .first);
  sandbox_spec claim;
  claim.extensions = {{"poolRef", "p1"}};
  claim.env = {{"SHARED", "c"}, {"FROM_CLAIM", "c"}};
  claim.metadata = {{"run", "7"}};
  auto& cold = ops_metrics().pool_claims.with({"cold"});
  auto cold_before = cold.value();
  auto [v, err] = ask<sandbox_view>(p.node, atom::create_v, claim,
                                    std::string{"r2"});
  ASSERT_TRUE(v) << err.message;
  EXPECT_EQ(cold.value(), cold_before + 1);
  EXPECT_NE(v->message.find("Pool 'p1' had no idle member"),
            std::string::npos)
    << v->message;
  EXPECT_EQ(v->image, "opensandbox/busybox:latest");
  EXPECT_EQ(v->metadata.at("team"), "infra");
  EXPECT_EQ(v->metadata.at("run"), "7");
  auto cs = rt->containers();
  ASSERT_EQ(cs.size(), 1u);
  auto c = rt->spec_of(cs[0].id);
  auto has = [&](const std::string& kv) {
    return std::find(c.env.begin(), c.env.end(), kv) != c.env.end();
  };
  EXPECT_TRUE(has("FROM_TEMPLATE=t"));
  EXPECT_TRUE(has("SHARED=c"));
  EXPECT_TRUE(has("FROM_CLAIM=c"));
  EXPECT_EQ(c.memory_bytes, 536870912);
  auto g = ask<pool_view>(p.node, atom::pool_get_v, std::string{"p1"});
  ASSERT_TRUE(g.first);
  EXPECT_EQ(g.first->status.num_claims, 1);
  EXPECT_EQ(g.first->status.num_cold, 1);
  // An unknown pool makes nothing.
  claim.extensions = {{"poolRef", "nope"}};
  auto bad = ask<sandbox_view>(p.node, atom::create_v, claim,
                               std::string{"r3"});
  EXPECT_FALSE(bad.first);
  EXPECT_EQ(http::status_of(bad.second), 404);
  EXPECT_EQ(rt->containers().size(), 1u);
}

// -- members (docs/pools.md, "Members") ----------------------------------------

TEST_F(PoolActors, RefillKeepsTheBufferAndHidesTheMembers) {
  auto& p = boot();
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, warm("p1", 2, 3),
                             std::string{"r1"})
                .first);
  auto ms = members(p, "p1");
  EXPECT_GE(ms.size(), 2u);
  EXPECT_LE(ms.size(), 3u);
  EXPECT_EQ(rt->containers().size(), ms.size());
  for (auto& m : ms) {
    EXPECT_EQ(m.reason, "POOL_MEMBER_IDLE");
    EXPECT_EQ(m.expires_us, 0);
  }
  EXPECT_EQ(num_listed(p), 0u);
  auto g = ask<pool_view>(p.node, atom::pool_get_v, std::string{"p1"});
  ASSERT_TRUE(g.first);
  EXPECT_EQ(g.first->status.available, static_cast<int64_t>(ms.size()));
  EXPECT_EQ(g.first->status.num_warmed, static_cast<int64_t>(ms.size()));
}

TEST_F(PoolActors, RefillsAreBoundedByTheWarmConcurrency) {
  warm_concurrency = 1;
  auto& p = boot();
  rt->hold("start");
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, warm("p1", 3, 3),
                             std::string{"r1"})
                .first);
  EXPECT_EQ(rt->containers().size(), 1u);
  caf::anon_send(p.pools, atom::tick_v);
  sched.run();
  EXPECT_EQ(rt->containers().size(), 1u);
  rt->release("start");
  sched.run();
  EXPECT_EQ(members(p, "p1").size(), 3u);
  EXPECT_EQ(rt->containers().size(), 3u);
}

TEST_F(PoolActors, AClaimTakesAnIdleMemberWithTheClaimsFields) {
  auto& p = boot();
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, warm("p1", 1, 1),
                             std::string{"r1"})
                .first);
  auto before = members(p, "p1");
  ASSERT_EQ(before.size(), 1u);
  sandbox_spec claim;
  claim.extensions = {{"poolRef", "p1"}};
  claim.env = {{"FROM_CLAIM", "c"}};
  claim.metadata = {{"run", "7"}};
  claim.timeout_s = 600;
  auto& warm_claims = ops_metrics().pool_claims.with({"warm"});
  auto warm_before = warm_claims.value();
  auto [v, err] = ask<sandbox_view>(p.node, atom::create_v, claim,
                                    std::string{"r2"});
  ASSERT_TRUE(v) << err.message;
  EXPECT_EQ(warm_claims.value(), warm_before + 1);
  EXPECT_EQ(v->id, before[0].id);
  EXPECT_EQ(v->state, sandbox_state::running);
  EXPECT_NE(v->message.find("Pool 'p1' served it from an idle member"),
            std::string::npos)
    << v->message;
  EXPECT_EQ(v->metadata.at("run"), "7");
  EXPECT_EQ(v->metadata.at("team"), "infra");
  EXPECT_GT(v->expires_us, codec::now_us() + 500'000'000LL);
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0].second.env.at("FROM_CLAIM"), "c");
  EXPECT_EQ(claims[0].second.env.at("FROM_TEMPLATE"), "t");
  // The claimed sandbox is listed; a new member replaced it.
  EXPECT_EQ(num_listed(p), 1u);
  auto after = members(p, "p1");
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after[0].id, v->id);
  auto g = ask<pool_view>(p.node, atom::pool_get_v, std::string{"p1"});
  EXPECT_EQ(g.first->status.num_claims, 1);
  EXPECT_EQ(g.first->status.num_cold, 0);
}

TEST_F(PoolActors, AFailedWarmClaimFallsBackToACold) {
  auto& p = boot();
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, warm("p1", 1, 1),
                             std::string{"r1"})
                .first);
  auto member = members(p, "p1").at(0).id;
  fail_claims = true;
  sandbox_spec claim;
  claim.extensions = {{"poolRef", "p1"}};
  auto [v, err] = ask<sandbox_view>(p.node, atom::create_v, claim,
                                    std::string{"r2"});
  ASSERT_TRUE(v) << err.message;
  EXPECT_NE(v->id, member);
  EXPECT_NE(v->message.find("no idle member"), std::string::npos);
  EXPECT_FALSE(ask<sandbox_view>(p.node, atom::get_v, member).first);
  auto g = ask<pool_view>(p.node, atom::pool_get_v, std::string{"p1"});
  EXPECT_EQ(g.first->status.num_cold, 1);
}

TEST_F(PoolActors, ShrinkAndDeleteRemoveIdleMembers) {
  auto& p = boot();
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, warm("p1", 3, 3),
                             std::string{"r1"})
                .first);
  ASSERT_EQ(rt->containers().size(), 3u);
  pool_capacity cap;
  cap.buffer_min = 1;
  cap.buffer_max = 1;
  cap.pool_max = 100;
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_put_v, std::string{"p1"},
                             cap, std::string{"r2"})
                .first);
  EXPECT_EQ(members(p, "p1").size(), 1u);
  EXPECT_EQ(rt->containers().size(), 1u);
  ASSERT_TRUE(ask<bool>(p.node, atom::pool_del_v, std::string{"p1"},
                        std::string{"r3"})
                .first);
  EXPECT_TRUE(members(p, "p1").empty());
  EXPECT_TRUE(rt->containers().empty());
}

TEST_F(PoolActors, DeleteWhileMembersWarmLeavesNothing) {
  auto& p = boot();
  rt->hold("start");
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, warm("p1", 2, 2),
                             std::string{"r1"})
                .first);
  ASSERT_TRUE(ask<bool>(p.node, atom::pool_del_v, std::string{"p1"},
                        std::string{"r2"})
                .first);
  rt->release("start");
  sched.run();
  EXPECT_TRUE(rt->containers().empty());
}

TEST_F(PoolActors, MembersAreAdoptedAfterACrashWithoutALeak) {
  auto& p1 = boot();
  ASSERT_TRUE(ask<pool_view>(p1.node, atom::pool_new_v, warm("p1", 2, 2),
                             std::string{"r1"})
                .first);
  ASSERT_TRUE(ask<pool_view>(p1.node, atom::pool_new_v, warm("p2", 1, 1),
                             std::string{"r2"})
                .first);
  auto before = members(p1, "p1");
  ASSERT_EQ(before.size(), 2u);
  ASSERT_EQ(rt->containers().size(), 3u);
  // A refill is under way at the crash: its container is created, never
  // started.
  rt->hold("start");
  pool_capacity cap;
  cap.buffer_min = 3;
  cap.buffer_max = 3;
  cap.pool_max = 100;
  ASSERT_TRUE(ask<pool_view>(p1.node, atom::pool_put_v, std::string{"p1"},
                             cap, std::string{"r3"})
                .first);
  ASSERT_EQ(rt->containers().size(), 4u);
  crash(p1);
  procs.clear();
  rt->release("start");
  auto& p2 = boot();
  caf::anon_send(p2.pools, atom::tick_v);
  sched.run();
  auto after = members(p2, "p1");
  EXPECT_EQ(after.size(), 3u);
  for (auto& m : before)
    EXPECT_TRUE(std::any_of(after.begin(), after.end(),
                            [&](auto& x) { return x.id == m.id; }));
  EXPECT_EQ(members(p2, "p2").size(), 1u);
  EXPECT_EQ(rt->containers().size(), 4u);
  // The adopted members serve claims and go with their pool.
  sandbox_spec claim;
  claim.extensions = {{"poolRef", "p2"}};
  auto [v, err] = ask<sandbox_view>(p2.node, atom::create_v, claim,
                                    std::string{"r4"});
  ASSERT_TRUE(v) << err.message;
  EXPECT_EQ(v->message.find("no idle member"), std::string::npos);
  ASSERT_TRUE(ask<bool>(p2.node, atom::pool_del_v, std::string{"p1"},
                        std::string{"r5"})
                .first);
  ASSERT_TRUE(ask<bool>(p2.node, atom::pool_del_v, std::string{"p2"},
                        std::string{"r6"})
                .first);
  EXPECT_EQ(rt->containers().size(), 1u); // the claimed sandbox
}

// -- status.allocated and poolMax (the seed's meaning) -------------------------

TEST_F(PoolActors, ClaimedSandboxesAreAllocatedAndBoundedByPoolMax) {
  auto& p = boot();
  auto r = warm("p1", 1, 1);
  r.capacity.pool_max = 2;
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, r, std::string{"r1"})
                .first);
  auto status = [&](process& q) {
    caf::anon_send(q.pools, atom::tick_v);
    sched.run();
    return ask<pool_view>(q.node, atom::pool_get_v, std::string{"p1"})
      .first->status;
  };
  auto claim_one = [&](process& q, const std::string& rid) {
    sandbox_spec claim;
    claim.extensions = {{"poolRef", "p1"}};
    auto [v, err] = ask<sandbox_view>(q.node, atom::create_v, claim, rid);
    EXPECT_TRUE(v) << err.message;
    return v ? *v : sandbox_view{};
  };
  auto a = claim_one(p, "c1");
  // Counted at once, before any sync.
  auto now = ask<pool_view>(p.node, atom::pool_get_v, std::string{"p1"})
               .first->status;
  EXPECT_EQ(now.allocated, 1);
  EXPECT_EQ(now.available, 1);
  auto b = claim_one(p, "c2");
  EXPECT_EQ(b.message.find("no idle member"), std::string::npos);
  // Two claimed: the pool is at poolMax, no member is made.
  auto s = status(p);
  EXPECT_EQ(s.allocated, 2);
  EXPECT_EQ(s.available, 0);
  EXPECT_EQ(s.warming, 0);
  EXPECT_EQ(s.total(), 2);
  EXPECT_TRUE(members(p, "p1").empty());
  // A third claim is served cold and is no member: not allocated.
  auto c = claim_one(p, "c3");
  EXPECT_NE(c.message.find("no idle member"), std::string::npos);
  EXPECT_EQ(status(p).allocated, 2);
  EXPECT_EQ(rt->containers().size(), 3u);
  // A claimed sandbox deleted: room for a member again.
  ASSERT_TRUE(ask<sandbox_answer>(p.node, atom::call_v,
                                  sandbox_request{a.id, "d1", remove_op{}})
                .first);
  s = status(p);
  EXPECT_EQ(s.allocated, 1);
  EXPECT_EQ(s.available, 1);
  // Durable: after a crash the count comes back from the store.
  crash(p);
  procs.clear();
  auto& q = boot();
  s = status(q);
  EXPECT_EQ(s.allocated, 1);
  EXPECT_EQ(s.available, 1);
  // A pool re-created under the same name does not count the old claims.
  ASSERT_TRUE(ask<bool>(q.node, atom::pool_del_v, std::string{"p1"},
                        std::string{"d2"})
                .first);
  ASSERT_TRUE(ask<pool_view>(q.node, atom::pool_new_v, r, std::string{"r2"})
                .first);
  s = status(q);
  EXPECT_EQ(s.allocated, 0);
  EXPECT_EQ(s.available, 1);
}

// -- templates the host cannot run ---------------------------------------------

TEST_F(PoolActors, TemplatesTheHostCannotRunAreRefusedAtTheirCreate) {
  rt->set_daemon_info({"linux", "amd64", "test"});
  auto dir = std::filesystem::temp_directory_path()
             / ("osb-poolvol-" + codec::make_uuid());
  std::filesystem::create_directories(dir / "allowed");
  node_cfg->storage.allowed_host_paths = {(dir / "allowed").string()};
  auto& p = boot();
  auto r = warm("p1", 1, 1);
  r.tmpl.platform_os = "linux";
  r.tmpl.platform_arch = "arm64";
  auto [v, err] = ask<pool_view>(p.node, atom::pool_new_v, r,
                                 std::string{"r1"});
  EXPECT_FALSE(v);
  EXPECT_EQ(http::status_of(err), 400);
  EXPECT_EQ(err.code, "SANDBOX::INVALID_PARAMETER");
  EXPECT_NE(err.message.find("Platform linux/arm64 is not supported"),
            std::string::npos)
    << err.message;
  r.tmpl.platform_arch = "amd64";
  r.tmpl.volumes_json = R"([{"name":"w","host":{"path":"/etc"},)"
                        R"("mountPath":"/w","readOnly":true}])";
  std::tie(v, err) = ask<pool_view>(p.node, atom::pool_new_v, r,
                                    std::string{"r2"});
  EXPECT_FALSE(v);
  EXPECT_EQ(http::status_of(err), 400);
  EXPECT_EQ(err.code, "VOLUME::HOST_PATH_NOT_ALLOWED");
  // Nothing was stored or made; the name is still free.
  EXPECT_EQ(http::status_of(ask<pool_view>(p.node, atom::pool_get_v, std::string{"p1"})
              .second),
            404);
  EXPECT_EQ(rt->calls("create"), 0u);
  r.tmpl.volumes_json.clear();
  std::tie(v, err) = ask<pool_view>(p.node, atom::pool_new_v, r,
                                    std::string{"r3"});
  ASSERT_TRUE(v) << err.message;
  // A capacity update checks the template again: the allow list changed.
  auto q = warm("p2", 0, 0);
  q.tmpl.volumes_json = R"([{"name":"w","host":{"path":")"
                        + (dir / "allowed").string()
                        + R"("},"mountPath":"/w","readOnly":true}])";
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, q, std::string{"r4"})
                .first);
  node_cfg->storage.allowed_host_paths = {(dir / "other").string()};
  pool_capacity cap;
  cap.pool_max = 3;
  auto up = ask<pool_view>(p.node, atom::pool_put_v, std::string{"p2"}, cap,
                           std::string{"r5"});
  EXPECT_FALSE(up.first);
  EXPECT_EQ(http::status_of(up.second), 400);
  EXPECT_EQ(ask<pool_view>(p.node, atom::pool_get_v, std::string{"p2"})
              .first->record.capacity.pool_max,
            100);
  std::filesystem::remove_all(dir);
}

// -- [pool] match_creates --------------------------------------------------------

namespace {

/// A create without a pool that pool `warm(...)`'s template serves.
sandbox_spec matching_request() {
  sandbox_spec s;
  s.image = "opensandbox/busybox:latest";
  s.entrypoint = {"sh", "-c", "sleep 99"};
  s.env = {{"FROM_TEMPLATE", "mine"}, {"SHARED", "mine"}, {"OWN", "o"}};
  s.metadata = {{"run", "1"}};
  s.resource_limits = {{"cpu", "500m"}, {"memory", "512Mi"}};
  s.timeout_s = 60;
  return s;
}

} // namespace

TEST_F(PoolActors, MatchCreatesServesAMatchingCreateFromAPool) {
  match_creates = true;
  auto& p = boot();
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, warm("p1", 1, 1),
                             std::string{"r1"})
                .first);
  auto member = members(p, "p1").at(0).id;
  auto [v, err] = ask<sandbox_view>(p.node, atom::create_v,
                                    matching_request(), std::string{"c1"});
  ASSERT_TRUE(v) << err.message;
  EXPECT_EQ(v->id, member);
  EXPECT_EQ(v->state, sandbox_state::running);
  EXPECT_NE(v->message.find("Pool 'p1' served it from an idle member"),
            std::string::npos)
    << v->message;
  // The request as it was: its entrypoint, env, metadata and timeout.
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0].second.entrypoint, matching_request().entrypoint);
  EXPECT_EQ(claims[0].second.env, matching_request().env);
  EXPECT_EQ(v->metadata, matching_request().metadata);
  EXPECT_LT(v->expires_us, codec::now_us() + 61'000'000LL);
  auto g = ask<pool_view>(p.node, atom::pool_get_v, std::string{"p1"});
  EXPECT_EQ(g.first->status.num_claims, 1);
  EXPECT_EQ(g.first->status.num_matched, 1);
  EXPECT_EQ(g.first->status.allocated, 1);
  // Other limits, or a template variable the request lacks: created as
  // usual, no member taken.
  auto other = matching_request();
  other.resource_limits["cpu"] = "1";
  auto a = ask<sandbox_view>(p.node, atom::create_v, other,
                             std::string{"c2"});
  ASSERT_TRUE(a.first) << a.second.message;
  EXPECT_EQ(a.first->message.find("Pool"), std::string::npos);
  other = matching_request();
  other.env.erase("FROM_TEMPLATE");
  auto b = ask<sandbox_view>(p.node, atom::create_v, other,
                             std::string{"c3"});
  ASSERT_TRUE(b.first) << b.second.message;
  EXPECT_EQ(b.first->message.find("Pool"), std::string::npos);
  EXPECT_EQ(claims.size(), 1u);
  EXPECT_EQ(ask<pool_view>(p.node, atom::pool_get_v, std::string{"p1"})
              .first->status.num_claims,
            1);
  // The refill made a new member; a failed claim of it falls back to a
  // usual create (the member goes).
  auto next = members(p, "p1").at(0).id;
  fail_claims = true;
  auto c = ask<sandbox_view>(p.node, atom::create_v, matching_request(),
                             std::string{"c4"});
  ASSERT_TRUE(c.first) << c.second.message;
  EXPECT_NE(c.first->id, next);
  EXPECT_EQ(c.first->message.find("Pool"), std::string::npos);
  EXPECT_FALSE(ask<sandbox_view>(p.node, atom::get_v, next).first);
  g = ask<pool_view>(p.node, atom::pool_get_v, std::string{"p1"});
  EXPECT_EQ(g.first->status.num_cold, 0);
  EXPECT_EQ(g.first->status.allocated, 1);
}

TEST_F(PoolActors, WithoutMatchCreatesAMatchingCreateIsCold) {
  auto& p = boot();
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, warm("p1", 1, 1),
                             std::string{"r1"})
                .first);
  auto member = members(p, "p1").at(0).id;
  auto [v, err] = ask<sandbox_view>(p.node, atom::create_v,
                                    matching_request(), std::string{"c1"});
  ASSERT_TRUE(v) << err.message;
  EXPECT_NE(v->id, member);
  EXPECT_TRUE(claims.empty());
  EXPECT_EQ(members(p, "p1").size(), 1u);
}

// -- cluster (docs/pools.md "Cluster"; the NODE actor's messages sent
// directly, as if from peers) -------------------------------------------------

TEST_F(PoolActors, PeerRecordsConvergeAndADeletedPoolNeverReturns) {
  auto& p = boot();
  auto r = record("p1");
  r.generation = 1;
  r.created_us = r.updated_us = codec::now_us();
  r.origin = "n2";
  caf::anon_send(p.pools, atom::pool_rep_v, pool_records{r});
  sched.run();
  auto g = ask<pool_view>(p.node, atom::pool_get_v, std::string{"p1"});
  ASSERT_TRUE(g.first) << g.second.message;
  EXPECT_EQ(g.first->record.origin, "n2");
  // The name is taken here too.
  EXPECT_EQ(http::status_of(ask<pool_view>(p.node, atom::pool_new_v,
                                           record("p1"), std::string{"r1"})
                              .second),
            409);
  auto del = r;
  del.generation = 2;
  del.updated_us += 1;
  del.deleted = true;
  caf::anon_send(p.pools, atom::pool_rep_v, pool_records{del});
  sched.run();
  EXPECT_EQ(http::status_of(
              ask<pool_view>(p.node, atom::pool_get_v, std::string{"p1"})
                .second),
            404);
  // The create again (a replay, or a node that missed the delete): the
  // tombstone stays, also across a crash.
  caf::anon_send(p.pools, atom::pool_rep_v, pool_records{r});
  sched.run();
  EXPECT_EQ(http::status_of(
              ask<pool_view>(p.node, atom::pool_get_v, std::string{"p1"})
                .second),
            404);
  auto before = procs.back();
  crash(before);
  auto& q = boot();
  caf::anon_send(q.pools, atom::pool_rep_v, pool_records{r});
  sched.run();
  EXPECT_EQ(http::status_of(
              ask<pool_view>(q.node, atom::pool_get_v, std::string{"p1"})
                .second),
            404);
  // A new create of the name comes after the tombstone.
  auto re = ask<pool_view>(q.node, atom::pool_new_v, record("p1"),
                           std::string{"r2"});
  ASSERT_TRUE(re.first) << re.second.message;
  EXPECT_EQ(re.first->record.generation, 3);
}

TEST_F(PoolActors, APeersConcurrentCreateReplacesTheIdleMembers) {
  auto& p = boot();
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, warm("p1", 1, 1),
                             std::string{"r1"})
                .first);
  auto old = members(p, "p1");
  ASSERT_EQ(old.size(), 1u);
  // n9 created p1 at the same generation, later: it wins everywhere.
  auto theirs = warm("p1", 1, 1);
  theirs.tmpl.env["FROM_N9"] = "1";
  theirs.generation = 1;
  theirs.created_us = theirs.updated_us = codec::now_us() + 1000;
  theirs.origin = "n9";
  caf::anon_send(p.pools, atom::pool_rep_v, pool_records{theirs});
  sched.run();
  auto g = ask<pool_view>(p.node, atom::pool_get_v, std::string{"p1"});
  ASSERT_TRUE(g.first);
  EXPECT_EQ(g.first->record.origin, "n9");
  auto now = members(p, "p1");
  ASSERT_EQ(now.size(), 1u);
  EXPECT_NE(now[0].id, old[0].id);
  EXPECT_FALSE(ask<sandbox_view>(p.node, atom::get_v, old[0].id).first);
  EXPECT_EQ(rt->containers().size(), 1u);
}

TEST_F(PoolActors, EachNodeKeepsItsShareAsTheMembershipChanges) {
  auto& p = boot();
  auto r = warm("p1", 4, 4);
  r.capacity.pool_max = 4;
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, r, std::string{"r1"})
                .first);
  EXPECT_EQ(members(p, "p1").size(), 4u);
  auto up = [&](std::vector<std::string> names) {
    caf::anon_send(p.pools, atom::members_v, std::move(names));
    sched.run();
    caf::anon_send(p.pools, atom::tick_v);
    sched.run();
  };
  // n1 ranks second of three: 4 = 2 + 1 + 1 (idle members go).
  up({"n0", "n1", "n2"});
  EXPECT_EQ(members(p, "p1").size(), 1u);
  EXPECT_EQ(rt->containers().size(), 1u);
  // n0 is lost: n1 now ranks first of two.
  up({"n1", "n2"});
  EXPECT_EQ(members(p, "p1").size(), 2u);
  // Alone: the whole pool.
  up({"n1"});
  EXPECT_EQ(members(p, "p1").size(), 4u);
}

TEST_F(PoolActors, AClaimWithoutAnIdleMemberGoesToThePeerWithOne) {
  auto& p = boot();
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, warm("p1", 0, 0),
                             std::string{"r1"})
                .first);
  caf::anon_send(p.pools, atom::members_v,
                 std::vector<std::string>{"n1", "n2", "n3"});
  caf::anon_send(p.pools, atom::pool_load_v, std::string{"n2"},
                 pool_tallies{pool_tally{"p1", 1, 2, 3}});
  caf::anon_send(p.pools, atom::pool_load_v, std::string{"n3"},
                 pool_tallies{pool_tally{"p1", 0, 1, 1}});
  sched.run();
  // Status sums the nodes.
  auto g = ask<pool_view>(p.node, atom::pool_get_v, std::string{"p1"});
  ASSERT_TRUE(g.first);
  EXPECT_EQ(g.first->status.available, 3);
  EXPECT_EQ(g.first->status.allocated, 4);
  EXPECT_EQ(g.first->status.total(), 8);
  auto peer_of = [&](bool may_forward) {
    std::string peer = "?";
    auto h = self->request(p.pools, caf::infinite, atom::claim_v,
                           std::string{"p1"}, may_forward);
    sched.run();
    h.receive([&](pool_record&, std::string& member,
                  std::string& to) { peer = member + to; },
              [&](caf::error&) {});
    return peer;
  };
  // The most idle first, equals by name, none left: cold here.
  EXPECT_EQ(peer_of(true), "n2");
  EXPECT_EQ(peer_of(true), "n2");
  EXPECT_EQ(peer_of(false), "");
  EXPECT_EQ(peer_of(true), "n3");
  EXPECT_EQ(peer_of(true), "");
  g = ask<pool_view>(p.node, atom::pool_get_v, std::string{"p1"});
  EXPECT_EQ(g.first->status.num_forwarded, 3);
  EXPECT_EQ(g.first->status.num_cold, 2);
  // A lost peer's counts leave the status.
  caf::anon_send(p.pools, atom::members_v,
                 std::vector<std::string>{"n1", "n3"});
  sched.run();
  g = ask<pool_view>(p.node, atom::pool_get_v, std::string{"p1"});
  EXPECT_EQ(g.first->status.allocated, 1);
}
