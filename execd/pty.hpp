#pragma once

// Terminals (`/pty`): a shell on a pseudo-terminal (or on plain pipes),
// attached to one WebSocket client at a time, with a replay buffer so that
// a client that reconnects (or takes the session over) sees what it missed.

#include "execd/process.hpp"
#include "execd/websocket.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace osb::execd {

/// Frame type bytes of the terminal protocol (binary messages).
namespace pty_frame {
constexpr uint8_t stdin_data = 0x00;
constexpr uint8_t stdout_data = 0x01;
constexpr uint8_t stderr_data = 0x02;
/// 8-byte big-endian offset of the first byte, then the bytes.
constexpr uint8_t replay = 0x03;
} // namespace pty_frame

/// Output kept for replay.
constexpr size_t pty_replay_bytes = 1024 * 1024;

/// A `POST /pty` request after validation.
struct pty_options {
  /// Absolute; empty = execd's working directory.
  std::string cwd;
  /// Run with `bash -c`; empty = an interactive shell.
  std::string command;
  uint16_t cols = 80;
  uint16_t rows = 24;
};

/// A byte ring that remembers the absolute offset of its bytes.
class replay_buffer {
public:
  explicit replay_buffer(size_t cap) : cap_(cap) {
    // nop
  }

  void append(std::string_view data);

  /// Bytes from absolute offset `since` (clamped to what is kept); sets
  /// `*from` to the offset of the first byte returned.
  std::string since(uint64_t since, uint64_t* from) const;

  /// Total bytes ever appended (the offset of the next byte).
  uint64_t end() const {
    return total_;
  }

private:
  size_t cap_;
  std::string data_;
  uint64_t total_ = 0;
};

/// One terminal session.
class pty_session : public std::enable_shared_from_this<pty_session> {
public:
  pty_session(std::string id, pty_options opts);
  ~pty_session();

  const std::string& id() const {
    return id_;
  }

  /// Whether the shell runs.
  bool running() const;

  /// Bytes of output so far.
  uint64_t output_offset() const;

  /// Whether a client is attached.
  bool attached() const;

  /// Serves one WebSocket client until it leaves, the shell exits or
  /// another client takes over: starts the shell if needed (`pipe_mode`:
  /// plain pipes instead of a PTY), replays output from `since`, then
  /// relays input, output, resizes and signals.
  void serve(const std::shared_ptr<ws::connection>& ws, bool pipe_mode,
             std::optional<uint64_t> since);

  /// Kills the shell's process group and closes the client.
  void close();

private:
  bool start(bool pipe_mode, std::string* err);
  void pump();
  void handle_text(ws::connection& c, const std::string& text);
  bool write_stdin(std::string_view data);
  void resize(uint16_t cols, uint16_t rows);

  std::string id_;
  pty_options opts_;
  mutable std::mutex mtx_;
  std::shared_ptr<child_process> child_;
  bool pty_mode_ = true;
  /// PTY master (pty mode) or the stdin pipe's write end (pipe mode).
  int in_fd_ = -1;
  /// PTY master (dup) or stdout pipe; stderr pipe in pipe mode.
  int out_fd_ = -1;
  int err_fd_ = -1;
  bool closed_ = false;
  /// Guards in_fd_ writes, resizes and its close.
  std::mutex in_mtx_;
  /// Serializes output delivery with attaching, so that a new client gets
  /// its replay before any live byte, and no byte twice. Held while a
  /// client is written to (a slow client throttles the shell).
  mutable std::mutex out_mtx_;
  replay_buffer replay_{pty_replay_bytes};
  /// Guards client_ alone (never held while writing), so that a takeover
  /// or close can reach a client whose writes are stuck.
  mutable std::mutex client_mtx_;
  std::shared_ptr<ws::connection> client_;
  bool pump_running_ = false;
};

/// The terminal sessions of this execd.
class pty_manager {
public:
  /// At most `max_sessions` at once.
  explicit pty_manager(size_t max_sessions = 256);
  ~pty_manager();

  /// Creates a session (the shell starts on the first attach); "" when
  /// there are too many.
  std::string create(const pty_options& opts);

  std::shared_ptr<pty_session> find(const std::string& id) const;

  /// Deletes a session: kills its shell, closes its client.
  bool remove(const std::string& id);

private:
  size_t max_;
  mutable std::mutex mtx_;
  std::map<std::string, std::shared_ptr<pty_session>> sessions_;
};

} // namespace osb::execd
