// The API handler's middleware and dispatch (http/api.cpp): API key,
// request ids, routing outcomes, CORS.

#include "http/api.hpp"

#include "http/api_routes.hpp"
#include "test/unit/http/api_fixture.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace osb;
using namespace osb::http;
using namespace osb::test;

TEST_F(Api, MissingKey) {
  auto res = call_nokey("GET", "/v1/sandboxes/sbx-001");
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(res.body, missing_key_body);
  EXPECT_EQ(res.content_type, "application/json");
  EXPECT_EQ(header_of(res, "X-Request-ID").size(), 32u);
  EXPECT_EQ(backend->num_calls, 0);
  // An empty header counts as missing.
  res = call_nokey("DELETE", "/v1/sandboxes/sbx-001",
                   {{"open-sandbox-api-key", ""}});
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(res.body, missing_key_body);
}

TEST_F(Api, InvalidKey) {
  auto res = call_nokey("GET", "/v1/sandboxes",
                        {{"open-sandbox-api-key", "wrong"}});
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(
    res.body,
    R"({"code":"INVALID_API_KEY","message":"Authentication credentials are invalid. Check your API key and try again."})");
  // Compared verbatim: no trimming, case matters.
  res = call_nokey("GET", "/v1/sandboxes",
                   {{"open-sandbox-api-key", "TEST-API-KEY-12345"}});
  EXPECT_EQ(res.status, 401);
}

TEST_F(Api, AuthBeforeRouting) {
  // With a key configured, an unknown path without a key is a 401, not 404.
  EXPECT_EQ(call_nokey("GET", "/nope").status, 401);
  EXPECT_EQ(call("GET", "/nope").status, 404);
}

TEST_F(Api, ExemptPathsNeedNoKey) {
  auto res = call_nokey("GET", "/health");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, R"({"status":"healthy"})");
  // The proxy is exempt from the API's key check but checks credentials of
  // its own (SANDBOX::UNAUTHORIZED); a non-numeric port is no proxy path.
  for (auto path : {"/sandboxes/abc-123/proxy/8080/foo/bar",
                    "/v1/sandboxes/sid/proxy/443/", "/signed/x-1-1-0123abcda"}) {
    res = call_nokey("GET", path);
    EXPECT_EQ(res.status, 401) << path;
    EXPECT_NE(res.body.find("SANDBOX::UNAUTHORIZED"), std::string::npos)
      << path << " " << res.body;
  }
  res = call_nokey("GET", "/sandboxes/s1/proxy/not-a-port/x");
  EXPECT_EQ(res.status, 401);
  EXPECT_NE(res.body.find("MISSING_API_KEY"), std::string::npos);
  EXPECT_EQ(call_nokey("GET", "/proxy/sandboxes/anything").status, 401);
}

TEST_F(Api, NoKeyConfigured) {
  cfg->server.api_key = "   ";
  rebuild();
  EXPECT_EQ(call_nokey("GET", "/v1/sandboxes/sbx-001").status, 200);
}

TEST_F(Api, RequestIdEcho) {
  auto res = call("GET", "/v1/sandboxes/sbx-001",
                  {{"x-request-id", "  my-req-42 "}});
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(header_of(res, "X-Request-ID"), "my-req-42");
  EXPECT_EQ(backend->last_request_id, "my-req-42");
  // On errors too.
  res = call_nokey("GET", "/v1/sandboxes", {{"x-request-id", "abc"}});
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(header_of(res, "X-Request-ID"), "abc");
  res = call("GET", "/nope", {{"x-request-id", "r404"}});
  EXPECT_EQ(header_of(res, "X-Request-ID"), "r404");
  res = call("PUT", "/v1/sandboxes", {{"x-request-id", "r405"}});
  EXPECT_EQ(header_of(res, "X-Request-ID"), "r405");
  res = call("GET", "/v1/sandboxes?page=0", {{"x-request-id", "r422"}});
  EXPECT_EQ(res.status, 422);
  EXPECT_EQ(header_of(res, "X-Request-ID"), "r422");
  backend->failure = make_api_error(ec::query_failed, "boom");
  res = call("GET", "/v1/sandboxes/sbx-001", {{"x-request-id", "r500"}});
  EXPECT_EQ(res.status, 500);
  EXPECT_EQ(header_of(res, "X-Request-ID"), "r500");
}

TEST_F(Api, RequestIdGenerated) {
  auto a = header_of(call("GET", "/v1/sandboxes/sbx-001"), "X-Request-ID");
  auto b = header_of(call("GET", "/v1/sandboxes/sbx-001",
                          {{"x-request-id", "   "}}),
                     "X-Request-ID");
  ASSERT_EQ(a.size(), 32u);
  ASSERT_EQ(b.size(), 32u);
  EXPECT_NE(a, b);
  for (auto c : a)
    EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << a;
}

// -- routing shapes -----------------------------------------------------------

TEST_F(Api, NotFoundAndMethodNotAllowed) {
  auto res = call("GET", "/v1/nothing");
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.body, R"({"detail":"Not Found"})");
  EXPECT_EQ(res.content_type, "application/json");
  res = call("GET", "/v1/health");
  EXPECT_EQ(res.status, 404);
  res = call("PUT", "/v1/sandboxes/sbx-001");
  EXPECT_EQ(res.status, 405);
  EXPECT_EQ(res.body, R"({"detail":"Method Not Allowed"})");
  EXPECT_EQ(header_of(res, "Allow"), "GET, DELETE");
  EXPECT_EQ(backend->num_calls, 0);
}

