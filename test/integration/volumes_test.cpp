// Volumes against the real server binary and Docker daemon: host binds
// restricted to the allowlist (read-write and read-only, subPath, symlink
// escapes), Docker named volumes for the `pvc` shape (created, shared,
// refused when missing) and their removal with the sandbox on delete and on
// expiry.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "server_process.hpp"

using namespace std::chrono_literals;
using osb::test::random_suffix;
using osb::test::server_process;
using osb::test::shell;

namespace fs = std::filesystem;

namespace {

std::string body(const std::string& volumes, const std::string& extra = {}) {
  return R"({"image":{"uri":"opensandbox/busybox:latest"},)"
         R"("entrypoint":["sleep","3600"],"resourceLimits":{},"volumes":)"
         + volumes + extra + "}";
}

std::string id_of(const osb::test::http_reply& r) {
  auto doc = r.json();
  return doc.IsObject() && doc.HasMember("id") ? doc["id"].GetString() : "";
}

/// Runs a shell command inside the sandbox; returns its exit code.
int exec(const std::string& id, const std::string& cmd) {
  auto out = shell("docker exec sandbox-" + id + " sh -c '" + cmd
                   + "' >/dev/null 2>&1; echo $?");
  return std::atoi(out.c_str());
}

bool volume_exists(const std::string& name) {
  return shell("docker volume ls -q --filter name=^" + name + "$") == name
                                                                        + "\n";
}

/// Polls until `f` holds or `timeout` passes.
template <class F>
bool eventually(F f, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f())
      return true;
    std::this_thread::sleep_for(100ms);
  }
  return f();
}

/// A host directory allowed for binds, removed at the end.
struct host_dir {
  host_dir() : path(fs::temp_directory_path() / ("osb-it-vol-" + random_suffix())) {
    fs::create_directories(path / "allowed");
  }
  ~host_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string allowed() const {
    return (path / "allowed").string();
  }
  fs::path path;
};

} // namespace

TEST(Volumes, HostBindsReadWriteReadOnlyAndAllowlist) {
  host_dir dir;
  fs::create_directory_symlink("/etc", dir.path / "allowed/etc");
  server_process srv("[storage]\nallowed_host_paths = [\"" + dir.allowed()
                     + "\"]\n");
  ASSERT_TRUE(srv.start()) << srv.read_log();
  // A symlink out of the allowlist is refused before the 202, naming the
  // volume; so is a path outside it (checked by the request validation).
  auto r = srv.call("POST", "/v1/sandboxes",
                    body(R"([{"name":"sys","host":{"path":")" + dir.allowed()
                         + R"(/etc"},"mountPath":"/mnt/sys"}])"));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("VOLUME::HOST_PATH_NOT_ALLOWED"), std::string::npos);
  EXPECT_NE(r.body.find("Volume 'sys'"), std::string::npos) << r.body;
  r = srv.call("POST", "/v1/sandboxes",
               body(R"([{"name":"tmp","host":{"path":"/tmp"},)"
                    R"("mountPath":"/mnt/tmp"}])"));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("Volume 'tmp'"), std::string::npos) << r.body;
  EXPECT_EQ(srv.num_containers(), 0);
  // A read-write bind with a subPath (created on the host) and a read-only
  // bind of an existing file.
  std::ofstream{dir.allowed() + "/motd"} << "hello from the host\n";
  r = srv.call("POST", "/v1/sandboxes",
               body(R"([{"name":"work","host":{"path":")" + dir.allowed()
                    + R"(/rw"},"mountPath":"/mnt/work","subPath":"u1"},)"
                      R"({"name":"motd","host":{"path":")"
                    + dir.allowed()
                    + R"(/motd"},"mountPath":"/etc/motd","readOnly":true}])"));
  ASSERT_EQ(r.status, 202) << r.body;
  auto id = id_of(r);
  ASSERT_EQ(srv.wait_state(id, "Running"), "Running") << srv.read_log();
  EXPECT_TRUE(fs::is_directory(dir.allowed() + "/rw/u1"));
  EXPECT_EQ(exec(id, "echo written > /mnt/work/f"), 0);
  std::ifstream in{dir.allowed() + "/rw/u1/f"};
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "written");
  EXPECT_EQ(exec(id, "grep -q \"hello from the host\" /etc/motd"), 0);
  EXPECT_NE(exec(id, "echo x > /etc/motd"), 0);
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  // The host data stays: it was never the server's.
  EXPECT_TRUE(fs::exists(dir.allowed() + "/rw/u1/f"));
}

