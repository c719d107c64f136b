// The sandbox routes (http/api_sandboxes.cpp).

#include "http/api.hpp"

#include "http/codec_request.hpp"
#include "http/codec_response.hpp"
#include "test/unit/http/api_fixture.hpp"

#include <gtest/gtest.h>

#include <string>
#include <variant>

using namespace osb;
using namespace osb::http;
using namespace osb::test;

// -- lifecycle ----------------------------------------------------------------

TEST_F(Api, Create) {
  auto res = call("POST", "/v1/sandboxes",
                  {{"content-type", "application/json"}},
                  R"({"image":{"uri":"python:3.11"},"entrypoint":["python"],"timeout":3600,"resourceLimits":{"cpu":"500m","memory":"512Mi"}})");
  EXPECT_EQ(res.status, 202);
  EXPECT_EQ(res.content_type, "application/json");
  sandbox_view expected;
  expected.id = "new-sbx";
  expected.image = "python:3.11";
  expected.state = sandbox_state::running;
  EXPECT_EQ(res.body, codec::encode_create_response(expected));
  EXPECT_EQ(backend->last_spec.image, "python:3.11");
}

TEST_F(Api, CreateRejected) {
  auto res = call("POST", "/v1/sandboxes", {},
                  R"({"image":{"uri":"python:3.11"},"entrypoint":["python"],"timeout":10,"resourceLimits":{"cpu":"500m"}})");
  EXPECT_EQ(res.status, 422);
  EXPECT_EQ(res.body.rfind("{\"detail\":[", 0), 0u) << res.body;
  EXPECT_EQ(backend->num_calls, 0);
}

TEST_F(Api, Get) {
  auto res = call("GET", "/v1/sandboxes/sbx-001");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, codec::encode_sandbox(backend->sandboxes["sbx-001"]));
  res = call("GET", "/v1/sandboxes/nope");
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.body,
            R"({"code":"DOCKER::SANDBOX_NOT_FOUND","message":"Sandbox nope not found."})");
}

TEST_F(Api, DeleteIsEmpty204) {
  auto res = call("DELETE", "/v1/sandboxes/sbx-001");
  EXPECT_EQ(res.status, 204);
  EXPECT_TRUE(res.body.empty());
  EXPECT_TRUE(res.content_type.empty());
  EXPECT_EQ(backend->sandboxes.count("sbx-001"), 0u);
  EXPECT_EQ(call("DELETE", "/v1/sandboxes/sbx-001").status, 404);
  EXPECT_EQ(call_nokey("DELETE", "/v1/sandboxes/sbx-001").body,
            missing_key_body);
}

TEST_F(Api, DeleteWhoseCleanupIsPendingIs202) {
  backend->pending_removal = "removing its container failed (Docker is down)";
  auto res = call("DELETE", "/v1/sandboxes/sbx-001");
  EXPECT_EQ(res.status, 202);
  EXPECT_EQ(res.body,
            R"({"id":"sbx-001","code":"SANDBOX::DELETION_PENDING","message":)"
            R"("Sandbox sbx-001 is deleted; removing its containers is )"
            R"(pending and retried until it succeeds: removing its container )"
            R"x(failed (Docker is down)"})x");
}

TEST_F(Api, PauseResumeAre202Empty) {
  auto res = call("POST", "/v1/sandboxes/sbx-001/pause");
  EXPECT_EQ(res.status, 202);
  EXPECT_TRUE(res.body.empty());
  EXPECT_TRUE(res.content_type.empty());
  EXPECT_EQ(backend->last_id, "sbx-001");
  res = call("POST", "/sandboxes/sbx-001/resume");
  EXPECT_EQ(res.status, 202);
  EXPECT_EQ(call("POST", "/v1/sandboxes/zzz/pause").status, 404);
}

TEST_F(Api, PatchMetadata) {
  auto res = call("PATCH", "/v1/sandboxes/sbx-001/metadata", {},
                  R"({"project":"new-project","deprecated":null})");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, codec::encode_sandbox(backend->sandboxes["sbx-001"]));
  EXPECT_EQ(call("PATCH", "/v1/sandboxes/zzz/metadata", {}, "{}").status, 404);
}

TEST_F(Api, RenewPassesDecodedTime) {
  auto body = R"({"expiresAt":"2030-01-01T00:00:00Z"})";
  auto decoded = codec::decode_renew(body);
  ASSERT_TRUE(std::holds_alternative<int64_t>(decoded));
  auto res = call("POST", "/v1/sandboxes/sbx-001/renew-expiration", {}, body);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(backend->last_renew, std::get<int64_t>(decoded));
  EXPECT_EQ(res.body, codec::encode_renew(std::get<int64_t>(decoded)));
  res = call("POST", "/v1/sandboxes/sbx-001/renew-expiration", {}, "{}");
  EXPECT_EQ(res.status, 422);
}

TEST_F(Api, ListQuery) {
  auto res = call("GET", "/v1/sandboxes?state=Running&page=1&pageSize=5");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(backend->last_query.page_size, 5);
  res = call("GET", "/v1/sandboxes?metadata=team%3Dinfra%26project%3Dalpha");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(backend->last_query.metadata.at("team"), "infra");
  EXPECT_EQ(backend->last_query.metadata.at("project"), "alpha");
}

TEST_F(Api, ListQueryErrors) {
  EXPECT_EQ(call("GET", "/v1/sandboxes?page=0").status, 422);
  EXPECT_EQ(call("GET", "/v1/sandboxes?pageSize=201").status, 422);
  auto res = call("GET", "/v1/sandboxes?metadata=team%3Dinfra%26broken");
  EXPECT_EQ(res.status, 400);
  EXPECT_NE(res.body.find("INVALID_METADATA_FORMAT"), std::string::npos);
  EXPECT_NE(res.body.find("bad query field"), std::string::npos);
  EXPECT_EQ(backend->num_calls, 0);
  EXPECT_EQ(call_nokey("GET", "/v1/sandboxes").status, 401);
}

TEST_F(Api, BackendErrorsBecomeEnvelopes) {
  backend->failure = make_api_error(ec::sandbox_not_paused,
                                    "Sandbox is not in a paused state.");
  auto res = call("POST", "/v1/sandboxes/sbx-001/resume");
  EXPECT_EQ(res.status, 409);
  EXPECT_EQ(res.body,
            R"({"code":"DOCKER::SANDBOX_NOT_PAUSED","message":"Sandbox is not in a paused state."})");
}
