// Sandboxes under gVisor (`[secure_runtime] type = "gvisor"`, docs/gvisor.md)
// against the real server, execd and Docker with runsc registered as
// deploy/setup.sh does: the kernel a sandbox sees is gVisor's and not the
// host's, and its processes are not the host's (a runc sandbox of the same
// run shows both), execd, the server
// proxy, pause/resume, volumes and snapshots work under it (/tmp included:
// it stays on the container's filesystem instead of runsc's own tmpfs), and
// a server whose runtime is not registered refuses to start with the
// reason.
//
// The gVisor tests fail (not skip) when runsc is not registered: the setup
// registers it, and a machine without it must not look green.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "server_process.hpp"

using namespace std::chrono_literals;
using osb::test::container_runtime;
using osb::test::http_call;
using osb::test::http_reply;
using osb::test::random_suffix;
using osb::test::secure_runtime_toml;
using osb::test::server_process;
using osb::test::shell;

namespace fs = std::filesystem;

namespace {

const char* sleeper = R"({"image":{"uri":"opensandbox/busybox:latest"},)"
                      R"("entrypoint":["sleep","3600"],"timeout":600,)"
                      R"("resourceLimits":{"cpu":"500m","memory":"256Mi"}})";

std::string trimmed(std::string out) {
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
    out.pop_back();
  return out;
}

/// Whether dockerd lists runsc (how deploy/setup.sh registers it).
bool runsc_registered() {
  return std::system("docker info --format '{{json .Runtimes}}' 2>/dev/null "
                     "| grep -q '\"runsc\"'")
         == 0;
}

std::string create(server_process& srv, const std::string& body = sleeper) {
  auto r = srv.call("POST", "/v1/sandboxes", body);
  EXPECT_EQ(r.status, 202) << r.body;
  if (r.status != 202)
    return {};
  std::string id = r.json()["id"].GetString();
  EXPECT_EQ(srv.wait_state(id, "Running", 60s), "Running") << srv.read_log();
  return id;
}

/// Runs `command` through execd's own API (endpoint 44772 and its token);
/// returns the SSE answer (the output is in its events).
http_reply execd_command(server_process& srv, const std::string& id,
                         const std::string& command) {
  auto ep = srv.call("GET", "/v1/sandboxes/" + id + "/endpoints/44772");
  EXPECT_EQ(ep.status, 200) << ep.body;
  if (ep.status != 200)
    return {};
  auto doc = ep.json();
  std::string raw = doc["endpoint"].GetString();
  std::map<std::string, std::string> hdrs;
  if (doc.HasMember("headers"))
    for (auto& m : doc["headers"].GetObject())
      hdrs[m.name.GetString()] = m.value.GetString();
  auto colon = raw.find(':');
  auto slash = raw.find('/', colon);
  auto port = static_cast<uint16_t>(
    std::stoi(raw.substr(colon + 1, slash - colon - 1)));
  auto prefix = slash == std::string::npos ? std::string{} : raw.substr(slash);
  return http_call(port, "POST", prefix + "/command",
                   R"({"command":")" + command + R"("})", hdrs);
}

std::string exec_in(const std::string& id, const std::string& script) {
  return trimmed(shell("docker exec sandbox-" + id + " sh -c '" + script
                       + "' 2>&1"));
}

/// Polls a snapshot until it leaves Creating; returns its state.
std::string wait_snapshot(server_process& srv, const std::string& sid) {
  auto deadline = std::chrono::steady_clock::now() + 120s;
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = srv.call("GET", "/v1/snapshots/" + sid);
    if (r.status != 200)
      return std::to_string(r.status);
    last = r.json()["status"]["state"].GetString();
    if (last != "Creating")
      return last;
    std::this_thread::sleep_for(50ms);
  }
  return last;
}

class Gvisor : public testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(runsc_registered())
      << "dockerd does not list runsc: apt-get install runsc, then "
         "deploy/setup.sh (or register_runsc of deploy/lib.sh)";
  }
};

} // namespace

TEST_F(Gvisor, SandboxesSeeGvisorsKernelNotTheHosts) {
  server_process gvisor{secure_runtime_toml("gvisor")};
  // The same server without it, whatever OSB_TEST_SECURE_RUNTIME says.
  server_process runc{"[secure_runtime]\ntype = \"\"\n"};
  ASSERT_TRUE(gvisor.start()) << gvisor.read_log();
  ASSERT_TRUE(runc.start()) << runc.read_log();
  auto g = create(gvisor);
  auto r = create(runc);
  ASSERT_FALSE(g.empty());
  ASSERT_FALSE(r.empty());
  EXPECT_EQ(container_runtime("sandbox-" + g), "runsc");
  EXPECT_EQ(container_runtime("sandbox-" + r), "runc");
  auto host_kernel = trimmed(shell("uname -r"));
  ASSERT_FALSE(host_kernel.empty());
  // Through execd, as a user's code runs: gVisor's kernel release and its
  // boot log, where runc shows the host's kernel.
  const std::string probe = "uname -r; dmesg 2>&1 | head -n 3";
  auto in_gvisor = execd_command(gvisor, g, probe);
  ASSERT_EQ(in_gvisor.status, 200) << in_gvisor.body;
  EXPECT_EQ(in_gvisor.body.find(host_kernel), std::string::npos)
    << in_gvisor.body;
  EXPECT_NE(in_gvisor.body.find("Starting gVisor"), std::string::npos)
    << in_gvisor.body;
  auto in_runc = execd_command(runc, r, probe);
  ASSERT_EQ(in_runc.status, 200) << in_runc.body;
  EXPECT_NE(in_runc.body.find(host_kernel), std::string::npos)
    << in_runc.body;
  EXPECT_EQ(in_runc.body.find("gVisor"), std::string::npos) << in_runc.body;
  // The container's process on the host: the user's entrypoint under runc,
  // gVisor's sandbox (its kernel) under runsc.
  auto host_process = [](const std::string& id) {
    return trimmed(shell("tr '\\0' ' ' < /proc/$(docker inspect -f "
                         "'{{.State.Pid}}' sandbox-"
                         + id + ")/cmdline"));
  };
  EXPECT_EQ(host_process(r).rfind("sleep 3600", 0), 0u) << host_process(r);
  EXPECT_EQ(host_process(g).rfind("runsc-sandbox", 0), 0u)
    << host_process(g);
  EXPECT_EQ(gvisor.call("DELETE", "/v1/sandboxes/" + g).status, 204);
  EXPECT_EQ(runc.call("DELETE", "/v1/sandboxes/" + r).status, 204);
  EXPECT_EQ(gvisor.wait_containers(0), 0);
}

