// Pool definitions and the refill policy (core/pool.hpp).

#include "core/pool.hpp"

#include <gtest/gtest.h>

#include <algorithm>

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


// -- cluster (docs/pools.md "Cluster") ----------------------------------------

TEST(PoolCluster, ShareFollowsTheMembership) {
  auto total = cap(4, 4, 0, 10);
  auto share = [&](const std::string& self,
                   std::vector<std::string> up) {
    auto [index, count] = rank_of(self, std::move(up));
    return share_of(total, index, count);
  };
  // Alone: the whole pool; the rank is by name, whatever the order given.
  EXPECT_EQ(rank_of("n2", {}), (std::pair<size_t, size_t>{0, 1}));
  EXPECT_EQ(rank_of("n2", {"n3", "n1", "n2"}),
            (std::pair<size_t, size_t>{1, 3}));
  EXPECT_EQ(rank_of("n2", {"n3", "n1"}), (std::pair<size_t, size_t>{1, 3}));
  EXPECT_EQ(share("n2", {"n2"}).buffer_max, 4);
  // Three up: 2 + 1 + 1, poolMax 4 + 3 + 3: the sums stay the pool's.
  int64_t buffer = 0, pool_max = 0;
  for (auto n : {"n1", "n2", "n3"}) {
    buffer += share(n, {"n1", "n2", "n3"}).buffer_max;
    pool_max += share(n, {"n1", "n2", "n3"}).pool_max;
  }
  EXPECT_EQ(buffer, 4);
  EXPECT_EQ(pool_max, 10);
  EXPECT_EQ(share("n1", {"n1", "n2", "n3"}).buffer_max, 2);
  EXPECT_EQ(share("n3", {"n1", "n2", "n3"}).buffer_max, 1);
  // n1 dies: n2 and n3 take its share over.
  EXPECT_EQ(share("n2", {"n2", "n3"}).buffer_max, 2);
  EXPECT_EQ(share("n3", {"n2", "n3"}).buffer_max, 2);
  // It returns: theirs shrink again, and the plan removes idle members.
  auto back = share("n3", {"n1", "n2", "n3"});
  EXPECT_EQ(plan_pool(back, counts(0, 2, 0)).remove, 1);
  EXPECT_EQ(plan_pool(back, counts(0, 2, 0)).create, 0);
  // Claimed members are never removed, only idle ones.
  EXPECT_EQ(plan_pool(back, counts(0, 0, 3)).remove, 0);
}

TEST(PoolCluster, ClaimGoesToThePeerWithTheMostIdle) {
  EXPECT_EQ(pick_peer({}), "");
  EXPECT_EQ(pick_peer({{"n2", 0}, {"n3", 0}}), "");
  EXPECT_EQ(pick_peer({{"n2", 1}, {"n3", 3}}), "n3");
  // Equals: the smallest name.
  EXPECT_EQ(pick_peer({{"n3", 2}, {"n2", 2}}), "n2");
  // A stale negative count (claims forwarded at once) never wins.
  EXPECT_EQ(pick_peer({{"n2", -1}, {"n3", 0}}), "");
}

TEST(PoolCluster, RecordsConvergeInAnyOrder) {
  auto make = [](int64_t gen, int64_t at, const std::string& origin,
                 bool deleted, int64_t max) {
    pool_record r;
    r.name = "p";
    r.generation = gen;
    r.updated_us = at;
    r.created_us = at;
    r.origin = origin;
    r.deleted = deleted;
    r.capacity.buffer_max = max;
    return r;
  };
  // Two creates of one name at once (generation 1 on n1 and n2), a
  // capacity update of n2's, a delete, and the same create replayed.
  std::vector<pool_record> xs = {make(1, 100, "n1", false, 1),
                                 make(1, 100, "n2", false, 2),
                                 make(2, 150, "n2", false, 3),
                                 make(3, 200, "n1", true, 3),
                                 make(1, 100, "n1", false, 1)};
  std::vector<size_t> order = {0, 1, 2, 3, 4};
  int runs = 0;
  do {
    std::map<std::string, pool_record> records;
    for (auto i : order)
      merge_record(records, xs[i]);
    // The delete wins; a replayed older create never brings it back.
    ASSERT_EQ(records.size(), 1u);
    EXPECT_TRUE(records["p"].deleted);
    EXPECT_EQ(records["p"].generation, 3);
    ++runs;
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(runs, 120);
  // The race of two creates: the later one, at equal times the greater
  // node name, on every node.
  std::map<std::string, pool_record> a, b;
  merge_record(a, xs[0]);
  merge_record(a, xs[1]);
  merge_record(b, xs[1]);
  merge_record(b, xs[0]);
  EXPECT_EQ(a["p"].origin, "n2");
  EXPECT_EQ(b["p"].origin, "n2");
  auto later = make(1, 101, "n1", false, 1);
  EXPECT_FALSE(merge_record(a, xs[1]));
  EXPECT_TRUE(merge_record(a, later));
  EXPECT_EQ(a["p"].origin, "n1");
}

} // namespace
} // namespace osb
