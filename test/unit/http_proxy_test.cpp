// The server proxy: its rules as pure functions (net/proxy), the API
// handler's forwarding decisions, and the streaming server end to end against
// a local test upstream (no Docker, no actors).

#include "http/api.hpp"
#include "http/proxy_cache.hpp"
#include "http/router.hpp"
#include "base/strings.hpp"
#include "http/server.hpp"
#include "net/endpoints.hpp"
#include "net/proxy.hpp"
#include "net/signed_route.hpp"

#include "test/unit/http_lookup_backend.hpp"
#include "test/unit/http_proxy_backend.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <chrono>
#include <ctime>
#include <map>
#include <optional>
#include <string>

using namespace osb;
using namespace osb::http;
using osb::test::lookup_backend;
using osb::test::stream_client;
using osb::test::test_backend;

namespace {

// -- pure rules ----------------------------------------------------------------

TEST(ProxyPath, Shapes) {
  auto p = net::parse_proxy_path("/sandboxes/abc/proxy/8080/api/run");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->sandbox_id, "abc");
  EXPECT_EQ(p->port, "8080");
  EXPECT_EQ(p->rest, "api/run");
  p = net::parse_proxy_path("/v1/sandboxes/abc/proxy/44772");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->port, "44772");
  EXPECT_EQ(p->rest, "");
  p = net::parse_proxy_path("/v1/sandboxes/abc/proxy/44772/");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->rest, "");
  p = net::parse_proxy_path("/route/abc/5000/x%2Fy/z");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->sandbox_id, "abc");
  EXPECT_EQ(p->port, "5000");
  EXPECT_EQ(p->rest, "x%2Fy/z"); // the rest stays raw
  p = net::parse_proxy_path("/v1/route/abc/5000");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->rest, "");
  // Fixed segments compare decoded, like the router.
  p = net::parse_proxy_path("/sandboxes/a%2Db/%70roxy/80/x");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->sandbox_id, "a-b");
  EXPECT_FALSE(net::parse_proxy_path("/sandboxes/abc/proxy"));
  EXPECT_FALSE(net::parse_proxy_path("/sandboxes/abc/proxy/"));
  EXPECT_FALSE(net::parse_proxy_path("/sandboxes//proxy/80"));
  EXPECT_FALSE(net::parse_proxy_path("/sandboxes/abc/endpoints/80"));
  EXPECT_FALSE(net::parse_proxy_path("/route/abc"));
  EXPECT_FALSE(net::parse_proxy_path("/health"));
  EXPECT_TRUE(net::is_proxy_path("/sandboxes/abc/proxy/80/x"));
  EXPECT_TRUE(net::is_proxy_path("/v1/route/abc/80"));
  EXPECT_FALSE(net::is_proxy_path("/v1/sandboxes/abc"));
  EXPECT_FALSE(net::is_proxy_path("/v1/sandboxes"));
}

TEST(ProxyPath, NormalizeKeepsOrdinaryPaths) {
  EXPECT_EQ(net::normalize_proxy_rest(""), "/");
  EXPECT_EQ(net::normalize_proxy_rest("api/run"), "/api/run");
  EXPECT_EQ(net::normalize_proxy_rest("//api//run/"), "/api//run/");
  EXPECT_EQ(net::normalize_proxy_rest("a%2Fb"), "/a%2Fb");
  EXPECT_EQ(net::normalize_proxy_rest("files/..."), "/files/...");
  EXPECT_EQ(net::normalize_proxy_rest("a..b/.hidden/..x"), "/a..b/.hidden/..x");
  EXPECT_EQ(net::normalize_proxy_rest("%E2%9C%93"), "/%E2%9C%93");
}

TEST(ProxyPath, NormalizeRejectsEscapes) {
  for (auto bad : {"..", "../44773/x", "a/../../b", "a/..", ".", "./a",
                   "a/./b", "%2e%2e", "%2E%2e/x", "%2e%2E%2fx", ".%2e/x",
                   "%2e./x", "a/..%2f..%2fproxy%2f1", "..%2F", "%252e%252e/x",
                   "%25252e%25252e/x", "a%2f%2e%2e%2fb", "a\\..\\b",
                   "..%5cx", "a%00b", "a%0d%0ab"}) {
    EXPECT_FALSE(net::normalize_proxy_rest(bad)) << bad;
  }
}

TEST(ProxyHeaders, HopByHop) {
  for (auto name : {"connection", "Keep-Alive", "proxy-authenticate",
                    "proxy-authorization", "TE", "trailer",
                    "Transfer-Encoding", "upgrade", "proxy-connection"})
    EXPECT_TRUE(net::is_hop_by_hop(name)) << name;
  EXPECT_FALSE(net::is_hop_by_hop("content-type"));
  EXPECT_TRUE(net::named_in_connection("x-hop-temp", "close, X-Hop-Temp"));
  EXPECT_TRUE(net::named_in_connection("upgrade", " Upgrade "));
  EXPECT_FALSE(net::named_in_connection("x-hop", "x-hop-temp"));
  EXPECT_FALSE(net::named_in_connection("x", ""));
}

TEST(ProxyHeaders, RequestFiltering) {
  net::header_list in = {
    {"host", "server:8080"},
    {"connection", "keep-alive, X-Hop-Temp"},
    {"keep-alive", "timeout=5"},
    {"upgrade", "h2c"},
    {"trailer", "x"},
    {"te", "trailers"},
    {"transfer-encoding", "chunked"},
    {"content-length", "10"},
    {"expect", "100-continue"},
    {"authorization", "Bearer x"},
    {"cookie", "a=b"},
    {"open-sandbox-api-key", "k"},
    {"x-hop-temp", "gone"},
    {"x-trace", "t1"},
    {"x-request-id", "client-rid"},
    {"opensandbox-secure-access", "client-token"},
    {"OPENSANDBOX-EGRESS-AUTH", "egress-token"},
    {"content-type", "application/json"},
  };
  net::forward_context ctx;
  ctx.remote_addr = "10.1.2.3";
  ctx.request_id = "generated";
  auto out = net::filter_request_headers(in, ctx);
  std::map<std::string, std::string> got;
  for (auto& [k, v] : out) {
    auto key = lower(k);
    EXPECT_EQ(got.count(key), 0u) << "duplicate " << k;
    got[key] = v;
  }
  // Credentials meant for this server never reach the sandbox.
  for (auto gone : {"host", "connection", "keep-alive", "upgrade", "trailer",
                    "te", "transfer-encoding", "content-length", "expect",
                    "authorization", "cookie", "open-sandbox-api-key",
                    "opensandbox-secure-access", "x-hop-temp"})
    EXPECT_EQ(got.count(gone), 0u) << gone;
  EXPECT_EQ(got["x-trace"], "t1");
  EXPECT_EQ(got["x-request-id"], "client-rid"); // the client's wins
  EXPECT_EQ(got["opensandbox-egress-auth"], "egress-token");
  EXPECT_EQ(got["content-type"], "application/json");
  EXPECT_EQ(got["x-forwarded-proto"], "http");
  EXPECT_EQ(got["x-forwarded-host"], "server:8080");
  EXPECT_EQ(got["x-forwarded-for"], "10.1.2.3");
}

