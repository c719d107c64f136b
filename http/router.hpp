#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace osb::http {

/// Every operation of the REST surface, plus the routing outcomes that are
/// not operations (404, 405, trailing-slash redirect).
enum class route_id : uint8_t {
  not_found,          ///< no route has this path → 404
  method_not_allowed, ///< a route has this path, not this method → 405
  redirect_slash,     ///< only the path with/without a trailing `/` exists → 307
  health,             ///< GET /health (root only)
  create_sandbox,     ///< POST /sandboxes
  list_sandboxes,     ///< GET /sandboxes
  get_sandbox,        ///< GET /sandboxes/{id}
  delete_sandbox,     ///< DELETE /sandboxes/{id}
  patch_metadata,     ///< PATCH /sandboxes/{id}/metadata
  pause_sandbox,      ///< POST /sandboxes/{id}/pause
  resume_sandbox,     ///< POST /sandboxes/{id}/resume
  renew_expiration,   ///< POST /sandboxes/{id}/renew-expiration
  get_endpoint,       ///< GET /sandboxes/{id}/endpoints/{port}
  create_snapshot,    ///< POST /sandboxes/{id}/snapshots
  list_snapshots,     ///< GET /snapshots
  get_snapshot,       ///< GET /snapshots/{snapshot_id}
  delete_snapshot,    ///< DELETE /snapshots/{snapshot_id}
  proxy,              ///< GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS
                      ///< /sandboxes/{id}/proxy/{port}[/{path}] and
                      ///< /route/{id}/{port}[/{path}]
  diagnostics_logs,   ///< GET /sandboxes/{id}/diagnostics/logs
  diagnostics_events, ///< GET /sandboxes/{id}/diagnostics/events
  diagnostics_inspect, ///< GET /sandboxes/{id}/diagnostics/inspect
  diagnostics_summary, ///< GET /sandboxes/{id}/diagnostics/summary
  create_pool,        ///< POST /pools
  list_pools,         ///< GET /pools
  get_pool,           ///< GET /pools/{pool_name}
  update_pool,        ///< PUT /pools/{pool_name}
  delete_pool,        ///< DELETE /pools/{pool_name}
  signed_proxy,       ///< the proxy's methods on /signed/{token}[/{path}]
                      ///< (a signed URL, ours; `param` is the token)
  metrics_events,     ///< POST /metrics/events (JS SDK telemetry)
  cluster_nodes,      ///< GET /cluster/nodes (membership, ours)
  metrics,            ///< GET /metrics (Prometheus text, root only, ours)
  ready,              ///< GET /ready (readiness, root only, ours)
};

/// Returns a stable name for logs and tests ("get_sandbox", ...).
const char* to_string(route_id x);

/// The pattern of a route as metrics label it ("/sandboxes/{sandboxId}"),
/// from its first row in the route table; "other" for the routing outcomes
/// that are not routes (404, 405, redirect).
const char* route_label(route_id x);

/// The outcome of matching one request against the route table.
struct route {
  route_id id = route_id::not_found;
  /// `{sandbox_id}`, percent-decoded; empty for routes without one.
  std::string sandbox_id;
  /// The second path parameter: `{port}`, `{snapshot_id}` or `{pool_name}`.
  std::string param;
  /// Proxy: the path after `/proxy/{port}/` (may be empty). Redirect: the
  /// raw target path to redirect to.
  std::string rest;
  /// 405: the value of the `Allow` header.
  std::string allow;
  /// Whether the path was under `/v1`.
  bool v1 = false;
};

/// Matches a method and a raw (not yet decoded) request path against the
/// route table of the lifecycle API, mounted at `/` and `/v1` (`/health`
/// only at `/`). Like Starlette: the path is percent-decoded before
/// matching, a path parameter matches one non-empty segment, a path that
/// matches with another method yields `method_not_allowed` and an unknown
/// path that would match after adding/removing a trailing slash yields
/// `redirect_slash`. Pure; no allocation beyond the result.
route match_route(std::string_view method, std::string_view raw_path);

/// Percent-decodes a URL path (`%xx` only; `+` stays `+`). Invalid escapes
/// are kept verbatim.
std::string decode_path(std::string_view raw);

/// Returns whether a (decoded) path skips the API-key check (§1.2): the
/// prefixes `/health`, `/docs`, `/redoc`, `/openapi.json`, and server-proxy
/// paths `^(/v1)?/sandboxes/[^/]+/proxy/\d+(/|$)` and
/// `^(/v1)?/route/[^/]+/\d+(/|$)` without `..`, and signed proxy paths
/// `^(/v1)?/signed/[^/]+(/|$)`: the proxy checks its own credentials.
bool auth_exempt(std::string_view path);

} // namespace osb::http
