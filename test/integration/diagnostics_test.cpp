// The diagnostics routes against the real server binary and Docker daemon:
// logs of a container that writes to stdout and stderr, events, inspect
// with masked secrets (the egress auth token label included, §9 bug 18),
// the summary, and the errors of §1.14.

#include <gtest/gtest.h>

#include <thread>

#include "server_process.hpp"

using namespace std::chrono_literals;
using osb::test::server_process;
using osb::test::shell;

TEST(Diagnostics, RoutesOverHttp) {
  const std::string egress_image = "opensandbox/egress:latest";
  // deploy/setup.sh builds the sidecar image; without it this is a broken
  // setup, not a reason to test less.
  ASSERT_TRUE(osb::test::has_image(egress_image))
    << egress_image << " is missing: run deploy/setup.sh";
  server_process srv("[egress]\nimage = \"" + egress_image
                     + "\"\nmode = \"dns\"\n");
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto r = srv.call(
    "POST", "/v1/sandboxes",
    std::string{R"({"image":{"uri":"opensandbox/busybox:latest"},)"
                R"("entrypoint":["sh","-c","echo hello-diag; )"
                R"(echo oops-diag >&2; exec sleep 3600"],)"
                R"("resourceLimits":{"cpu":"500m","memory":"256Mi"},)"
                R"("env":{"API_TOKEN":"tok-123","PLAIN":"visible"})"}
      + R"(,"networkPolicy":{"defaultAction":"allow"}})");
  ASSERT_EQ(r.status, 202) << r.body;
  std::string id = r.json()["id"].GetString();
  ASSERT_EQ(srv.wait_state(id, "Running", 60s), "Running") << srv.read_log();
  auto base = "/v1/sandboxes/" + id + "/diagnostics/";
  // Logs: stdout and stderr, demultiplexed, with timestamps.
  osb::test::http_reply logs;
  for (int i = 0; i < 50; ++i) {
    logs = srv.call("GET", base + "logs?tail=100");
    if (logs.body.find("oops-diag") != std::string::npos)
      break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(logs.status, 200);
  EXPECT_EQ(logs.headers["content-type"], "text/plain; charset=utf-8");
  EXPECT_EQ(logs.headers["deprecation"], "true");
  EXPECT_NE(logs.body.find("hello-diag"), std::string::npos) << logs.body;
  EXPECT_NE(logs.body.find("oops-diag"), std::string::npos) << logs.body;
  EXPECT_EQ(logs.body.rfind("20", 0), 0u) << logs.body; // a timestamp
  EXPECT_EQ(logs.body.find('\x01'), std::string::npos); // no frame headers
  auto one = srv.call("GET", base + "logs?tail=1&since=1h");
  EXPECT_EQ(std::count(one.body.begin(), one.body.end(), '\n'), 1)
    << one.body;
  // Events: a synthetic history from the inspect data.
  auto container_id = shell("docker inspect -f '{{.Id}}' sandbox-" + id)
                        .substr(0, 12);
  auto events = srv.call("GET", base + "events?limit=5");
  EXPECT_EQ(events.status, 200);
  EXPECT_EQ(events.headers["deprecation"], "true");
  EXPECT_EQ(events.body.rfind("Container:  " + container_id + " (sandbox-"
                                + id + ")\nStatus:     running\n",
                              0),
            0u)
    << events.body;
  EXPECT_NE(events.body.find("\nStarted:    "), std::string::npos);
  // Inspect: plain text without Deprecation, secrets masked.
  auto inspect = srv.call("GET", base + "inspect");
  EXPECT_EQ(inspect.status, 200);
  EXPECT_EQ(inspect.headers.count("deprecation"), 0u);
  auto& text = inspect.body;
  EXPECT_NE(text.find("Container ID:   " + container_id), std::string::npos)
    << text;
  EXPECT_NE(text.find("  CPU:          0.50 cores\n  Memory:       256 MiB\n"
                      "  PIDs Limit:   4096"),
            std::string::npos)
    << text;
  EXPECT_NE(text.find("  API_TOKEN=***"), std::string::npos) << text;
  EXPECT_NE(text.find("  PLAIN=visible"), std::string::npos) << text;
  EXPECT_EQ(text.find("tok-123"), std::string::npos) << text;
  {
    auto ep = srv.call("GET", "/v1/sandboxes/" + id + "/endpoints/18080");
    std::string token
      = ep.json()["headers"]["OPENSANDBOX-EGRESS-AUTH"].GetString();
    ASSERT_FALSE(token.empty());
    EXPECT_NE(text.find("  opensandbox.io/egress-auth-token=***"),
              std::string::npos)
      << text;
    EXPECT_EQ(text.find(token), std::string::npos) << text;
  }
  // Summary: all three sections.
  auto summary = srv.call("GET", base + "summary?tail=1&event_limit=3");
  EXPECT_EQ(summary.status, 200);
  EXPECT_EQ(summary.headers.count("deprecation"), 0u);
  EXPECT_EQ(summary.body.rfind(std::string(72, '=')
                                 + "\nSANDBOX DIAGNOSTICS SUMMARY\nSandbox ID: "
                                 + id + "\n",
                               0),
            0u)
    << summary.body;
  for (auto section : {"\nINSPECT\n", "\nEVENTS\n", "\nLOGS (last 1 lines)\n"})
    EXPECT_NE(summary.body.find(section), std::string::npos) << section;
  // Errors: scope -> 501 without lookup, bad query -> 422, unknown -> 404.
  auto scoped = srv.call("GET", "/v1/sandboxes/nope/diagnostics/logs?scope=s");
  EXPECT_EQ(scoped.status, 501);
  EXPECT_NE(scoped.body.find("DIAGNOSTICS_NOT_IMPLEMENTED"),
            std::string::npos);
  EXPECT_EQ(srv.call("GET", base + "logs?tail=0").status, 422);
  for (auto route : {"logs", "events", "inspect", "summary"}) {
    auto missing = srv.call("GET", std::string{"/v1/sandboxes/nope/"
                                               "diagnostics/"}
                                     + route);
    EXPECT_EQ(missing.status, 404) << route;
    EXPECT_NE(missing.body.find("DOCKER::SANDBOX_NOT_FOUND"),
              std::string::npos);
  }
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
}

TEST(Diagnostics, FailedCreateIsExplained) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto r = srv.call("POST", "/v1/sandboxes",
                    R"({"image":{"uri":"127.0.0.1:1/osb-missing:latest"},)"
                    R"("entrypoint":["sleep","1"],"resourceLimits":{}})");
  ASSERT_EQ(r.status, 202) << r.body;
  std::string id = r.json()["id"].GetString();
  ASSERT_EQ(srv.wait_state(id, "Failed"), "Failed");
  auto text = srv.call("GET", "/v1/sandboxes/" + id + "/diagnostics/summary")
                .body;
  EXPECT_NE(text.find("(no container) Sandbox " + id
                      + " is Failed (IMAGE_PULL_FAILED)"),
            std::string::npos)
    << text;
  EXPECT_NE(text.find("(no logs)"), std::string::npos) << text;
}
