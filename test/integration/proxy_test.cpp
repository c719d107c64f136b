// The server proxy of the real binary: `/sandboxes/{id}/proxy/{port}/…` (and
// `/route/{id}/{port}/…`) for a real sandbox. The node runs in host network
// mode, so the proxied port P is 127.0.0.1:P, where this test runs its own
// upstream (test/unit/http/proxy_backend.hpp): no dependency on execd.

#include <gtest/gtest.h>

#include <dirent.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <thread>
#include <variant>

#include "core/config.hpp"
#include "core/time.hpp"
#include "http/codec_request.hpp"
#include "net/endpoints.hpp"
#include "server_process.hpp"
#include "test/unit/http/proxy_backend.hpp"

using namespace std::chrono_literals;
using osb::test::server_process;
using osb::test::stream_client;
using osb::test::test_backend;

namespace {

/// One server, one sandbox and one upstream for the whole suite: creating a
/// sandbox costs a container.
class Proxy : public testing::Test {
protected:
  static void SetUpTestSuite() {
    srv_ = new server_process{"[docker]\nnetwork_mode = \"host\"\n"};
    if (!srv_->start())
      return;
    auto r = srv_->call(
      "POST", "/v1/sandboxes",
      R"({"image":{"uri":"opensandbox/busybox:latest"},)"
      R"("entrypoint":["sleep","3600"],"timeout":600,)"
      R"("resourceLimits":{"cpu":"500m","memory":"256Mi"}})");
    if (r.status != 202)
      return;
    auto doc = r.json();
    id_ = doc["id"].GetString();
    srv_->wait_state(id_, "Running");
    upstream_ = new test_backend;
  }

  static void TearDownTestSuite() {
    if (!id_.empty())
      srv_->call("DELETE", "/v1/sandboxes/" + id_);
    delete srv_; // kills the server, removes this node's containers
    delete upstream_;
    srv_ = nullptr;
    upstream_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(upstream_, nullptr) << (srv_ ? srv_->read_log() : "");
    ASSERT_FALSE(id_.empty());
  }

  static std::string proxy(const std::string& rest, uint16_t port = 0) {
    return "/sandboxes/" + id_ + "/proxy/"
           + std::to_string(port ? port : upstream_->port()) + rest;
  }

  static std::string get(const std::string& target,
                         const std::string& extra = {}) {
    return "GET " + target
           + " HTTP/1.1\r\nHost: 127.0.0.1\r\nOPEN-SANDBOX-API-KEY: "
             "test-key\r\n"
           + extra + "\r\n";
  }

  /// A one-shot request with the API key (the proxy's credential here).
  static osb::test::http_reply call(const std::string& method,
                                    const std::string& target,
                                    const std::string& body = {},
                                    std::map<std::string, std::string> hdrs
                                    = {}) {
    hdrs["OPEN-SANDBOX-API-KEY"] = "test-key";
    return osb::test::http_call(srv_->port(), method, target, body, hdrs);
  }

  /// The pid of the server child (found by its config path).
  static pid_t server_pid() {
    auto needle = srv_->config_path();
    pid_t found = -1;
    if (auto* dir = ::opendir("/proc")) {
      while (auto* e = ::readdir(dir)) {
        auto pid = std::atoi(e->d_name);
        if (pid <= 0)
          continue;
        std::ifstream in{"/proc/" + std::string{e->d_name} + "/cmdline"};
        std::string cmdline((std::istreambuf_iterator<char>(in)),
                            std::istreambuf_iterator<char>());
        if (cmdline.find("opensandbox-server") != std::string::npos
            && cmdline.find(needle) != std::string::npos)
          found = pid;
      }
      ::closedir(dir);
    }
    return found;
  }

  /// A `Vm…:` value of /proc/<pid>/status in KiB.
  static long status_kib(pid_t pid, const std::string& key) {
    std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
    std::string line;
    while (std::getline(in, line))
      if (line.rfind(key + ":", 0) == 0)
        return std::atol(line.c_str() + key.size() + 1);
    return -1;
  }

