#include "http/api.hpp"

#include "core/codec.hpp"
#include "http/router.hpp"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>

using namespace osb;
using namespace osb::http;

namespace {

constexpr const char* api_key = "test-api-key-12345";

/// An in-memory lifecycle backend that answers synchronously and records
/// what it was asked.
class fake_backend : public lifecycle_backend {
public:
  std::map<std::string, sandbox_view> sandboxes;
  int num_calls = 0;
  std::string last_id;
  std::string last_request_id;
  sandbox_spec last_spec;
  list_query last_query;
  int64_t last_renew = 0;
  diagnostics_query last_diag;
  /// When set, every call fails with it.
  std::optional<api_error> failure;

  void create(const call_context& ctx, sandbox_spec spec,
              reply<sandbox_view> done) override {
    record(ctx, "");
    if (failure)
      return done(result<sandbox_view>::fail(*failure));
    last_spec = spec;
    sandbox_view x;
    x.id = "new-sbx";
    x.image = spec.image;
    x.state = sandbox_state::running;
    sandboxes[x.id] = x;
    done(result<sandbox_view>::ok(x));
  }

  void get(const call_context& ctx, const std::string& id,
           reply<sandbox_view> done) override {
    record(ctx, id);
    if (auto err = lookup(id))
      return done(result<sandbox_view>::fail(*err));
    done(result<sandbox_view>::ok(sandboxes[id]));
  }

  void list(const call_context& ctx, list_query q,
            reply<list_page> done) override {
    record(ctx, "");
    last_query = q;
    std::vector<sandbox_view> xs;
    for (auto& [id, x] : sandboxes)
      xs.push_back(x);
    done(result<list_page>::ok(paginate(std::move(xs), q)));
  }

  void remove(const call_context& ctx, const std::string& id,
              reply<std::string> done) override {
    record(ctx, id);
    if (auto err = lookup(id))
      return done(result<std::string>::fail(*err));
    sandboxes.erase(id);
    done(result<std::string>::ok(pending_removal));
  }

  /// What `remove` answers: "" = removed, else why the cleanup is pending.
  std::string pending_removal;

  void pause(const call_context& ctx, const std::string& id,
             reply<unit> done) override {
    record(ctx, id);
    if (auto err = lookup(id))
      return done(result<unit>::fail(*err));
    done(result<unit>::ok(unit{}));
  }

  void resume(const call_context& ctx, const std::string& id,
              reply<unit> done) override {
    record(ctx, id);
    if (auto err = lookup(id))
      return done(result<unit>::fail(*err));
    done(result<unit>::ok(unit{}));
  }

  void renew(const call_context& ctx, const std::string& id,
             int64_t expires_us, reply<int64_t> done) override {
    record(ctx, id);
    last_renew = expires_us;
    if (auto err = lookup(id))
      return done(result<int64_t>::fail(*err));
    done(result<int64_t>::ok(expires_us));
  }

  void patch(const call_context& ctx, const std::string& id, metadata_patch,
             reply<sandbox_view> done) override {
    record(ctx, id);
    if (auto err = lookup(id))
      return done(result<sandbox_view>::fail(*err));
    done(result<sandbox_view>::ok(sandboxes[id]));
  }

  void diagnostics(const call_context& ctx, const std::string& id,
                   diagnostics_query q, reply<std::string> done) override {
    record(ctx, id);
    if (auto err = lookup(id))
      return done(result<std::string>::fail(*err));
    last_diag = q;
    done(result<std::string>::ok(q.kind + " text"));
  }

  std::string last_snapshot_name;
  snapshot_query last_snapshot_query;

  void create_snapshot(const call_context& ctx, const std::string& id,
                       std::string name,
                       reply<snapshot_view> done) override {
    record(ctx, id);
    if (auto err = lookup(id))
      return done(result<snapshot_view>::fail(*err));
    last_snapshot_name = name;
    snapshot_view x;
    x.id = "snap-1";
    x.sandbox_id = id;
    x.name = std::move(name);
    x.state = "Creating";
    x.reason = "snapshot_accepted";
    x.message = "Snapshot creation accepted.";
    x.created_us = 1'700'000'000'000'000;
    x.last_transition_us = x.created_us;
    done(result<snapshot_view>::ok(x));
  }

  void get_snapshot(const call_context& ctx, const std::string& id,
                    reply<snapshot_view> done) override {
    record(ctx, id);
    done(result<snapshot_view>::fail(make_api_error(
      ec::snapshot_not_found, "Snapshot " + id + " not found")));
  }

  void list_snapshots(const call_context& ctx, snapshot_query q,
                      reply<snapshot_page> done) override {
    record(ctx, "");
    last_snapshot_query = q;
    snapshot_page page;
    page.page = q.page;
    page.page_size = q.page_size;
    done(result<snapshot_page>::ok(page));
  }

  void delete_snapshot(const call_context& ctx, const std::string& id,
                       reply<unit> done) override {
    record(ctx, id);
    if (id == "busy")
      return done(result<unit>::fail(make_api_error(
        ec::snapshot_delete_conflict,
        "snapshot image cannot be deleted due to a conflict")));
    done(result<unit>::ok(unit{}));
  }

private:
  void record(const call_context& ctx, const std::string& id) {
    ++num_calls;
    last_id = id;
    last_request_id = ctx.request_id;
  }

