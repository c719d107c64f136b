// Encoders of the lifecycle API's responses (http/codec_response).

#include "http/codec_response.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace osb::codec {
namespace {

using ::testing::HasSubstr;

// -- encoders ------------------------------------------------------------------

sandbox_view sample() {
  sandbox_view x;
  x.id = "0b6c";
  x.image = "python:3.11";
  x.state = sandbox_state::running;
  x.reason = "CONTAINER_RUNNING";
  x.message = "Sandbox container is running.";
  x.last_transition_us = 1781260200412345;
  x.metadata = {{"team", "backend"}};
  x.entrypoint = {"python", "-m", "http.server", "8000"};
  x.expires_us = 1781263800101010;
  x.created_us = 1781260200412345;
  return x;
}

TEST(EncodeSandbox, MatchesWireExample) {
  auto json = encode_sandbox(sample());
  EXPECT_THAT(json, HasSubstr(R"("expiresAt":"2026-06-12T11:30:00.101010Z")"));
  EXPECT_EQ(json,
            R"({"id":"0b6c","image":{"uri":"python:3.11"},)"
            R"("status":{"state":"Running","reason":"CONTAINER_RUNNING",)"
            R"("message":"Sandbox container is running.",)"
            R"("lastTransitionAt":"2026-06-12T10:30:00.412345Z"},)"
            R"("metadata":{"team":"backend"},)"
            R"("entrypoint":["python","-m","http.server","8000"],)"
            R"("expiresAt":"2026-06-12T11:30:00.101010Z",)"
            R"("createdAt":"2026-06-12T10:30:00.412345Z"})");
}

TEST(EncodeSandbox, OmitsAbsentFields) {
  sandbox_view x;
  x.id = "i";
  x.created_us = 0;
  EXPECT_EQ(encode_sandbox(x),
            R"({"id":"i","status":{"state":"Pending"},"entrypoint":[],)"
            R"("createdAt":"1970-01-01T00:00:00Z"})");
}

TEST(EncodeSandbox, SnapshotReplacesImageAndPlatformIsShown) {
  auto x = sample();
  x.snapshot_id = "snap-1";
  x.platform_os = "linux";
  x.platform_arch = "arm64";
  auto json = encode_sandbox(x);
  EXPECT_THAT(json, HasSubstr(R"("snapshotId":"snap-1")"));
  EXPECT_THAT(json, Not(HasSubstr("\"image\"")));
  EXPECT_THAT(json, HasSubstr(R"("platform":{"os":"linux","arch":"arm64"})"));
}

TEST(EncodeCreateResponse, HasNoImageAndKeepsFieldOrder) {
  auto x = sample();
  x.platform_os = "linux";
  x.platform_arch = "amd64";
  EXPECT_EQ(encode_create_response(x),
            R"({"id":"0b6c","status":{"state":"Running",)"
            R"("reason":"CONTAINER_RUNNING",)"
            R"("message":"Sandbox container is running.",)"
            R"("lastTransitionAt":"2026-06-12T10:30:00.412345Z"},)"
            R"("metadata":{"team":"backend"},)"
            R"("platform":{"os":"linux","arch":"amd64"},)"
            R"("expiresAt":"2026-06-12T11:30:00.101010Z",)"
            R"("createdAt":"2026-06-12T10:30:00.412345Z",)"
            R"("entrypoint":["python","-m","http.server","8000"]})");
  x.metadata.clear();
  x.expires_us = 0;
  auto json = encode_create_response(x);
  EXPECT_THAT(json, Not(HasSubstr("metadata")));
  EXPECT_THAT(json, Not(HasSubstr("expiresAt")));
}

std::string pagination_of(int32_t page, int32_t size, int64_t total) {
  list_page p;
  p.page = page;
  p.page_size = size;
  p.total_items = total;
  return encode_list(p);
}

TEST(EncodeList, PaginationMath) {
  EXPECT_EQ(pagination_of(1, 20, 0),
            R"({"items":[],"pagination":{"page":1,"pageSize":20,)"
            R"("totalItems":0,"totalPages":0,"hasNextPage":false}})");
  EXPECT_THAT(pagination_of(1, 20, 20),
              HasSubstr(R"("totalPages":1,"hasNextPage":false)"));
  EXPECT_THAT(pagination_of(1, 20, 21),
              HasSubstr(R"("totalPages":2,"hasNextPage":true)"));
  EXPECT_THAT(pagination_of(2, 20, 21),
              HasSubstr(R"("totalPages":2,"hasNextPage":false)"));
  EXPECT_THAT(pagination_of(5, 20, 21),
              HasSubstr(R"("page":5,"pageSize":20,"totalItems":21,)"
                        R"("totalPages":2,"hasNextPage":false)"));
  EXPECT_THAT(pagination_of(1, 1, 3),
              HasSubstr(R"("totalPages":3,"hasNextPage":true)"));
}

TEST(EncodeList, ItemsUseSandboxShape) {
  list_page p;
  p.items = {sample()};
  p.total_items = 1;
  auto json = encode_list(p);
  EXPECT_EQ(json, R"({"items":[)" + encode_sandbox(sample())
                    + R"(],"pagination":{"page":1,"pageSize":20,)"
                      R"("totalItems":1,"totalPages":1,"hasNextPage":false}})");
}

TEST(EncodeEndpoint, HeadersOnlyWhenPresent) {
  endpoint_view e;
  e.endpoint = "192.168.1.100:50002/proxy/44772";
  EXPECT_EQ(encode_endpoint(e),
            R"({"endpoint":"192.168.1.100:50002/proxy/44772"})");
  e.headers = {{"OPENSANDBOX-EGRESS-AUTH", "tok"}};
  EXPECT_EQ(encode_endpoint(e),
            R"({"endpoint":"192.168.1.100:50002/proxy/44772",)"
            R"("headers":{"OPENSANDBOX-EGRESS-AUTH":"tok"}})");
}

TEST(EncodeMisc, RenewErrorAndDetail) {
  EXPECT_EQ(encode_renew(1781260200LL * 1000000),
            R"({"expiresAt":"2026-06-12T10:30:00Z"})");
  EXPECT_EQ(encode_error({ec::sandbox_not_found, "DOCKER::SANDBOX_NOT_FOUND",
                          "Sandbox 123 not found."}),
            R"({"code":"DOCKER::SANDBOX_NOT_FOUND",)"
            R"("message":"Sandbox 123 not found."})");
  EXPECT_EQ(encode_error(
              {ec::invalid_parameter, "X", "quote \" and \\ and \n"}),
            R"({"code":"X","message":"quote \" and \\ and \n"})");
  EXPECT_EQ(encode_detail("int_parsing", R"(["path","port"])",
                          "Input should be a valid integer"),
            R"({"detail":[{"type":"int_parsing","loc":["path","port"],)"
            R"("msg":"Input should be a valid integer","input":null}]})");
  EXPECT_EQ(encode_detail("int_parsing", R"(["path","port"])", "m",
                          R"("abc")", R"({"x":1})"),
            R"({"detail":[{"type":"int_parsing","loc":["path","port"],)"
            R"("msg":"m","input":"abc","ctx":{"x":1}}]})");
}

} // namespace
} // namespace osb::codec