  static server_process* srv_;
  static test_backend* upstream_;
  static std::string id_;
};

server_process* Proxy::srv_ = nullptr;
test_backend* Proxy::upstream_ = nullptr;
std::string Proxy::id_;

TEST_F(Proxy, ForwardsWithTheApiKeyAndKeepsItHere) {
  // Without a credential nothing is forwarded (docs/security.md).
  EXPECT_EQ(osb::test::http_call(srv_->port(), "GET", proxy("/headers/a"))
              .status,
            401);
  auto r = call("GET", proxy("/headers/a?x=1&path=%2Fworkspace"), {},
                {{"X-Request-ID", "it-proxy-rid"},
                 {"Authorization", "Bearer s3cret"},
                 {"X-Trace", "t1"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-request-id"], "it-proxy-rid");
  EXPECT_EQ(r.headers["x-backend"], "yes");
  EXPECT_NE(r.body.find("GET /headers/a?x=1&path=%2Fworkspace\n"),
            std::string::npos)
    << r.body;
  EXPECT_NE(r.body.find("x-trace: t1\n"), std::string::npos);
  EXPECT_NE(r.body.find("x-request-id: it-proxy-rid\n"), std::string::npos);
  EXPECT_EQ(r.body.find("s3cret"), std::string::npos);
  EXPECT_EQ(r.body.find("test-key"), std::string::npos);
  // Same under /v1 and in the /route shape.
  r = call("POST", "/v1" + proxy("/headers/b"), "{}");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("POST /headers/b\n"), std::string::npos);
  EXPECT_NE(r.body.find("body: {}\n"), std::string::npos);
  r = call("DELETE", "/route/" + id_ + "/"
                       + std::to_string(upstream_->port()) + "/headers/c");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("DELETE /headers/c\n"), std::string::npos);
  // One DEBUG line per proxied request, with request and sandbox id.
  auto log = srv_->read_log();
  EXPECT_NE(log.find("[it-proxy-rid] [" + id_ + "] http: GET "), std::string::npos);
  EXPECT_NE(log.find("proxied to 127.0.0.1:"), std::string::npos);
}

TEST_F(Proxy, EndpointWithServerProxyIsServed) {
  auto ep = srv_->call("GET", "/v1/sandboxes/" + id_ + "/endpoints/"
                                + std::to_string(upstream_->port())
                                + "?use_server_proxy=true");
  ASSERT_EQ(ep.status, 200) << ep.body;
  std::string endpoint = ep.json()["endpoint"].GetString();
  auto expected = "127.0.0.1:" + std::to_string(srv_->port()) + proxy("");
  EXPECT_EQ(endpoint, expected);
  // The SDK prepends its scheme, appends the API path and sends the
  // endpoint's headers: the sandbox's token is enough, no API key.
  auto doc = ep.json();
  ASSERT_TRUE(doc.HasMember("headers")) << ep.body;
  std::map<std::string, std::string> hdrs;
  for (auto& m : doc["headers"].GetObject())
    hdrs[m.name.GetString()] = m.value.GetString();
  EXPECT_EQ(hdrs.count("OpenSandbox-Secure-Access"), 1u) << ep.body;
  auto path = endpoint.substr(endpoint.find('/')) + "/headers/sdk";
  auto r = osb::test::http_call(srv_->port(), "GET", path, {}, hdrs);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.find(hdrs["OpenSandbox-Secure-Access"]),
            std::string::npos);
  EXPECT_NE(r.body.find("GET /headers/sdk\n"), std::string::npos);
}

TEST_F(Proxy, LargeBodiesStreamWithoutBuffering) {
  auto pid = server_pid();
  ASSERT_GT(pid, 0);
  auto hwm_before = status_kib(pid, "VmHWM");
  constexpr uint64_t size = 50ull * 1024 * 1024;
  // Upload 50 MB, generated and hashed on the fly.
  stream_client c{srv_->port(), 60};
  ASSERT_TRUE(c.connected());
  c.send("PUT " + proxy("/upload")
         + " HTTP/1.1\r\nHost: x\r\nOPEN-SANDBOX-API-KEY: test-key\r\n"
           "Content-Length: "
         + std::to_string(size) + "\r\n\r\n");
  osb::test::fnv1a h;
  std::string piece(1024 * 1024, '\0');
  for (uint64_t off = 0; off < size; off += piece.size()) {
    for (size_t i = 0; i < piece.size(); ++i)
      piece[i] = osb::test::pattern_byte(off + i);
    h.add(piece.data(), piece.size());
    ASSERT_TRUE(c.send(piece));
  }
  auto r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "bytes=" + std::to_string(size) + " hash=" + h.hex());
  // Download 50 MB on the same connection.
  c.send(get(proxy("/download?n=" + std::to_string(size))));
  r = c.read_response();
  EXPECT_EQ(r.status, 200);
  ASSERT_EQ(r.body.size(), size);
  osb::test::fnv1a expected;
  osb::test::fnv1a got;
  for (uint64_t off = 0; off < size; off += piece.size()) {
    for (size_t i = 0; i < piece.size(); ++i)
      piece[i] = osb::test::pattern_byte(off + i);
    expected.add(piece.data(), piece.size());
  }
  got.add(r.body.data(), r.body.size());
  EXPECT_EQ(got.hex(), expected.hex());
  // The server's peak resident memory grew by far less than one body.
  auto hwm_after = status_kib(pid, "VmHWM");
  std::cout << "server VmHWM before " << hwm_before << " KiB, after "
            << hwm_after << " KiB, VmRSS " << status_kib(pid, "VmRSS")
            << " KiB\n";
  EXPECT_LT(hwm_after - hwm_before, 16 * 1024);
}

