#pragma once

// Test support: a Docker daemon of the test's own, which the fault suite may
// kill and restart. It has its own socket, data root, exec root (hence its
// own containerd), pid file, bridge and an empty daemon.json, and leaves
// iptables alone, so it never fights the machine's daemon (which is never
// touched) over docker0, iptables rules or runtimes.

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "server_process.hpp"

namespace osb::test {

class second_dockerd {
public:
  second_dockerd() {
    auto suffix = random_suffix().substr(0, 6);
    dir_ = "/var/tmp/osb-dockerd-" + suffix;
    bridge_ = "osbf" + suffix;
    std::filesystem::create_directories(dir_);
    std::ofstream{dir_ + "/daemon.json"} << "{}\n";
    // A /24 of its own for the bridge (10.213.0.0/16, by the suffix).
    auto net = std::to_string(std::strtoul(suffix.c_str(), nullptr, 16) % 250);
    shell("ip link add " + bridge_ + " type bridge && ip addr add 10.213."
          + net + ".1/24 dev " + bridge_ + " && ip link set " + bridge_
          + " up");
  }

  ~second_dockerd() {
    if (running())
      shell(docker() + " ps -aq | xargs -r " + docker()
            + " rm -f >/dev/null 2>&1");
    stop(SIGTERM);
    // A daemon killed with -9 leaves its containerd behind.
    kill_pid_file(dir_ + "/exec/containerd/containerd.pid", SIGTERM);
    shell("grep -o ' " + dir_ + "[^ ]*' /proc/mounts | sort -r | xargs -r -n1 "
          "umount -l 2>/dev/null");
    shell("ip link del " + bridge_ + " 2>/dev/null");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  second_dockerd(const second_dockerd&) = delete;
  second_dockerd& operator=(const second_dockerd&) = delete;

  /// Starts the daemon and waits (up to 30 s) until it answers.
  bool start() {
    shell("setsid dockerd --config-file " + dir_ + "/daemon.json --host "
          + url() + " --data-root " + dir_ + "/data --exec-root " + dir_
          + "/exec --pidfile " + dir_ + "/docker.pid --bridge " + bridge_
          + " --iptables=false --ip-masq=false --ip-forward=false"
            " </dev/null >>"
          + dir_ + "/dockerd.log 2>&1 &");
    for (int i = 0; i < 300; ++i) {
      if (running())
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  /// Kills the daemon with `sig` and waits until it is gone.
  void stop(int sig) {
    auto pid = read_pid(dir_ + "/docker.pid");
    if (pid <= 0)
      return;
    ::kill(pid, sig);
    for (int i = 0; i < 300 && ::kill(pid, 0) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::filesystem::remove(dir_ + "/docker.pid");
  }

  bool running() const {
    return std::system((docker() + " info >/dev/null 2>&1").c_str()) == 0;
  }

  /// Copies an image of the machine's daemon into this one.
  bool load(const std::string& image) {
    return std::system(("docker save " + image + " | " + docker()
                        + " load >/dev/null 2>&1")
                         .c_str())
           == 0;
  }

  /// The address for `docker.host`.
  std::string url() const {
    return "unix://" + dir_ + "/docker.sock";
  }

  /// The Docker CLI pointed at this daemon.
  std::string docker() const {
    return "docker -H " + url();
  }

  /// Number of containers (any state) of this daemon.
  int num_containers() const {
    return std::atoi(shell(docker() + " ps -aq | wc -l").c_str());
  }

  std::string log() const {
    return shell("tail -n 40 " + dir_ + "/dockerd.log");
  }

private:
  static pid_t read_pid(const std::string& file) {
    std::ifstream in{file};
    pid_t pid = -1;
    in >> pid;
    return in ? pid : -1;
  }

  static void kill_pid_file(const std::string& file, int sig) {
    if (auto pid = read_pid(file); pid > 0)
      ::kill(pid, sig);
  }

  std::string dir_;
  std::string bridge_;
};

} // namespace osb::test
