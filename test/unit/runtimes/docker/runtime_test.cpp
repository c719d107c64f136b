// Unit tests of the Docker runtime (runtimes/docker/docker_runtime) over the
// fake engine, whose callbacks run on the caller's stack: what the actor
// tests do not see of it (admission, failure reasons and remedies,
// cancellation, neutral observations and evidence, snapshot images) and
// the registry that builds it.

#include "runtimes/docker/docker_runtime.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <set>

#include "runtimes/docker/fake_engine.hpp"
#include "runtimes/docker/hosts.hpp"
#include "runtimes/docker/labels.hpp"
#include "runtimes/registry.hpp"

using namespace osb;
using namespace osb::runtimes;
using namespace osb::runtimes::docker;

namespace {

using outcome = provision_result::outcome;
using remedy = provision_result::remedy;

const std::string policy
  = R"({"defaultAction":"deny","egress":[{"action":"allow","target":"pypi.org"}]})";

class DockerRuntime : public testing::Test {
protected:
  DockerRuntime() {
    engine = std::make_shared<fake_engine>();
    cfg = std::make_shared<node_config>();
    cfg->egress.image = "opensandbox/egress:latest";
  }

  std::shared_ptr<docker_runtime> make(std::string incarnation = "inc-1") {
    docker_options opts;
    opts.cfg = cfg;
    opts.node = "n1";
    opts.incarnation = std::move(incarnation);
    opts.execd_tar = execd_tar;
    opts.probe_sidecars = false;
    return std::make_shared<docker_runtime>(engine, std::move(opts));
  }

  sandbox_instance instance(std::string id = "sbx-1") {
    sandbox_instance x;
    x.id = std::move(id);
    x.node = "n1";
    x.runtime_host = "default";
    x.spec.image = "opensandbox/busybox:latest";
    x.spec.entrypoint = {"sleep", "3600"};
    x.ports = port_map{41000, 41001, 0};
    x.access_token = "token";
    return x;
  }

  sandbox_instance with_sidecar(sandbox_instance x) {
    x.spec.network_policy_json = policy;
    x.ports.egress = 41002;
    x.egress_token = "egress-token";
    return x;
  }

  static std::string pvc(bool create, bool remove) {
    return std::string{R"([{"name":"data","pvc":{"claimName":"cache",)"}
           + R"("createIfNotExists":)" + (create ? "true" : "false")
           + R"(,"deleteOnSandboxTermination":)" + (remove ? "true" : "false")
           + R"(},"mountPath":"/data"}])";
  }

  template <class T, class F>
  static std::optional<expected<T>> run(F f) {
    std::optional<expected<T>> result;
    f([&](expected<T> x) { result.emplace(std::move(x)); });
    return result;
  }

  admission admit(docker_runtime& rt, const sandbox_spec& spec) {
    auto r = run<admission>([&](auto cb) { rt.admit(spec, cb); });
    EXPECT_TRUE(r && *r);
    return r && *r ? r->value() : admission{};
  }

  provision_result provision(docker_runtime& rt, const sandbox_instance& x,
                             provision_options opts = {}) {
    std::optional<provision_result> result;
    rt.provision(x, std::move(opts),
                 [&](provision_result r) { result = std::move(r); });
    EXPECT_TRUE(result) << "the fake engine answers on the caller's stack";
    return result ? *result : provision_result{};
  }

  std::shared_ptr<fake_engine> engine;
  std::shared_ptr<node_config> cfg;
  std::shared_ptr<const std::string> execd_tar;
};

} // namespace

// -- admission ----------------------------------------------------------------

TEST_F(DockerRuntime, AdmissionAsksForTheHostPortsOfItsNetworkMode) {
  auto rt = make();
  sandbox_spec spec;
  auto a = admit(*rt, spec);
  EXPECT_FALSE(a.refused);
  EXPECT_TRUE(a.execd_port && a.http_port);
  EXPECT_FALSE(a.egress_port);
  cfg->docker.network_mode = "host";
  a = admit(*rt, spec);
  EXPECT_FALSE(a.execd_port || a.http_port || a.egress_port);
  // The sidecar publishes its ports in every mode.
  spec.network_policy_json = policy;
  a = admit(*rt, spec);
  EXPECT_TRUE(a.execd_port && a.http_port && a.egress_port);
}

