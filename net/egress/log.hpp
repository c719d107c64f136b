#pragma once

#include <sstream>
#include <string_view>

namespace osb::egress::log {

/// Enables debug lines (OPENSANDBOX_EGRESS_LOG_LEVEL=debug).
void set_debug(bool enabled);

/// Returns whether debug lines are written.
bool debug_enabled();

/// Writes one line `<UTC time> <level> <msg>` to stderr.
void write(std::string_view level, std::string_view msg);

} // namespace osb::egress::log

/// Logging macros; the message is an ostream expression.
#define EGRESS_LOG(level, expr)                                                \
  do {                                                                         \
    std::ostringstream egress_log_os_;                                         \
    egress_log_os_ << expr;                                                    \
    ::osb::egress::log::write(level, egress_log_os_.str());                    \
  } while (false)
#define EGRESS_DEBUG(expr)                                                     \
  do {                                                                         \
    if (::osb::egress::log::debug_enabled())                                   \
      EGRESS_LOG("DEBUG", expr);                                               \
  } while (false)
#define EGRESS_INFO(expr) EGRESS_LOG("INFO", expr)
#define EGRESS_WARN(expr) EGRESS_LOG("WARN", expr)
#define EGRESS_ERROR(expr) EGRESS_LOG("ERROR", expr)
