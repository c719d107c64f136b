// The API handler's side of the server proxy (http/api_endpoints.cpp):
// credentials, forwarding decisions, error envelopes, the proxy cache.

#include "base/strings.hpp"
#include "http/api.hpp"
#include "http/proxy_cache.hpp"
#include "net/endpoints.hpp"
#include "net/proxy.hpp"
#include "net/signed_route.hpp"

#include "test/unit/http/lookup_backend.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <optional>
#include <string>

using namespace osb;
using namespace osb::http;
using osb::test::lookup_backend;

namespace {

// -- the API handler -------------------------------------------------------------

std::string field(const std::vector<std::pair<std::string, std::string>>& xs,
                  std::string_view name) {
  for (const auto& [k, v] : xs)
    if (lower(k) == lower(name))
      return v;
  return {};
}

class ProxyApi : public testing::Test {
protected:
  ProxyApi() {
    cfg = std::make_shared<node_config>();
    cfg->server.host = "127.0.0.1";
    cfg->server.api_key = "key";
    cfg->docker.network_mode = "bridge";
    cfg->docker.proxy_host = "127.0.0.1";
    backend = std::make_shared<lookup_backend>();
    sandbox_view x;
    x.id = "sbx-1";
    x.ports.http = 50001;
    x.ports.execd = 40109;
    backend->sandboxes[x.id] = x;
    api = make_api_handler(cfg, backend);
  }

  /// A request with the API key (most tests are about forwarding).
  response call(std::string method, std::string target,
                std::vector<std::pair<std::string, std::string>> headers
                = {}) {
    headers.emplace_back("open-sandbox-api-key", "key");
    return call_as(std::move(method), std::move(target), std::move(headers));
  }

  /// A request with exactly these headers (plus Host).
  response call_as(std::string method, std::string target,
                   std::vector<std::pair<std::string, std::string>> headers
                   = {}) {
    request req;
    req.method = std::move(method);
    req.target = target;
    auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos)
      req.query = target.substr(q + 1);
    req.headers = std::move(headers);
    req.headers.emplace_back("host", "server:8080");
    req.remote_addr = "10.0.0.9";
    req.streamed = true;
    std::optional<response> out;
    api(std::move(req), [&](response res) { out = std::move(res); });
    EXPECT_TRUE(out.has_value());
    return out ? *out : response{};
  }

  std::shared_ptr<node_config> cfg;
  std::shared_ptr<lookup_backend> backend;
  handler api;
};

TEST_F(ProxyApi, ForwardTargets) {
  auto res = call("POST", "/v1/sandboxes/sbx-1/proxy/44772/api/run?q=search");
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(res.forward->host, "127.0.0.1");
  EXPECT_EQ(res.forward->port, 40109);
  EXPECT_EQ(res.forward->target, "/api/run?q=search");
  res = call("GET", "/sandboxes/sbx-1/proxy/6000");
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(res.forward->port, 40109);
  EXPECT_EQ(res.forward->target, "/proxy/6000/");
  res = call("GET", "/sandboxes/sbx-1/proxy/8080//x/?path=%2Fworkspace");
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(res.forward->port, 50001);
  EXPECT_EQ(res.forward->target, "/x/?path=%2Fworkspace");
  res = call("DELETE", "/route/sbx-1/6000/files%2Fa");
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(res.forward->target, "/proxy/6000/files%2Fa");
  res = call("HEAD", "/v1/route/sbx-1/8080/");
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(res.forward->target, "/");
}

