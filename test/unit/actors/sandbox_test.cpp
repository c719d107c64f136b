// Unit tests of the sandbox state machine, timers, recovery and the node
// directory on CAF's deterministic scheduler, with the Docker runtime over
// the fake engine.

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>

#include "actors/error.hpp"
#include "actors/host_supervisor.hpp"
#include "actors/node.hpp"
#include "actors/runtime_bridge.hpp"
#include "actors/snapshots.hpp"
#include "core/server_metrics.hpp"
#include "actors/store_actor.hpp"
#include "actors/system_config.hpp"
#include "core/ids.hpp"
#include "core/pool.hpp"
#include "core/spec_json.hpp"
#include "core/time.hpp"
#include "http/status.hpp"
#include "runtimes/docker/docker_runtime.hpp"
#include "runtimes/docker/fake_engine.hpp"

using namespace std::chrono_literals;
using namespace osb;

namespace {

struct test_config : system_config {
  test_config() {
    set("scheduler.policy", caf::atom("testing"));
  }
};

/// One "server process": node, supervisor, runtime bridge and store over a
/// shared fake engine and database file, so a test can "restart" it.
struct process {
  node_actor node;
  supervisor_actor sup;
  runtime_actor runtime;
  store_actor store;
  snapshots_actor snaps;
};

class SandboxActors : public testing::Test {
protected:
  SandboxActors()
    : sys(cfg_),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())),
      self(sys, true) {
    db_path = std::filesystem::temp_directory_path()
              / ("osb-actors-" + codec::make_uuid() + ".db");
    rt = std::make_shared<runtimes::docker::fake_engine>();
    node_cfg = std::make_shared<node_config>();
  }

  ~SandboxActors() override {
    for (auto& p : procs)
      shutdown(p);
    sched.run();
    std::error_code ec;
    for (auto ext : {"", "-wal", "-shm"})
      std::filesystem::remove(db_path.string() + ext, ec);
  }

  void shutdown(process& p) {
    for (auto hdl :
         {caf::actor_cast<caf::actor>(p.node), caf::actor_cast<caf::actor>(p.sup),
          caf::actor_cast<caf::actor>(p.runtime),
          caf::actor_cast<caf::actor>(p.store),
          caf::actor_cast<caf::actor>(p.snaps)})
      caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
  }

  /// Starts (or restarts) the server actors and runs recovery.
  process& boot(std::shared_ptr<const std::string> execd_tar = nullptr) {
    auto db = store::sqlite_store::open(db_path.string());
    EXPECT_TRUE(db.has_value());
    process p;
    runtimes::docker::docker_options opts;
    opts.cfg = node_cfg;
    opts.node = "n1";
    opts.execd_tar = std::move(execd_tar);
    opts.probe_sidecars = false; // no sidecar answers in the fake engine
    opts.probe_members = false;
    opts.claimer = [this](const runtimes::sandbox_instance& x,
                          const runtimes::claim_request& c,
                          runtimes::callback<unit> cb) {
      claims.emplace_back(x.id, c);
      if (hold_claims)
        held_claims.push_back(std::move(cb));
      else if (fail_claims)
        cb(failure{failure_kind::conflict, "already claimed"});
      else
        cb(unit{});
    };
    runtimes::runtime_ptr docker
      = std::make_shared<runtimes::docker::docker_runtime>(rt, std::move(opts));
    p.runtime = sys.spawn(runtime_bridge, wrap ? wrap(docker) : docker);
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
    snapshots_init si;
    si.node_name = "n1";
    si.store = p.store;
    si.runtimes.emplace("default", p.runtime);
    p.snaps = sys.spawn(snapshots, si);
    caf::anon_send(p.node, atom::put_v, p.snaps);
    sched.run();
    procs.push_back(p);
    return procs.back();
  }

  /// Simulates kill -9: the actors vanish without any cleanup.
  void crash(process& p) {
    for (auto hdl :
         {caf::actor_cast<caf::actor>(p.node), caf::actor_cast<caf::actor>(p.sup),
          caf::actor_cast<caf::actor>(p.runtime),
          caf::actor_cast<caf::actor>(p.store),
          caf::actor_cast<caf::actor>(p.snaps)})
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

  /// Runs an operation (core/sandbox_ops.hpp) on sandbox `id` through `hdl`
  /// (a NODE actor) and answers the operation's answer.
  template <class T, class Handle>
  std::pair<std::optional<T>, api_error> call(const Handle& hdl, std::string id,
                                              sandbox_op op, std::string rid) {
    auto [x, err] = ask<sandbox_answer>(
      hdl, atom::call_v,
      sandbox_request{std::move(id), std::move(rid), std::move(op)});
    if (!x)
      return {std::nullopt, std::move(err)};
    return {std::get<T>(std::move(*x)), std::move(err)};
  }

  sandbox_spec spec(int64_t timeout_s = 0) {
    sandbox_spec s;
    s.image = "opensandbox/busybox:latest";
    s.entrypoint = {"sleep", "3600"};
    s.timeout_s = timeout_s;
    s.metadata = {{"team", "infra"}};
    s.resource_limits = {{"cpu", "500m"}, {"memory", "512Mi"}};
    s.env = {{"A", "1"}};
    return s;
  }

  /// A fresh request id: each request of a client has its own (a repeated
  /// one is a retry, applied at most once).
  std::string rid() {
    return "rid-" + std::to_string(++num_requests);
  }

  int num_requests = 0;

  sandbox_view create(process& p, sandbox_spec s) {
    auto [view, err] = ask<sandbox_view>(p.node, atom::create_v, std::move(s),
                                         rid());
    EXPECT_TRUE(view) << err.message;
    return view ? *view : sandbox_view{};
  }

  std::optional<sandbox_view> get(process& p, const std::string& id) {
    return ask<sandbox_view>(p.node, atom::get_v, id).first;
  }

  void advance(caf::timespan d) {
    sched.clock().advance_time(d);
    sched.run();
  }

  /// Claims the runtime was asked for (sandbox id, claim).
  std::vector<std::pair<std::string, runtimes::claim_request>> claims;
  /// Claims left unanswered while `hold_claims` is set.
  std::vector<runtimes::callback<unit>> held_claims;
  bool hold_claims = false;
  bool fail_claims = false;
  /// Replaces the runtime `boot` gives the actors (null: Docker's).
  std::function<runtimes::runtime_ptr(runtimes::runtime_ptr)> wrap;

  /// A pool member's create (what the POOLS actor asks the node for).
  sandbox_spec member_spec(const std::string& pool) {
    auto s = spec(60);
    s.extensions[pool_member_extension] = pool;
    return s;
  }

  /// What a claim starts: another entrypoint, env, metadata and timeout.
  sandbox_spec claimed_spec() {
    auto s = spec(120);
    s.entrypoint = {"python3", "app.py"};
    s.env = {{"A", "1"}, {"CLAIM", "yes"}};
    s.metadata = {{"user", "u1"}};
    return s;
  }

  std::pair<std::optional<sandbox_view>, api_error>
  claim(process& p, const std::string& id) {
    return ask<sandbox_view>(p.node, atom::internal_v, atom::claim_v, id,
                             claimed_spec(), rid());
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

/// A runtime whose state lives in the workload (as Kubernetes'): Docker's
/// over the fake engine, with provisionings held until the test lets each
/// reach its `created` phase and end.
class workload_state_runtime : public runtimes::sandbox_runtime {
public:
  struct held {
    runtimes::sandbox_instance x;
    runtimes::provision_options opts;
    std::function<void(runtimes::provision_result)> cb;
  };

  explicit workload_state_runtime(runtimes::runtime_ptr inner)
    : in(std::move(inner)) {
  }

  void admit(const sandbox_spec& spec,
             runtimes::callback<runtimes::admission> cb) override {
    in->admit(spec, [cb](expected<runtimes::admission> a) {
      if (a)
        a->state_in_workload = true;
      cb(std::move(a));
    });
  }
  void provision(const runtimes::sandbox_instance& x,
                 runtimes::provision_options opts,
                 std::function<void(runtimes::provision_result)> cb) override {
    provisions.push_back(held{x, std::move(opts), std::move(cb)});
  }
  /// Lets the held provisioning `i` make its workload object.
  void make_object(size_t i) {
    provisions.at(i).opts.on_phase(create_phase::created);
  }
  /// Runs the held provisioning `i` on the inner runtime to its end.
  void run(size_t i) {
    auto& h = provisions.at(i);
    in->provision(h.x, h.opts, h.cb);
  }
  void record(const runtimes::sandbox_instance& x,
              runtimes::callback<unit> cb) override {
    in->record(x, std::move(cb));
  }
  void pause(const runtimes::sandbox_instance& x,
             runtimes::callback<unit> cb) override {
    in->pause(x, std::move(cb));
  }
  void resume(const runtimes::sandbox_instance& x,
              runtimes::callback<unit> cb) override {
    in->resume(x, std::move(cb));
  }
  void remove(const runtimes::sandbox_instance& x, bool never_ran,
              runtimes::callback<unit> cb) override {
    ++removes;
    in->remove(x, never_ran, std::move(cb));
  }
  void observe(runtimes::callback<runtimes::observation> cb) override {
    in->observe(std::move(cb));
  }
  void leftover_volumes(
    runtimes::callback<std::vector<runtimes::runtime_object>> cb) override {
    in->leftover_volumes(std::move(cb));
  }
  void remove_object(const runtimes::runtime_object& x,
                     runtimes::callback<unit> cb) override {
    in->remove_object(x, std::move(cb));
  }
  void diagnose(const runtimes::sandbox_instance& x, const sandbox_view& now,
                const diagnostics_query& q,
                runtimes::callback<std::string> cb) override {
    in->diagnose(x, now, q, std::move(cb));
  }
  std::string image_of(const std::string& snapshot_id) const override {
    return in->image_of(snapshot_id);
  }
  void snapshot(const std::string& sandbox_id, const std::string& snapshot_id,
                runtimes::callback<std::string> cb) override {
    in->snapshot(sandbox_id, snapshot_id, std::move(cb));
  }
  void image_exists(const std::string& ref,
                    runtimes::callback<bool> cb) override {
    in->image_exists(ref, std::move(cb));
  }
  void remove_image(const std::string& ref,
                    runtimes::callback<unit> cb) override {
    in->remove_image(ref, std::move(cb));
  }
  void snapshot_images(
    const std::vector<std::string>& incarnations,
    runtimes::callback<std::vector<runtimes::snapshot_image>> cb) override {
    in->snapshot_images(incarnations, std::move(cb));
  }
  void shutdown() override {
    in->shutdown();
  }

  runtimes::runtime_ptr in;
  std::vector<held> provisions;
  int removes = 0;
};

/// A request whose answer may not have come yet (an event-based asker, so
/// that the test can look before the answer).
struct pending_answer {
  std::optional<sandbox_view> view;
  std::optional<api_error> err;
};

} // namespace

TEST_F(SandboxActors, CreateAnswersPendingThenRuns) {
  auto& p = boot();
  auto v = create(p, spec(3600));
  EXPECT_EQ(v.state, sandbox_state::pending);
  EXPECT_NE(v.ports.execd, 0);
  EXPECT_NE(v.ports.http, 0);
  EXPECT_GT(v.expires_us, v.created_us);
  auto g = get(p, v.id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, sandbox_state::running);
  EXPECT_EQ(g->reason, "CONTAINER_RUNNING");
  auto cs = rt->containers();
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].status, "running");
  EXPECT_EQ(cs[0].labels.at("opensandbox.io/id"), v.id);
  EXPECT_EQ(cs[0].labels.at("team"), "infra");
  auto c = rt->spec_of(cs[0].id);
  EXPECT_EQ(c.nano_cpus, 500000000);
  EXPECT_EQ(c.memory_bytes, 536870912);
  EXPECT_EQ(c.pids_limit, 4096);
  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_EQ(c.security_opt.at(0), "no-new-privileges:true");
  EXPECT_FALSE(c.cap_drop.empty());
}

