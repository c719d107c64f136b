// The lease decisions of a replica fleet as pure functions of what was seen
// and a fake clock (runtimes/kubernetes/lease.hpp).

#include <gtest/gtest.h>

#include <set>

#include "runtimes/kubernetes/lease.hpp"
#include "runtimes/ownership.hpp"

using namespace osb::runtimes::kubernetes;
using namespace std::chrono_literals;

namespace {

/// A fake steady clock: a fixed origin plus whatever the test adds.
lease_clock::time_point at(std::chrono::milliseconds t) {
  return lease_clock::time_point{} + 1000h + t;
}

} // namespace

TEST(Lease, NamesAndHolders) {
  EXPECT_EQ(lease_name("it-a"), "opensandbox-it-a");
  EXPECT_EQ(holder_identity("it-a", "1f2e"), "it-a/1f2e");
  EXPECT_EQ(holder_node("it-a/1f2e"), "it-a");
  EXPECT_EQ(holder_node("bare"), "bare");
}

TEST(Lease, WrittenLeaseReadsBack) {
  auto body = make_lease("it-a", "it-a/1", 3, 1765000000123456, "42");
  auto f = read_lease(body);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->name, "opensandbox-it-a");
  EXPECT_EQ(f->node, "it-a");
  EXPECT_EQ(f->holder, "it-a/1");
  EXPECT_EQ(f->resource_version, "42");
  EXPECT_EQ(f->duration_s, 3);
  // MicroTime has six fraction digits.
  EXPECT_NE(body.find(".123456Z"), std::string::npos) << body;
  EXPECT_NE(make_lease("it-a", "x", 3, 1765000000000000).find(".000000Z"),
            std::string::npos);
  // Leases of others (no replica label) are not ours to judge.
  EXPECT_FALSE(read_lease(R"({"metadata":{"name":"kube-scheduler"},)"
                          R"("spec":{"holderIdentity":"x"}})"));
  EXPECT_FALSE(read_lease("not json"));
}

TEST(Lease, ExpiryIsJudgedByTheObserversClockFromTheLastChange) {
  lease_sighting s;
  see(s, "10", at(0ms));
  EXPECT_FALSE(expired(s, 3000ms, at(2999ms)));
  EXPECT_TRUE(expired(s, 3000ms, at(3000ms)));
  // A renewal (a new resourceVersion) restarts the observer's clock,
  // whatever renewTime the holder wrote with its own clock.
  see(s, "11", at(2500ms));
  EXPECT_FALSE(expired(s, 3000ms, at(5000ms)));
  EXPECT_TRUE(expired(s, 3000ms, at(5500ms)));
  // Seeing the same version again (a re-list) changes nothing.
  see(s, "11", at(5400ms));
  EXPECT_TRUE(expired(s, 3000ms, at(5500ms)));
}

TEST(Lease, FencedOnceTheOwnRenewalIsADurationOld) {
  // Never renewed while a lease is required: fenced.
  EXPECT_TRUE(fenced(std::nullopt, 3000ms, at(0ms)));
  // Judged from the renewal's send time, not its answer: a peer that saw
  // the change later (after it was sent) waits at least as long.
  EXPECT_FALSE(fenced(at(1000ms), 3000ms, at(3999ms)));
  EXPECT_TRUE(fenced(at(1000ms), 3000ms, at(4000ms)));
}

TEST(Lease, ObserverNeverAdoptsBeforeTheOwnerFencedItself) {
  // The owner sends a renewal at t=1000 that the API server applies at
  // t=1200; a peer sees it at t=1300. The owner is fenced from 4000 on,
  // the peer judges the lease expired from 4300 on: never both own it.
  lease_sighting s;
  see(s, "7", at(1300ms));
  for (auto t = 0ms; t < 10000ms; t += 50ms) {
    bool owner_acts = !fenced(at(1000ms), 3000ms, at(t));
    bool peer_adopts = expired(s, 3000ms, at(t));
    EXPECT_FALSE(owner_acts && peer_adopts) << "at " << t.count() << " ms";
  }
}

TEST(Lease, OneAdopterGoesFirstAndTheOthersTakeTurns) {
  std::vector<std::string> live{"it-c", "it-a", "it-b"};
  std::set<long long> delays;
  for (auto& self : live)
    delays.insert(adoption_delay(self, live, "it-lost", 1000ms).count());
  // Every live replica has its own turn: 0, 1 and 2 steps.
  EXPECT_EQ(delays, (std::set<long long>{0, 1000, 2000}));
  // Deterministic: the same inputs give the same order on every replica.
  EXPECT_EQ(adoption_delay("it-b", live, "it-lost", 1000ms),
            adoption_delay("it-b", {"it-a", "it-b", "it-c"}, "it-lost",
                           1000ms));
  // Different lost replicas start at different places (spread).
  std::set<std::string> firsts;
  for (auto lost : {"x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8"})
    for (auto& self : live)
      if (adoption_delay(self, live, lost, 1000ms) == 0ms)
        firsts.insert(self);
  EXPECT_GT(firsts.size(), 1u);
  // Alone, a replica adopts at once.
  EXPECT_EQ(adoption_delay("it-a", {"it-a"}, "it-b", 1000ms), 0ms);
}

TEST(Lease, GateFencesByDeadline) {
  osb::runtimes::ownership_gate g;
  EXPECT_FALSE(g.fenced());
  EXPECT_TRUE(g.reason().empty());
  auto now = lease_clock::now();
  g.valid_until_ns = osb::runtimes::ownership_gate::to_ns(now + 3s);
  EXPECT_FALSE(g.fenced(now + 2s));
  EXPECT_TRUE(g.fenced(now + 3s));
  g.valid_until_ns = 0;
  EXPECT_TRUE(g.fenced());
  EXPECT_FALSE(g.reason().empty());
}