TEST(ProxyHeaders, ForwardedFieldsOnlyWhenAbsent) {
  net::header_list in = {{"host", "h"},
                         {"x-forwarded-for", "1.1.1.1"},
                         {"X-Forwarded-Proto", "https"},
                         {"x-forwarded-host", "outer"}};
  net::forward_context ctx;
  ctx.remote_addr = "10.1.2.3";
  ctx.request_id = "rid-1";
  auto out = net::filter_request_headers(in, ctx);
  std::map<std::string, std::string> got;
  for (auto& [k, v] : out)
    got[lower(k)] = v;
  EXPECT_EQ(got["x-forwarded-for"], "1.1.1.1");
  EXPECT_EQ(got["x-forwarded-proto"], "https");
  EXPECT_EQ(got["x-forwarded-host"], "outer");
  EXPECT_EQ(got["x-request-id"], "rid-1"); // ours when the client sent none
  EXPECT_EQ(out.size(), 4u);
}

TEST(ProxyHeaders, WebSocketHandshake) {
  net::header_list in = {{"host", "h"},
                         {"connection", "Upgrade"},
                         {"upgrade", "WebSocket"},
                         {"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="},
                         {"sec-websocket-version", "13"},
                         {"sec-websocket-protocol", "claw.v1"},
                         {"origin", "http://app"},
                         {"authorization", "x"}};
  EXPECT_TRUE(net::wants_websocket(in));
  EXPECT_TRUE(net::is_websocket_handshake(in));
  net::forward_context ctx;
  ctx.websocket = true;
  auto out = net::filter_request_headers(in, ctx);
  std::map<std::string, std::string> got;
  for (auto& [k, v] : out)
    got[lower(k)] = v;
  EXPECT_EQ(got["connection"], "Upgrade");
  EXPECT_EQ(got["upgrade"], "websocket");
  EXPECT_EQ(got["sec-websocket-key"], "dGhlIHNhbXBsZSBub25jZQ==");
  EXPECT_EQ(got["sec-websocket-protocol"], "claw.v1");
  EXPECT_EQ(got["origin"], "http://app");
  EXPECT_EQ(got.count("authorization"), 0u);
  // Upgrade without a Connection token or key is no handshake.
  net::header_list half = {{"upgrade", "websocket"}};
  EXPECT_TRUE(net::wants_websocket(half));
  EXPECT_FALSE(net::is_websocket_handshake(half));
}

TEST(ProxyHeaders, ResponseFiltering) {
  net::header_list in = {{"Content-Type", "text/plain"},
                         {"Connection", "keep-alive, X-Hop"},
                         {"Keep-Alive", "timeout=5"},
                         {"Trailer", "X-T"},
                         {"Transfer-Encoding", "chunked"},
                         {"Content-Length", "3"},
                         {"X-Hop", "secret"},
                         {"Content-Encoding", "gzip"},
                         {"X-Backend", "yes"}};
  auto out = net::filter_response_headers(in);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].first, "Content-Type");
  EXPECT_EQ(out[1].first, "Content-Encoding");
  EXPECT_EQ(out[2].first, "X-Backend");
}

TEST(ProxyEndpoint, ResolveInternal) {
  node_config cfg;
  cfg.server.port = 8080;
  sandbox_view sbx;
  sbx.ports.http = 50001;
  sbx.ports.execd = 40109;
  cfg.docker.network_mode = "bridge";
  auto ep = net::resolve_internal(sbx, 8080, cfg);
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep.value->text(), "127.0.0.1:50001");
  ep = net::resolve_internal(sbx, 6000, cfg);
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep.value->port, 40109);
  EXPECT_EQ(ep.value->prefix, "/proxy/6000");
  EXPECT_EQ(ep.value->text(), "127.0.0.1:40109/proxy/6000");
  ep = net::resolve_internal(sbx, 44772, cfg);
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep.value->text(), "127.0.0.1:40109");
  ep = net::resolve_internal(sbx, 18080, cfg);
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep.value->text(), "127.0.0.1:40109/proxy/18080");
  sbx.ports.egress = 40200;
  ep = net::resolve_internal(sbx, 18080, cfg);
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep.value->text(), "127.0.0.1:40200");
  EXPECT_EQ(net::resolve_internal(sbx, 0, cfg).error.code, "DOCKER::INVALID_PORT");
  EXPECT_EQ(net::resolve_internal(sbx, 65536, cfg).error.code,
            "DOCKER::INVALID_PORT");
  sandbox_view bare;
  EXPECT_EQ(net::resolve_internal(bare, 8080, cfg).error.code,
            "DOCKER::NETWORK_MODE_ENDPOINT_UNAVAILABLE");
  EXPECT_EQ(net::resolve_internal(bare, 6000, cfg).error.code,
            "DOCKER::NETWORK_MODE_ENDPOINT_UNAVAILABLE");
  cfg.docker.network_mode = "host";
  ep = net::resolve_internal(bare, 6000, cfg);
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep.value->text(), "127.0.0.1:6000");
  // The server's own port would loop.
  EXPECT_EQ(net::resolve_internal(bare, 8080, cfg).error.code,
            "DOCKER::INVALID_PORT");
  // Behind an egress sidecar even a host-mode sandbox has published ports.
  sbx.egress_token = "tok";
  ep = net::resolve_internal(sbx, 6000, cfg);
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep.value->text(), "127.0.0.1:40109/proxy/6000");
}

