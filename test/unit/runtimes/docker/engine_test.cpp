// Drives docker_engine against a scripted fake daemon on a unix socket, so
// that connection reuse, retries, timeouts, chunking and the pull path are
// covered without Docker.

#include "runtimes/docker/docker_engine.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace osb;
using namespace osb::runtimes;
using namespace osb::runtimes::docker;
using namespace std::chrono_literals;

namespace {

/// What the fake daemon saw.
struct seen_request {
  std::string method;
  std::string target;
  std::string head; ///< request line and headers
  std::string body;
};

/// How the fake daemon answers one request.
struct reply {
  std::string raw;          ///< complete HTTP response
  bool close_after = false; ///< close the connection after sending
  bool hang = false;        ///< never answer
};

reply respond(int status, std::string body,
              std::string content_type = "application/json") {
  std::string reason = status < 300 ? "OK" : "Error";
  reply r;
  r.raw = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
  if (!body.empty())
    r.raw += "Content-Type: " + content_type + "\r\n";
  r.raw += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  r.raw += body;
  return r;
}

/// A blocking one-thread-per-connection HTTP/1.1 server (tests only).
class fake_daemon {
public:
  using handler = std::function<reply(const seen_request&)>;

  /// Listens on a fresh unix socket, or on 127.0.0.1:0 if `tcp`.
  explicit fake_daemon(handler h, bool tcp = false) : handler_(std::move(h)) {
    if (tcp) {
      listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof(addr);
      if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), len) != 0
          || ::listen(listener_, 64) != 0
          || ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr),
                           &len)
               != 0)
        ADD_FAILURE() << "cannot listen on loopback";
      url_ = "tcp://localhost:" + std::to_string(ntohs(addr.sin_port));
    } else {
      static std::atomic<int> counter{0};
      path_ = "/tmp/osb-fake-docker-" + std::to_string(getpid()) + "-"
              + std::to_string(counter++) + ".sock";
      ::unlink(path_.c_str());
      listener_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
      if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr))
            != 0
          || ::listen(listener_, 64) != 0)
        ADD_FAILURE() << "cannot listen on " << path_;
      url_ = "unix://" + path_;
    }
    acceptor_ = std::thread{[this] { accept_loop(); }};
  }

  ~fake_daemon() {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    acceptor_.join();
    {
      std::lock_guard guard{mtx_};
      for (auto fd : fds_)
        ::shutdown(fd, SHUT_RDWR);
      cv_.notify_all();
    }
    for (auto& t : workers_)
      t.join();
    if (!path_.empty())
      ::unlink(path_.c_str());
  }

  std::string url() const {
    return url_;
  }

  int connections() const {
    return connections_;
  }

  std::vector<seen_request> requests() const {
    std::lock_guard guard{mtx_};
    return requests_;
  }

  /// Blocks a handler until `n` requests are inside handlers at the same
  /// time (or the deadline passes); returns whether that happened.
  bool rendezvous(int n, std::chrono::milliseconds limit) {
    std::unique_lock guard{mtx_};
    ++waiting_;
    cv_.notify_all();
    auto ok = cv_.wait_for(guard, limit,
                           [&] { return waiting_ >= n || stopping_; });
    return ok && !stopping_;
  }

