#pragma once

// Test support: a DNS server with fixed answers on a given IPv4 address
// (UDP, a port of its own), the upstream of egress sidecars under test
// (egress_test.cpp, kubernetes_test.cpp). Needs osb_egress (its DNS codec).

#include "net/egress/dns_message.hpp"
#include "net/egress/policy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace osb::test {

/// Fixed answers: name → IPv4 addresses (TTL 30); n<i>.fresh.test →
/// 10.99.<i/256>.<i%256>; anything else NXDOMAIN.
class test_dns_server {
public:
  explicit test_dns_server(const std::string& ip) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    ok = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    thread_ = std::thread{[this] { loop(); }};
  }

  ~test_dns_server() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  void set(const std::string& name, const std::string& ip) {
    std::lock_guard<std::mutex> guard{mtx_};
    names_[name] = ip;
  }

  bool ok = false;
  uint16_t port = 0;
  std::atomic<int> queries{0};

private:
  void loop() {
    uint8_t buf[1500];
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0)
        continue;
      sockaddr_in peer{};
      socklen_t len = sizeof(peer);
      auto n = ::recvfrom(fd_, buf, sizeof(buf), 0,
                          reinterpret_cast<sockaddr*>(&peer), &len);
      if (n <= 0)
        continue;
      ++queries;
      auto size = static_cast<size_t>(n);
      auto q = egress::dns::parse_question(buf, size);
      std::vector<uint8_t> reply;
      std::optional<std::string> ip;
      if (q) {
        std::lock_guard<std::mutex> guard{mtx_};
        if (auto it = names_.find(q->name); it != names_.end())
          ip = it->second;
        unsigned i = 0;
        if (!ip && std::sscanf(q->name.c_str(), "n%u.fresh.test", &i) == 1)
          ip = "10.99." + std::to_string(i / 256 % 256) + "."
               + std::to_string(i % 256);
      }
      if (ip)
        reply = egress::dns::make_answer(buf, size, {*egress::parse_ip(*ip)},
                                         30);
      else
        reply = egress::dns::make_reply(buf, size,
                                        egress::dns::rcode_nxdomain);
      ::sendto(fd_, reply.data(), reply.size(), 0,
               reinterpret_cast<sockaddr*>(&peer), len);
    }
  }

  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mtx_;
  std::map<std::string, std::string> names_;
};

} // namespace osb::test