TEST_F(ProxyApi, ForwardsToTheConfiguredLocalAddress) {
  cfg->docker.proxy_host = "192.0.2.7";
  api = make_api_handler(cfg, backend);
  auto res = call("GET", "/sandboxes/sbx-1/proxy/8080/x");
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(res.forward->host, "192.0.2.7");
  EXPECT_EQ(res.forward->port, 50001);
  // Not an address of this machine: nothing to bind to.
  EXPECT_FALSE(res.forward->bind_source);
  cfg->docker.proxy_host = "127.0.0.1";
  api = make_api_handler(cfg, backend);
  res = call("GET", "/sandboxes/sbx-1/proxy/8080/x");
  ASSERT_TRUE(res.forward);
  EXPECT_FALSE(res.forward->bind_source);
  // A local address is bound first: if it stops being local, no other
  // machine is reached.
  if (auto ip = net::outward_ipv4(); !ip.empty()) {
    cfg->docker.proxy_host = ip;
    api = make_api_handler(cfg, backend);
    res = call("GET", "/sandboxes/sbx-1/proxy/8080/x");
    ASSERT_TRUE(res.forward);
    EXPECT_TRUE(res.forward->bind_source);
  }
}

TEST_F(ProxyApi, ForwardHeaders) {
  auto res = call("GET", "/sandboxes/sbx-1/proxy/8080/x",
                  {{"authorization", "Bearer a"},
                   {"open-sandbox-api-key", "key"},
                   {"x-trace", "t"},
                   {"x-request-id", "rid-77"},
                   {"origin", "http://app"}});
  ASSERT_TRUE(res.forward);
  auto& fwd = *res.forward;
  EXPECT_EQ(field(fwd.headers, "authorization"), "");
  EXPECT_EQ(field(fwd.headers, "open-sandbox-api-key"), "");
  EXPECT_EQ(field(fwd.headers, "host"), "");
  EXPECT_EQ(field(fwd.headers, "x-trace"), "t");
  EXPECT_EQ(field(fwd.headers, "x-request-id"), "rid-77");
  EXPECT_EQ(field(fwd.headers, "x-forwarded-for"), "10.0.0.9");
  EXPECT_EQ(field(fwd.headers, "x-forwarded-host"), "server:8080");
  // The response carries the request id and CORS, like every answer.
  EXPECT_EQ(field(fwd.response_headers, "x-request-id"), "rid-77");
  EXPECT_EQ(field(fwd.response_headers, "access-control-allow-origin"), "*");
  EXPECT_EQ(fwd.request_id, "rid-77");
  EXPECT_EQ(fwd.sandbox_id, "sbx-1");
  EXPECT_FALSE(fwd.upgrade);
}

TEST_F(ProxyApi, ErrorEnvelopes) {
  auto res = call("GET", "/sandboxes/sbx-1/proxy/6000/x");
  ASSERT_TRUE(res.forward);
  ASSERT_TRUE(res.forward->on_error);
  auto err = res.forward->on_error(forward_error::connect,
                                   "Connection refused");
  EXPECT_EQ(err.status, 502);
  EXPECT_EQ(err.body, R"({"code":"GENERAL::UNKNOWN_ERROR","message":"Could )"
                      R"(not connect to the backend sandbox )"
                      R"(127.0.0.1:40109/proxy/6000: Connection refused"})");
  EXPECT_FALSE(field(err.headers, "x-request-id").empty());
  err = res.forward->on_error(forward_error::other, "end of stream");
  EXPECT_EQ(err.status, 500);
  EXPECT_EQ(err.body, R"({"code":"GENERAL::UNKNOWN_ERROR","message":"An )"
                      R"(internal error occurred in the proxy: end of stream"})");
}