  std::optional<api_error> lookup(const std::string& id) {
    if (failure)
      return failure;
    if (sandboxes.count(id) == 0)
      return make_api_error(ec::sandbox_not_found,
                            "Sandbox " + id + " not found.");
    return std::nullopt;
  }
};

std::string header_of(const response& res, std::string_view name) {
  for (const auto& [k, v] : res.headers) {
    if (k.size() != name.size())
      continue;
    bool eq = true;
    for (size_t i = 0; i < k.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(k[i]))
          != std::tolower(static_cast<unsigned char>(name[i])))
        eq = false;
    if (eq)
      return v;
  }
  return {};
}

bool has_header(const response& res, std::string_view name) {
  for (const auto& [k, v] : res.headers)
    if (k == name)
      return true;
  return false;
}

class Api : public testing::Test {
protected:
  Api() {
    cfg = std::make_shared<node_config>();
    cfg->server.host = "192.168.1.100";
    cfg->server.api_key = api_key;
    cfg->docker.network_mode = "bridge";
    backend = std::make_shared<fake_backend>();
    sandbox_view x;
    x.id = "sbx-001";
    x.image = "python:3.11";
    x.state = sandbox_state::running;
    x.ports.http = 50001;
    x.ports.execd = 40109;
    backend->sandboxes[x.id] = x;
    rebuild();
  }

  void rebuild() {
    api = make_api_handler(cfg, backend);
  }

  /// Sends a request through the handler and returns the response.
  response call(std::string method, std::string target,
                std::vector<std::pair<std::string, std::string>> headers = {},
                std::string body = {}, bool with_key = true) {
    request req;
    req.method = std::move(method);
    req.target = target;
    auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos)
      req.query = target.substr(q + 1);
    req.headers = std::move(headers);
    req.headers.emplace_back("host", "testserver");
    if (with_key)
      req.headers.emplace_back("open-sandbox-api-key", api_key);
    req.body = std::move(body);
    std::optional<response> out;
    int num_answers = 0;
    api(std::move(req), [&](response res) {
      ++num_answers;
      out = std::move(res);
    });
    EXPECT_EQ(num_answers, 1);
    return out ? *out : response{};
  }

  response call_nokey(std::string method, std::string target,
                      std::vector<std::pair<std::string, std::string>> hs
                      = {}) {
    return call(std::move(method), std::move(target), std::move(hs), {},
                false);
  }

  std::shared_ptr<node_config> cfg;
  std::shared_ptr<fake_backend> backend;
  handler api;
};

const char* missing_key_body
  = R"({"code":"MISSING_API_KEY","message":"Authentication credentials are missing. Provide API key via OPEN-SANDBOX-API-KEY header."})";

} // namespace

// -- router -------------------------------------------------------------------

TEST(Router, RootAndV1) {
  auto r = match_route("GET", "/sandboxes/abc");
  EXPECT_EQ(r.id, route_id::get_sandbox);
  EXPECT_EQ(r.sandbox_id, "abc");
  EXPECT_FALSE(r.v1);
  r = match_route("GET", "/v1/sandboxes/abc");
  EXPECT_EQ(r.id, route_id::get_sandbox);
  EXPECT_EQ(r.sandbox_id, "abc");
  EXPECT_TRUE(r.v1);
  EXPECT_EQ(match_route("GET", "/health").id, route_id::health);
  EXPECT_EQ(match_route("GET", "/v1/health").id, route_id::not_found);
  EXPECT_EQ(match_route("GET", "/v1").id, route_id::not_found);
  EXPECT_EQ(match_route("GET", "/v1/v1/sandboxes").id, route_id::not_found);
}

TEST(Router, Parameters) {
  auto r = match_route("GET", "/v1/sandboxes/a%20b/endpoints/44772");
  EXPECT_EQ(r.id, route_id::get_endpoint);
  EXPECT_EQ(r.sandbox_id, "a b");
  EXPECT_EQ(r.param, "44772");
  r = match_route("DELETE", "/snapshots/snap-1");
  EXPECT_EQ(r.id, route_id::delete_snapshot);
  EXPECT_EQ(r.param, "snap-1");
  EXPECT_TRUE(r.sandbox_id.empty());
  r = match_route("PUT", "/v1/pools/p1");
  EXPECT_EQ(r.id, route_id::update_pool);
  EXPECT_EQ(r.param, "p1");
  EXPECT_EQ(match_route("POST", "/v1/sandboxes/x/renew-expiration").id,
            route_id::renew_expiration);
  EXPECT_EQ(match_route("PATCH", "/v1/sandboxes/x/metadata").id,
            route_id::patch_metadata);
  EXPECT_EQ(match_route("POST", "/v1/metrics/events").id,
            route_id::metrics_events);
  EXPECT_EQ(match_route("GET", "/sandboxes//endpoints/1").id,
            route_id::not_found);
}

