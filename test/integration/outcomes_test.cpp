// What a client is told is what happened, against the real server and
// Docker: a deletion recorded while Docker is unreachable is accepted and
// carried out once it is back; a full store disk acknowledges nothing it
// cannot keep (and a restart brings back exactly what the client was told);
// a retry with the same X-Request-ID is applied at most once; a frozen
// owner makes a mutation's outcome unknown (504), never a false 503.

#include <gtest/gtest.h>

#include <sys/mount.h>

#include <filesystem>
#include <memory>
#include <thread>

#include "server_process.hpp"
#include "socket_relay.hpp"
#include "cluster_support.hpp"

using namespace std::chrono_literals;
using osb::test::free_port;
using osb::test::random_suffix;
using osb::test::server_process;
using osb::test::shell;

namespace {

const char* sleeper = R"({"image":{"uri":"opensandbox/busybox:latest"},)"
                      R"("entrypoint":["sleep","3600"],"timeout":600,)"
                      R"("resourceLimits":{"cpu":"500m","memory":"256Mi"}})";

std::string create(server_process& srv,
                   std::map<std::string, std::string> hdrs = {}) {
  auto r = srv.call("POST", "/v1/sandboxes", sleeper, hdrs);
  EXPECT_EQ(r.status, 202) << r.body;
  if (r.status != 202)
    return {};
  std::string id = r.json()["id"].GetString();
  EXPECT_EQ(srv.wait_state(id, "Running", 60s), "Running") << srv.read_log();
  return id;
}

std::string container_id(const std::string& sandbox) {
  auto out = shell("docker inspect -f '{{.Id}}' sandbox-" + sandbox
                   + " 2>/dev/null");
  while (!out.empty() && out.back() == '\n')
    out.pop_back();
  return out;
}

std::string field(server_process& srv, const std::string& id,
                  const char* name) {
  auto doc = srv.call("GET", "/v1/sandboxes/" + id).json();
  if (!doc.IsObject() || !doc.HasMember(name))
    return {};
  auto& x = doc[name];
  return x.IsString() ? x.GetString() : "";
}

/// A tmpfs of `size` mounted for the test's lifetime.
class small_disk {
public:
  explicit small_disk(const std::string& size) {
    dir_ = std::filesystem::temp_directory_path()
           / ("osb-disk-" + random_suffix());
    std::filesystem::create_directories(dir_);
    mounted_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", 0,
                       ("size=" + size).c_str())
               == 0;
  }

  ~small_disk() {
    if (mounted_)
      ::umount2(dir_.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  bool mounted() const {
    return mounted_;
  }

  std::string path(const std::string& name) const {
    return (dir_ / name).string();
  }

  /// Fills the rest of the file system.
  void fill() {
    shell("dd if=/dev/zero of=" + path("filler") + " bs=4k 2>/dev/null");
  }

  void drain() {
    std::filesystem::remove(path("filler"));
  }

private:
  std::filesystem::path dir_;
  bool mounted_ = false;
};

} // namespace

TEST(Outcomes, ADeletionWhileDockerIsUnreachableIsAcceptedAndCarriedOut) {
  osb::test::socket_relay docker{"/tmp/osb-relay-" + random_suffix()
                                   + ".sock",
                                 "/var/run/docker.sock"};
  server_process srv{"[docker]\nhost = \"" + docker.url()
                     + "\"\napi_timeout = 5\n"};
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto id = create(srv);
  ASSERT_FALSE(id.empty());
  docker.down();
  auto r = srv.call("DELETE", "/v1/sandboxes/" + id);
  // Accepted, not failed: the deletion is durable and will happen.
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_NE(r.body.find("SANDBOX::DELETION_PENDING"), std::string::npos)
    << r.body;
  EXPECT_EQ(srv.call("GET", "/v1/sandboxes/" + id).status, 404);
  EXPECT_EQ(srv.num_containers(), 1);
  // Also across a restart while Docker is still away.
  srv.kill(SIGKILL);
  ASSERT_TRUE(srv.start()) << srv.read_log();
  // Until the restarted node can list its host it cannot tell (503); it
  // never shows the sandbox again.
  auto g = srv.call("GET", "/v1/sandboxes/" + id);
  EXPECT_TRUE(g.status == 503 || g.status == 404) << g.status << g.body;
  docker.up();
  EXPECT_EQ(srv.wait_state(id, "404", 30s), "404");
  EXPECT_EQ(srv.wait_containers(0, 30s), 0) << srv.read_log();
}

TEST(Outcomes, ARetryWithTheSameRequestIdIsAppliedOnce) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  std::map<std::string, std::string> rid{{"X-Request-ID", "it-retry-create"}};
  auto a = srv.call("POST", "/v1/sandboxes", sleeper, rid);
  auto b = srv.call("POST", "/v1/sandboxes", sleeper, rid);
  ASSERT_EQ(a.status, 202) << a.body;
  ASSERT_EQ(b.status, 202) << b.body;
  std::string id = a.json()["id"].GetString();
  EXPECT_EQ(std::string{b.json()["id"].GetString()}, id);
  ASSERT_EQ(srv.wait_state(id, "Running", 60s), "Running");
  EXPECT_EQ(srv.num_containers(), 1);
  // A pause sent twice: both accepted, paused once.
  rid["X-Request-ID"] = "it-retry-pause";
  EXPECT_EQ(srv.call("POST", "/v1/sandboxes/" + id + "/pause", {}, rid).status,
            202);
  EXPECT_EQ(srv.call("POST", "/v1/sandboxes/" + id + "/pause", {}, rid).status,
            202);
  EXPECT_EQ(srv.wait_state(id, "Paused"), "Paused");
  // A delete sent twice: the second is no 404.
  rid["X-Request-ID"] = "it-retry-delete";
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id, {}, rid).status, 204);
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id, {}, rid).status, 204);
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 404);
  EXPECT_EQ(srv.wait_containers(0), 0);
}

