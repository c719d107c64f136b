// Who may reach a sandbox, against the real server, execd and Docker: each
// sandbox's own token guards execd (direct and through execd's /proxy), the
// server proxy needs the API key, the sandbox's token or a signed URL and
// answers the same whether or not a sandbox exists, credentials meant for
// the server never reach the sandbox, and published ports stay off the
// bridge gateway unless configured.

#include <gtest/gtest.h>

#include <ctime>
#include <thread>

#include "server_process.hpp"

using namespace std::chrono_literals;
using osb::test::http_call;
using osb::test::http_reply;
using osb::test::server_process;
using osb::test::shell;

namespace {

const char* sleeper = R"({"image":{"uri":"opensandbox/busybox:latest"},)"
                      R"("entrypoint":["sleep","3600"],"timeout":600,)"
                      R"("resourceLimits":{"cpu":"500m","memory":"256Mi"}})";

std::string create(server_process& srv, const std::string& body = sleeper) {
  auto r = srv.call("POST", "/v1/sandboxes", body);
  EXPECT_EQ(r.status, 202) << r.body;
  if (r.status != 202)
    return {};
  std::string id = r.json()["id"].GetString();
  EXPECT_EQ(srv.wait_state(id, "Running", 60s), "Running") << srv.read_log();
  return id;
}

/// Waits (up to 10 s) until execd answers /ping on `port` under `prefix`:
/// Running is the container's start, not execd's, and under gVisor
/// (OSB_TEST_SECURE_RUNTIME) execd may listen a second later.
int wait_execd(uint16_t port, const std::string& prefix) {
  auto ping = http_call(port, "GET", prefix + "/ping");
  for (int i = 0; i < 100 && ping.status != 200; ++i) {
    std::this_thread::sleep_for(100ms);
    ping = http_call(port, "GET", prefix + "/ping");
  }
  return ping.status;
}

/// An endpoint answer split into port, path prefix and headers.
struct endpoint {
  uint16_t port = 0;
  std::string prefix;
  std::map<std::string, std::string> headers;
  std::string raw;
};

endpoint endpoint_of(server_process& srv, const std::string& id, int port,
                     const std::string& query = {}) {
  endpoint result;
  auto r = srv.call("GET", "/v1/sandboxes/" + id + "/endpoints/"
                             + std::to_string(port) + query);
  EXPECT_EQ(r.status, 200) << r.body;
  if (r.status != 200)
    return result;
  auto doc = r.json();
  result.raw = doc["endpoint"].GetString();
  if (doc.HasMember("headers"))
    for (auto& m : doc["headers"].GetObject())
      result.headers[m.name.GetString()] = m.value.GetString();
  // "host:port[/prefix]" or "host:port/sandboxes/..." for the proxy.
  auto colon = result.raw.find(':');
  auto slash = result.raw.find('/', colon);
  result.port = static_cast<uint16_t>(
    std::stoi(result.raw.substr(colon + 1, slash - colon - 1)));
  if (slash != std::string::npos)
    result.prefix = result.raw.substr(slash);
  return result;
}

/// Runs `command` in the sandbox through execd's own API (plain JSON
/// request, SSE answer).
http_reply run_command(uint16_t port, const std::string& prefix,
                       const std::string& command,
                       const std::map<std::string, std::string>& hdrs) {
  return http_call(port, "POST", prefix + "/command",
                   R"({"command":")" + command + R"("})", hdrs);
}

} // namespace

TEST(Access, ExecdRequiresTheSandboxesOwnToken) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto a = create(srv);
  auto b = create(srv);
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  auto ea = endpoint_of(srv, a, 44772);
  auto eb = endpoint_of(srv, b, 44772);
  ASSERT_EQ(ea.headers.count("X-EXECD-ACCESS-TOKEN"), 1u) << ea.raw;
  auto token = ea.headers["X-EXECD-ACCESS-TOKEN"];
  EXPECT_GE(token.size(), 32u);
  ASSERT_EQ(wait_execd(ea.port, ""), 200);
  EXPECT_NE(token, eb.headers["X-EXECD-ACCESS-TOKEN"]);
  // Without a token, with another sandbox's, and through execd's /proxy:
  // 401. The health ping stays open.
  EXPECT_EQ(run_command(ea.port, ea.prefix, "id", {}).status, 401);
  EXPECT_EQ(run_command(ea.port, ea.prefix, "id",
                        {{"X-EXECD-ACCESS-TOKEN",
                          eb.headers["X-EXECD-ACCESS-TOKEN"]}})
              .status,
            401);
  auto e6000 = endpoint_of(srv, a, 6000);
  EXPECT_EQ(http_call(e6000.port, "GET", e6000.prefix + "/").status, 401);
  EXPECT_EQ(e6000.headers["X-EXECD-ACCESS-TOKEN"], token);
  EXPECT_EQ(http_call(ea.port, "GET", "/ping").status, 200);
  // With it, commands run; neither the user's entrypoint (PID 1) nor the
  // commands see the token.
  auto r = run_command(ea.port, ea.prefix,
                       "env; tr '\\\\0' '\\\\n' < /proc/1/environ",
                       {{"X-EXECD-ACCESS-TOKEN", token}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("PATH="), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find(token), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("EXECD_ACCESS_TOKEN"), std::string::npos) << r.body;
  // The token survives a restart with the sandbox (it is in its row).
  srv.kill(SIGKILL);
  ASSERT_TRUE(srv.start_ready()) << srv.read_log();
  ASSERT_EQ(srv.wait_state(a, "Running"), "Running");
  EXPECT_EQ(endpoint_of(srv, a, 44772).headers["X-EXECD-ACCESS-TOKEN"], token);
  // A user cannot replace it through `env` at create.
  auto c = create(srv, R"({"image":{"uri":"opensandbox/busybox:latest"},)"
                       R"("entrypoint":["sleep","3600"],"timeout":600,)"
                       R"("env":{"EXECD_ACCESS_TOKEN":"guessable"},)"
                       R"("resourceLimits":{"cpu":"500m","memory":"256Mi"}})");
  auto ec = endpoint_of(srv, c, 44772);
  // Under gVisor execd listens a moment after Running.
  ASSERT_EQ(wait_execd(ec.port, ""), 200);
  EXPECT_EQ(run_command(ec.port, ec.prefix, "id",
                        {{"X-EXECD-ACCESS-TOKEN", "guessable"}})
              .status,
            401);
  for (auto& id : {a, b, c})
    EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
}

