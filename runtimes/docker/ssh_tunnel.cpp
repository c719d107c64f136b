#include "runtimes/docker/ssh_tunnel.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "base/log.hpp"

namespace osb::runtimes::docker {

namespace {

constexpr const char* component = "docker";

std::string shell_quote(const std::string& x) {
  std::string result = "'";
  for (auto c : x) {
    if (c == '\'')
      result += "'\\''";
    else
      result += c;
  }
  return result + "'";
}

} // namespace

bool parse_ssh_url(const std::string& url, std::string& destination,
                   std::string& port, std::string& socket) {
  const std::string scheme = "ssh://";
  if (url.rfind(scheme, 0) != 0)
    return false;
  auto rest = url.substr(scheme.size());
  socket = "/var/run/docker.sock";
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    socket = rest.substr(slash);
    rest = rest.substr(0, slash);
  }
  port.clear();
  auto at = rest.find('@');
  auto colon = rest.rfind(':');
  if (colon != std::string::npos && (at == std::string::npos || colon > at)) {
    port = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos)
      return false;
  }
  destination = rest;
  return !destination.empty() && destination.back() != '@';
}

ssh_tunnel::ssh_tunnel(const std::string& ssh_url) : url_(ssh_url) {
  std::string destination, port, remote;
  parse_ssh_url(ssh_url, destination, port, remote);
  std::random_device rd;
  socket_path_ = (std::filesystem::temp_directory_path()
                  / ("osb-docker-" + std::to_string(getpid()) + "-"
                     + std::to_string(rd() % 1000000) + ".sock"))
                   .string();
  std::string ssh = "ssh";
  if (auto env = std::getenv("OPENSANDBOX_SSH_COMMAND"); env && *env)
    ssh = env;
  // -L local_socket:remote_socket forwards unix sockets (OpenSSH >= 6.7).
  command_ = "exec " + ssh
             + " -o BatchMode=yes -o ExitOnForwardFailure=yes"
               " -o ServerAliveInterval=5 -o ServerAliveCountMax=3"
               " -o StreamLocalBindUnlink=yes -nNT"
             + (port.empty() ? std::string{} : " -p " + port) + " -L "
             + shell_quote(socket_path_ + ":" + remote) + " "
             + shell_quote(destination);
  watcher_ = std::thread{[this] { watch(); }};
}

ssh_tunnel::~ssh_tunnel() {
  stopping_ = true;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (pid_ > 0)
      ::kill(pid_, SIGTERM);
  }
  if (watcher_.joinable())
    watcher_.join();
  std::error_code ec;
  std::filesystem::remove(socket_path_, ec);
}

void ssh_tunnel::watch() {
  while (!stopping_) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      ::execl("/bin/sh", "sh", "-c", command_.c_str(), nullptr);
      ::_exit(127);
    }
    {
      std::lock_guard<std::mutex> guard{mtx_};
      pid_ = pid;
    }
    if (stopping_ && pid > 0)
      ::kill(pid, SIGTERM);
    OSB_INFO(component, "", "",
             "docker runtime tunnels " << url_ << " through " << socket_path_);
    int status = 0;
    if (pid > 0)
      ::waitpid(pid, &status, 0);
    {
      std::lock_guard<std::mutex> guard{mtx_};
      pid_ = -1;
    }
    if (stopping_)
      break;
    OSB_WARN(component, "", "",
             "ssh tunnel to " << url_ << " exited with status "
                              << WEXITSTATUS(status) << "; restarting in 1s");
    for (int i = 0; i < 10 && !stopping_; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

} // namespace osb::runtimes::docker
