#pragma once

#include <caf/error.hpp>

#include <string>

#include "core/error.hpp"
#include "core/expected.hpp"

namespace osb {

/// Error category of domain errors (`ec`).
caf::atom_value osb_category();

/// Error category of runtime failures (`failure_kind` + 1).
caf::atom_value runtime_category();

/// Builds a domain error with a user-facing message.
caf::error make_error(ec code, std::string message);

/// Wraps a runtime failure.
caf::error make_error(const failure& f);

/// Returns the failure carried by a runtime-category error (or a generic one).
failure to_failure(const caf::error& err);

/// Translates any error into what the user sees: its kind, wire code and
/// message (the HTTP status is http/status.cpp's). `id` names the sandbox
/// for "not found".
api_error to_api_error(const caf::error& err, const std::string& id = {});

/// Renders errors of our categories for CAF's to_string.
std::string render_error(uint8_t code, caf::atom_value category,
                         const caf::message& ctx);

} // namespace osb
