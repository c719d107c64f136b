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

/// Every value a route_id can take (it is a uint8_t): a route added at the
/// end of the enum needs no change here (sized by the last route, the
/// array overflowed for it).
constexpr size_t num_routes = 256;
static_assert(sizeof(route_id) == 1);

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
  return route_label(id);
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

/// `GET /metrics`: the registry in Prometheus text format 0.0.4 (404 when
/// `[metrics] enabled = false`).
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

/// `GET /ready`: 200 when the backend is ready, 503 with the reason.
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

std::vector<route_binding> operations_routes() {
  return {
    {route_id::metrics, metrics},
    {route_id::ready, ready},
  };
}

} // namespace osb::http::detail