TEST_F(ProxyApi, Rejections) {
  auto res = call("GET", "/sandboxes/nope/proxy/8080/x");
  EXPECT_FALSE(res.forward);
  EXPECT_EQ(res.status, 404);
  EXPECT_NE(res.body.find("DOCKER::SANDBOX_NOT_FOUND"), std::string::npos);
  res = call("GET", "/sandboxes/sbx-1/proxy/99999/x");
  EXPECT_EQ(res.status, 400);
  EXPECT_NE(res.body.find("DOCKER::INVALID_PORT"), std::string::npos);
  res = call("GET", "/sandboxes/sbx-1/proxy/http/x",
             {{"open-sandbox-api-key", "key"}});
  EXPECT_EQ(res.status, 422);
  int gets = backend->num_gets;
  for (auto bad : {"/sandboxes/sbx-1/proxy/6000/../44773/x",
                   "/sandboxes/sbx-1/proxy/6000/%2e%2e/%2e%2e/files",
                   "/sandboxes/sbx-1/proxy/6000/a/..%2f..%2fx",
                   "/sandboxes/sbx-1/proxy/6000/%252e%252e/x",
                   "/route/sbx-1/6000/..%5c..%5cx"}) {
    res = call("GET", bad, {{"open-sandbox-api-key", "key"}});
    EXPECT_FALSE(res.forward) << bad;
    EXPECT_EQ(res.status, 400) << bad;
  }
  EXPECT_EQ(backend->num_gets, gets); // rejected before any lookup
  // Upgrade: websocket that is no handshake → the original's 400.
  res = call("POST", "/sandboxes/sbx-1/proxy/6000/x",
             {{"upgrade", "WebSocket"}, {"connection", "upgrade"}});
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(res.body, R"({"code":"GENERAL::UNKNOWN_ERROR","message":)"
                      R"("Websocket upgrade is not supported yet"})");
  res = call("GET", "/sandboxes/sbx-1/proxy/6000/x",
             {{"upgrade", "websocket"},
              {"connection", "Upgrade"},
              {"sec-websocket-key", "k"},
              {"sec-websocket-version", "13"}});
  ASSERT_TRUE(res.forward);
  EXPECT_TRUE(res.forward->upgrade);
}

TEST_F(ProxyApi, LookupsAreCachedBriefly) {
  EXPECT_TRUE(call("GET", "/sandboxes/sbx-1/proxy/8080/a").forward);
  EXPECT_TRUE(call("GET", "/sandboxes/sbx-1/proxy/6000/b").forward);
  EXPECT_EQ(backend->num_gets, 1);
  // Unknown sandboxes are not cached.
  EXPECT_EQ(call("GET", "/sandboxes/nope/proxy/8080/a").status, 404);
  EXPECT_EQ(call("GET", "/sandboxes/nope/proxy/8080/a").status, 404);
  EXPECT_EQ(backend->num_gets, 3);
  // A DELETE through the API drops the entry (even when it fails).
  call("DELETE", "/v1/sandboxes/sbx-1", {{"open-sandbox-api-key", "key"}});
  EXPECT_TRUE(call("GET", "/sandboxes/sbx-1/proxy/8080/a").forward);
  EXPECT_EQ(backend->num_gets, 4);
  // So does a pause: the next request sees the Paused state.
  EXPECT_EQ(call("POST", "/v1/sandboxes/sbx-1/pause",
                 {{"open-sandbox-api-key", "key"}})
              .status,
            202);
  EXPECT_TRUE(call("GET", "/sandboxes/sbx-1/proxy/8080/a").forward);
  EXPECT_EQ(backend->num_gets, 5);
}

TEST(ProxyCache, KeepsWhatResolutionAndRenewalsNeed) {
  proxy_cache cache{std::chrono::seconds(10)};
  sandbox_view x;
  x.id = "a";
  x.state = sandbox_state::running;
  x.expires_us = 42;
  x.renew_extend_s = 300;
  cache.put(x);
  auto hit = cache.find("a");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->state, sandbox_state::running);
  EXPECT_EQ(hit->expires_us, 42);
  EXPECT_EQ(hit->renew_extend_s, 300);
}

TEST(ProxyCache, Expires) {
  proxy_cache cache{std::chrono::milliseconds(30), 2};
  // An explicit clock: 40 ms pass between the put and the last lookups.
  auto t0 = proxy_cache::clock::now();
  auto later = t0 + std::chrono::milliseconds(40);
  sandbox_view x;
  x.id = "a";
  x.ports.execd = 4000;
  x.metadata["big"] = "not kept";
  cache.put(x, t0);
  auto hit = cache.find("a", t0);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->ports.execd, 4000);
  EXPECT_TRUE(hit->metadata.empty());
  EXPECT_FALSE(cache.find("b", t0));
  EXPECT_FALSE(cache.find("a", later));
  cache.put(x, later);
  cache.erase("a");
  EXPECT_FALSE(cache.find("a", later));
}