TEST(Router, Proxy) {
  auto r = match_route("POST", "/v1/sandboxes/sbx/proxy/44772/api/run");
  EXPECT_EQ(r.id, route_id::proxy);
  EXPECT_EQ(r.sandbox_id, "sbx");
  EXPECT_EQ(r.param, "44772");
  EXPECT_EQ(r.rest, "api/run");
  r = match_route("GET", "/sandboxes/sbx/proxy/80");
  EXPECT_EQ(r.id, route_id::proxy);
  EXPECT_EQ(r.rest, "");
  r = match_route("GET", "/sandboxes/sbx/proxy/80/");
  EXPECT_EQ(r.id, route_id::proxy);
  EXPECT_EQ(r.rest, "");
  // HEAD and OPTIONS are forwarded too (405 in the original).
  r = match_route("TRACE", "/sandboxes/sbx/proxy/80/x");
  EXPECT_EQ(r.id, route_id::method_not_allowed);
  EXPECT_EQ(r.allow, "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS");
}

TEST(Router, MethodNotAllowed) {
  auto r = match_route("PUT", "/v1/sandboxes");
  EXPECT_EQ(r.id, route_id::method_not_allowed);
  EXPECT_EQ(r.allow, "POST, GET");
  r = match_route("POST", "/v1/sandboxes/abc");
  EXPECT_EQ(r.id, route_id::method_not_allowed);
  EXPECT_EQ(r.allow, "GET, DELETE");
  EXPECT_EQ(r.sandbox_id, "abc");
  EXPECT_EQ(match_route("HEAD", "/health").id, route_id::method_not_allowed);
}

TEST(Router, TrailingSlashRedirect) {
  auto r = match_route("GET", "/v1/sandboxes/");
  EXPECT_EQ(r.id, route_id::redirect_slash);
  EXPECT_EQ(r.rest, "/v1/sandboxes");
  EXPECT_EQ(match_route("GET", "/nothing/").id, route_id::not_found);
  EXPECT_EQ(match_route("GET", "/").id, route_id::not_found);
}

TEST(Router, AuthExemptions) {
  EXPECT_TRUE(auth_exempt("/health"));
  EXPECT_TRUE(auth_exempt("/healthz"));
  EXPECT_TRUE(auth_exempt("/docs/oauth2-redirect"));
  EXPECT_TRUE(auth_exempt("/redoc"));
  EXPECT_TRUE(auth_exempt("/openapi.json"));
  EXPECT_FALSE(auth_exempt("/v1/health"));
  EXPECT_TRUE(auth_exempt("/sandboxes/abc-123/proxy/8080/foo/bar"));
  EXPECT_TRUE(auth_exempt("/v1/sandboxes/sid/proxy/443/"));
  EXPECT_TRUE(auth_exempt("/sandboxes/id/proxy/8080"));
  EXPECT_TRUE(auth_exempt("/sandboxes/id/proxy/8080/"));
  EXPECT_TRUE(auth_exempt("/v1/sandboxes/id/proxy/443/path"));
  EXPECT_FALSE(auth_exempt("/proxy/sandboxes/anything"));
  EXPECT_FALSE(auth_exempt("/sandboxes/s1/proxy/not-a-port/x"));
  EXPECT_FALSE(auth_exempt("/foo/sandboxes/id/proxy/8080"));
  EXPECT_FALSE(auth_exempt("/sandboxes/id/proxy/8080x/"));
  EXPECT_FALSE(auth_exempt("/sandboxes/id/proxy/8080/../../sandboxes"));
  EXPECT_FALSE(auth_exempt("/sandboxes//proxy/8080"));
  EXPECT_FALSE(auth_exempt("/v1/sandboxes"));
}

// -- auth and request ids -----------------------------------------------------

TEST_F(Api, MissingKey) {
  auto res = call_nokey("GET", "/v1/sandboxes/sbx-001");
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(res.body, missing_key_body);
  EXPECT_EQ(res.content_type, "application/json");
  EXPECT_EQ(header_of(res, "X-Request-ID").size(), 32u);
  EXPECT_EQ(backend->num_calls, 0);
  // An empty header counts as missing.
  res = call_nokey("DELETE", "/v1/sandboxes/sbx-001",
                   {{"open-sandbox-api-key", ""}});
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(res.body, missing_key_body);
}

TEST_F(Api, InvalidKey) {
  auto res = call_nokey("GET", "/v1/sandboxes",
                        {{"open-sandbox-api-key", "wrong"}});
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(
    res.body,
    R"({"code":"INVALID_API_KEY","message":"Authentication credentials are invalid. Check your API key and try again."})");
  // Compared verbatim: no trimming, case matters.
  res = call_nokey("GET", "/v1/sandboxes",
                   {{"open-sandbox-api-key", "TEST-API-KEY-12345"}});
  EXPECT_EQ(res.status, 401);
}

TEST_F(Api, AuthBeforeRouting) {
  // With a key configured, an unknown path without a key is a 401, not 404.
  EXPECT_EQ(call_nokey("GET", "/nope").status, 401);
  EXPECT_EQ(call("GET", "/nope").status, 404);
}

TEST_F(Api, ExemptPathsNeedNoKey) {
  auto res = call_nokey("GET", "/health");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, R"({"status":"healthy"})");
  // The proxy is exempt from the API's key check but checks credentials of
  // its own (SANDBOX::UNAUTHORIZED); a non-numeric port is no proxy path.
  for (auto path : {"/sandboxes/abc-123/proxy/8080/foo/bar",
                    "/v1/sandboxes/sid/proxy/443/", "/signed/x-1-1-0123abcda"}) {
    res = call_nokey("GET", path);
    EXPECT_EQ(res.status, 401) << path;
    EXPECT_NE(res.body.find("SANDBOX::UNAUTHORIZED"), std::string::npos)
      << path << " " << res.body;
  }
  res = call_nokey("GET", "/sandboxes/s1/proxy/not-a-port/x");
  EXPECT_EQ(res.status, 401);
  EXPECT_NE(res.body.find("MISSING_API_KEY"), std::string::npos);
  EXPECT_EQ(call_nokey("GET", "/proxy/sandboxes/anything").status, 401);
}

