// Operations routes (issue 15): `GET /metrics` (Prometheus text format
// 0.0.4 of the process's registry) and `GET /ready`; and the HTTP families
// every answered request records into.

#include "http/api_routes.hpp"

#include "base/metrics.hpp"
#include "core/json.hpp"
#include "core/server_metrics.hpp"

#include <array>
#include <cctype>
#include <mutex>
#include <unordered_map>

namespace osb::http::detail {

namespace {

/// Small index of a method for the per-thread child cache.
uint32_t method_index(std::string_view m) {
  constexpr std::string_view known[] = {"GET",   "POST", "PUT",    "DELETE",
                                        "PATCH", "HEAD", "OPTIONS"};
  for (uint32_t i = 0; i < std::size(known); ++i)
    if (m == known[i])
      return i;
  return std::size(known);
}

constexpr size_t num_routes = static_cast<size_t>(route_id::ready) + 1;

} // namespace

std::string_view bearer_token(std::string_view authorization) {
  constexpr std::string_view scheme = "Bearer ";
  if (authorization.size() <= scheme.size())
    return {};
  for (size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i]))
        != std::tolower(static_cast<unsigned char>(scheme[i])))
      return {};
  return authorization.substr(scheme.size());
}

bool metrics_auth_exempt(const api_state& st, route_id id) {
  return id == route_id::ready
         || (id == route_id::metrics && !st.cfg->metrics.auth);
}

const char* route_pattern(route_id id) {
  switch (id) {
    case route_id::not_found:
    case route_id::method_not_allowed:
    case route_id::redirect_slash:
      return "other";
    case route_id::health:
      return "/health";
    case route_id::create_sandbox:
    case route_id::list_sandboxes:
      return "/sandboxes";
    case route_id::get_sandbox:
    case route_id::delete_sandbox:
      return "/sandboxes/{sandboxId}";
    case route_id::patch_metadata:
      return "/sandboxes/{sandboxId}/metadata";
    case route_id::pause_sandbox:
      return "/sandboxes/{sandboxId}/pause";
    case route_id::resume_sandbox:
      return "/sandboxes/{sandboxId}/resume";
    case route_id::renew_expiration:
      return "/sandboxes/{sandboxId}/renew-expiration";
    case route_id::get_endpoint:
      return "/sandboxes/{sandboxId}/endpoints/{port}";
    case route_id::create_snapshot:
      return "/sandboxes/{sandboxId}/snapshots";
    case route_id::list_snapshots:
      return "/snapshots";
    case route_id::get_snapshot:
    case route_id::delete_snapshot:
      return "/snapshots/{snapshotId}";
    case route_id::proxy:
      return "/sandboxes/{sandboxId}/proxy/{port}";
    case route_id::signed_proxy:
      return "/signed/{token}";
    case route_id::diagnostics_logs:
      return "/sandboxes/{sandboxId}/diagnostics/logs";
    case route_id::diagnostics_events:
      return "/sandboxes/{sandboxId}/diagnostics/events";
    case route_id::diagnostics_inspect:
      return "/sandboxes/{sandboxId}/diagnostics/inspect";
    case route_id::diagnostics_summary:
      return "/sandboxes/{sandboxId}/diagnostics/summary";
    case route_id::create_pool:
    case route_id::list_pools:
      return "/pools";
    case route_id::get_pool:
    case route_id::update_pool:
    case route_id::delete_pool:
      return "/pools/{poolName}";
    case route_id::metrics_events:
      return "/metrics/events";
    case route_id::cluster_nodes:
      return "/cluster/nodes";
    case route_id::metrics:
      return "/metrics";
    case route_id::ready:
      return "/ready";
  }
  return "other";
}

void record_request(const exchange& x, int status) {
  if (!metrics::enabled())
    return;
  // Children are found once per thread: the lookup takes the family's
  // mutex, the increments after it are relaxed atomic adds.
  auto route = static_cast<size_t>(x.route);
  thread_local std::unordered_map<uint32_t, metrics::counter*> counters;
  thread_local std::array<metrics::histogram*, num_routes> durations{};
  auto key = (static_cast<uint32_t>(route) << 20)
             | (method_index(x.method) << 16)
             | static_cast<uint32_t>(status & 0xffff);
  auto& c = counters[key];
  if (c == nullptr) {
    auto known = method_index(x.method) < 7;
    c = &ops_metrics().http_requests.with(
      {known ? std::string_view{x.method} : std::string_view{"other"},
       route_pattern(x.route), std::to_string(status)});
  }
  c->inc();
  auto& h = durations[route];
  if (h == nullptr)
    h = &ops_metrics().http_duration.with({route_pattern(x.route)});
  h->observe(metrics::seconds(std::chrono::steady_clock::now() - x.started));
}

void metrics(const api_state& st, exchange_ptr x, const route&,
             const request&) {
  if (!st.cfg->metrics.enabled)
    return finish(*x, json_response(404, R"({"detail":"Not Found"})"),
                  "not_found", "[metrics] enabled = false");
  static std::once_flag process_families;
  std::call_once(process_families, [] {
    ops_metrics();
    metrics::global().add_collector(metrics::render_process);
  });
  auto res = json_response(200, metrics::global().render());
  res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  finish(*x, std::move(res));
}

void ready(const api_state& st, exchange_ptr x, const route&,
           const request&) {
  st.backend->readiness(
    x->ctx(), [x](result<std::string> r) {
      std::string why;
      if (!r.has_value())
        why = r.error.message;
      else
        why = std::move(*r.value);
      if (why.empty())
        return finish(*x, json_response(200, R"({"status":"ready"})"));
      finish(*x,
             json_response(503, R"({"status":"not ready","reason":)"
                                  + json::quote(why) + "}"),
             "not_ready", why);
    });
}

} // namespace osb::http::detail