TEST(Access, TheServerProxyNeedsACredentialAndRevealsNothingWithout) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto a = create(srv);
  auto b = create(srv);
  ASSERT_FALSE(a.empty());
  auto ea = endpoint_of(srv, a, 44772);
  auto token = ea.headers["X-EXECD-ACCESS-TOKEN"];
  auto other = endpoint_of(srv, b, 44772).headers["X-EXECD-ACCESS-TOKEN"];
  ASSERT_EQ(wait_execd(ea.port, ""), 200);
  auto proxied = [&](const std::string& id,
                     std::map<std::string, std::string> hdrs) {
    return http_call(srv.port(), "POST",
                     "/sandboxes/" + id + "/proxy/44772/command",
                     R"({"command":"echo proxied-ok"})", hdrs);
  };
  // No credential: one answer for a real and a made-up id.
  auto real = proxied(a, {});
  auto fake = proxied("00000000-0000-4000-8000-000000000000", {});
  EXPECT_EQ(real.status, 401);
  EXPECT_EQ(real.body, fake.body);
  // A wrong token, another sandbox's, or any token for a made-up id: one
  // answer too.
  auto wrong = proxied(a, {{"OpenSandbox-Secure-Access", other}});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(proxied("00000000-0000-4000-8000-000000000000",
                    {{"OpenSandbox-Secure-Access", token}})
              .body,
            wrong.body);
  // The API key or the sandbox's token: the proxy adds execd's token.
  auto with_key = proxied(a, {{"OPEN-SANDBOX-API-KEY", "test-key"}});
  EXPECT_EQ(with_key.status, 200) << with_key.body;
  EXPECT_NE(with_key.body.find("proxied-ok"), std::string::npos);
  auto with_token = proxied(a, {{"OpenSandbox-Secure-Access", token}});
  EXPECT_EQ(with_token.status, 200) << with_token.body;
  EXPECT_NE(with_token.body.find("proxied-ok"), std::string::npos);
  // The endpoint API hands out the proxy endpoint with the token.
  auto ep = endpoint_of(srv, a, 44772, "?use_server_proxy=true");
  EXPECT_NE(ep.raw.find("/sandboxes/" + a + "/proxy/44772"),
            std::string::npos);
  EXPECT_EQ(ep.headers["OpenSandbox-Secure-Access"], token);
  EXPECT_EQ(ep.headers["X-EXECD-ACCESS-TOKEN"], token);
  for (auto& id : {a, b})
    EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
}

TEST(Access, ServerCredentialsNeverReachTheSandbox) {
  server_process srv;
  ASSERT_TRUE(srv.start()) << srv.read_log();
  // The sandbox's app on 8080 answers once and keeps the request it got.
  auto id = create(
    srv, R"({"image":{"uri":"opensandbox/busybox:latest"},)"
         R"("entrypoint":["sh","-c","printf 'HTTP/1.1 200 OK\r\n)"
         R"(Content-Length: 2\r\nConnection: close\r\n\r\nok' )"
         R"(| nc -l -p 8080 > /tmp/request; sleep 3600"],"timeout":600,)"
         R"("resourceLimits":{"cpu":"500m","memory":"256Mi"}})");
  ASSERT_FALSE(id.empty());
  auto token = endpoint_of(srv, id, 44772).headers["X-EXECD-ACCESS-TOKEN"];
  http_reply r;
  for (int i = 0; i < 50 && r.status != 200; ++i) {
    r = http_call(srv.port(), "GET", "/sandboxes/" + id + "/proxy/8080/x",
                  {},
                  {{"OPEN-SANDBOX-API-KEY", "test-key"},
                   {"OpenSandbox-Secure-Access", token},
                   {"Authorization", "Bearer secret-bearer"},
                   {"X-Trace", "kept"}});
    if (r.status != 200)
      std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "ok");
  auto seen = shell("docker exec sandbox-" + id + " cat /tmp/request");
  EXPECT_NE(seen.find("x-trace: kept"), std::string::npos)
    << "the sandbox saw:\n" << seen;
  for (auto secret : {"test-key", token.c_str(), "secret-bearer"})
    EXPECT_EQ(seen.find(secret), std::string::npos)
      << secret << " reached the sandbox:\n" << seen;
  // Nor are they logged.
  auto log = srv.read_log();
  EXPECT_EQ(log.find("test-key"), std::string::npos);
  EXPECT_EQ(log.find(token), std::string::npos);
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
}

