// The pool API's wire format (http/codec_pools.hpp): the seed's bodies,
// 422 for schema problems, 400 for inconsistent capacities.

#include "http/codec_pools.hpp"
#include "http/status.hpp"

#include "test/unit/http/codec_checks.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace osb::codec {
namespace {

using ::testing::HasSubstr;

const std::string capacity
  = R"("capacitySpec":{"bufferMax":3,"bufferMin":1,"poolMax":10,"poolMin":0})";

std::string pool_body(const std::string& tmpl,
                      const std::string& cap = capacity,
                      const std::string& name = "pool-a") {
  return R"({"name":")" + name + R"(","template":)" + tmpl + "," + cap + "}";
}

pool_record pool_ok(const std::string& json) {
  auto r = decode_create_pool(json, bridge_cfg());
  if (auto rej = std::get_if<rejection>(&r)) {
    ADD_FAILURE() << rej->status << " " << rej->body;
    return {};
  }
  return std::get<pool_record>(r);
}

rejection pool_err(const std::string& json) {
  auto r = decode_create_pool(json, bridge_cfg());
  if (!std::holds_alternative<rejection>(r)) {
    ADD_FAILURE() << "expected a rejection for " << json;
    return {};
  }
  return std::get<rejection>(r);
}

TEST(PoolCodec, CreateRequestShapedTemplate) {
  auto r = pool_ok(pool_body(
    R"({"image":{"uri":"opensandbox/busybox:latest"},)"
    R"("entrypoint":["sleep","3600"],"env":{"A":"1"},)"
    R"("resourceLimits":{"cpu":"500m","memory":"256Mi"},)"
    R"("metadata":{"team":"infra"}})"));
  EXPECT_EQ(r.name, "pool-a");
  EXPECT_EQ(r.tmpl.image, "opensandbox/busybox:latest");
  EXPECT_EQ(r.tmpl.entrypoint,
            (std::vector<std::string>{"sleep", "3600"}));
  EXPECT_EQ(r.tmpl.env, (string_map{{"A", "1"}}));
  EXPECT_EQ(r.tmpl.resource_limits.at("memory"), "256Mi");
  EXPECT_EQ(r.tmpl.metadata.at("team"), "infra");
  EXPECT_EQ(r.capacity.buffer_max, 3);
  EXPECT_EQ(r.capacity.buffer_min, 1);
  EXPECT_EQ(r.capacity.pool_max, 10);
  EXPECT_EQ(r.capacity.pool_min, 0);
}

TEST(PoolCodec, TemplateDefaults) {
  auto r = pool_ok(pool_body(R"({"image":{"uri":"busybox"}})"));
  EXPECT_EQ(r.tmpl.image, "busybox");
  EXPECT_TRUE(r.tmpl.resource_limits.empty());
}

TEST(PoolCodec, PodTemplateSpecShapedTemplate) {
  auto r = pool_ok(pool_body(
    R"({"metadata":{"labels":{"app":"x"}},"spec":{"containers":[)"
    R"({"name":"main","image":"opensandbox/busybox:latest",)"
    R"("command":["sleep"],"args":["3600"],)"
    R"("env":[{"name":"A","value":"1"},{"name":"EMPTY"}],)"
    R"("resources":{"limits":{"cpu":"1","memory":"512Mi"}}},)"
    R"({"name":"side","image":"ignored"}]}})"));
  EXPECT_EQ(r.tmpl.image, "opensandbox/busybox:latest");
  EXPECT_EQ(r.tmpl.entrypoint,
            (std::vector<std::string>{"sleep", "3600"}));
  EXPECT_EQ(r.tmpl.env, (string_map{{"A", "1"}, {"EMPTY", ""}}));
  EXPECT_EQ(r.tmpl.resource_limits.at("cpu"), "1");
  EXPECT_EQ(r.tmpl.resource_limits.at("memory"), "512Mi");
}

TEST(PoolCodec, PodTemplateWithoutImageIs422) {
  auto d = first_detail(
    pool_err(pool_body(R"({"spec":{"containers":[{"name":"main"}]}})")));
  EXPECT_EQ(d.type, "missing");
  EXPECT_EQ(d.loc,
            R"(["body","template","spec","containers",0,"image"])");
  d = first_detail(pool_err(pool_body(R"({"spec":{"containers":[]}})")));
  EXPECT_EQ(d.type, "too_short");
}

TEST(PoolCodec, NameFollowsKubernetesRules) {
  auto tmpl = R"({"image":{"uri":"busybox"}})";
  for (auto bad : {"Pool", "-a", "a-", "a_b", ""}) {
    auto d = first_detail(pool_err(pool_body(tmpl, capacity, bad)));
    EXPECT_EQ(d.type, "string_pattern_mismatch") << bad;
    EXPECT_EQ(d.loc, R"(["body","name"])");
  }
  pool_ok(pool_body(tmpl, capacity, "a"));
  pool_ok(pool_body(tmpl, capacity, "a-1"));
}

TEST(PoolCodec, NegativeSizesAre422) {
  auto d = first_detail(pool_err(pool_body(
    R"({"image":{"uri":"busybox"}})",
    R"("capacitySpec":{"bufferMax":3,"bufferMin":-1,"poolMax":10,"poolMin":0})")));
  EXPECT_EQ(d.type, "greater_than_equal");
  EXPECT_EQ(d.loc, R"(["body","capacitySpec","bufferMin"])");
  d = first_detail(pool_err(pool_body(R"({"image":{"uri":"busybox"}})",
                                      R"("capacitySpec":{"bufferMax":3})")));
  EXPECT_EQ(d.type, "missing");
}

TEST(PoolCodec, BufferMinAboveBufferMaxIs400) {
  auto r = pool_err(pool_body(
    R"({"image":{"uri":"busybox"}})",
    R"("capacitySpec":{"bufferMax":1,"bufferMin":2,"poolMax":10,"poolMin":0})"));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("SANDBOX::INVALID_PARAMETER"));
  EXPECT_THAT(r.body, HasSubstr("bufferMin (2) must not exceed bufferMax (1)"));
}