TEST_F(Proxy, ChunkedAndServerSentEvents) {
  stream_client c{srv_->port()};
  c.send(get(proxy("/chunked")));
  auto r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "alphabetagamma");
  // Each event shows up as the upstream sends it, not at the end.
  auto start = std::chrono::steady_clock::now();
  c.send(get(proxy("/sse?n=5&ms=250")));
  std::vector<double> at;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c.read_until("data: " + std::to_string(i) + "\n\n"));
    at.push_back(std::chrono::duration<double, std::milli>(
                   std::chrono::steady_clock::now() - start)
                   .count());
  }
  std::cout << "SSE arrival (ms):";
  for (auto x : at)
    std::cout << ' ' << static_cast<int>(x);
  std::cout << '\n';
  EXPECT_LT(at[0], 200.0);
  EXPECT_GT(at[4] - at[0], 800.0);
  for (int i = 1; i < 5; ++i)
    EXPECT_GT(at[i] - at[i - 1], 150.0) << i;
}

TEST_F(Proxy, CountsRequestsConnectionsAndBytesInMetrics) {
  auto value = [](const std::string& text, const std::string& name) {
    auto pos = text.find("\n" + name + " ");
    return pos == std::string::npos
             ? -1.0
             : std::stod(text.substr(pos + name.size() + 2));
  };
  auto before = call("GET", "/metrics").body;
  auto r = call("POST", proxy("/headers/m"), std::string(10000, 'x'));
  ASSERT_EQ(r.status, 200) << r.body;
  auto after = call("GET", "/metrics").body;
  EXPECT_EQ(value(after, "opensandbox_proxy_requests_total"),
            value(before, "opensandbox_proxy_requests_total") + 1)
    << after;
  EXPECT_GE(value(after, "opensandbox_proxy_connections_total"), 1);
  // The request body went up, the echo came down.
  EXPECT_GE(value(after, "opensandbox_proxy_bytes_total{direction=\"upstream\"}")
              - value(before,
                      "opensandbox_proxy_bytes_total{direction=\"upstream\"}"),
            10000);
  EXPECT_GT(value(after,
                  "opensandbox_proxy_bytes_total{direction=\"downstream\"}"),
            value(before,
                  "opensandbox_proxy_bytes_total{direction=\"downstream\"}"));
}

