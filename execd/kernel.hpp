#pragma once

// Jupyter kernels, spoken to directly: execd starts a kernel process from
// its kernelspec, connects to its shell, control and iopub sockets over
// ZeroMQ's wire protocol (execd/zmtp.hpp) and signs messages with the
// connection's key (Jupyter messaging protocol 5.3). No Jupyter server.

#include "execd/process.hpp"
#include "execd/zmtp.hpp"

#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace osb::execd {

/// A kernelspec (`kernels/<name>/kernel.json`).
struct kernel_spec {
  /// The directory name, e.g. "python3".
  std::string name;
  /// `language`, lower-cased, e.g. "python".
  std::string language;
  std::string display_name;
  /// With `{connection_file}` and `{resource_dir}` placeholders.
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> env;
  /// `interrupt_mode: "message"` (else SIGINT to the process group).
  bool interrupt_by_message = false;
  /// The kernelspec's directory.
  std::string resource_dir;
};

/// The directories searched for kernelspecs, in order of preference:
/// `$JUPYTER_PATH` entries, `$JUPYTER_DATA_DIR`, `~/.local/share/jupyter`,
/// `/usr/local/share/jupyter`, `/usr/share/jupyter` (each + `/kernels`).
std::vector<std::string> kernel_spec_dirs(const env_list& env);

/// Reads every kernelspec below `dirs` (the first of a name wins).
std::vector<kernel_spec> find_kernel_specs(const std::vector<std::string>& dirs);

/// Parses one kernel.json; nullopt if it is not a usable spec.
std::optional<kernel_spec> parse_kernel_spec(std::string_view json,
                                             const std::string& name,
                                             const std::string& dir);

/// A decoded kernel message.
struct kernel_message {
  enum class channel { shell, iopub, control };
  channel from = channel::shell;
  std::string msg_type;
  std::string msg_id;
  /// The msg_id of the request it answers ("" if none).
  std::string parent_id;
  rapidjson::Document content;
};

/// Signs and decodes the messages of one connection.
class kernel_codec {
public:
  /// `key` empty = unsigned messages.
  kernel_codec(std::string key, std::string session);

  /// The wire frames of a request (after the routing part).
  std::vector<std::string> encode(std::string_view msg_type,
                                  std::string_view msg_id,
                                  std::string content) const;

  /// Decodes frames (routing identities, `<IDS|MSG>`, signature, header,
  /// parent header, metadata, content, buffers). False, with `*err`, for a
  /// malformed or wrongly signed message.
  bool decode(std::vector<std::string>& parts, kernel_message& out,
              std::string* err) const;

private:
  std::string key_;
  std::string session_;
};

/// How long the phases of a kernel start took (milliseconds).
struct kernel_start_times {
  /// fork/exec of the kernel process.
  double spawn_ms = 0;
  /// Until the kernel listened and all three sockets were connected.
  double connect_ms = 0;
  /// Until it answered kernel_info and iopub delivered (the subscription
  /// is in place, so no output can be lost).
  double ready_ms = 0;
};

/// Where and how to start a kernel.
struct kernel_launch {
  kernel_spec spec;
  /// Working directory (absolute; empty = execd's).
  std::string cwd;
  env_list env;
  /// Connection file and log go here.
  std::string dir;
  /// Names the files.
  std::string id;
  std::chrono::milliseconds start_timeout{60000};
};

/// One running kernel. Not thread-safe, except interrupt() and alive():
/// one execution at a time talks to it (the owner serializes).
class kernel {
public:
  ~kernel();

  kernel(const kernel&) = delete;
  kernel& operator=(const kernel&) = delete;

  /// Starts a kernel and waits until it is ready. Null with `*err` (which
  /// includes the tail of the kernel's log) on failure.
  static std::unique_ptr<kernel> start(const kernel_launch& launch,
                                       std::string* err,
                                       kernel_start_times* times = nullptr);

  /// Sends a request on the shell channel; returns its msg_id ("" when the
  /// kernel is gone).
  std::string request(std::string_view msg_type, std::string content);

  /// Outcome of next().
  enum class wait_result { message, timeout, died };

  /// Waits up to `timeout_ms` for the next message from shell or iopub.
  wait_result next(kernel_message& out, int timeout_ms);

  /// Interrupts the running execution (SIGINT to the kernel's process
  /// group, or an interrupt_request where the spec asks for messages).
  bool interrupt();

  /// Whether the process is alive and its sockets are open.
  bool alive() const;

  /// Waits up to `timeout` for the process to exit.
  bool wait_exit(std::chrono::milliseconds timeout) const {
    return !child_ || child_->wait_for(timeout);
  }

  /// How the process ended, once it has ("" while it runs).
  std::string exit_text() const;

  /// The last lines of the kernel's log (its stdout and stderr).
  std::string log_tail(size_t max_bytes = 2000) const;

  /// Asks the kernel to shut down; after `grace`, SIGTERM then SIGKILL to
  /// its process group. Returns once it exited.
  void shutdown(std::chrono::milliseconds grace);

  const kernel_spec& spec() const {
    return spec_;
  }

  pid_t pid() const {
    return child_ ? child_->pid() : -1;
  }

private:
  kernel(kernel_spec spec, std::string key, std::string dir, std::string id);

  bool connect_all(uint16_t shell, uint16_t iopub, uint16_t control,
                   std::chrono::steady_clock::time_point deadline,
                   std::string* err);
  bool wait_ready(std::chrono::steady_clock::time_point deadline,
                  std::string* err);
  bool decode_from(zmtp_socket& s, kernel_message::channel ch,
                   kernel_message& out);

  kernel_spec spec_;
  kernel_codec codec_;
  std::string conn_file_;
  std::string log_file_;
  std::shared_ptr<child_process> child_;
  zmtp_socket shell_;
  zmtp_socket iopub_;
  std::mutex control_mtx_;
  zmtp_socket control_;
  /// Set by the run's thread, read by listings.
  std::atomic<bool> broken_{false};
};

/// Picks `n` distinct free TCP ports on 127.0.0.1 (bound, read, released:
/// as jupyter_client does; the kernel binds them right after).
std::vector<uint16_t> free_ports(size_t n);

} // namespace osb::execd
