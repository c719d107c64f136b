#pragma once

// The one logger of the server, execd and the egress sidecar. A line reads
// `<LEVEL> <time> [<request id>] [<sandbox id>] <component>: <message>`,
// to stderr by default, or to a file (the server's rotated files, execd's
// EXECD_LOG_FILE). No I/O library below it, so the static binaries use it.

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

namespace osb::log {

enum class level : int { debug = 10, info = 20, warning = 30, error = 40 };

/// Sets the threshold ("DEBUG"/"TRACE", "INFO", "WARNING"/"WARN",
/// "ERROR"/"CRITICAL", any case; anything else is INFO).
void set_level(std::string_view name);

/// Sets the threshold.
void set_level(level x);

/// Returns whether messages at `x` are emitted.
bool enabled(level x);

/// Writes one line: `<LEVEL> <time> [<request id>] [<sandbox id>] <component>: <msg>`.
/// Thread-safe; `request_id` and `sandbox_id` print as `-` when empty.
void write(level x, std::string_view component, std::string_view request_id,
           std::string_view sandbox_id, std::string_view msg);

/// Sends log lines to `path` instead of stderr and access lines (see
/// `access`) to `access_path`, each rotated like Python's
/// RotatingFileHandler: past `max_bytes`, `f` becomes `f.1` (`f.1` becomes
/// `f.2`, ... up to `backups`; 0 backups = truncate). Creates parent
/// directories. Returns an error message, empty on success.
std::string to_files(const std::string& path, const std::string& access_path,
                     int64_t max_bytes, int64_t backups);

/// Sends log lines to `path` (appended, never rotated, parent directories
/// created) instead of stderr. The descriptor is close-on-exec, so that
/// processes the program starts do not inherit it. Returns an error message,
/// empty on success (lines then keep going to stderr).
std::string to_file(const std::string& path);

/// True when access lines are written (file logging is on).
bool access_enabled();

/// Writes one access line: `<time> [<request id>] "<method> <path>" <status>
/// <milliseconds>ms`. Does nothing unless file logging is on.
void access(std::string_view request_id, std::string_view method,
            std::string_view path, int status, double ms);

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