TEST(ProxyEndpoint, LocalAddressForPublishedPorts) {
  node_config cfg;
  cfg.docker.network_mode = "bridge";
  sandbox_view sbx;
  sbx.id = "s1";
  sbx.ports.http = 50001;
  sbx.ports.execd = 40109;
  // Ports published here are reached at the given local address (Docker's
  // NAT instead of docker-proxy), with the same ports and prefixes.
  auto ep = net::resolve_internal(sbx, 8080, cfg, "10.0.0.1", "192.0.2.2");
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep.value->text(), "192.0.2.2:50001");
  ep = net::resolve_internal(sbx, 6000, cfg, "10.0.0.1", "192.0.2.2");
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep.value->text(), "192.0.2.2:40109/proxy/6000");
  sbx.egress_token = "tok";
  ep = net::resolve_internal(sbx, 44772, cfg, "10.0.0.1", "192.0.2.2");
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep.value->text(), "192.0.2.2:40109");
  // Published on another machine: that machine's address.
  sbx.endpoint_host = "10.0.0.9";
  ep = net::resolve_internal(sbx, 8080, cfg, "10.0.0.1", "192.0.2.2");
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep.value->text(), "10.0.0.9:50001");
  // Host mode: the port on loopback (an app may listen there only).
  cfg.docker.network_mode = "host";
  sandbox_view bare;
  ep = net::resolve_internal(bare, 6000, cfg, "10.0.0.1", "192.0.2.2");
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep.value->text(), "127.0.0.1:6000");
}

TEST(ProxyEndpoint, ProxyAddressDetection) {
  node_config cfg;
  cfg.docker.proxy_host = "127.0.0.1";
  EXPECT_EQ(net::detect_proxy_address(cfg), "127.0.0.1");
  cfg.docker.proxy_host = "auto";
  auto ip = net::detect_proxy_address(cfg);
  // Some IPv4 address of this machine; loopback only when it has no other.
  in_addr buf;
  EXPECT_EQ(::inet_pton(AF_INET, ip.c_str(), &buf), 1) << ip;
  if (!net::outward_ipv4().empty())
    EXPECT_EQ(ip, net::outward_ipv4());
}

TEST(ProxyEndpoint, WithoutDockerHereTheGatewayPublishesThePorts) {
  // /proc/net/route of a container on a compose network: default route via
  // 172.18.0.1 (hex, network byte order).
  const std::string routes
    = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
      "eth0\t00000000\t010012AC\t0003\t0\t0\t0\t00000000\n"
      "eth0\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\n";
  EXPECT_EQ(net::default_gateway(routes), "172.18.0.1");
  node_config cfg;
  cfg.docker.proxy_host = "auto";
  // A server in a container of its own network: no docker0 here.
  auto in = net::detect_proxy_address(cfg, false, routes);
  EXPECT_EQ(in.host, "172.18.0.1");
  EXPECT_FALSE(in.local); // not ours: nothing is bound to it
  // Docker runs here (also when this machine is itself a container).
  auto here = net::detect_proxy_address(cfg, true, routes);
  EXPECT_TRUE(here.local);
  EXPECT_EQ(here.host, net::detect_proxy_address(cfg));
  cfg.docker.proxy_host = "10.1.2.3";
  EXPECT_EQ(net::detect_proxy_address(cfg, true, routes).host, "10.1.2.3");
  EXPECT_FALSE(net::detect_proxy_address(cfg, true, routes).local);
  EXPECT_EQ(net::default_gateway("Iface\tDestination\n"), "");
}

TEST(ProxyEndpoint, OtherMachines) {
  node_config cfg;
  cfg.docker.network_mode = "bridge";
  sandbox_view sbx;
  sbx.id = "s1";
  sbx.ports.http = 50001;
  sbx.ports.execd = 40109;
  // Published here: our own public host, loopback, or unset.
  for (auto here : {"", "10.0.0.1", "127.0.0.1", "localhost"}) {
    sbx.endpoint_host = here;
    auto ep = net::resolve_internal(sbx, 6000, cfg, "10.0.0.1");
    ASSERT_TRUE(ep.has_value()) << here;
    EXPECT_EQ(ep.value->text(), "127.0.0.1:40109/proxy/6000") << here;
  }
  // Published on another machine: its numeric address from the record.
  sbx.endpoint_host = "10.0.0.9";
  auto ep = net::resolve_internal(sbx, 8080, cfg, "10.0.0.1");
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep.value->text(), "10.0.0.9:50001");
  sbx.endpoint_host = "fd00::9";
  ep = net::resolve_internal(sbx, 6000, cfg, "10.0.0.1");
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep.value->text(), "[fd00::9]:40109/proxy/6000");
  // Host mode on another node: the port itself, no loop check there.
  cfg.docker.network_mode = "host";
  cfg.server.port = 8080;
  sbx.endpoint_host = "10.0.0.9";
  ep = net::resolve_internal(sbx, 8080, cfg, "10.0.0.1");
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep.value->text(), "10.0.0.9:8080");
  // Never a name.
  sbx.endpoint_host = "node2.example.com";
  auto bad = net::resolve_internal(sbx, 6000, cfg, "10.0.0.1");
  EXPECT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error.code, "DOCKER::NETWORK_MODE_ENDPOINT_UNAVAILABLE");
}

TEST(ProxyRouter, Routes) {
  auto r = match_route("HEAD", "/sandboxes/sbx/proxy/80/x");
  EXPECT_EQ(r.id, route_id::proxy);
  r = match_route("OPTIONS", "/v1/sandboxes/sbx/proxy/80");
  EXPECT_EQ(r.id, route_id::proxy);
  r = match_route("GET", "/route/sbx/5000/a/b");
  EXPECT_EQ(r.id, route_id::proxy);
  EXPECT_EQ(r.sandbox_id, "sbx");
  EXPECT_EQ(r.param, "5000");
  EXPECT_EQ(r.rest, "a/b");
  r = match_route("POST", "/v1/route/sbx/5000");
  EXPECT_EQ(r.id, route_id::proxy);
  r = match_route("TRACE", "/route/sbx/5000/a");
  EXPECT_EQ(r.id, route_id::method_not_allowed);
  EXPECT_EQ(r.sandbox_id, "sbx");
  EXPECT_TRUE(auth_exempt("/route/sbx/5000/a"));
  EXPECT_TRUE(auth_exempt("/v1/route/sbx/5000"));
  EXPECT_FALSE(auth_exempt("/route/sbx/50x0/a"));
  EXPECT_FALSE(auth_exempt("/route/sbx/5000/../x"));
  EXPECT_FALSE(auth_exempt("/route//5000"));
}