private:
  void accept_loop() {
    for (;;) {
      auto fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0)
        return;
      ++connections_;
      std::lock_guard guard{mtx_};
      fds_.push_back(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    std::string buf;
    char chunk[4096];
    for (;;) {
      size_t head_end;
      while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
        auto n = ::read(fd, chunk, sizeof(chunk));
        if (n <= 0)
          return finish(fd);
        buf.append(chunk, static_cast<size_t>(n));
      }
      seen_request req;
      req.head = buf.substr(0, head_end);
      size_t length = 0;
      std::string lower = req.head;
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      if (auto pos = lower.find("content-length:"); pos != std::string::npos)
        length = std::stoul(lower.substr(pos + 15));
      while (buf.size() < head_end + 4 + length) {
        auto n = ::read(fd, chunk, sizeof(chunk));
        if (n <= 0)
          return finish(fd);
        buf.append(chunk, static_cast<size_t>(n));
      }
      req.body = buf.substr(head_end + 4, length);
      buf.erase(0, head_end + 4 + length);
      auto sp1 = req.head.find(' ');
      auto sp2 = req.head.find(' ', sp1 + 1);
      req.method = req.head.substr(0, sp1);
      req.target = req.head.substr(sp1 + 1, sp2 - sp1 - 1);
      {
        std::lock_guard guard{mtx_};
        requests_.push_back(req);
      }
      auto r = handler_(req);
      if (r.hang) {
        // Wait until the client gives up (closes) or the test ends.
        while (::read(fd, chunk, sizeof(chunk)) > 0) {
        }
        return finish(fd);
      }
      size_t off = 0;
      while (off < r.raw.size()) {
        auto n = ::write(fd, r.raw.data() + off, r.raw.size() - off);
        if (n <= 0)
          return finish(fd);
        off += static_cast<size_t>(n);
      }
      if (r.close_after)
        return finish(fd);
    }
  }

  void finish(int fd) {
    std::lock_guard guard{mtx_};
    fds_.erase(std::remove(fds_.begin(), fds_.end(), fd), fds_.end());
    ::close(fd);
  }

  handler handler_;
  std::string path_;
  std::string url_;
  int listener_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  int waiting_ = 0;
  std::vector<int> fds_;
  std::vector<std::thread> workers_;
  std::vector<seen_request> requests_;
};

template <class T, class F>
expected<T> await(F&& start) {
  auto promise = std::make_shared<std::promise<expected<T>>>();
  auto future = promise->get_future();
  std::forward<F>(start)(
    [promise](expected<T> x) { promise->set_value(std::move(x)); });
  if (future.wait_for(20s) != std::future_status::ready)
    return failure{failure_kind::timeout, "test gave up waiting"};
  return future.get();
}

bool starts_with(const std::string& x, const std::string& prefix) {
  return x.rfind(prefix, 0) == 0;
}

} // namespace

TEST(DockerEngine, CallbacksRunOnRuntimeThread) {
  fake_daemon daemon{[](const seen_request&) { return respond(200, "OK"); }};
  auto rt = make_docker_engine(daemon.url(), 5s);
  auto caller = std::this_thread::get_id();
  std::promise<std::thread::id> where;
  rt->ping([&](expected<unit> x) {
    EXPECT_TRUE(x);
    where.set_value(std::this_thread::get_id());
  });
  auto f = where.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_NE(f.get(), caller);
  auto reqs = daemon.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].target, "/v1.41/_ping");
}

TEST(DockerEngine, SpeaksTcp) {
  fake_daemon daemon{[](const seen_request&) { return respond(200, "OK"); },
                     true};
  auto rt = make_docker_engine(daemon.url(), 5s);
  for (int i = 0; i < 3; ++i) {
    auto r = await<unit>([&](auto cb) { rt->ping(cb); });
    ASSERT_TRUE(r) << r.error().message;
  }
  EXPECT_EQ(daemon.connections(), 1);
  auto reqs = daemon.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_NE(reqs[0].head.find("Host: localhost:"), std::string::npos)
    << reqs[0].head;
}

TEST(DockerEngine, ReusesKeepAliveConnections) {
  fake_daemon daemon{[](const seen_request&) { return respond(200, "OK"); }};
  auto rt = make_docker_engine(daemon.url(), 5s);
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(await<unit>([&](auto cb) { rt->ping(cb); }));
  EXPECT_EQ(daemon.connections(), 1);
}

TEST(DockerEngine, RetriesStalePooledConnection) {
  // The daemon advertises keep-alive but drops every connection after one
  // answer, as a restarted daemon would.
  fake_daemon daemon{[](const seen_request&) {
    auto r = respond(200, "OK");
    r.close_after = true;
    return r;
  }};
  auto rt = make_docker_engine(daemon.url(), 5s);
  ASSERT_TRUE(await<unit>([&](auto cb) { rt->ping(cb); }));
  // Give the close time to arrive so the pooled socket is really stale.
  std::this_thread::sleep_for(50ms);
  for (int i = 0; i < 3; ++i) {
    auto r = await<unit>([&](auto cb) { rt->ping(cb); });
    EXPECT_TRUE(r) << r.error().message;
  }
  EXPECT_EQ(daemon.connections(), 4);
}

