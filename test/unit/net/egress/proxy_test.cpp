// The DNS proxy end to end on loopback, against a fake upstream: no root,
// no firewall.

#include "net/egress/dns_proxy.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

using namespace osb::egress;

namespace {

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

uint16_t local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// A port free for both UDP and TCP right now.
uint16_t free_port() {
  for (;;) {
    int u = ::socket(AF_INET, SOCK_DGRAM, 0);
    auto a = loopback(0);
    ::bind(u, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    auto port = local_port(u);
    int t = ::socket(AF_INET, SOCK_STREAM, 0);
    auto b = loopback(port);
    auto ok = ::bind(t, reinterpret_cast<sockaddr*>(&b), sizeof(b)) == 0;
    ::close(u);
    ::close(t);
    if (ok)
      return port;
  }
}

// Answers every A query with 10.0.0.<n> (TTL 42); counts queries.
class fake_upstream {
public:
  fake_upstream() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    auto a = loopback(0);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    port = local_port(fd_);
    timeval tv{0, 100000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    thread_ = std::thread{[this] { run(); }};
  }

  ~fake_upstream() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  uint16_t port = 0;
  std::atomic<int> queries{0};

private:
  void run() {
    uint8_t buf[4096];
    while (!stop_) {
      sockaddr_in peer{};
      socklen_t len = sizeof(peer);
      auto n = ::recvfrom(fd_, buf, sizeof(buf), 0,
                          reinterpret_cast<sockaddr*>(&peer), &len);
      if (n <= 0)
        continue;
      ++queries;
      auto q = dns::parse_question(buf, static_cast<size_t>(n));
      std::vector<uint8_t> r;
      if (q && q->name == "missing.test")
        r = dns::make_reply(buf, static_cast<size_t>(n), dns::rcode_nxdomain);
      else if (q && q->name == "refused.test")
        r = dns::make_reply(buf, static_cast<size_t>(n), 5);
      else
        r = dns::make_answer(buf, static_cast<size_t>(n),
                             {*parse_ip("10.0.0." + std::to_string(queries))},
                             42);
      ::sendto(fd_, r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&peer),
               len);
    }
  }

  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct exchange_result {
  bool ok = false;
  dns::header h;
  std::vector<uint8_t> msg;
};

exchange_result ask_udp(uint16_t port, const std::string& name) {
  static uint16_t id = 100;
  auto q = dns::make_query(++id, name, dns::type_a);
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  auto a = loopback(port);
  ::sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&a),
           sizeof(a));
  exchange_result res;
  res.msg.resize(4096);
  auto n = ::recv(fd, res.msg.data(), res.msg.size(), 0);
  ::close(fd);
  if (n <= 0)
    return res;
  res.msg.resize(static_cast<size_t>(n));
  res.h = *dns::parse_header(res.msg.data(), res.msg.size());
  res.ok = answers(q.data(), q.size(), res.msg.data(), res.msg.size());
  return res;
}

exchange_result ask_tcp(uint16_t port, const std::string& name) {
  auto q = dns::make_query(4242, name, dns::type_a);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  auto a = loopback(port);
  exchange_result res;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return res;
  }
  std::vector<uint8_t> framed = {static_cast<uint8_t>(q.size() >> 8),
                                 static_cast<uint8_t>(q.size() & 0xff)};
  framed.insert(framed.end(), q.begin(), q.end());
  ::send(fd, framed.data(), framed.size(), 0);
  uint8_t len[2];
  if (::recv(fd, len, 2, MSG_WAITALL) != 2) {
    ::close(fd);
    return res;
  }
  res.msg.resize((size_t{len[0]} << 8) | len[1]);
  ::recv(fd, res.msg.data(), res.msg.size(), MSG_WAITALL);
  ::close(fd);
  res.h = *dns::parse_header(res.msg.data(), res.msg.size());
  res.ok = answers(q.data(), q.size(), res.msg.data(), res.msg.size());
  return res;
}

struct egress_proxy : ::testing::Test {
  void start(std::vector<upstream> ups) {
    dns_proxy::options opts;
    opts.upstreams = std::move(ups);
    opts.port = free_port();
    opts.timeout = std::chrono::milliseconds{2000};
    port = opts.port;
    proxy = std::make_unique<dns_proxy>(
      io, opts, [](const std::string& name) { return name != "denied.test"; },
      [this](const std::string& name,
             const std::vector<dns::answer_address>& xs) {
        std::lock_guard<std::mutex> guard{mtx};
        for (auto& x : xs)
          learned.emplace_back(name, to_string(x.address));
      });
    std::string error;
    ASSERT_TRUE(proxy->start(&error)) << error;
    thread = std::thread{[this] { io.run(); }};
  }

  ~egress_proxy() override {
    io.stop();
    if (thread.joinable())
      thread.join();
  }

  boost::asio::io_context io;
  std::unique_ptr<dns_proxy> proxy;
  std::thread thread;
  uint16_t port = 0;
  std::mutex mtx;
  std::vector<std::pair<std::string, std::string>> learned;
};

upstream at(uint16_t port) {
  return {*parse_ip("127.0.0.1"), port};
}

} // namespace

TEST_F(egress_proxy, allowed_denied_and_learned) {
  fake_upstream up;
  start({at(up.port)});
  auto r = ask_udp(port, "Allowed.Test");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.h.rcode(), dns::rcode_noerror);
  EXPECT_EQ(r.h.ancount, 1);
  {
    std::lock_guard<std::mutex> guard{mtx};
    ASSERT_EQ(learned.size(), 1u);
    EXPECT_EQ(learned[0].first, "allowed.test");
    EXPECT_EQ(learned[0].second, "10.0.0.1");
  }
  r = ask_udp(port, "denied.test.");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.h.rcode(), dns::rcode_nxdomain);
  EXPECT_EQ(r.h.qdcount, 1);
  EXPECT_EQ(up.queries, 1); // never forwarded
  r = ask_udp(port, "missing.test");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.h.rcode(), dns::rcode_nxdomain);
  EXPECT_EQ(up.queries, 2);
  // TCP clients: same answers.
  r = ask_tcp(port, "allowed.test");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.h.ancount, 1);
  r = ask_tcp(port, "denied.test");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.h.rcode(), dns::rcode_nxdomain);
  EXPECT_EQ(proxy->stats().denied, 2u);
}

TEST_F(egress_proxy, failover_and_servfail) {
  fake_upstream up;
  // A dead upstream first (nothing listens: ICMP refused), then a live one.
  auto dead = free_port();
  start({at(dead), at(up.port)});
  auto r = ask_udp(port, "allowed.test");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.h.rcode(), dns::rcode_noerror);
  // REFUSED from the only live upstream: SERVFAIL.
  r = ask_udp(port, "refused.test");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.h.rcode(), dns::rcode_servfail);
}
