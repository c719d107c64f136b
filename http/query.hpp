#pragma once

// Internal to the lifecycle API handler: query parameters and path numbers
// read the way Starlette and Pydantic's lax mode read them.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace osb::http::detail {

/// Returns the last value of query parameter `key` (Starlette's
/// QueryParams.get), decoded; nullopt when absent.
std::optional<std::string> query_param(std::string_view query,
                                       std::string_view key);

/// Pydantic's lax int parsing of a string: surrounding whitespace, optional
/// sign, decimal digits. Saturates on overflow (callers range-check).
bool parse_int(std::string_view str, int64_t& out);

/// Pydantic's lax bool parsing of a string.
bool parse_bool(std::string_view str, bool& out);

/// Strict decimal uint64 (OSEP-0011's `expires`): digits only.
std::optional<uint64_t> parse_uint64(std::string_view str);

/// Pydantic's message for a string that is no integer.
constexpr std::string_view int_parsing_msg
  = "Input should be a valid integer, unable to parse string as an integer";

} // namespace osb::http::detail
