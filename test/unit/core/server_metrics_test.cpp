// The server's metric helpers: a create's timeline (each phase once, timed
// only when seen from the start) and a sandbox's slot in the state gauge.

#include "core/server_metrics.hpp"

#include <gtest/gtest.h>

using namespace osb;

namespace {

metrics::histogram& phase(create_phase p) {
  return ops_metrics().create_phase.with({to_string(p)});
}

} // namespace

TEST(CreateTimeline, MarksEachPhaseOnceAndTimesTheStep) {
  metrics::set_enabled(true);
  auto n0 = phase(create_phase::stored).count();
  auto s0 = phase(create_phase::stored).sum();
  create_timeline t;
  t.mark(create_phase::accepted, 1'000'000);
  t.mark(create_phase::stored, 1'250'000);
  t.mark(create_phase::stored, 9'000'000); // ignored: already reached
  EXPECT_EQ(phase(create_phase::stored).count(), n0 + 1);
  EXPECT_NEAR(phase(create_phase::stored).sum() - s0, 0.25, 1e-9);
  auto xs = t.snapshot();
  ASSERT_EQ(xs.size(), num_create_phases);
  EXPECT_EQ(xs[0], 1'000'000);
  EXPECT_EQ(xs[1], 1'250'000);
  EXPECT_EQ(xs[2], 0);
}

TEST(CreateTimeline, ACreateNotSeenFromItsStartIsNotTimed) {
  metrics::set_enabled(true);
  auto n0 = phase(create_phase::running).count();
  create_timeline t;
  // Resumed after a restart: `stored` was never seen by this process.
  t.mark(create_phase::accepted, 1'000'000);
  t.mark(create_phase::running, 5'000'000);
  EXPECT_EQ(phase(create_phase::running).count(), n0);
  EXPECT_EQ(t.snapshot()[5], 5'000'000);
}

TEST(StateGaugeSlot, MovesWithTheSandboxAndLeavesWithIt) {
  metrics::set_enabled(true);
  auto& running = ops_metrics().sandboxes.with({"Running"});
  auto& paused = ops_metrics().sandboxes.with({"Paused"});
  auto r0 = running.value();
  auto p0 = paused.value();
  {
    state_gauge_slot slot;
    slot.set(sandbox_state::running);
    slot.set(sandbox_state::running);
    EXPECT_EQ(running.value(), r0 + 1);
    slot.set(sandbox_state::paused);
    EXPECT_EQ(running.value(), r0);
    EXPECT_EQ(paused.value(), p0 + 1);
  }
  EXPECT_EQ(paused.value(), p0);
}