TEST_F(DockerRuntime, AdmissionRefusesAPlatformTheHostCannotRun) {
  engine->set_daemon_info({"linux", "amd64", "20.10"});
  auto rt = make();
  sandbox_spec spec;
  spec.platform_os = "linux";
  spec.platform_arch = "arm64";
  auto a = admit(*rt, spec);
  ASSERT_TRUE(a.refused);
  EXPECT_EQ(a.refused->code, ec::invalid_parameter);
  EXPECT_EQ(a.refused->message,
            "Platform linux/arm64 is not supported by this server's Docker "
            "host 'default', which runs linux/amd64.");
  spec.platform_arch = "amd64";
  EXPECT_FALSE(admit(*rt, spec).refused);
  // Learned once.
  EXPECT_EQ(engine->calls("info"), 1u);
}

TEST_F(DockerRuntime, AdmissionWithoutAnswerFromDockerIsUnavailable) {
  engine->fail_next("info", failure{failure_kind::unavailable, "no daemon"});
  auto rt = make();
  sandbox_spec spec;
  spec.platform_os = "linux";
  spec.platform_arch = "amd64";
  auto a = admit(*rt, spec);
  ASSERT_TRUE(a.refused);
  EXPECT_EQ(a.refused->code, ec::runtime_unavailable);
  EXPECT_NE(a.refused->message.find("no daemon"), std::string::npos);
}

TEST_F(DockerRuntime, AdmissionRefusesVolumesThisServerCannotProvide) {
  auto rt = make();
  sandbox_spec spec;
  spec.volumes_json
    = R"([{"name":"w","host":{"path":"/etc"},"mountPath":"/w"}])";
  auto a = admit(*rt, spec);
  ASSERT_TRUE(a.refused);
  EXPECT_EQ(a.refused->code, ec::volume_host_path_not_allowed);
  EXPECT_NE(a.refused->message.find("Volume 'w'"), std::string::npos);
  spec.volumes_json
    = R"([{"name":"o","ossfs":{"bucket":"b"},"mountPath":"/o"}])";
  a = admit(*rt, spec);
  ASSERT_TRUE(a.refused);
  EXPECT_EQ(a.refused->code, ec::volume_unsupported_backend);
  EXPECT_EQ(engine->calls("create"), 0u);
}

// -- provisioning -------------------------------------------------------------

TEST_F(DockerRuntime, ProvisionStampsWhatItMakesWithItsIncarnation) {
  auto rt = make("inc-7");
  auto x = with_sidecar(instance());
  x.spec.volumes_json = pvc(true, false);
  auto r = provision(*rt, x);
  EXPECT_EQ(r.status, outcome::running) << r.message;
  auto cs = engine->containers();
  ASSERT_EQ(cs.size(), 2u);
  for (auto& c : cs)
    EXPECT_EQ(c.labels.at(incarnation_label), "inc-7") << c.name;
  EXPECT_EQ(engine->volumes().at("cache").labels.at(incarnation_label),
            "inc-7");
  EXPECT_EQ(cs[1].status, "running");
}

TEST_F(DockerRuntime, ProvisionFailuresCarryTheApiReason) {
  struct step_failure {
    const char* op;
    failure f;
    bool sidecar;
    const char* reason;
    const char* message_start;
  };
  execd_tar = std::make_shared<const std::string>("tar");
  step_failure cases[] = {
    {"create", {failure_kind::unavailable, "Docker is unreachable"}, false,
     "DOCKER_UNAVAILABLE", "Failed to create sandbox container: "},
    {"create", {failure_kind::failed, "Failed to pull image x: denied"}, false,
     "IMAGE_PULL_FAILED", "Failed to create sandbox container: "},
    {"create", {failure_kind::invalid, "bad spec"}, false,
     "CONTAINER_CREATE_FAILED", "Failed to create sandbox container: "},
    {"create", {failure_kind::failed, "no egress image"}, true,
     "EGRESS_SIDECAR_FAILED",
     "Failed to create the egress sidecar of sandbox container: "},
    {"put_archive", {failure_kind::failed, "read-only"}, false,
     "EXECD_DISTRIBUTION_FAILED", "Failed to inject execd into sandbox "},
    {"start", {failure_kind::failed, "exec format error"}, false,
     "CONTAINER_START_FAILED", "Failed to start sandbox container: "},
  };
  int n = 0;
  for (auto& c : cases) {
    auto rt = make();
    auto x = instance("sbx-" + std::to_string(++n));
    if (c.sidecar)
      x = with_sidecar(x);
    engine->fail_next(c.op, c.f);
    auto r = provision(*rt, x);
    EXPECT_EQ(r.status, outcome::failed) << c.op;
    EXPECT_EQ(r.fix, remedy::none) << c.op;
    EXPECT_EQ(r.reason, c.reason) << c.op << ": " << r.message;
    EXPECT_EQ(r.message.rfind(c.message_start, 0), 0u) << r.message;
    EXPECT_NE(r.message.find(c.f.message), std::string::npos) << r.message;
  }
}

