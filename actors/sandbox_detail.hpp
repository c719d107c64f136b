#pragma once

// Internals of the SANDBOX actor shared by sandbox.cpp (state machine,
// provisioning, deletion) and sandbox_requests.cpp (claim, renew, pause and
// resume, diagnostics).

#include <chrono>
#include <functional>
#include <string>

#include "actors/sandbox.hpp"

namespace osb::sandbox_detail {

using self_ptr = sandbox_actor::stateful_pointer<sandbox_actor_state>;

/// Where an operation's answer (or error) goes.
using answer_promise = caf::typed_response_promise<sandbox_answer>;

constexpr auto store_timeout = std::chrono::seconds(30);
constexpr const char* component = "sandbox";

// -- helpers (sandbox.cpp) ----------------------------------------------------

/// Runtime calls get the configured runtime API timeout plus slack.
caf::timespan runtime_timeout(self_ptr self);

/// Removals and diagnostics take a few runtime calls in a row.
caf::timespan chain_timeout(self_ptr self);

const std::string& sid(self_ptr self);

/// The sandbox as its runtime sees it (ports may change before the start).
runtimes::sandbox_instance instance(self_ptr self);

/// Has the runtime keep the current expiry and metadata with the workload
/// (runtime::record), after the store has them; failures are logged.
/// `then` runs once the runtime answered (either way): an answer given only
/// then is not lost when this replica dies and another adopts the workload
/// from what it keeps (Kubernetes).
void record(self_ptr self, std::function<void()> then = {});

/// Moves the state machine and the API view to a new state.
void transition(self_ptr self, sandbox_phase phase, sandbox_state api_state,
                std::string reason, std::string message);

void set_running(self_ptr self);

void set_paused(self_ptr self);

/// The answer for a store write that failed (504 when it timed out).
caf::error store_error(self_ptr self, const caf::error& err,
                       const char* what);

/// Arms the expiry timer for the current `expiresAt`.
void arm_expiry(self_ptr self);

/// Starts deleting (the intent durable first).
void begin_delete(self_ptr self, const std::string& why);

/// Ends a provisioning step; true when a deletion arrived meanwhile and has
/// now taken over.
bool finish_step(self_ptr self);

caf::error not_found(self_ptr self);

// -- requests (sandbox_requests.cpp) ------------------------------------------

/// Claims an idle pool member (durable before the answer).
caf::result<sandbox_view> claim_member(self_ptr self, sandbox_spec claimed,
                                       std::string rid);

/// Moves the expiry to `expires_us` (durable before the answer).
void renew_to(self_ptr self, int64_t expires_us, const std::string& rid,
              answer_promise rp);

/// Pauses (`on`) or resumes a sandbox through its runtime.
void freeze(self_ptr self, bool on, const std::string& rid,
            answer_promise rp);

/// Has the runtime render a diagnostics report.
void diagnose(self_ptr self, diagnostics_query q, answer_promise rp);

/// Runs an operation of core/sandbox_ops.hpp and answers it through `rp`.
void run_op(self_ptr self, sandbox_op& op, const std::string& rid,
            answer_promise rp);

} // namespace osb::sandbox_detail
