#pragma once

// Test support: runs the Kubernetes API-server emulator (test/k8s-emulator,
// docs/k8s-emulator.md) as a child process for one test and stops it on
// destruction. Its first stdout line (JSON) says where it listens.
//
//   osb::test::k8s_emulator emu{{"--tls", "--token", "t0k3n"}};
//   ASSERT_TRUE(emu.ok()) << emu.error();
//   emu.kubeconfig ... emu.admin_call("POST", "/_emulator/compact");

#include "server_process.hpp"

#include <poll.h>

#include <rapidjson/document.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#ifndef OSB_SOURCE_DIR
#error "OSB_SOURCE_DIR must name the repository (integration_tests has it)"
#endif

namespace osb::test {

/// True when `node` is on PATH (the tests skip without it).
inline bool node_available() {
  return std::system("command -v node >/dev/null 2>&1") == 0;
}

/// Skips the current test unless node is installed.
#define OSB_REQUIRE_NODE()                                                     \
  do {                                                                         \
    if (!::osb::test::node_available())                                        \
      GTEST_SKIP() << "node is not installed: the Kubernetes API-server "      \
                      "emulator (test/k8s-emulator) needs Node.js >= 20";      \
  } while (false)

class k8s_emulator {
public:
  /// Starts `node test/k8s-emulator/emulator.mjs <args>` and waits (up to
  /// 30 s) for its first line. Runs `npm ci` there first when the
  /// emulator's packages are missing.
  explicit k8s_emulator(std::vector<std::string> args = {}) {
    namespace fs = std::filesystem;
    auto dir = fs::path{OSB_SOURCE_DIR} / "test" / "k8s-emulator";
    if (!fs::exists(dir / "node_modules")) {
      auto cmd = "cd '" + dir.string()
                 + "' && npm ci --no-audit --no-fund >/dev/null 2>&1";
      if (std::system(cmd.c_str()) != 0) {
        error_ = "npm ci in " + dir.string() + " failed";
        return;
      }
    }
    int out[2];
    int in[2];
    if (::pipe(out) != 0 || ::pipe(in) != 0) {
      error_ = "pipe failed";
      return;
    }
    auto script = (dir / "emulator.mjs").string();
    args.insert(args.begin(), {"node", script, "--exit-on-stdin-close"});
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::close(in[0]);
      ::close(in[1]);
      ::close(out[0]);
      ::close(out[1]);
      std::vector<char*> argv;
      for (auto& a : args)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp("node", argv.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    // Closed on exec elsewhere: a server the test spawns must not keep the
    // emulator alive by holding its stdin.
    ::fcntl(stdin_, F_SETFD, FD_CLOEXEC);
    ::fcntl(out[0], F_SETFD, FD_CLOEXEC);
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    char c;
    while (line.find('\n') == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
      pollfd p{out[0], POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) {
        error_ = "the emulator printed no first line within 30 s";
        break;
      }
      if (::read(out[0], &c, 1) != 1) {
        error_ = "the emulator exited before its first line";
        break;
      }
      line += c;
    }
    // Later output is drained so that the emulator never blocks on stdout.
    drain_ = std::thread{[fd = out[0]] {
      char buf[4096];
      while (::read(fd, buf, sizeof(buf)) > 0) {
      }
      ::close(fd);
    }};
    if (!error_.empty())
      return;
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    auto str = [&](const char* key) -> std::string {
      auto it = doc.IsObject() ? doc.FindMember(key) : doc.MemberEnd();
      if (!doc.IsObject() || it == doc.MemberEnd() || !it->value.IsString())
        return {};
      return it->value.GetString();
    };
    url = str("url");
    admin = str("admin");
    kubeconfig = str("kubeconfig");
    state_dir = str("stateDir");
    ca = str("ca");
    client_cert = str("clientCert");
    client_key = str("clientKey");
    token = str("token");
    if (url.empty() || admin.empty())
      error_ = "the emulator's first line is not what we expect: " + line;
    else
      admin_port_ = static_cast<uint16_t>(
        std::stoi(admin.substr(admin.rfind(':') + 1)));
  }

  k8s_emulator(const k8s_emulator&) = delete;
  k8s_emulator& operator=(const k8s_emulator&) = delete;

  /// SIGTERM (the emulator removes its state directory), SIGKILL after 5 s.
  ~k8s_emulator() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      bool gone = false;
      for (int i = 0; i < 250 && !gone; ++i) {
        gone = ::waitpid(pid_, &status, WNOHANG) == pid_;
        if (!gone)
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (!gone) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
      }
    }
    if (stdin_ >= 0)
      ::close(stdin_);
    if (drain_.joinable())
      drain_.join();
  }

  bool ok() const {
    return error_.empty();
  }

  const std::string& error() const {
    return error_;
  }

  pid_t pid() const {
    return pid_;
  }

  uint16_t admin_port() const {
    return admin_port_;
  }

  /// One call of the admin API (plain HTTP, JSON).
  http_reply admin_call(const std::string& method, const std::string& path,
                        const std::string& body = {}) const {
    return http_call(admin_port_, method, path, body);
  }

  std::string url;         ///< the API ("https://127.0.0.1:40123")
  std::string admin;       ///< the admin API ("http://127.0.0.1:40125")
  std::string kubeconfig;  ///< YAML, context k8s-emulator, namespace default
  std::string state_dir;   ///< removed when the emulator stops
  std::string ca;          ///< PEM files (with --tls)
  std::string client_cert;
  std::string client_key;
  std::string token; ///< the --token, if any

private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  uint16_t admin_port_ = 0;
  std::string error_;
  std::thread drain_;
};

} // namespace osb::test
