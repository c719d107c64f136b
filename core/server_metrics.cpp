#include "core/server_metrics.hpp"

#include "core/model.hpp"

#include <algorithm>

namespace osb {

namespace {

server_metrics make() {
  auto& r = metrics::global();
  auto& proxy_bytes = r.counters("opensandbox_proxy_bytes_total",
                                 "Bytes the server proxy relayed, by "
                                 "direction (upstream = to the sandbox).",
                                 {"direction"});
  return server_metrics{
    r.gauges("opensandbox_sandboxes",
             "Sandboxes owned by this node, by lifecycle state.", {"state"}),
    r.histograms("opensandbox_sandbox_create_phase_seconds",
                 "Seconds from the previous phase of a create to this one "
                 "(accepted, stored, prepared, created, started, running).",
                 {"phase"}, metrics::phase_buckets()),
    r.counters("opensandbox_sandbox_create_failures_total",
               "Creates that ended Failed, by reason.", {"reason"}),
    r.counters("opensandbox_sandbox_expiries_total",
               "Sandboxes whose expiry timer fired.")
      .with({}),
    r.counters("opensandbox_sandbox_recoveries_total",
               "Sandboxes re-adopted from the runtime at start.")
      .with({}),
    r.counters("opensandbox_orphans_removed_total",
               "Orphaned containers and sidecars removed.")
      .with({}),
    r.counters("opensandbox_http_requests_total",
               "HTTP requests answered, by method, route pattern and status.",
               {"method", "route", "code"}),
    r.histograms("opensandbox_http_request_duration_seconds",
                 "Seconds from a request's arrival to its answer, by route "
                 "pattern.",
                 {"route"}),
    r.histograms("opensandbox_runtime_request_duration_seconds",
                 "Seconds of runtime (Docker) operations, by operation.",
                 {"operation"}),
    r.counters("opensandbox_proxy_requests_total",
               "Requests the server proxy forwarded.")
      .with({}),
    r.counters("opensandbox_proxy_connections_total",
               "Upstream connections the server proxy opened.")
      .with({}),
    proxy_bytes.with({"upstream"}),
    proxy_bytes.with({"downstream"}),
    r.counters("opensandbox_snapshot_transitions_total",
               "Snapshots that became Ready or Failed, by state and reason.",
               {"state", "reason"}),
    r.histograms("opensandbox_snapshot_commit_seconds",
                 "Seconds of successful snapshot commits.", {},
                 metrics::phase_buckets())
      .with({}),
    r.counters("opensandbox_pool_claims_total",
               "Creates with extensions.poolRef, by how they were served "
               "(cold: the template created on demand; warm: an idle "
               "member).",
               {"served"}),
  };
}

} // namespace

server_metrics& ops_metrics() {
  static server_metrics instance = [] {
    auto x = make();
    // Every state and phase shows from the first scrape on, at zero.
    for (auto s : {sandbox_state::pending, sandbox_state::running,
                   sandbox_state::pausing, sandbox_state::paused,
                   sandbox_state::resuming, sandbox_state::stopping,
                   sandbox_state::terminated, sandbox_state::failed})
      x.sandboxes.with({to_string(s)});
    x.pool_claims.with({"cold"});
    x.pool_claims.with({"warm"});
    for (size_t i = 1; i < num_create_phases; ++i)
      x.create_phase.with({to_string(static_cast<create_phase>(i))});
    return x;
  }();
  return instance;
}

} // namespace osb

namespace osb {

void create_timeline::mark(create_phase p, int64_t now_us) {
  auto i = static_cast<size_t>(p);
  int64_t expected = 0;
  if (!at_us_[i].compare_exchange_strong(expected, now_us,
                                         std::memory_order_acq_rel))
    return;
  if (i == 0)
    return;
  // Only a create seen from its start is timed (not one resumed after a
  // restart, whose gaps include the downtime).
  for (size_t j = 0; j < i; ++j)
    if (at_us_[j].load(std::memory_order_acquire) == 0)
      return;
  auto prev = at_us_[i - 1].load(std::memory_order_acquire);
  ops_metrics().create_phase.with({to_string(p)}).observe(
    static_cast<double>(std::max<int64_t>(0, now_us - prev)) / 1e6);
}

std::vector<int64_t> create_timeline::snapshot() const {
  std::vector<int64_t> out(num_create_phases);
  for (size_t i = 0; i < num_create_phases; ++i)
    out[i] = at_us_[i].load(std::memory_order_acquire);
  return out;
}

state_gauge_slot::~state_gauge_slot() {
  if (current_ != nullptr)
    current_->dec();
}

void state_gauge_slot::set(sandbox_state x) {
  auto& next = ops_metrics().sandboxes.with({to_string(x)});
  if (&next == current_)
    return;
  if (current_ != nullptr)
    current_->dec();
  next.inc();
  current_ = &next;
}

} // namespace osb
