// Unit tests of the POOLS actor and of claims through the NODE actor on
// CAF's deterministic scheduler, with the Docker runtime over the fake
// engine: definitions (409, capacity updates, tombstones), idempotency per
// request id, durability across a crash, and claims served cold.

#include <caf/actor_system.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>

#include <gtest/gtest.h>

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
    p.runtime = sys.spawn(runtime_bridge,
                          std::make_shared<runtimes::docker::docker_runtime>(
                            rt, std::move(opts)));
    p.store = sys.spawn(store_actor_impl,
                        std::shared_ptr<store::sqlite_store>(std::move(*db)));
    node_init ni;
    ni.self = node_info{"n1", cluster_protocol_version, ""};
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
  EXPECT_EQ(dup.second.status, 409);
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
  EXPECT_EQ(missing.second.status, 404);
  EXPECT_EQ(missing.second.code, "KUBERNETES::POOL_NOT_FOUND");
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, record("p2"),
                             std::string{"r4"})
                .first);
  auto del = ask<bool>(p.node, atom::pool_del_v, std::string{"p2"},
                       std::string{"r5"});
  ASSERT_TRUE(del.first) << del.second.message;
  EXPECT_EQ(ask<pool_view>(p.node, atom::pool_get_v, std::string{"p2"})
              .second.status,
            404);
  EXPECT_EQ(ask<bool>(p.node, atom::pool_del_v, std::string{"p2"},
                      std::string{"r6"})
              .second.status,
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
  EXPECT_EQ(ask<pool_view>(q.node, atom::pool_get_v, std::string{"p2"})
              .second.status,
            404);
}

TEST_F(PoolActors, AClaimRunsTheTemplateColdWithTheClaimsFields) {
  auto& p = boot();
  ASSERT_TRUE(ask<pool_view>(p.node, atom::pool_new_v, record("p1"),
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
  EXPECT_EQ(bad.second.status, 404);
  EXPECT_EQ(rt->containers().size(), 1u);
}