TEST(DockerEngine, TimeoutIsReported) {
  fake_daemon daemon{[](const seen_request&) {
    reply r;
    r.hang = true;
    return r;
  }};
  auto rt = make_docker_engine(daemon.url(), 1s);
  auto begin = std::chrono::steady_clock::now();
  auto r = await<container_info>([&](auto cb) { rt->inspect("x", cb); });
  auto elapsed = std::chrono::steady_clock::now() - begin;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, failure_kind::timeout);
  EXPECT_TRUE(starts_with(r.error().message, "inspect container: "))
    << r.error().message;
  EXPECT_GE(elapsed, 900ms);
  EXPECT_LT(elapsed, 5s);
}

TEST(DockerEngine, ParsesChunkedList) {
  fake_daemon daemon{[](const seen_request&) {
    std::string body = R"([{"Id":"a","Names":["/n"],"Labels":{"k":"v"},)"
                       R"("State":"running","Status":"Up","Created":5}])";
    reply r;
    r.raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n";
    auto half = body.size() / 2;
    auto chunk = [](const std::string& x) {
      char len[16];
      std::snprintf(len, sizeof(len), "%zx", x.size());
      return std::string{len} + "\r\n" + x + "\r\n";
    };
    r.raw += chunk(body.substr(0, half)) + chunk(body.substr(half))
             + "0\r\n\r\n";
    return r;
  }};
  auto rt = make_docker_engine(daemon.url(), 5s);
  auto xs = await<std::vector<container_info>>([&](auto cb) {
    rt->list({{"k", "v"}}, cb);
  });
  ASSERT_TRUE(xs) << xs.error().message;
  ASSERT_EQ(xs->size(), 1u);
  EXPECT_EQ(xs->front().name, "n");
  EXPECT_EQ(xs->front().created_us, 5'000'000);
  auto reqs = daemon.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].target, "/v1.41/containers/json?all=1&filters="
                            "%7B%22label%22%3A%5B%22k%3Dv%22%5D%7D");
  // The chunked answer left the connection reusable.
  ASSERT_TRUE(await<unit>([&](auto cb) { rt->ping(cb); }));
  EXPECT_EQ(daemon.connections(), 1);
}

TEST(DockerEngine, PullsMissingImageThenCreates) {
  std::atomic<int> creates{0};
  fake_daemon daemon{[&](const seen_request& req) {
    if (starts_with(req.target, "/v1.41/containers/create")) {
      if (creates++ == 0)
        return respond(404, R"({"message":"No such image: reg:5000/a/b:1"})");
      return respond(201, R"({"Id":"new-id","Warnings":[]})");
    }
    if (starts_with(req.target, "/v1.41/images/create"))
      return respond(200, "{\"status\":\"Pulling from a/b\"}\r\n"
                          "{\"status\":\"Digest: sha256:x\"}\r\n");
    return respond(500, R"({"message":"unexpected"})");
  }};
  auto rt = make_docker_engine(daemon.url(), 5s);
  container_spec spec;
  spec.name = "c1";
  spec.image = "reg:5000/a/b:1";
  spec.registry_username = "u";
  spec.registry_password = "p";
  auto id = await<std::string>([&](auto cb) { rt->create(spec, cb); });
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(*id, "new-id");
  auto reqs = daemon.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].target, "/v1.41/containers/create?name=c1");
  EXPECT_NE(reqs[0].head.find("application/json"), std::string::npos);
  EXPECT_EQ(reqs[1].method, "POST");
  EXPECT_EQ(reqs[1].target,
            "/v1.41/images/create?fromImage=reg%3A5000%2Fa%2Fb&tag=1");
  EXPECT_NE(reqs[1].head.find(
              "X-Registry-Auth: eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InAifQ=="),
            std::string::npos)
    << reqs[1].head;
  EXPECT_EQ(reqs[2].body, reqs[0].body);
}

TEST(DockerEngine, PullErrorInStreamFails) {
  fake_daemon daemon{[&](const seen_request& req) {
    if (starts_with(req.target, "/v1.41/containers/create"))
      return respond(404, R"({"message":"No such image: x:1"})");
    return respond(200, "{\"status\":\"Pulling\"}\n"
                        "{\"errorDetail\":{\"message\":\"denied\"},"
                        "\"error\":\"denied\"}\n");
  }};
  auto rt = make_docker_engine(daemon.url(), 5s);
  container_spec spec;
  spec.image = "x:1";
  auto id = await<std::string>([&](auto cb) { rt->create(spec, cb); });
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().kind, failure_kind::failed);
  EXPECT_EQ(id.error().message, "Failed to pull image x:1: denied");
  // No anonymous credentials header without credentials.
  auto reqs = daemon.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].head.find("X-Registry-Auth"), std::string::npos);
}

