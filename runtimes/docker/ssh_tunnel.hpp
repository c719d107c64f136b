#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include <sys/types.h>

namespace osb::runtimes::docker {

/// Reaches a Docker daemon at `ssh://[user@]host[:port][/socket]` the way
/// DOCKER_HOST=ssh:// does, without a second HTTP transport: OpenSSH
/// forwards a local unix socket to the remote daemon's socket, and the
/// runtime talks to the local socket. A watcher thread restarts ssh when it
/// exits. The ssh command can be replaced with $OPENSANDBOX_SSH_COMMAND
/// (e.g. "ssh -i /etc/opensandbox/id_ed25519"), like GIT_SSH_COMMAND.
class ssh_tunnel {
public:
  /// Starts forwarding; the socket appears once ssh has connected.
  explicit ssh_tunnel(const std::string& ssh_url);

  /// Stops ssh and removes the local socket.
  ~ssh_tunnel();

  ssh_tunnel(const ssh_tunnel&) = delete;
  ssh_tunnel& operator=(const ssh_tunnel&) = delete;

  /// The local unix socket that reaches the remote daemon.
  const std::string& socket_path() const {
    return socket_path_;
  }

  /// The shell command that runs ssh (for logs and tests).
  const std::string& command() const {
    return command_;
  }

private:
  void watch();

  std::string url_;
  std::string socket_path_;
  std::string command_;
  std::atomic<bool> stopping_{false};
  std::mutex mtx_;
  pid_t pid_ = -1;
  std::thread watcher_;
};

/// Splits `ssh://[user@]host[:port][/socket]` into ssh arguments; returns
/// false if malformed. `socket` defaults to /var/run/docker.sock.
bool parse_ssh_url(const std::string& url, std::string& destination,
                   std::string& port, std::string& socket);

} // namespace osb::runtimes::docker
