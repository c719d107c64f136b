// Images against the real server binary and Docker daemon: a pull that
// fails leaves a Failed sandbox with a clear reason, a private registry
// (Debian's docker-registry with htpasswd auth on loopback, which Docker
// treats as insecure by default) needs `image.auth`, and a pull shows its
// progress in the Pending sandbox's status message without delaying other
// requests.

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "server_process.hpp"
#include "throttle_proxy.hpp"

using namespace std::chrono_literals;
using osb::test::free_port;
using osb::test::random_suffix;
using osb::test::server_process;
using osb::test::shell;

namespace fs = std::filesystem;

namespace {

std::string body(const std::string& image, const std::string& auth = {}) {
  return R"({"image":{"uri":")" + image + "\"" + auth
         + R"(},"entrypoint":["sleep","3600"],"resourceLimits":{}})";
}

std::string auth(const std::string& user, const std::string& password) {
  return R"(,"auth":{"username":")" + user + R"(","password":")" + password
         + R"("})";
}

std::string id_of(const osb::test::http_reply& r) {
  auto doc = r.json();
  return doc.IsObject() && doc.HasMember("id") ? doc["id"].GetString() : "";
}

std::string status_field(server_process& srv, const std::string& id,
                         const char* field) {
  auto doc = srv.call("GET", "/v1/sandboxes/" + id).json();
  if (!doc.IsObject() || !doc.HasMember("status"))
    return {};
  return doc["status"][field].GetString();
}

/// A private registry on 127.0.0.1 with one user, run from Debian's
/// docker-registry package; the docker CLI talks to it with its own config
/// directory, so the machine's login state is untouched.
class registry {
public:
  static bool available() {
    return !shell("command -v docker-registry").empty()
           && !shell("command -v htpasswd").empty();
  }

  registry() {
    dir_ = fs::temp_directory_path() / ("osb-registry-" + random_suffix());
    fs::create_directories(dir_ / "data");
    fs::create_directories(dir_ / "cli");
    port_ = free_port();
    shell("htpasswd -Bbn " + user + " " + password + " > " + path("htpasswd"));
    std::ofstream{path("config.yml")}
      << "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "
      << path("data") << "\n  delete:\n    enabled: true\nhttp:\n  addr: "
      << host() << "\nauth:\n  htpasswd:\n    realm: osb\n    path: "
      << path("htpasswd") << "\n";
    pid_ = ::fork();
    if (pid_ == 0) {
      auto log = path("registry.log");
      ::freopen(log.c_str(), "w", stdout);
      ::freopen(log.c_str(), "a", stderr);
      ::execlp("docker-registry", "docker-registry", "serve",
               path("config.yml").c_str(), nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      if (shell("curl -s -o /dev/null -w '%{http_code}' http://" + host()
                + "/v2/")
          == "401")
        break;
      std::this_thread::sleep_for(50ms);
    }
    cli("login -u " + user + " -p " + password + " " + host());
  }

  ~registry() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string host() const {
    return "127.0.0.1:" + std::to_string(port_);
  }

  uint16_t port() const {
    return port_;
  }

  std::string path(const std::string& name) const {
    return (dir_ / name).string();
  }

  /// Runs the docker CLI with the registry's login; returns its output.
  std::string cli(const std::string& args) const {
    return shell("DOCKER_CONFIG=" + path("cli") + " docker " + args
                 + " 2>&1");
  }

  /// Pushes `local` as `name` and removes every local copy, so that the
  /// next use must pull it.
  void push(const std::string& local, const std::string& name) {
    cli("tag " + local + " " + host() + "/" + name);
    push_out = cli("push " + host() + "/" + name);
    cli("rmi " + host() + "/" + name);
  }

  std::string push_out;
  const std::string user = "osb";
  const std::string password = "s3cret-" + random_suffix();

private:
  fs::path dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

} // namespace

TEST(Images, PullFailureLeavesAFailedSandboxWithAClearReason) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  // Nothing listens on port 1: the pull fails fast.
  auto image = "127.0.0.1:1/osb-missing:latest";
  auto r = srv.call("POST", "/v1/sandboxes", body(image));
  ASSERT_EQ(r.status, 202) << r.body;
  auto id = id_of(r);
  ASSERT_EQ(srv.wait_state(id, "Failed"), "Failed") << srv.read_log();
  EXPECT_EQ(status_field(srv, id, "reason"), "IMAGE_PULL_FAILED");
  auto msg = status_field(srv, id, "message");
  EXPECT_EQ(msg.rfind("Failed to create sandbox container: Failed to pull "
                      "image 127.0.0.1:1/osb-missing:latest: ",
                      0),
            0u)
    << msg;
  EXPECT_NE(msg.find("connection refused"), std::string::npos) << msg;
  EXPECT_EQ(srv.num_containers(), 0);
  // The failure is logged once with the request id and the sandbox id.
  auto log = srv.read_log();
  EXPECT_NE(log.find("[" + id + "] sandbox: sandbox failed to provision"),
            std::string::npos);
}

