// Node incarnations as evidence for orphan removal: a host supervisor removes
// a container without a row only when its store recorded the incarnation
// that created it, so a second process started under the same name (with
// its own store) never removes the first one's containers. CAF's
// deterministic scheduler, the Docker runtime over the fake engine.

#include <caf/actor_system.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <set>

#include "actors/error.hpp"
#include "actors/host_supervisor.hpp"
#include "actors/node.hpp"
#include "actors/runtime_bridge.hpp"
#include "actors/store_actor.hpp"
#include "actors/system_config.hpp"
#include "core/ids.hpp"
#include "core/spec_json.hpp"
#include "core/time.hpp"
#include "http/status.hpp"
#include "runtimes/docker/docker_runtime.hpp"
#include "runtimes/docker/fake_engine.hpp"
#include "runtimes/docker/labels.hpp"

using namespace osb;
using runtimes::docker::incarnation_label;

namespace {

struct test_config : system_config {
  test_config() {
    set("scheduler.policy", caf::atom("testing"));
  }
};

/// One server process of node "n1": its own store and incarnation over
/// the shared fake Docker host.
struct process {
  node_actor node;
  supervisor_actor sup;
  runtime_actor runtime;
  store_actor store;
};

class Incarnations : public testing::Test {
protected:
  Incarnations()
    : sys(cfg_),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())),
      self(sys, true) {
    rt = std::make_shared<runtimes::docker::fake_engine>();
    node_cfg = std::make_shared<node_config>();
  }

  ~Incarnations() override {
    for (auto& p : procs)
      for (auto hdl : {caf::actor_cast<caf::actor>(p.node),
                       caf::actor_cast<caf::actor>(p.sup),
                       caf::actor_cast<caf::actor>(p.runtime),
                       caf::actor_cast<caf::actor>(p.store)})
        caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    sched.run();
    std::error_code ec;
    for (auto& db : dbs)
      for (auto ext : {"", "-wal", "-shm"})
        std::filesystem::remove(db + ext, ec);
  }

  /// Starts a process of n1 as `incarnation` whose store recorded
  /// `recorded` (the current one included), and runs its recovery.
  process boot(const std::string& incarnation,
                std::vector<std::string> recorded) {
    dbs.push_back((std::filesystem::temp_directory_path()
                   / ("osb-incarnation-" + codec::make_uuid() + ".db"))
                    .string());
    auto db = store::sqlite_store::open(dbs.back());
    EXPECT_TRUE(db.has_value());
    process p;
    runtimes::docker::docker_options opts;
    opts.cfg = node_cfg;
    opts.node = "n1";
    opts.incarnation = incarnation;
    opts.probe_sidecars = false;
    p.runtime = sys.spawn(runtime_bridge,
                          std::make_shared<runtimes::docker::docker_runtime>(
                            rt, std::move(opts)));
    p.store = sys.spawn(store_actor_impl,
                        std::shared_ptr<store::sqlite_store>(std::move(*db)));
    node_init ni;
    ni.self = node_info{"n1", cluster_protocol_version, ""};
    ni.self.incarnation = incarnation;
    p.node = sys.spawn(node, ni);
    supervisor_init init;
    init.cfg = node_cfg;
    init.node_name = "n1";
    init.node = p.node;
    init.runtime = p.runtime;
    init.store = p.store;
    init.incarnations = std::move(recorded);
    p.sup = sys.spawn(host_supervisor, init);
    caf::anon_send(p.node, atom::put_v, p.sup, std::string{"default"});
    sched.run();
    procs.push_back(p);
    return p;
  }

  /// Puts a container of n1 on the fake host, as another process left it.
  void leave(const std::string& name, string_map labels) {
    runtimes::docker::container_spec c;
    c.name = name;
    c.image = "x";
    c.labels = std::move(labels);
    c.labels["opensandbox.io/node"] = "n1";
    c.labels["opensandbox.io/runtime-host"] = "default";
    rt->create(c, [](expected<std::string>) {});
  }

  std::set<std::string> names() {
    std::set<std::string> result;
    for (auto& c : rt->containers())
      result.insert(c.name);
    return result;
  }

  template <class T, class... Ts>
  std::pair<std::optional<T>, api_error> ask(const node_actor& hdl,
                                             Ts&&... xs) {
    std::optional<T> value;
    api_error err;
    auto h = self->request(hdl, caf::infinite, std::forward<Ts>(xs)...);
    sched.run();
    h.receive([&](T& x) { value = std::move(x); },
              [&](caf::error& e) { err = to_api_error(e); });
    return {std::move(value), std::move(err)};
  }

  sandbox_view create(process& p) {
    sandbox_spec s;
    s.image = "opensandbox/busybox:latest";
    s.entrypoint = {"sleep", "3600"};
    // A fresh request id each time (a repeated one is a retry).
    auto [v, err] = ask<sandbox_view>(p.node, atom::create_v, s,
                                      "rid-" + std::to_string(++num_creates));
    EXPECT_TRUE(v) << err.message;
    return v ? *v : sandbox_view{};
  }

  int num_creates = 0;
  test_config cfg_;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  caf::scoped_actor self;
  std::shared_ptr<runtimes::docker::fake_engine> rt;
  std::shared_ptr<node_config> node_cfg;
  std::vector<std::string> dbs;
  std::vector<process> procs;
};

} // namespace

