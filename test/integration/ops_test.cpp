// Operations (issue 15) against the real server binary and Docker:
// `GET /metrics` (API key, Prometheus text that promtool accepts, the
// families move with real work), `createPhases` on GET, `GET /ready`, and
// SIGTERM during creates (exit 0 in time, the restart finishes every
// acknowledged create, nothing leaked), SIGHUP reloading the log level.

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <mutex>
#include <regex>
#include <thread>

#include "server_process.hpp"

using namespace std::chrono_literals;
using osb::test::http_call;
using osb::test::server_process;
using osb::test::shell;

namespace {

const std::string create_body
  = R"({"image":{"uri":"opensandbox/busybox:latest"},)"
    R"("entrypoint":["sleep","3600"],)"
    R"("resourceLimits":{"cpu":"500m","memory":"256Mi"}})";

/// The value of the sample `line_prefix` (name and labels), -1 if absent.
double sample(const std::string& text, const std::string& line_prefix) {
  auto pos = text.find("\n" + line_prefix + " ");
  if (pos == std::string::npos)
    return -1;
  return std::stod(text.substr(pos + line_prefix.size() + 2));
}

/// Runs `promtool check metrics` on `text`; its exit code and output.
std::pair<int, std::string> promtool(const std::string& text) {
  auto path = std::filesystem::temp_directory_path()
              / ("osb-it-metrics-" + std::to_string(getpid()) + ".txt");
  {
    std::ofstream out{path};
    out << text;
  }
  auto out = shell("promtool check metrics < " + path.string()
                   + " 2>&1; echo rc=$?");
  std::filesystem::remove(path);
  auto rc = out.rfind("rc=");
  return {std::atoi(out.c_str() + rc + 3), out.substr(0, rc)};
}

} // namespace

TEST(Ops, MetricsNeedTheKeyPassPromtoolAndFollowACreate) {
  server_process srv;
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  EXPECT_EQ(http_call(srv.port(), "GET", "/metrics").status, 401);
  // Prometheus sends the key as a bearer token.
  EXPECT_EQ(http_call(srv.port(), "GET", "/metrics", {},
                      {{"Authorization", "Bearer test-key"}})
              .status,
            200);
  EXPECT_EQ(http_call(srv.port(), "GET", "/metrics", {},
                      {{"Authorization", "Bearer wrong"}})
              .status,
            401);
  auto r = srv.call("POST", "/v1/sandboxes", create_body);
  ASSERT_EQ(r.status, 202) << r.body;
  auto id = std::string{r.json()["id"].GetString()};
  ASSERT_EQ(srv.wait_state(id, "Running"), "Running");

  auto m = srv.call("GET", "/metrics");
  ASSERT_EQ(m.status, 200) << m.body;
  EXPECT_EQ(m.headers["content-type"],
            "text/plain; version=0.0.4; charset=utf-8");
  auto [rc, out] = promtool(m.body);
  EXPECT_EQ(rc, 0) << out << "\n" << m.body;
  EXPECT_EQ(sample(m.body, "opensandbox_sandboxes{state=\"Running\"}"), 1)
    << m.body;
  EXPECT_EQ(sample(m.body, "opensandbox_http_requests_total{method=\"POST\","
                           "route=\"/sandboxes\",code=\"202\"}"),
            1)
    << m.body;
  // GETs of the sandbox count under the route's pattern, never its id.
  EXPECT_GE(sample(m.body, "opensandbox_http_requests_total{method=\"GET\","
                           "route=\"/sandboxes/{sandboxId}\",code=\"200\"}"),
            1);
  EXPECT_EQ(m.body.find(id), std::string::npos);
  for (auto phase : {"stored", "prepared", "created", "started", "running"})
    EXPECT_EQ(sample(m.body, std::string{"opensandbox_sandbox_create_phase_"
                                         "seconds_count{phase=\""}
                               + phase + "\"}"),
              1)
      << phase;
  EXPECT_GE(sample(m.body, "opensandbox_runtime_request_duration_seconds_"
                           "count{operation=\"containers_create\"}"),
            1)
    << m.body;
  EXPECT_GE(sample(m.body, "opensandbox_runtime_request_duration_seconds_"
                           "count{operation=\"containers_start\"}"),
            1);
  // Docker calls under way are back to none once the sandbox runs.
  EXPECT_EQ(sample(m.body, "opensandbox_runtime_requests_in_flight{"
                           "operation=\"containers_create\"}"),
            0)
    << m.body;
  EXPECT_GT(sample(m.body, "process_resident_memory_bytes"), 0);
  EXPECT_GT(sample(m.body, "process_open_fds"), 0);

  // The phases are on the sandbox too, in order.
  auto g = srv.call("GET", "/v1/sandboxes/" + id).json();
  ASSERT_TRUE(g.HasMember("createPhases")) << srv.call("GET", "/v1/sandboxes/" + id).body;
  std::string last;
  for (auto phase :
       {"accepted", "stored", "prepared", "created", "started", "running"}) {
    ASSERT_TRUE(g["createPhases"].HasMember(phase)) << phase;
    std::string at = g["createPhases"][phase].GetString();
    EXPECT_LE(last, at) << phase; // RFC 3339 UTC sorts as text
    last = at;
  }
  EXPECT_EQ(std::string{g["createPhases"]["accepted"].GetString()},
            std::string{g["createdAt"].GetString()});

  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  m = srv.call("GET", "/metrics");
  EXPECT_EQ(sample(m.body, "opensandbox_sandboxes{state=\"Running\"}"), 0)
    << m.body;
  EXPECT_EQ(srv.wait_containers(0), 0);
}