TEST(Access, SignedUrlsWorkWithoutHeadersUntilTheyExpire) {
  // Key "a" = base64("integration-secret").
  server_process srv{"[ingress.secure_access]\nactive_key = \"a\"\n"
                     "[[ingress.secure_access.keys]]\nkey_id = \"a\"\n"
                     "key = \"aW50ZWdyYXRpb24tc2VjcmV0\"\n"};
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto id = create(srv);
  ASSERT_FALSE(id.empty());
  auto now = static_cast<int64_t>(std::time(nullptr));
  auto ep = endpoint_of(srv, id, 44772,
                        "?use_server_proxy=true&expires="
                          + std::to_string(now + 3600));
  ASSERT_NE(ep.prefix.find("/signed/" + id + "-44772-"), std::string::npos)
    << ep.raw;
  // The URL alone is the credential: no header at all.
  EXPECT_EQ(ep.headers.count("X-EXECD-ACCESS-TOKEN"), 0u);
  ASSERT_EQ(wait_execd(srv.port(), ep.prefix), 200);
  auto r = http_call(srv.port(), "POST", ep.prefix + "/command",
                     R"({"command":"echo signed-ok"})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("signed-ok"), std::string::npos) << r.body;
  // Tampering with the port is refused.
  auto tampered = ep.prefix;
  tampered.replace(tampered.find("-44772-"), 7, "-8080-");
  EXPECT_EQ(http_call(srv.port(), "GET", tampered + "/").status, 401);
  // An expiry in the past is refused at minting; a URL that ran out is
  // refused at use.
  EXPECT_EQ(srv.call("GET", "/v1/sandboxes/" + id
                              + "/endpoints/44772?use_server_proxy=true"
                                "&expires="
                              + std::to_string(now - 1))
              .status,
            400);
  // Two seconds ahead: a second boundary between here and the server's
  // check must not make it "in the past" already.
  auto t0 = std::time(nullptr);
  auto soon = endpoint_of(srv, id, 44772,
                          "?use_server_proxy=true&expires="
                            + std::to_string(t0 + 2));
  std::this_thread::sleep_until(std::chrono::system_clock::from_time_t(t0 + 4));
  r = http_call(srv.port(), "POST", soon.prefix + "/command",
                R"({"command":"echo late"})");
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_NE(r.body.find("expired"), std::string::npos) << r.body;
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
}

TEST(Access, PublishedPortsStayOffTheBridgeGatewayUnlessConfigured) {
  for (bool open : {false, true}) {
    SCOPED_TRACE(open ? "publish_address = 0.0.0.0" : "default");
    server_process srv{open ? "[docker]\npublish_address = \"0.0.0.0\"\n"
                            : std::string{}};
    ASSERT_TRUE(srv.start()) << srv.read_log();
    auto a = create(srv);
    auto b = create(srv);
    ASSERT_FALSE(b.empty());
    auto ea = endpoint_of(srv, a, 44772);
    ASSERT_EQ(wait_execd(ea.port, ""), 200);
    auto bound = shell("docker port sandbox-" + a + " 44772/tcp");
    EXPECT_NE(bound.find(open ? "0.0.0.0:" : "127.0.0.1:"), std::string::npos)
      << bound;
    // From sandbox b, sandbox a's execd port (its open /ping) through b's
    // default gateway. With nc: busybox wget -T crashes, and under gVisor
    // (OSB_TEST_SECURE_RUNTIME) busybox wget fails on its own (read(2)
    // before the answer, docs/gvisor.md).
    auto probe = shell(
      "docker exec sandbox-" + b
      + " sh -c 'gw=$(ip route | awk \"/default/ {print \\$3}\"); "
        "printf \"GET /ping HTTP/1.0\\r\\n\\r\\n\" | timeout 3 nc $gw "
      + std::to_string(ea.port)
      + " 2>/dev/null | grep -q \"^HTTP/1.. 200\" && echo reachable || "
        "echo unreachable'");
    EXPECT_EQ(probe, open ? "reachable\n" : "unreachable\n");
    for (auto& id : {a, b})
      EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  }
}
