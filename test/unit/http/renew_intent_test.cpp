// Renew-on-access (OSEP-0009, proxy-only mode): the coordinator's rules with
// an explicit clock, and the API handler scheduling renewals for proxied
// requests without waiting for them.

#include "core/config.hpp"
#include "core/time.hpp"
#include "http/api.hpp"
#include "http/renew_intent.hpp"
#include "test/unit/http/lookup_backend.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

using namespace osb;
using namespace osb::http;
using namespace std::chrono_literals;

namespace {

using clock_type = renew_coordinator::clock;

constexpr int64_t sec = 1000000; // µs

/// A Running sandbox with an expiry 60 s after `now_us` and an extend value.
sandbox_view renewable(std::string id, int64_t now_us, int64_t extend_s = 300) {
  sandbox_view v;
  v.id = std::move(id);
  v.state = sandbox_state::running;
  v.expires_us = now_us + 60 * sec;
  v.renew_extend_s = extend_s;
  return v;
}

// -- the coordinator -------------------------------------------------------------

TEST(RenewCoordinator, RenewsToNowPlusExtend) {
  renew_coordinator c{60s};
  auto t0 = clock_type::time_point{} + 1000s;
  int64_t now = 1700000000 * sec;
  auto v = renewable("a", now);
  auto target = c.on_access(v, now, t0);
  ASSERT_TRUE(target);
  EXPECT_EQ(*target, now + 300 * sec);
}

TEST(RenewCoordinator, OnlyRunningSandboxesWithExpiryAndExtendValue) {
  renew_coordinator c{60s};
  auto t0 = clock_type::time_point{} + 1000s;
  int64_t now = 1700000000 * sec;
  auto v = renewable("a", now);
  v.renew_extend_s = 0; // created without the extension
  EXPECT_FALSE(c.on_access(v, now, t0));
  v = renewable("a", now);
  v.expires_us = 0; // manual cleanup
  EXPECT_FALSE(c.on_access(v, now, t0));
  for (auto s : {sandbox_state::pending, sandbox_state::paused,
                 sandbox_state::terminated, sandbox_state::failed}) {
    v = renewable("a", now);
    v.state = s;
    EXPECT_FALSE(c.on_access(v, now, t0));
  }
  // None of these is remembered.
  EXPECT_EQ(c.size(), 0u);
}

TEST(RenewCoordinator, NeverShortensTheExpiry) {
  renew_coordinator c{60s};
  auto t0 = clock_type::time_point{} + 1000s;
  int64_t now = 1700000000 * sec;
  auto v = renewable("a", now);
  v.expires_us = now + 3600 * sec; // already beyond now + 300 s
  EXPECT_FALSE(c.on_access(v, now, t0));
  v.expires_us = now + 299 * sec;
  auto target = c.on_access(v, now, t0);
  ASSERT_TRUE(target);
  EXPECT_EQ(*target, now + 300 * sec);
}

TEST(RenewCoordinator, OneRenewalInFlightPerSandbox) {
  renew_coordinator c{60s};
  auto t0 = clock_type::time_point{} + 1000s;
  int64_t now = 1700000000 * sec;
  auto a = renewable("a", now);
  ASSERT_TRUE(c.on_access(a, now, t0));
  // Until the outcome arrives, further accesses schedule nothing ...
  EXPECT_FALSE(c.on_access(a, now + sec, t0 + 1s));
  EXPECT_FALSE(c.on_access(a, now + 120 * sec, t0 + 120s));
  // ... for this sandbox only.
  EXPECT_TRUE(c.on_access(renewable("b", now), now, t0));
  // A failed renewal is retried after a short back-off (5 s), not on every
  // access and not only after the full cool-down.
  c.done("a", false, t0 + 2s);
  EXPECT_FALSE(c.on_access(a, now + 3 * sec, t0 + 3s));
  EXPECT_TRUE(c.on_access(a, now + 8 * sec, t0 + 8s));
}

TEST(RenewCoordinator, CoolDownAfterSuccess) {
  renew_coordinator c{60s};
  auto t0 = clock_type::time_point{} + 1000s;
  int64_t now = 1700000000 * sec;
  auto a = renewable("a", now);
  ASSERT_TRUE(c.on_access(a, now, t0));
  c.done("a", true, t0);
  EXPECT_FALSE(c.on_access(a, now + 1 * sec, t0 + 1s));
  EXPECT_FALSE(c.on_access(a, now + 59 * sec, t0 + 59s));
  auto target = c.on_access(a, now + 60 * sec, t0 + 60s);
  ASSERT_TRUE(target);
  EXPECT_EQ(*target, now + 360 * sec);
  // An outcome for an unknown sandbox is ignored.
  c.done("nope", true, t0);
  EXPECT_EQ(c.size(), 1u);
}

TEST(RenewCoordinator, BoundedMemoryForgetsTheLeastRecentlyAccessed) {
  renew_coordinator c{60s, 3};
  auto t0 = clock_type::time_point{} + 1000s;
  int64_t now = 1700000000 * sec;
  for (auto id : {"a", "b", "c"}) {
    ASSERT_TRUE(c.on_access(renewable(id, now), now, t0));
    c.done(id, true, t0);
  }
  // Touch "a" (in cool-down: nothing scheduled, but it is now the newest).
  EXPECT_FALSE(c.on_access(renewable("a", now), now, t0 + 1s));
  // "d" takes the place of "b", the least recently accessed.
  ASSERT_TRUE(c.on_access(renewable("d", now), now, t0 + 2s));
  EXPECT_EQ(c.size(), 3u);
  // "b" was forgotten with its cool-down: it renews again; "a" and "c" are
  // still cooling down ("c" is evicted to make room for "b").
  EXPECT_TRUE(c.on_access(renewable("b", now), now, t0 + 3s));
  EXPECT_FALSE(c.on_access(renewable("a", now), now, t0 + 3s));
  EXPECT_EQ(c.size(), 3u);
}

TEST(RenewCoordinator, RenewalsUnderWayAreNeverForgotten) {
  renew_coordinator c{60s, 2};
  auto t0 = clock_type::time_point{} + 1000s;
  int64_t now = 1700000000 * sec;
  ASSERT_TRUE(c.on_access(renewable("a", now), now, t0));
  ASSERT_TRUE(c.on_access(renewable("b", now), now, t0));
  // Both in flight: no room, nothing scheduled for a third sandbox.
  EXPECT_FALSE(c.on_access(renewable("c", now), now, t0));
  EXPECT_EQ(c.size(), 2u);
  c.done("a", true, t0);
  EXPECT_TRUE(c.on_access(renewable("c", now), now, t0));
  // "b" is still remembered as in flight.
  EXPECT_FALSE(c.on_access(renewable("b", now), now, t0));
}

// -- the API handler --------------------------------------------------------------

/// Knows fixed sandboxes; records renewals and answers them only when told.
class renew_backend : public osb::test::lookup_backend {
public:
  struct call {
    std::string id;
    int64_t expires_us;
    reply<int64_t> done;
  };
  std::vector<call> renewals;

