#pragma once

// Test support: runs the real opensandbox-server binary as a child process
// and talks plain HTTP/1.1 to it over loopback.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rapidjson/document.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace osb::test {

struct http_reply {
  int status = 0;
  std::map<std::string, std::string> headers; ///< lower-case names
  std::string body;

  rapidjson::Document json() const {
    rapidjson::Document doc;
    doc.Parse(body.c_str());
    return doc;
  }
};

/// Sends one request to `ip`:`port` (IPv4) on a fresh connection
/// (Connection: close); status 0 when it cannot connect.
inline http_reply http_call_at(const std::string& ip, uint16_t port,
                               const std::string& method,
                               const std::string& target,
                               const std::string& body = {},
                               const std::map<std::string, std::string>& hdrs
                               = {}) {
  http_reply result;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1)
    return result;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return result;
  }
  timeval tv{120, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::ostringstream req;
  req << method << " " << target << " HTTP/1.1\r\nHost: " << ip << ":" << port
      << "\r\nConnection: close\r\n";
  for (auto& [k, v] : hdrs)
    req << k << ": " << v << "\r\n";
  if (!body.empty() || method == "POST" || method == "PATCH")
    req << "Content-Type: application/json\r\nContent-Length: " << body.size()
        << "\r\n";
  req << "\r\n" << body;
  auto str = req.str();
  ::send(fd, str.data(), str.size(), MSG_NOSIGNAL);
  std::string raw;
  char buf[8192];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0)
    raw.append(buf, static_cast<size_t>(n));
  ::close(fd);
  auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos)
    return result;
  std::istringstream head{raw.substr(0, head_end)};
  std::string line;
  std::getline(head, line);
  if (line.size() > 12)
    result.status = std::atoi(line.c_str() + 9);
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos)
      continue;
    auto name = line.substr(0, colon);
    for (auto& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ')
      value.erase(0, 1);
    result.headers[name] = value;
  }
  auto rest = raw.substr(head_end + 4);
  if (result.headers["transfer-encoding"] == "chunked") {
    size_t pos = 0;
    while (pos < rest.size()) {
      auto eol = rest.find("\r\n", pos);
      auto len = std::stoul(rest.substr(pos, eol - pos), nullptr, 16);
      if (len == 0)
        break;
      result.body += rest.substr(eol + 2, len);
      pos = eol + 2 + len + 2;
    }
  } else {
    result.body = rest;
  }
  return result;
}

/// Sends one request to 127.0.0.1:`port` (Connection: close).
inline http_reply http_call(uint16_t port, const std::string& method,
                            const std::string& target,
                            const std::string& body = {},
                            const std::map<std::string, std::string>& hdrs
                            = {}) {
  return http_call_at("127.0.0.1", port, method, target, body, hdrs);
}

inline uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline std::string random_suffix() {
  std::random_device rd;
  std::ostringstream os;
  os << std::hex << rd() << rd();
  return os.str().substr(0, 10);
}

