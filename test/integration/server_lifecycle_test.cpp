// The whole lifecycle API over HTTP against the real server binary and the
// real Docker daemon: create, list, get, pause/resume, renew, patch,
// endpoints, delete, expiry, kill -9 recovery and Docker failures.

#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "server_process.hpp"

using namespace std::chrono_literals;
using osb::test::server_process;
using osb::test::shell;

namespace {

const std::string image = "opensandbox/busybox:latest";

std::string create_body(const std::string& extra = {},
                        const std::string& img = image) {
  return R"({"image":{"uri":")" + img
         + R"("},"entrypoint":["sleep","3600"],)"
           R"("resourceLimits":{"cpu":"500m","memory":"256Mi"},)"
           R"("env":{"GREETING":"hi"},"metadata":{"team":"infra"})"
         + extra + "}";
}

std::string create(server_process& srv, const std::string& extra = {}) {
  auto r = srv.call("POST", "/v1/sandboxes", create_body(extra));
  EXPECT_EQ(r.status, 202) << r.body;
  auto doc = r.json();
  EXPECT_TRUE(doc.IsObject() && doc.HasMember("id")) << r.body;
  return doc.IsObject() && doc.HasMember("id") ? doc["id"].GetString() : "";
}

std::string inspect(const std::string& id, const std::string& format) {
  auto out = shell("docker inspect -f '" + format + "' sandbox-" + id
                   + " 2>/dev/null");
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
    out.pop_back();
  return out;
}

} // namespace

TEST(ServerLifecycle, FullLifecycleOverHttp) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  // Create answers 202 Pending at once, with the request id echoed.
  auto r = srv.call("POST", "/v1/sandboxes", create_body(R"(,"timeout":600)"),
                    {{"X-Request-ID", "it-create-1"}});
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.headers["x-request-id"], "it-create-1");
  auto doc = r.json();
  std::string id = doc["id"].GetString();
  EXPECT_STREQ(doc["status"]["state"].GetString(), "Pending");
  EXPECT_TRUE(doc.HasMember("expiresAt"));
  EXPECT_TRUE(doc.HasMember("createdAt"));
  // Endpoints resolve right away, before the container runs.
  auto ep = srv.call("GET", "/v1/sandboxes/" + id + "/endpoints/44772");
  ASSERT_EQ(ep.status, 200) << ep.body;
  std::string endpoint = ep.json()["endpoint"].GetString();
  EXPECT_NE(endpoint.find("/proxy/44772"), std::string::npos) << endpoint;
  auto ep8080 = srv.call("GET", "/v1/sandboxes/" + id + "/endpoints/8080");
  ASSERT_EQ(ep8080.status, 200);
  EXPECT_EQ(srv.call("GET", "/v1/sandboxes/" + id + "/endpoints/18080").status,
            200);
  ASSERT_EQ(srv.wait_state(id, "Running"), "Running") << srv.read_log();
  // The container carries the request's limits and the security options.
  EXPECT_EQ(inspect(id, "{{.HostConfig.NanoCpus}}"), "500000000");
  EXPECT_EQ(inspect(id, "{{.HostConfig.Memory}}"), "268435456");
  EXPECT_EQ(inspect(id, "{{.HostConfig.PidsLimit}}"), "4096");
  EXPECT_NE(inspect(id, "{{.HostConfig.SecurityOpt}}").find("no-new-privileges"),
            std::string::npos);
  EXPECT_NE(inspect(id, "{{.HostConfig.CapDrop}}").find("NET_RAW"),
            std::string::npos);
  // The published 8080 port is the one the endpoint names.
  std::string ep8080s = ep8080.json()["endpoint"].GetString();
  auto host_port = inspect(id, "{{(index (index .HostConfig.PortBindings "
                               "\"8080/tcp\") 0).HostPort}}");
  EXPECT_EQ(ep8080s.substr(ep8080s.rfind(':') + 1), host_port);
  // Get and list.
  auto g = srv.call("GET", "/sandboxes/" + id);
  ASSERT_EQ(g.status, 200);
  auto gd = g.json();
  EXPECT_STREQ(gd["image"]["uri"].GetString(), image.c_str());
  EXPECT_STREQ(gd["metadata"]["team"].GetString(), "infra");
  EXPECT_EQ(gd["entrypoint"].Size(), 2u);
  auto l = srv.call("GET", "/v1/sandboxes?state=running&metadata=team%3Dinfra");
  ASSERT_EQ(l.status, 200);
  EXPECT_EQ(l.json()["pagination"]["totalItems"].GetInt(), 1);
  // Pause and resume are real docker pause/unpause.
  EXPECT_EQ(srv.call("POST", "/v1/sandboxes/" + id + "/resume").status, 409);
  EXPECT_EQ(srv.call("POST", "/v1/sandboxes/" + id + "/pause").status, 202);
  EXPECT_EQ(inspect(id, "{{.State.Paused}}"), "true");
  EXPECT_EQ(srv.wait_state(id, "Paused"), "Paused");
  auto again = srv.call("POST", "/v1/sandboxes/" + id + "/pause");
  EXPECT_EQ(again.status, 409);
  EXPECT_NE(again.body.find("DOCKER::SANDBOX_NOT_RUNNING"), std::string::npos);
  EXPECT_EQ(srv.call("POST", "/v1/sandboxes/" + id + "/resume").status, 202);
  EXPECT_EQ(inspect(id, "{{.State.Paused}}"), "false");
  // Renew and patch.
  auto rn = srv.call("POST", "/v1/sandboxes/" + id + "/renew-expiration",
                     R"({"expiresAt":"2099-01-01T00:00:00Z"})");
  ASSERT_EQ(rn.status, 200) << rn.body;
  EXPECT_STREQ(rn.json()["expiresAt"].GetString(), "2099-01-01T00:00:00Z");
  auto past = srv.call("POST", "/v1/sandboxes/" + id + "/renew-expiration",
                       R"({"expiresAt":"2001-01-01T00:00:00Z"})");
  EXPECT_EQ(past.status, 400);
  auto pt = srv.call("PATCH", "/v1/sandboxes/" + id + "/metadata",
                     R"({"team":null,"project":"alpha"})");
  ASSERT_EQ(pt.status, 200) << pt.body;
  auto ptd = pt.json();
  EXPECT_FALSE(ptd["metadata"].HasMember("team"));
  EXPECT_STREQ(ptd["metadata"]["project"].GetString(), "alpha");
  // Delete removes the container; the sandbox is gone.
  auto del = srv.call("DELETE", "/v1/sandboxes/" + id);
  EXPECT_EQ(del.status, 204);
  EXPECT_TRUE(del.body.empty());
  EXPECT_EQ(srv.call("GET", "/v1/sandboxes/" + id).status, 404);
  EXPECT_EQ(srv.num_containers(), 0);
  // Every user-visible error was logged with its request id.
  EXPECT_NE(srv.read_log().find("[it-create-1]"), std::string::npos);
}

