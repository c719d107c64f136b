// Runs the Docker engine client against the real daemon. Requires Docker and the
// image opensandbox/busybox:latest (deploy/build-images.sh builds it).

#include "runtimes/docker/docker_engine.hpp"

#include <gtest/gtest.h>
#include <cstdlib>
#include <fstream>
#include <filesystem>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace osb;
using namespace osb::runtimes;
using namespace osb::runtimes::docker;
using namespace std::chrono_literals;

namespace {

constexpr auto busybox = "opensandbox/busybox:latest";
constexpr auto wait_limit = 60s;

/// Turns an asynchronous call into a blocking one (tests only).
template <class T, class F>
expected<T> await(F&& start) {
  auto promise = std::make_shared<std::promise<expected<T>>>();
  auto future = promise->get_future();
  std::forward<F>(start)(
    [promise](expected<T> x) { promise->set_value(std::move(x)); });
  if (future.wait_for(wait_limit) != std::future_status::ready)
    return failure{failure_kind::timeout, "test gave up waiting"};
  return future.get();
}

std::string random_token() {
  std::random_device rd;
  std::mt19937_64 gen{rd()};
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(gen()));
  return buf;
}

std::string describe(const failure& f) {
  return "kind " + std::to_string(static_cast<int>(f.kind)) + ": "
         + f.message;
}

/// Runs `docker` and returns its stdout (for cross-checking what the daemon
/// really did).
std::string sh(const std::string& cmd) {
  std::string out;
  if (auto pipe = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0)
      out.append(buf, n);
    pclose(pipe);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
    out.pop_back();
  return out;
}

class DockerEngine : public testing::Test {
protected:
  void SetUp() override {
    run_label_ = random_token();
    rt_ = make_docker_engine("unix:///var/run/docker.sock", 30s, 2);
  }

  void TearDown() override {
    // Remove everything this test created, even after failed assertions.
    auto xs = await<std::vector<container_info>>([&](auto cb) {
      rt_->list({{"osb-test-run", run_label_}}, cb);
    });
    if (xs)
      for (auto& info : *xs)
        await<unit>([&](auto cb) { rt_->remove(info.id, cb); });
    // Belt and braces in case the runtime itself is what broke.
    sh("docker ps -aq --filter label=osb-test-run=" + run_label_
       + " | xargs -r docker rm -f >/dev/null 2>&1");
    rt_->shutdown();
  }

  container_spec make_spec(const std::string& suffix) {
    container_spec spec;
    spec.name = "osb-test-" + run_label_ + "-" + suffix;
    spec.image = busybox;
    spec.cmd = {"sleep", "300"};
    spec.labels = {{"osb-test-run", run_label_}, {"osb-test", suffix}};
    return spec;
  }

  expected<std::string> create(const container_spec& spec) {
    return await<std::string>([&](auto cb) { rt_->create(spec, cb); });
  }

  std::string run_label_;
  engine_ptr rt_;
};

} // namespace

TEST_F(DockerEngine, Ping) {
  auto r = await<unit>([&](auto cb) { rt_->ping(cb); });
  EXPECT_TRUE(r) << describe(r.error());
}

