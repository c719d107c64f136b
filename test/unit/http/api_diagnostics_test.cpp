// The diagnostics routes (http/api_diagnostics.cpp).

#include "http/api.hpp"

#include "test/unit/http/api_fixture.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace osb;
using namespace osb::http;
using namespace osb::test;

// -- diagnostics (§1.14) --------------------------------------------------------

TEST_F(Api, DiagnosticsWithScopeAre501WithoutLookup) {
  for (auto route : {"logs", "events"}) {
    auto calls = backend->num_calls;
    auto res = call("GET", std::string{"/v1/sandboxes/unknown/diagnostics/"}
                             + route + "?scope=x");
    EXPECT_EQ(res.status, 501);
    EXPECT_EQ(res.body,
              R"({"code":"DIAGNOSTICS_NOT_IMPLEMENTED","message":"The stable )"
              R"(Diagnostics API is not implemented by this OpenSandbox )"
              R"(server."})");
    EXPECT_EQ(backend->num_calls, calls);
  }
}

TEST_F(Api, DiagnosticsArePlainText) {
  auto res = call("GET", "/sandboxes/sbx-001/diagnostics/logs?tail=25&since=5m");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(res.body, "logs text");
  EXPECT_EQ(header_of(res, "Deprecation"), "true");
  EXPECT_EQ(backend->last_diag.tail, 25);
  EXPECT_EQ(backend->last_diag.since, "5m");
  res = call("GET", "/v1/sandboxes/sbx-001/diagnostics/events");
  EXPECT_EQ(res.body, "events text");
  EXPECT_EQ(header_of(res, "Deprecation"), "true");
  EXPECT_EQ(backend->last_diag.limit, 50);
  res = call("GET", "/v1/sandboxes/sbx-001/diagnostics/inspect");
  EXPECT_EQ(res.body, "inspect text");
  EXPECT_FALSE(has_header(res, "Deprecation"));
  res = call("GET", "/v1/sandboxes/sbx-001/diagnostics/summary");
  EXPECT_EQ(res.body, "summary text");
  EXPECT_FALSE(has_header(res, "Deprecation"));
  EXPECT_EQ(backend->last_diag.tail, 50);
  EXPECT_EQ(backend->last_diag.limit, 20);
  res = call("GET",
             "/v1/sandboxes/sbx-001/diagnostics/summary?tail=7&event_limit=3");
  EXPECT_EQ(backend->last_diag.tail, 7);
  EXPECT_EQ(backend->last_diag.limit, 3);
}

TEST_F(Api, DiagnosticsValidateTheirQuery) {
  auto res = call("GET", "/v1/sandboxes/sbx-001/diagnostics/logs?tail=0");
  EXPECT_EQ(res.status, 422);
  EXPECT_EQ(res.body,
            R"({"detail":[{"type":"greater_than_equal","loc":["query","tail"],)"
            R"("msg":"Input should be greater than or equal to 1","input":"0",)"
            R"("ctx":{"ge":1}}]})");
  res = call("GET", "/v1/sandboxes/sbx-001/diagnostics/events?limit=501");
  EXPECT_EQ(res.status, 422);
  EXPECT_NE(res.body.find(R"("type":"less_than_equal")"), std::string::npos);
  res = call("GET", "/v1/sandboxes/sbx-001/diagnostics/summary?tail=x");
  EXPECT_EQ(res.status, 422);
  EXPECT_NE(res.body.find(R"("type":"int_parsing")"), std::string::npos);
  res = call("GET", "/v1/sandboxes/nope/diagnostics/inspect");
  EXPECT_EQ(res.status, 404);
  EXPECT_NE(res.body.find("DOCKER::SANDBOX_NOT_FOUND"), std::string::npos);
}