TEST_F(SandboxActors, ExpiresOnTimeAndRemovesContainer) {
  auto& p = boot();
  auto v = create(p, spec(60));
  advance(59s);
  EXPECT_TRUE(get(p, v.id));
  advance(2s);
  EXPECT_FALSE(get(p, v.id));
  EXPECT_TRUE(rt->containers().empty());
}

TEST_F(SandboxActors, ManualCleanupNeverExpires) {
  auto& p = boot();
  auto v = create(p, spec(0));
  EXPECT_EQ(v.expires_us, 0);
  advance(std::chrono::hours(24 * 30));
  EXPECT_TRUE(get(p, v.id));
  auto [t, err] = call<int64_t>(p.node, v.id,
                                renew_op{codec::now_us() + 600'000'000}, rid());
  EXPECT_FALSE(t);
  EXPECT_EQ(http::status_of(err), 409);
  EXPECT_EQ(err.code, "DOCKER::INVALID_EXPIRATION");
}

TEST_F(SandboxActors, RenewVoidsTheOldTimer) {
  auto& p = boot();
  auto v = create(p, spec(60));
  auto target = codec::now_us() + 600'000'000;
  auto [t, err] = call<int64_t>(p.node, v.id, renew_op{target}, rid());
  ASSERT_TRUE(t) << err.message;
  EXPECT_EQ(*t, target);
  advance(61s); // the original timer fires and must be ignored
  auto g = get(p, v.id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->expires_us, target);
  advance(600s);
  EXPECT_FALSE(get(p, v.id));
}

TEST_F(SandboxActors, RenewInThePastIsRejected) {
  auto& p = boot();
  auto v = create(p, spec(60));
  auto [t, err]
    = call<int64_t>(p.node, v.id, renew_op{codec::now_us() - 1000}, rid());
  EXPECT_FALSE(t);
  EXPECT_EQ(http::status_of(err), 400);
}

TEST_F(SandboxActors, PauseAndResumeFollowTheStateMachine) {
  auto& p = boot();
  auto v = create(p, spec());
  auto [r1, e1] = call<sandbox_view>(p.node, v.id, resume_op{}, rid());
  EXPECT_FALSE(r1);
  EXPECT_EQ(e1.code, "DOCKER::SANDBOX_NOT_PAUSED");
  auto [p1, e2] = call<sandbox_view>(p.node, v.id, pause_op{}, rid());
  ASSERT_TRUE(p1) << e2.message;
  EXPECT_EQ(get(p, v.id)->state, sandbox_state::paused);
  EXPECT_EQ(rt->containers().at(0).status, "paused");
  auto [p2, e3] = call<sandbox_view>(p.node, v.id, pause_op{}, rid());
  EXPECT_FALSE(p2);
  EXPECT_EQ(http::status_of(e3), 409);
  EXPECT_EQ(e3.code, "DOCKER::SANDBOX_NOT_RUNNING");
  auto [r2, e4] = call<sandbox_view>(p.node, v.id, resume_op{}, rid());
  ASSERT_TRUE(r2) << e4.message;
  EXPECT_EQ(get(p, v.id)->state, sandbox_state::running);
}

TEST_F(SandboxActors, PauseFailureIsReportedAndStateRestored) {
  auto& p = boot();
  auto v = create(p, spec());
  rt->fail_next("pause", failure{failure_kind::failed, "cgroup frozen"});
  auto [p1, err] = call<sandbox_view>(p.node, v.id, pause_op{}, rid());
  EXPECT_FALSE(p1);
  EXPECT_EQ(err.code, "DOCKER::SANDBOX_PAUSE_FAILED");
  EXPECT_EQ(get(p, v.id)->state, sandbox_state::running);
}

TEST_F(SandboxActors, DeleteRemovesContainerAndRecord) {
  auto& p = boot();
  auto v = create(p, spec());
  auto [ok, err] = call<std::string>(p.node, v.id, remove_op{}, rid());
  ASSERT_TRUE(ok) << err.message;
  EXPECT_FALSE(get(p, v.id));
  EXPECT_TRUE(rt->containers().empty());
  auto [again, err2] = call<std::string>(p.node, v.id, remove_op{}, rid());
  EXPECT_FALSE(again);
  EXPECT_EQ(http::status_of(err2), 404);
}

TEST_F(SandboxActors, DeleteWhileDockerIsDownIsAcceptedAndCarriedOut) {
  auto& p = boot();
  auto v = create(p, spec());
  rt->fail_next("remove", failure{failure_kind::unavailable,
                                  "Docker is unreachable"});
  auto [pending, err] = call<std::string>(p.node, v.id, remove_op{}, rid());
  // Not an error: the deletion is durable and will happen.
  ASSERT_TRUE(pending) << err.message;
  EXPECT_NE(pending->find("Docker is unreachable"), std::string::npos)
    << *pending;
  EXPECT_FALSE(get(p, v.id));
  EXPECT_EQ(rt->containers().size(), 1u);
  advance(10s);
  EXPECT_TRUE(rt->containers().empty());
}

TEST_F(SandboxActors, RetriesWithTheSameRequestIdAreAppliedOnce) {
  auto& p = boot();
  auto s = spec();
  // A create sent twice makes one sandbox.
  auto [a, e1] = ask<sandbox_view>(p.node, atom::create_v, s,
                                   std::string{"create-1"});
  auto [b, e2] = ask<sandbox_view>(p.node, atom::create_v, s,
                                   std::string{"create-1"});
  ASSERT_TRUE(a && b) << e1.message << e2.message;
  EXPECT_EQ(a->id, b->id);
  EXPECT_EQ(rt->calls("create"), 1u);
  // A pause sent twice gets the first answer, not a 409.
  auto id = a->id;
  auto [p1, e3]
    = call<sandbox_view>(p.node, id, pause_op{}, std::string{"pause-1"});
  auto [p2, e4]
    = call<sandbox_view>(p.node, id, pause_op{}, std::string{"pause-1"});
  ASSERT_TRUE(p1 && p2) << e3.message << e4.message;
  EXPECT_EQ(rt->calls("pause"), 1u);
  // Another change of the sandbox ends the replay: a client that reuses
  // its request id is not answered from the past.
  ASSERT_TRUE(
    call<sandbox_view>(p.node, id, resume_op{}, std::string{"pause-1"}).first);
  auto [p3, e5]
    = call<sandbox_view>(p.node, id, pause_op{}, std::string{"pause-1"});
  ASSERT_TRUE(p3) << e5.message;
  EXPECT_EQ(rt->calls("pause"), 2u);
  EXPECT_EQ(get(p, id)->state, sandbox_state::paused);
  // Concurrent duplicates join the one in flight.
  auto unpauses = rt->calls("unpause");
  rt->hold("unpause");
  auto resume2 = sandbox_request{id, "resume-2", resume_op{}};
  auto h1 = self->request(p.node, caf::infinite, atom::call_v, resume2);
  auto h2 = self->request(p.node, caf::infinite, atom::call_v, resume2);
  sched.run();
  rt->release("unpause");
  sched.run();
  int answers = 0;
  for (auto* h : {&h1, &h2})
    h->receive([&](sandbox_answer&) { ++answers; },
               [&](caf::error& e) { ADD_FAILURE() << to_string(e); });
  EXPECT_EQ(answers, 2);
  EXPECT_EQ(rt->calls("unpause") - unpauses, 1u);
  // A delete sent twice: the second is no 404.
  auto [d1, e6]
    = call<std::string>(p.node, id, remove_op{}, std::string{"delete-1"});
  auto [d2, e7]
    = call<std::string>(p.node, id, remove_op{}, std::string{"delete-1"});
  ASSERT_TRUE(d1 && d2) << e6.message << e7.message;
  EXPECT_EQ(*d2, "");
}

