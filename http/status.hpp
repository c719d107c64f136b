#pragma once

// The HTTP status of an error, chosen at the HTTP boundary: core/, the
// actors and the runtimes carry the error's kind (`ec`) and wire code only.

#include "core/error.hpp"

namespace osb::http {

/// The HTTP status the lifecycle API answers for an error of kind `x`
/// (unknown kinds: 500).
int status_of(ec x);

/// The HTTP status of `e` (by its kind).
inline int status_of(const api_error& e) {
  return status_of(e.kind);
}

} // namespace osb::http