TEST_F(Api, NoKeyConfigured) {
  cfg->server.api_key = "   ";
  rebuild();
  EXPECT_EQ(call_nokey("GET", "/v1/sandboxes/sbx-001").status, 200);
}

TEST_F(Api, RequestIdEcho) {
  auto res = call("GET", "/v1/sandboxes/sbx-001",
                  {{"x-request-id", "  my-req-42 "}});
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(header_of(res, "X-Request-ID"), "my-req-42");
  EXPECT_EQ(backend->last_request_id, "my-req-42");
  // On errors too.
  res = call_nokey("GET", "/v1/sandboxes", {{"x-request-id", "abc"}});
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(header_of(res, "X-Request-ID"), "abc");
  res = call("GET", "/nope", {{"x-request-id", "r404"}});
  EXPECT_EQ(header_of(res, "X-Request-ID"), "r404");
  res = call("PUT", "/v1/sandboxes", {{"x-request-id", "r405"}});
  EXPECT_EQ(header_of(res, "X-Request-ID"), "r405");
  res = call("GET", "/v1/sandboxes?page=0", {{"x-request-id", "r422"}});
  EXPECT_EQ(res.status, 422);
  EXPECT_EQ(header_of(res, "X-Request-ID"), "r422");
  backend->failure = make_api_error(ec::query_failed, "boom");
  res = call("GET", "/v1/sandboxes/sbx-001", {{"x-request-id", "r500"}});
  EXPECT_EQ(res.status, 500);
  EXPECT_EQ(header_of(res, "X-Request-ID"), "r500");
}

TEST_F(Api, RequestIdGenerated) {
  auto a = header_of(call("GET", "/v1/sandboxes/sbx-001"), "X-Request-ID");
  auto b = header_of(call("GET", "/v1/sandboxes/sbx-001",
                          {{"x-request-id", "   "}}),
                     "X-Request-ID");
  ASSERT_EQ(a.size(), 32u);
  ASSERT_EQ(b.size(), 32u);
  EXPECT_NE(a, b);
  for (auto c : a)
    EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << a;
}

// -- routing shapes -----------------------------------------------------------

TEST_F(Api, NotFoundAndMethodNotAllowed) {
  auto res = call("GET", "/v1/nothing");
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.body, R"({"detail":"Not Found"})");
  EXPECT_EQ(res.content_type, "application/json");
  res = call("GET", "/v1/health");
  EXPECT_EQ(res.status, 404);
  res = call("PUT", "/v1/sandboxes/sbx-001");
  EXPECT_EQ(res.status, 405);
  EXPECT_EQ(res.body, R"({"detail":"Method Not Allowed"})");
  EXPECT_EQ(header_of(res, "Allow"), "GET, DELETE");
  EXPECT_EQ(backend->num_calls, 0);
}

TEST_F(Api, TrailingSlashRedirects) {
  auto res = call("GET", "/v1/sandboxes/?page=2");
  EXPECT_EQ(res.status, 307);
  EXPECT_EQ(header_of(res, "Location"), "http://testserver/v1/sandboxes?page=2");
}

TEST_F(Api, RootAndV1BothWork) {
  EXPECT_EQ(call("GET", "/sandboxes/sbx-001").status, 200);
  EXPECT_EQ(call("GET", "/v1/sandboxes/sbx-001").status, 200);
  EXPECT_EQ(backend->last_id, "sbx-001");
}

// -- lifecycle ----------------------------------------------------------------

TEST_F(Api, Create) {
  auto res = call("POST", "/v1/sandboxes",
                  {{"content-type", "application/json"}},
                  R"({"image":{"uri":"python:3.11"},"entrypoint":["python"],"timeout":3600,"resourceLimits":{"cpu":"500m","memory":"512Mi"}})");
  EXPECT_EQ(res.status, 202);
  EXPECT_EQ(res.content_type, "application/json");
  sandbox_view expected;
  expected.id = "new-sbx";
  expected.image = "python:3.11";
  expected.state = sandbox_state::running;
  EXPECT_EQ(res.body, codec::encode_create_response(expected));
  EXPECT_EQ(backend->last_spec.image, "python:3.11");
}

TEST_F(Api, CreateRejected) {
  auto res = call("POST", "/v1/sandboxes", {},
                  R"({"image":{"uri":"python:3.11"},"entrypoint":["python"],"timeout":10,"resourceLimits":{"cpu":"500m"}})");
  EXPECT_EQ(res.status, 422);
  EXPECT_EQ(res.body.rfind("{\"detail\":[", 0), 0u) << res.body;
  EXPECT_EQ(backend->num_calls, 0);
}

TEST_F(Api, Get) {
  auto res = call("GET", "/v1/sandboxes/sbx-001");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, codec::encode_sandbox(backend->sandboxes["sbx-001"]));
  res = call("GET", "/v1/sandboxes/nope");
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.body,
            R"({"code":"DOCKER::SANDBOX_NOT_FOUND","message":"Sandbox nope not found."})");
}

