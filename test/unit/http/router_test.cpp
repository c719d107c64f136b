// The route table of the lifecycle API and the API-key exemptions
// (http/router).

#include "http/router.hpp"

#include <gtest/gtest.h>

using namespace osb::http;

TEST(Router, RootAndV1) {
  auto r = match_route("GET", "/sandboxes/abc");
  EXPECT_EQ(r.id, route_id::get_sandbox);
  EXPECT_EQ(r.sandbox_id, "abc");
  EXPECT_FALSE(r.v1);
  r = match_route("GET", "/v1/sandboxes/abc");
  EXPECT_EQ(r.id, route_id::get_sandbox);
  EXPECT_EQ(r.sandbox_id, "abc");
  EXPECT_TRUE(r.v1);
  EXPECT_EQ(match_route("GET", "/health").id, route_id::health);
  EXPECT_EQ(match_route("GET", "/v1/health").id, route_id::not_found);
  EXPECT_EQ(match_route("GET", "/v1").id, route_id::not_found);
  EXPECT_EQ(match_route("GET", "/v1/v1/sandboxes").id, route_id::not_found);
}

TEST(Router, Parameters) {
  auto r = match_route("GET", "/v1/sandboxes/a%20b/endpoints/44772");
  EXPECT_EQ(r.id, route_id::get_endpoint);
  EXPECT_EQ(r.sandbox_id, "a b");
  EXPECT_EQ(r.param, "44772");
  r = match_route("DELETE", "/snapshots/snap-1");
  EXPECT_EQ(r.id, route_id::delete_snapshot);
  EXPECT_EQ(r.param, "snap-1");
  EXPECT_TRUE(r.sandbox_id.empty());
  r = match_route("PUT", "/v1/pools/p1");
  EXPECT_EQ(r.id, route_id::update_pool);
  EXPECT_EQ(r.param, "p1");
  EXPECT_EQ(match_route("POST", "/v1/sandboxes/x/renew-expiration").id,
            route_id::renew_expiration);
  EXPECT_EQ(match_route("PATCH", "/v1/sandboxes/x/metadata").id,
            route_id::patch_metadata);
  EXPECT_EQ(match_route("POST", "/v1/metrics/events").id,
            route_id::metrics_events);
  EXPECT_EQ(match_route("GET", "/sandboxes//endpoints/1").id,
            route_id::not_found);
}

TEST(Router, Proxy) {
  auto r = match_route("POST", "/v1/sandboxes/sbx/proxy/44772/api/run");
  EXPECT_EQ(r.id, route_id::proxy);
  EXPECT_EQ(r.sandbox_id, "sbx");
  EXPECT_EQ(r.param, "44772");
  EXPECT_EQ(r.rest, "api/run");
  r = match_route("GET", "/sandboxes/sbx/proxy/80");
  EXPECT_EQ(r.id, route_id::proxy);
  EXPECT_EQ(r.rest, "");
  r = match_route("GET", "/sandboxes/sbx/proxy/80/");
  EXPECT_EQ(r.id, route_id::proxy);
  EXPECT_EQ(r.rest, "");
  // HEAD and OPTIONS are forwarded too (405 in the original).
  r = match_route("TRACE", "/sandboxes/sbx/proxy/80/x");
  EXPECT_EQ(r.id, route_id::method_not_allowed);
  EXPECT_EQ(r.allow, "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS");
}

TEST(Router, MethodNotAllowed) {
  auto r = match_route("PUT", "/v1/sandboxes");
  EXPECT_EQ(r.id, route_id::method_not_allowed);
  EXPECT_EQ(r.allow, "POST, GET");
  r = match_route("POST", "/v1/sandboxes/abc");
  EXPECT_EQ(r.id, route_id::method_not_allowed);
  EXPECT_EQ(r.allow, "GET, DELETE");
  EXPECT_EQ(r.sandbox_id, "abc");
  EXPECT_EQ(match_route("HEAD", "/health").id, route_id::method_not_allowed);
}

TEST(Router, TrailingSlashRedirect) {
  auto r = match_route("GET", "/v1/sandboxes/");
  EXPECT_EQ(r.id, route_id::redirect_slash);
  EXPECT_EQ(r.rest, "/v1/sandboxes");
  EXPECT_EQ(match_route("GET", "/nothing/").id, route_id::not_found);
  EXPECT_EQ(match_route("GET", "/").id, route_id::not_found);
}

TEST(Router, AuthExemptions) {
  EXPECT_TRUE(auth_exempt("/health"));
  EXPECT_TRUE(auth_exempt("/healthz"));
  EXPECT_TRUE(auth_exempt("/docs/oauth2-redirect"));
  EXPECT_TRUE(auth_exempt("/redoc"));
  EXPECT_TRUE(auth_exempt("/openapi.json"));
  EXPECT_FALSE(auth_exempt("/v1/health"));
  EXPECT_TRUE(auth_exempt("/sandboxes/abc-123/proxy/8080/foo/bar"));
  EXPECT_TRUE(auth_exempt("/v1/sandboxes/sid/proxy/443/"));
  EXPECT_TRUE(auth_exempt("/sandboxes/id/proxy/8080"));
  EXPECT_TRUE(auth_exempt("/sandboxes/id/proxy/8080/"));
  EXPECT_TRUE(auth_exempt("/v1/sandboxes/id/proxy/443/path"));
  EXPECT_FALSE(auth_exempt("/proxy/sandboxes/anything"));
  EXPECT_FALSE(auth_exempt("/sandboxes/s1/proxy/not-a-port/x"));
  EXPECT_FALSE(auth_exempt("/foo/sandboxes/id/proxy/8080"));
  EXPECT_FALSE(auth_exempt("/sandboxes/id/proxy/8080x/"));
  EXPECT_FALSE(auth_exempt("/sandboxes/id/proxy/8080/../../sandboxes"));
  EXPECT_FALSE(auth_exempt("/sandboxes//proxy/8080"));
  EXPECT_FALSE(auth_exempt("/v1/sandboxes"));
}

// -- auth and request ids -----------------------------------------------------