TEST_F(SandboxActors, APauseDockerDoesNotConfirmHasAnUnknownOutcome) {
  auto& p = boot();
  auto v = create(p, spec());
  rt->fail_next("pause", failure{failure_kind::timeout, "timed out"});
  auto [x, err] = call<sandbox_view>(p.node, v.id, pause_op{}, rid());
  EXPECT_FALSE(x);
  EXPECT_EQ(http::status_of(err), 504);
  EXPECT_EQ(err.code, "SANDBOX::OUTCOME_UNKNOWN");
}

TEST_F(SandboxActors, AHostPortTakenByAnotherProgramIsReplaced) {
  auto& p = boot();
  auto taken = failure{failure_kind::failed,
                       "driver failed programming external connectivity: "
                       "listen tcp4 0.0.0.0:45678: bind: address already in "
                       "use"};
  rt->fail_next("start", taken);
  auto v = create(p, spec());
  auto g = get(p, v.id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, sandbox_state::running) << g->message;
  EXPECT_NE(g->ports.execd, v.ports.execd);
  EXPECT_NE(g->ports.execd, 0);
  ASSERT_EQ(rt->containers().size(), 1u);
  // The new ports are durable.
  auto db = store::sqlite_store::open(db_path.string());
  auto rows = (*db)->load("n1");
  EXPECT_EQ(rows->at(0).execd_port, g->ports.execd);
  // Three times in a row: the sandbox fails with the reason.
  for (int i = 0; i < 4; ++i)
    rt->fail_next("start", taken);
  auto w = create(p, spec());
  EXPECT_EQ(get(p, w.id)->state, sandbox_state::failed);
  EXPECT_EQ(get(p, w.id)->reason, "CONTAINER_START_FAILED");
  EXPECT_EQ(rt->containers().size(), 1u);
}

TEST_F(SandboxActors, DeleteDuringProvisioningLeavesNothing) {
  auto& p = boot();
  rt->hold("create");
  auto v = create(p, spec());
  auto [ok, err] = call<std::string>(p.node, v.id, remove_op{}, rid());
  ASSERT_TRUE(ok) << err.message;
  EXPECT_FALSE(get(p, v.id));
  rt->release("create");
  sched.run();
  EXPECT_TRUE(rt->containers().empty());
}

TEST_F(SandboxActors, ImagePullFailureMarksFailedWithReason) {
  auto& p = boot();
  rt->set_known_images({"other:1"});
  auto v = create(p, spec());
  auto g = get(p, v.id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, sandbox_state::failed);
  EXPECT_EQ(g->reason, "IMAGE_PULL_FAILED");
  EXPECT_NE(g->message.find("opensandbox/busybox:latest"), std::string::npos);
  EXPECT_TRUE(rt->containers().empty());
}

TEST_F(SandboxActors, StartFailureRemovesTheContainer) {
  auto& p = boot();
  rt->fail_next("start", failure{failure_kind::failed, "exec format error"});
  auto v = create(p, spec());
  auto g = get(p, v.id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, sandbox_state::failed);
  EXPECT_EQ(g->reason, "CONTAINER_START_FAILED");
  EXPECT_TRUE(rt->containers().empty());
}

TEST_F(SandboxActors, PatchMergesAndDeletesKeys) {
  auto& p = boot();
  auto v = create(p, spec());
  metadata_patch mp;
  mp.set = {{"project", "alpha"}};
  mp.remove = {"team"};
  auto [r, err] = call<sandbox_view>(p.node, v.id, patch_op{mp}, rid());
  ASSERT_TRUE(r) << err.message;
  EXPECT_EQ(r->metadata, (string_map{{"project", "alpha"}}));
  // A second patch must not resurrect the deleted create-time key.
  metadata_patch mp2;
  mp2.set = {{"x", "1"}};
  auto [r2, err2] = call<sandbox_view>(p.node, v.id, patch_op{mp2}, rid());
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->metadata, (string_map{{"project", "alpha"}, {"x", "1"}}));
}

TEST_F(SandboxActors, ListFiltersAndPaginatesFromTheDirectory) {
  auto& p = boot();
  for (int i = 0; i < 5; ++i) {
    auto s = spec();
    s.metadata = {{"n", std::to_string(i % 2)}};
    create(p, s);
  }
  list_query q;
  q.metadata = {{"n", "1"}};
  auto [page, err] = ask<list_page>(p.node, atom::list_v, q);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->total_items, 2);
  list_query q2;
  q2.page = 2;
  q2.page_size = 2;
  q2.states = {sandbox_state::running};
  auto [page2, err2] = ask<list_page>(p.node, atom::list_v, q2);
  ASSERT_TRUE(page2);
  EXPECT_EQ(page2->total_items, 5);
  EXPECT_EQ(page2->items.size(), 2u);
  list_query q3;
  q3.states = {sandbox_state::paused};
  EXPECT_EQ(ask<list_page>(p.node, atom::list_v, q3).first->total_items, 0);
}

TEST_F(SandboxActors, ExitedContainerIsReportedByReconciliation) {
  auto& p = boot();
  auto v = create(p, spec());
  rt->exit_container(rt->containers().at(0).id, 3);
  advance(6s);
  auto g = get(p, v.id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, sandbox_state::failed);
  EXPECT_EQ(g->reason, "CONTAINER_EXITED_ERROR");
}

TEST_F(SandboxActors, RestartRecoversRenewalsPatchesAndPauses) {
  auto& p1 = boot();
  auto a = create(p1, spec(60));
  auto b = create(p1, spec(60));
  auto target = codec::now_us() + 3600'000'000LL;
  ASSERT_TRUE(call<int64_t>(p1.node, a.id, renew_op{target}, rid()).first);
  metadata_patch mp;
  mp.set = {{"k", "v"}};
  mp.remove = {"team"};
  ASSERT_TRUE(call<sandbox_view>(p1.node, a.id, patch_op{mp}, rid()).first);
  ASSERT_TRUE(call<sandbox_view>(p1.node, b.id, pause_op{}, rid()).first);
  crash(p1);
  procs.clear();
  auto& p2 = boot();
  auto ra = get(p2, a.id);
  ASSERT_TRUE(ra);
  EXPECT_EQ(ra->expires_us, target);
  EXPECT_EQ(ra->metadata, (string_map{{"k", "v"}}));
  EXPECT_EQ(ra->state, sandbox_state::running);
  auto rb = get(p2, b.id);
  ASSERT_TRUE(rb);
  EXPECT_EQ(rb->state, sandbox_state::paused);
  // b keeps its original 60 s expiry; a was renewed to one hour.
  advance(61s);
  EXPECT_TRUE(get(p2, a.id));
  EXPECT_FALSE(get(p2, b.id));
  EXPECT_EQ(rt->containers().size(), 1u);
}

TEST_F(SandboxActors, RestartReprovisionsInterruptedCreatesAndRemovesOrphans) {
  auto& p1 = boot();
  rt->hold("create");
  auto a = create(p1, spec());
  ASSERT_EQ(rt->containers().size(), 1u); // created, never started
  auto stale = rt->containers().at(0).id;
  crash(p1);
  procs.clear();
  rt->release("create"); // the old process is gone; nobody listens
  // An orphan of this node without a record, e.g. from a lost row.
  runtimes::docker::container_spec orphan;
  orphan.name = "sandbox-orphan";
  orphan.image = "x";
  orphan.labels = {{"opensandbox.io/id", "orphan"},
                   {"opensandbox.io/node", "n1"},
                   {"opensandbox.io/runtime-host", "default"}};
  rt->create(orphan, [](expected<std::string>) {});
  auto& p2 = boot();
  auto g = get(p2, a.id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, sandbox_state::running);
  auto cs = rt->containers();
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].labels.at("opensandbox.io/id"), a.id);
  EXPECT_EQ(cs[0].status, "running");
  EXPECT_NE(cs[0].id, stale); // provisioned again
}

// The start happened but recording it did not (a crash, a full disk): the
// running container is adopted, not replaced.
TEST_F(SandboxActors, RestartAdoptsAContainerThatRanBeforeItsStartWasRecorded) {
  auto& p1 = boot();
  rt->hold("start");
  auto a = create(p1, spec());
  ASSERT_EQ(rt->containers().size(), 1u);
  auto id = rt->containers().at(0).id;
  ASSERT_EQ(rt->containers().at(0).status, "running");
  crash(p1);
  procs.clear();
  rt->release("start");
  auto& p2 = boot();
  auto g = get(p2, a.id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, sandbox_state::running);
  auto cs = rt->containers();
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].id, id);
  EXPECT_EQ(rt->calls("create"), 1u);
  // Recorded now: a second restart finds it provisioned.
  crash(p2);
  procs.clear();
  auto db = store::sqlite_store::open(db_path.string());
  EXPECT_EQ((*db)->load("n1")->at(0).phase, "provisioned");
}

