#pragma once

#include "execd/process.hpp"
#include "execd/stream.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace osb::execd {

/// A `POST /session/{id}/run` request after validation.
struct session_run_request {
  std::string command;
  /// Absolute directory overriding (and replacing) the session's cwd.
  std::string cwd;
  /// Milliseconds; 0 = no limit.
  int64_t timeout_ms = 0;
};

/// Bash sessions: the working directory and exported variables carry over
/// from one run to the next.
///
/// Each run is a fresh `bash --noprofile --norc <script>` (or `sh <script>`
/// where there is no bash) in its own process group, like the Go execd,
/// rather than one long-lived shell reading commands from a pipe: `exit 7`,
/// a timeout kill or a command that reads stdin cannot wreck the session.
/// The script sources the previous run's `export -p` dump, `cd`s to the
/// session directory, installs an EXIT trap that saves `export -p` and
/// `$PWD` for the next run, and then runs the user command in the same
/// shell (so `cd` and `export` stick). stdout and stderr are merged and
/// reported as `stdout` events, as in Go.
class session_manager {
public:
  /// Session state lives below `dir`.
  explicit session_manager(std::string dir);

  /// Creates a session in `cwd` (absolute; created if missing; empty =
  /// execd's cwd). Returns the id, or "" with `*err` set.
  std::string create(const std::string& cwd, std::string* err);

  /// Whether session `id` exists.
  bool exists(const std::string& id) const;

  /// Outcome of run(): streamed, or unknown session (nothing written).
  enum class run_result { ok, unknown };

  /// Runs a command in session `id`, streaming events into `sink`. Runs of
  /// one session are serialized.
  run_result run(const std::string& id, const session_run_request& req,
                 event_sink& sink);

  /// Kills a running command of the session and forgets the session.
  bool remove(const std::string& id);

  /// The current working directory of a session ("" if unknown).
  std::string cwd_of(const std::string& id) const;

private:
  struct session {
    std::string id;
    std::string dir;
    std::mutex run_mtx;
    /// Guarded by run_mtx.
    std::string cwd;
    std::mutex child_mtx;
    std::shared_ptr<child_process> current;
    std::atomic<bool> closed{false};
  };

  std::shared_ptr<session> find(const std::string& id) const;

  std::string dir_;
  mutable std::mutex mtx_;
  std::unordered_map<std::string, std::shared_ptr<session>> sessions_;
};

/// The script for one session run (exposed for tests).
std::string session_script(const std::string& state_dir,
                           const std::string& cwd,
                           const std::string& command);

} // namespace osb::execd
