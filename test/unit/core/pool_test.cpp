// Pool definitions and the refill policy (core/pool.hpp).

#include "core/pool.hpp"

#include <gtest/gtest.h>

namespace osb {
namespace {

pool_capacity cap(int64_t buffer_min, int64_t buffer_max, int64_t pool_min,
                  int64_t pool_max) {
  pool_capacity x;
  x.buffer_min = buffer_min;
  x.buffer_max = buffer_max;
  x.pool_min = pool_min;
  x.pool_max = pool_max;
  return x;
}

pool_counts counts(int64_t warming, int64_t available, int64_t allocated) {
  pool_counts x;
  x.warming = warming;
  x.available = available;
  x.allocated = allocated;
  return x;
}

TEST(PoolPlan, EmptyPoolFillsToTheMiddleOfTheBuffer) {
  auto p = plan_pool(cap(2, 6, 0, 10), counts(0, 0, 0));
  EXPECT_EQ(p.create, 4);
  EXPECT_EQ(p.remove, 0);
}

TEST(PoolPlan, BufferWithinRangeIsLeftAlone) {
  for (int64_t idle = 2; idle <= 6; ++idle) {
    auto p = plan_pool(cap(2, 6, 0, 10), counts(0, idle, 3));
    EXPECT_EQ(p.create, 0) << idle;
    EXPECT_EQ(p.remove, 0) << idle;
  }
}

TEST(PoolPlan, WarmingMembersCountAsBuffer) {
  auto p = plan_pool(cap(2, 6, 0, 10), counts(3, 1, 0));
  EXPECT_EQ(p.create, 0);
}

TEST(PoolPlan, NeverAbovePoolMax) {
  // The buffer wants 4 more, but only 1 fits under poolMax.
  auto p = plan_pool(cap(2, 6, 0, 10), counts(0, 0, 9));
  EXPECT_EQ(p.create, 1);
  p = plan_pool(cap(2, 6, 0, 10), counts(0, 0, 10));
  EXPECT_EQ(p.create, 0);
}

TEST(PoolPlan, ExcessIdleMembersGo) {
  auto p = plan_pool(cap(0, 2, 0, 10), counts(0, 8, 0));
  EXPECT_EQ(p.create, 0);
  EXPECT_EQ(p.remove, 7);
  // Above poolMax after a capacity update: only idle members go.
  p = plan_pool(cap(1, 2, 0, 3), counts(0, 2, 5));
  EXPECT_EQ(p.remove, 2);
}

TEST(PoolPlan, PoolMinRaisesTheTotal) {
  auto p = plan_pool(cap(0, 1, 5, 10), counts(0, 0, 0));
  EXPECT_EQ(p.create, 5);
}

TEST(PoolPlan, ShareSplitsEvenlyWithTheRemainderFirst) {
  auto total = cap(3, 7, 1, 10);
  int64_t sum_max = 0;
  for (size_t i = 0; i < 3; ++i)
    sum_max += share_of(total, i, 3).pool_max;
  EXPECT_EQ(sum_max, 10);
  EXPECT_EQ(share_of(total, 0, 3).buffer_max, 3);
  EXPECT_EQ(share_of(total, 2, 3).buffer_max, 2);
  EXPECT_EQ(share_of(total, 0, 1).buffer_max, 7);
}

TEST(PoolCapacity, Checks) {
  EXPECT_EQ(check_capacity(cap(1, 2, 0, 5)), "");
  EXPECT_NE(check_capacity(cap(3, 2, 0, 5)).find("bufferMin (3) must not "
                                                 "exceed bufferMax (2)"),
            std::string::npos);
  EXPECT_NE(check_capacity(cap(0, 0, 6, 5)).find("poolMin"),
            std::string::npos);
  EXPECT_NE(check_capacity(cap(-1, 0, 0, 5)).find("bufferMin"),
            std::string::npos);
  EXPECT_NE(check_capacity(cap(0, 0, 0, 2000000)).find("poolMax"),
            std::string::npos);
}

sandbox_spec template_spec() {
  sandbox_spec t;
  t.image = "opensandbox/busybox:latest";
  t.entrypoint = {"sleep", "3600"};
  t.env = {{"A", "1"}, {"B", "2"}};
  t.metadata = {{"team", "infra"}};
  t.resource_limits = {{"cpu", "500m"}};
  t.timeout_s = 600;
  return t;
}

TEST(PoolClaim, MergeTakesTheClaimsFields) {
  auto t = template_spec();
  sandbox_spec c;
  c.env = {{"B", "3"}, {"C", "4"}};
  c.metadata = {{"run", "7"}};
  c.timeout_s = 120;
  c.extensions = {{"poolRef", "p"}};
  c.image = "other";
  auto m = merge_claim(t, c);
  EXPECT_EQ(m.image, t.image);
  EXPECT_EQ(m.entrypoint, t.entrypoint);
  EXPECT_EQ(m.env, (string_map{{"A", "1"}, {"B", "3"}, {"C", "4"}}));
  EXPECT_EQ(m.metadata, (string_map{{"team", "infra"}, {"run", "7"}}));
  EXPECT_EQ(m.timeout_s, 120);
  EXPECT_EQ(m.resource_limits, t.resource_limits);
  EXPECT_EQ(pool_ref(m), "p");
}

TEST(PoolClaim, ClaimEntrypointWinsUnlessItIsTheSdkDefault) {
  auto t = template_spec();
  sandbox_spec c;
  c.entrypoint = default_entrypoint();
  EXPECT_EQ(merge_claim(t, c).entrypoint, t.entrypoint);
  c.entrypoint = {"python", "-m", "http.server"};
  EXPECT_EQ(merge_claim(t, c).entrypoint, c.entrypoint);
  c.timeout_s = 0;
  EXPECT_EQ(merge_claim(t, c).timeout_s, 600);
}

TEST(PoolClaim, ServesOnlyTheSameImageLimitsAndPolicy) {
  auto t = template_spec();
  auto r = t;
  r.env = {{"A", "other"}, {"B", "2"}, {"X", "y"}};
  r.metadata.clear();
  r.entrypoint = {"sh"};
  r.timeout_s = 0;
  EXPECT_TRUE(pool_serves(t, r));
  // A template variable the request does not set would show in it.
  r.env.erase("A");
  EXPECT_FALSE(pool_serves(t, r));
  r = t;
  r.volumes_json = R"([{"name":"v","pvc":{"claimName":"c"},"mountPath":"/v"}])";
  EXPECT_FALSE(pool_serves(t, r));
  r = t;
  r.extensions = {{"access.renew.extend.seconds", "60"}};
  EXPECT_FALSE(pool_serves(t, r));
  r = t;
  r.snapshot_id = "s1";
  EXPECT_FALSE(pool_serves(t, r));
  r = t;
  r.resource_limits = {{"cpu", "1"}};
  EXPECT_FALSE(pool_serves(t, r));
  r = t;
  r.network_policy_json = R"({"defaultAction":"deny"})";
  EXPECT_FALSE(pool_serves(t, r));
  r = t;
  r.image = "x";
  EXPECT_FALSE(pool_serves(t, r));
}

TEST(PoolClaim, RefIsTrimmedAndNoteNamesThePool) {
  sandbox_spec s;
  EXPECT_EQ(pool_ref(s), "");
  s.extensions["poolRef"] = "  p1 ";
  EXPECT_EQ(pool_ref(s), "p1");
  EXPECT_EQ(pool_note(s), "");
  s.extensions[pool_cold_extension] = "p1";
  EXPECT_NE(pool_note(s).find("Pool 'p1' had no idle member"),
            std::string::npos);
}

TEST(PoolRecord, JsonRoundTrip) {
  pool_record r;
  r.name = "p1";
  r.tmpl = template_spec();
  r.capacity = cap(1, 2, 0, 5);
  r.created_us = 1700000000000000;
  r.generation = 3;
  r.updated_us = 1700000000000001;
  r.origin = "node-a";
  r.deleted = true;
  pool_record back;
  ASSERT_TRUE(pool_from_json(pool_to_json(r), back));
  EXPECT_EQ(back.name, "p1");
  EXPECT_EQ(back.tmpl.image, r.tmpl.image);
  EXPECT_EQ(back.tmpl.env, r.tmpl.env);
  EXPECT_EQ(back.capacity.buffer_max, 2);
  EXPECT_EQ(back.capacity.pool_max, 5);
  EXPECT_EQ(back.generation, 3);
  EXPECT_EQ(back.origin, "node-a");
  EXPECT_TRUE(back.deleted);
  EXPECT_FALSE(pool_from_json("{}", back));
  EXPECT_FALSE(pool_from_json("not json", back));
}

TEST(PoolRecord, RevisionIsStableAndFollowsTheTemplate) {
  auto t = template_spec();
  EXPECT_EQ(template_revision(t), template_revision(template_spec()));
  EXPECT_EQ(template_revision(t).size(), 16u);
  t.image = "other";
  EXPECT_NE(template_revision(t), template_revision(template_spec()));
}

TEST(PoolRecord, LaterGenerationSupersedes) {
  pool_record a, b;
  a.generation = 2;
  b.generation = 1;
  EXPECT_TRUE(supersedes(a, b));
  EXPECT_FALSE(supersedes(b, a));
  b.generation = 2;
  a.updated_us = 5;
  b.updated_us = 4;
  EXPECT_TRUE(supersedes(a, b));
}

} // namespace
} // namespace osb