TEST_F(SandboxActors, OverdueSandboxesExpireAtRecovery) {
  auto& p1 = boot();
  auto a = create(p1, spec(60));
  crash(p1);
  procs.clear();
  // Shift the stored expiry into the past, as if the server was down.
  {
    auto db = store::sqlite_store::open(db_path.string());
    auto rows = (*db)->load("n1");
    ASSERT_EQ(rows->size(), 1u);
    auto row = rows->at(0);
    row.expires_us = codec::now_us() - 1'000'000;
    ASSERT_TRUE((*db)->put(row));
  }
  auto& p2 = boot();
  advance(1ms);
  EXPECT_FALSE(get(p2, a.id));
  EXPECT_TRUE(rt->containers().empty());
}

TEST_F(SandboxActors, CreateFailsFastWhenTheRuntimeIsDown) {
  rt->fail_next("list", failure{failure_kind::unavailable, "no daemon"});
  auto& p = boot();
  auto [view, err] = ask<sandbox_view>(p.node, atom::create_v, spec(),
                                       rid());
  EXPECT_FALSE(view);
  EXPECT_EQ(http::status_of(err), 503);
  EXPECT_NE(err.message.find("no daemon"), std::string::npos);
}

TEST_F(SandboxActors, RestartWhileDockerIsDownShowsUnknownNot404) {
  auto& p = boot();
  auto v = create(p, spec(3600));
  crash(p);
  rt->fail_next("list", failure{failure_kind::unavailable, "no daemon"});
  auto& q = boot();
  auto g = get(q, v.id);
  ASSERT_TRUE(g); // not 404: the store knows it
  EXPECT_EQ(g->state, sandbox_state::unknown);
  EXPECT_EQ(g->reason, "RUNTIME_UNAVAILABLE");
  EXPECT_NE(g->message.find("no daemon"), std::string::npos) << g->message;
  EXPECT_EQ(g->metadata.at("team"), "infra");
  auto [paused, err] = call<sandbox_view>(q.node, v.id, pause_op{}, rid());
  EXPECT_FALSE(paused);
  EXPECT_EQ(http::status_of(err), 503);
  // Docker answers again: the sandbox is back with its real state.
  advance(2s);
  g = get(q, v.id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, sandbox_state::running);
  EXPECT_TRUE(call<sandbox_view>(q.node, v.id, pause_op{}, rid()).first);
}

TEST_F(SandboxActors, ExecdIsBindMountedAndBootstrapsTheEntrypoint) {
  node_cfg->runtime.execd_inject = "bind";
  node_cfg->runtime.execd_path = "/usr/lib/osb/opensandbox-execd";
  auto& p = boot();
  create(p, spec());
  auto c = rt->spec_of(rt->containers().at(0).id);
  EXPECT_EQ(c.entrypoint, (std::vector<std::string>{"/opt/opensandbox/execd",
                                                    "--bootstrap", "--"}));
  EXPECT_EQ(c.cmd, (std::vector<std::string>{"sleep", "3600"}));
  ASSERT_EQ(c.binds.size(), 1u);
  EXPECT_EQ(c.binds[0], "/usr/lib/osb/opensandbox-execd:/opt/opensandbox/"
                        "execd:ro");
}

TEST_F(SandboxActors, ExecdArchiveIsUploadedBeforeStart) {
  node_cfg->runtime.execd_inject = "archive";
  auto& p = boot(
    std::make_shared<const std::string>(std::string(2048, 'x')));
  auto v = create(p, spec());
  EXPECT_EQ(get(p, v.id)->state, sandbox_state::running);
  auto id = rt->containers().at(0).id;
  auto archives = rt->archives(id);
  ASSERT_EQ(archives.size(), 1u);
  EXPECT_EQ(archives[0], (std::pair<std::string, size_t>{"/", 2048}));
  EXPECT_TRUE(rt->spec_of(id).binds.empty());
}

TEST_F(SandboxActors, WithoutExecdTheEntrypointRunsDirectly) {
  node_cfg->runtime.execd_inject = "none";
  auto& p = boot();
  auto v = create(p, spec());
  auto c = rt->spec_of(rt->containers().at(0).id);
  EXPECT_EQ(c.entrypoint, (std::vector<std::string>{"sleep", "3600"}));
  EXPECT_EQ(get(p, v.id)->state, sandbox_state::running);
}

namespace {

sandbox_spec with_policy(sandbox_spec s) {
  s.network_policy_json
    = R"({"defaultAction":"deny","egress":[{"action":"allow","target":"pypi.org"}]})";
  return s;
}

} // namespace

TEST_F(SandboxActors, NetworkPolicyPutsTheSandboxBehindASidecar) {
  node_cfg->egress.image = "opensandbox/egress:latest";
  auto& p = boot();
  auto v = create(p, with_policy(spec()));
  EXPECT_FALSE(v.egress_token.empty());
  EXPECT_NE(v.ports.egress, 0);
  auto cs = rt->containers();
  ASSERT_EQ(cs.size(), 2u);
  auto side = rt->spec_of(cs[0].id);
  auto main = rt->spec_of(cs[1].id);
  EXPECT_EQ(side.name, "sandbox-egress-" + v.id);
  EXPECT_EQ(side.labels.at("opensandbox.io/egress-sidecar-for"), v.id);
  EXPECT_EQ(side.cap_add, (std::vector<std::string>{"NET_ADMIN"}));
  EXPECT_EQ(side.ports.size(), 3u);
  EXPECT_NE(std::find(side.env.begin(), side.env.end(),
                      "OPENSANDBOX_EGRESS_TOKEN=" + v.egress_token),
            side.env.end());
  EXPECT_EQ(main.network_mode, "container:sandbox-egress-" + v.id);
  EXPECT_TRUE(main.ports.empty());
  EXPECT_EQ(main.labels.at("opensandbox.io/egress-auth-token"),
            v.egress_token);
  EXPECT_NE(std::find(main.cap_drop.begin(), main.cap_drop.end(), "NET_ADMIN"),
            main.cap_drop.end());
  EXPECT_EQ(get(p, v.id)->state, sandbox_state::running);
  ASSERT_TRUE(call<std::string>(p.node, v.id, remove_op{}, rid()).first);
  EXPECT_TRUE(rt->containers().empty());
}

TEST_F(SandboxActors, SidecarIsRemovedOnExpiryAndFailedStart) {
  node_cfg->egress.image = "opensandbox/egress:latest";
  auto& p = boot();
  auto a = create(p, with_policy(spec(60)));
  EXPECT_EQ(rt->containers().size(), 2u);
  advance(61s);
  EXPECT_FALSE(get(p, a.id));
  EXPECT_TRUE(rt->containers().empty());
  rt->fail_next("start", failure{failure_kind::failed, "no iptables"});
  auto b = create(p, with_policy(spec()));
  auto g = get(p, b.id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, sandbox_state::failed);
  EXPECT_EQ(g->reason, "EGRESS_SIDECAR_FAILED");
  EXPECT_TRUE(rt->containers().empty());
}

TEST_F(SandboxActors, RecoveryRemovesOrphanSidecars) {
  runtimes::docker::container_spec orphan;
  orphan.name = "sandbox-egress-gone";
  orphan.image = "x";
  orphan.labels = {{"opensandbox.io/egress-sidecar-for", "gone"},
                   {"opensandbox.io/node", "n1"},
                   {"opensandbox.io/runtime-host", "default"}};
  rt->create(orphan, [](expected<std::string>) {});
  node_cfg->egress.image = "opensandbox/egress:latest";
  auto& p1 = boot();
  EXPECT_TRUE(rt->containers().empty());
  auto a = create(p1, with_policy(spec()));
  crash(p1);
  procs.clear();
  auto& p2 = boot();
  auto g = get(p2, a.id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->egress_token, a.egress_token);
  EXPECT_EQ(rt->containers().size(), 2u);
}

// -- volumes, pull progress, diagnostics (issue 6) -----------------------------

namespace {

bool has_bind(const runtimes::docker::container_spec& c, const std::string& bind) {
  return std::find(c.binds.begin(), c.binds.end(), bind) != c.binds.end();
}

std::string pvc_volumes(bool create, bool remove,
                        const std::string& sub_path = {}) {
  return std::string{R"([{"name":"data","pvc":{"claimName":"cache",)"}
         + R"("createIfNotExists":)" + (create ? "true" : "false")
         + R"(,"deleteOnSandboxTermination":)" + (remove ? "true" : "false")
         + R"(},"mountPath":"/data","readOnly":false)"
         + (sub_path.empty() ? "" : R"(,"subPath":")" + sub_path + "\"")
         + "}]";
}

} // namespace

TEST_F(SandboxActors, NamedVolumeIsCreatedBoundAndRemovedOnDelete) {
  auto& p = boot();
  auto s = spec();
  s.volumes_json = pvc_volumes(true, true);
  auto v = create(p, s);
  ASSERT_EQ(get(p, v.id)->state, sandbox_state::running);
  auto vols = rt->volumes();
  ASSERT_EQ(vols.count("cache"), 1u);
  EXPECT_EQ(vols["cache"].labels.at("opensandbox.io/volume-managed-by"),
            "server");
  EXPECT_EQ(vols["cache"].labels.at("opensandbox.io/volume-for"), v.id);
  EXPECT_TRUE(has_bind(rt->spec_of(rt->containers().at(0).id),
                       "cache:/data:rw"));
  auto [ok, err] = call<std::string>(p.node, v.id, remove_op{}, rid());
  ASSERT_TRUE(ok) << err.message;
  EXPECT_TRUE(rt->containers().empty());
  EXPECT_TRUE(rt->volumes().empty());
}

TEST_F(SandboxActors, NamedVolumeGoesWithTheSandboxOnExpiry) {
  auto& p = boot();
  auto s = spec(60);
  s.volumes_json = pvc_volumes(true, true, "a/b");
  auto v = create(p, s);
  EXPECT_TRUE(has_bind(rt->spec_of(rt->containers().at(0).id),
                       "/var/lib/docker/volumes/cache/_data/a/b:/data:rw"));
  advance(61s);
  EXPECT_FALSE(get(p, v.id));
  EXPECT_TRUE(rt->volumes().empty());
}