TEST(PoolCodec, TemplateProblemsAreLocatedUnderTemplate) {
  auto d = first_detail(pool_err(pool_body(R"({"entrypoint":"sh"})")));
  EXPECT_THAT(d.loc, HasSubstr(R"("body","template")"));
  auto r = pool_err(pool_body(R"({"snapshotId":"s1"})"));
  EXPECT_EQ(r.status, 400);
  r = pool_err(pool_body(
    R"({"image":{"uri":"busybox"},"extensions":{"poolRef":"other"}})"));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("poolRef"));
}

TEST(PoolCodec, UpdateTakesTheCapacity) {
  auto r = decode_update_pool(
    R"({"capacitySpec":{"bufferMax":5,"bufferMin":2,"poolMax":9,"poolMin":1}})");
  ASSERT_TRUE(std::holds_alternative<pool_capacity>(r));
  EXPECT_EQ(std::get<pool_capacity>(r).pool_max, 9);
  r = decode_update_pool(R"({})");
  ASSERT_TRUE(std::holds_alternative<rejection>(r));
  EXPECT_EQ(std::get<rejection>(r).status, 422);
  r = decode_update_pool(
    R"({"capacitySpec":{"bufferMax":5,"bufferMin":2,"poolMax":9,"poolMin":10}})");
  ASSERT_TRUE(std::holds_alternative<rejection>(r));
  EXPECT_EQ(std::get<rejection>(r).status, 400);
}

TEST(PoolCodec, ClaimsCannotBringVolumes) {
  sandbox_spec s;
  s.extensions["poolRef"] = "p";
  EXPECT_FALSE(check_pool_claim(s));
  s.volumes_json = R"([{"name":"v"}])";
  auto e = check_pool_claim(s);
  ASSERT_TRUE(e);
  EXPECT_EQ(http::status_of(*e), 400);
  s.extensions.clear();
  EXPECT_FALSE(check_pool_claim(s));
}

TEST(PoolCodec, EncodesTheSeedsPoolResponse) {
  pool_view v;
  v.record.name = "pool-a";
  v.record.tmpl.image = "busybox";
  v.record.capacity.buffer_max = 3;
  v.record.capacity.buffer_min = 1;
  v.record.capacity.pool_max = 10;
  v.record.created_us = 1700000000000000;
  v.status.available = 2;
  v.status.warming = 1;
  v.status.allocated = 4;
  auto s = encode_pool(v);
  EXPECT_THAT(s, HasSubstr(R"("name":"pool-a")"));
  EXPECT_THAT(s, HasSubstr(R"("capacitySpec":{"bufferMax":3,"bufferMin":1,)"
                           R"("poolMax":10,"poolMin":0})"));
  EXPECT_THAT(s, HasSubstr(R"("status":{"total":7,"allocated":4,)"
                           R"("available":2,"revision":")"));
  EXPECT_THAT(s, HasSubstr(R"("createdAt":"2023-11-14T22:13:20)"));
  EXPECT_EQ(encode_pool_list({}), R"({"items":[]})");
  EXPECT_THAT(encode_pool_list({v, v}), HasSubstr(R"({"items":[{"name")"));
}

} // namespace
} // namespace osb::codec
