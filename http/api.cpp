// The lifecycle API's request handler: the middleware of the original, in
// its order (request id, CORS, API key), then dispatch by route to the
// handler of the route's resource (api_sandboxes.cpp, api_endpoints.cpp,
// api_snapshots.cpp, api_diagnostics.cpp, api_cluster.cpp, api_pools.cpp,
// api_metrics.cpp), through each resource's route table.
//
// Adding a route (docs/architecture.md, "Adding an operation"):
//   1. http/router.hpp, http/router.cpp: a `route_id`, its row in the route
//      table (pattern, method) and its name in to_string();
//   2. the handler in its resource's file (api_<resource>.cpp) and its row
//      in that file's `*_routes()` table: decode with a function of
//      http/codec_request.hpp, call the lifecycle_backend (a sandbox
//      operation: `backend->call(ctx, id, some_op{...}, ...)`), answer with
//      a function of http/codec_response.hpp;
//   3. tests: test/unit/http/router_test.cpp for the route, the resource's
//      test/unit/http/api_<resource>_test.cpp for the handler.

#include "http/api.hpp"

#include "base/secure_compare.hpp"
#include "core/ids.hpp"
#include "base/log.hpp"
#include "base/metrics.hpp"
#include "base/strings.hpp"
#include "http/api_context.hpp"
#include "http/api_routes.hpp"
#include "http/router.hpp"
#include "net/endpoints.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <fstream>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace osb::http {

namespace detail {

/// The handler of a route, from the resources' route tables; nullptr for
/// none.
route_handler handler_of(route_id id) {
  static const auto handlers = [] {
    std::unordered_map<uint8_t, route_handler> result;
    for (auto routes : {sandbox_routes, endpoint_routes, snapshot_routes,
                        diagnostics_routes, cluster_routes, pool_routes,
                        operations_routes})
      for (const auto& x : routes())
        result.emplace(static_cast<uint8_t>(x.id), x.handler);
    return result;
  }();
  auto i = handlers.find(static_cast<uint8_t>(id));
  return i == handlers.end() ? nullptr : i->second;
}

} // namespace detail

