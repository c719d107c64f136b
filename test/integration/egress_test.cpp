// The egress sidecar against real containers on this machine, no internet.
//
// The test runs, on the Docker bridge's gateway address (docker0, e.g.
// 172.17.0.1): a DNS server with fixed answers and an HTTP server. A busybox
// "web" container serves HTTP on its own bridge address. The sidecar
// (opensandbox/egress:latest, which deploy/setup.sh builds from the current
// binary; the test fails if the image is stale) uses the test DNS server as its upstream; a
// busybox "sandbox" joins its network namespace. Nothing is added to the
// host's network configuration; every container carries the label
// opensandbox.io/egress-it and is removed at the end (and at the start, if a
// previous run was killed).
//
// Requires root (setns into the sidecar's namespace for the latency
// measurement) and Docker (skips otherwise), and the images that
// deploy/setup.sh builds (fails otherwise).

#include "net/egress/dns_message.hpp"
#include "server_process.hpp"
#include "test_dns_server.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace osb::egress;
using namespace std::chrono_literals;
using osb::test::test_dns_server;

#ifndef OSB_SOURCE_DIR
#  define OSB_SOURCE_DIR "."
#endif

namespace {

constexpr auto egress_image = "opensandbox/egress:latest";
constexpr auto busybox = "opensandbox/busybox:latest";
constexpr auto it_label = "opensandbox.io/egress-it";
constexpr auto token = "it-egress-token";

struct run_result {
  int status = -1;
  std::string out;
};

/// Runs `cmd` through the shell (stderr merged); returns exit status and
/// output.
run_result run(const std::string& cmd) {
  run_result r;
  if (auto p = ::popen((cmd + " 2>&1").c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0)
      r.out.append(buf, n);
    auto st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  return r;
}

std::string trimmed(std::string x) {
  while (!x.empty() && (x.back() == '\n' || x.back() == ' '))
    x.pop_back();
  return x;
}

sockaddr_in inet(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

uint16_t bound_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

/// Answers every request with "hello-egress".
class test_http_server {
public:
  explicit test_http_server(const std::string& ip) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    auto a = inet(ip, 0);
    ok = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0
         && ::listen(fd_, 16) == 0;
    port = bound_port(fd_);
    thread_ = std::thread{[this] { loop(); }};
  }

  ~test_http_server() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  bool ok = false;
  uint16_t port = 0;

private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0)
        continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0)
        continue;
      char buf[2048];
      timeval tv{2, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      ::recv(c, buf, sizeof(buf), 0);
      std::string res = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
                        "Content-Length: 12\r\n\r\nhello-egress";
      ::send(c, res.data(), res.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }

  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct http_reply {
  int status = 0;
  std::string body;
};

/// One HTTP/1.1 request on a fresh connection to 127.0.0.1:port.
http_reply http(uint16_t port, const std::string& method,
                const std::string& path, const std::string& body = {},
                bool with_token = true) {
  http_reply r;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  auto a = inet("127.0.0.1", port);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return r;
  }
  std::ostringstream req;
  req << method << " " << path << " HTTP/1.1\r\nHost: x\r\n"
      << "Connection: close\r\nContent-Length: " << body.size() << "\r\n";
  if (with_token)
    req << "OPENSANDBOX-EGRESS-AUTH: " << token << "\r\n";
  req << "\r\n" << body;
  auto s = req.str();
  ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
  std::string raw;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0)
    raw.append(buf, static_cast<size_t>(n));
  ::close(fd);
  if (raw.size() > 12)
    r.status = std::atoi(raw.c_str() + 9);
  if (auto head = raw.find("\r\n\r\n"); head != std::string::npos)
    r.body = raw.substr(head + 4);
  return r;
}

/// Sends one UDP query to ip:port and waits for the matching answer.
bool query_udp(int fd, const std::string& ip, uint16_t port,
               const std::string& name, uint16_t id, dns::header* out) {
  auto q = dns::make_query(id, name, dns::type_a);
  auto a = inet(ip, port);
  if (::sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&a),
               sizeof(a))
      < 0)
    return false;
  uint8_t buf[1500];
  for (;;) {
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0)
      return false;
    auto h = dns::parse_header(buf, static_cast<size_t>(n));
    if (h && h->id == id) {
      if (out)
        *out = *h;
      return true;
    }
  }
}