// -- the API handler -------------------------------------------------------------

std::string field(const std::vector<std::pair<std::string, std::string>>& xs,
                  std::string_view name) {
  for (const auto& [k, v] : xs)
    if (lower(k) == lower(name))
      return v;
  return {};
}

class ProxyApi : public testing::Test {
protected:
  ProxyApi() {
    cfg = std::make_shared<node_config>();
    cfg->server.host = "127.0.0.1";
    cfg->server.api_key = "key";
    cfg->docker.network_mode = "bridge";
    cfg->docker.proxy_host = "127.0.0.1";
    backend = std::make_shared<lookup_backend>();
    sandbox_view x;
    x.id = "sbx-1";
    x.ports.http = 50001;
    x.ports.execd = 40109;
    backend->sandboxes[x.id] = x;
    api = make_api_handler(cfg, backend);
  }

  /// A request with the API key (most tests are about forwarding).
  response call(std::string method, std::string target,
                std::vector<std::pair<std::string, std::string>> headers
                = {}) {
    headers.emplace_back("open-sandbox-api-key", "key");
    return call_as(std::move(method), std::move(target), std::move(headers));
  }

  /// A request with exactly these headers (plus Host).
  response call_as(std::string method, std::string target,
                   std::vector<std::pair<std::string, std::string>> headers
                   = {}) {
    request req;
    req.method = std::move(method);
    req.target = target;
    auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos)
      req.query = target.substr(q + 1);
    req.headers = std::move(headers);
    req.headers.emplace_back("host", "server:8080");
    req.remote_addr = "10.0.0.9";
    req.streamed = true;
    std::optional<response> out;
    api(std::move(req), [&](response res) { out = std::move(res); });
    EXPECT_TRUE(out.has_value());
    return out ? *out : response{};
  }

  std::shared_ptr<node_config> cfg;
  std::shared_ptr<lookup_backend> backend;
  handler api;
};

TEST_F(ProxyApi, ForwardTargets) {
  auto res = call("POST", "/v1/sandboxes/sbx-1/proxy/44772/api/run?q=search");
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(res.forward->host, "127.0.0.1");
  EXPECT_EQ(res.forward->port, 40109);
  EXPECT_EQ(res.forward->target, "/api/run?q=search");
  res = call("GET", "/sandboxes/sbx-1/proxy/6000");
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(res.forward->port, 40109);
  EXPECT_EQ(res.forward->target, "/proxy/6000/");
  res = call("GET", "/sandboxes/sbx-1/proxy/8080//x/?path=%2Fworkspace");
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(res.forward->port, 50001);
  EXPECT_EQ(res.forward->target, "/x/?path=%2Fworkspace");
  res = call("DELETE", "/route/sbx-1/6000/files%2Fa");
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(res.forward->target, "/proxy/6000/files%2Fa");
  res = call("HEAD", "/v1/route/sbx-1/8080/");
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(res.forward->target, "/");
}

TEST_F(ProxyApi, ForwardsToTheConfiguredLocalAddress) {
  cfg->docker.proxy_host = "192.0.2.7";
  api = make_api_handler(cfg, backend);
  auto res = call("GET", "/sandboxes/sbx-1/proxy/8080/x");
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(res.forward->host, "192.0.2.7");
  EXPECT_EQ(res.forward->port, 50001);
  // Not an address of this machine: nothing to bind to.
  EXPECT_FALSE(res.forward->bind_source);
  cfg->docker.proxy_host = "127.0.0.1";
  api = make_api_handler(cfg, backend);
  res = call("GET", "/sandboxes/sbx-1/proxy/8080/x");
  ASSERT_TRUE(res.forward);
  EXPECT_FALSE(res.forward->bind_source);
  // A local address is bound first: if it stops being local, no other
  // machine is reached.
  if (auto ip = net::outward_ipv4(); !ip.empty()) {
    cfg->docker.proxy_host = ip;
    api = make_api_handler(cfg, backend);
    res = call("GET", "/sandboxes/sbx-1/proxy/8080/x");
    ASSERT_TRUE(res.forward);
    EXPECT_TRUE(res.forward->bind_source);
  }
}

TEST_F(ProxyApi, ForwardHeaders) {
  auto res = call("GET", "/sandboxes/sbx-1/proxy/8080/x",
                  {{"authorization", "Bearer a"},
                   {"open-sandbox-api-key", "key"},
                   {"x-trace", "t"},
                   {"x-request-id", "rid-77"},
                   {"origin", "http://app"}});
  ASSERT_TRUE(res.forward);
  auto& fwd = *res.forward;
  EXPECT_EQ(field(fwd.headers, "authorization"), "");
  EXPECT_EQ(field(fwd.headers, "open-sandbox-api-key"), "");
  EXPECT_EQ(field(fwd.headers, "host"), "");
  EXPECT_EQ(field(fwd.headers, "x-trace"), "t");
  EXPECT_EQ(field(fwd.headers, "x-request-id"), "rid-77");
  EXPECT_EQ(field(fwd.headers, "x-forwarded-for"), "10.0.0.9");
  EXPECT_EQ(field(fwd.headers, "x-forwarded-host"), "server:8080");
  // The response carries the request id and CORS, like every answer.
  EXPECT_EQ(field(fwd.response_headers, "x-request-id"), "rid-77");
  EXPECT_EQ(field(fwd.response_headers, "access-control-allow-origin"), "*");
  EXPECT_EQ(fwd.request_id, "rid-77");
  EXPECT_EQ(fwd.sandbox_id, "sbx-1");
  EXPECT_FALSE(fwd.upgrade);
}

TEST_F(ProxyApi, ErrorEnvelopes) {
  auto res = call("GET", "/sandboxes/sbx-1/proxy/6000/x");
  ASSERT_TRUE(res.forward);
  ASSERT_TRUE(res.forward->on_error);
  auto err = res.forward->on_error(forward_error::connect,
                                   "Connection refused");
  EXPECT_EQ(err.status, 502);
  EXPECT_EQ(err.body, R"({"code":"GENERAL::UNKNOWN_ERROR","message":"Could )"
                      R"(not connect to the backend sandbox )"
                      R"(127.0.0.1:40109/proxy/6000: Connection refused"})");
  EXPECT_FALSE(field(err.headers, "x-request-id").empty());
  err = res.forward->on_error(forward_error::other, "end of stream");
  EXPECT_EQ(err.status, 500);
  EXPECT_EQ(err.body, R"({"code":"GENERAL::UNKNOWN_ERROR","message":"An )"
                      R"(internal error occurred in the proxy: end of stream"})");
}