TEST_F(Api, TrailingSlashRedirects) {
  auto res = call("GET", "/v1/sandboxes/?page=2");
  EXPECT_EQ(res.status, 307);
  EXPECT_EQ(header_of(res, "Location"), "http://testserver/v1/sandboxes?page=2");
}

TEST_F(Api, RootAndV1BothWork) {
  EXPECT_EQ(call("GET", "/sandboxes/sbx-001").status, 200);
  EXPECT_EQ(call("GET", "/v1/sandboxes/sbx-001").status, 200);
  EXPECT_EQ(backend->last_id, "sbx-001");
}

// -- not implemented yet ------------------------------------------------------

TEST_F(Api, NotImplementedRoutes) {
  // A backend without pools (the actors have them: docs/pools.md).
  auto res = call("GET", "/v1/pools");
  EXPECT_EQ(res.status, 501);
  EXPECT_EQ(
    res.body,
    R"({"code":"KUBERNETES::POOL_NOT_SUPPORTED","message":"Pool management is not available on this server."})");
  res = call("GET", "/v1/sandboxes/sbx-001/diagnostics/logs?scope=all");
  EXPECT_EQ(res.status, 501);
  EXPECT_NE(res.body.find("DIAGNOSTICS_NOT_IMPLEMENTED"), std::string::npos);
  res = call("POST", "/v1/metrics/events", {}, "{}");
  EXPECT_EQ(res.status, 204);
  EXPECT_TRUE(res.body.empty());
}

// -- CORS -----------------------------------------------------------------------

TEST_F(Api, CorsPreflightBeforeAuth) {
  auto res = call_nokey("OPTIONS", "/v1/sandboxes",
                        {{"origin", "https://app.example"},
                         {"access-control-request-method", "POST"},
                         {"access-control-request-headers",
                          "open-sandbox-api-key,content-type"}});
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "OK");
  EXPECT_EQ(header_of(res, "Access-Control-Allow-Origin"),
            "https://app.example");
  EXPECT_EQ(header_of(res, "Access-Control-Allow-Methods"),
            "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT");
  EXPECT_EQ(header_of(res, "Access-Control-Allow-Headers"),
            "open-sandbox-api-key,content-type");
  EXPECT_EQ(header_of(res, "Access-Control-Allow-Credentials"), "true");
  EXPECT_EQ(header_of(res, "Access-Control-Max-Age"), "600");
  EXPECT_EQ(header_of(res, "Vary"), "Origin");
  EXPECT_EQ(header_of(res, "X-Request-ID").size(), 32u);
  EXPECT_EQ(backend->num_calls, 0);
}

TEST_F(Api, CorsPreflightBadMethod) {
  auto res = call_nokey("OPTIONS", "/v1/sandboxes",
                        {{"origin", "https://app.example"},
                         {"access-control-request-method", "BREW"}});
  EXPECT_EQ(res.status, 400);
}

TEST_F(Api, PlainOptionsIsNotAPreflight) {
  auto res = call("OPTIONS", "/v1/sandboxes");
  EXPECT_EQ(res.status, 405);
}

TEST_F(Api, CorsSimpleResponses) {
  auto res = call("GET", "/v1/sandboxes/sbx-001",
                  {{"origin", "https://app.example"}});
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(header_of(res, "Access-Control-Allow-Origin"), "*");
  EXPECT_EQ(header_of(res, "Access-Control-Allow-Credentials"), "true");
  // Errors from the auth layer carry CORS headers too.
  res = call_nokey("GET", "/v1/sandboxes", {{"origin", "https://app.example"}});
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(header_of(res, "Access-Control-Allow-Origin"), "*");
  // With cookies the origin is echoed.
  res = call("GET", "/v1/sandboxes/sbx-001",
             {{"origin", "https://app.example"}, {"cookie", "a=b"}});
  EXPECT_EQ(header_of(res, "Access-Control-Allow-Origin"),
            "https://app.example");
  EXPECT_EQ(header_of(res, "Vary"), "Origin");
  // Without Origin no CORS headers at all.
  res = call("GET", "/v1/sandboxes/sbx-001");
  EXPECT_FALSE(has_header(res, "Access-Control-Allow-Origin"));
}

// Every route of the router's table is served: a route whose handler is not
// bound in its resource's table (`*_routes()`) would answer 404.
TEST(ApiRouteTables, EveryRouteHasAHandler) {
  using detail::handler_of;
  for (auto id : {route_id::not_found, route_id::method_not_allowed,
                  route_id::redirect_slash, route_id::health})
    EXPECT_EQ(handler_of(id), nullptr) << to_string(id); // api.cpp's own
  for (int i = static_cast<int>(route_id::create_sandbox);
       i <= static_cast<int>(route_id::ready); ++i)
    EXPECT_NE(handler_of(static_cast<route_id>(i)), nullptr)
      << to_string(static_cast<route_id>(i));
}
