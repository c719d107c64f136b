#include "runtimes/docker/fake_engine.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace osb;
using namespace osb::runtimes;
using namespace osb::runtimes::docker;

namespace {

/// Captures the result of one synchronous fake call.
template <class T>
struct capture {
  std::optional<expected<T>> result;
  int calls = 0;
  callback<T> cb() {
    return [this](expected<T> x) {
      ++calls;
      result.emplace(std::move(x));
    };
  }
  bool ok() const {
    return result && result->has_value();
  }
  failure_kind kind() const {
    return result->error().kind;
  }
};

container_spec make_spec(std::string name,
                         std::map<std::string, std::string> labels = {}) {
  container_spec spec;
  spec.name = std::move(name);
  spec.image = "opensandbox/busybox:latest";
  spec.labels = std::move(labels);
  return spec;
}

class FakeEngine : public testing::Test {
protected:
  std::string create(const std::string& name,
                     std::map<std::string, std::string> labels = {}) {
    capture<std::string> c;
    rt.create(make_spec(name, std::move(labels)), c.cb());
    EXPECT_TRUE(c.ok());
    return c.ok() ? c.result->value() : std::string{};
  }

  container_info inspect(const std::string& id) {
    capture<container_info> c;
    rt.inspect(id, c.cb());
    EXPECT_TRUE(c.ok());
    return c.ok() ? c.result->value() : container_info{};
  }

  expected<unit> run(void (fake_engine::*fn)(const std::string&,
                                              callback<unit>),
                     const std::string& id) {
    capture<unit> c;
    (rt.*fn)(id, c.cb());
    EXPECT_EQ(c.calls, 1);
    return *c.result;
  }

  fake_engine rt;
};

} // namespace

TEST_F(FakeEngine, CreateAssignsSequentialIds) {
  EXPECT_EQ(create("a"), "fake-1");
  EXPECT_EQ(create("b"), "fake-2");
  auto info = inspect("fake-1");
  EXPECT_EQ(info.id, "fake-1");
  EXPECT_EQ(info.name, "a");
  EXPECT_EQ(info.status, "created");
  EXPECT_GT(info.created_us, 0);
}

TEST_F(FakeEngine, CallbacksRunBeforeReturn) {
  capture<unit> c;
  rt.ping(c.cb());
  EXPECT_EQ(c.calls, 1);
  EXPECT_TRUE(c.ok());
}

TEST_F(FakeEngine, DuplicateNameConflicts) {
  create("a");
  capture<std::string> c;
  rt.create(make_spec("a"), c.cb());
  ASSERT_TRUE(c.result);
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.kind(), failure_kind::conflict);
  EXPECT_EQ(rt.containers().size(), 1u);
}

TEST_F(FakeEngine, StartMissingIsNotFound) {
  auto r = run(&fake_engine::start, "nope");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, failure_kind::not_found);
}

TEST_F(FakeEngine, LifecycleTransitions) {
  auto id = create("a");
  EXPECT_TRUE(run(&fake_engine::start, id));
  auto info = inspect(id);
  EXPECT_EQ(info.status, "running");
  EXPECT_FALSE(info.ip.empty());
  EXPECT_TRUE(run(&fake_engine::pause, id));
  EXPECT_EQ(inspect(id).status, "paused");
  EXPECT_TRUE(run(&fake_engine::unpause, id));
  EXPECT_EQ(inspect(id).status, "running");
  EXPECT_TRUE(run(&fake_engine::remove, id));
  EXPECT_TRUE(rt.containers().empty());
}

TEST_F(FakeEngine, PauseRequiresRunning) {
  auto id = create("a");
  auto r = run(&fake_engine::pause, id);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, failure_kind::conflict);
  EXPECT_EQ(inspect(id).status, "created");
  auto missing = run(&fake_engine::pause, "nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, failure_kind::not_found);
}

TEST_F(FakeEngine, UnpauseRequiresPaused) {
  auto id = create("a");
  run(&fake_engine::start, id);
  auto r = run(&fake_engine::unpause, id);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, failure_kind::conflict);
  EXPECT_EQ(inspect(id).status, "running");
}

TEST_F(FakeEngine, StartPausedConflicts) {
  auto id = create("a");
  run(&fake_engine::start, id);
  run(&fake_engine::pause, id);
  auto r = run(&fake_engine::start, id);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, failure_kind::conflict);
  // Starting a running container is a no-op success (Docker's 304).
  run(&fake_engine::unpause, id);
  EXPECT_TRUE(run(&fake_engine::start, id));
}

TEST_F(FakeEngine, RemoveMissingSucceeds) {
  EXPECT_TRUE(run(&fake_engine::remove, "nope"));
  EXPECT_EQ(rt.calls("remove"), 1u);
}

TEST_F(FakeEngine, InspectByName) {
  auto id = create("sandbox-x");
  EXPECT_EQ(inspect("sandbox-x").id, id);
  capture<container_info> c;
  rt.inspect("nope", c.cb());
  ASSERT_TRUE(c.result);
  EXPECT_EQ(c.kind(), failure_kind::not_found);
}

