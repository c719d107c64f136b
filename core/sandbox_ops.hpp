#pragma once

// The operations on one existing sandbox, as data. The HTTP side builds a
// `sandbox_request`; the gateway and the NODE actor forward it by sandbox id
// (to the owning node in one hop, then to the SANDBOX actor) without
// knowing the operation; the SANDBOX actor runs it
// (actors/sandbox_requests.cpp) and answers a `sandbox_answer`.
//
// Adding an operation (docs/architecture.md, "Adding an operation"): its
// struct here (fields, `answer`, `traits`, `inspect`) and its alternative
// in `sandbox_op`; its run() in actors/sandbox_requests.cpp; its route and
// handler in http/. Nothing in between changes.

#include <cstdint>
#include <string>
#include <variant>

#include "core/model.hpp"

namespace osb {

/// How the NODE actor treats an operation.
struct op_traits {
  /// Names the operation in replay keys and logs.
  const char* name;
  /// Changes the sandbox: a forward to a peer that gets no answer fails
  /// with `ec::outcome_unknown` (a read's with `ec::node_unavailable`).
  bool mutation;
  /// Runs at most once per X-Request-ID (actors/replay.hpp).
  bool replayed;
  /// May take a runtime round trip on the owner: peers get 60 s, not 5 s.
  bool slow;
};

/// Freezes a running sandbox (Running -> Paused).
struct pause_op {
  using answer = sandbox_view;
  static constexpr op_traits traits{"pause", true, true, true};
};

/// Thaws a paused sandbox (Paused -> Running).
struct resume_op {
  using answer = sandbox_view;
  static constexpr op_traits traits{"resume", true, true, true};
};

/// Deletes the sandbox; answers "" once its containers are gone, else why
/// their removal is still pending (recorded durably and retried).
struct remove_op {
  using answer = std::string;
  static constexpr op_traits traits{"remove", true, true, true};
};

/// Moves the expiry to a time; answers the new expiry (µs since epoch).
struct renew_op {
  using answer = int64_t;
  static constexpr op_traits traits{"renew", true, true, true};
  int64_t expires_us = 0;
};

/// Renew-on-access: moves the expiry to at least a time, only if Running
/// and only ever later; answers the expiry.
struct extend_op {
  using answer = int64_t;
  static constexpr op_traits traits{"extend", true, false, true};
  int64_t at_least_us = 0;
};

/// Applies a metadata merge patch; answers the sandbox.
struct patch_op {
  using answer = sandbox_view;
  static constexpr op_traits traits{"patch", true, true, true};
  metadata_patch patch;
};

/// Renders a diagnostics report (plain text); logs take a while to read.
struct diagnose_op {
  using answer = std::string;
  static constexpr op_traits traits{"diagnose", false, false, true};
  diagnostics_query query;
};

/// Every operation on one sandbox. Append only: the index crosses nodes.
using sandbox_op = std::variant<pause_op, resume_op, remove_op, renew_op,
                                extend_op, patch_op, diagnose_op>;

/// Every answer type of an operation (an op's `answer`).
using sandbox_answer = std::variant<sandbox_view, int64_t, std::string>;

/// One operation on the sandbox `id`, with the request id it runs under.
struct sandbox_request {
  std::string id;
  std::string rid;
  sandbox_op op;
};

/// The traits of the operation `x` holds.
inline const op_traits& traits_of(const sandbox_op& x) {
  return std::visit([](const auto& y) -> const op_traits& {
    return std::decay_t<decltype(y)>::traits;
  }, x);
}

// -- inspectors (CAF style, no CAF needed; variants: actors/atoms.hpp) --------

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pause_op&) {
  return f();
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, resume_op&) {
  return f();
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, remove_op&) {
  return f();
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, renew_op& x) {
  return f(x.expires_us);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, extend_op& x) {
  return f(x.at_least_us);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, patch_op& x) {
  return f(x.patch);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, diagnose_op& x) {
  return f(x.query);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sandbox_request& x) {
  return f(x.id, x.rid, x.op);
}

} // namespace osb
