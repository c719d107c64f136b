// Snapshots against the real server binary and Docker daemon: a snapshot
// captures the files of a running sandbox (docker commit), a new sandbox
// restored from it has those files (and not later changes), records survive
// kill -9, and deleting a snapshot removes its image (refused while a
// restored sandbox still uses it).

#include <gtest/gtest.h>

#include <signal.h>

#include <thread>

#include "server_process.hpp"

using namespace std::chrono_literals;
using osb::test::server_process;
using osb::test::shell;

namespace {

const std::string image = "opensandbox/busybox:latest";

std::string create_body(const std::string& source) {
  return "{" + source
         + R"(,"entrypoint":["sleep","3600"],"timeout":600,"resourceLimits":{}})";
}

std::string sandbox_from_image() {
  return create_body(R"("image":{"uri":")" + image + "\"}");
}

std::string sandbox_from_snapshot(const std::string& sid) {
  return create_body(R"("snapshotId":")" + sid + "\"");
}

std::string trimmed(std::string out) {
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
    out.pop_back();
  return out;
}

std::string exec_in(const std::string& id, const std::string& script) {
  return trimmed(shell("docker exec sandbox-" + id + " sh -c '" + script
                       + "' 2>&1"));
}

std::string create_running(server_process& srv, const std::string& body) {
  auto r = srv.call("POST", "/v1/sandboxes", body);
  EXPECT_EQ(r.status, 202) << r.body;
  if (r.status != 202)
    return {};
  std::string id = r.json()["id"].GetString();
  EXPECT_EQ(srv.wait_state(id, "Running"), "Running") << srv.read_log();
  return id;
}

/// Polls a snapshot until it leaves Creating; returns its state.
std::string wait_snapshot(server_process& srv, const std::string& sid,
                          std::chrono::seconds timeout = 120s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
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

bool image_exists(const std::string& ref) {
  return trimmed(shell("docker image inspect " + ref
                       + " >/dev/null 2>&1 && echo yes"))
         == "yes";
}

std::string error_code(const osb::test::http_reply& r) {
  auto doc = r.json();
  return doc.IsObject() && doc.HasMember("code") ? doc["code"].GetString()
                                                 : r.body;
}

} // namespace

TEST(Snapshots, RestoreHasTheFilesOfTheSourceAtSnapshotTime) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto src = create_running(srv, sandbox_from_image());
  ASSERT_FALSE(src.empty());
  ASSERT_EQ(exec_in(src, "mkdir -p /work && echo before > /work/state.txt "
                         "&& echo ok"),
            "ok");
  // 202 Creating with a Location under /v1, also when called at the root.
  auto r = srv.call("POST", "/sandboxes/" + src + "/snapshots",
                    R"({"name":"checkpoint"})");
  ASSERT_EQ(r.status, 202) << r.body;
  auto doc = r.json();
  std::string sid = doc["id"].GetString();
  EXPECT_EQ(r.headers["location"], "/v1/snapshots/" + sid);
  EXPECT_STREQ(doc["status"]["state"].GetString(), "Creating");
  EXPECT_STREQ(doc["sandboxId"].GetString(), src.c_str());
  EXPECT_STREQ(doc["name"].GetString(), "checkpoint");
  ASSERT_EQ(wait_snapshot(srv, sid), "Ready") << srv.read_log();
  EXPECT_TRUE(image_exists("opensandbox-snapshots:" + sid));
  // The source keeps running (the commit's pause is not a user pause) and
  // changes after the snapshot do not reach it.
  EXPECT_EQ(srv.wait_state(src, "Running"), "Running");
  ASSERT_EQ(exec_in(src, "echo after > /work/state.txt && echo ok"), "ok");
  // Restore: a new sandbox with the snapshot's files, reporting snapshotId.
  auto restored = create_running(srv, sandbox_from_snapshot(sid));
  ASSERT_FALSE(restored.empty());
  EXPECT_EQ(exec_in(restored, "cat /work/state.txt"), "before");
  auto g = srv.call("GET", "/v1/sandboxes/" + restored).json();
  EXPECT_STREQ(g["snapshotId"].GetString(), sid.c_str());
  EXPECT_FALSE(g.HasMember("image"));
  EXPECT_EQ(trimmed(shell("docker inspect -f "
                          "'{{index .Config.Labels \"opensandbox.io/snapshot-id\"}}' "
                          "sandbox-"
                          + restored)),
            sid);
  // Lists filter by source and state.
  auto l = srv.call("GET", "/v1/snapshots?sandboxId=" + src + "&state=Ready");
  ASSERT_EQ(l.status, 200);
  EXPECT_EQ(l.json()["pagination"]["totalItems"].GetInt(), 1);
  l = srv.call("GET", "/v1/snapshots?sandboxId=" + src + "&state=Creating");
  EXPECT_EQ(l.json()["pagination"]["totalItems"].GetInt(), 0);
  // The image is in use by the restored sandbox: 409, record stays Deleting.
  auto del = srv.call("DELETE", "/v1/snapshots/" + sid);
  EXPECT_EQ(del.status, 409) << del.body;
  EXPECT_EQ(error_code(del), "SNAPSHOT::DELETE_CONFLICT");
  EXPECT_STREQ(srv.call("GET", "/v1/snapshots/" + sid)
                 .json()["status"]["state"]
                 .GetString(),
               "Deleting");
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + restored).status, 204);
  del = srv.call("DELETE", "/v1/snapshots/" + sid);
  EXPECT_EQ(del.status, 204) << del.body;
  EXPECT_FALSE(image_exists("opensandbox-snapshots:" + sid));
  EXPECT_EQ(srv.call("GET", "/v1/snapshots/" + sid).status, 404);
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + src).status, 204);
}