TEST_F(DockerRuntime, AHostPortTakenComesBackForNewPortsWithNothingLeft) {
  auto rt = make();
  for (auto x : {instance("a"), with_sidecar(instance("b"))}) {
    engine->fail_next("start", failure{failure_kind::failed,
                                       "Bind for 0.0.0.0:41000 failed: port "
                                       "is already allocated"});
    auto r = provision(*rt, x);
    EXPECT_EQ(r.status, outcome::failed);
    EXPECT_EQ(r.fix, remedy::new_ports);
    EXPECT_FALSE(r.reason.empty());
    // New ports need new containers: the runtime removed them.
    EXPECT_TRUE(engine->containers().empty());
  }
}

TEST_F(DockerRuntime, ANameAnEarlierCreateHoldsIsRetriedLaterNotFresh) {
  auto rt = make();
  // What a create sent before a crash left behind.
  container_spec stale;
  stale.name = "sandbox-sbx-1";
  stale.image = "x";
  engine->create(stale, [](expected<std::string>) {});
  auto r = provision(*rt, instance());
  EXPECT_EQ(r.status, outcome::failed);
  EXPECT_EQ(r.fix, remedy::retry_later);
  EXPECT_EQ(r.reason, "CONTAINER_CREATE_FAILED");
  provision_options again;
  again.fresh = false;
  r = provision(*rt, instance(), again);
  EXPECT_EQ(r.status, outcome::running) << r.message;
  ASSERT_EQ(engine->containers().size(), 1u);
  EXPECT_EQ(engine->spec_of(engine->containers()[0].id).image,
            "opensandbox/busybox:latest");
}

TEST_F(DockerRuntime, ACancelledProvisioningStopsBeforeItsNextStep) {
  auto rt = make();
  engine->hold("create");
  provision_options opts;
  opts.cancel = std::make_shared<std::atomic<bool>>(false);
  std::optional<provision_result> result;
  rt->provision(instance(), opts,
                [&](provision_result r) { result = std::move(r); });
  EXPECT_FALSE(result);
  opts.cancel->store(true);
  engine->release("create");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, outcome::cancelled);
  // Created but never started: what exists is left to `remove`.
  EXPECT_EQ(engine->calls("start"), 0u);
  EXPECT_EQ(engine->containers().size(), 1u);
}

TEST_F(DockerRuntime, PullProgressReachesTheCaller) {
  auto rt = make();
  engine->set_pull_progress({"Pulling image x: 42% (1.0/2.4 MB)"});
  std::vector<std::string> seen;
  provision_options opts;
  opts.progress = [&](const std::string& msg) { seen.push_back(msg); };
  EXPECT_EQ(provision(*rt, instance(), opts).status, outcome::running);
  EXPECT_EQ(seen, (std::vector<std::string>{"Pulling image x: 42% (1.0/2.4 "
                                            "MB)"}));
}

// -- removal ------------------------------------------------------------------

TEST_F(DockerRuntime, RemovalTakesTheVolumesItMayAndSaysWhatIsLeft) {
  auto rt = make();
  auto x = with_sidecar(instance());
  x.spec.volumes_json = pvc(true, false);
  ASSERT_EQ(provision(*rt, x).status, outcome::running);
  // Ran: a volume not flagged for removal stays.
  auto r = run<unit>([&](auto cb) { rt->remove(x, false, cb); });
  ASSERT_TRUE(r && *r);
  EXPECT_TRUE(engine->containers().empty());
  EXPECT_EQ(engine->volumes().count("cache"), 1u);
  // Never ran: everything the server made for it goes.
  r = run<unit>([&](auto cb) { rt->remove(x, true, cb); });
  ASSERT_TRUE(r && *r);
  EXPECT_TRUE(engine->volumes().empty());
  // A failure names the part that is left (the DELETE's pending text).
  ASSERT_EQ(provision(*rt, x).status, outcome::running);
  engine->fail_next("remove", failure{failure_kind::unavailable,
                                      "Docker is unreachable"});
  r = run<unit>([&](auto cb) { rt->remove(x, true, cb); });
  ASSERT_TRUE(r);
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error().message,
            "removing its container failed (Docker is unreachable)");
  engine->fail_next("list_volumes", failure{failure_kind::failed, "hiccup"});
  r = run<unit>([&](auto cb) { rt->remove(x, true, cb); });
  ASSERT_TRUE(r && !*r);
  EXPECT_EQ(r->error().message, "removing its volumes failed (hiccup)");
}

