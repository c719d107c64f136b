// The snapshot routes (http/api_snapshots.cpp).

#include "http/api.hpp"

#include "test/unit/http/api_fixture.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace osb;
using namespace osb::http;
using namespace osb::test;

// -- snapshots ----------------------------------------------------------------

TEST_F(Api, CreateSnapshotAnswers202WithLocationUnderV1) {
  for (const char* prefix : {"", "/v1"}) {
    auto res = call("POST", std::string{prefix} + "/sandboxes/sbx-001/snapshots",
                    {}, R"({"name":"before","extra":1})");
    EXPECT_EQ(res.status, 202);
    EXPECT_EQ(header_of(res, "location"), "/v1/snapshots/snap-1");
    EXPECT_EQ(
      res.body,
      R"({"id":"snap-1","sandboxId":"sbx-001","name":"before","status":{"state":"Creating","reason":"snapshot_accepted","message":"Snapshot creation accepted.","lastTransitionAt":"2023-11-14T22:13:20Z"},"createdAt":"2023-11-14T22:13:20Z"})");
    EXPECT_EQ(backend->last_snapshot_name, "before");
  }
  // The body is optional; an empty name is not.
  EXPECT_EQ(call("POST", "/v1/sandboxes/sbx-001/snapshots").status, 202);
  EXPECT_EQ(backend->last_snapshot_name, "");
  EXPECT_EQ(call("POST", "/v1/sandboxes/sbx-001/snapshots", {}, "{}").status,
            202);
  auto bad = call("POST", "/v1/sandboxes/sbx-001/snapshots", {},
                  R"({"name":""})");
  EXPECT_EQ(bad.status, 422);
  EXPECT_NE(bad.body.find("string_too_short"), std::string::npos);
  EXPECT_EQ(call("POST", "/v1/sandboxes/sbx-001/snapshots", {},
                 R"({"name":7})")
              .status,
            422);
  EXPECT_EQ(call("POST", "/v1/sandboxes/sbx-001/snapshots", {}, "{").status,
            422);
  auto missing = call("POST", "/v1/sandboxes/nope/snapshots");
  EXPECT_EQ(missing.status, 404);
}

TEST_F(Api, SnapshotListGetAndDelete) {
  auto res = call("GET", "/v1/snapshots?sandboxId=sbx-001&state=Ready&state="
                         "Failed&page=2&pageSize=5&name=nightly");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(
    res.body,
    R"({"items":[],"pagination":{"page":2,"pageSize":5,"totalItems":0,"totalPages":0,"hasNextPage":false}})");
  EXPECT_EQ(backend->last_snapshot_query.sandbox_id, "sbx-001");
  EXPECT_TRUE(backend->last_snapshot_query.by_name);
  EXPECT_EQ(backend->last_snapshot_query.name, "nightly");
  EXPECT_EQ(backend->last_snapshot_query.states,
            (std::vector<std::string>{"Ready", "Failed"}));
  EXPECT_EQ(call("GET", "/v1/snapshots?pageSize=201").status, 422);
  EXPECT_EQ(call("GET", "/v1/snapshots?page=0").status, 422);
  auto got = call("GET", "/v1/snapshots/s-9");
  EXPECT_EQ(got.status, 404);
  EXPECT_EQ(got.body,
            R"({"code":"SNAPSHOT::NOT_FOUND","message":"Snapshot s-9 not found"})");
  EXPECT_EQ(backend->last_id, "s-9");
  EXPECT_EQ(call("DELETE", "/snapshots/s-9").status, 204);
  auto busy = call("DELETE", "/v1/snapshots/busy");
  EXPECT_EQ(busy.status, 409);
  EXPECT_NE(busy.body.find("SNAPSHOT::DELETE_CONFLICT"), std::string::npos);
}
