#include "net/endpoints.hpp"

#include "http/status.hpp"

#include <gtest/gtest.h>

using namespace osb;

namespace {

sandbox_view bridged_sandbox() {
  sandbox_view x;
  x.id = "sbx-001";
  x.ports.http = 50001;
  x.ports.execd = 50002;
  return x;
}

node_config bridge_config() {
  node_config cfg;
  cfg.docker.network_mode = "bridge";
  return cfg;
}

} // namespace

TEST(PublicHost, EipWinsVerbatim) {
  node_config cfg;
  cfg.server.eip = "sandbox.example.com/opensandbox/";
  cfg.server.host = "10.1.1.1";
  EXPECT_EQ(net::detect_public_host(cfg, true),
            "sandbox.example.com/opensandbox/");
}

TEST(PublicHost, ConcreteBindHost) {
  node_config cfg;
  cfg.server.host = "192.168.1.100";
  cfg.docker.host_ip = "10.57.1.91";
  EXPECT_EQ(net::detect_public_host(cfg, true), "192.168.1.100");
}

TEST(PublicHost, HostIpInsideContainer) {
  node_config cfg;
  cfg.server.host = "0.0.0.0";
  cfg.docker.host_ip = "10.57.1.91";
  EXPECT_EQ(net::detect_public_host(cfg, true), "10.57.1.91");
  cfg.server.host = "::";
  EXPECT_EQ(net::detect_public_host(cfg, true), "10.57.1.91");
  cfg.server.host = "";
  EXPECT_EQ(net::detect_public_host(cfg, true), "10.57.1.91");
}

TEST(PublicHost, WildcardOutsideContainerUsesOutwardAddress) {
  node_config cfg;
  cfg.server.host = "0.0.0.0";
  cfg.docker.host_ip = "10.57.1.91"; // ignored outside a container
  auto host = net::detect_public_host(cfg, false);
  EXPECT_NE(host, "10.57.1.91");
  EXPECT_FALSE(host.empty());
  auto outward = net::outward_ipv4();
  EXPECT_EQ(host, outward.empty() ? "127.0.0.1" : outward);
}

TEST(ResolveEndpoint, BridgeHttpPort) {
  auto r = net::resolve_endpoint(bridged_sandbox(), 8080, bridge_config(),
                                 "192.168.1.100");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value->endpoint, "192.168.1.100:50001");
  EXPECT_TRUE(r.value->headers.empty());
}

TEST(ResolveEndpoint, BridgeOtherPortsGoThroughExecd) {
  auto cfg = bridge_config();
  auto r = net::resolve_endpoint(bridged_sandbox(), 6000, cfg,
                                 "192.168.1.100");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value->endpoint, "192.168.1.100:50002/proxy/6000");
  r = net::resolve_endpoint(bridged_sandbox(), 44772, cfg, "192.168.1.100");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value->endpoint, "192.168.1.100:50002/proxy/44772");
  EXPECT_TRUE(r.value->headers.empty());
}

TEST(ResolveEndpoint, EgressPortCarriesToken) {
  auto sbx = bridged_sandbox();
  sbx.egress_token = "tok-123";
  auto r = net::resolve_endpoint(sbx, 18080, bridge_config(),
                                 "192.168.1.100");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value->endpoint, "192.168.1.100:50002/proxy/18080");
  ASSERT_EQ(r.value->headers.size(), 1u);
  EXPECT_EQ(r.value->headers.at("OPENSANDBOX-EGRESS-AUTH"), "tok-123");
  // Only port 18080 gets the header.
  r = net::resolve_endpoint(sbx, 44772, bridge_config(), "192.168.1.100");
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r.value->headers.empty());
}

TEST(ResolveEndpoint, EgressPortWithoutSidecar) {
  auto r = net::resolve_endpoint(bridged_sandbox(), 18080, bridge_config(),
                                 "192.168.1.100");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value->endpoint, "192.168.1.100:50002/proxy/18080");
  EXPECT_TRUE(r.value->headers.empty());
}