// -- observation --------------------------------------------------------------

TEST_F(DockerRuntime, ObservationsAreNeutralAndCarryTheirEvidence) {
  auto rt = make("inc-1");
  ASSERT_EQ(provision(*rt, with_sidecar(instance("a"))).status,
            outcome::running);
  ASSERT_EQ(provision(*rt, instance("b")).status, outcome::running);
  engine->exit_container(engine->containers().back().id, 3);
  // A container of another node is none of this runtime's business.
  container_spec theirs;
  theirs.name = "sandbox-c";
  theirs.image = "x";
  theirs.labels = {{id_label, "c"}, {node_label, "n2"}, {host_label, "default"}};
  engine->create(theirs, [](expected<std::string>) {});
  auto obs = run<observation>([&](auto cb) { rt->observe(cb); });
  ASSERT_TRUE(obs && *obs);
  auto& o = obs->value();
  ASSERT_EQ(o.workloads.size(), 2u);
  EXPECT_EQ(o.workloads[0].id, "a");
  EXPECT_EQ(o.workloads[0].status, workload::running);
  EXPECT_EQ(o.workloads[1].id, "b");
  EXPECT_EQ(o.workloads[1].status, workload::exited);
  EXPECT_EQ(o.workloads[1].exit_code, 3);
  ASSERT_EQ(o.objects.size(), 3u);
  EXPECT_EQ(o.objects[0].kind, "egress sidecar");
  EXPECT_EQ(o.objects[0].sandbox_id, "a");
  EXPECT_EQ(o.objects[0].name, "sandbox-egress-a");
  EXPECT_EQ(o.objects[1].kind, "container");
  for (auto& x : o.objects)
    EXPECT_EQ(x.incarnation, "inc-1");
  // An orphan goes by its reference.
  auto r = run<unit>([&](auto cb) { rt->remove_object(o.objects[0], cb); });
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(engine->containers().size(), 3u);
}

TEST_F(DockerRuntime, LeftoverVolumesAreTheFlaggedOnesOfThisHost) {
  auto rt = make("inc-1");
  std::vector<sandbox_instance> xs;
  for (auto [id, flagged] : {std::pair{"a", true}, std::pair{"b", false}}) {
    auto x = instance(id);
    x.spec.volumes_json
      = R"([{"name":"data","pvc":{"claimName":"vol-)" + std::string{id}
        + R"(","deleteOnSandboxTermination":)"
        + (flagged ? "true" : "false") + R"(},"mountPath":"/data"}])";
    ASSERT_EQ(provision(*rt, x).status, outcome::running);
    xs.push_back(x);
  }
  auto left = run<std::vector<runtime_object>>(
    [&](auto cb) { rt->leftover_volumes(cb); });
  ASSERT_TRUE(left && *left);
  ASSERT_EQ((*left)->size(), 1u);
  auto v = (*left)->at(0);
  EXPECT_EQ(v.kind, "volume");
  EXPECT_EQ(v.name, "vol-a");
  EXPECT_EQ(v.sandbox_id, "a");
  EXPECT_EQ(v.incarnation, "inc-1");
  // In use by its container: Docker refuses.
  auto r = run<unit>([&](auto cb) { rt->remove_object(v, cb); });
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  run<unit>([&](auto cb) { rt->remove(xs[0], false, cb); });
  EXPECT_EQ(engine->volumes().count("vol-a"), 0u);
  EXPECT_EQ(engine->volumes().count("vol-b"), 1u);
}

// -- snapshots and diagnostics ------------------------------------------------