TEST_F(FakeEngine, ListFiltersByLabels) {
  create("a", {{"opensandbox.io/id", "1"}, {"team", "x"}});
  create("b", {{"opensandbox.io/id", "2"}});
  create("c", {{"other", "y"}});
  auto list = [&](std::map<std::string, std::string> labels) {
    capture<std::vector<container_info>> c;
    rt.list(labels, c.cb());
    EXPECT_TRUE(c.ok());
    std::vector<std::string> names;
    for (auto& info : c.result->value())
      names.push_back(info.name);
    return names;
  };
  using names = std::vector<std::string>;
  EXPECT_EQ(list({}), (names{"a", "b", "c"}));
  EXPECT_EQ(list({{"opensandbox.io/id", ""}}), (names{"a", "b"}));
  EXPECT_EQ(list({{"opensandbox.io/id", "2"}}), (names{"b"}));
  EXPECT_EQ(list({{"opensandbox.io/id", ""}, {"team", "x"}}), (names{"a"}));
  EXPECT_EQ(list({{"missing", ""}}), names{});
}

TEST_F(FakeEngine, FailNextIsOneShot) {
  rt.fail_next("create", failure{failure_kind::timeout, "slow"});
  capture<std::string> c;
  rt.create(make_spec("a"), c.cb());
  ASSERT_TRUE(c.result);
  EXPECT_EQ(c.kind(), failure_kind::timeout);
  EXPECT_EQ(c.result->error().message, "slow");
  EXPECT_TRUE(rt.containers().empty());
  EXPECT_EQ(create("a"), "fake-1");
  EXPECT_EQ(rt.calls("create"), 2u);
}

TEST_F(FakeEngine, FailNextQueues) {
  auto id = create("a");
  rt.fail_next("start", failure{failure_kind::failed, "one"});
  rt.fail_next("start", failure{failure_kind::failed, "two"});
  auto r1 = run(&fake_engine::start, id);
  auto r2 = run(&fake_engine::start, id);
  ASSERT_FALSE(r1);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r1.error().message, "one");
  EXPECT_EQ(r2.error().message, "two");
  EXPECT_TRUE(run(&fake_engine::start, id));
}

TEST_F(FakeEngine, UnknownImageFailsPull) {
  rt.set_known_images({"opensandbox/busybox:latest"});
  create("a");
  auto spec = make_spec("b");
  spec.image = "missing:1";
  capture<std::string> c;
  rt.create(spec, c.cb());
  ASSERT_TRUE(c.result);
  EXPECT_EQ(c.kind(), failure_kind::failed);
  EXPECT_EQ(c.result->error().message, "Failed to pull image missing:1: "
                                       "not found");
}

TEST_F(FakeEngine, ExitContainer) {
  auto id = create("a");
  run(&fake_engine::start, id);
  rt.exit_container(id, 137);
  auto info = inspect(id);
  EXPECT_EQ(info.status, "exited");
  EXPECT_EQ(info.exit_code, 137);
  EXPECT_GT(info.finished_us, 0);
  // An exited container can be started again.
  EXPECT_TRUE(run(&fake_engine::start, id));
  EXPECT_EQ(inspect(id).status, "running");
}

TEST_F(FakeEngine, SpecOfReturnsCreateSpec) {
  auto spec = make_spec("a", {{"k", "v"}});
  spec.memory_bytes = 1 << 20;
  spec.cmd = {"sleep", "1"};
  capture<std::string> c;
  rt.create(spec, c.cb());
  ASSERT_TRUE(c.ok());
  auto got = rt.spec_of(c.result->value());
  EXPECT_EQ(got.memory_bytes, 1 << 20);
  EXPECT_EQ(got.cmd, spec.cmd);
  EXPECT_EQ(rt.spec_of("nope").name, "");
}

TEST_F(FakeEngine, HoldDefersCallbacksUntilRelease) {
  rt.hold("create");
  capture<std::string> c;
  rt.create(make_spec("a"), c.cb());
  EXPECT_EQ(c.calls, 0);
  EXPECT_EQ(rt.held("create"), 1u);
  // The container already exists: a delete can race the provisioning.
  ASSERT_EQ(rt.containers().size(), 1u);
  EXPECT_TRUE(run(&fake_engine::remove, "fake-1"));
  rt.release("create");
  EXPECT_EQ(c.calls, 1);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.result->value(), "fake-1");
  EXPECT_EQ(rt.held("create"), 0u);
  // Released: callbacks are synchronous again.
  capture<std::string> d;
  rt.create(make_spec("b"), d.cb());
  EXPECT_EQ(d.calls, 1);
}

TEST_F(FakeEngine, CallbackMayReenter) {
  capture<unit> started;
  rt.create(make_spec("a"), [&](expected<std::string> id) {
    ASSERT_TRUE(id);
    rt.start(*id, started.cb());
  });
  EXPECT_TRUE(started.ok());
}

TEST_F(FakeEngine, ShutdownFlushesHeldAndFailsLaterCalls) {
  rt.hold("start");
  auto id = create("a");
  capture<unit> c;
  rt.start(id, c.cb());
  EXPECT_EQ(c.calls, 0);
  rt.shutdown();
  EXPECT_EQ(c.calls, 1);
  capture<unit> p;
  rt.ping(p.cb());
  ASSERT_TRUE(p.result);
  EXPECT_EQ(p.kind(), failure_kind::unavailable);
}

TEST_F(FakeEngine, ThreadSafe) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([this, t] {
      for (int i = 0; i < 50; ++i) {
        auto name = "c-" + std::to_string(t) + "-" + std::to_string(i);
        rt.create(make_spec(name, {{"t", std::to_string(t)}}),
                  [this](expected<std::string> id) {
                    if (id)
                      rt.start(*id, [](expected<unit>) {});
                  });
      }
    });
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(rt.containers().size(), 200u);
  EXPECT_EQ(rt.calls("start"), 200u);
  for (auto& info : rt.containers())
    EXPECT_EQ(info.status, "running");
}