TEST_F(ProxyApi, Rejections) {
  auto res = call("GET", "/sandboxes/nope/proxy/8080/x");
  EXPECT_FALSE(res.forward);
  EXPECT_EQ(res.status, 404);
  EXPECT_NE(res.body.find("DOCKER::SANDBOX_NOT_FOUND"), std::string::npos);
  res = call("GET", "/sandboxes/sbx-1/proxy/99999/x");
  EXPECT_EQ(res.status, 400);
  EXPECT_NE(res.body.find("DOCKER::INVALID_PORT"), std::string::npos);
  res = call("GET", "/sandboxes/sbx-1/proxy/http/x",
             {{"open-sandbox-api-key", "key"}});
  EXPECT_EQ(res.status, 422);
  int gets = backend->num_gets;
  for (auto bad : {"/sandboxes/sbx-1/proxy/6000/../44773/x",
                   "/sandboxes/sbx-1/proxy/6000/%2e%2e/%2e%2e/files",
                   "/sandboxes/sbx-1/proxy/6000/a/..%2f..%2fx",
                   "/sandboxes/sbx-1/proxy/6000/%252e%252e/x",
                   "/route/sbx-1/6000/..%5c..%5cx"}) {
    res = call("GET", bad, {{"open-sandbox-api-key", "key"}});
    EXPECT_FALSE(res.forward) << bad;
    EXPECT_EQ(res.status, 400) << bad;
  }
  EXPECT_EQ(backend->num_gets, gets); // rejected before any lookup
  // Upgrade: websocket that is no handshake → the original's 400.
  res = call("POST", "/sandboxes/sbx-1/proxy/6000/x",
             {{"upgrade", "WebSocket"}, {"connection", "upgrade"}});
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(res.body, R"({"code":"GENERAL::UNKNOWN_ERROR","message":)"
                      R"("Websocket upgrade is not supported yet"})");
  res = call("GET", "/sandboxes/sbx-1/proxy/6000/x",
             {{"upgrade", "websocket"},
              {"connection", "Upgrade"},
              {"sec-websocket-key", "k"},
              {"sec-websocket-version", "13"}});
  ASSERT_TRUE(res.forward);
  EXPECT_TRUE(res.forward->upgrade);
}

TEST_F(ProxyApi, LookupsAreCachedBriefly) {
  EXPECT_TRUE(call("GET", "/sandboxes/sbx-1/proxy/8080/a").forward);
  EXPECT_TRUE(call("GET", "/sandboxes/sbx-1/proxy/6000/b").forward);
  EXPECT_EQ(backend->num_gets, 1);
  // Unknown sandboxes are not cached.
  EXPECT_EQ(call("GET", "/sandboxes/nope/proxy/8080/a").status, 404);
  EXPECT_EQ(call("GET", "/sandboxes/nope/proxy/8080/a").status, 404);
  EXPECT_EQ(backend->num_gets, 3);
  // A DELETE through the API drops the entry (even when it fails).
  call("DELETE", "/v1/sandboxes/sbx-1", {{"open-sandbox-api-key", "key"}});
  EXPECT_TRUE(call("GET", "/sandboxes/sbx-1/proxy/8080/a").forward);
  EXPECT_EQ(backend->num_gets, 4);
  // So does a pause: the next request sees the Paused state.
  EXPECT_EQ(call("POST", "/v1/sandboxes/sbx-1/pause",
                 {{"open-sandbox-api-key", "key"}})
              .status,
            202);
  EXPECT_TRUE(call("GET", "/sandboxes/sbx-1/proxy/8080/a").forward);
  EXPECT_EQ(backend->num_gets, 5);
}

TEST(ProxyCache, KeepsWhatResolutionAndRenewalsNeed) {
  proxy_cache cache{std::chrono::seconds(10)};
  sandbox_view x;
  x.id = "a";
  x.state = sandbox_state::running;
  x.expires_us = 42;
  x.renew_extend_s = 300;
  cache.put(x);
  auto hit = cache.find("a");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->state, sandbox_state::running);
  EXPECT_EQ(hit->expires_us, 42);
  EXPECT_EQ(hit->renew_extend_s, 300);
}

TEST(ProxyCache, Expires) {
  proxy_cache cache{std::chrono::milliseconds(30), 2};
  sandbox_view x;
  x.id = "a";
  x.ports.execd = 4000;
  x.metadata["big"] = "not kept";
  cache.put(x);
  auto hit = cache.find("a");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->ports.execd, 4000);
  EXPECT_TRUE(hit->metadata.empty());
  EXPECT_FALSE(cache.find("b"));
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  EXPECT_FALSE(cache.find("a"));
  cache.put(x);
  cache.erase("a");
  EXPECT_FALSE(cache.find("a"));
}

TEST_F(ProxyApi, WithoutCredentialsNothingIsForwardedOrRevealed) {
  // Known and unknown sandboxes get the same answer, without a lookup.
  auto known = call_as("GET", "/sandboxes/sbx-1/proxy/8080/x");
  auto unknown = call_as("GET", "/sandboxes/nope/proxy/8080/x");
  EXPECT_FALSE(known.forward);
  EXPECT_EQ(known.status, 401);
  EXPECT_EQ(known.body, unknown.body);
  EXPECT_EQ(unknown.status, 401);
  EXPECT_NE(known.body.find("SANDBOX::UNAUTHORIZED"), std::string::npos);
  EXPECT_EQ(call_as("GET", "/route/sbx-1/8080/x").status, 401);
  EXPECT_EQ(backend->num_gets, 0);
  // A wrong API key is refused like the API refuses it.
  auto res = call_as("GET", "/sandboxes/sbx-1/proxy/8080/x",
                     {{"open-sandbox-api-key", "wrong"}});
  EXPECT_EQ(res.status, 401);
  EXPECT_NE(res.body.find("INVALID_API_KEY"), std::string::npos);
  // Traversal is not a proxy path at all (the API's own check).
  EXPECT_EQ(call_as("GET", "/sandboxes/sbx-1/proxy/8080/../x").status, 401);
}