  void renew(const call_context&, const std::string& id, int64_t expires_us,
             reply<int64_t> done) override {
    renewals.push_back({id, expires_us, std::move(done)});
  }
};

class RenewOnAccess : public testing::Test {
protected:
  RenewOnAccess() {
    cfg = std::make_shared<node_config>();
    cfg->server.host = "127.0.0.1";
    cfg->docker.network_mode = "bridge";
    cfg->docker.proxy_host = "127.0.0.1";
    cfg->renew_intent.enabled = true;
    backend = std::make_shared<renew_backend>();
    auto now = codec::now_us();
    for (auto id : {"with", "without"}) {
      auto v = renewable(id, now);
      v.ports.http = 50001;
      v.ports.execd = 40109;
      backend->sandboxes[id] = v;
    }
    backend->sandboxes["without"].renew_extend_s = 0;
  }

  void start() {
    api = make_api_handler(cfg, backend);
  }

  /// A proxied request; returns whether it was forwarded at once.
  bool proxied(const std::string& target,
               std::vector<std::pair<std::string, std::string>> headers = {}) {
    request req;
    req.method = "GET";
    req.target = target;
    req.path = target;
    req.headers = std::move(headers);
    req.headers.emplace_back("host", "server:8080");
    req.remote_addr = "10.0.0.9";
    req.streamed = true;
    std::optional<response> out;
    api(std::move(req), [&](response res) { out = std::move(res); });
    return out && out->forward != nullptr;
  }