TEST_F(DockerEngine, FullLifecycle) {
  auto spec = make_spec("life");
  spec.env = {"FOO=bar"};
  spec.network_mode = "bridge";
  spec.ports = {{44772, 0, "127.0.0.1"}};
  spec.memory_bytes = 64 * 1024 * 1024;
  spec.nano_cpus = 500'000'000;
  spec.pids_limit = 64;
  spec.cap_drop = {"NET_RAW", "MKNOD"};
  spec.security_opt = {"no-new-privileges:true"};
  auto id = create(spec);
  ASSERT_TRUE(id) << describe(id.error());
  EXPECT_FALSE(id->empty());

  auto created = await<container_info>([&](auto cb) {
    rt_->inspect(*id, cb);
  });
  ASSERT_TRUE(created) << describe(created.error());
  EXPECT_EQ(created->status, "created");
  EXPECT_EQ(created->name, spec.name);
  EXPECT_EQ(created->labels.at("osb-test"), "life");
  EXPECT_GT(created->created_us, 0);
  EXPECT_EQ(created->finished_us, 0);

  auto started = await<unit>([&](auto cb) { rt_->start(*id, cb); });
  ASSERT_TRUE(started) << describe(started.error());
  // Starting again is a no-op (304).
  auto again = await<unit>([&](auto cb) { rt_->start(*id, cb); });
  EXPECT_TRUE(again) << describe(again.error());

  auto running = await<container_info>([&](auto cb) {
    rt_->inspect(spec.name, cb); // by name works too
  });
  ASSERT_TRUE(running) << describe(running.error());
  EXPECT_EQ(running->id, *id);
  EXPECT_EQ(running->status, "running");
  EXPECT_FALSE(running->ip.empty());

  // Cross-check that the limits reached the daemon.
  auto hc = sh("docker inspect -f '{{.HostConfig.Memory}} "
               "{{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} "
               "{{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}} "
               "{{.Config.Env}}' "
               + *id);
  EXPECT_NE(hc.find("67108864 500000000 64"), std::string::npos) << hc;
  EXPECT_NE(hc.find("NET_RAW"), std::string::npos) << hc;
  EXPECT_NE(hc.find("no-new-privileges:true"), std::string::npos) << hc;
  EXPECT_NE(hc.find("FOO=bar"), std::string::npos) << hc;
  auto port = sh("docker port " + *id + " 44772/tcp");
  EXPECT_EQ(port.rfind("127.0.0.1:", 0), 0u) << port;

  auto paused = await<unit>([&](auto cb) { rt_->pause(*id, cb); });
  ASSERT_TRUE(paused) << describe(paused.error());
  auto info = await<container_info>([&](auto cb) { rt_->inspect(*id, cb); });
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, "paused");
  // Pausing twice is a conflict.
  auto twice = await<unit>([&](auto cb) { rt_->pause(*id, cb); });
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().kind, failure_kind::conflict)
    << describe(twice.error());
  EXPECT_EQ(twice.error().message.rfind("pause container: ", 0), 0u);

  auto unpaused = await<unit>([&](auto cb) { rt_->unpause(*id, cb); });
  ASSERT_TRUE(unpaused) << describe(unpaused.error());

  auto listed = await<std::vector<container_info>>([&](auto cb) {
    rt_->list({{"osb-test-run", run_label_}, {"osb-test", ""}}, cb);
  });
  ASSERT_TRUE(listed) << describe(listed.error());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().id, *id);
  EXPECT_EQ(listed->front().name, spec.name);
  EXPECT_EQ(listed->front().status, "running");
  EXPECT_EQ(listed->front().labels.at("osb-test"), "life");
  EXPECT_GT(listed->front().created_us, 0);

  auto none = await<std::vector<container_info>>([&](auto cb) {
    rt_->list({{"osb-test-run", run_label_}, {"osb-test", "other"}}, cb);
  });
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());

  auto removed = await<unit>([&](auto cb) { rt_->remove(*id, cb); });
  ASSERT_TRUE(removed) << describe(removed.error());
  auto gone = await<container_info>([&](auto cb) { rt_->inspect(*id, cb); });
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().kind, failure_kind::not_found);
  // Removing a missing container succeeds.
  auto twice_removed = await<unit>([&](auto cb) { rt_->remove(*id, cb); });
  EXPECT_TRUE(twice_removed) << describe(twice_removed.error());
}

TEST_F(DockerEngine, ExitedContainerReportsExitCode) {
  auto spec = make_spec("exit");
  spec.cmd = {"sh", "-c", "exit 7"};
  auto id = create(spec);
  ASSERT_TRUE(id) << describe(id.error());
  ASSERT_TRUE(await<unit>([&](auto cb) { rt_->start(*id, cb); }));
  expected<container_info> info = failure{};
  for (int i = 0; i < 100; ++i) {
    info = await<container_info>([&](auto cb) { rt_->inspect(*id, cb); });
    if (info && info->status == "exited")
      break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, "exited");
  EXPECT_EQ(info->exit_code, 7);
  EXPECT_GT(info->finished_us, info->created_us);
  auto listed = await<std::vector<container_info>>([&](auto cb) {
    rt_->list({{"osb-test-run", run_label_}}, cb);
  });
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().exit_code, 7);
}

TEST_F(DockerEngine, DuplicateNameConflicts) {
  auto spec = make_spec("dup");
  ASSERT_TRUE(create(spec));
  auto second = create(spec);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().kind, failure_kind::conflict)
    << describe(second.error());
  EXPECT_EQ(second.error().message.rfind("create container: ", 0), 0u);
}