TEST_F(Api, DeleteIsEmpty204) {
  auto res = call("DELETE", "/v1/sandboxes/sbx-001");
  EXPECT_EQ(res.status, 204);
  EXPECT_TRUE(res.body.empty());
  EXPECT_TRUE(res.content_type.empty());
  EXPECT_EQ(backend->sandboxes.count("sbx-001"), 0u);
  EXPECT_EQ(call("DELETE", "/v1/sandboxes/sbx-001").status, 404);
  EXPECT_EQ(call_nokey("DELETE", "/v1/sandboxes/sbx-001").body,
            missing_key_body);
}

TEST_F(Api, DeleteWhoseCleanupIsPendingIs202) {
  backend->pending_removal = "removing its container failed (Docker is down)";
  auto res = call("DELETE", "/v1/sandboxes/sbx-001");
  EXPECT_EQ(res.status, 202);
  EXPECT_EQ(res.body,
            R"({"id":"sbx-001","code":"SANDBOX::DELETION_PENDING","message":)"
            R"("Sandbox sbx-001 is deleted; removing its containers is )"
            R"(pending and retried until it succeeds: removing its container )"
            R"x(failed (Docker is down)"})x");
}

TEST_F(Api, PauseResumeAre202Empty) {
  auto res = call("POST", "/v1/sandboxes/sbx-001/pause");
  EXPECT_EQ(res.status, 202);
  EXPECT_TRUE(res.body.empty());
  EXPECT_TRUE(res.content_type.empty());
  EXPECT_EQ(backend->last_id, "sbx-001");
  res = call("POST", "/sandboxes/sbx-001/resume");
  EXPECT_EQ(res.status, 202);
  EXPECT_EQ(call("POST", "/v1/sandboxes/zzz/pause").status, 404);
}

TEST_F(Api, PatchMetadata) {
  auto res = call("PATCH", "/v1/sandboxes/sbx-001/metadata", {},
                  R"({"project":"new-project","deprecated":null})");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, codec::encode_sandbox(backend->sandboxes["sbx-001"]));
  EXPECT_EQ(call("PATCH", "/v1/sandboxes/zzz/metadata", {}, "{}").status, 404);
}

TEST_F(Api, RenewPassesDecodedTime) {
  auto body = R"({"expiresAt":"2030-01-01T00:00:00Z"})";
  auto decoded = codec::decode_renew(body);
  ASSERT_TRUE(std::holds_alternative<int64_t>(decoded));
  auto res = call("POST", "/v1/sandboxes/sbx-001/renew-expiration", {}, body);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(backend->last_renew, std::get<int64_t>(decoded));
  EXPECT_EQ(res.body, codec::encode_renew(std::get<int64_t>(decoded)));
  res = call("POST", "/v1/sandboxes/sbx-001/renew-expiration", {}, "{}");
  EXPECT_EQ(res.status, 422);
}

TEST_F(Api, ListQuery) {
  auto res = call("GET", "/v1/sandboxes?state=Running&page=1&pageSize=5");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(backend->last_query.page_size, 5);
  res = call("GET", "/v1/sandboxes?metadata=team%3Dinfra%26project%3Dalpha");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(backend->last_query.metadata.at("team"), "infra");
  EXPECT_EQ(backend->last_query.metadata.at("project"), "alpha");
}

TEST_F(Api, ListQueryErrors) {
  EXPECT_EQ(call("GET", "/v1/sandboxes?page=0").status, 422);
  EXPECT_EQ(call("GET", "/v1/sandboxes?pageSize=201").status, 422);
  auto res = call("GET", "/v1/sandboxes?metadata=team%3Dinfra%26broken");
  EXPECT_EQ(res.status, 400);
  EXPECT_NE(res.body.find("INVALID_METADATA_FORMAT"), std::string::npos);
  EXPECT_NE(res.body.find("bad query field"), std::string::npos);
  EXPECT_EQ(backend->num_calls, 0);
  EXPECT_EQ(call_nokey("GET", "/v1/sandboxes").status, 401);
}

TEST_F(Api, BackendErrorsBecomeEnvelopes) {
  backend->failure = make_api_error(ec::sandbox_not_paused,
                                    "Sandbox is not in a paused state.");
  auto res = call("POST", "/v1/sandboxes/sbx-001/resume");
  EXPECT_EQ(res.status, 409);
  EXPECT_EQ(res.body,
            R"({"code":"DOCKER::SANDBOX_NOT_PAUSED","message":"Sandbox is not in a paused state."})");
}

// -- endpoints ----------------------------------------------------------------

TEST_F(Api, EndpointShapes) {
  auto res = call("GET", "/v1/sandboxes/sbx-001/endpoints/44772");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, R"({"endpoint":"192.168.1.100:40109/proxy/44772"})");
  res = call("GET", "/v1/sandboxes/sbx-001/endpoints/8080");
  EXPECT_EQ(res.body, R"({"endpoint":"192.168.1.100:50001"})");
  backend->sandboxes["sbx-001"].egress_token = "tok";
  res = call("GET", "/v1/sandboxes/sbx-001/endpoints/18080");
  EXPECT_EQ(
    res.body,
    R"({"endpoint":"192.168.1.100:40109/proxy/18080","headers":{"OPENSANDBOX-EGRESS-AUTH":"tok"}})");
  EXPECT_EQ(backend->last_id, "sbx-001");
  EXPECT_EQ(call("GET", "/v1/sandboxes/nope/endpoints/8080").status, 404);
}

