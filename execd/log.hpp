#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace osb::execd::log {

/// Directs log lines to `path` (appending), or to stderr when `path` is empty
/// or cannot be opened.
void init(const std::string& path);

/// Writes one line `<time> <level> <msg>`. Thread-safe.
void write(std::string_view level, std::string_view msg);

} // namespace osb::execd::log

/// Logging macro; the message is an ostream expression.
#define EXECD_LOG(level, expr)                                                 \
  do {                                                                         \
    std::ostringstream execd_log_os_;                                          \
    execd_log_os_ << expr;                                                     \
    ::osb::execd::log::write(level, execd_log_os_.str());                      \
  } while (false)
#define EXECD_INFO(expr) EXECD_LOG("INFO", expr)
#define EXECD_WARN(expr) EXECD_LOG("WARN", expr)
#define EXECD_ERROR(expr) EXECD_LOG("ERROR", expr)