TEST(Outcomes, AFullStoreDiskAcknowledgesNothingItCannotKeep) {
  small_disk disk{"2m"};
  if (!disk.mounted())
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  server_process srv;
  srv.use_config("[server]\nhost = \"127.0.0.1\"\nport = "
                 + std::to_string(srv.port())
                 + "\napi_key = \"test-key\"\n[log]\nlevel = \"DEBUG\"\n"
                   "[store]\npath = \""
                 + disk.path("store.db") + "\"\n[cluster]\nnode_name = \""
                 + srv.node() + "\"\n");
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto a = create(srv);
  auto b = create(srv);
  ASSERT_FALSE(b.empty());
  auto container_a = container_id(a);
  auto expires_b = field(srv, b, "expiresAt");
  disk.fill();
  // Every mutation is refused; none may happen later.
  auto del = srv.call("DELETE", "/v1/sandboxes/" + a);
  EXPECT_EQ(del.status, 500) << del.body;
  EXPECT_NE(del.body.find("disk is full"), std::string::npos) << del.body;
  EXPECT_EQ(srv.call("POST", "/v1/sandboxes/" + b + "/renew-expiration",
                     R"({"expiresAt":"2099-01-01T00:00:00Z"})")
              .status,
            500);
  EXPECT_EQ(srv.call("PATCH", "/v1/sandboxes/" + b + "/metadata",
                     R"({"k":"v"})")
              .status,
            500);
  EXPECT_EQ(srv.call("POST", "/v1/sandboxes", sleeper).status, 500);
  // Readiness says so before a client tries (issue 15).
  auto ready = osb::test::http_call(srv.port(), "GET", "/ready");
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_NE(ready.body.find("the store takes no writes"), std::string::npos)
    << ready.body;
  // What the client was told holds after a crash and a drained disk.
  srv.kill(SIGKILL);
  disk.drain();
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  EXPECT_EQ(srv.wait_state(a, "Running"), "Running");
  EXPECT_EQ(container_id(a), container_a); // the same container, not a new one
  EXPECT_EQ(field(srv, b, "expiresAt"), expires_b);
  auto got_b = srv.call("GET", "/v1/sandboxes/" + b).body;
  EXPECT_EQ(got_b.find(R"("k":"v")"), std::string::npos) << got_b;
  EXPECT_EQ(srv.num_containers(), 2);
  // And with room again, a deletion sticks.
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + a).status, 204);
  srv.kill(SIGKILL);
  // Ready, not just alive: before recovery ends the GET would be a 503.
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  EXPECT_EQ(srv.call("GET", "/v1/sandboxes/" + a).status, 404);
  EXPECT_EQ(srv.num_containers(), 1);
}

TEST(Outcomes, AFrozenOwnerMakesTheOutcomeUnknownAndARetryAppliesItOnce) {
  auto run = random_suffix();
  auto p1 = free_port();
  auto p2 = free_port();
  ASSERT_TRUE(osb::test::test_certs::get().ok);
  auto keys = [&](uint16_t port) {
    return "listen = \"127.0.0.1:" + std::to_string(port)
           + "\"\nseeds = [\"127.0.0.1:" + std::to_string(p1) + "\"]\n"
           + osb::test::tls_keys(port == p1 ? "n1" : "n2");
  };
  server_process n1{"", "it-" + run + "-a", keys(p1)};
  server_process n2{"", "it-" + run + "-b", keys(p2)};
  ASSERT_TRUE(n1.start()) << n1.read_log();
  ASSERT_TRUE(n2.start()) << n2.read_log();
  // A sandbox owned by n2, reached through n1.
  std::string id;
  for (int i = 0; i < 50 && id.empty(); ++i) {
    auto r = n2.call("GET", "/v1/cluster/nodes");
    if (r.status == 200 && r.body.find("\"up\"") != std::string::npos)
      id = create(n2);
    else
      std::this_thread::sleep_for(100ms);
  }
  ASSERT_FALSE(id.empty()) << n2.read_log();
  for (int i = 0; i < 50 && n1.call("GET", "/v1/sandboxes/" + id).status != 200;
       ++i)
    std::this_thread::sleep_for(100ms);
  n2.signal(SIGSTOP);
  std::map<std::string, std::string> rid{{"X-Request-ID", "it-frozen-del"}};
  auto r = n1.call("DELETE", "/v1/sandboxes/" + id, {}, rid);
  // Sent, unanswered: it may have happened (it will, once n2 thaws).
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_NE(r.body.find("SANDBOX::OUTCOME_UNKNOWN"), std::string::npos)
    << r.body;
  n2.signal(SIGCONT);
  // The retry is answered as the first attempt was carried out: deleted.
  int status = 0;
  for (int i = 0; i < 100; ++i) {
    status = n1.call("DELETE", "/v1/sandboxes/" + id, {}, rid).status;
    if (status == 204 || status == 404)
      break;
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_TRUE(status == 204 || status == 404) << status;
  EXPECT_EQ(n2.wait_containers(0, 30s), 0);
}
