// The server proxy's rules as pure functions (net/proxy, net/endpoints) and
// its routes (http/router).

#include "base/strings.hpp"
#include "http/router.hpp"
#include "net/endpoints.hpp"
#include "net/proxy.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <map>
#include <string>

using namespace osb;
using namespace osb::http;

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

} // namespace