TEST_F(DockerEngine, MissingContainerIsNotFound) {
  auto r = await<unit>([&](auto cb) { rt_->start("osb-no-such-ctr", cb); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, failure_kind::not_found);
  EXPECT_NE(r.error().message.find("No such container"), std::string::npos)
    << r.error().message;
}

TEST_F(DockerEngine, InvalidSpecIsRejected) {
  auto spec = make_spec("bad");
  spec.cap_add = {"NOT_A_CAPABILITY"};
  auto id = create(spec);
  ASSERT_FALSE(id);
  // Docker 20.10 answers 400 or 500 depending on where it checks.
  EXPECT_TRUE(id.error().kind == failure_kind::invalid
              || id.error().kind == failure_kind::failed)
    << describe(id.error());
  EXPECT_NE(id.error().message.find("NOT_A_CAPABILITY"), std::string::npos)
    << id.error().message;
}

TEST_F(DockerEngine, MissingImageFailsPull) {
  auto spec = make_spec("noimg");
  spec.image = "opensandbox/does-not-exist:1";
  spec.registry_username = "user";
  spec.registry_password = "secret";
  auto id = create(spec);
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().kind, failure_kind::failed) << describe(id.error());
  EXPECT_EQ(id.error().message.rfind(
              "Failed to pull image opensandbox/does-not-exist:1: ", 0),
            0u)
    << id.error().message;
}

TEST_F(DockerEngine, UnreachableDaemonIsUnavailable) {
  auto rt = make_docker_engine("unix:///tmp/osb-nonexistent.sock", 5s);
  auto r = await<unit>([&](auto cb) { rt->ping(cb); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, failure_kind::unavailable);
  EXPECT_EQ(r.error().message.rfind("Docker daemon is unreachable at "
                                    "unix:///tmp/osb-nonexistent.sock: ",
                                    0),
            0u)
    << r.error().message;
  auto c = await<std::string>([&](auto cb) { rt->create(make_spec("x"), cb); });
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().kind, failure_kind::unavailable);
}

