#pragma once

// The server's metric families, named as issue 15 and docs/metrics.md say,
// in the process's one registry (base/metrics.hpp). Each layer records
// into them where the event happens; none carries a per-sandbox label.

#include "base/metrics.hpp"

#include <string_view>

namespace osb {

/// The families of opensandbox-server.
struct server_metrics {
  /// `opensandbox_sandboxes{state}`: sandboxes this node owns, by API state.
  metrics::gauge_family& sandboxes;
  /// `opensandbox_sandbox_create_phase_seconds{phase}`: time from the
  /// previous phase of a create to this one (see create_phase).
  metrics::histogram_family& create_phase;
  /// `opensandbox_sandbox_create_failures_total{reason}`.
  metrics::counter_family& create_failures;
  /// `opensandbox_sandbox_expiries_total`: expiry timers that fired.
  metrics::counter& expiries;
  /// `opensandbox_sandbox_recoveries_total`: sandboxes re-adopted from the
  /// runtime at start.
  metrics::counter& recoveries;
  /// `opensandbox_orphans_removed_total`.
  metrics::counter& orphans_removed;
  /// `opensandbox_http_requests_total{method,route,code}`.
  metrics::counter_family& http_requests;
  /// `opensandbox_http_request_duration_seconds{route}`.
  metrics::histogram_family& http_duration;
  /// `opensandbox_runtime_request_duration_seconds{operation}`.
  metrics::histogram_family& runtime_duration;
  /// `opensandbox_proxy_requests_total`: requests the server proxy forwarded.
  metrics::counter& proxy_requests;
  /// `opensandbox_proxy_connections_total`: upstream connections opened.
  metrics::counter& proxy_connections;
  /// `opensandbox_proxy_bytes_total{direction}`: bytes relayed
  /// (`upstream` = to the sandbox, `downstream` = to the client).
  metrics::counter& proxy_bytes_up;
  metrics::counter& proxy_bytes_down;
  /// `opensandbox_snapshot_transitions_total{state,reason}`: snapshots that
  /// became Ready or Failed (reason: the record's fixed reason code).
  metrics::counter_family& snapshot_transitions;
  /// `opensandbox_snapshot_commit_seconds`: Docker commits that succeeded.
  metrics::histogram& snapshot_commit;
  /// `opensandbox_pool_claims_total{served}`: poolRef creates, `cold` (the
  /// template created on demand) or `warm` (an idle member taken).
  metrics::counter_family& pool_claims;
};

/// The families, registered on first use in metrics::global().
server_metrics& ops_metrics();

} // namespace osb

#include "core/model.hpp"

#include <array>
#include <vector>

namespace osb {

/// When each phase of one create was reached, written from the sandbox
/// actor and from the runtime's threads (hence atomics). Marking a phase
/// records its time once and, when every earlier phase is known, observes
/// the time since the previous one in `opensandbox_sandbox_create_phase_
/// seconds`.
class create_timeline {
public:
  /// Marks `p` at `now_us` (µs since the epoch); a second mark is ignored.
  void mark(create_phase p, int64_t now_us);

  /// The times by phase (0 = not reached).
  std::vector<int64_t> snapshot() const;

private:
  std::array<std::atomic<int64_t>, num_create_phases> at_us_{};
};

/// Counts one sandbox in `opensandbox_sandboxes{state}`: moves between
/// states with it and leaves the gauge when destroyed.
class state_gauge_slot {
public:
  state_gauge_slot() = default;
  state_gauge_slot(const state_gauge_slot&) = delete;
  state_gauge_slot& operator=(const state_gauge_slot&) = delete;
  ~state_gauge_slot();

  /// Counts the sandbox as `x` from now on.
  void set(sandbox_state x);

private:
  metrics::gauge* current_ = nullptr;
};

} // namespace osb