TEST(Snapshots, ClearErrorsForBadRequests) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto missing = srv.call("POST", "/v1/sandboxes/nope/snapshots");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(error_code(missing), "DOCKER::SANDBOX_NOT_FOUND");
  auto src = create_running(srv, sandbox_from_image());
  ASSERT_FALSE(src.empty());
  EXPECT_EQ(srv.call("POST", "/v1/sandboxes/" + src + "/snapshots",
                     R"({"name":""})")
              .status,
            422);
  ASSERT_EQ(srv.call("POST", "/v1/sandboxes/" + src + "/pause").status, 202);
  ASSERT_EQ(srv.wait_state(src, "Paused"), "Paused");
  auto paused = srv.call("POST", "/v1/sandboxes/" + src + "/snapshots");
  EXPECT_EQ(paused.status, 409);
  EXPECT_EQ(error_code(paused), "SNAPSHOT::INVALID_SOURCE_STATE");
  auto unknown = srv.call("GET", "/v1/snapshots/no-such-snapshot");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(error_code(unknown), "SNAPSHOT::NOT_FOUND");
  EXPECT_EQ(srv.call("DELETE", "/v1/snapshots/no-such-snapshot").status, 404);
  auto restore = srv.call("POST", "/v1/sandboxes",
                          sandbox_from_snapshot("no-such-snapshot"));
  EXPECT_EQ(restore.status, 404);
  EXPECT_EQ(error_code(restore), "SNAPSHOT::NOT_FOUND");
  EXPECT_EQ(srv.call("GET", "/v1/snapshots?pageSize=0").status, 422);
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + src).status, 204);
}

TEST(Snapshots, RecordsSurviveKillMinus9AndOutliveTheirSource) {
  // A short API timeout bounds how long a record whose commit never reached
  // Docker waits for a late image (api_timeout + 10 s).
  server_process srv("[docker]\napi_timeout = 10\n");
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto src = create_running(srv, sandbox_from_image());
  ASSERT_FALSE(src.empty());
  ASSERT_EQ(exec_in(src, "echo kept > /kept.txt && echo ok"), "ok");
  auto r = srv.call("POST", "/v1/sandboxes/" + src + "/snapshots");
  ASSERT_EQ(r.status, 202) << r.body;
  std::string sid = r.json()["id"].GetString();
  ASSERT_EQ(wait_snapshot(srv, sid), "Ready");
  // A second one is killed right after its 202: the commit may or may not
  // have reached Docker. Either the image appears (Ready: Docker finishes
  // a commit whose caller died) or, once a commit would have timed out, the
  // record fails without leaving anything behind.
  auto r2 = srv.call("POST", "/v1/sandboxes/" + src + "/snapshots");
  ASSERT_EQ(r2.status, 202) << r2.body;
  std::string sid2 = r2.json()["id"].GetString();
  srv.kill(SIGKILL);
  ASSERT_TRUE(srv.start()) << srv.read_log();
  EXPECT_EQ(wait_snapshot(srv, sid), "Ready");
  auto second = wait_snapshot(srv, sid2, 60s);
  if (second == "Failed") {
    auto doc = srv.call("GET", "/v1/snapshots/" + sid2).json();
    EXPECT_STREQ(doc["status"]["reason"].GetString(),
                 "snapshot_recovery_missing_image");
    EXPECT_FALSE(image_exists("opensandbox-snapshots:" + sid2));
  } else {
    EXPECT_EQ(second, "Ready") << srv.read_log();
  }
  // The source goes; its snapshots stay and still restore.
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + src).status, 204);
  auto restored = create_running(srv, sandbox_from_snapshot(sid));
  ASSERT_FALSE(restored.empty());
  EXPECT_EQ(exec_in(restored, "cat /kept.txt"), "kept");
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + restored).status, 204);
  for (auto& id : {sid, sid2}) {
    EXPECT_EQ(srv.call("DELETE", "/v1/snapshots/" + id).status, 204);
    EXPECT_FALSE(image_exists("opensandbox-snapshots:" + id));
  }
  EXPECT_EQ(srv.call("GET", "/v1/snapshots").json()["pagination"]["totalItems"]
              .GetInt(),
            0);
}
