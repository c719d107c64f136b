#pragma once

#include "execd/util.hpp"

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace osb::execd {

/// How a child process ended (a raw waitpid status).
struct exit_status {
  int raw = 0;

  /// Whether a signal ended the process.
  bool signaled() const;

  /// The exit code, or -1 for a signal death (Go's ProcessState.ExitCode).
  int code() const;

  /// Go's ProcessState.String(): "exit status 1", "signal: killed".
  std::string describe() const;
};

/// A spawned process. It leads its own session and process group, so
/// signals to the group reach everything it started (unless a descendant
/// made its own session).
class child_process {
public:
  /// Wraps a forked child (see spawn_process).
  explicit child_process(pid_t pid);
  ~child_process();

  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// The pid, which is also the process group id.
  pid_t pid() const {
    return pid_;
  }

  /// An eventfd that becomes readable once the process has exited (for
  /// poll loops that also watch pipes).
  int exit_fd() const {
    return efd_;
  }

  /// Whether the reaper collected the process.
  bool exited() const;

  /// The exit status once the process has exited.
  std::optional<exit_status> status() const;

  /// When the process was reaped.
  timespec exit_time() const;

  /// Waits up to `timeout`; returns whether the process has exited.
  bool wait_for(std::chrono::milliseconds timeout) const;

  /// Waits for the exit.
  exit_status wait() const;

  /// Sends `sig` to the process group (errors ignored).
  void signal_group(int sig) const;

  /// Whether any member of the process group is still alive.
  bool group_alive() const;

  /// SIGTERM to the group, up to `grace` for the leader and the group to
  /// go away, then SIGKILL to the group. Returns once the leader exited.
  void terminate_group(std::chrono::milliseconds grace) const;

  /// Records the exit; called by the reaper.
  void set_exited(int raw);

private:
  pid_t pid_;
  int efd_;
  mutable std::mutex mtx_;
  mutable std::condition_variable cv_;
  std::optional<exit_status> status_;
  timespec exit_time_{};
};

/// What to run and how.
struct spawn_options {
  /// argv[0] must be an absolute path (see find_executable).
  std::vector<std::string> argv;
  env_list env;
  /// Working directory; empty = inherit.
  std::string cwd;
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  /// Descriptors for the standard streams; -1 = /dev/null.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  /// Makes stdin (a terminal's slave side) the session's controlling
  /// terminal, for shells on a PTY (job control, ^C).
  bool controlling_tty = false;
};

/// Forks and execs in a new session (setsid: own process group). Failures
/// up to and including execve are reported through `*err` (the text of the
/// errno) with a null result.
std::shared_ptr<child_process> spawn_process(const spawn_options& opts,
                                             std::string* err);

/// Sends `sig` to every process group this process ever spawned that still
/// has members (daemon shutdown).
void signal_all_groups(int sig);

/// Whether any spawned process group still has members.
bool any_group_alive();

/// Searches `path_var` (colon-separated) for an executable `name`.
std::string find_executable(std::string_view name, std::string_view path_var);

/// Returns the shell for commands: bash from PATH, else sh (busybox images
/// only have /bin/sh).
std::string find_shell(const env_list& env);

/// Layers a `KEY=VALUE` file (`#` comments, optional `export `, optional
/// quotes, `$VAR` expansion in unquoted and double-quoted values) onto `env`.
void apply_env_file(std::string_view text, env_list& env);

/// The environment for a command: execd's environment, then the file named
/// by EXECD_ENVS (re-read on every call), then `overrides`.
env_list command_env(const std::map<std::string, std::string>& overrides);

/// Takes ownership of `fd` (a pipe read end): a background thread keeps
/// reading and discarding until EOF, then closes it. Used when nobody reads
/// a command's output anymore but processes still write to it: closing
/// would kill them with SIGPIPE.
void drain_and_close(int fd);

/// Creates a pipe with O_CLOEXEC on both ends; returns false on error.
bool make_pipe(int fds[2]);

/// Marks every open descriptor above 2 except `keep` close-on-exec, as
/// listed by /proc/self/fd, with raw system calls only (safe between fork
/// and exec). For kernels without close_range's CLOEXEC flag (gVisor of
/// Debian 12), where setting it on every number up to 65535 costs ~1.6 s
/// per command under gVisor's ptrace platform. Returns false when
/// /proc/self/fd cannot be listed.
bool cloexec_listed_fds(int keep);

} // namespace osb::execd