TEST_F(DockerEngine, UnreachableTcpDaemonIsUnavailable) {
  // Port 1 on loopback refuses connections.
  auto rt = make_docker_engine("tcp://127.0.0.1:1", 5s);
  auto r = await<unit>([&](auto cb) { rt->ping(cb); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, failure_kind::unavailable)
    << describe(r.error());
}

TEST_F(DockerEngine, UnreachableSshHostIsUnavailable) {
  // Port 1 on loopback refuses at once: ssh exits, the socket never appears.
  ::setenv("OPENSANDBOX_SSH_COMMAND", "ssh -o ConnectTimeout=2", 1);
  auto rt = make_docker_engine("ssh://nobody@127.0.0.1:1", 5s);
  auto r = await<unit>([&](auto cb) { rt->ping(cb); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, failure_kind::unavailable);
  EXPECT_NE(r.error().message.find("ssh://nobody@127.0.0.1:1"),
            std::string::npos)
    << r.error().message;
  ::unsetenv("OPENSANDBOX_SSH_COMMAND");
}

/// Runs a private sshd on loopback that lets a fresh key in as root, so
/// that ssh:// Docker hosts can be tested against this machine's daemon.
class LocalSshd {
public:
  LocalSshd() {
    dir_ = std::filesystem::temp_directory_path()
           / ("osb-sshd-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    auto d = dir_.string();
    run("ssh-keygen -q -t ed25519 -N '' -f " + d + "/host_key");
    run("ssh-keygen -q -t ed25519 -N '' -f " + d + "/client_key");
    run("cp " + d + "/client_key.pub " + d + "/authorized_keys");
    port_ = 20000 + ::getpid() % 20000;
    std::ofstream cfg{dir_ / "sshd_config"};
    cfg << "ListenAddress 127.0.0.1\nPort " << port_ << "\nHostKey " << d
        << "/host_key\nAuthorizedKeysFile " << d
        << "/authorized_keys\nPermitRootLogin prohibit-password\n"
           "StrictModes no\nUsePAM no\nPidFile "
        << d << "/sshd.pid\nAllowStreamLocalForwarding yes\n";
    cfg.close();
    // sshd needs its privilege separation directory.
    run("mkdir -p /run/sshd");
    ok_ = run("/usr/sbin/sshd -f " + d + "/sshd_config") == 0;
    std::this_thread::sleep_for(300ms);
  }

  ~LocalSshd() {
    run("kill $(cat " + dir_.string() + "/sshd.pid) 2>/dev/null");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  bool ok() const {
    return ok_;
  }

  std::string url() const {
    return "ssh://root@127.0.0.1:" + std::to_string(port_);
  }

  std::string ssh_command() const {
    return "ssh -i " + (dir_ / "client_key").string()
           + " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
             " -o LogLevel=ERROR";
  }

private:
  static int run(const std::string& cmd) {
    return std::system(cmd.c_str());
  }

  std::filesystem::path dir_;
  int port_ = 0;
  bool ok_ = false;
};

TEST_F(DockerEngine, SshHostIsReachedThroughAForwardedSocket) {
  LocalSshd sshd;
  ASSERT_TRUE(sshd.ok()) << "cannot start sshd";
  ::setenv("OPENSANDBOX_SSH_COMMAND", sshd.ssh_command().c_str(), 1);
  auto rt = make_docker_engine(sshd.url(), 10s);
  ::unsetenv("OPENSANDBOX_SSH_COMMAND");
  // ssh needs a moment to connect and create the local socket.
  expected<unit> r = failure{failure_kind::unavailable, "not tried"};
  for (int i = 0; i < 50 && !r; ++i) {
    r = await<unit>([&](auto cb) { rt->ping(cb); });
    if (!r)
      std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(r) << r.error().message;
  auto xs = await<std::vector<container_info>>(
    [&](auto cb) { rt->list({{"opensandbox.io/nothing", ""}}, cb); });
  ASSERT_TRUE(xs) << xs.error().message;
  EXPECT_TRUE(xs->empty());
  rt->shutdown();
}

TEST_F(DockerEngine, ConcurrentCreatesRunInParallel) {
  constexpr int n = 10;
  std::vector<std::promise<expected<std::string>>> promises(n);
  std::vector<std::future<expected<std::string>>> futures;
  for (auto& p : promises)
    futures.push_back(p.get_future());
  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};
  auto begin = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    ++in_flight;
    max_in_flight = std::max(max_in_flight.load(), in_flight.load());
    // The call returns before the daemon answers: all n are issued first.
    rt_->create(make_spec("par" + std::to_string(i)),
                [&, i](expected<std::string> x) {
                  --in_flight;
                  promises[i].set_value(std::move(x));
                });
  }
  EXPECT_GE(max_in_flight.load(), n - 1);
  std::vector<std::string> ids;
  for (auto& f : futures) {
    ASSERT_EQ(f.wait_for(wait_limit), std::future_status::ready);
    auto x = f.get();
    ASSERT_TRUE(x) << describe(x.error());
    ids.push_back(*x);
  }
  auto elapsed = std::chrono::steady_clock::now() - begin;
  auto listed = await<std::vector<container_info>>([&](auto cb) {
    rt_->list({{"osb-test-run", run_label_}}, cb);
  });
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->size(), static_cast<size_t>(n));
  // Parallel connections are proven hermetically in the unit test
  // (runtimes_docker_engine_test); here the time is a sanity bound only.
  EXPECT_LT(elapsed, 30s);
}

TEST_F(DockerEngine, ConnectionsAreReused) {
  // Many sequential calls must not exhaust anything and stay fast.
  for (int i = 0; i < 200; ++i) {
    auto r = await<unit>([&](auto cb) { rt_->ping(cb); });
    ASSERT_TRUE(r) << describe(r.error());
  }
}

TEST_F(DockerEngine, ShutdownFailsLaterCalls) {
  auto rt = make_docker_engine("", 5s, 1);
  ASSERT_TRUE(await<unit>([&](auto cb) { rt->ping(cb); }));
  rt->shutdown();
  auto r = await<unit>([&](auto cb) { rt->ping(cb); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, failure_kind::unavailable);
}

TEST_F(DockerEngine, ShutdownWithCallsInFlightNeverHangs) {
  auto rt = make_docker_engine("", 5s, 2);
  constexpr int n = 20;
  std::atomic<int> answered{0};
  for (int i = 0; i < n; ++i)
    rt->list({{"osb-test-run", run_label_}},
             [&](expected<std::vector<container_info>>) { ++answered; });
  rt->shutdown();
  // Every callback ran exactly once: either answered or failed by shutdown.
  EXPECT_EQ(answered.load(), n);
  rt.reset();
}

TEST_F(DockerEngine, DestroyFromInsideCallback) {
  auto rt = make_docker_engine("", 5s, 1);
  std::promise<void> done;
  auto raw = rt.get();
  auto holder = std::make_shared<engine_ptr>(std::move(rt));
  raw->ping([holder, &done](expected<unit>) {
    holder->reset(); // Last reference dies on the runtime's own thread.
    done.set_value();
  });
  holder.reset();
  ASSERT_EQ(done.get_future().wait_for(10s), std::future_status::ready);
}