TEST_F(ProxyApi, TheSandboxTokenOpensItsOwnSandboxOnly) {
  backend->sandboxes["sbx-1"].access_token = "tok-1";
  sandbox_view other;
  other.id = "sbx-2";
  other.ports.execd = 40110;
  other.access_token = "tok-2";
  backend->sandboxes[other.id] = other;
  auto res = call_as("GET", "/sandboxes/sbx-1/proxy/44772/command",
                     {{"opensandbox-secure-access", "tok-1"}});
  ASSERT_TRUE(res.forward);
  // execd gets its token; the proxy's credential stays here.
  EXPECT_EQ(field(res.forward->headers, "x-execd-access-token"), "tok-1");
  EXPECT_EQ(field(res.forward->headers, "opensandbox-secure-access"), "");
  // Through execd's /proxy too, but not to 8080 (the user's app).
  res = call_as("GET", "/sandboxes/sbx-1/proxy/6000/x",
                {{"opensandbox-secure-access", "tok-1"}});
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(field(res.forward->headers, "x-execd-access-token"), "tok-1");
  res = call_as("GET", "/sandboxes/sbx-1/proxy/8080/x",
                {{"opensandbox-secure-access", "tok-1"}});
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(field(res.forward->headers, "x-execd-access-token"), "");
  // Another sandbox's token, a wrong one, an empty one, and any token for
  // an unknown sandbox: one answer.
  auto wrong = call_as("GET", "/sandboxes/sbx-1/proxy/44772/command",
                       {{"opensandbox-secure-access", "tok-2"}});
  EXPECT_FALSE(wrong.forward);
  EXPECT_EQ(wrong.status, 401);
  for (auto [id, tok] : {std::pair{"sbx-1", ""}, std::pair{"sbx-1", "x"},
                         std::pair{"nope", "tok-1"}}) {
    res = call_as("GET", std::string{"/sandboxes/"} + id + "/proxy/44772/c",
                  {{"opensandbox-secure-access", tok}});
    EXPECT_EQ(res.status, 401) << id << " " << tok;
    EXPECT_EQ(res.body, wrong.body) << id << " " << tok;
  }
  // The API key opens every sandbox; execd gets the sandbox's token.
  res = call("GET", "/sandboxes/sbx-2/proxy/44772/command");
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(field(res.forward->headers, "x-execd-access-token"), "tok-2");
}

TEST_F(ProxyApi, WithoutAnApiKeyTheProxyIsOpenButExecdIsNot) {
  cfg->server.api_key.clear();
  api = make_api_handler(cfg, backend);
  backend->sandboxes["sbx-1"].access_token = "tok-1";
  auto res = call_as("GET", "/sandboxes/sbx-1/proxy/44772/command");
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(field(res.forward->headers, "x-execd-access-token"), "");
  // The token, when sent, is still checked and then adds execd's.
  res = call_as("GET", "/sandboxes/sbx-1/proxy/44772/command",
                {{"opensandbox-secure-access", "tok-1"}});
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(field(res.forward->headers, "x-execd-access-token"), "tok-1");
  EXPECT_EQ(call_as("GET", "/sandboxes/sbx-1/proxy/44772/command",
                    {{"opensandbox-secure-access", "nope"}})
              .status,
            401);
}

TEST_F(ProxyApi, SignedUrlsGrantOnePortUntilTheyExpire) {
  cfg->ingress.secure_access.active_key = 'b';
  cfg->ingress.secure_access.keys = {{'a', "old-secret"}, {'b', "secret"}};
  api = make_api_handler(cfg, backend);
  backend->sandboxes["sbx-1"].access_token = "tok-1";
  auto later = static_cast<uint64_t>(std::time(nullptr)) + 3600;
  auto token = net::mint_route_token(cfg->ingress.secure_access, "sbx-1",
                                     44772, later);
  auto res = call_as("GET", "/signed/" + token + "/files/info?path=%2Fa");
  ASSERT_TRUE(res.forward) << res.body;
  EXPECT_EQ(res.forward->port, 40109);
  EXPECT_EQ(res.forward->target, "/files/info?path=%2Fa");
  EXPECT_EQ(field(res.forward->headers, "x-execd-access-token"), "tok-1");
  EXPECT_EQ(res.forward->sandbox_id, "sbx-1");
  // Under /v1 and for WebSocket handshakes too (browsers set no headers).
  res = call_as("GET", "/v1/signed/" + token + "/pty/1/ws",
                {{"upgrade", "websocket"},
                 {"connection", "Upgrade"},
                 {"sec-websocket-key", "k"},
                 {"sec-websocket-version", "13"}});
  ASSERT_TRUE(res.forward);
  EXPECT_TRUE(res.forward->upgrade);
  // A key that is still configured keeps its URLs working.
  auto old = cfg->ingress.secure_access;
  old.active_key = 'a';
  res = call_as("GET", "/signed/"
                         + net::mint_route_token(old, "sbx-1", 8080, later));
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(res.forward->port, 50001);
  // Expired, tampered (other port, other sandbox), unknown key: 401.
  auto expired = net::mint_route_token(cfg->ingress.secure_access, "sbx-1",
                                       44772, 1000);
  res = call_as("GET", "/signed/" + expired + "/x");
  EXPECT_EQ(res.status, 401);
  EXPECT_NE(res.body.find("expired"), std::string::npos);
  auto t = *net::parse_route_token(token);
  for (auto bad : {"sbx-1-8080-" + t.expires_b36 + "-" + t.signature,
                   "sbx-2-44772-" + t.expires_b36 + "-" + t.signature,
                   token.substr(0, token.size() - 1) + "z"}) {
    res = call_as("GET", "/signed/" + bad + "/x");
    EXPECT_FALSE(res.forward) << bad;
    EXPECT_EQ(res.status, 401) << bad;
  }
  // Malformed: 400.
  for (auto bad : {"sbx-1", "sbx-1-44772-x2qxvk-zz", "sbx-1-0-x2qxvk-0123abcdb"})
    EXPECT_EQ(call_as("GET", std::string{"/signed/"} + bad + "/x").status, 400)
      << bad;
  // Without configured keys no signed URL is valid.
  cfg->ingress.secure_access = {};
  api = make_api_handler(cfg, backend);
  EXPECT_EQ(call_as("GET", "/signed/" + token + "/x").status, 401);
}

// -- the streaming server end to end ---------------------------------------------

