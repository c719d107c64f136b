// Unit tests of the secure runtime on Docker (`[secure_runtime]`,
// runtimes/docker/oci_runtime and its use by the Docker runtime) over the
// fake engine: which containers run under it, the start-up check, the
// admission of a host that could not be checked, the messages of failed
// creates and starts, and the Engine API fields behind them.

#include "runtimes/docker/oci_runtime.hpp"

#include <gtest/gtest.h>

#include <optional>

#include "runtimes/docker/docker_api.hpp"
#include "runtimes/docker/docker_runtime.hpp"
#include "runtimes/docker/fake_engine.hpp"
#include "runtimes/registry.hpp"

using namespace osb;
using namespace osb::runtimes;
using namespace osb::runtimes::docker;

namespace {

using outcome = provision_result::outcome;

/// A daemon with runc and, if `runsc_path` is set, runsc at that path.
daemon_info daemon(std::optional<std::string> runsc_path) {
  daemon_info d{"linux", "amd64", "20.10", {{"runc", "runc", {}}}, "runc"};
  if (runsc_path)
    d.runtimes.push_back(
      {"runsc", *runsc_path, {"--platform=ptrace", "--network=host"}});
  return d;
}

class SecureRuntime : public testing::Test {
protected:
  SecureRuntime() {
    engine = std::make_shared<fake_engine>();
    cfg = std::make_shared<node_config>();
    cfg->egress.image = "opensandbox/egress:latest";
    cfg->secure_runtime.type = "gvisor";
    cfg->secure_runtime.k8s_runtime_class = "gvisor";
    // /bin/sh: an executable every test machine has.
    engine->set_daemon_info(daemon("/bin/sh"));
  }

  std::shared_ptr<docker_runtime> make() {
    docker_options opts;
    opts.cfg = cfg;
    opts.node = "n1";
    opts.incarnation = "inc-1";
    opts.probe_sidecars = false;
    return std::make_shared<docker_runtime>(engine, std::move(opts));
  }

  static sandbox_instance instance(std::string id, bool sidecar = false) {
    sandbox_instance x;
    x.id = std::move(id);
    x.node = "n1";
    x.runtime_host = "default";
    x.spec.image = "opensandbox/busybox:latest";
    x.spec.entrypoint = {"sleep", "3600"};
    x.ports = port_map{41000, 41001, uint16_t(sidecar ? 41002 : 0)};
    if (sidecar) {
      x.spec.network_policy_json = R"({"defaultAction":"deny"})";
      x.egress_token = "egress-token";
    }
    return x;
  }

  static expected<unit> verify(sandbox_runtime& rt) {
    std::optional<expected<unit>> r;
    rt.verify([&](expected<unit> x) { r.emplace(std::move(x)); });
    EXPECT_TRUE(r) << "the fake engine answers on the caller's stack";
    return r ? *r : expected<unit>{failure{}};
  }

  static admission admit(docker_runtime& rt) {
    std::optional<expected<admission>> r;
    rt.admit(sandbox_spec{}, [&](expected<admission> x) { r.emplace(x); });
    EXPECT_TRUE(r && *r);
    return r && *r ? r->value() : admission{};
  }

  static provision_result provision(docker_runtime& rt,
                                    const sandbox_instance& x) {
    std::optional<provision_result> result;
    rt.provision(x, {}, [&](provision_result r) { result = std::move(r); });
    EXPECT_TRUE(result);
    return result ? *result : provision_result{};
  }

  std::string runtime_of(const std::string& name) {
    for (auto& c : engine->containers())
      if (c.name == name)
        return engine->spec_of(c.id).runtime;
    ADD_FAILURE() << "no container " << name;
    return {};
  }

  std::shared_ptr<fake_engine> engine;
  std::shared_ptr<node_config> cfg;
};

} // namespace