TEST(ResolveEndpoint, ServerInContainerWithHostIp) {
  node_config cfg;
  cfg.server.host = "0.0.0.0";
  cfg.docker.host_ip = "10.57.1.91";
  auto host = net::detect_public_host(cfg, true);
  auto sbx = bridged_sandbox();
  sbx.ports.execd = 40109;
  auto r = net::resolve_endpoint(sbx, 44772, cfg, host);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value->endpoint, "10.57.1.91:40109/proxy/44772");
}

TEST(ResolveEndpoint, UserDefinedNetworkUsesHostPorts) {
  node_config cfg;
  cfg.docker.network_mode = "my-net";
  auto sbx = bridged_sandbox();
  sbx.ports.http = 51001;
  sbx.ports.execd = 51000;
  auto r = net::resolve_endpoint(sbx, 8080, cfg, "10.0.1.1");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value->endpoint, "10.0.1.1:51001");
  r = net::resolve_endpoint(sbx, 5000, cfg, "10.0.1.1");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value->endpoint, "10.0.1.1:51000/proxy/5000");
}

TEST(ResolveEndpoint, HostMode) {
  node_config cfg;
  cfg.docker.network_mode = "host";
  sandbox_view sbx; // no host ports in host mode
  auto r = net::resolve_endpoint(sbx, 8080, cfg, "10.0.0.1");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value->endpoint, "10.0.0.1:8080");
  r = net::resolve_endpoint(sbx, 44772, cfg, "10.0.0.1");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value->endpoint, "10.0.0.1:44772");
  r = net::resolve_endpoint(sbx, 18080, cfg, "10.0.0.1");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value->endpoint, "10.0.0.1:18080");
}

TEST(ResolveEndpoint, MissingHostPorts) {
  sandbox_view sbx;
  auto r = net::resolve_endpoint(sbx, 8080, bridge_config(), "h");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(http::status_of(r.error), 500);
  EXPECT_EQ(r.error.code, "DOCKER::NETWORK_MODE_ENDPOINT_UNAVAILABLE");
  EXPECT_EQ(r.error.message,
            "Missing host port mapping for container port 8080.");
  r = net::resolve_endpoint(sbx, 44772, bridge_config(), "h");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error.code, "DOCKER::NETWORK_MODE_ENDPOINT_UNAVAILABLE");
  EXPECT_EQ(r.error.message,
            "Missing host port mapping for execd proxy port 44772.");
}

TEST(ResolveEndpoint, PortRange) {
  for (int port : {0, -1, 65536, 100000}) {
    auto r = net::resolve_endpoint(bridged_sandbox(), port, bridge_config(),
                                   "h");
    ASSERT_FALSE(r.has_value()) << port;
    EXPECT_EQ(http::status_of(r.error), 400);
    EXPECT_EQ(r.error.code, "DOCKER::INVALID_PORT");
    EXPECT_EQ(r.error.message, "Port must be between 1 and 65535.");
  }
  EXPECT_TRUE(net::resolve_endpoint(bridged_sandbox(), 1, bridge_config(), "h")
                .has_value());
  EXPECT_TRUE(net::resolve_endpoint(bridged_sandbox(), 65535, bridge_config(),
                                    "h")
                .has_value());
}

TEST(ServerProxyEndpoint, RequestBase) {
  EXPECT_EQ(net::server_proxy_endpoint("http://testserver", "sbx-001", 44772),
            "testserver/sandboxes/sbx-001/proxy/44772");
  EXPECT_EQ(net::server_proxy_endpoint("http://testserver/", "sbx-001", 44772),
            "testserver/sandboxes/sbx-001/proxy/44772");
  EXPECT_EQ(net::server_proxy_endpoint("https://server.example:8080", "x",
                                       8080),
            "server.example:8080/sandboxes/x/proxy/8080");
}

TEST(ServerProxyEndpoint, EipWithPath) {
  EXPECT_EQ(net::server_proxy_endpoint("sandbox.example.com/opensandbox/",
                                       "sbx-001", 44772),
            "sandbox.example.com/opensandbox/sandboxes/sbx-001/proxy/44772");
  EXPECT_EQ(net::server_proxy_endpoint("https://gw.example.com//", "a", 1),
            "gw.example.com/sandboxes/a/proxy/1");
}

