#pragma once

#include "execd/process.hpp"
#include "execd/stream.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace osb::execd {

/// How often a stream carries a `ping` event while a command runs.
constexpr auto ping_interval = std::chrono::seconds(3);

/// What pump_output observed.
struct pump_result {
  /// The sink refused a write: the client went away.
  bool client_gone = false;
  /// The timeout elapsed and the group got SIGKILL.
  bool timed_out = false;
};

/// Streams the output of `child` until it exits: every line read from
/// `out_fd` becomes a `stdout` event and every line from `err_fd` a `stderr`
/// event (-1 = not used), plus a `ping` every `ping_every`. Reads only as
/// fast as `sink` accepts, so a slow client throttles the command instead of
/// filling memory. Kills the process group with SIGKILL once `timeout_ms`
/// (0 = none) elapsed. Takes ownership of both descriptors; descriptors that
/// may still have writers (descendants outliving the command) are handed to
/// drain_and_close. Does not write a terminal event.
pump_result pump_output(const std::shared_ptr<child_process>& child,
                        int out_fd, int err_fd, event_sink& sink,
                        int64_t timeout_ms,
                        std::chrono::milliseconds ping_every
                        = std::chrono::duration_cast<std::chrono::milliseconds>(
                          ping_interval));

/// A `POST /command` request after validation.
struct command_request {
  std::string command;
  /// Absolute working directory; empty = execd's.
  std::string cwd;
  bool background = false;
  /// Milliseconds; 0 = no limit.
  int64_t timeout_ms = 0;
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::map<std::string, std::string> envs;
};

/// Bookkeeping of one command, for status, logs and interrupt.
struct command_record {
  std::string id;
  std::string content;
  bool background = false;
  timespec started_at{};
  /// Null when the command could not be started.
  std::shared_ptr<child_process> child;
  std::string spawn_error;
  timespec failed_at{};
  /// Combined stdout/stderr of a background command.
  std::string log_path;

  /// Whether the process was started and has not exited yet.
  bool running() const;

  /// The `GET /command/status/{id}` body.
  std::string status_json() const;
};

/// Runs shell commands and remembers them.
class command_manager {
public:
  /// Background logs go below `dir`.
  explicit command_manager(std::string dir);

  /// Runs `req` and writes its event stream into `sink`. Returns a
  /// non-empty message if it failed before writing anything (the caller
  /// answers 500 then).
  std::string run(const command_request& req, event_sink& sink);

  /// Finds a command by id.
  std::shared_ptr<command_record> find(const std::string& id) const;

  /// Outcome of interrupt(): done, already finished, or no such id.
  enum class interrupt_result { done, not_running, unknown };

  /// SIGTERM to the command's process group, SIGKILL after `grace`.
  interrupt_result interrupt(const std::string& id,
                             std::chrono::milliseconds grace
                             = std::chrono::seconds(3));

private:
  std::shared_ptr<command_record> add(std::string content, bool background);

  std::string dir_;
  mutable std::mutex mtx_;
  std::unordered_map<std::string, std::shared_ptr<command_record>> records_;
  std::deque<std::string> order_;
};

/// Builds the shell invocation `shell -c command`.
std::vector<std::string> shell_argv(const env_list& env,
                                    const std::string& command);

} // namespace osb::execd
