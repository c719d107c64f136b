// The endpoint route, with server-proxy and signed endpoints
// (http/api_endpoints.cpp; the proxy itself: http_api_proxy_test.cpp).

#include "http/api.hpp"

#include "test/unit/http/api_fixture.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace osb;
using namespace osb::http;
using namespace osb::test;

// -- endpoints ----------------------------------------------------------------

TEST_F(Api, EndpointShapes) {
  auto res = call("GET", "/v1/sandboxes/sbx-001/endpoints/44772");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, R"({"endpoint":"192.168.1.100:40109/proxy/44772"})");
  res = call("GET", "/v1/sandboxes/sbx-001/endpoints/8080");
  EXPECT_EQ(res.body, R"({"endpoint":"192.168.1.100:50001"})");
  backend->sandboxes["sbx-001"].egress_token = "tok";
  res = call("GET", "/v1/sandboxes/sbx-001/endpoints/18080");
  EXPECT_EQ(
    res.body,
    R"({"endpoint":"192.168.1.100:40109/proxy/18080","headers":{"OPENSANDBOX-EGRESS-AUTH":"tok"}})");
  EXPECT_EQ(backend->last_id, "sbx-001");
  EXPECT_EQ(call("GET", "/v1/sandboxes/nope/endpoints/8080").status, 404);
}

TEST_F(Api, EndpointServerProxy) {
  auto res = call("GET",
                  "/v1/sandboxes/sbx-001/endpoints/44772?use_server_proxy=true");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body,
            R"({"endpoint":"testserver/sandboxes/sbx-001/proxy/44772"})");
  // Headers of the public endpoint are kept.
  backend->sandboxes["sbx-001"].egress_token = "tok";
  res = call("GET", "/v1/sandboxes/sbx-001/endpoints/18080?use_server_proxy=1");
  EXPECT_EQ(
    res.body,
    R"({"endpoint":"testserver/sandboxes/sbx-001/proxy/18080","headers":{"OPENSANDBOX-EGRESS-AUTH":"tok"}})");
  // false-ish values keep the direct endpoint.
  res = call("GET", "/v1/sandboxes/sbx-001/endpoints/8080?use_server_proxy=OFF");
  EXPECT_EQ(res.body, R"({"endpoint":"192.168.1.100:50001"})");
  res = call("GET", "/v1/sandboxes/sbx-001/endpoints/8080?use_server_proxy=maybe");
  EXPECT_EQ(res.status, 422);
}

TEST_F(Api, EndpointServerProxyWithEip) {
  cfg->server.eip = "sandbox.example.com/opensandbox/";
  rebuild();
  auto res = call("GET",
                  "/v1/sandboxes/sbx-001/endpoints/44772?use_server_proxy=yes");
  EXPECT_EQ(
    res.body,
    R"({"endpoint":"sandbox.example.com/opensandbox/sandboxes/sbx-001/proxy/44772"})");
  // Without the proxy the eip is the public host.
  res = call("GET", "/v1/sandboxes/sbx-001/endpoints/44772");
  EXPECT_EQ(
    res.body,
    R"({"endpoint":"sandbox.example.com/opensandbox/:40109/proxy/44772"})");
}

TEST_F(Api, EndpointExpiresRules) {
  // Signed URLs are served by the proxy (a documented deviation: the
  // original answers 400 to use_server_proxy with expires) and need keys.
  for (auto q : {"?use_server_proxy=true&expires=2000000000",
                 "?expires=2000000000"}) {
    auto res = call("GET",
                    std::string{"/v1/sandboxes/sbx-001/endpoints/44772"} + q);
    EXPECT_EQ(res.status, 400);
    EXPECT_EQ(
      res.body,
      R"({"code":"SANDBOX::API_NOT_SUPPORTED","message":"Signed routes (expires parameter) need signing keys in [ingress.secure_access] when runtime.type='docker'."})");
  }
  response res;
  res = call("GET", "/v1/sandboxes/sbx-001/endpoints/44772?expires=soon");
  EXPECT_EQ(res.status, 422);
  cfg->ingress.secure_access.active_key = 'k';
  cfg->ingress.secure_access.keys.push_back({'k', "secret"});
  rebuild();
  for (auto bad : {"1", "18446744073709551616", "-5"}) {
    res = call("GET", std::string{"/v1/sandboxes/sbx-001/endpoints/44772"
                                  "?expires="}
                        + bad);
    EXPECT_EQ(res.status, 400) << bad;
    EXPECT_NE(res.body.find("expires must be a Unix time in seconds in the "
                            "future"),
              std::string::npos)
      << res.body;
  }
  EXPECT_EQ(backend->num_calls, 0);
  // Minted with the active key, with or without use_server_proxy.
  for (auto q : {"?expires=2000000000",
                 "?use_server_proxy=true&expires=2000000000"}) {
    res = call("GET",
               std::string{"/v1/sandboxes/sbx-001/endpoints/44772"} + q);
    EXPECT_EQ(res.status, 200) << res.body;
    EXPECT_NE(res.body.find("/signed/sbx-001-44772-x2qxvk-"),
              std::string::npos)
      << res.body;
    EXPECT_EQ(res.body.find("X-EXECD-ACCESS-TOKEN"), std::string::npos)
      << res.body;
  }
}

TEST_F(Api, EndpointPortValidation) {
  auto res = call("GET", "/v1/sandboxes/sbx-001/endpoints/http");
  EXPECT_EQ(res.status, 422);
  EXPECT_EQ(res.body.rfind("{\"detail\":[", 0), 0u);
  res = call("GET", "/v1/sandboxes/sbx-001/endpoints/0");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(
    res.body,
    R"({"code":"DOCKER::INVALID_PORT","message":"Port must be between 1 and 65535."})");
  EXPECT_EQ(call("GET", "/v1/sandboxes/sbx-001/endpoints/65536").status, 400);
  EXPECT_EQ(call("GET", "/v1/sandboxes/nope/endpoints/70000").status, 400);
  EXPECT_EQ(backend->num_calls, 0);
}

TEST_F(Api, EndpointHostMode) {
  cfg->docker.network_mode = "host";
  cfg->server.host = "10.0.0.1";
  rebuild();
  auto res = call("GET", "/v1/sandboxes/sbx-001/endpoints/8080");
  EXPECT_EQ(res.body, R"({"endpoint":"10.0.0.1:8080"})");
}