/// The real API handler over the real server, host network mode (the
/// proxied port is the port in the URL), with a test upstream.
class ProxyServer : public testing::Test {
protected:
  ProxyServer() {
    cfg = std::make_shared<node_config>();
    cfg->server.host = "127.0.0.1";
    cfg->server.port = 1; // not a port the tests proxy to
    cfg->docker.network_mode = "host";
    backend = std::make_shared<lookup_backend>();
    sandbox_view x;
    x.id = "sbx-1";
    backend->sandboxes[x.id] = x;
    server_options opts;
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.threads = 2;
    // Far below the bodies streamed here: proxied bodies have no limit.
    opts.body_limit = 1024 * 1024;
    auto srv = server::start(opts, make_api_handler(cfg, backend));
    EXPECT_TRUE(srv.has_value());
    if (srv.has_value())
      server_ = std::move(*srv);
  }

  uint16_t port() const {
    return server_ ? server_->port() : 0;
  }

  std::string proxy_target(const std::string& rest) const {
    return "/sandboxes/sbx-1/proxy/" + std::to_string(upstream.port()) + rest;
  }

  static std::string get(const std::string& target,
                         const std::string& extra = {}) {
    return "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra
           + "\r\n";
  }

  std::shared_ptr<node_config> cfg;
  std::shared_ptr<lookup_backend> backend;
  test_backend upstream;
  std::unique_ptr<server> server_;
};

TEST_F(ProxyServer, ForwardsAndKeepsConnectionsAlive) {
  stream_client c{port()};
  ASSERT_TRUE(c.connected());
  c.send(get(proxy_target("/headers?x=1"),
             "Authorization: Bearer secret\r\nCookie: a=b\r\n"
             "X-Trace: t1\r\nX-Request-ID: rid-1\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r.complete);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["x-backend"], "yes");
  EXPECT_EQ(r.headers["x-request-id"], "rid-1");
  EXPECT_EQ(r.headers["server"], "test-backend");
  EXPECT_NE(r.body.find("GET /headers?x=1\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("x-trace: t1\n"), std::string::npos);
  EXPECT_NE(r.body.find("x-request-id: rid-1\n"), std::string::npos);
  EXPECT_NE(r.body.find("x-forwarded-for: 127.0.0.1\n"), std::string::npos);
  EXPECT_NE(r.body.find("x-forwarded-host: localhost\n"), std::string::npos);
  EXPECT_NE(r.body.find("host: 127.0.0.1:" + std::to_string(upstream.port())),
            std::string::npos);
  EXPECT_EQ(r.body.find("authorization"), std::string::npos);
  EXPECT_EQ(r.body.find("cookie"), std::string::npos);
  // Same client connection, same upstream connection.
  for (int i = 0; i < 3; ++i) {
    c.send(get(proxy_target("/status/201")));
    r = c.read_response();
    EXPECT_EQ(r.status, 201);
    EXPECT_EQ(r.body, "status 201");
  }
  EXPECT_EQ(upstream.connections(), 1);
  // A plain API request on the same connection still works.
  c.send(get("/health"));
  r = c.read_response();
  EXPECT_EQ(r.status, 200);
}

TEST_F(ProxyServer, StreamsBodiesBothWays) {
  // Upload with Content-Length, then chunked, then a download.
  std::string body(5 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < body.size(); ++i)
    body[i] = test::pattern_byte(i * 3);
  test::fnv1a h;
  h.add(body.data(), body.size());
  auto expected = "bytes=" + std::to_string(body.size()) + " hash=" + h.hex();
  stream_client c{port()};
  c.send("POST " + proxy_target("/upload")
         + " HTTP/1.1\r\nHost: x\r\nContent-Length: "
         + std::to_string(body.size()) + "\r\n\r\n");
  c.send(body);
  auto r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, expected);
  std::string chunked;
  for (size_t off = 0; off < body.size(); off += 100000) {
    auto n = std::min<size_t>(100000, body.size() - off);
    char size[20];
    std::snprintf(size, sizeof(size), "%zx\r\n", n);
    chunked += size;
    chunked.append(body, off, n);
    chunked += "\r\n";
  }
  chunked += "0\r\n\r\n";
  c.send("PUT " + proxy_target("/upload")
         + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  c.send(chunked);
  r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, expected);
  c.send(get(proxy_target("/download?n=3000001")));
  r = c.read_response();
  ASSERT_EQ(r.body.size(), 3000001u);
  EXPECT_EQ(r.headers["content-length"], "3000001");
  bool same = true;
  for (size_t i = 0; i < r.body.size() && same; ++i)
    same = r.body[i] == test::pattern_byte(i);
  EXPECT_TRUE(same);
  // Buffered API requests keep the limit.
  stream_client d{port()};
  d.send("POST /v1/sandboxes HTTP/1.1\r\nHost: x\r\nContent-Length: "
         + std::to_string(2 * 1024 * 1024) + "\r\n\r\n");
  r = d.read_response();
  EXPECT_EQ(r.status, 413);
  stream_client e{port()};
  e.send("POST /v1/sandboxes HTTP/1.1\r\nHost: x\r\n"
         "Transfer-Encoding: chunked\r\n\r\n");
  std::string big_chunk(600 * 1024, 'x');
  e.send("96000\r\n" + big_chunk + "\r\n");
  e.send("96000\r\n" + big_chunk + "\r\n");
  r = e.read_response();
  EXPECT_EQ(r.status, 413);
}

TEST_F(ProxyServer, StaleUpstreamConnectionsAreReplaced) {
  stream_client c{port()};
  for (int i = 0; i < 3; ++i) {
    // The upstream drops the kept connection right after answering; the
    // next request (without body: retried; with body: peeked) still works.
    c.send(get(proxy_target("/then-close")));
    auto r = c.read_response();
    ASSERT_EQ(r.status, 200) << i;
    EXPECT_EQ(r.body, "closing");
    c.send(get(proxy_target("/status/200")));
    r = c.read_response();
    EXPECT_EQ(r.status, 200) << i;
    c.send(get(proxy_target("/then-close")));
    r = c.read_response();
    ASSERT_EQ(r.status, 200) << i;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    c.send("POST " + proxy_target("/upload")
           + " HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    r = c.read_response();
    EXPECT_EQ(r.status, 200) << i;
    EXPECT_EQ(r.body.substr(0, 8), "bytes=3 ");
  }
}

TEST_F(ProxyServer, ExpectContinue) {
  stream_client c{port()};
  c.send("POST " + proxy_target("/upload")
         + " HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
           "Content-Length: 5\r\n\r\n");
  ASSERT_TRUE(c.read_until("HTTP/1.1 100 Continue\r\n\r\n"));
  c.buf.erase(0, c.buf.find("\r\n\r\n") + 4);
  c.send("hello");
  auto r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.substr(0, 8), "bytes=5 ");
}

TEST_F(ProxyServer, ChunkedAndEofDelimitedResponses) {
  stream_client c{port()};
  c.send(get(proxy_target("/chunked")));
  auto r = c.read_response();
  EXPECT_EQ(r.headers["transfer-encoding"], "chunked");
  EXPECT_EQ(r.body, "alphabetagamma");
  // An HTTP/1.0 upstream ends its body with EOF; the client gets chunks and
  // keeps its connection.
  c.send(get(proxy_target("/eof")));
  r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["transfer-encoding"], "chunked");
  EXPECT_EQ(r.body, "until-eof");
  c.send(get(proxy_target("/gzip")));
  r = c.read_response();
  EXPECT_EQ(r.headers["content-encoding"], "gzip");
  EXPECT_EQ(r.body, std::string("\x1f\x8b\x08\x00", 4));
  c.send(get(proxy_target("/hop")));
  r = c.read_response();
  EXPECT_EQ(r.body, "hop");
  EXPECT_EQ(r.headers.count("x-hop"), 0u);
  EXPECT_EQ(r.headers.count("keep-alive"), 0u);
  EXPECT_EQ(r.headers.count("trailer"), 0u);
  EXPECT_EQ(r.headers["x-kept"], "yes");
  c.send(get(proxy_target("/status/503")));
  r = c.read_response();
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "status 503");
}

TEST_F(ProxyServer, HeadRequests) {
  stream_client c{port()};
  c.send("HEAD " + proxy_target("/download?n=12345")
         + " HTTP/1.1\r\nHost: x\r\n\r\n");
  auto r = c.read_response(true);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-length"], "12345");
  c.send(get(proxy_target("/status/200")));
  r = c.read_response();
  EXPECT_EQ(r.body, "status 200");
}

TEST_F(ProxyServer, ServerSentEventsArriveAsSent) {
  stream_client c{port()};
  auto start = std::chrono::steady_clock::now();
  c.send(get(proxy_target("/sse?n=4&ms=300")));
  std::vector<double> at;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(c.read_until("data: " + std::to_string(i) + "\n\n"));
    at.push_back(std::chrono::duration<double, std::milli>(
                   std::chrono::steady_clock::now() - start)
                   .count());
  }
  EXPECT_NE(c.buf.find("text/event-stream"), std::string::npos);
  // The first event is there long before the upstream finishes (~1200 ms).
  EXPECT_LT(at[0], 250.0);
  EXPECT_GT(at[3] - at[0], 700.0);
}