TEST(Ops, MetricsWithoutAuthAndSwitchedOff) {
  server_process open{"[metrics]\nauth = false\n"};
  ASSERT_TRUE(open.start()) << open.read_log();
  auto m = http_call(open.port(), "GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("# TYPE opensandbox_sandboxes gauge"),
            std::string::npos)
    << m.body;
  // Still only at the root, like /health.
  EXPECT_EQ(open.call("GET", "/v1/metrics").status, 404);
  server_process off{"[metrics]\nenabled = false\n"};
  ASSERT_TRUE(off.start()) << off.read_log();
  EXPECT_EQ(off.call("GET", "/metrics").status, 404);
}

TEST(Ops, ReadyNeedsNoKeyAndHealthStaysLiveness) {
  server_process srv;
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  auto r = http_call(srv.port(), "GET", "/ready");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"status":"ready"})");
  EXPECT_EQ(http_call(srv.port(), "GET", "/v1/ready").status, 401);
  EXPECT_EQ(http_call(srv.port(), "GET", "/health").status, 200);
}

TEST(Ops, ReadyIs503WhileSeedsAreMissing) {
  // A seed that never answers: membership stays incomplete until the seed
  // timeout, and /ready says so while /health is fine.
  auto seed_port = osb::test::free_port();
  server_process srv{{}, "it-" + osb::test::random_suffix(),
                     "listen = \"127.0.0.1:" +
                       std::to_string(osb::test::free_port())
                       + "\"\nplaintext = true\nseeds = [\"127.0.0.1:"
                       + std::to_string(seed_port)
                       + "\"]\nseed_timeout_seconds = 60\n"};
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto r = http_call(srv.port(), "GET", "/ready");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("cluster membership not complete"),
            std::string::npos)
    << r.body;
}

TEST(Ops, SigtermDuringCreatesExitsZeroAndTheRestartFinishesThem) {
  server_process srv;
  // shutdown_timeout_seconds belongs in [server]: a config of its own.
  srv.use_config("[server]\nhost = \"127.0.0.1\"\nport = "
                 + std::to_string(srv.port())
                 + "\napi_key = \"test-key\"\nshutdown_timeout_seconds = 5\n"
                   "[log]\nlevel = \"DEBUG\"\n[store]\npath = \""
                 + srv.store_path() + "\"\n[cluster]\nnode_name = \""
                 + srv.node() + "\"\n");
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  constexpr int n = 8;
  std::mutex mtx;
  std::vector<std::string> acknowledged;
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&] {
      auto r = srv.call("POST", "/v1/sandboxes", create_body);
      if (r.status == 202) {
        std::lock_guard<std::mutex> guard{mtx};
        acknowledged.push_back(r.json()["id"].GetString());
      }
      ++answered;
    });
  // SIGTERM as soon as the first create is acknowledged: the others are
  // in flight (HTTP or provisioning).
  auto wait_until = std::chrono::steady_clock::now() + 30s;
  while (answered == 0 && std::chrono::steady_clock::now() < wait_until)
    std::this_thread::sleep_for(1ms);
  auto t0 = std::chrono::steady_clock::now();
  srv.signal(SIGTERM);
  auto code = srv.wait_exit(10s);
  auto took = std::chrono::steady_clock::now() - t0;
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(code, 0) << srv.read_log();
  EXPECT_LT(took, 6s) << "shutdown took "
                      << std::chrono::duration_cast<std::chrono::milliseconds>(
                           took)
                           .count()
                      << " ms";
  ASSERT_FALSE(acknowledged.empty());
  std::cout << "[ INFO     ] " << acknowledged.size() << " of " << n
            << " creates acknowledged; exit "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took)
                 .count()
            << " ms after SIGTERM\n";
  EXPECT_NE(srv.read_log().find("server stops on signal 15"),
            std::string::npos);
  // The restart continues every acknowledged create.
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  for (auto& id : acknowledged)
    EXPECT_EQ(srv.wait_state(id, "Running", 60s), "Running") << id;
  // Nothing leaked: exactly the acknowledged sandboxes have containers,
  // and they are the only sandboxes.
  EXPECT_EQ(srv.wait_containers(static_cast<int>(acknowledged.size())),
            static_cast<int>(acknowledged.size()));
  auto l = srv.call("GET", "/v1/sandboxes?pageSize=100").json();
  EXPECT_EQ(l["pagination"]["totalItems"].GetInt(),
            static_cast<int>(acknowledged.size()));
  for (auto& id : acknowledged)
    EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(srv.wait_containers(0), 0);
}

TEST(Ops, SighupReloadsTheLogLevel) {
  server_process srv;
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  // The generated config logs at DEBUG: every request leaves a line.
  srv.call("GET", "/v1/sandboxes");
  auto config = shell("cat " + srv.config_path());
  auto pos = config.find("level = \"DEBUG\"");
  ASSERT_NE(pos, std::string::npos);
  config.replace(pos, 15, "level = \"ERROR\"");
  srv.use_config(config);
  srv.signal(SIGHUP);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (srv.read_log().find("SIGHUP: configuration reloaded")
           == std::string::npos
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  auto before = srv.read_log();
  ASSERT_NE(before.find("SIGHUP: configuration reloaded; log level ERROR"),
            std::string::npos)
    << before;
  // A 404 logs at WARNING: no longer written.
  EXPECT_EQ(srv.call("GET", "/v1/sandboxes/nope").status, 404);
  EXPECT_EQ(srv.read_log().size(), before.size()) << srv.read_log();
  // Still serving, and SIGTERM still ends it with 0.
  EXPECT_EQ(http_call(srv.port(), "GET", "/health").status, 200);
  srv.signal(SIGTERM);
  EXPECT_EQ(srv.wait_exit(15s), 0);
}
