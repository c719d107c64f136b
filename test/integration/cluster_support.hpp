#pragma once

// Test support for clusters of real server processes: certificates made by
// deploy/make-cluster-certs.sh, the [cluster] keys of a TLS node, and small
// blocking TLS endpoints (OpenSSL) that act as hostile or honest peers on a
// node's cluster port.

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "server_process.hpp"

namespace osb::test {

/// Certificates of the test clusters, made once per test binary: CA "main"
/// signs n1..n4, CA "other" signs "rogue". Removed at exit.
class test_certs {
public:
  static const test_certs& get() {
    static test_certs instance;
    return instance;
  }

  /// Directory of the main CA (ca.pem) and its nodes' NAME.pem/NAME.key.
  std::string dir;
  /// Directory of the other CA and its "rogue" certificate.
  std::string other;
  bool ok = false;

  ~test_certs() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

private:
  test_certs() {
    root_ = std::filesystem::temp_directory_path()
            / ("osb-it-certs-" + random_suffix());
    dir = (root_ / "main").string();
    other = (root_ / "other").string();
    auto script = std::string{OSB_SOURCE_DIR} + "/deploy/make-cluster-certs.sh";
    ok = std::system((script + " " + dir + " n1 n2 n3 n4 >/dev/null").c_str())
           == 0
         && std::system((script + " " + other + " rogue >/dev/null").c_str())
              == 0;
  }

  std::filesystem::path root_;
};

/// [cluster] keys for TLS with `name`'s certificate from `dir`, trusting
/// `ca_dir`'s CA.
inline std::string tls_keys(const std::string& name,
                            const std::string& dir = test_certs::get().dir,
                            const std::string& ca_dir
                            = test_certs::get().dir) {
  return "tls_ca_file = \"" + ca_dir + "/ca.pem\"\ntls_cert_file = \"" + dir
         + "/" + name + ".pem\"\ntls_key_file = \"" + dir + "/" + name
         + ".key\"\n";
}

/// `listen` and `seeds` keys on 127.0.0.1.
inline std::string listen_keys(uint16_t port,
                               const std::vector<uint16_t>& seeds) {
  std::string xs;
  for (auto p : seeds)
    xs += (xs.empty() ? "\"" : ", \"") + std::string{"127.0.0.1:"}
          + std::to_string(p) + "\"";
  return "listen = \"127.0.0.1:" + std::to_string(port) + "\"\nseeds = ["
         + xs + "]\n";
}

/// A value of /proc/<pid>/status in kB (VmRSS, VmHWM), or -1.
inline long proc_kb(pid_t pid, const std::string& key) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0)
      return std::atol(line.c_str() + key.size() + 1);
  return -1;
}

/// Whether `n` lists a member `name` in `state` ("up", "down", ...).
inline bool has_member(server_process& n, const std::string& name,
                       const std::string& state) {
  auto r = n.call("GET", "/v1/cluster/nodes");
  if (r.status != 200)
    return false;
  auto doc = r.json();
  for (auto& m : doc["nodes"].GetArray())
    if (m["name"].GetString() == name && m["state"].GetString() == state)
      return true;
  return false;
}

/// Polls `pred` every 50 ms until it holds or `timeout` passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

/// Connects to 127.0.0.1:`port`; -1 on failure.
inline int tcp_connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// Reads until the peer closes or `timeout` passes; returns the bytes read
/// and sets `closed`.
inline size_t drain_fd(int fd, SSL* ssl, std::chrono::milliseconds timeout,
                       bool& closed) {
  closed = false;
  size_t total = 0;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    if (ssl == nullptr || SSL_pending(ssl) == 0) {
      pollfd pfd{fd, POLLIN, 0};
      if (::poll(&pfd, 1, 50) <= 0)
        continue;
    }
    int n = ssl ? SSL_read(ssl, buf, sizeof(buf))
                : static_cast<int>(::recv(fd, buf, sizeof(buf), 0));
    if (n <= 0) {
      if (ssl) {
        auto err = SSL_get_error(ssl, n);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
          continue;
      }
      closed = true;
      return total;
    }
    total += static_cast<size_t>(n);
  }
  return total;
}