TEST_F(Proxy, WebSocketEcho) {
  stream_client c{srv_->port()};
  c.send(get(proxy("/ws"), "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 13\r\n"));
  auto r = c.read_response();
  ASSERT_EQ(r.status, 101);
  EXPECT_EQ(r.headers["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  int op = 0;
  std::string payload;
  for (int i = 0; i < 20; ++i) {
    auto msg = "message " + std::to_string(i);
    c.send(osb::test::ws_frame(1, msg));
    ASSERT_TRUE(osb::test::ws_read_message(c, op, payload));
    EXPECT_EQ(op, 1);
    EXPECT_EQ(payload, msg);
  }
  std::string big(1 << 20, 'w');
  big[777] = '!';
  c.send(osb::test::ws_frame(2, big));
  ASSERT_TRUE(osb::test::ws_read_message(c, op, payload));
  EXPECT_EQ(op, 2);
  EXPECT_TRUE(payload == big);
  c.send(osb::test::ws_frame(8, std::string("\x03\xe8", 2)));
  ASSERT_TRUE(osb::test::ws_read_message(c, op, payload));
  EXPECT_EQ(op, 8);
}

TEST_F(Proxy, Errors) {
  // Nothing listens: 502 with the original's message.
  uint16_t dead_port = 0;
  {
    test_backend gone;
    dead_port = gone.port();
  }
  auto r = call("GET",
                                proxy("/x", dead_port));
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(r.body, R"({"code":"GENERAL::UNKNOWN_ERROR","message":"Could not )"
                    R"(connect to the backend sandbox 127.0.0.1:)"
                      + std::to_string(dead_port)
                      + R"(: Connection refused"})");
  // Unknown sandbox.
  r = call("GET",
                           "/sandboxes/no-such-sandbox/proxy/"
                             + std::to_string(upstream_->port()) + "/x");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("DOCKER::SANDBOX_NOT_FOUND"), std::string::npos);
  // The backend's own errors pass through untouched.
  r = call("GET", proxy("/status/403"));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body, "status 403");
}

TEST_F(Proxy, PathTricksNeverLeaveThePort) {
  test_backend other;
  auto before = upstream_->requests();
  auto op = std::to_string(other.port());
  for (const std::string& rest : std::vector<std::string>{
         "/../" + op + "/x", "/a/../../" + op + "/x", "/%2e%2e/%2e%2e/x",
         "/..%2f..%2f" + op + "%2fx", "/%252e%252e/x", "/a/%2E%2e/b",
         "/..%5c..%5cx", "/./x"}) {
    // With the key (past auth) the path is refused...
    auto r = srv_->call("GET", proxy(rest));
    EXPECT_TRUE(r.status == 400 || r.status == 404)
      << rest << " → " << r.status << " " << r.body;
    // ...and without it a traversal is not even exempt from auth.
    auto anon = osb::test::http_call(srv_->port(), "GET", proxy(rest));
    EXPECT_TRUE(anon.status == 400 || anon.status == 401
                || anon.status == 404)
      << rest << " → " << anon.status;
  }
  EXPECT_EQ(upstream_->requests(), before);
  EXPECT_EQ(other.requests(), 0);
  // Encoded slashes that stay inside the port are forwarded as sent.
  auto r = srv_->call("GET", proxy("/headers/a%2Fb"));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("GET /headers/a%2Fb\n"), std::string::npos);
}

TEST_F(Proxy, KeepAliveAcrossManyRequests) {
  stream_client c{srv_->port()};
  auto conns = upstream_->connections();
  for (int i = 0; i < 200; ++i) {
    c.send(get(proxy("/status/200")));
    auto r = c.read_response();
    ASSERT_EQ(r.status, 200) << i;
    ASSERT_EQ(r.body, "status 200");
  }
  // One client connection, one upstream connection.
  EXPECT_EQ(upstream_->connections() - conns, 1);
}

// -- bridge mode: published ports and renew-on-access ---------------------------