TEST_F(Incarnations, RecoveryRemovesOnlyOrphansItsStoreRecorded) {
  leave("sandbox-mine", {{"opensandbox.io/id", "mine"},
                         {incarnation_label, "inc-old"}});
  leave("sandbox-theirs", {{"opensandbox.io/id", "theirs"},
                           {incarnation_label, "inc-other"}});
  leave("sandbox-legacy", {{"opensandbox.io/id", "legacy"}});
  leave("sandbox-egress-mine", {{"opensandbox.io/egress-sidecar-for", "m2"},
                                {incarnation_label, "inc-old"}});
  leave("sandbox-egress-theirs", {{"opensandbox.io/egress-sidecar-for", "t2"},
                                  {incarnation_label, "inc-other"}});
  auto p = boot("inc-cur", {"inc-old", "inc-cur"});
  // What an incarnation of this store made goes; the rest stays.
  EXPECT_EQ(names(), (std::set<std::string>{"sandbox-theirs", "sandbox-legacy",
                                            "sandbox-egress-theirs"}));
  // The recovery is done: an unknown sandbox is missing, not "not yet".
  auto [g, err] = ask<sandbox_view>(p.node, atom::get_v, std::string{"nope"});
  EXPECT_FALSE(g);
  EXPECT_EQ(http::status_of(err), 404) << err.message;
  // What this process creates carries its incarnation.
  auto v = create(p);
  for (auto& c : rt->containers())
    if (c.labels.count("opensandbox.io/id")
        && c.labels.at("opensandbox.io/id") == v.id) {
      EXPECT_EQ(c.labels.at(incarnation_label), "inc-cur");
    }
}

TEST_F(Incarnations, SecondProcessOfTheSameNameKeepsTheFirstOnesContainers) {
  // The real n1 runs two sandboxes.
  auto a = boot("inc-a", {"inc-a"});
  auto x = create(a);
  auto y = create(a);
  ASSERT_EQ(rt->containers().size(), 2u);
  // A second process named n1 starts with a fresh store: its recovery
  // finds two containers of "n1" without rows, made by an incarnation its
  // store never recorded.
  auto b = boot("inc-b", {"inc-b"});
  EXPECT_EQ(rt->containers().size(), 2u);
  for (auto& id : {x.id, y.id}) {
    auto [g, err] = ask<sandbox_view>(a.node, atom::get_v, id);
    ASSERT_TRUE(g) << err.message;
    EXPECT_EQ(g->state, sandbox_state::running);
  }
  // Without the incarnation check (an empty record) the same recovery
  // would have taken them: the check is what keeps them.
  boot("inc-c", {});
  (void) b;
  EXPECT_TRUE(rt->containers().empty());
}
