#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace osb::execd {

/// Command line and environment configuration of the daemon.
struct daemon_options {
  uint16_t port = 44772;
  std::string access_token;
  /// Accepted for compatibility with the Go execd; unused.
  std::string jupyter_host;
  std::string jupyter_token;
  std::string graceful_shutdown_timeout;
  std::string jupyter_idle_poll_interval;
  /// The Go execd's syslog-style level: 7 debug, 6 info, 4-5 warning,
  /// 0-3 error.
  int log_level = 6;
  /// `--bootstrap`: start the daemon in the background and exec the user
  /// command (the container entrypoint mode).
  bool bootstrap = false;
  /// `--await-claim` (before `--bootstrap`): a pool member; the user
  /// command starts once the server claims the sandbox (execd/claim.hpp).
  bool await_claim = false;
  std::vector<std::string> user_argv;
  bool help = false;
  bool version = false;
};

/// Parses flags (`--x v`, `--x=v`, `-x v`) with environment fallbacks
/// (EXECD_ACCESS_TOKEN, JUPYTER_HOST, JUPYTER_TOKEN,
/// EXECD_API_GRACE_SHUTDOWN, EXECD_JUPYTER_IDLE_POLL_INTERVAL). Everything
/// after `--bootstrap` (and an optional `--`) is the user command. Returns
/// nullopt and sets `*err` on a bad command line.
std::optional<daemon_options> parse_options(const std::vector<std::string>& args,
                                            std::string* err);

/// Parses a Go duration ("1s", "100ms", "1m30s") into milliseconds.
std::optional<int64_t> parse_go_duration(const std::string& x);

/// Runs the daemon until SIGTERM/SIGINT; returns the exit code.
int run_daemon(const daemon_options& opts);

/// The program: plain daemon, or bootstrap mode.
int execd_main(int argc, char** argv);

} // namespace osb::execd
