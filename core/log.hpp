#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace osb::log {

enum class level : int { debug = 10, info = 20, warning = 30, error = 40 };

/// Sets the threshold ("DEBUG", "INFO", "WARNING"/"WARN", "ERROR").
void set_level(std::string_view name);

/// Returns whether messages at `x` are emitted.
bool enabled(level x);

/// Writes one line: `<LEVEL> <time> [<request id>] [<sandbox id>] <component>: <msg>`.
/// Thread-safe; `request_id` and `sandbox_id` print as `-` when empty.
void write(level x, std::string_view component, std::string_view request_id,
           std::string_view sandbox_id, std::string_view msg);

} // namespace osb::log

/// Logging macros; the message is an ostream expression, evaluated lazily.
#define OSB_LOG(lvl, component, rid, sid, expr)                                \
  do {                                                                         \
    if (::osb::log::enabled(lvl)) {                                            \
      std::ostringstream osb_log_os_;                                          \
      osb_log_os_ << expr;                                                     \
      ::osb::log::write(lvl, component, rid, sid, osb_log_os_.str());          \
    }                                                                          \
  } while (false)
#define OSB_DEBUG(c, r, s, e) OSB_LOG(::osb::log::level::debug, c, r, s, e)
#define OSB_INFO(c, r, s, e) OSB_LOG(::osb::log::level::info, c, r, s, e)
#define OSB_WARN(c, r, s, e) OSB_LOG(::osb::log::level::warning, c, r, s, e)
#define OSB_ERROR(c, r, s, e) OSB_LOG(::osb::log::level::error, c, r, s, e)