TEST_F(Api, EndpointServerProxy) {
  auto res = call("GET",
                  "/v1/sandboxes/sbx-001/endpoints/44772?use_server_proxy=true");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body,
            R"({"endpoint":"testserver/sandboxes/sbx-001/proxy/44772"})");
  // Headers of the public endpoint are kept.
  backend->sandboxes["sbx-001"].egress_token = "tok";
  res = call("GET", "/v1/sandboxes/sbx-001/endpoints/18080?use_server_proxy=1");
  EXPECT_EQ(
    res.body,
    R"({"endpoint":"testserver/sandboxes/sbx-001/proxy/18080","headers":{"OPENSANDBOX-EGRESS-AUTH":"tok"}})");
  // false-ish values keep the direct endpoint.
  res = call("GET", "/v1/sandboxes/sbx-001/endpoints/8080?use_server_proxy=OFF");
  EXPECT_EQ(res.body, R"({"endpoint":"192.168.1.100:50001"})");
  res = call("GET", "/v1/sandboxes/sbx-001/endpoints/8080?use_server_proxy=maybe");
  EXPECT_EQ(res.status, 422);
}

TEST_F(Api, EndpointServerProxyWithEip) {
  cfg->server.eip = "sandbox.example.com/opensandbox/";
  rebuild();
  auto res = call("GET",
                  "/v1/sandboxes/sbx-001/endpoints/44772?use_server_proxy=yes");
  EXPECT_EQ(
    res.body,
    R"({"endpoint":"sandbox.example.com/opensandbox/sandboxes/sbx-001/proxy/44772"})");
  // Without the proxy the eip is the public host.
  res = call("GET", "/v1/sandboxes/sbx-001/endpoints/44772");
  EXPECT_EQ(
    res.body,
    R"({"endpoint":"sandbox.example.com/opensandbox/:40109/proxy/44772"})");
}

TEST_F(Api, EndpointExpiresRules) {
  // Signed URLs are served by the proxy (a documented deviation: the
  // original answers 400 to use_server_proxy with expires) and need keys.
  for (auto q : {"?use_server_proxy=true&expires=2000000000",
                 "?expires=2000000000"}) {
    auto res = call("GET",
                    std::string{"/v1/sandboxes/sbx-001/endpoints/44772"} + q);
    EXPECT_EQ(res.status, 400);
    EXPECT_EQ(
      res.body,
      R"({"code":"SANDBOX::API_NOT_SUPPORTED","message":"Signed routes (expires parameter) need signing keys in [ingress.secure_access] when runtime.type='docker'."})");
  }
  response res;
  res = call("GET", "/v1/sandboxes/sbx-001/endpoints/44772?expires=soon");
  EXPECT_EQ(res.status, 422);
  cfg->ingress.secure_access.active_key = 'k';
  cfg->ingress.secure_access.keys.push_back({'k', "secret"});
  rebuild();
  for (auto bad : {"1", "18446744073709551616", "-5"}) {
    res = call("GET", std::string{"/v1/sandboxes/sbx-001/endpoints/44772"
                                  "?expires="}
                        + bad);
    EXPECT_EQ(res.status, 400) << bad;
    EXPECT_NE(res.body.find("expires must be a Unix time in seconds in the "
                            "future"),
              std::string::npos)
      << res.body;
  }
  EXPECT_EQ(backend->num_calls, 0);
  // Minted with the active key, with or without use_server_proxy.
  for (auto q : {"?expires=2000000000",
                 "?use_server_proxy=true&expires=2000000000"}) {
    res = call("GET",
               std::string{"/v1/sandboxes/sbx-001/endpoints/44772"} + q);
    EXPECT_EQ(res.status, 200) << res.body;
    EXPECT_NE(res.body.find("/signed/sbx-001-44772-x2qxvk-"),
              std::string::npos)
      << res.body;
    EXPECT_EQ(res.body.find("X-EXECD-ACCESS-TOKEN"), std::string::npos)
      << res.body;
  }
}

TEST_F(Api, EndpointPortValidation) {
  auto res = call("GET", "/v1/sandboxes/sbx-001/endpoints/http");
  EXPECT_EQ(res.status, 422);
  EXPECT_EQ(res.body.rfind("{\"detail\":[", 0), 0u);
  res = call("GET", "/v1/sandboxes/sbx-001/endpoints/0");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(
    res.body,
    R"({"code":"DOCKER::INVALID_PORT","message":"Port must be between 1 and 65535."})");
  EXPECT_EQ(call("GET", "/v1/sandboxes/sbx-001/endpoints/65536").status, 400);
  EXPECT_EQ(call("GET", "/v1/sandboxes/nope/endpoints/70000").status, 400);
  EXPECT_EQ(backend->num_calls, 0);
}

TEST_F(Api, EndpointHostMode) {
  cfg->docker.network_mode = "host";
  cfg->server.host = "10.0.0.1";
  rebuild();
  auto res = call("GET", "/v1/sandboxes/sbx-001/endpoints/8080");
  EXPECT_EQ(res.body, R"({"endpoint":"10.0.0.1:8080"})");
}