/// Everything one test run creates; removed in the destructor.
struct environment {
  std::string gateway;
  std::string web_ip;
  std::vector<std::string> containers;

  ~environment() {
    for (auto& c : containers)
      run("docker rm -f " + c + " >/dev/null");
  }

  std::string start(const std::string& name, const std::string& args) {
    containers.push_back(name);
    auto r = run("docker run -d --name " + name + " --label " + it_label
                 + "=1 " + args);
    return r.status == 0 ? trimmed(r.out) : std::string{};
  }
};

std::string suffix() {
  return std::to_string(::getpid());
}

/// Starts a sidecar; returns its host port for 18080 (0 on failure).
uint16_t start_sidecar(environment& env, const std::string& name,
                       const std::string& mode, const std::string& rules,
                       uint16_t dns_port) {
  std::string args
    = "--cap-add NET_ADMIN"
      " --sysctl net.ipv6.conf.all.disable_ipv6=1"
      " --sysctl net.ipv6.conf.default.disable_ipv6=1"
      " --sysctl net.ipv6.conf.lo.disable_ipv6=1"
      " -p 127.0.0.1::18080"
      " -e OPENSANDBOX_EGRESS_MODE="
      + mode + " -e OPENSANDBOX_EGRESS_TOKEN=" + token
      + " -e OPENSANDBOX_EGRESS_UPSTREAM_DNS=" + env.gateway + ":"
      + std::to_string(dns_port) + " -e 'OPENSANDBOX_EGRESS_RULES=" + rules
      + "' " + egress_image;
  if (env.start(name, args).empty())
    return 0;
  auto port_out = run("docker port " + name + " 18080");
  auto colon = port_out.out.rfind(':');
  if (port_out.status != 0 || colon == std::string::npos)
    return 0;
  auto port = static_cast<uint16_t>(std::atoi(port_out.out.c_str() + colon + 1));
  // As the server does: poll /healthz (with the token) for up to 30 s.
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (http(port, "GET", "/healthz").status == 200)
      return port;
    std::this_thread::sleep_for(100ms);
  }
  std::fprintf(stderr, "%s\n", run("docker logs " + name).out.c_str());
  return 0;
}

run_result in_sandbox(const std::string& sandbox, const std::string& cmd) {
  return run("docker exec " + sandbox + " sh -c '" + cmd + "'");
}

// busybox wget -T crashes in Debian's busybox-static: bound it with timeout.
std::string fetch(const std::string& url, int secs = 3) {
  return "timeout " + std::to_string(secs) + " wget -q -O - " + url;
}

// The same GET with nc, for sandboxes under gVisor: busybox wget read(2)s
// its socket before the answer is there, which this gVisor's host network
// answers with EAGAIN (docs/gvisor.md); nc polls first. The answer keeps
// its headers.
std::string get_root(const std::string& host, const std::string& port,
                     int secs = 3) {
  return "printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | timeout "
         + std::to_string(secs) + " nc " + host + " " + port;
}

class egress_integration : public ::testing::Test {
protected:
  void SetUp() override {
    if (::geteuid() != 0)
      GTEST_SKIP() << "needs root";
    if (run("docker info >/dev/null").status != 0)
      GTEST_SKIP() << "needs Docker";
    ASSERT_EQ(run(std::string{"docker image inspect "} + busybox
                  + " >/dev/null")
                .status,
              0)
      << busybox << " is missing: run deploy/setup.sh";
#ifdef OSB_EGRESS_BINARY
    // The image must hold the binary that was just built (deploy/setup.sh
    // builds it; a test never does).
    auto check = run(std::string{OSB_SOURCE_DIR}
                     + "/deploy/build-egress-image.sh --check "
                     + OSB_EGRESS_BINARY + " 2>&1");
    ASSERT_EQ(check.status, 0) << check.out;
#else
    ASSERT_EQ(run(std::string{"docker image inspect "} + egress_image
                  + " >/dev/null")
                .status,
              0)
      << egress_image << " is missing: run deploy/setup.sh";
#endif
    // Leftovers of a killed run.
    run(std::string{"docker ps -aq --filter label="} + it_label
        + " | xargs -r docker rm -f >/dev/null");
    // The default bridge's address on the host (IPAM often omits it).
    env.gateway = trimmed(
      run("ip -4 -o addr show dev \"$(docker network inspect bridge -f "
          "'{{index .Options \"com.docker.network.bridge.name\"}}')\" "
          "| awk '{print $4}' | cut -d/ -f1 | head -n1")
        .out);
    ASSERT_TRUE(parse_ip(env.gateway)) << env.gateway;
  }

