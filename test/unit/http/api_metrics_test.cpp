// The operations routes of the lifecycle API handler: GET /metrics (API
// key, Bearer, `[metrics] auth` and `enabled`, Prometheus content type,
// route patterns as labels) and GET /ready (no key, 200 or 503 with the
// reason); createPhases on GET of a sandbox, not in lists.

#include "test/unit/http/api_fixture.hpp"

#include "base/metrics.hpp"
#include "http/api_routes.hpp"

#include <gtest/gtest.h>

using namespace osb;
using namespace osb::http;
using namespace osb::test;

namespace {

/// The value of the sample `line_prefix` (name and labels), -1 if absent.
double sample(const std::string& text, const std::string& line_prefix) {
  auto pos = text.find("\n" + line_prefix + " ");
  if (pos == std::string::npos)
    return -1;
  return std::stod(text.substr(pos + line_prefix.size() + 2));
}

} // namespace

TEST_F(Api, MetricsNeedTheKeyOrItsBearerToken) {
  EXPECT_EQ(call_nokey("GET", "/metrics").status, 401);
  EXPECT_EQ(call_nokey("GET", "/metrics", {{"authorization", "Bearer nope"}})
              .status,
            401);
  auto res = call_nokey("GET", "/metrics",
                        {{"authorization", std::string{"Bearer "} + api_key}});
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "text/plain; version=0.0.4; charset=utf-8");
  // A bearer token opens only /metrics.
  EXPECT_EQ(call_nokey("GET", "/v1/sandboxes",
                       {{"authorization", std::string{"Bearer "} + api_key}})
              .status,
            401);
  EXPECT_EQ(call("GET", "/metrics").status, 200);
  // At the root only, like /health.
  EXPECT_EQ(call("GET", "/v1/metrics").status, 404);
}

TEST_F(Api, MetricsWithoutAuthOrSwitchedOff) {
  cfg->metrics.auth = false;
  rebuild();
  EXPECT_EQ(call_nokey("GET", "/metrics").status, 200);
  cfg->metrics.enabled = false;
  rebuild();
  EXPECT_EQ(call("GET", "/metrics").status, 404);
}

TEST_F(Api, RequestsAreCountedByRoutePatternNotId) {
  metrics::set_enabled(true);
  auto before = call("GET", "/metrics").body;
  auto key = std::string{"opensandbox_http_requests_total{method=\"GET\","
                         "route=\"/sandboxes/{sandboxId}\",code=\"200\"}"};
  auto n0 = std::max(0.0, sample(before, key));
  EXPECT_EQ(call("GET", "/v1/sandboxes/sbx-001").status, 200);
  EXPECT_EQ(call("GET", "/sandboxes/sbx-001").status, 200);
  auto after = call("GET", "/metrics").body;
  EXPECT_EQ(sample(after, key), n0 + 2) << after;
  EXPECT_EQ(after.find("sbx-001"), std::string::npos);
  EXPECT_NE(after.find("# TYPE opensandbox_http_request_duration_seconds "
                       "histogram"),
            std::string::npos);
  EXPECT_NE(after.find("\nprocess_open_fds "), std::string::npos);
}

TEST_F(Api, ReadyNeedsNoKeyAndSaysWhyNot) {
  auto res = call_nokey("GET", "/ready");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, R"({"status":"ready"})");
  backend->not_ready = "node 'n1' is still recovering its sandboxes";
  res = call_nokey("GET", "/ready");
  EXPECT_EQ(res.status, 503);
  EXPECT_EQ(res.body, R"({"status":"not ready","reason":"node 'n1' is )"
                      R"(still recovering its sandboxes"})");
  // Liveness does not care.
  EXPECT_EQ(call_nokey("GET", "/health").status, 200);
  // Only at the root; under /v1 it is an ordinary (keyed) 404.
  EXPECT_EQ(call_nokey("GET", "/v1/ready").status, 401);
}

TEST_F(Api, CreatePhasesAreOnGetNotOnList) {
  auto& x = backend->sandboxes["sbx-001"];
  x.created_us = 1765040400000000;
  x.create_phases_us = {1765040400000000, 1765040400001000, 0, 0, 0, 0};
  auto get = call("GET", "/v1/sandboxes/sbx-001");
  EXPECT_NE(get.body.find(R"("createPhases":{"accepted":"2025-12-06T17:00:00Z",)"
                          R"("stored":"2025-12-06T17:00:00.001000Z"})"),
            std::string::npos)
    << get.body;
  auto list = call("GET", "/v1/sandboxes");
  EXPECT_EQ(list.body.find("createPhases"), std::string::npos) << list.body;
}

TEST(HttpRoutePattern, EveryRouteHasAPatternWithoutIds) {
  using detail::route_pattern;
  EXPECT_STREQ(route_pattern(route_id::get_sandbox), "/sandboxes/{sandboxId}");
  EXPECT_STREQ(route_pattern(route_id::get_endpoint),
               "/sandboxes/{sandboxId}/endpoints/{port}");
  EXPECT_STREQ(route_pattern(route_id::not_found), "other");
  for (int i = 0; i <= static_cast<int>(route_id::ready); ++i)
    EXPECT_STRNE(route_pattern(static_cast<route_id>(i)), "")
      << to_string(static_cast<route_id>(i));
}

TEST(HttpBearer, TakesTheTokenOfTheBearerScheme) {
  using detail::bearer_token;
  EXPECT_EQ(bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(bearer_token("bearer abc"), "abc");
  EXPECT_EQ(bearer_token("Basic abc"), "");
  EXPECT_EQ(bearer_token("Bearer "), "");
  EXPECT_EQ(bearer_token(""), "");
}