// -- snapshots ----------------------------------------------------------------

TEST_F(Api, CreateSnapshotAnswers202WithLocationUnderV1) {
  for (const char* prefix : {"", "/v1"}) {
    auto res = call("POST", std::string{prefix} + "/sandboxes/sbx-001/snapshots",
                    {}, R"({"name":"before","extra":1})");
    EXPECT_EQ(res.status, 202);
    EXPECT_EQ(header_of(res, "location"), "/v1/snapshots/snap-1");
    EXPECT_EQ(
      res.body,
      R"({"id":"snap-1","sandboxId":"sbx-001","name":"before","status":{"state":"Creating","reason":"snapshot_accepted","message":"Snapshot creation accepted.","lastTransitionAt":"2023-11-14T22:13:20Z"},"createdAt":"2023-11-14T22:13:20Z"})");
    EXPECT_EQ(backend->last_snapshot_name, "before");
  }
  // The body is optional; an empty name is not.
  EXPECT_EQ(call("POST", "/v1/sandboxes/sbx-001/snapshots").status, 202);
  EXPECT_EQ(backend->last_snapshot_name, "");
  EXPECT_EQ(call("POST", "/v1/sandboxes/sbx-001/snapshots", {}, "{}").status,
            202);
  auto bad = call("POST", "/v1/sandboxes/sbx-001/snapshots", {},
                  R"({"name":""})");
  EXPECT_EQ(bad.status, 422);
  EXPECT_NE(bad.body.find("string_too_short"), std::string::npos);
  EXPECT_EQ(call("POST", "/v1/sandboxes/sbx-001/snapshots", {},
                 R"({"name":7})")
              .status,
            422);
  EXPECT_EQ(call("POST", "/v1/sandboxes/sbx-001/snapshots", {}, "{").status,
            422);
  auto missing = call("POST", "/v1/sandboxes/nope/snapshots");
  EXPECT_EQ(missing.status, 404);
}

TEST_F(Api, SnapshotListGetAndDelete) {
  auto res = call("GET", "/v1/snapshots?sandboxId=sbx-001&state=Ready&state="
                         "Failed&page=2&pageSize=5&name=nightly");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(
    res.body,
    R"({"items":[],"pagination":{"page":2,"pageSize":5,"totalItems":0,"totalPages":0,"hasNextPage":false}})");
  EXPECT_EQ(backend->last_snapshot_query.sandbox_id, "sbx-001");
  EXPECT_TRUE(backend->last_snapshot_query.by_name);
  EXPECT_EQ(backend->last_snapshot_query.name, "nightly");
  EXPECT_EQ(backend->last_snapshot_query.states,
            (std::vector<std::string>{"Ready", "Failed"}));
  EXPECT_EQ(call("GET", "/v1/snapshots?pageSize=201").status, 422);
  EXPECT_EQ(call("GET", "/v1/snapshots?page=0").status, 422);
  auto got = call("GET", "/v1/snapshots/s-9");
  EXPECT_EQ(got.status, 404);
  EXPECT_EQ(got.body,
            R"({"code":"SNAPSHOT::NOT_FOUND","message":"Snapshot s-9 not found"})");
  EXPECT_EQ(backend->last_id, "s-9");
  EXPECT_EQ(call("DELETE", "/snapshots/s-9").status, 204);
  auto busy = call("DELETE", "/v1/snapshots/busy");
  EXPECT_EQ(busy.status, 409);
  EXPECT_NE(busy.body.find("SNAPSHOT::DELETE_CONFLICT"), std::string::npos);
}

// -- not implemented yet ------------------------------------------------------

TEST_F(Api, NotImplementedRoutes) {
  auto res = call("POST", "/v1/pools", {}, "{}");
  EXPECT_EQ(res.status, 501);
  EXPECT_EQ(
    res.body,
    R"({"code":"KUBERNETES::POOL_NOT_SUPPORTED","message":"Pool management is only available when runtime.type is 'kubernetes'."})");
  res = call("GET", "/v1/sandboxes/sbx-001/diagnostics/logs?scope=all");
  EXPECT_EQ(res.status, 501);
  EXPECT_NE(res.body.find("DIAGNOSTICS_NOT_IMPLEMENTED"), std::string::npos);
  res = call("POST", "/v1/metrics/events", {}, "{}");
  EXPECT_EQ(res.status, 204);
  EXPECT_TRUE(res.body.empty());
}

// -- diagnostics (§1.14) --------------------------------------------------------

TEST_F(Api, DiagnosticsWithScopeAre501WithoutLookup) {
  for (auto route : {"logs", "events"}) {
    auto calls = backend->num_calls;
    auto res = call("GET", std::string{"/v1/sandboxes/unknown/diagnostics/"}
                             + route + "?scope=x");
    EXPECT_EQ(res.status, 501);
    EXPECT_EQ(res.body,
              R"({"code":"DIAGNOSTICS_NOT_IMPLEMENTED","message":"The stable )"
              R"(Diagnostics API is not implemented by this OpenSandbox )"
              R"(server."})");
    EXPECT_EQ(backend->num_calls, calls);
  }
}