/// Runs `cmd` through the shell and returns its stdout.
inline std::string shell(const std::string& cmd) {
  std::string out;
  if (auto* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
      out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

/// Whether the Docker daemon has `image` (decided by the CLI's exit code:
/// its output for a missing image differs between CLI versions).
inline bool has_image(const std::string& image) {
  return std::system(("docker image inspect " + image + " >/dev/null 2>&1")
                       .c_str())
         == 0;
}

/// The secure runtime every generated test config asks for:
/// $OSB_TEST_SECURE_RUNTIME ("gvisor"; empty = none), so that a suite runs
/// its sandboxes under gVisor unchanged (deploy/run-tests.sh).
inline std::string test_secure_runtime() {
  auto x = std::getenv("OSB_TEST_SECURE_RUNTIME");
  return x == nullptr ? std::string{} : std::string{x};
}

/// The `[secure_runtime]` section for `type` ("" = none).
inline std::string secure_runtime_toml(const std::string& type) {
  if (type.empty())
    return {};
  return "[secure_runtime]\ntype = \"" + type
         + "\"\ndocker_runtime = \"\"\n";
}

/// The OCI runtime Docker runs a container with ("runc" when it names
/// none), decided by the CLI's exit code ("" if it has no such container).
inline std::string container_runtime(const std::string& name) {
  auto out = shell("x=$(docker inspect -f '{{.HostConfig.Runtime}}' " + name
                   + " 2>/dev/null) && echo \"$x\" || echo '?'");
  while (!out.empty() && out.back() == '\n')
    out.pop_back();
  return out == "?" ? std::string{} : out;
}

/// A server child process with its own config, store and node name. The
/// node name scopes the containers it owns, so tests never touch others'.
/// Its generated config carries `[secure_runtime]` of
/// `test_secure_runtime()` unless the test's own TOML has that section.
class server_process {
public:
  /// @param extra_toml appended to the config (whole sections).
  /// @param node the node name (scopes its containers).
  /// @param cluster_keys extra keys of the [cluster] section.
  /// @param instance tells apart the directories (config, store, log) of
  ///        two processes with the same node name.
  explicit server_process(std::string extra_toml = {},
                          std::string node = "it-" + random_suffix(),
                          std::string cluster_keys = {},
                          const std::string& instance = {})
    : node_(std::move(node)),
      extra_(std::move(extra_toml)),
      cluster_keys_(std::move(cluster_keys)) {
    dir_ = std::filesystem::temp_directory_path()
           / ("osb-" + node_ + (instance.empty() ? "" : "-" + instance));
    std::filesystem::create_directories(dir_);
    port_ = free_port();
    write_config();
  }

  ~server_process() {
    kill(SIGKILL);
    // Never leave containers of this test's node behind.
    auto sweep = "docker ps -aq --filter label=opensandbox.io/node=" + node_
                 + " | xargs -r docker rm -f >/dev/null 2>&1";
    shell(sweep);
    // A Docker call the killed server had in flight (a create) can still
    // complete after the sweep: sweep once more a little later, detached,
    // so no test waits for it (run-tests.sh checks for leftovers last).
    shell("setsid sh -c 'sleep 3; " + sweep + "' </dev/null >/dev/null 2>&1 &");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  /// Runs exactly `toml` as the config instead of the generated one (the
  /// caller uses `port()`, `store_path()` and `node()` in it), with
  /// OPENSANDBOX_INSECURE_SERVER=YES when it has no API key.
  void use_config(std::string toml) {
    raw_config_ = std::move(toml);
    write_config();
  }

  std::string store_path() const {
    return (dir_ / "store.db").string();
  }

  void write_config() {
    std::ofstream out{config_path()};
    if (!raw_config_.empty()) {
      out << raw_config_;
      return;
    }
    out << "[server]\nhost = \"127.0.0.1\"\nport = " << port_
        << "\napi_key = \"test-key\"\n"
        << "[log]\nlevel = \"DEBUG\"\n"
        << "[runtime]\ntype = \"docker\"\n"
        << "[store]\npath = \"" << (dir_ / "store.db").string() << "\"\n"
        << "[cluster]\nnode_name = \"" << node_ << "\"\n"
        << cluster_keys_ << "\n" << extra_ << "\n";
    if (extra_.find("[secure_runtime]") == std::string::npos)
      out << secure_runtime_toml(test_secure_runtime());
  }

  std::string config_path() const {
    return (dir_ / "config.toml").string();
  }

  std::string log_path() const {
    return (dir_ / "server.log").string();
  }

  /// Starts the server process without waiting for it.
  void spawn() {
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      if (!raw_config_.empty())
        ::setenv("OPENSANDBOX_INSECURE_SERVER", "YES", 1);
      ::execl(OSB_SERVER_BINARY, OSB_SERVER_BINARY, "--config",
              config_path().c_str(), nullptr);
      ::_exit(127);
    }
  }

  /// Waits up to `timeout` for the process to exit; its exit code, or -1
  /// while it still runs (or died from a signal).
  int wait_exit(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (pid_ > 0) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      if (std::chrono::steady_clock::now() >= deadline)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

  /// The process id while it runs, else -1.
  pid_t pid() const {
    return pid_;
  }

  /// Starts the server and waits until /health answers (alive; it may
  /// still be recovering its sandboxes or waiting for its seeds).
  bool start() {
    return start_and_wait("/health");
  }

  /// Starts the server and waits until /ready answers 200: its runtime
  /// answers, its store is writable, its sandboxes are recovered and its
  /// cluster membership is complete. For tests that expect a recovered
  /// node right after a restart.
  bool start_ready() {
    return start_and_wait("/ready");
  }

  bool start_and_wait(const std::string& path) {
    spawn();
    for (int i = 0; i < 400; ++i) {
      if (http_call(port_, "GET", path).status == 200) {
        if (path == "/health")
          wait_recovered();
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  /// Waits (up to 10 s) while the node is still recovering its stored
  /// sandboxes: until then a GET of one answers 503 "retry shortly".
  /// (A node still waiting for its cluster seeds is not waited for.)
  void wait_recovered() {
    for (int i = 0; i < 200; ++i) {
      auto r = call("GET", "/v1/sandboxes/00000000-0000-0000-0000-000000000000");
      if (r.status != 503 || r.body.find("still recovering") == std::string::npos)
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  /// Sends a signal without waiting (SIGSTOP/SIGCONT).
  void signal(int sig) {
    if (pid_ > 0)
      ::kill(pid_, sig);
  }

  void kill(int sig) {
    if (pid_ > 0) {
      ::kill(pid_, sig);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }

  http_reply call(const std::string& method, const std::string& target,
                  const std::string& body = {},
                  std::map<std::string, std::string> hdrs = {}) {
    if (hdrs.count("OPEN-SANDBOX-API-KEY") == 0)
      hdrs["OPEN-SANDBOX-API-KEY"] = "test-key";
    return http_call(port_, method, target, body, hdrs);
  }

  /// Polls GET until the state is `state` (or `timeout` passes).
  std::string wait_state(const std::string& id, const std::string& state,
                         std::chrono::milliseconds timeout
                         = std::chrono::seconds(30)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string last;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = call("GET", "/v1/sandboxes/" + id);
      if (r.status == 200) {
        auto doc = r.json();
        last = doc["status"]["state"].GetString();
        if (last == state)
          return last;
      } else {
        last = std::to_string(r.status);
        if (last == state)
          return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return last;
  }

  /// Number of containers of this node (any state).
  int num_containers() const {
    auto out = shell("docker ps -aq --filter label=opensandbox.io/node="
                     + node_ + " | wc -l");
    return std::atoi(out.c_str());
  }

  /// Polls until this node has `n` containers; returns the last count.
  int wait_containers(int n, std::chrono::milliseconds timeout
                             = std::chrono::seconds(10)) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int count = num_containers();
    while (count != n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      count = num_containers();
    }
    return count;
  }

  std::string read_log() const {
    std::ifstream in{log_path()};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  uint16_t port() const {
    return port_;
  }

  const std::string& node() const {
    return node_;
  }

private:
  std::string node_;
  std::string extra_;
  std::string cluster_keys_;
  std::string raw_config_;
  std::filesystem::path dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

} // namespace osb::test