TEST_F(SandboxActors, VolumesWithoutTheFlagOrNotOursStay) {
  auto& p = boot();
  // Created by the server but kept (deleteOnSandboxTermination=false).
  auto s = spec(60);
  s.volumes_json = pvc_volumes(true, false);
  auto a = create(p, s);
  advance(61s);
  EXPECT_FALSE(get(p, a.id));
  EXPECT_EQ(rt->volumes().count("cache"), 1u);
  // Existing before the sandbox: never removed, whatever the flag says.
  s.volumes_json = pvc_volumes(false, true);
  auto b = create(p, s);
  ASSERT_EQ(get(p, b.id)->state, sandbox_state::running);
  auto [ok, err] = call<std::string>(p.node, b.id, remove_op{}, rid());
  ASSERT_TRUE(ok) << err.message;
  EXPECT_EQ(rt->volumes().count("cache"), 1u);
}

TEST_F(SandboxActors, MissingNamedVolumeFailsWithAReasonNamingIt) {
  auto& p = boot();
  auto s = spec();
  s.volumes_json = pvc_volumes(false, false);
  auto v = create(p, s);
  auto g = get(p, v.id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, sandbox_state::failed);
  EXPECT_EQ(g->reason, "VOLUME_PREPARATION_FAILED");
  EXPECT_EQ(g->message, "VOLUME::PVC_NOT_FOUND: Volume 'data': Docker volume "
                        "'cache' does not exist and createIfNotExists is "
                        "false.");
  EXPECT_EQ(rt->calls("create"), 0u);
}

TEST_F(SandboxActors, FailedCreateRemovesTheVolumesItCreated) {
  auto& p = boot();
  auto s = spec();
  // Not flagged for removal, but the sandbox never ran: it goes too.
  s.volumes_json = pvc_volumes(true, false);
  rt->fail_next("start", failure{failure_kind::failed, "exec format error"});
  auto v = create(p, s);
  EXPECT_EQ(get(p, v.id)->state, sandbox_state::failed);
  EXPECT_TRUE(rt->containers().empty());
  EXPECT_TRUE(rt->volumes().empty());
}

TEST_F(SandboxActors, VolumeInUseByAnotherSandboxStays) {
  auto& p = boot();
  auto s = spec();
  s.volumes_json = pvc_volumes(true, true);
  auto a = create(p, s);
  auto b = create(p, s); // shares the volume a created
  auto [ok, err] = call<std::string>(p.node, a.id, remove_op{}, rid());
  ASSERT_TRUE(ok) << err.message;
  EXPECT_EQ(rt->volumes().count("cache"), 1u);
  EXPECT_EQ(get(p, b.id)->state, sandbox_state::running);
  EXPECT_EQ(rt->volumes().at("cache").labels.at("opensandbox.io/node"), "n1");
  // The sweep keeps it while b uses it, and removes it once b is gone
  // (the original leaked it). Timers fire once per advance: step 5 s.
  auto minute = [&] {
    for (int i = 0; i < 13; ++i)
      advance(5s);
  };
  minute();
  EXPECT_EQ(rt->volumes().count("cache"), 1u);
  call<std::string>(p.node, b.id, remove_op{}, rid());
  minute();
  EXPECT_EQ(rt->volumes().count("cache"), 0u);
}

TEST_F(SandboxActors, InterruptedDeleteRemovesVolumesAtRecovery) {
  auto& p1 = boot();
  auto s = spec();
  s.volumes_json = pvc_volumes(true, true);
  auto v = create(p1, s);
  rt->hold("remove");
  // The answer never comes: the process dies with the removal in flight.
  caf::anon_send(p1.node, atom::call_v,
                 sandbox_request{v.id, rid(), remove_op{}});
  sched.run();
  crash(p1);
  procs.clear();
  rt->release("remove");
  boot();
  EXPECT_TRUE(rt->containers().empty());
  EXPECT_TRUE(rt->volumes().empty());
}

TEST_F(SandboxActors, HostVolumesAreCheckedBeforeTheAnswer) {
  auto dir = std::filesystem::temp_directory_path()
             / ("osb-hostvol-" + codec::make_uuid());
  std::filesystem::create_directories(dir / "allowed");
  std::filesystem::create_directory_symlink("/etc", dir / "allowed/etc");
  node_cfg->storage.allowed_host_paths = {(dir / "allowed").string()};
  auto& p = boot();
  auto s = spec();
  s.volumes_json = R"([{"name":"w","host":{"path":")"
                   + (dir / "allowed/etc").string()
                   + R"("},"mountPath":"/w","readOnly":true}])";
  auto [view, err] = ask<sandbox_view>(p.node, atom::create_v, s,
                                       std::string{"rid"});
  EXPECT_FALSE(view);
  EXPECT_EQ(http::status_of(err), 400);
  EXPECT_EQ(err.code, "VOLUME::HOST_PATH_NOT_ALLOWED");
  EXPECT_NE(err.message.find("Volume 'w'"), std::string::npos);
  EXPECT_EQ(rt->calls("create"), 0u);
  s.volumes_json = R"([{"name":"w","host":{"path":")"
                   + (dir / "allowed/u1").string()
                   + R"("},"mountPath":"/w","readOnly":true,"subPath":"x"}])";
  auto v = create(p, s);
  EXPECT_EQ(get(p, v.id)->state, sandbox_state::running);
  EXPECT_TRUE(std::filesystem::is_directory(dir / "allowed/u1/x"));
  EXPECT_TRUE(has_bind(rt->spec_of(rt->containers().at(0).id),
                       (dir / "allowed/u1/x").string() + ":/w:ro"));
  std::filesystem::remove_all(dir);
}

TEST_F(SandboxActors, PullProgressShowsInThePendingMessage) {
  auto& p = boot();
  rt->set_pull_progress({"Pulling image opensandbox/busybox:latest.",
                         "Pulling image opensandbox/busybox:latest: 42% "
                         "(12.3/29.1 MB)"});
  rt->hold("create");
  auto v = create(p, spec());
  auto g = get(p, v.id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, sandbox_state::pending);
  EXPECT_EQ(g->message,
            "Pulling image opensandbox/busybox:latest: 42% (12.3/29.1 MB)");
  rt->release("create");
  sched.run();
  EXPECT_EQ(get(p, v.id)->state, sandbox_state::running);
  EXPECT_EQ(get(p, v.id)->message, "Sandbox container is running.");
}

TEST_F(SandboxActors, DiagnosticsAreRenderedByTheOwner) {
  auto& p = boot();
  auto s = spec();
  s.env["DB_PASSWORD"] = "hunter2";
  auto v = create(p, s);
  rt->set_logs(rt->containers().at(0).id, "2026-01-01T00:00:00Z hello\n");
  auto diag = [&](std::string kind) {
    diagnostics_query q;
    q.kind = std::move(kind);
    return call<std::string>(p.node, v.id, diagnose_op{q}, rid());
  };
  EXPECT_EQ(diag("logs").first.value_or(""),
            "2026-01-01T00:00:00Z hello\n");
  auto inspect = diag("inspect").first.value_or("");
  EXPECT_NE(inspect.find("Name:           sandbox-" + v.id), std::string::npos)
    << inspect;
  EXPECT_NE(inspect.find("DB_PASSWORD=***"), std::string::npos) << inspect;
  EXPECT_EQ(inspect.find("hunter2"), std::string::npos);
  auto events = diag("events").first.value_or("");
  EXPECT_EQ(events.rfind("Container:  ", 0), 0u) << events;
  auto summary = diag("summary").first.value_or("");
  EXPECT_NE(summary.find("SANDBOX DIAGNOSTICS SUMMARY\nSandbox ID: " + v.id),
            std::string::npos);
  EXPECT_NE(summary.find("hello"), std::string::npos);
  // A failing section is replaced, the others stay.
  rt->fail_next("logs", failure{failure_kind::failed, "daemon hiccup"});
  summary = diag("summary").first.value_or("");
  EXPECT_NE(summary.find("[error] Failed to collect log diagnostics."),
            std::string::npos)
    << summary;
  EXPECT_EQ(summary.find("hiccup"), std::string::npos);
  EXPECT_NE(summary.find("Container ID:"), std::string::npos);
  // Unknown sandbox: 404.
  diagnostics_query q;
  q.kind = "logs";
  auto [none, err]
    = call<std::string>(p.node, std::string{"nope"}, diagnose_op{q}, rid());
  EXPECT_FALSE(none);
  EXPECT_EQ(http::status_of(err), 404);
}

TEST_F(SandboxActors, DiagnosticsOfAFailedCreateExplainIt) {
  auto& p = boot();
  rt->set_known_images({"other:1"});
  auto v = create(p, spec());
  diagnostics_query q;
  q.kind = "inspect";
  auto text
    = call<std::string>(p.node, v.id, diagnose_op{q}, rid()).first.value_or("");
  EXPECT_NE(text.find("(no container)"), std::string::npos) << text;
  EXPECT_NE(text.find("IMAGE_PULL_FAILED"), std::string::npos) << text;
  q.kind = "logs";
  EXPECT_EQ(
    call<std::string>(p.node, v.id, diagnose_op{q}, rid()).first.value_or(""),
    "(no logs)");
}

