#pragma once

// Internal to the lifecycle API handler: the route handlers, by the file of
// their resource. Each resource file defines its handlers and binds them to
// their routes in its `*_routes()` table; http/api.cpp dispatches through
// those tables. A handler decodes what its route takes
// (http/codec_request.hpp), calls the backend and encodes the answer
// (http/codec_response.hpp), or answers an error; either way `x` is
// answered exactly once.

#include <vector>

#include "http/api_context.hpp"
#include "http/router.hpp"

namespace osb::http::detail {

/// Serves one route.
using route_handler = void (*)(const api_state& st, exchange_ptr x,
                               const route& rt, const request& req);

/// Which handler serves a route.
struct route_binding {
  route_id id;
  route_handler handler;
};

// -- the resources' route tables ----------------------------------------------

/// Sandboxes: create, list, get, delete, metadata, pause, resume, renew.
std::vector<route_binding> sandbox_routes(); // api_sandboxes.cpp
/// Endpoints, signed URLs and the server proxy.
std::vector<route_binding> endpoint_routes(); // api_endpoints.cpp
/// Snapshots.
std::vector<route_binding> snapshot_routes(); // api_snapshots.cpp
/// The four diagnostics routes.
std::vector<route_binding> diagnostics_routes(); // api_diagnostics.cpp
/// Cluster membership and SDK telemetry.
std::vector<route_binding> cluster_routes(); // api_cluster.cpp
/// Pools.
std::vector<route_binding> pool_routes(); // api_pools.cpp
/// `GET /metrics` and `GET /ready`.
std::vector<route_binding> operations_routes(); // api_metrics.cpp

/// The handler bound to a route in the tables above; nullptr for none
/// (api.cpp).
route_handler handler_of(route_id id);

// -- helpers (api_metrics.cpp) ------------------------------------------------

/// Whether `id` skips the API key: `/ready` always, `/metrics` when
/// `[metrics] auth = false`.
bool metrics_auth_exempt(const api_state& st, route_id id);
/// The route label of a metric: the route's pattern ("/sandboxes/{id}"),
/// never a path with an id in it.
const char* route_pattern(route_id id);
/// The credentials of `Authorization: Bearer <token>`, else empty.
std::string_view bearer_token(std::string_view authorization);
/// Records an answered request in the HTTP families.
void record_request(const exchange& x, int status);

} // namespace osb::http::detail