  environment env;
};

} // namespace

TEST_F(egress_integration, dns_nft_enforcement) {
  test_dns_server dns_server{env.gateway};
  test_http_server http_server{env.gateway};
  ASSERT_TRUE(dns_server.ok && http_server.ok);
  auto web = "osb-egress-it-web-" + suffix();
  ASSERT_FALSE(env.start(web, std::string{busybox}
                                + " sh -c 'mkdir -p /www && echo web-ok > "
                                  "/www/index.html && exec httpd -f -p 8080 "
                                  "-h /www'")
                 .empty());
  env.web_ip = trimmed(
    run("docker inspect -f '{{.NetworkSettings.IPAddress}}' " + web).out);
  ASSERT_TRUE(parse_ip(env.web_ip)) << env.web_ip;
  dns_server.set("allowed.test", env.gateway);
  dns_server.set("denied.test", env.gateway);
  dns_server.set("other.test", env.web_ip);
  auto hport = std::to_string(http_server.port);
  auto side = "osb-egress-it-side-" + suffix();
  auto rules = R"({"defaultAction":"deny","egress":[)"
               R"({"action":"allow","target":"allowed.test"},)"
               R"({"action":"allow","target":"*.fresh.test"},)"
               R"({"action":"deny","target":"denied.test"}]})";
  auto api = start_sidecar(env, side, "dns+nft", rules, dns_server.port);
  ASSERT_NE(api, 0) << "sidecar did not become healthy";
  auto sandbox = "osb-egress-it-sandbox-" + suffix();
  ASSERT_FALSE(env.start(sandbox, "--network container:" + side + " "
                                    + busybox + " sleep 3600")
                 .empty());

  // Auth and GET shape.
  auto res = http(api, "GET", "/policy", {}, false);
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(res.body, "unauthorized\n");
  res = http(api, "GET", "/policy");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body,
            R"({"status":"ok","mode":"enforcing","enforcementMode":"dns+nft",)"
            R"("policy":{"egress":[{"action":"allow","target":"allowed.test"},)"
            R"({"action":"allow","target":"*.fresh.test"},)"
            R"({"action":"deny","target":"denied.test"}],)"
            R"("defaultAction":"deny"}})"
            "\n");

  // An IP literal nobody resolved is unreachable under defaultAction deny
  // (checked first, before any name could have taught the address).
  auto r = in_sandbox(sandbox, fetch("http://" + env.gateway + ":" + hport + "/"));
  EXPECT_NE(r.status, 0) << r.out;
  r = in_sandbox(sandbox, fetch("http://" + env.web_ip + ":8080/"));
  EXPECT_NE(r.status, 0) << r.out;

  // The allowed name resolves (through the redirect: resolv.conf names the
  // host's resolver, not the proxy) and connects.
  r = in_sandbox(sandbox, "nslookup allowed.test");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Address: " + env.gateway), std::string::npos) << r.out;
  r = in_sandbox(sandbox, fetch("http://allowed.test:" + hport + "/"));
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "hello-egress");
  // Now the address is learned: the literal works too.
  r = in_sandbox(sandbox, fetch("http://" + env.gateway + ":" + hport + "/"));
  EXPECT_EQ(r.status, 0) << r.out;

  // The denied name fails at DNS level with NXDOMAIN, whatever resolver the
  // sandbox names; the upstream never sees it.
  auto before = dns_server.queries.load();
  r = in_sandbox(sandbox, "nslookup denied.test");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("NXDOMAIN"), std::string::npos) << r.out;
  r = in_sandbox(sandbox, "nslookup denied.test 9.9.9.9");
  EXPECT_NE(r.out.find("NXDOMAIN"), std::string::npos) << r.out;
  EXPECT_EQ(dns_server.queries.load(), before);
  r = in_sandbox(sandbox, fetch("http://denied.test:" + hport + "/"));
  EXPECT_NE(r.status, 0) << r.out;
  // Unlisted names: default deny.
  r = in_sandbox(sandbox, "nslookup other.test");
  EXPECT_NE(r.out.find("NXDOMAIN"), std::string::npos) << r.out;

  // PATCH at runtime: effective within a second.
  auto patch_start = std::chrono::steady_clock::now();
  res = http(api, "PATCH", "/policy",
             R"([{"action":"allow","target":"other.test"}])");
  std::printf("[egress] PATCH round trip (nft transaction included) %.1f ms\n",
              std::chrono::duration<double, std::milli>(
                std::chrono::steady_clock::now() - patch_start)
                .count());
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(res.body, R"({"status":"ok","mode":"enforcing",)"
                      R"("enforcementMode":"dns+nft"})"
                      "\n");
  auto t0 = std::chrono::steady_clock::now();
  bool resolved = false;
  while (std::chrono::steady_clock::now() - t0 < 1s) {
    if (in_sandbox(sandbox, "nslookup other.test").status == 0) {
      resolved = true;
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  auto patch_ms = std::chrono::duration<double, std::milli>(
                    std::chrono::steady_clock::now() - t0)
                    .count();
  EXPECT_TRUE(resolved);
  std::printf("[egress] PATCH effective after %.0f ms (incl. docker exec)\n",
              patch_ms);
  r = in_sandbox(sandbox, fetch("http://other.test:8080/"));
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(trimmed(r.out), "web-ok");

  // Answers from inside the namespace, over UDP and TCP. (Latency and
  // memory are measured by bench/egress_dns.sh.)
  auto pid = trimmed(run("docker inspect -f '{{.State.Pid}}' " + side).out);
  int answered = 0, fresh = 0;
  bool tcp_ok = false;
  std::thread probe{[&] {
    int ns = ::open(("/proc/" + pid + "/ns/net").c_str(), O_RDONLY);
    if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0)
      return;
    ::close(ns);
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    auto ok = [&](const std::string& name, uint16_t id) {
      dns::header h;
      return query_udp(fd, "127.0.0.1", 53, name, id, &h) && h.rcode() == 0;
    };
    uint16_t id = 1;
    for (int i = 0; i < 20; ++i)
      answered += ok("allowed.test", id++);
    // Every answer a new address: each goes through the netlink insertion.
    for (int i = 0; i < 20; ++i)
      fresh += ok("n" + std::to_string(i) + ".fresh.test", id++);
    ::close(fd);
    // One query over TCP.
    int tfd = ::socket(AF_INET, SOCK_STREAM, 0);
    auto a = inet("127.0.0.1", 53);
    ::setsockopt(tfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (::connect(tfd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
      auto q = dns::make_query(77, "allowed.test", dns::type_a);
      std::vector<uint8_t> framed = {0, static_cast<uint8_t>(q.size())};
      framed.insert(framed.end(), q.begin(), q.end());
      ::send(tfd, framed.data(), framed.size(), 0);
      uint8_t buf[600];
      auto n = ::recv(tfd, buf, sizeof(buf), MSG_WAITALL);
      auto xs = n > 2 ? dns::extract_addresses(buf + 2,
                                               static_cast<size_t>(n - 2))
                      : std::nullopt;
      tcp_ok = xs && xs->size() == 1;
    }
    ::close(tfd);
  }};
  probe.join();
  EXPECT_TRUE(tcp_ok);
  EXPECT_EQ(answered, 20);
  EXPECT_EQ(fresh, 20);
  auto learned = run("docker exec " + side
                     + " nft list set inet opensandbox dyn_allow_v4");
  EXPECT_NE(learned.out.find("10.99.0.19"), std::string::npos) << learned.out;

  // Denying a name revokes the addresses learned for it at once.
  res = http(api, "PATCH", "/policy",
             R"([{"action":"deny","target":"allowed.test"}])");
  ASSERT_EQ(res.status, 200) << res.body;
  r = in_sandbox(sandbox, "nslookup allowed.test");
  EXPECT_NE(r.out.find("NXDOMAIN"), std::string::npos) << r.out;
  r = in_sandbox(sandbox, fetch("http://" + env.gateway + ":" + hport + "/"));
  EXPECT_NE(r.status, 0) << r.out;

  // DELETE: other.test is gone, unknown targets are reported.
  res = http(api, "DELETE", "/policy", R"(["other.test"])");
  EXPECT_EQ(res.status, 200);
  r = in_sandbox(sandbox, "nslookup other.test");
  EXPECT_NE(r.out.find("NXDOMAIN"), std::string::npos) << r.out;
  res = http(api, "DELETE", "/policy", R"(["never.test"])");
  EXPECT_NE(res.body.find("no matching targets found"), std::string::npos);

  // POST replaces; defaultAction allow opens everything but denied names.
  res = http(api, "POST", "/policy",
             R"({"defaultAction":"allow","egress":[)"
             R"({"action":"deny","target":"denied.test"}]})");
  EXPECT_EQ(res.status, 200);
  r = in_sandbox(sandbox, fetch("http://" + env.web_ip + ":8080/"));
  EXPECT_EQ(r.status, 0) << r.out;
  r = in_sandbox(sandbox, "nslookup denied.test");
  EXPECT_NE(r.out.find("NXDOMAIN"), std::string::npos) << r.out;
  // An IP deny rule is enforced in dns+nft mode.
  res = http(api, "PATCH", "/policy",
             R"([{"action":"deny","target":")" + env.web_ip + R"("}])");
  EXPECT_EQ(res.status, 200);
  r = in_sandbox(sandbox, fetch("http://" + env.web_ip + ":8080/"));
  EXPECT_NE(r.status, 0) << r.out;
}

TEST_F(egress_integration, dns_mode_filters_names_only) {
  test_dns_server dns_server{env.gateway};
  test_http_server http_server{env.gateway};
  ASSERT_TRUE(dns_server.ok && http_server.ok);
  dns_server.set("a.wild.test", env.gateway);
  dns_server.set("wild.test", env.gateway);
  auto side = "osb-egress-it-dside-" + suffix();
  auto rules = R"({"defaultAction":"deny","egress":[)"
               R"({"action":"allow","target":"*.wild.test"}]})";
  auto api = start_sidecar(env, side, "dns", rules, dns_server.port);
  ASSERT_NE(api, 0);
  auto sandbox = "osb-egress-it-dsandbox-" + suffix();
  ASSERT_FALSE(env.start(sandbox, "--network container:" + side + " "
                                    + busybox + " sleep 3600")
                 .empty());
  auto res = http(api, "GET", "/policy");
  EXPECT_NE(res.body.find(R"("enforcementMode":"dns")"), std::string::npos);
  auto r = in_sandbox(sandbox, "nslookup a.wild.test");
  EXPECT_EQ(r.status, 0) << r.out;
  // The wildcard covers sub-domains only.
  r = in_sandbox(sandbox, "nslookup wild.test");
  EXPECT_NE(r.out.find("NXDOMAIN"), std::string::npos) << r.out;
  // In dns mode IP literals are not filtered (as the original).
  auto hport = std::to_string(http_server.port);
  r = in_sandbox(sandbox, fetch("http://" + env.gateway + ":" + hport + "/"));
  EXPECT_EQ(r.status, 0) << r.out;
  // An empty POST resets to deny-all.
  res = http(api, "POST", "/policy");
  EXPECT_EQ(res.body, R"({"status":"ok","mode":"deny_all",)"
                      R"("reason":"policy reset to default deny-all"})"
                      "\n");
  r = in_sandbox(sandbox, "nslookup a.wild.test");
  EXPECT_NE(r.out.find("NXDOMAIN"), std::string::npos) << r.out;
  res = http(api, "GET", "/policy");
  EXPECT_NE(res.body.find(R"("egress":[])"), std::string::npos) << res.body;
}

// The same enforcement, but with the server creating the sidecar: a sandbox
// created with a networkPolicy through the lifecycle API, its policy read and
// patched through the 18080 endpoint (execd's /proxy into the shared netns),
// and the sidecar removed with the sandbox on delete and on expiry.
TEST_F(egress_integration, ServerCreatesAndRemovesTheSidecar) {
  test_dns_server dns_server{env.gateway};
  test_http_server http_server{env.gateway};
  ASSERT_TRUE(dns_server.ok && http_server.ok);
  auto web = "osb-egress-it-web2-" + suffix();
  ASSERT_FALSE(env.start(web, std::string{busybox}
                                + " sh -c 'mkdir -p /www && echo web-ok > "
                                  "/www/index.html && exec httpd -f -p 8080 "
                                  "-h /www'")
                 .empty());
  env.web_ip = trimmed(
    run("docker inspect -f '{{.NetworkSettings.IPAddress}}' " + web).out);
  dns_server.set("allowed.test", env.gateway);
  dns_server.set("later.test", env.gateway);
  auto hport = std::to_string(http_server.port);
  osb::test::server_process srv(
    "[egress]\nimage = \"" + std::string{egress_image}
    + "\"\nmode = \"dns+nft\"\nupstream_dns = \"" + env.gateway + ":"
    + std::to_string(dns_server.port) + "\"\n");
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto create = [&](const std::string& extra) {
    auto r = srv.call(
      "POST", "/v1/sandboxes",
      R"({"image":{"uri":"opensandbox/busybox:latest"},)"
      R"("entrypoint":["sleep","3600"],"resourceLimits":{},)"
      R"("networkPolicy":{"defaultAction":"deny","egress":[)"
      R"({"action":"allow","target":"allowed.test"}]})"
        + extra + "}");
    EXPECT_EQ(r.status, 202) << r.body;
    auto doc = r.json();
    return doc.IsObject() && doc.HasMember("id") ? std::string{doc["id"].GetString()}
                                                 : std::string{};
  };
  auto expiring = create(R"(,"timeout":60)");
  auto kept = create("");
  ASSERT_EQ(srv.wait_state(kept, "Running", 60s), "Running") << srv.read_log();
  ASSERT_EQ(srv.wait_state(expiring, "Running", 60s), "Running");
  auto box = "sandbox-" + kept;
  // Names: allowed resolves and connects, the rest is NXDOMAIN.
  auto r = in_sandbox(box, "nslookup allowed.test");
  EXPECT_EQ(r.status, 0) << r.out;
  // (nc: this sandbox may run under gVisor, see get_root.)
  r = in_sandbox(box, get_root("allowed.test", hport));
  EXPECT_NE(r.out.find("\r\n\r\nhello-egress"), std::string::npos) << r.out;
  r = in_sandbox(box, "nslookup later.test");
  EXPECT_NE(r.out.find("NXDOMAIN"), std::string::npos) << r.out;
  // An IP literal no allowed name resolved to stays unreachable.
  r = in_sandbox(box, get_root(env.web_ip, "8080"));
  EXPECT_EQ(r.out.find("web-ok"), std::string::npos) << r.out;
  // The SDK's way to the policy API: endpoint 18080 plus its headers (the
  // sidecar's token, and execd's, which relays the bridge-mode endpoint).
  auto ep = srv.call("GET", "/v1/sandboxes/" + kept + "/endpoints/18080");
  ASSERT_EQ(ep.status, 200) << ep.body;
  auto epd = ep.json();
  std::string endpoint = epd["endpoint"].GetString();
  ASSERT_TRUE(epd.HasMember("headers")) << ep.body;
  std::map<std::string, std::string> hdrs;
  for (auto& m : epd["headers"].GetObject())
    hdrs[m.name.GetString()] = m.value.GetString();
  EXPECT_EQ(hdrs.count("OPENSANDBOX-EGRESS-AUTH"), 1u) << ep.body;
  auto colon = endpoint.find(':');
  auto slash = endpoint.find('/');
  auto port = static_cast<uint16_t>(
    std::stoi(endpoint.substr(colon + 1, slash - colon - 1)));
  auto path = endpoint.substr(slash);
  auto pol = osb::test::http_call(port, "GET", path + "/policy", {}, hdrs);
  EXPECT_EQ(pol.status, 200) << pol.body;
  EXPECT_NE(pol.body.find("allowed.test"), std::string::npos) << pol.body;
  auto patched = osb::test::http_call(
    port, "PATCH", path + "/policy",
    R"([{"action":"allow","target":"later.test"}])", hdrs);
  EXPECT_EQ(patched.status, 200) << patched.body;
  std::this_thread::sleep_for(1s);
  r = in_sandbox(box, "nslookup later.test");
  EXPECT_EQ(r.status, 0) << r.out;
  // Delete takes the sidecar along; expiry too.
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + kept).status, 204);
  EXPECT_NE(run("docker inspect sandbox-egress-" + kept + " >/dev/null 2>&1")
              .status,
            0);
  EXPECT_EQ(srv.wait_state(expiring, "404", 90s), "404");
  // GET says 404 once the deletion is durable; the containers go right
  // after (slower on a loaded machine).
  EXPECT_EQ(srv.wait_containers(0, 30s), 0);
  EXPECT_NE(run("docker inspect sandbox-egress-" + expiring
                + " >/dev/null 2>&1")
              .status,
            0);
}

