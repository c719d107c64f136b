#pragma once

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "core/config.hpp"
#include "core/model.hpp"
#include "core/server_metrics.hpp"
#include "runtimes/ownership.hpp"
#include "runtimes/runtime.hpp"
#include "store/sqlite_store.hpp"

namespace osb {

/// Internal phases of a sandbox. The API state is derived from the phase.
///
/// ```
///   provisioning ──► running ◄──► pausing/paused/resuming
///        │              │  (entry process exits)
///        ▼              ▼
///      failed         exited
///   any phase ──(delete | expiry)──► deleting ──► (actor quits)
/// ```
enum class sandbox_phase : uint8_t {
  provisioning,
  running,
  pausing,
  paused,
  resuming,
  exited,
  failed,
  deleting,
};

/// How a sandbox actor starts.
struct sandbox_init {
  std::shared_ptr<const node_config> cfg;
  /// The durable row (fresh for a create, loaded for a recovery).
  store::sandbox_row row;
  sandbox_spec spec;
  node_actor node;
  /// The RUNTIME actor of the sandbox's host.
  runtime_actor runtime;
  store_actor store;
  /// The HOST SUPERVISOR that reserves the sandbox's host ports.
  supervisor_actor supervisor;
  /// Host reaching the published ports; empty = the node's public host.
  std::string endpoint_host;
  /// True when brought back after a restart (the row is already stored).
  bool recovered = false;
  /// Workload status observed at recovery (runtimes::workload; "" = none).
  std::string observed_status;
  int32_t observed_exit_code = 0;
  /// The sandbox's own address observed at recovery
  /// (runtimes::workload_state::address; "" = the host's endpoint host).
  std::string observed_address;
  /// While fenced (runtimes/ownership.hpp) expiry waits and deletes answer
  /// 503; null = never fenced.
  std::shared_ptr<const runtimes::ownership_gate> gate;
  /// A create is answered once the workload object exists, not once the
  /// row is stored (runtimes::admission::state_in_workload).
  bool ack_when_created = false;
};

struct sandbox_actor_state {
  static inline const char* name = "sandbox";
  /// Server configuration.
  std::shared_ptr<const node_config> cfg;
  /// See sandbox_init::gate.
  std::shared_ptr<const runtimes::ownership_gate> gate;
  /// What the store holds for this sandbox (kept in sync, written whole).
  store::sandbox_row row;
  /// The validated create request.
  sandbox_spec spec;
  /// What the API reports; pushed to the NODE actor on every change.
  sandbox_view view;
  /// Current phase of the state machine.
  sandbox_phase phase = sandbox_phase::provisioning;
  /// Generation of the expiry timer; bumped to void pending timers.
  uint64_t epoch = 0;
  /// True while a step of provisioning is outstanding (the runtime's, or
  /// the supervisor's new ports).
  bool step_in_flight = false;
  /// Stops the provisioning under way (set on delete and when the actor
  /// goes: a provisioning never outlives its sandbox's actor).
  runtimes::cancel_flag cancel;
  /// True when objects of a crashed provisioning may exist and must go
  /// first.
  bool remove_before_create = false;
  /// Provisionings retried because an earlier create still held the name.
  int conflict_retries = 0;
  /// Local time (µs) of the last transition made by this actor; older
  /// runtime observations are ignored.
  int64_t local_transition_us = 0;
  /// True until the workload first ran: a sandbox that never ran takes
  /// every volume the server created for it along when it goes.
  bool never_ran = true;
  /// Request id that created the sandbox (for provisioning logs).
  std::string origin_rid;
  /// See sandbox_init::ack_when_created.
  bool ack_when_created = false;
  /// The create's answer, held back until the workload object exists
  /// (`ack_when_created`); empty once answered.
  std::optional<caf::typed_response_promise<sandbox_view>> pending_ack;
  /// Endpoint lookups waiting for the container to start.
  std::vector<caf::typed_response_promise<sandbox_view>> start_waiters;
  /// Generation of the `started` release timers.
  uint64_t start_wait_gen = 0;
  /// Snapshots being taken; the runtime may pause the sandbox for each,
  /// which is neither a pause request nor worth reporting.
  std::set<std::string> snapshots_in_flight;
  /// When the last snapshot ended (µs): listings asked before then may
  /// still show the commit's pause.
  int64_t last_snapshot_end_us = 0;
  /// DELETE requests waiting for the removal.
  std::vector<caf::typed_response_promise<sandbox_answer>> delete_waiters;
  /// Starts retried with new host ports (another program held one).
  int port_retries = 0;
  /// When each phase of its create was reached (shared with the runtime's
  /// phase callback); null for a sandbox recovered after its create.
  std::shared_ptr<create_timeline> timeline;
  /// Its count in `opensandbox_sandboxes{state}`.
  state_gauge_slot counted;
  supervisor_actor supervisor;
  node_actor node;
  runtime_actor runtime;
  store_actor store;

  /// Stops a provisioning still under way.
  ~sandbox_actor_state();
};

/// Implements the SANDBOX actor.
/// @param init Configuration, durable row and collaborators.
sandbox_actor::behavior_type
sandbox(sandbox_actor::stateful_pointer<sandbox_actor_state> self, sandbox_init init);

/// Builds the API view of a sandbox from its durable row and spec (state
/// fields left for the caller).
sandbox_view make_view(const node_config& cfg, const store::sandbox_row& row,
                       const sandbox_spec& spec);

/// The sandbox as its runtime sees it: the durable row and the request.
runtimes::sandbox_instance make_instance(const store::sandbox_row& row,
                                         const sandbox_spec& spec);

} // namespace osb