TEST_F(ProxyApi, WithoutCredentialsNothingIsForwardedOrRevealed) {
  // Known and unknown sandboxes get the same answer, without a lookup.
  auto known = call_as("GET", "/sandboxes/sbx-1/proxy/8080/x");
  auto unknown = call_as("GET", "/sandboxes/nope/proxy/8080/x");
  EXPECT_FALSE(known.forward);
  EXPECT_EQ(known.status, 401);
  EXPECT_EQ(known.body, unknown.body);
  EXPECT_EQ(unknown.status, 401);
  EXPECT_NE(known.body.find("SANDBOX::UNAUTHORIZED"), std::string::npos);
  EXPECT_EQ(call_as("GET", "/route/sbx-1/8080/x").status, 401);
  EXPECT_EQ(backend->num_gets, 0);
  // A wrong API key is refused like the API refuses it.
  auto res = call_as("GET", "/sandboxes/sbx-1/proxy/8080/x",
                     {{"open-sandbox-api-key", "wrong"}});
  EXPECT_EQ(res.status, 401);
  EXPECT_NE(res.body.find("INVALID_API_KEY"), std::string::npos);
  // Traversal is not a proxy path at all (the API's own check).
  EXPECT_EQ(call_as("GET", "/sandboxes/sbx-1/proxy/8080/../x").status, 401);
}

TEST_F(ProxyApi, TheSandboxTokenOpensItsOwnSandboxOnly) {
  backend->sandboxes["sbx-1"].access_token = "tok-1";
  sandbox_view other;
  other.id = "sbx-2";
  other.ports.execd = 40110;
  other.access_token = "tok-2";
  backend->sandboxes[other.id] = other;
  auto res = call_as("GET", "/sandboxes/sbx-1/proxy/44772/command",
                     {{"opensandbox-secure-access", "tok-1"}});
  ASSERT_TRUE(res.forward);
  // execd gets its token; the proxy's credential stays here.
  EXPECT_EQ(field(res.forward->headers, "x-execd-access-token"), "tok-1");
  EXPECT_EQ(field(res.forward->headers, "opensandbox-secure-access"), "");
  // Through execd's /proxy too, but not to 8080 (the user's app).
  res = call_as("GET", "/sandboxes/sbx-1/proxy/6000/x",
                {{"opensandbox-secure-access", "tok-1"}});
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(field(res.forward->headers, "x-execd-access-token"), "tok-1");
  res = call_as("GET", "/sandboxes/sbx-1/proxy/8080/x",
                {{"opensandbox-secure-access", "tok-1"}});
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(field(res.forward->headers, "x-execd-access-token"), "");
  // Another sandbox's token, a wrong one, an empty one, and any token for
  // an unknown sandbox: one answer.
  auto wrong = call_as("GET", "/sandboxes/sbx-1/proxy/44772/command",
                       {{"opensandbox-secure-access", "tok-2"}});
  EXPECT_FALSE(wrong.forward);
  EXPECT_EQ(wrong.status, 401);
  for (auto [id, tok] : {std::pair{"sbx-1", ""}, std::pair{"sbx-1", "x"},
                         std::pair{"nope", "tok-1"}}) {
    res = call_as("GET", std::string{"/sandboxes/"} + id + "/proxy/44772/c",
                  {{"opensandbox-secure-access", tok}});
    EXPECT_EQ(res.status, 401) << id << " " << tok;
    EXPECT_EQ(res.body, wrong.body) << id << " " << tok;
  }
  // The API key opens every sandbox; execd gets the sandbox's token.
  res = call("GET", "/sandboxes/sbx-2/proxy/44772/command");
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(field(res.forward->headers, "x-execd-access-token"), "tok-2");
}