/// A bridge-mode node with renew-on-access (cool-down 1 s) and sandboxes that
/// serve HTTP themselves (busybox httpd on 8080 and 9000): the proxy reaches
/// their published ports, 9000 through execd's /proxy.
class ProxyBridge : public testing::Test {
protected:
  static void SetUpTestSuite() {
    // Ports published on this machine's outward address, as with the
    // default `server.host = "0.0.0.0"`: the proxy reaches them through
    // Docker's NAT.
    auto outward = osb::net::outward_ipv4();
    srv_ = new server_process{
      "[renew_intent]\nenabled = true\nmin_interval_seconds = 1\n"
      "[docker]\npublish_address = \""
      + (outward.empty() ? std::string{"0.0.0.0"} : outward) + "\"\n"};
    srv_->start();
  }

  /// A one-shot request with the API key.
  static osb::test::http_reply call(const std::string& method,
                                    const std::string& target) {
    return osb::test::http_call(srv_->port(), method, target, {},
                                {{"OPEN-SANDBOX-API-KEY", "test-key"}});
  }

  static void TearDownTestSuite() {
    delete srv_; // kills the server, removes this node's containers
    srv_ = nullptr;
  }

  /// Creates a Running sandbox serving "hello <name>" on 8080 and 9000.
  static std::string create(const std::string& name,
                            const std::string& extensions = {}) {
    auto cmd = "mkdir -p /www && echo hello " + name
               + " > /www/index.html && httpd -p 9000 -h /www && exec httpd "
                 "-f -p 8080 -h /www";
    auto body = R"({"image":{"uri":"opensandbox/busybox:latest"},)"
                R"("entrypoint":["sh","-c",")"
                + cmd + R"("],"timeout":60,"resourceLimits":{})"
                + (extensions.empty() ? "" : R"(,"extensions":)" + extensions)
                + "}";
    auto r = srv_->call("POST", "/v1/sandboxes", body);
    EXPECT_EQ(r.status, 202) << r.body;
    if (r.status != 202)
      return {};
    std::string id = r.json()["id"].GetString();
    EXPECT_EQ(srv_->wait_state(id, "Running"), "Running");
    // Running means execd runs the entrypoint, not that httpd listens yet:
    // until it does, the proxy answers 502 (connection refused).
    for (int i = 0; i < 200; ++i) {
      if (srv_->call("GET", "/sandboxes/" + id + "/proxy/8080/").status != 502)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return id;
  }

  /// The host port published for container port 8080 of `id`.
  static std::string published_port(const std::string& id) {
    auto r = srv_->call("GET", "/v1/sandboxes/" + id + "/endpoints/8080");
    if (r.status != 200)
      return {};
    std::string ep = r.json()["endpoint"].GetString();
    return ep.substr(ep.rfind(':') + 1);
  }

  /// expiresAt of a sandbox in µs since the epoch; 0 if it has none or
  /// does not exist.
  static int64_t expires_us(const std::string& id) {
    auto r = srv_->call("GET", "/v1/sandboxes/" + id);
    if (r.status != 200)
      return 0;
    auto doc = r.json();
    if (!doc.HasMember("expiresAt"))
      return 0;
    auto at = osb::codec::decode_renew(std::string{R"({"expiresAt":")"}
                                       + doc["expiresAt"].GetString()
                                       + "\"}");
    auto us = std::get_if<int64_t>(&at);
    return us ? *us : 0;
  }

  /// Moves the expiry of `id` to `secs` from now (renew may shorten it).
  static void expire_in(const std::string& id, int secs) {
    auto at = osb::codec::format_time(osb::codec::now_us()
                                      + secs * int64_t{1000000});
    auto r = srv_->call("POST", "/v1/sandboxes/" + id + "/renew-expiration",
                        R"({"expiresAt":")" + at + "\"}");
    ASSERT_EQ(r.status, 200) << r.body;
  }

  void SetUp() override {
    ASSERT_NE(srv_, nullptr);
    ASSERT_EQ(srv_->call("GET", "/health").status, 200) << srv_->read_log();
  }

  static server_process* srv_;
};