TEST_F(SecureRuntime, SandboxesRunUnderItTheirSidecarsUnderTheDefault) {
  auto rt = make();
  ASSERT_TRUE(verify(*rt));
  EXPECT_EQ(provision(*rt, instance("a")).status, outcome::running);
  EXPECT_EQ(provision(*rt, instance("b", true)).status, outcome::running);
  EXPECT_EQ(runtime_of("sandbox-a"), "runsc");
  EXPECT_EQ(runtime_of("sandbox-b"), "runsc");
  // The sidecar needs nftables of a real kernel namespace.
  EXPECT_EQ(runtime_of("sandbox-egress-b"), "");
  // /tmp made non-empty before the start (runsc would mount a tmpfs over
  // an empty one); the sidecar gets nothing.
  auto tmp = gvisor_tmp_archive();
  auto archives = [&](const std::string& name) {
    for (auto& c : engine->containers())
      if (c.name == name)
        return engine->archives(c.id);
    return decltype(engine->archives("")){};
  };
  using archive = std::pair<std::string, size_t>;
  EXPECT_EQ(archives("sandbox-a"), (std::vector<archive>{{"/", tmp->size()}}));
  EXPECT_TRUE(archives("sandbox-egress-b").empty());
  EXPECT_NE(tmp->find("tmp/.opensandbox/"), std::string::npos);
  engine->fail_next("put_archive", failure{failure_kind::failed, "no space"});
  auto failed = provision(*rt, instance("d"));
  EXPECT_EQ(failed.reason, "CONTAINER_CREATE_FAILED");
  EXPECT_EQ(failed.message, "Failed to keep /tmp in sandbox container: no space");
  cfg->secure_runtime = {};
  auto plain = make();
  EXPECT_EQ(provision(*plain, instance("c")).status, outcome::running);
  EXPECT_EQ(runtime_of("sandbox-c"), "");
  EXPECT_TRUE(archives("sandbox-c").empty());
}

TEST_F(SecureRuntime, StartUpCheckFailsWithoutTheRuntime) {
  engine->set_daemon_info(daemon(std::nullopt));
  auto r = verify(*make());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, failure_kind::invalid);
  EXPECT_EQ(r.error().message.rfind(
              "Configured Docker runtime 'runsc' is not available on Docker "
              "host 'default'. Available runtimes: runc. Please install and "
              "configure the runtime before starting the server",
              0),
            0u)
    << r.error().message;
  // A registration whose binary is gone (local Docker host).
  engine->set_daemon_info(daemon("/nonexistent/runsc"));
  r = verify(*make());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("with path '/nonexistent/runsc', which is "
                                   "not an executable file here"),
            std::string::npos)
    << r.error().message;
  // Without a secure runtime there is nothing to check.
  cfg->secure_runtime = {};
  EXPECT_TRUE(verify(*make()));
  EXPECT_EQ(engine->calls("info"), 2u);
}

TEST_F(SecureRuntime, AHostThatCouldNotBeCheckedIsCheckedAtAdmission) {
  engine->fail_next("info", failure{failure_kind::unavailable, "no daemon"});
  auto rt = make();
  // Not fatal at start: Docker may come later.
  EXPECT_TRUE(verify(*rt));
  engine->fail_next("info", failure{failure_kind::unavailable, "no daemon"});
  auto a = admit(*rt);
  ASSERT_TRUE(a.refused);
  EXPECT_EQ(a.refused->code, ec::runtime_unavailable);
  EXPECT_EQ(a.refused->message, "Cannot check Docker runtime 'runsc' on "
                                "Docker host 'default': no daemon");
  // The daemon answers without the runtime: refused with the reason, no
  // container made (never a sandbox stuck in Pending).
  engine->set_daemon_info(daemon(std::nullopt));
  a = admit(*rt);
  ASSERT_TRUE(a.refused);
  EXPECT_EQ(a.refused->code, ec::runtime_unavailable);
  EXPECT_NE(a.refused->message.find("Configured Docker runtime 'runsc' is "
                                    "not available"),
            std::string::npos);
  // Registered meanwhile (SIGHUP): admitted, and not asked again.
  engine->set_daemon_info(daemon("/bin/sh"));
  EXPECT_FALSE(admit(*rt).refused);
  auto asked = engine->calls("info");
  EXPECT_FALSE(admit(*rt).refused);
  EXPECT_EQ(engine->calls("info"), asked);
  EXPECT_EQ(engine->calls("create"), 0u);
}