TEST_F(SandboxActors, PlatformTheHostCannotRunIsRefused) {
  rt->set_daemon_info({"linux", "amd64", "test"});
  auto& p = boot();
  auto s = spec();
  s.platform_os = "linux";
  s.platform_arch = "arm64";
  auto [view, err] = ask<sandbox_view>(p.node, atom::create_v, s,
                                       std::string{"rid"});
  EXPECT_FALSE(view);
  EXPECT_EQ(http::status_of(err), 400);
  EXPECT_EQ(err.code, "SANDBOX::INVALID_PARAMETER");
  EXPECT_EQ(err.message, "Platform linux/arm64 is not supported by this "
                         "server's Docker host 'default', which runs "
                         "linux/amd64.");
  s.platform_arch = "amd64";
  auto v = create(p, s);
  EXPECT_EQ(get(p, v.id)->state, sandbox_state::running);
  EXPECT_EQ(rt->spec_of(rt->containers().at(0).id).platform, "linux/amd64");
}

TEST_F(SandboxActors, GpusBecomeDeviceRequestsAndTheirAbsenceIsExplained) {
  auto& p = boot();
  auto s = spec();
  s.resource_limits["gpu"] = "2";
  auto a = create(p, s);
  EXPECT_EQ(rt->spec_of(rt->containers().at(0).id).gpu_count, 2);
  s.resource_limits["gpu"] = "all";
  rt->fail_next("start",
                failure{failure_kind::failed,
                        "start container: could not select device driver \"\" "
                        "with capabilities: [[gpu]]"});
  auto b = create(p, s);
  auto g = get(p, b.id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, sandbox_state::failed);
  EXPECT_EQ(g->reason, "GPU_UNAVAILABLE");
  EXPECT_NE(g->message.find("NVIDIA"), std::string::npos) << g->message;
  EXPECT_EQ(get(p, a.id)->state, sandbox_state::running);
}

TEST_F(SandboxActors, EndpointLookupsWaitForTheStartWithABound) {
  auto& p = boot();
  rt->hold("start");
  auto a = create(p, spec());
  // Answered only once the container started: the view says Running.
  auto h = self->request(p.node, caf::infinite, atom::started_v, a.id);
  sched.run();
  rt->release("start");
  sched.run();
  std::optional<sandbox_view> got;
  h.receive([&](sandbox_view& v) { got = v; }, [](caf::error&) {});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->state, sandbox_state::running);
  // A start that takes too long does not hold the lookup forever.
  rt->hold("start");
  auto b = create(p, spec());
  auto h2 = self->request(p.node, caf::infinite, atom::started_v, b.id);
  sched.run();
  advance(16s);
  std::optional<sandbox_view> got2;
  h2.receive([&](sandbox_view& v) { got2 = v; }, [](caf::error&) {});
  ASSERT_TRUE(got2);
  EXPECT_EQ(got2->state, sandbox_state::pending);
  rt->release("start");
  sched.run();
}

// -- snapshots ----------------------------------------------------------------

TEST_F(SandboxActors, SnapshotIsAcceptedThenReadyAndRestoresOnItsHost) {
  auto& p = boot();
  auto v = create(p, spec(3600));
  rt->hold("commit");
  auto [snap, err] = ask<snapshot_view>(p.node, atom::snapshot_v, v.id,
                                        std::string{"before-upgrade"},
                                        rid());
  ASSERT_TRUE(snap) << err.message;
  EXPECT_EQ(snap->state, "Creating");
  EXPECT_EQ(snap->reason, "snapshot_accepted");
  EXPECT_EQ(snap->name, "before-upgrade");
  EXPECT_EQ(snap->sandbox_id, v.id);
  EXPECT_EQ(snap->image, "opensandbox-snapshots:" + snap->id);
  // Creating: neither deletable nor restorable yet.
  auto [gone, del_err] = ask<bool>(p.node, atom::snap_del_v, snap->id,
                                   rid());
  EXPECT_FALSE(gone);
  EXPECT_EQ(del_err.code, "SNAPSHOT::INVALID_STATE");
  auto restore = spec(3600);
  restore.image.clear();
  restore.snapshot_id = snap->id;
  auto [early, early_err] = ask<sandbox_view>(p.node, atom::create_v, restore,
                                              rid());
  EXPECT_FALSE(early);
  EXPECT_EQ(early_err.code, "SNAPSHOT::NOT_READY");
  // Pausing while Docker pauses for the commit is refused, and the
  // reconciliation does not mistake the commit's pause for a user's.
  auto [paused, pause_err]
    = call<sandbox_view>(p.node, v.id, pause_op{}, rid());
  EXPECT_FALSE(paused);
  EXPECT_EQ(http::status_of(pause_err), 409);
  auto& readies = ops_metrics().snapshot_transitions.with(
    {"Ready", "snapshot_runtime_ready"});
  auto readies_before = readies.value();
  rt->release("commit");
  sched.run();
  auto [ready, e2] = ask<snapshot_view>(p.node, atom::snap_get_v, snap->id);
  ASSERT_TRUE(ready) << e2.message;
  EXPECT_EQ(ready->state, "Ready");
  EXPECT_EQ(ready->reason, "snapshot_runtime_ready");
  EXPECT_EQ(readies.value(), readies_before + 1);
  EXPECT_EQ(rt->committed_images().count(ready->image), 1u);
  auto [restored, e3] = ask<sandbox_view>(p.node, atom::create_v, restore,
                                          rid());
  ASSERT_TRUE(restored) << e3.message;
  EXPECT_EQ(restored->snapshot_id, snap->id);
  EXPECT_TRUE(restored->image.empty());
  auto g = get(p, restored->id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, sandbox_state::running);
  bool labelled = false;
  for (auto& c : rt->containers())
    if (c.labels.count("opensandbox.io/snapshot-id")
        && c.labels.at("opensandbox.io/snapshot-id") == snap->id) {
      labelled = true;
      EXPECT_EQ(rt->spec_of(c.id).image, ready->image);
    }
  EXPECT_TRUE(labelled);
}

TEST_F(SandboxActors, SnapshotNeedsARunningSandbox) {
  auto& p = boot();
  auto [none, e1] = ask<snapshot_view>(p.node, atom::snapshot_v,
                                       std::string{"nope"}, std::string{},
                                       rid());
  EXPECT_FALSE(none);
  EXPECT_EQ(e1.code, "DOCKER::SANDBOX_NOT_FOUND");
  auto v = create(p, spec(3600));
  call<sandbox_view>(p.node, v.id, pause_op{}, rid());
  auto [snap, e2] = ask<snapshot_view>(p.node, atom::snapshot_v, v.id,
                                       std::string{}, rid());
  EXPECT_FALSE(snap);
  EXPECT_EQ(http::status_of(e2), 409);
  EXPECT_EQ(e2.code, "SNAPSHOT::INVALID_SOURCE_STATE");
  EXPECT_EQ(e2.message, "Snapshot can only be created from a Running sandbox.");
  auto [missing, e3] = ask<snapshot_view>(p.node, atom::snap_get_v,
                                          std::string{"s-1"});
  EXPECT_FALSE(missing);
  EXPECT_EQ(http::status_of(e3), 404);
  EXPECT_EQ(e3.code, "SNAPSHOT::NOT_FOUND");
  EXPECT_EQ(e3.message, "Snapshot s-1 not found");
  auto restore = spec(60);
  restore.snapshot_id = "s-1";
  auto [r, e4] = ask<sandbox_view>(p.node, atom::create_v, restore,
                                   rid());
  EXPECT_FALSE(r);
  EXPECT_EQ(e4.code, "SNAPSHOT::NOT_FOUND");
}

TEST_F(SandboxActors, FailedCommitMarksTheSnapshotFailed) {
  auto& p = boot();
  auto v = create(p, spec(3600));
  rt->fail_next("commit", failure{failure_kind::failed, "disk full"});
  auto [snap, err] = ask<snapshot_view>(p.node, atom::snapshot_v, v.id,
                                        std::string{}, rid());
  ASSERT_TRUE(snap) << err.message;
  auto [x, e2] = ask<snapshot_view>(p.node, atom::snap_get_v, snap->id);
  ASSERT_TRUE(x);
  EXPECT_EQ(x->state, "Failed");
  EXPECT_EQ(x->reason, "snapshot_runtime_failed");
  EXPECT_NE(x->message.find("disk full"), std::string::npos);
  // The sandbox can be paused again once the commit is over.
  auto [paused, e3] = call<sandbox_view>(p.node, v.id, pause_op{}, rid());
  EXPECT_TRUE(paused) << e3.message;
  // A failed snapshot can be deleted (nothing to remove).
  auto [gone, e4] = ask<bool>(p.node, atom::snap_del_v, snap->id,
                              rid());
  EXPECT_TRUE(gone) << e4.message;
}

TEST_F(SandboxActors, SnapshotsListFilteredAndPaginated) {
  auto& p = boot();
  auto a = create(p, spec(3600));
  auto b = create(p, spec(3600));
  std::vector<std::string> ids;
  for (auto* src : {&a, &a, &b}) {
    auto [snap, err] = ask<snapshot_view>(p.node, atom::snapshot_v, src->id,
                                          std::string{}, rid());
    ASSERT_TRUE(snap) << err.message;
    ids.push_back(snap->id);
  }
  snapshot_query q;
  q.sandbox_id = a.id;
  auto [page, err] = ask<snapshot_page>(p.node, atom::snap_list_v, q);
  ASSERT_TRUE(page) << err.message;
  EXPECT_EQ(page->total_items, 2);
  q = snapshot_query{};
  q.states = {"ready"}; // states match exactly
  EXPECT_EQ(ask<snapshot_page>(p.node, atom::snap_list_v, q).first->total_items,
            0);
  q.by_name = true; // the SDKs filter by name
  q.name = "none";
  EXPECT_EQ(ask<snapshot_page>(p.node, atom::snap_list_v, q).first->total_items,
            0);
  q.by_name = false;
  q.states = {"Ready", "Failed"};
  q.page_size = 2;
  auto [p1, e1] = ask<snapshot_page>(p.node, atom::snap_list_v, q);
  ASSERT_TRUE(p1);
  EXPECT_EQ(p1->total_items, 3);
  ASSERT_EQ(p1->items.size(), 2u);
  EXPECT_GE(p1->items[0].created_us, p1->items[1].created_us);
  q.page = 2;
  EXPECT_EQ(ask<snapshot_page>(p.node, atom::snap_list_v, q).first->items.size(),
            1u);
}