server_process* ProxyBridge::srv_ = nullptr;

TEST_F(ProxyBridge, PublishedPortsAreReachedThroughDockersNat) {
  auto id = create("nat");
  ASSERT_FALSE(id.empty());
  auto port = published_port(id);
  ASSERT_FALSE(port.empty());
  auto address = osb::net::detect_proxy_address(osb::node_config{});
  // 8080 and, through execd, any other port.
  auto r = call("GET",
                                "/sandboxes/" + id + "/proxy/8080/");
  ASSERT_EQ(r.status, 200) << r.body << srv_->read_log();
  EXPECT_EQ(r.body, "hello nat\n");
  r = call("GET",
                           "/sandboxes/" + id + "/proxy/9000/index.html");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "hello nat\n");
  auto log = srv_->read_log();
  EXPECT_NE(log.find("proxied to " + address + ":" + port + "/"),
            std::string::npos)
    << log;
  // The upstream's own errors pass through.
  r = call("GET",
                           "/sandboxes/" + id + "/proxy/8080/x");
  EXPECT_EQ(r.status, 404);
  if (address != "127.0.0.1") {
    // While a proxied keep-alive connection is open, docker-proxy holds no
    // connection on the published port: the kernel forwards it.
    stream_client c{srv_->port()};
    c.send("GET /sandboxes/" + id
           + "/proxy/8080/ HTTP/1.1\r\nHost: x\r\nOPEN-SANDBOX-API-KEY: "
             "test-key\r\n\r\n");
    EXPECT_EQ(c.read_response().status, 200);
    auto held = osb::test::shell("ss -tnpH state established '( sport = :"
                                 + port + " )'");
    EXPECT_EQ(held.find("docker-proxy"), std::string::npos) << held;
  }
  ASSERT_EQ(srv_->call("DELETE", "/v1/sandboxes/" + id).status, 204);
  r = call("GET",
                           "/sandboxes/" + id + "/proxy/8080/");
  EXPECT_EQ(r.status, 404);
}

TEST_F(ProxyBridge, RenewOnAccessKeepsOnlySandboxesWithTheExtensionAlive) {
  auto with = create("with", R"({"access.renew.extend.seconds":"300"})");
  auto without = create("without");
  ASSERT_FALSE(with.empty());
  ASSERT_FALSE(without.empty());
  // Both would expire in 4 s.
  expire_in(with, 4);
  expire_in(without, 4);
  auto original = expires_us(with);
  ASSERT_GT(original, 0);
  // Proxied requests to both for 7 s, past that expiry.
  auto start = std::chrono::steady_clock::now();
  int ok_with = 0;
  while (std::chrono::steady_clock::now() - start < 7s) {
    auto r = call("GET",
                                  "/sandboxes/" + with + "/proxy/8080/");
    ok_with += r.status == 200 ? 1 : 0;
    call("GET",
                         "/sandboxes/" + without + "/proxy/8080/");
    std::this_thread::sleep_for(250ms);
  }
  auto now = osb::codec::now_us();
  EXPECT_GT(ok_with, 20);
  // Renewed to about now + 300 s (not earlier than the last renewal,
  // at most 1 s of cool-down plus this loop's pace ago).
  auto renewed = expires_us(with);
  EXPECT_GT(renewed, original);
  EXPECT_GE(renewed, now + 290 * int64_t{1000000});
  EXPECT_LE(renewed, now + 300 * int64_t{1000000});
  EXPECT_EQ(srv_->wait_state(with, "Running"), "Running");
  // The one without the extension expired despite the traffic.
  EXPECT_EQ(srv_->wait_state(without, "404", 5s), "404");
  // The renewal is durable: it survives kill -9.
  srv_->kill(SIGKILL);
  ASSERT_TRUE(srv_->start());
  EXPECT_EQ(expires_us(with), renewed);
  EXPECT_EQ(srv_->wait_state(with, "Running"), "Running");
  ASSERT_EQ(srv_->call("DELETE", "/v1/sandboxes/" + with).status, 204);
}

} // namespace