TEST_F(SecureRuntime, FailuresUnderItSayWhoChoseItAndWhatToDo) {
  auto rt = make();
  ASSERT_TRUE(verify(*rt));
  // dockerd restarted without the registration.
  engine->set_daemon_info(daemon(std::nullopt));
  auto r = provision(*rt, instance("a"));
  EXPECT_EQ(r.status, outcome::failed);
  EXPECT_EQ(r.reason, "CONTAINER_CREATE_FAILED");
  EXPECT_EQ(r.message,
            "Failed to create sandbox container: create container: Unknown "
            "runtime specified runsc (this server runs every sandbox under "
            "OCI runtime 'runsc' ([secure_runtime]); see docs/gvisor.md)");
  engine->set_daemon_info(daemon("/bin/sh"));
  engine->fail_next("start",
                    failure{failure_kind::failed,
                            "OCI runtime create failed: creating container: "
                            "cannot run with network enabled in root network "
                            "namespace: unknown"});
  r = provision(*rt, instance("b"));
  EXPECT_EQ(r.reason, "CONTAINER_START_FAILED");
  EXPECT_NE(r.message.find("register runsc with runtimeArgs "
                           "[\"--platform=ptrace\", \"--network=host\"]"),
            std::string::npos)
    << r.message;
  // Unrelated failures keep Docker's words alone.
  engine->fail_next("start", failure{failure_kind::failed, "disk full"});
  r = provision(*rt, instance("c"));
  EXPECT_EQ(r.message, "Failed to start sandbox container: disk full");
}

TEST_F(SecureRuntime, TheRegistryWaitsForEveryHostButNotForever) {
  std::vector<host_runtime> hosts{{"default", "", make()}};
  EXPECT_TRUE(verify_runtimes(hosts, std::chrono::seconds(1)));
  engine->set_daemon_info(daemon(std::nullopt));
  hosts.push_back({"other", "", make()});
  auto r = verify_runtimes(hosts, std::chrono::seconds(1));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("Configured Docker runtime 'runsc'"),
            std::string::npos);
  // A daemon that does not answer in time is left to admission.
  engine->hold("info");
  EXPECT_TRUE(verify_runtimes({{"slow", "", make()}},
                              std::chrono::milliseconds(10)));
  engine->release("info");
}

TEST(SecureRuntimeApi, CreateNamesTheRuntimeAndInfoListsThem) {
  container_spec spec;
  spec.image = "x";
  EXPECT_EQ(create_body(spec).find("\"Runtime\""), std::string::npos);
  spec.runtime = "runsc";
  EXPECT_NE(create_body(spec).find(R"("HostConfig":{"Runtime":"runsc")"),
            std::string::npos)
    << create_body(spec);
  auto info = parse_info(
    R"({"OSType":"linux","Architecture":"x86_64","DefaultRuntime":"runc",)"
    R"("Runtimes":{"runc":{"path":"runc"},"runsc":{"path":"/usr/bin/runsc",)"
    R"("runtimeArgs":["--platform=ptrace","--network=host"]}}})");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->default_runtime, "runc");
  ASSERT_EQ(info->runtimes.size(), 2u);
  EXPECT_EQ(info->runtimes[1].name, "runsc");
  EXPECT_EQ(info->runtimes[1].path, "/usr/bin/runsc");
  EXPECT_EQ(info->runtimes[1].args,
            (std::vector<std::string>{"--platform=ptrace", "--network=host"}));
  EXPECT_EQ(check_oci_runtime(*info, "runsc", "default", false), std::nullopt);
  EXPECT_NE(check_oci_runtime(daemon_info{}, "runsc", "h", false)
              ->find("Available runtimes: none."),
            std::string::npos);
  EXPECT_EQ(oci_runtime_hint("", "Unknown runtime specified runsc"), "");
  EXPECT_EQ(oci_runtime_hint("runsc", "Failed to pull image x"), "");
}