TEST_F(DockerRuntime, SnapshotImagesAreFoundByTheIncarnationsThatMadeThem) {
  auto rt = make("inc-1");
  EXPECT_EQ(rt->image_of("s1"), "opensandbox-snapshots:s1");
  ASSERT_EQ(provision(*rt, instance()).status, outcome::running);
  auto id = run<std::string>([&](auto cb) { rt->snapshot("sbx-1", "s1", cb); });
  ASSERT_TRUE(id && *id);
  EXPECT_EQ(engine->committed_images().count("opensandbox-snapshots:s1"), 1u);
  engine->add_image("opensandbox-snapshots:s2",
                    {{node_label, "n1"},
                     {host_label, "default"},
                     {incarnation_label, "inc-0"}});
  engine->add_image("opensandbox-snapshots:s3",
                    {{node_label, "n2"}, {host_label, "default"}});
  auto ids = [&](std::vector<std::string> incarnations) {
    std::set<std::string> result;
    auto xs = run<std::vector<snapshot_image>>(
      [&](auto cb) { rt->snapshot_images(incarnations, cb); });
    if (xs && *xs)
      for (auto& x : xs->value())
        result.insert(x.snapshot_id);
    return result;
  };
  EXPECT_EQ(ids({"inc-1"}), (std::set<std::string>{"s1"}));
  EXPECT_EQ(ids({"inc-0", "inc-1"}), (std::set<std::string>{"s1", "s2"}));
  EXPECT_EQ(ids({}), (std::set<std::string>{"s1", "s2"}));
}

TEST_F(DockerRuntime, DiagnosticsExplainASandboxWithoutContainer) {
  auto rt = make();
  sandbox_view now;
  now.id = "sbx-1";
  now.state = sandbox_state::failed;
  now.reason = "IMAGE_PULL_FAILED";
  now.message = "Failed to pull.";
  diagnostics_query q;
  q.kind = "inspect";
  auto text = run<std::string>(
    [&](auto cb) { rt->diagnose(instance(), now, q, cb); });
  ASSERT_TRUE(text && *text);
  EXPECT_EQ(text->value(), "(no container) Sandbox sbx-1 is Failed "
                           "(IMAGE_PULL_FAILED): Failed to pull.");
  engine->fail_next("details", failure{failure_kind::unavailable, "down"});
  text = run<std::string>(
    [&](auto cb) { rt->diagnose(instance(), now, q, cb); });
  ASSERT_TRUE(text);
  EXPECT_FALSE(*text);
}

// -- registry -----------------------------------------------------------------

TEST(RuntimeRegistry, BuildsOneRuntimePerHostOfTheConfiguredType) {
  auto cfg = std::make_shared<node_config>();
  cfg->runtime.type = "fake";
  ASSERT_TRUE(prepare_runtime(*cfg));
  EXPECT_EQ(cfg->runtime.execd_inject, "none");
  runtime_context ctx;
  ctx.cfg = cfg;
  ctx.node = "n1";
  std::vector<bool> remote;
  ctx.publish_address = [&](bool r) {
    remote.push_back(r);
    return std::string{"127.0.0.1"};
  };
  auto one = make_runtimes(ctx);
  ASSERT_TRUE(one);
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ(one->at(0).name, "default");
  EXPECT_EQ(one->at(0).endpoint_host, "");
  cfg->docker.hosts = {"unix:///var/run/docker.sock", "tcp://10.0.0.7:2375"};
  auto two = make_runtimes(ctx);
  ASSERT_TRUE(two);
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ(two->at(1).name, "tcp://10.0.0.7:2375");
  EXPECT_EQ(two->at(1).endpoint_host, "10.0.0.7");
  EXPECT_EQ(remote, (std::vector<bool>{false, false, true}));
  cfg->runtime.type = "podman";
  auto none = make_runtimes(ctx);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().kind, failure_kind::invalid);
}

TEST(RuntimeRegistry, DockerAddressesTellWhereThePortsAre) {
  EXPECT_EQ(endpoint_host_of("unix:///var/run/docker.sock"), "");
  EXPECT_EQ(endpoint_host_of("tcp://10.1.2.3:2375"), "10.1.2.3");
  EXPECT_EQ(endpoint_host_of("ssh://me@box.example:22"), "box.example");
  EXPECT_TRUE(shares_filesystem(""));
  EXPECT_TRUE(shares_filesystem("tcp://127.0.0.1:2375"));
  EXPECT_FALSE(shares_filesystem("tcp://10.1.2.3:2375"));
  EXPECT_FALSE(shares_filesystem("ssh://localhost"));
}