TEST_F(Api, DiagnosticsArePlainText) {
  auto res = call("GET", "/sandboxes/sbx-001/diagnostics/logs?tail=25&since=5m");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(res.body, "logs text");
  EXPECT_EQ(header_of(res, "Deprecation"), "true");
  EXPECT_EQ(backend->last_diag.tail, 25);
  EXPECT_EQ(backend->last_diag.since, "5m");
  res = call("GET", "/v1/sandboxes/sbx-001/diagnostics/events");
  EXPECT_EQ(res.body, "events text");
  EXPECT_EQ(header_of(res, "Deprecation"), "true");
  EXPECT_EQ(backend->last_diag.limit, 50);
  res = call("GET", "/v1/sandboxes/sbx-001/diagnostics/inspect");
  EXPECT_EQ(res.body, "inspect text");
  EXPECT_FALSE(has_header(res, "Deprecation"));
  res = call("GET", "/v1/sandboxes/sbx-001/diagnostics/summary");
  EXPECT_EQ(res.body, "summary text");
  EXPECT_FALSE(has_header(res, "Deprecation"));
  EXPECT_EQ(backend->last_diag.tail, 50);
  EXPECT_EQ(backend->last_diag.limit, 20);
  res = call("GET",
             "/v1/sandboxes/sbx-001/diagnostics/summary?tail=7&event_limit=3");
  EXPECT_EQ(backend->last_diag.tail, 7);
  EXPECT_EQ(backend->last_diag.limit, 3);
}

TEST_F(Api, DiagnosticsValidateTheirQuery) {
  auto res = call("GET", "/v1/sandboxes/sbx-001/diagnostics/logs?tail=0");
  EXPECT_EQ(res.status, 422);
  EXPECT_EQ(res.body,
            R"({"detail":[{"type":"greater_than_equal","loc":["query","tail"],)"
            R"("msg":"Input should be greater than or equal to 1","input":"0",)"
            R"("ctx":{"ge":1}}]})");
  res = call("GET", "/v1/sandboxes/sbx-001/diagnostics/events?limit=501");
  EXPECT_EQ(res.status, 422);
  EXPECT_NE(res.body.find(R"("type":"less_than_equal")"), std::string::npos);
  res = call("GET", "/v1/sandboxes/sbx-001/diagnostics/summary?tail=x");
  EXPECT_EQ(res.status, 422);
  EXPECT_NE(res.body.find(R"("type":"int_parsing")"), std::string::npos);
  res = call("GET", "/v1/sandboxes/nope/diagnostics/inspect");
  EXPECT_EQ(res.status, 404);
  EXPECT_NE(res.body.find("DOCKER::SANDBOX_NOT_FOUND"), std::string::npos);
}

// -- CORS -----------------------------------------------------------------------

TEST_F(Api, CorsPreflightBeforeAuth) {
  auto res = call_nokey("OPTIONS", "/v1/sandboxes",
                        {{"origin", "https://app.example"},
                         {"access-control-request-method", "POST"},
                         {"access-control-request-headers",
                          "open-sandbox-api-key,content-type"}});
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "OK");
  EXPECT_EQ(header_of(res, "Access-Control-Allow-Origin"),
            "https://app.example");
  EXPECT_EQ(header_of(res, "Access-Control-Allow-Methods"),
            "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT");
  EXPECT_EQ(header_of(res, "Access-Control-Allow-Headers"),
            "open-sandbox-api-key,content-type");
  EXPECT_EQ(header_of(res, "Access-Control-Allow-Credentials"), "true");
  EXPECT_EQ(header_of(res, "Access-Control-Max-Age"), "600");
  EXPECT_EQ(header_of(res, "Vary"), "Origin");
  EXPECT_EQ(header_of(res, "X-Request-ID").size(), 32u);
  EXPECT_EQ(backend->num_calls, 0);
}

TEST_F(Api, CorsPreflightBadMethod) {
  auto res = call_nokey("OPTIONS", "/v1/sandboxes",
                        {{"origin", "https://app.example"},
                         {"access-control-request-method", "BREW"}});
  EXPECT_EQ(res.status, 400);
}

TEST_F(Api, PlainOptionsIsNotAPreflight) {
  auto res = call("OPTIONS", "/v1/sandboxes");
  EXPECT_EQ(res.status, 405);
}

TEST_F(Api, CorsSimpleResponses) {
  auto res = call("GET", "/v1/sandboxes/sbx-001",
                  {{"origin", "https://app.example"}});
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(header_of(res, "Access-Control-Allow-Origin"), "*");
  EXPECT_EQ(header_of(res, "Access-Control-Allow-Credentials"), "true");
  // Errors from the auth layer carry CORS headers too.
  res = call_nokey("GET", "/v1/sandboxes", {{"origin", "https://app.example"}});
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(header_of(res, "Access-Control-Allow-Origin"), "*");
  // With cookies the origin is echoed.
  res = call("GET", "/v1/sandboxes/sbx-001",
             {{"origin", "https://app.example"}, {"cookie", "a=b"}});
  EXPECT_EQ(header_of(res, "Access-Control-Allow-Origin"),
            "https://app.example");
  EXPECT_EQ(header_of(res, "Vary"), "Origin");
  // Without Origin no CORS headers at all.
  res = call("GET", "/v1/sandboxes/sbx-001");
  EXPECT_FALSE(has_header(res, "Access-Control-Allow-Origin"));
}