TEST_F(Gvisor, ProxyPauseVolumesAndSnapshotsWorkUnderIt) {
  auto dir = fs::temp_directory_path() / ("osb-it-gvisor-" + random_suffix());
  fs::create_directories(dir);
  server_process srv{secure_runtime_toml("gvisor")
                     + "[storage]\nallowed_host_paths = [\"" + dir.string()
                     + "\"]\n"};
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto id = create(srv, R"({"image":{"uri":"opensandbox/busybox:latest"},)"
                        R"("entrypoint":["sleep","3600"],"timeout":600,)"
                        R"("resourceLimits":{},"volumes":[{"name":"w",)"
                        R"("host":{"path":")"
                          + dir.string() + R"("},"mountPath":"/mnt/w"}]})");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(container_runtime("sandbox-" + id), "runsc");
  // Files through execd: a host volume (seen on the host), the root
  // filesystem and /tmp.
  auto w = execd_command(srv, id,
                         "echo from-gvisor > /mnt/w/f && mkdir -p /work && "
                         "echo kept > /work/state && echo also > /tmp/state "
                         "&& echo written");
  ASSERT_EQ(w.status, 200) << w.body;
  EXPECT_NE(w.body.find("written"), std::string::npos) << w.body;
  std::string line;
  std::getline(std::ifstream{dir / "f"}, line);
  EXPECT_EQ(line, "from-gvisor");
  // The server proxy reaches execd inside gVisor.
  auto ep = srv.call("GET", "/v1/sandboxes/" + id
                              + "/endpoints/44772?use_server_proxy=true");
  ASSERT_EQ(ep.status, 200) << ep.body;
  std::string proxied = ep.json()["endpoint"].GetString();
  auto path = proxied.substr(proxied.find('/'));
  EXPECT_EQ(srv.call("GET", path + "/ping").status, 200);
  // Pause freezes the sandbox (runsc pause), resume thaws it.
  ASSERT_EQ(srv.call("POST", "/v1/sandboxes/" + id + "/pause").status, 202);
  EXPECT_EQ(srv.wait_state(id, "Paused"), "Paused");
  EXPECT_EQ(trimmed(shell("docker inspect -f '{{.State.Status}}' sandbox-"
                          + id)),
            "paused");
  ASSERT_EQ(srv.call("POST", "/v1/sandboxes/" + id + "/resume").status, 202);
  EXPECT_EQ(srv.wait_state(id, "Running"), "Running");
  EXPECT_EQ(exec_in(id, "cat /work/state"), "kept");
  // A snapshot has the root filesystem's files, /tmp's too: runsc mounts
  // no tmpfs of its own over it (the server made it non-empty).
  EXPECT_EQ(exec_in(id, "grep -c \" /tmp \" /proc/mounts"), "0");
  auto s = srv.call("POST", "/v1/sandboxes/" + id + "/snapshots",
                    R"({"name":"under-gvisor"})");
  ASSERT_EQ(s.status, 202) << s.body;
  std::string sid = s.json()["id"].GetString();
  ASSERT_EQ(wait_snapshot(srv, sid), "Ready") << srv.read_log();
  EXPECT_EQ(srv.wait_state(id, "Running"), "Running");
  auto restored = create(srv, R"({"snapshotId":")" + sid
                                + R"(","entrypoint":["sleep","3600"],)"
                                  R"("timeout":600,"resourceLimits":{}})");
  ASSERT_FALSE(restored.empty());
  EXPECT_EQ(container_runtime("sandbox-" + restored), "runsc");
  EXPECT_EQ(exec_in(restored, "cat /work/state"), "kept");
  EXPECT_EQ(exec_in(restored, "cat /tmp/state"), "also");
  for (auto& x : {restored, id})
    EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + x).status, 204);
  EXPECT_EQ(srv.call("DELETE", "/v1/snapshots/" + sid).status, 204);
  EXPECT_EQ(srv.wait_containers(0), 0);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

// Needs no runsc: the runtime named here exists nowhere.
TEST(GvisorConfig, AnUnregisteredRuntimeStopsTheServerAtStart) {
  server_process srv{"[secure_runtime]\ntype = \"gvisor\"\n"
                     "docker_runtime = \"osb-it-missing-runtime\"\n"};
  srv.spawn();
  EXPECT_EQ(srv.wait_exit(30s), 2) << srv.read_log();
  auto log = srv.read_log();
  EXPECT_NE(log.find("start-up check failed: Configured Docker runtime "
                     "'osb-it-missing-runtime' is not available on Docker "
                     "host 'default'. Available runtimes: "),
            std::string::npos)
    << log;
  EXPECT_NE(log.find("runc"), std::string::npos) << log;
  EXPECT_EQ(srv.num_containers(), 0);
}