TEST(ServerLifecycle, BadInputGetsClearErrorsAndCreatesNothing) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto malformed = srv.call("POST", "/v1/sandboxes", "{not json");
  EXPECT_EQ(malformed.status, 422) << malformed.body;
  auto short_timeout = srv.call("POST", "/v1/sandboxes",
                                create_body(R"(,"timeout":10)"));
  EXPECT_EQ(short_timeout.status, 422);
  auto bad_memory = srv.call(
    "POST", "/v1/sandboxes",
    R"({"image":{"uri":"x"},"entrypoint":["sh"],"resourceLimits":{"memory":"lots"}})");
  EXPECT_EQ(bad_memory.status, 400) << bad_memory.body;
  auto reserved = srv.call("POST", "/v1/sandboxes",
                           create_body(",\"metadata\":{\"opensandbox.io/id\":\"x\"}"));
  EXPECT_EQ(reserved.status, 400);
  auto no_key = osb::test::http_call(srv.port(), "GET", "/v1/sandboxes");
  EXPECT_EQ(no_key.status, 401);
  EXPECT_FALSE(no_key.headers["x-request-id"].empty());
  EXPECT_EQ(srv.call("GET", "/v1/sandboxes/nope").status, 404);
  EXPECT_EQ(srv.num_containers(), 0);
}

TEST(ServerLifecycle, MissingImageFailsWithAReasonAndLeavesNothing) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto r = srv.call("POST", "/v1/sandboxes",
                    create_body({}, "opensandbox/does-not-exist:1"));
  ASSERT_EQ(r.status, 202) << r.body;
  std::string id = r.json()["id"].GetString();
  ASSERT_EQ(srv.wait_state(id, "Failed"), "Failed");
  auto g = srv.call("GET", "/v1/sandboxes/" + id).json();
  EXPECT_STREQ(g["status"]["reason"].GetString(), "IMAGE_PULL_FAILED");
  std::string msg = g["status"]["message"].GetString();
  EXPECT_NE(msg.find("opensandbox/does-not-exist:1"), std::string::npos) << msg;
  EXPECT_EQ(srv.num_containers(), 0);
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
}

TEST(ServerLifecycle, UnreachableDockerIsAClearError) {
  server_process srv("[docker]\nhost = \"unix:///tmp/osb-no-docker.sock\"\n");
  ASSERT_TRUE(srv.start()) << srv.read_log();
  std::this_thread::sleep_for(300ms); // the supervisor's first listing fails
  auto r = srv.call("POST", "/v1/sandboxes", create_body());
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("unreachable"), std::string::npos) << r.body;
  EXPECT_EQ(srv.call("GET", "/health").status, 200);
  EXPECT_EQ(srv.call("GET", "/v1/sandboxes").status, 200);
  // Alive, but not ready: the reason names the runtime host.
  auto ready = osb::test::http_call(srv.port(), "GET", "/ready");
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_NE(ready.body.find("osb-no-docker.sock"), std::string::npos)
    << ready.body;
}

