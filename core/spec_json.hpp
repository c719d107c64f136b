#pragma once

#include <string>
#include <string_view>

#include "core/model.hpp"

// The JSON the store keeps of a sandbox's spec and metadata (not the API's
// wire format). The namespace is `codec` for the callers that used these
// from core/codec.hpp.
namespace osb::codec {

/// Compact JSON of a spec for the store; `spec_from_json` reverses it.
std::string spec_to_json(const sandbox_spec& x);
bool spec_from_json(std::string_view json, sandbox_spec& x);

/// Compact JSON of a string map (metadata in the store).
std::string map_to_json(const string_map& x);
bool map_from_json(std::string_view json, string_map& x);

} // namespace osb::codec