// The policy of a sandbox under gVisor ([secure_runtime], docs/gvisor.md):
// the sidecar stays on runc (nftables of a real kernel namespace) and owns
// the namespace; the sandbox's socket calls reach that namespace's kernel
// (runsc --network=host), so its rules apply to them as under runc.
TEST_F(egress_integration, PolicyHoldsForASandboxUnderGvisor) {
  ASSERT_EQ(run("docker info --format '{{json .Runtimes}}' | grep -q "
                "'\"runsc\"'")
              .status,
            0)
    << "dockerd does not list runsc: run deploy/setup.sh";
  test_dns_server dns_server{env.gateway};
  test_http_server http_server{env.gateway};
  ASSERT_TRUE(dns_server.ok && http_server.ok);
  auto web = "osb-egress-it-web3-" + suffix();
  ASSERT_FALSE(env.start(web, std::string{busybox}
                                + " sh -c 'mkdir -p /www && echo web-ok > "
                                  "/www/index.html && exec httpd -f -p 8080 "
                                  "-h /www'")
                 .empty());
  env.web_ip = trimmed(
    run("docker inspect -f '{{.NetworkSettings.IPAddress}}' " + web).out);
  dns_server.set("allowed.test", env.gateway);
  dns_server.set("denied.test", env.web_ip);
  auto hport = std::to_string(http_server.port);
  osb::test::server_process srv(
    osb::test::secure_runtime_toml("gvisor") + "[egress]\nimage = \""
    + std::string{egress_image} + "\"\nmode = \"dns+nft\"\nupstream_dns = \""
    + env.gateway + ":" + std::to_string(dns_server.port) + "\"\n");
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto r0 = srv.call("POST", "/v1/sandboxes",
                     R"({"image":{"uri":"opensandbox/busybox:latest"},)"
                     R"("entrypoint":["sleep","3600"],"resourceLimits":{},)"
                     R"("timeout":600,"networkPolicy":{"defaultAction":)"
                     R"("deny","egress":[{"action":"allow","target":)"
                     R"("allowed.test"}]}})");
  ASSERT_EQ(r0.status, 202) << r0.body;
  std::string id = r0.json()["id"].GetString();
  ASSERT_EQ(srv.wait_state(id, "Running", 60s), "Running") << srv.read_log();
  auto box = "sandbox-" + id;
  EXPECT_EQ(osb::test::container_runtime(box), "runsc");
  EXPECT_EQ(osb::test::container_runtime("sandbox-egress-" + id), "runc");
  auto r = in_sandbox(box, "dmesg | head -n 1");
  EXPECT_NE(r.out.find("gVisor"), std::string::npos) << r.out;
  // Allowed: resolves and connects. Denied and unlisted: NXDOMAIN. An IP
  // literal no allowed name resolved to: unreachable.
  r = in_sandbox(box, "nslookup allowed.test");
  EXPECT_EQ(r.status, 0) << r.out;
  r = in_sandbox(box, get_root("allowed.test", hport));
  EXPECT_NE(r.out.find("hello-egress"), std::string::npos) << r.out;
  r = in_sandbox(box, "nslookup denied.test 9.9.9.9");
  EXPECT_NE(r.out.find("NXDOMAIN"), std::string::npos) << r.out;
  r = in_sandbox(box, get_root(env.web_ip, "8080"));
  EXPECT_EQ(r.out.find("web-ok"), std::string::npos) << r.out;
  // The same request reaches it from a container without the policy.
  r = run("docker run --rm --label " + std::string{it_label} + "=1 "
          + busybox + " sh -c '" + get_root(env.web_ip, "8080") + "'");
  EXPECT_NE(r.out.find("web-ok"), std::string::npos) << r.out;
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(srv.wait_containers(0), 0);
}