TEST(ServerLifecycle, TimeoutExpiresSandboxAndRemovesContainer) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto id = create(srv, R"(,"timeout":60)");
  ASSERT_EQ(srv.wait_state(id, "Running"), "Running");
  auto expires = srv.call("GET", "/v1/sandboxes/" + id).json();
  EXPECT_TRUE(expires.HasMember("expiresAt"));
  std::this_thread::sleep_for(55s);
  EXPECT_EQ(srv.call("GET", "/v1/sandboxes/" + id).status, 200);
  EXPECT_EQ(srv.wait_state(id, "404", 15s), "404");
  // The record goes first; the container follows within moments.
  EXPECT_EQ(srv.wait_containers(0), 0);
}

TEST(ServerLifecycle, KillNineRecoversStateRenewalsAndMetadata) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto a = create(srv, R"(,"timeout":600)");
  auto b = create(srv);
  ASSERT_EQ(srv.wait_state(a, "Running"), "Running");
  ASSERT_EQ(srv.wait_state(b, "Running"), "Running");
  ASSERT_EQ(srv.call("POST", "/v1/sandboxes/" + a + "/renew-expiration",
                     R"({"expiresAt":"2099-01-01T00:00:00Z"})")
              .status,
            200);
  ASSERT_EQ(srv.call("PATCH", "/v1/sandboxes/" + a + "/metadata",
                     R"({"team":null,"k":"v"})")
              .status,
            200);
  ASSERT_EQ(srv.call("POST", "/v1/sandboxes/" + b + "/pause").status, 202);
  srv.kill(SIGKILL);
  // A create cut short by the crash: accepted, then the server dies.
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  auto c = create(srv);
  srv.kill(SIGKILL);
  // Ready, not just alive: a GET before recovery ends is a 503.
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  auto ga = srv.call("GET", "/v1/sandboxes/" + a);
  ASSERT_EQ(ga.status, 200) << ga.body;
  auto gad = ga.json();
  EXPECT_STREQ(gad["expiresAt"].GetString(), "2099-01-01T00:00:00Z");
  EXPECT_FALSE(gad["metadata"].HasMember("team"));
  EXPECT_STREQ(gad["metadata"]["k"].GetString(), "v");
  EXPECT_STREQ(gad["status"]["state"].GetString(), "Running");
  EXPECT_EQ(srv.wait_state(b, "Paused"), "Paused");
  EXPECT_EQ(srv.wait_state(c, "Running"), "Running")
    << srv.call("GET", "/v1/sandboxes/" + c).body;
  EXPECT_EQ(srv.num_containers(), 3);
  for (auto& id : {a, b, c}) {
    auto d = srv.call("DELETE", "/v1/sandboxes/" + id);
    EXPECT_EQ(d.status, 204) << id << " " << d.body;
  }
  EXPECT_EQ(srv.num_containers(), 0);
}

TEST(ServerLifecycle, ConcurrentCreatesAllRun) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  std::vector<std::thread> threads;
  std::vector<std::string> ids(10);
  for (size_t i = 0; i < ids.size(); ++i)
    threads.emplace_back([&, i] { ids[i] = create(srv); });
  for (auto& t : threads)
    t.join();
  for (auto& id : ids)
    EXPECT_EQ(srv.wait_state(id, "Running"), "Running");
  EXPECT_EQ(srv.num_containers(), 10);
  auto l = srv.call("GET", "/v1/sandboxes?pageSize=200");
  EXPECT_EQ(l.json()["pagination"]["totalItems"].GetInt(), 10);
  for (auto& id : ids)
    EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(srv.num_containers(), 0);
}

TEST(ServerLifecycle, OneSupervisorPerDockerHostAndRecoveryKeepsThemApart) {
  // Two addresses of this machine's daemon stand in for two Docker hosts.
  server_process srv("[docker]\nhosts = [\"unix:///var/run/docker.sock\", "
                     "\"unix:///run/docker.sock\"]\n");
  ASSERT_TRUE(srv.start()) << srv.read_log();
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i)
    ids.push_back(create(srv));
  for (auto& id : ids)
    ASSERT_EQ(srv.wait_state(id, "Running"), "Running");
  std::map<std::string, int> per_host;
  for (auto& id : ids)
    ++per_host[inspect(id, "{{index .Config.Labels "
                           "\"opensandbox.io/runtime-host\"}}")];
  EXPECT_EQ(per_host["unix:///var/run/docker.sock"], 2);
  EXPECT_EQ(per_host["unix:///run/docker.sock"], 2);
  srv.kill(SIGKILL);
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  for (auto& id : ids)
    EXPECT_EQ(srv.wait_state(id, "Running"), "Running") << srv.read_log();
  EXPECT_EQ(srv.num_containers(), 4);
  for (auto& id : ids)
    EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(srv.num_containers(), 0);
}