TEST_F(SandboxActors, DeletingASnapshotInUseConflictsThenRetries) {
  auto& p = boot();
  auto v = create(p, spec(3600));
  auto [snap, err] = ask<snapshot_view>(p.node, atom::snapshot_v, v.id,
                                        std::string{}, rid());
  ASSERT_TRUE(snap) << err.message;
  auto restore = spec(3600);
  restore.image.clear();
  restore.snapshot_id = snap->id;
  auto restored = create(p, restore);
  auto [gone, e1] = ask<bool>(p.node, atom::snap_del_v, snap->id,
                              rid());
  EXPECT_FALSE(gone);
  EXPECT_EQ(e1.code, "SNAPSHOT::DELETE_CONFLICT");
  EXPECT_EQ(ask<snapshot_view>(p.node, atom::snap_get_v, snap->id).first->state,
            "Deleting");
  // Restoring from a snapshot being deleted is refused.
  auto [r2, e2] = ask<sandbox_view>(p.node, atom::create_v, restore,
                                    rid());
  EXPECT_FALSE(r2);
  EXPECT_EQ(e2.code, "SNAPSHOT::NOT_READY");
  // Once the restored sandbox is gone, the retry removes image and record.
  call<std::string>(p.node, restored.id, remove_op{}, rid());
  advance(11s);
  EXPECT_FALSE(ask<snapshot_view>(p.node, atom::snap_get_v, snap->id).first);
  EXPECT_TRUE(rt->committed_images().empty());
}

TEST_F(SandboxActors, SnapshotRecordsSurviveACrashAndUnfinishedOnesSettle) {
  auto& p = boot();
  auto v = create(p, spec(3600));
  auto [ready, e1] = ask<snapshot_view>(p.node, atom::snapshot_v, v.id,
                                        std::string{"keep"}, rid());
  ASSERT_TRUE(ready) << e1.message;
  // The second commit is under way when the process dies; the daemon
  // finishes it (the image exists at the restart).
  rt->hold("commit");
  auto [creating, e2] = ask<snapshot_view>(p.node, atom::snapshot_v, v.id,
                                           std::string{}, rid());
  ASSERT_TRUE(creating) << e2.message;
  // The third is being deleted when the process dies.
  rt->release("commit");
  rt->hold("commit");
  auto [third, e3] = ask<snapshot_view>(p.node, atom::snapshot_v, v.id,
                                        std::string{}, rid());
  ASSERT_TRUE(third);
  rt->release("commit");
  sched.run();
  rt->hold("remove_image");
  caf::anon_send(p.node, atom::snap_del_v, third->id, rid());
  sched.run();
  crash(p);
  rt->release("remove_image");
  // A fourth record is left Creating without any image: it fails once a
  // commit would have timed out.
  auto db = store::sqlite_store::open(db_path.string());
  snapshot_view lost = *ready;
  lost.id = "lost";
  lost.state = "Creating";
  lost.image = "opensandbox-snapshots:lost";
  lost.created_us = codec::now_us();
  ASSERT_TRUE((*db)->put_snapshot(lost));
  // Mark the second one Creating in the store, as a crash mid-commit
  // leaves it.
  auto second = *creating;
  ASSERT_TRUE((*db)->put_snapshot(second));
  db->reset();
  auto& q = boot();
  auto state_of = [&](const std::string& id) {
    auto x = ask<snapshot_view>(q.node, atom::snap_get_v, id).first;
    return x ? x->state : std::string{"gone"};
  };
  EXPECT_EQ(state_of(ready->id), "Ready");
  EXPECT_EQ(state_of(second.id), "Ready");
  EXPECT_EQ(ask<snapshot_view>(q.node, atom::snap_get_v, second.id)
              .first->reason,
            "snapshot_recovery_ready");
  EXPECT_EQ(state_of(third->id), "gone");
  EXPECT_EQ(state_of("lost"), "Creating");
  // Past the commit timeout (190 s by default), the missing image counts.
  // The fake clock does not move codec::now_us(): age the record instead.
  crash(q);
  db = store::sqlite_store::open(db_path.string());
  lost.created_us = codec::now_us() - 3600'000'000LL;
  ASSERT_TRUE((*db)->put_snapshot(lost));
  db->reset();
  auto& r = boot();
  auto x = ask<snapshot_view>(r.node, atom::snap_get_v, std::string{"lost"});
  ASSERT_TRUE(x.first);
  EXPECT_EQ(x.first->state, "Failed");
  EXPECT_EQ(x.first->reason, "snapshot_recovery_missing_image");
}

TEST_F(SandboxActors, ConcurrentDeletesOfASnapshotShareOneRemoval) {
  auto& p = boot();
  auto v = create(p, spec(3600));
  auto [snap, err] = ask<snapshot_view>(p.node, atom::snapshot_v, v.id,
                                        std::string{}, rid());
  ASSERT_TRUE(snap) << err.message;
  rt->hold("remove_image");
  auto h1 = self->request(p.node, caf::infinite, atom::snap_del_v, snap->id,
                          std::string{"r1"});
  auto h2 = self->request(p.node, caf::infinite, atom::snap_del_v, snap->id,
                          std::string{"r2"});
  advance(11s); // a retry tick in between must not start another removal
  EXPECT_EQ(rt->calls("remove_image"), 1u);
  rt->release("remove_image");
  sched.run();
  int ok = 0;
  for (auto* h : {&h1, &h2})
    h->receive([&](bool) { ++ok; }, [&](caf::error& e) {
      ADD_FAILURE() << to_api_error(e).message;
    });
  EXPECT_EQ(ok, 2);
  EXPECT_FALSE(ask<snapshot_view>(p.node, atom::snap_get_v, snap->id).first);
}

TEST_F(SandboxActors, RestoreFromAVanishedImageFailsClearly) {
  auto& p = boot();
  auto v = create(p, spec(3600));
  auto [snap, err] = ask<snapshot_view>(p.node, atom::snapshot_v, v.id,
                                        std::string{}, rid());
  ASSERT_TRUE(snap) << err.message;
  // Someone removed the image behind the server's back.
  rt->remove_image(snap->image, [](expected<unit>) {});
  auto restore = spec(3600);
  restore.image.clear();
  restore.snapshot_id = snap->id;
  auto [r, e] = ask<sandbox_view>(p.node, atom::create_v, restore,
                                  rid());
  EXPECT_FALSE(r);
  EXPECT_EQ(e.code, "SNAPSHOT::INVALID_RESTORE_CONFIG");
  EXPECT_EQ(rt->calls("create"), 1u); // no pull attempt, no container
  auto x = ask<snapshot_view>(p.node, atom::snap_get_v, snap->id).first;
  ASSERT_TRUE(x);
  EXPECT_EQ(x->state, "Failed");
  EXPECT_EQ(x->reason, "snapshot_image_missing");
}

TEST_F(SandboxActors, SnapshotImagesWithoutARecordAreSwept) {
  auto& p = boot();
  auto v = create(p, spec(3600));
  auto [snap, err] = ask<snapshot_view>(p.node, atom::snapshot_v, v.id,
                                        std::string{}, rid());
  ASSERT_TRUE(snap) << err.message;
  // A commit that finished after its timeout left an image behind; other
  // nodes' images are not ours.
  rt->add_image("opensandbox-snapshots:late",
                {{"opensandbox.io/node", "n1"},
                 {"opensandbox.io/runtime-host", "default"}});
  rt->add_image("opensandbox-snapshots:theirs",
                {{"opensandbox.io/node", "n2"},
                 {"opensandbox.io/runtime-host", "default"}});
  for (int i = 0; i < 7; ++i)
    advance(10s);
  auto images = rt->committed_images();
  EXPECT_EQ(images.count("opensandbox-snapshots:late"), 0u);
  EXPECT_EQ(images.count("opensandbox-snapshots:theirs"), 1u);
  EXPECT_EQ(images.count(snap->image), 1u);
}

TEST_F(SandboxActors, RenewOnAccessValueComesFromTheExtension) {
  auto& p = boot();
  auto s = spec(3600);
  s.extensions = {{"access.renew.extend.seconds", " 600 "}};
  auto a = create(p, s);
  EXPECT_EQ(a.renew_extend_s, 600);
  auto b = create(p, spec(3600));
  EXPECT_EQ(b.renew_extend_s, 0);
  auto cs = rt->containers();
  ASSERT_EQ(cs.size(), 2u);
  for (auto& c : cs) {
    auto labels = rt->spec_of(c.id).labels;
    if (labels.at("opensandbox.io/id") == a.id)
      EXPECT_EQ(labels.at("opensandbox.io/access-renew-extend-seconds"),
                "600");
    else
      EXPECT_EQ(labels.count("opensandbox.io/access-renew-extend-seconds"),
                0u);
  }
  // The value survives a restart (it is part of the stored spec).
  crash(p);
  procs.clear();
  auto& p2 = boot();
  EXPECT_EQ(get(p2, a.id)->renew_extend_s, 600);
}