namespace {

using namespace detail;

/// Starlette's ALL_METHODS, the CORS allow-list for `allow_methods=["*"]`.
constexpr std::string_view cors_methods
  = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT";

void dispatch_route(const api_state& st, exchange_ptr x, const route& rt,
                    const request& req) {
  switch (rt.id) {
    case route_id::not_found:
      break;
    case route_id::method_not_allowed: {
      auto res = json_response(405, R"({"detail":"Method Not Allowed"})");
      res.headers.emplace_back("Allow", rt.allow);
      return finish(*x, std::move(res), "method_not_allowed",
                    "allowed: " + rt.allow);
    }
    case route_id::redirect_slash: {
      auto res = empty_response(307);
      auto& host = req.header("host");
      auto location = host.empty() ? rt.rest : "http://" + host + rt.rest;
      if (!req.query.empty())
        location += '?' + req.query;
      res.headers.emplace_back("Location", std::move(location));
      return finish(*x, std::move(res));
    }
    case route_id::health:
      return finish(*x, json_response(200, R"({"status":"healthy"})"));
    default:
      if (auto h = handler_of(rt.id))
        return h(st, std::move(x), rt, req);
      break;
  }
  finish(*x, json_response(404, R"({"detail":"Not Found"})"), "not_found",
         "no such route");
}

/// Answers a CORS preflight like Starlette's CORSMiddleware does.
void preflight(exchange& x, const request& req) {
  auto& requested_method = req.header("access-control-request-method");
  auto& requested_headers = req.header("access-control-request-headers");
  bool method_ok = false;
  for (std::string_view m : {"DELETE", "GET", "HEAD", "OPTIONS", "PATCH",
                             "POST", "PUT"})
    if (requested_method == m)
      method_ok = true;
  response res;
  res.content_type = "text/plain; charset=utf-8";
  res.headers.emplace_back("Vary", "Origin");
  res.headers.emplace_back("Access-Control-Allow-Methods",
                           std::string{cors_methods});
  res.headers.emplace_back("Access-Control-Max-Age", "600");
  res.headers.emplace_back("Access-Control-Allow-Credentials", "true");
  res.headers.emplace_back("Access-Control-Allow-Origin", x.origin);
  bool has_requested_headers = false;
  for (const auto& [name, value] : req.headers)
    if (name == "access-control-request-headers")
      has_requested_headers = true;
  if (has_requested_headers)
    res.headers.emplace_back("Access-Control-Allow-Headers",
                             requested_headers);
  if (method_ok) {
    res.status = 200;
    res.body = "OK";
    return finish(x, std::move(res), {}, {}, false);
  }
  res.status = 400;
  res.body = "Disallowed CORS method";
  finish(x, std::move(res), "cors", "disallowed CORS method", false);
}

void handle(const api_state& st, request& req, responder& respond) {
  auto x = std::make_shared<exchange>();
  if (log::access_enabled() || metrics::enabled())
    x->started = std::chrono::steady_clock::now();
  auto rid = trim(req.header("x-request-id"));
  x->rid = rid.empty() ? codec::make_request_id() : std::string{rid};
  x->method = req.method;
  x->path = req.path;
  x->origin = req.header("origin");
  for (const auto& field : req.headers)
    if (field.first == "cookie")
      x->has_cookie = true;
  x->respond = std::move(respond);
  try {
    // Middleware order of the original, outermost first: request id, CORS
    // (preflights are answered before auth), auth, routing.
    if (req.method == "OPTIONS" && !x->origin.empty()
        && !req.header("access-control-request-method").empty())
      return preflight(*x, req);
    auto rt = match_route(req.method, req.path);
    x->sandbox_id = rt.sandbox_id;
    x->route = rt.id;
    if (st.key_required && !metrics_auth_exempt(st, rt.id)
        && !auth_exempt(decode_path(req.path))) {
      std::string_view key = req.header("open-sandbox-api-key");
      // Prometheus (2.42) can only send `Authorization: Bearer <key>`.
      if (key.empty() && rt.id == route_id::metrics)
        key = bearer_token(req.header("authorization"));
      if (key.empty())
        return fail(*x, ec::missing_api_key, std::string{missing_key_message});
      if (!constant_time_equal(key, st.cfg->server.api_key))
        return fail(*x, ec::invalid_api_key, std::string{invalid_key_message});
    }
    dispatch_route(st, x, rt, req);
  } catch (const std::exception& e) {
    auto res = json_response(500, "Internal Server Error");
    res.content_type = "text/plain; charset=utf-8";
    finish(*x, std::move(res), "exception", e.what());
  }
}

} // namespace

handler make_api_handler(std::shared_ptr<const node_config> cfg,
                         std::shared_ptr<lifecycle_backend> backend) {
  auto st = std::make_shared<api_state>();
  st->public_host = net::detect_public_host(*cfg);
  {
    std::ifstream in{"/proc/net/route"};
    std::stringstream routes;
    routes << in.rdbuf();
    auto proxy = net::detect_proxy_address(
      *cfg, net::docker_bridge_here(), routes.str(),
      net::resolve_publish_address(*cfg, !net::docker_bridge_here(),
                                   st->public_host));
    st->proxy_address = proxy.host;
    st->proxy_address_local = proxy.local;
  }
  st->key_required = !trim(cfg->server.api_key).empty();
  st->cfg = std::move(cfg);
  st->backend = std::move(backend);
  if (st->cfg->renew_intent.enabled) {
    // Capped at ten years: the monotonic clock counts nanoseconds.
    auto secs = std::min<int64_t>(st->cfg->renew_intent.min_interval_seconds,
                                  int64_t{10} * 365 * 24 * 3600);
    st->renew
      = std::make_shared<renew_coordinator>(std::chrono::seconds(secs));
    OSB_INFO("http", "", "",
             "renew-on-access is on (proxy-only, cool-down "
               << st->cfg->renew_intent.min_interval_seconds << " s)");
  }
  if (st->cfg->renew_intent.redis_requested)
    OSB_WARN("http", "", "",
             "renew_intent.redis.enabled is set, but consuming renew intents "
             "from Redis is not implemented: only proxied requests renew");
  OSB_INFO("http", "", "",
           "endpoints advertise host "
             << st->public_host << "; the proxy reaches ports published "
             << "here at " << st->proxy_address);
  return [st](request&& req, responder respond) {
    handle(*st, req, respond);
  };
}

} // namespace osb::http