TEST_F(ProxyApi, WithoutAnApiKeyTheProxyIsOpenButExecdIsNot) {
  cfg->server.api_key.clear();
  api = make_api_handler(cfg, backend);
  backend->sandboxes["sbx-1"].access_token = "tok-1";
  auto res = call_as("GET", "/sandboxes/sbx-1/proxy/44772/command");
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(field(res.forward->headers, "x-execd-access-token"), "");
  // The token, when sent, is still checked and then adds execd's.
  res = call_as("GET", "/sandboxes/sbx-1/proxy/44772/command",
                {{"opensandbox-secure-access", "tok-1"}});
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(field(res.forward->headers, "x-execd-access-token"), "tok-1");
  EXPECT_EQ(call_as("GET", "/sandboxes/sbx-1/proxy/44772/command",
                    {{"opensandbox-secure-access", "nope"}})
              .status,
            401);
}

TEST_F(ProxyApi, SignedUrlsGrantOnePortUntilTheyExpire) {
  cfg->ingress.secure_access.active_key = 'b';
  cfg->ingress.secure_access.keys = {{'a', "old-secret"}, {'b', "secret"}};
  api = make_api_handler(cfg, backend);
  backend->sandboxes["sbx-1"].access_token = "tok-1";
  auto later = static_cast<uint64_t>(std::time(nullptr)) + 3600;
  auto token = net::mint_route_token(cfg->ingress.secure_access, "sbx-1",
                                     44772, later);
  auto res = call_as("GET", "/signed/" + token + "/files/info?path=%2Fa");
  ASSERT_TRUE(res.forward) << res.body;
  EXPECT_EQ(res.forward->port, 40109);
  EXPECT_EQ(res.forward->target, "/files/info?path=%2Fa");
  EXPECT_EQ(field(res.forward->headers, "x-execd-access-token"), "tok-1");
  EXPECT_EQ(res.forward->sandbox_id, "sbx-1");
  // Under /v1 and for WebSocket handshakes too (browsers set no headers).
  res = call_as("GET", "/v1/signed/" + token + "/pty/1/ws",
                {{"upgrade", "websocket"},
                 {"connection", "Upgrade"},
                 {"sec-websocket-key", "k"},
                 {"sec-websocket-version", "13"}});
  ASSERT_TRUE(res.forward);
  EXPECT_TRUE(res.forward->upgrade);
  // A key that is still configured keeps its URLs working.
  auto old = cfg->ingress.secure_access;
  old.active_key = 'a';
  res = call_as("GET", "/signed/"
                         + net::mint_route_token(old, "sbx-1", 8080, later));
  ASSERT_TRUE(res.forward);
  EXPECT_EQ(res.forward->port, 50001);
  // Expired, tampered (other port, other sandbox), unknown key: 401.
  auto expired = net::mint_route_token(cfg->ingress.secure_access, "sbx-1",
                                       44772, 1000);
  res = call_as("GET", "/signed/" + expired + "/x");
  EXPECT_EQ(res.status, 401);
  EXPECT_NE(res.body.find("expired"), std::string::npos);
  auto t = *net::parse_route_token(token);
  for (auto bad : {"sbx-1-8080-" + t.expires_b36 + "-" + t.signature,
                   "sbx-2-44772-" + t.expires_b36 + "-" + t.signature,
                   token.substr(0, token.size() - 1) + "z"}) {
    res = call_as("GET", "/signed/" + bad + "/x");
    EXPECT_FALSE(res.forward) << bad;
    EXPECT_EQ(res.status, 401) << bad;
  }
  // Malformed: 400.
  for (auto bad : {"sbx-1", "sbx-1-44772-x2qxvk-zz", "sbx-1-0-x2qxvk-0123abcdb"})
    EXPECT_EQ(call_as("GET", std::string{"/signed/"} + bad + "/x").status, 400)
      << bad;
  // Without configured keys no signed URL is valid.
  cfg->ingress.secure_access = {};
  api = make_api_handler(cfg, backend);
  EXPECT_EQ(call_as("GET", "/signed/" + token + "/x").status, 401);
}

} // namespace