TEST_F(SandboxActors, RenewOnAccessNeverShortensAnExpiry) {
  auto& p = boot();
  auto v = create(p, spec(60));
  auto later = codec::now_us() + 24LL * 3600 * 1000000;
  ASSERT_TRUE(
    call<int64_t>(p.node, v.id, renew_op{later}, std::string{"client"}).first);
  // A proxied request computed its target from a view a second old.
  auto soon = codec::now_us() + 300LL * 1000000;
  auto [t, err]
    = call<int64_t>(p.node, v.id, extend_op{soon}, std::string{"proxy"});
  ASSERT_TRUE(t) << err.message;
  EXPECT_EQ(*t, later);
  EXPECT_EQ(get(p, v.id)->expires_us, later);
  // Later than the current expiry: moved, durably.
  auto further = later + 3600LL * 1000000;
  EXPECT_EQ(
    *call<int64_t>(p.node, v.id, extend_op{further}, std::string{"proxy"})
       .first,
    further);
  // A paused sandbox is not renewed by access.
  call<sandbox_view>(p.node, v.id, pause_op{}, rid());
  EXPECT_EQ(*call<int64_t>(p.node, v.id, extend_op{further + 3600LL * 1000000},
                           std::string{"proxy"})
               .first,
            further);
}

// -- pool members (docs/pools.md, "Members") -----------------------------------

TEST_F(SandboxActors, PoolMemberIsIdleWithoutExpiryUntilItsClaim) {
  auto& p = boot();
  auto m = create(p, member_spec("warm"));
  EXPECT_EQ(m.expires_us, 0);
  auto g = get(p, m.id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, sandbox_state::running);
  EXPECT_EQ(g->reason, "POOL_MEMBER_IDLE");
  EXPECT_TRUE(claims.empty());
  advance(3600s); // no expiry while idle
  ASSERT_TRUE(get(p, m.id));
  auto db = store::sqlite_store::open(db_path.string());
  auto rows = (*db)->load("n1");
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->at(0).phase, "idle");
  EXPECT_EQ(rows->at(0).pool, "warm");
  EXPECT_EQ(rows->at(0).spec_json.find(pool_member_extension),
            std::string::npos);
}

TEST_F(SandboxActors, ClaimStartsTheEntrypointAndWritesTheClaimBeforeAnswering) {
  auto& p = boot();
  auto m = create(p, member_spec("warm"));
  auto before = codec::now_us();
  auto [v, err] = claim(p, m.id);
  ASSERT_TRUE(v) << err.message;
  EXPECT_EQ(v->id, m.id);
  EXPECT_EQ(v->state, sandbox_state::running);
  EXPECT_EQ(v->reason, "CONTAINER_RUNNING");
  EXPECT_EQ(v->entrypoint, (std::vector<std::string>{"python3", "app.py"}));
  EXPECT_EQ(v->metadata, (string_map{{"user", "u1"}}));
  EXPECT_GE(v->expires_us, before + 120'000'000LL);
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0].first, m.id);
  EXPECT_EQ(claims[0].second.entrypoint, v->entrypoint);
  EXPECT_EQ(claims[0].second.env.at("CLAIM"), "yes");
  // Durable before the answer: the row holds the claimed sandbox.
  {
    auto db = store::sqlite_store::open(db_path.string());
    auto row = (*db)->load("n1")->at(0);
    EXPECT_EQ(row.phase, "provisioned");
    EXPECT_EQ(row.expires_us, v->expires_us);
    EXPECT_NE(row.metadata_json.find("u1"), std::string::npos);
    EXPECT_NE(row.spec_json.find("app.py"), std::string::npos);
  }
  // A claimed member is claimed once.
  auto [again, err2] = claim(p, m.id);
  EXPECT_FALSE(again);
  EXPECT_EQ(claims.size(), 1u);
  // It expires like any sandbox, its container with it.
  advance(121s);
  EXPECT_FALSE(get(p, m.id));
  EXPECT_TRUE(rt->containers().empty());
}

TEST_F(SandboxActors, ClaimedAndIdleMembersComeBackAfterACrash) {
  auto& p1 = boot();
  auto idle = create(p1, member_spec("warm"));
  auto claimed = create(p1, member_spec("warm"));
  ASSERT_TRUE(claim(p1, claimed.id).first);
  crash(p1);
  procs.clear();
  auto& p2 = boot();
  auto gi = get(p2, idle.id);
  ASSERT_TRUE(gi);
  EXPECT_EQ(gi->reason, "POOL_MEMBER_IDLE");
  auto gc = get(p2, claimed.id);
  ASSERT_TRUE(gc);
  EXPECT_EQ(gc->metadata, (string_map{{"user", "u1"}}));
  EXPECT_GT(gc->expires_us, 0);
  // The idle one is still claimable after the restart.
  ASSERT_TRUE(claim(p2, idle.id).first);
  EXPECT_EQ(rt->containers().size(), 2u);
}

TEST_F(SandboxActors, AMemberWhoseClaimWasInFlightAtACrashIsRemoved) {
  auto& p1 = boot();
  auto m = create(p1, member_spec("warm"));
  hold_claims = true;
  auto h = self->request(p1.node, caf::infinite, atom::internal_v,
                         atom::claim_v, m.id, claimed_spec(), rid());
  sched.run();
  ASSERT_EQ(held_claims.size(), 1u);
  crash(p1);
  procs.clear();
  hold_claims = false;
  auto& p2 = boot();
  EXPECT_FALSE(get(p2, m.id));
  EXPECT_TRUE(rt->containers().empty());
  auto db = store::sqlite_store::open(db_path.string());
  EXPECT_TRUE((*db)->load("n1")->empty());
}

TEST_F(SandboxActors, AFailedClaimRemovesTheMember) {
  auto& p = boot();
  auto m = create(p, member_spec("warm"));
  fail_claims = true;
  auto [v, err] = claim(p, m.id);
  EXPECT_FALSE(v);
  EXPECT_FALSE(get(p, m.id));
  EXPECT_TRUE(rt->containers().empty());
}

TEST_F(SandboxActors, OnlyIdleMembersCanBeClaimed) {
  auto& p = boot();
  auto plain = create(p, spec(60));
  auto [v, err] = claim(p, plain.id);
  EXPECT_FALSE(v);
  EXPECT_EQ(http::status_of(err), 409);
  EXPECT_TRUE(claims.empty());
}

// Where the workload object is the sandbox's durable record (Kubernetes),
// the 202 waits for that object: a replica killed before would lose an
// acknowledged create (issue 19).
TEST_F(SandboxActors, StateInWorkloadAnswersOnlyOnceTheObjectExists) {
  std::shared_ptr<workload_state_runtime> wrt;
  wrap = [&](runtimes::runtime_ptr in) {
    wrt = std::make_shared<workload_state_runtime>(std::move(in));
    return wrt;
  };
  auto& p = boot();
  auto answer = std::make_shared<pending_answer>();
  sys.spawn([node = p.node, s = spec(3600), r = rid(),
             answer](caf::event_based_actor* a) {
    a->request(node, caf::infinite, atom::create_v, s, r)
      .then([answer](sandbox_view& v) { answer->view = std::move(v); },
            [answer](caf::error& e) { answer->err = to_api_error(e); });
  });
  sched.run();
  ASSERT_EQ(wrt->provisions.size(), 1u);
  // Stored, provisioning, but no object yet: no answer, not listed.
  EXPECT_FALSE(answer->view);
  EXPECT_FALSE(answer->err);
  auto id = wrt->provisions[0].x.id;
  EXPECT_FALSE(get(p, id));
  wrt->make_object(0);
  sched.run();
  ASSERT_TRUE(answer->view);
  EXPECT_EQ(answer->view->id, id);
  EXPECT_EQ(answer->view->state, sandbox_state::pending);
  ASSERT_TRUE(get(p, id));
  wrt->run(0);
  sched.run();
  auto g = get(p, id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, sandbox_state::running);
}

// The provisioning ends before the object exists (the API server refused
// it): the create is answered with the error, as a refused admission is,
// and leaves nothing behind.
TEST_F(SandboxActors, StateInWorkloadRefusedObjectFailsTheCreate) {
  std::shared_ptr<workload_state_runtime> wrt;
  wrap = [&](runtimes::runtime_ptr in) {
    wrt = std::make_shared<workload_state_runtime>(std::move(in));
    return wrt;
  };
  auto& p = boot();
  auto answer = std::make_shared<pending_answer>();
  sys.spawn([node = p.node, s = spec(3600), r = rid(),
             answer](caf::event_based_actor* a) {
    a->request(node, caf::infinite, atom::create_v, s, r)
      .then([answer](sandbox_view& v) { answer->view = std::move(v); },
            [answer](caf::error& e) { answer->err = to_api_error(e); });
  });
  sched.run();
  ASSERT_EQ(wrt->provisions.size(), 1u);
  auto id = wrt->provisions[0].x.id;
  runtimes::provision_result r;
  r.status = runtimes::provision_result::outcome::failed;
  r.reason = "CONTAINER_CREATE_FAILED";
  r.message = "The API server refused pod sandbox-x (HTTP 403): quota";
  wrt->provisions[0].cb(r);
  sched.run();
  EXPECT_FALSE(answer->view);
  ASSERT_TRUE(answer->err);
  EXPECT_EQ(answer->err->kind, ec::start_failed);
  EXPECT_EQ(answer->err->message, r.message);
  EXPECT_FALSE(get(p, id));
  EXPECT_EQ(wrt->removes, 1);
  // Nothing comes back after a restart either (the row went).
  crash(p);
  wrap = nullptr;
  auto& q = boot();
  EXPECT_FALSE(get(q, id));
}
