#pragma once

#include <cstdint>
#include <string>
#include <string_view>

// Timestamps as the lifecycle API and the store spell them. The namespace is
// `codec` for the callers that used these from core/codec.hpp.
namespace osb::codec {

/// Microseconds since the epoch, now.
int64_t now_us();

/// RFC 3339 UTC with `Z`, microseconds only when non-zero
/// (`2026-06-12T10:30:00.123456Z` / `2026-06-12T10:30:00Z`).
std::string format_time(int64_t us);

/// Parses RFC 3339 (any offset, up to 9 fraction digits, truncated to µs), a
/// naive timestamp (UTC) or a number of Unix seconds. False if unparseable.
bool parse_time(std::string_view str, int64_t& us);

/// Same; on failure `err` says why in Pydantic's words ("input is too
/// short", "month value is outside expected range of 1-12", ...).
bool parse_time(std::string_view str, int64_t& us, std::string& err);

/// Unix seconds as Pydantic reads numbers (beyond ±2e10 they are
/// milliseconds), within Python's datetime range (years 1 to 9999); on
/// failure `err` says why.
bool unix_seconds_to_us(long double seconds, int64_t& us, std::string& err);

} // namespace osb::codec