  std::shared_ptr<node_config> cfg;
  std::shared_ptr<renew_backend> backend;
  handler api;
};

TEST_F(RenewOnAccess, ProxiedRequestsScheduleOneRenewalWithoutWaiting) {
  start();
  auto before = codec::now_us();
  // The renewal is still unanswered, yet the request is forwarded.
  ASSERT_TRUE(proxied("/sandboxes/with/proxy/8080/a"));
  ASSERT_EQ(backend->renewals.size(), 1u);
  auto& r = backend->renewals.front();
  EXPECT_EQ(r.id, "with");
  EXPECT_GE(r.expires_us, before + 300 * sec);
  EXPECT_LE(r.expires_us, codec::now_us() + 300 * sec);
  // While it is under way, and after it succeeded (cool-down 60 s),
  // further requests, also WebSocket handshakes and the /route shape,
  // schedule nothing.
  ASSERT_TRUE(proxied("/v1/sandboxes/with/proxy/8080/b"));
  r.done(result<int64_t>::ok(r.expires_us));
  ASSERT_TRUE(proxied("/route/with/6000/c"));
  ASSERT_TRUE(proxied("/sandboxes/with/proxy/6000/ws",
                      {{"upgrade", "websocket"},
                       {"connection", "Upgrade"},
                       {"sec-websocket-key", "k"},
                       {"sec-websocket-version", "13"}}));
  EXPECT_EQ(backend->renewals.size(), 1u);
}

TEST_F(RenewOnAccess, WebSocketHandshakesRenewToo) {
  start();
  ASSERT_TRUE(proxied("/sandboxes/with/proxy/6000/ws",
                      {{"upgrade", "websocket"},
                       {"connection", "Upgrade"},
                       {"sec-websocket-key", "k"},
                       {"sec-websocket-version", "13"}}));
  ASSERT_EQ(backend->renewals.size(), 1u);
  EXPECT_EQ(backend->renewals.front().id, "with");
}

TEST_F(RenewOnAccess, FailedRenewalBacksOffInsteadOfRetryingAtOnce) {
  // (The retry after the back-off: RenewCoordinator.OneRenewalInFlight...)
  start();
  ASSERT_TRUE(proxied("/sandboxes/with/proxy/8080/a"));
  ASSERT_EQ(backend->renewals.size(), 1u);
  backend->renewals.front().done(result<int64_t>::fail(
    make_api_error(ec::store_failed, "disk full")));
  ASSERT_TRUE(proxied("/sandboxes/with/proxy/8080/a"));
  EXPECT_EQ(backend->renewals.size(), 1u);
}

TEST_F(RenewOnAccess, SandboxesWithoutTheExtensionAreNotRenewed) {
  start();
  ASSERT_TRUE(proxied("/sandboxes/without/proxy/8080/a"));
  ASSERT_TRUE(proxied("/sandboxes/without/proxy/8080/b"));
  EXPECT_TRUE(backend->renewals.empty());
}

TEST_F(RenewOnAccess, OffByDefault) {
  cfg->renew_intent.enabled = false;
  start();
  ASSERT_TRUE(proxied("/sandboxes/with/proxy/8080/a"));
  EXPECT_TRUE(backend->renewals.empty());
}

TEST_F(RenewOnAccess, OtherRoutesNeverRenew) {
  start();
  request req;
  req.method = "GET";
  req.target = req.path = "/v1/sandboxes/with";
  std::optional<response> out;
  api(std::move(req), [&](response res) { out = std::move(res); });
  ASSERT_TRUE(out);
  EXPECT_TRUE(backend->renewals.empty());
}

} // namespace