TEST(Volumes, NamedVolumesAreCreatedSharedAndRemovedWithTheSandbox) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto kept = "it-kept-" + random_suffix();
  auto owned = "it-owned-" + random_suffix();
  auto expiring = "it-exp-" + random_suffix();
  auto pvc = [](const std::string& claim, bool create, bool remove,
                const std::string& sub_path = {}) {
    return R"([{"name":"data","pvc":{"claimName":")" + claim
           + R"(","createIfNotExists":)" + (create ? "true" : "false")
           + R"(,"deleteOnSandboxTermination":)" + (remove ? "true" : "false")
           + R"(},"mountPath":"/data")"
           + (sub_path.empty() ? "" : R"(,"subPath":")" + sub_path + "\"")
           + "}]";
  };
  // A missing volume without createIfNotExists: Failed, naming it.
  auto r = srv.call("POST", "/v1/sandboxes", body(pvc(kept, false, false)));
  ASSERT_EQ(r.status, 202) << r.body;
  auto failed = id_of(r);
  ASSERT_EQ(srv.wait_state(failed, "Failed"), "Failed");
  auto doc = srv.call("GET", "/v1/sandboxes/" + failed).json();
  EXPECT_STREQ(doc["status"]["reason"].GetString(),
               "VOLUME_PREPARATION_FAILED");
  std::string msg = doc["status"]["message"].GetString();
  EXPECT_NE(msg.find("VOLUME::PVC_NOT_FOUND"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'" + kept + "'"), std::string::npos) << msg;
  EXPECT_FALSE(volume_exists(kept));
  // Created on demand and kept (no deleteOnSandboxTermination): data
  // written by one sandbox is there for the next.
  r = srv.call("POST", "/v1/sandboxes", body(pvc(kept, true, false)));
  auto a = id_of(r);
  ASSERT_EQ(srv.wait_state(a, "Running"), "Running") << srv.read_log();
  EXPECT_TRUE(volume_exists(kept));
  EXPECT_EQ(shell("docker volume inspect -f "
                  "'{{index .Labels \"opensandbox.io/volume-managed-by\"}}' "
                  + kept),
            "server\n");
  EXPECT_EQ(exec(a, "mkdir -p /data/sub && echo persisted > /data/sub/f"), 0);
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + a).status, 204);
  EXPECT_TRUE(volume_exists(kept));
  r = srv.call("POST", "/v1/sandboxes", body(pvc(kept, true, true, "sub")));
  auto b = id_of(r);
  ASSERT_EQ(srv.wait_state(b, "Running"), "Running") << srv.read_log();
  EXPECT_EQ(exec(b, "grep -q persisted /data/f"), 0);
  // b did not create it, so it stays even though b asks for removal.
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + b).status, 204);
  EXPECT_TRUE(volume_exists(kept));
  // Created for a sandbox with deleteOnSandboxTermination: gone on delete.
  r = srv.call("POST", "/v1/sandboxes", body(pvc(owned, true, true)));
  auto c = id_of(r);
  ASSERT_EQ(srv.wait_state(c, "Running"), "Running") << srv.read_log();
  EXPECT_TRUE(volume_exists(owned));
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + c).status, 204);
  EXPECT_FALSE(volume_exists(owned));
  // ... and on expiry (the original leaked these).
  r = srv.call("POST", "/v1/sandboxes",
               body(pvc(expiring, true, true), R"(,"timeout":60)"));
  auto d = id_of(r);
  ASSERT_EQ(srv.wait_state(d, "Running"), "Running") << srv.read_log();
  EXPECT_TRUE(volume_exists(expiring));
  EXPECT_EQ(srv.wait_state(d, "404", 75s), "404");
  EXPECT_TRUE(eventually([&] { return !volume_exists(expiring); }, 10s));
  EXPECT_EQ(srv.wait_containers(0), 0);
  shell("docker volume rm -f " + kept + " " + owned + " " + expiring
        + " >/dev/null 2>&1");
}

TEST(Volumes, FailedCreateRemovesTheVolumeItCreated) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto made = "it-made-" + random_suffix();
  auto missing = "it-missing-" + random_suffix();
  // The first volume is created, the second is missing and may not be:
  // the create fails and takes the volume it made along (the original
  // leaked it, §9 bug 16), although it is not flagged for removal.
  auto r = srv.call(
    "POST", "/v1/sandboxes",
    body(R"([{"name":"a","pvc":{"claimName":")" + made
         + R"("},"mountPath":"/a"},{"name":"b","pvc":{"claimName":")"
         + missing + R"(","createIfNotExists":false},"mountPath":"/b"}])"));
  ASSERT_EQ(r.status, 202) << r.body;
  auto id = id_of(r);
  ASSERT_EQ(srv.wait_state(id, "Failed"), "Failed");
  auto msg = std::string{srv.call("GET", "/v1/sandboxes/" + id)
                           .json()["status"]["message"]
                           .GetString()};
  EXPECT_NE(msg.find("Volume 'b'"), std::string::npos) << msg;
  EXPECT_TRUE(eventually([&] { return !volume_exists(made); }, 10s));
  EXPECT_EQ(srv.num_containers(), 0);
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  shell("docker volume rm -f " + made + " >/dev/null 2>&1");
}