TEST(ServerProxyEndpoint, RemovesSchemesEverywhere) {
  // A plain substring removal, like the original.
  EXPECT_EQ(net::server_proxy_endpoint("http://a/http://b", "id", 80),
            "a/b/sandboxes/id/proxy/80");
}

TEST(ResolveEndpoint, EndpointsServedByExecdCarryTheSandboxToken) {
  auto sbx = bridged_sandbox();
  sbx.access_token = "sbx-tok";
  sbx.egress_token = "egress-tok";
  auto cfg = bridge_config();
  for (int port : {44772, 6000, 18080}) {
    auto r = net::resolve_endpoint(sbx, port, cfg, "10.0.0.1");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r.value->headers.at("X-EXECD-ACCESS-TOKEN"), "sbx-tok") << port;
  }
  // 8080 is the user's app on its own port: no token for it.
  auto r = net::resolve_endpoint(sbx, 8080, cfg, "10.0.0.1");
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r.value->headers.empty());
  // Host mode: only execd's own port.
  cfg.docker.network_mode = "host";
  sbx.egress_token.clear();
  r = net::resolve_endpoint(sbx, 44772, cfg, "10.0.0.1");
  EXPECT_EQ(r.value->headers.at("X-EXECD-ACCESS-TOKEN"), "sbx-tok");
  r = net::resolve_endpoint(sbx, 6000, cfg, "10.0.0.1");
  EXPECT_TRUE(r.value->headers.empty());
  // Sandboxes from before tokens existed get none.
  sbx.access_token.clear();
  r = net::resolve_endpoint(sbx, 44772, cfg, "10.0.0.1");
  EXPECT_TRUE(r.value->headers.empty());
}

TEST(SignedProxyEndpoint, LikeTheServerProxyEndpoint) {
  EXPECT_EQ(net::signed_proxy_endpoint("http://srv:8080/", "id-1-x-sig"),
            "srv:8080/signed/id-1-x-sig");
}

TEST(PublishAddress, FollowsTheAdvertisedHostUnlessConfigured) {
  node_config cfg;
  EXPECT_EQ(net::resolve_publish_address(cfg, false, "127.0.0.1"),
            "127.0.0.1");
  EXPECT_EQ(net::resolve_publish_address(cfg, false, "localhost"),
            "127.0.0.1");
  // Not an address of this machine (an eip behind NAT): every address.
  EXPECT_EQ(net::resolve_publish_address(cfg, false, "192.0.2.77"),
            "0.0.0.0");
  EXPECT_EQ(net::resolve_publish_address(cfg, false, "sandbox.example.com"),
            "0.0.0.0");
  if (auto ip = net::outward_ipv4(); !ip.empty())
    EXPECT_EQ(net::resolve_publish_address(cfg, false, ip), ip);
  // A remote Docker host publishes on its own machine.
  EXPECT_EQ(net::resolve_publish_address(cfg, true, "127.0.0.1"), "0.0.0.0");
  cfg.docker.publish_address = "10.9.8.7";
  EXPECT_EQ(net::resolve_publish_address(cfg, true, "127.0.0.1"), "10.9.8.7");
  EXPECT_TRUE(net::is_wildcard_address("0.0.0.0"));
  EXPECT_FALSE(net::is_wildcard_address("127.0.0.1"));
}

TEST(ProxyAddress, AutoFollowsASpecificPublishAddress) {
  node_config cfg;
  auto x = net::detect_proxy_address(cfg, true, "", "127.0.0.1");
  EXPECT_EQ(x.host, "127.0.0.1");
  // In a container of its own network the Docker host (the gateway)
  // publishes the ports, whatever address they bind to there.
  std::string routes = "Iface\tDestination\tGateway \tFlags\n"
                       "eth0\t00000000\t0100A8C0\t0003\n";
  EXPECT_EQ(net::detect_proxy_address(cfg, false, routes, "127.0.0.1").host,
            "192.168.0.1");
  // A wildcard leaves the choice to the other rules; a configured
  // proxy_host always wins.
  cfg.docker.proxy_host = "192.0.2.1";
  EXPECT_EQ(net::detect_proxy_address(cfg, true, "", "127.0.0.1").host,
            "192.0.2.1");
}