TEST(Images, PrivateRegistryNeedsImageAuth) {
  if (!registry::available())
    GTEST_SKIP() << "docker-registry and htpasswd are not installed "
                    "(apt-get install docker-registry apache2-utils)";
  registry reg;
  reg.push("opensandbox/busybox:latest", "busybox:latest");
  ASSERT_NE(reg.push_out.find("digest:"), std::string::npos) << reg.push_out;
  auto image = reg.host() + "/busybox:latest";
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  // Without credentials and with a wrong password: Failed, saying why.
  for (auto& a : {std::string{}, auth(reg.user, "wrong")}) {
    auto r = srv.call("POST", "/v1/sandboxes", body(image, a));
    ASSERT_EQ(r.status, 202) << r.body;
    auto id = id_of(r);
    ASSERT_EQ(srv.wait_state(id, "Failed"), "Failed") << srv.read_log();
    EXPECT_EQ(status_field(srv, id, "reason"), "IMAGE_PULL_FAILED");
    auto msg = status_field(srv, id, "message");
    EXPECT_NE(msg.find("Failed to pull image " + image), std::string::npos)
      << msg;
    EXPECT_TRUE(msg.find("no basic auth credentials") != std::string::npos
                || msg.find("unauthorized") != std::string::npos)
      << msg;
  }
  // With the right ones it runs; the password appears in no log line.
  auto r = srv.call("POST", "/v1/sandboxes",
                    body(image, auth(reg.user, reg.password)));
  ASSERT_EQ(r.status, 202) << r.body;
  auto id = id_of(r);
  ASSERT_EQ(srv.wait_state(id, "Running", 60s), "Running") << srv.read_log();
  EXPECT_EQ(srv.read_log().find(reg.password), std::string::npos);
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  shell("docker rmi -f " + image + " >/dev/null 2>&1");
}

TEST(Images, PullProgressIsVisibleWhilePendingAndDelaysNothing) {
  if (!registry::available())
    GTEST_SKIP() << "docker-registry and htpasswd are not installed "
                    "(apt-get install docker-registry apache2-utils)";
  registry reg;
  // An image with a 60 MB layer of random bytes that exists nowhere else,
  // so the daemon has to download all of it.
  auto local = "osb-it-blob:" + random_suffix();
  auto ctx = reg.path("build");
  fs::create_directories(ctx);
  std::ofstream{ctx + "/Dockerfile"}
    << "FROM opensandbox/busybox:latest\n"
       "RUN head -c 60000000 /dev/urandom > /blob\n";
  auto built = shell("docker build -q -t " + local + " " + ctx + " 2>&1");
  ASSERT_NE(built.find("sha256:"), std::string::npos) << built;
  reg.push(local, "blob:latest");
  shell("docker rmi -f " + local + " >/dev/null 2>&1");
  // The daemon pulls through a proxy that passes 6 MB/s: the download takes
  // about ten seconds however fast the machine is, so the test sees it
  // progress instead of hoping to catch it between two polls.
  osb::test::throttle_proxy slow{reg.port(), 6'000'000};
  auto image = "127.0.0.1:" + std::to_string(slow.port()) + "/blob:latest";
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto r = srv.call("POST", "/v1/sandboxes",
                    body(image, auth(reg.user, reg.password)));
  ASSERT_EQ(r.status, 202) << r.body;
  auto id = id_of(r);
  // Poll the status while Pending; meanwhile other requests are answered
  // at once.
  std::vector<std::string> messages;
  auto slowest = std::chrono::nanoseconds{0};
  auto deadline = std::chrono::steady_clock::now() + 120s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto t0 = std::chrono::steady_clock::now();
    auto g = srv.call("GET", "/v1/sandboxes/" + id);
    auto health = srv.call("GET", "/health");
    slowest = std::max(slowest, std::chrono::steady_clock::now() - t0);
    ASSERT_EQ(health.status, 200);
    auto doc = g.json();
    std::string state = doc["status"]["state"].GetString();
    if (state != "Pending")
      break;
    std::string msg = doc["status"]["message"].GetString();
    if (messages.empty() || messages.back() != msg)
      messages.push_back(msg);
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(srv.wait_state(id, "Running", 60s), "Running") << srv.read_log();
  std::string seen;
  bool percent = false;
  for (auto& m : messages) {
    seen += "  " + m + "\n";
    if (m.rfind("Pulling image " + image + ": ", 0) == 0
        && m.find("% (") != std::string::npos && m.find(" MB)") != std::string::npos)
      percent = true;
  }
  EXPECT_TRUE(percent) << "messages while Pending:\n" << seen;
  EXPECT_LT(slowest, 500ms) << "a GET took "
                            << std::chrono::duration_cast<
                                 std::chrono::milliseconds>(slowest)
                                 .count()
                            << " ms during the pull";
  std::cout << "pull progress messages:\n"
            << seen << "slowest GET + /health during the pull: "
            << std::chrono::duration_cast<std::chrono::microseconds>(slowest)
                 .count()
            << " us\n";
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  shell("docker rmi -f " + image + " >/dev/null 2>&1");
}