TEST_F(ProxyServer, WebSocketTunnel) {
  stream_client c{port()};
  c.send(get(proxy_target("/ws"),
             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n"));
  auto r = c.read_response();
  ASSERT_EQ(r.status, 101);
  EXPECT_EQ(r.headers["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(r.headers["x-backend"], "ws");
  c.send(test::ws_frame(1, "hello through the proxy"));
  int op = 0;
  std::string payload;
  ASSERT_TRUE(test::ws_read_message(c, op, payload));
  EXPECT_EQ(op, 1);
  EXPECT_EQ(payload, "hello through the proxy");
  std::string big(200000, 'b');
  big[1234] = 'x';
  c.send(test::ws_frame(2, big));
  ASSERT_TRUE(test::ws_read_message(c, op, payload));
  EXPECT_EQ(op, 2);
  EXPECT_EQ(payload.size(), big.size());
  EXPECT_TRUE(payload == big);
  c.send(test::ws_frame(8, std::string("\x03\xe8", 2)));
  ASSERT_TRUE(test::ws_read_message(c, op, payload));
  EXPECT_EQ(op, 8);
  EXPECT_EQ(payload.substr(0, 2), std::string("\x03\xe8", 2));
}

TEST(ProxyServerAddress, AnAddressNoLongerLocalIsRefused) {
  // A forward bound to an address this machine no longer has (as after a
  // DHCP change) fails at once instead of leaving the machine.
  auto spec = std::make_shared<forward_spec>();
  spec->host = "192.0.2.7";
  spec->port = 9;
  spec->target = "/";
  spec->bind_source = true;
  spec->on_error = [](forward_error, const std::string& detail) {
    response res;
    res.status = 502;
    res.body = detail;
    return res;
  };
  server_options opts;
  opts.host = "127.0.0.1";
  opts.port = 0;
  auto srv = server::start(opts, [spec](request&&, responder respond) {
    response res;
    res.forward = spec;
    respond(std::move(res));
  });
  ASSERT_TRUE(srv.has_value());
  stream_client c{(*srv)->port()};
  c.send("GET /sandboxes/sbx-1/proxy/9/ HTTP/1.1\r\nHost: x\r\n\r\n");
  auto r = c.read_response();
  EXPECT_EQ(r.status, 502);
  EXPECT_NE(r.body.find("is no longer an address of this machine"),
            std::string::npos)
    << r.status << " " << r.body;
}

TEST_F(ProxyServer, Errors) {
  stream_client c{port()};
  // Nobody listens on a stopped upstream's port.
  test_backend gone;
  auto gone_port = gone.port();
  gone.stop();
  c.send(get("/sandboxes/sbx-1/proxy/" + std::to_string(gone_port) + "/x"));
  auto r = c.read_response();
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(r.body, R"({"code":"GENERAL::UNKNOWN_ERROR","message":"Could not )"
                    R"(connect to the backend sandbox 127.0.0.1:)"
                      + std::to_string(gone_port)
                      + R"(: Connection refused"})");
  EXPECT_FALSE(r.headers["x-request-id"].empty());
  // Unknown sandbox; the connection stays usable.
  c.send(get("/sandboxes/nope/proxy/" + std::to_string(upstream.port())
             + "/x"));
  r = c.read_response();
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("DOCKER::SANDBOX_NOT_FOUND"), std::string::npos);
  c.send(get(proxy_target("/a/%2e%2e/%2e%2e/x")));
  r = c.read_response();
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(upstream.requests(), 0);
  // An error answer to a request whose body was not read closes the
  // connection (the body would be taken for the next request).
  stream_client d{port()};
  d.send("POST /sandboxes/nope/proxy/1/x HTTP/1.1\r\nHost: x\r\n"
         "Content-Length: 100000\r\n\r\n");
  r = d.read_response();
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.headers["connection"], "close");
}

} // namespace