TEST(DockerEngine, MissingNetworkIsNotPulled) {
  fake_daemon daemon{[&](const seen_request&) {
    return respond(404, R"({"message":"network mynet not found"})");
  }};
  auto rt = make_docker_engine(daemon.url(), 5s);
  container_spec spec;
  spec.image = "x:1";
  auto id = await<std::string>([&](auto cb) { rt->create(spec, cb); });
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().kind, failure_kind::not_found);
  EXPECT_EQ(id.error().message, "create container: network mynet not found");
  EXPECT_EQ(daemon.requests().size(), 1u);
}

TEST(DockerEngine, StatusMapping) {
  fake_daemon daemon{[&](const seen_request& req) {
    if (req.target.find("/start") != std::string::npos)
      return respond(304, "");
    if (req.target.find("/pause") != std::string::npos)
      return respond(409, R"({"message":"is not running"})");
    if (req.target.find("/unpause") != std::string::npos)
      return respond(500, "boom");
    if (req.method == "DELETE")
      return respond(404, R"({"message":"No such container: x"})");
    return respond(400, R"({"message":"bad"})");
  }};
  auto rt = make_docker_engine(daemon.url(), 5s);
  EXPECT_TRUE(await<unit>([&](auto cb) { rt->start("x", cb); }));
  EXPECT_TRUE(await<unit>([&](auto cb) { rt->remove("x", cb); }));
  auto p = await<unit>([&](auto cb) { rt->pause("x", cb); });
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().kind, failure_kind::conflict);
  EXPECT_EQ(p.error().message, "pause container: is not running");
  auto u = await<unit>([&](auto cb) { rt->unpause("x", cb); });
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().kind, failure_kind::failed);
  EXPECT_EQ(u.error().message, "unpause container: HTTP 500: boom");
  auto i = await<container_info>([&](auto cb) { rt->inspect("x", cb); });
  ASSERT_FALSE(i);
  EXPECT_EQ(i.error().kind, failure_kind::invalid);
  auto reqs = daemon.requests();
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(reqs[1].target, "/v1.41/containers/x?force=true");
}

TEST(DockerEngine, ConcurrentCallsUseParallelConnections) {
  constexpr int n = 10;
  std::atomic<int> met{0};
  fake_daemon* self = nullptr;
  fake_daemon daemon{[&](const seen_request&) {
    // Every handler waits until all n requests are in flight at once,
    // which only happens if the client sent them in parallel.
    if (self->rendezvous(n, 5000ms))
      ++met;
    return respond(201, R"({"Id":"x"})");
  }};
  self = &daemon;
  auto rt = make_docker_engine(daemon.url(), 10s, 1);
  std::vector<std::promise<expected<std::string>>> ps(n);
  for (int i = 0; i < n; ++i) {
    container_spec spec;
    spec.image = "img";
    rt->create(spec, [&ps, i](expected<std::string> x) {
      ps[i].set_value(std::move(x));
    });
  }
  for (auto& p : ps) {
    auto f = p.get_future();
    ASSERT_EQ(f.wait_for(15s), std::future_status::ready);
    EXPECT_TRUE(f.get());
  }
  EXPECT_EQ(met.load(), n);
  EXPECT_EQ(daemon.connections(), n);
}

TEST(DockerEngine, ShutdownFailsPendingCalls) {
  fake_daemon daemon{[](const seen_request&) {
    reply r;
    r.hang = true;
    return r;
  }};
  auto rt = make_docker_engine(daemon.url(), 30s, 2);
  std::promise<expected<unit>> p;
  rt->ping([&](expected<unit> x) { p.set_value(std::move(x)); });
  // Let the request reach the daemon.
  for (int i = 0; i < 100 && daemon.requests().empty(); ++i)
    std::this_thread::sleep_for(10ms);
  rt->shutdown();
  auto f = p.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  auto r = f.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, failure_kind::unavailable);
  rt.reset();
}