/// A blocking TLS client of a cluster port: presents `cert` (none when
/// empty) and trusts `ca`, like a node would.
class tls_client {
public:
  tls_client(uint16_t port, const std::string& ca, const std::string& cert,
             const std::string& key) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (!cert.empty()) {
      SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str());
      SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM);
    }
    fd_ = tcp_connect(port);
    if (fd_ < 0)
      return;
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    connected = SSL_connect(ssl_) == 1;
  }

  ~tls_client() {
    if (ssl_)
      SSL_free(ssl_);
    if (fd_ >= 0)
      ::close(fd_);
    SSL_CTX_free(ctx_);
  }

  bool send(const std::string& bytes) {
    return ssl_ && SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()))
                     == static_cast<int>(bytes.size());
  }

  /// Application bytes received until the node closed or `timeout`
  /// passed; `closed` says which.
  size_t receive(std::chrono::milliseconds timeout, bool& closed) {
    if (!ssl_) {
      closed = true;
      return 0;
    }
    return drain_fd(fd_, ssl_, timeout, closed);
  }

  /// True when this side completed its TLS handshake (with TLS 1.3 the
  /// server may still reject our certificate afterwards).
  bool connected = false;

private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
};

/// A TLS server standing in for a peer: accepts one connection with its
/// `cert`, asks for a client certificate of `ca`, and records what came.
class tls_server {
public:
  tls_server(const std::string& ca, const std::string& cert,
             const std::string& key) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str());
    SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    lfd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(lfd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    ::getsockname(lfd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
    ::listen(lfd_, 8);
    thread_ = std::thread([this] { serve(); });
  }

  ~tls_server() {
    stop_ = true;
    thread_.join();
    ::close(lfd_);
    SSL_CTX_free(ctx_);
  }

  uint16_t port = 0;
  /// Handshakes that failed, with OpenSSL's reason (e.g. "tlsv1 alert
  /// unknown ca": the node refused our certificate).
  std::atomic<int> failed{0};
  std::atomic<int> succeeded{0};
  /// Application bytes received after successful handshakes.
  std::atomic<size_t> bytes{0};

  /// OpenSSL's reason for the last failed handshake.
  std::string last_error() {
    std::lock_guard<std::mutex> guard{mtx_};
    return last_error_;
  }

private:
  void serve() {
    while (!stop_) {
      pollfd pfd{lfd_, POLLIN, 0};
      if (::poll(&pfd, 1, 100) <= 0)
        continue;
      int fd = ::accept(lfd_, nullptr, nullptr);
      if (fd < 0)
        continue;
      timeval tv{2, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      auto ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd);
      ERR_clear_error();
      if (SSL_accept(ssl) == 1) {
        ++succeeded;
        bool closed = false;
        bytes += drain_fd(fd, ssl, std::chrono::milliseconds(500), closed);
      } else {
        char buf[256] = {0};
        ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
        {
          std::lock_guard<std::mutex> guard{mtx_};
          last_error_ = buf;
        }
        ++failed;
      }
      SSL_free(ssl);
      ::close(fd);
    }
  }

  SSL_CTX* ctx_ = nullptr;
  int lfd_ = -1;
  std::mutex mtx_;
  std::string last_error_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// A BASP header as a hostile peer writes it (big-endian, 32 bytes): a
/// client handshake announcing `payload_len` bytes that never come.
inline std::string basp_header(uint32_t payload_len) {
  std::string result(32, '\0');
  result[0] = 1; // client handshake
  for (int i = 0; i < 4; ++i)
    result[4 + i] = static_cast<char>((payload_len >> (24 - 8 * i)) & 0xff);
  result[15] = 3; // operation data: BASP version
  return result;
}

} // namespace osb::test
