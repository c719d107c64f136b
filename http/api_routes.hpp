#pragma once

// Internal to the lifecycle API handler: one handler per route, by the file
// of its resource. http/api.cpp dispatches to them by route_id. Each
// decodes what its route takes (http/codec_request.hpp), calls the backend
// and encodes the answer (http/codec_response.hpp), or answers an error;
// either way `x` is answered exactly once.

#include "http/api_context.hpp"
#include "http/router.hpp"

namespace osb::http::detail {

// -- sandboxes (api_sandboxes.cpp) --------------------------------------------

void create_sandbox(const api_state& st, exchange_ptr x, const route& rt,
                    const request& req);
void list_sandboxes(const api_state& st, exchange_ptr x, const route& rt,
                    const request& req);
void get_sandbox(const api_state& st, exchange_ptr x, const route& rt,
                 const request& req);
void delete_sandbox(const api_state& st, exchange_ptr x, const route& rt,
                    const request& req);
void patch_metadata(const api_state& st, exchange_ptr x, const route& rt,
                    const request& req);
void pause_sandbox(const api_state& st, exchange_ptr x, const route& rt,
                   const request& req);
void resume_sandbox(const api_state& st, exchange_ptr x, const route& rt,
                    const request& req);
void renew_expiration(const api_state& st, exchange_ptr x, const route& rt,
                      const request& req);

// -- endpoints, signed URLs and the server proxy (api_endpoints.cpp) ----------

/// A port's endpoint: the sandbox's own address, this server's proxy
/// (`use_server_proxy`), or a signed URL of it (`expires`).
void get_endpoint(const api_state& st, exchange_ptr x, const route& rt,
                  const request& req);
/// The server proxy (`proxy` and `signed_proxy`): a forward_spec for the
/// server, or an error.
void proxy(const api_state& st, exchange_ptr x, const route& rt,
           const request& req);

// -- snapshots (api_snapshots.cpp) --------------------------------------------

void create_snapshot(const api_state& st, exchange_ptr x, const route& rt,
                     const request& req);
void list_snapshots(const api_state& st, exchange_ptr x, const route& rt,
                    const request& req);
void get_snapshot(const api_state& st, exchange_ptr x, const route& rt,
                  const request& req);
void delete_snapshot(const api_state& st, exchange_ptr x, const route& rt,
                     const request& req);

// -- diagnostics (api_diagnostics.cpp) ----------------------------------------

/// All four `diagnostics_*` routes.
void diagnostics(const api_state& st, exchange_ptr x, const route& rt,
                 const request& req);

// -- cluster and metrics (api_cluster.cpp) ------------------------------------

void cluster_nodes(const api_state& st, exchange_ptr x, const route& rt,
                   const request& req);
void metrics_events(const api_state& st, exchange_ptr x, const route& rt,
                    const request& req);

// -- pools (api_pools.cpp) ----------------------------------------------------

void create_pool(const api_state& st, exchange_ptr x, const route& rt,
                 const request& req);
void list_pools(const api_state& st, exchange_ptr x, const route& rt,
                const request& req);
void get_pool(const api_state& st, exchange_ptr x, const route& rt,
              const request& req);
void update_pool(const api_state& st, exchange_ptr x, const route& rt,
                 const request& req);
void delete_pool(const api_state& st, exchange_ptr x, const route& rt,
                 const request& req);

// -- operations (api_metrics.cpp) ---------------------------------------------

/// `GET /metrics`: the registry in Prometheus text format 0.0.4 (404 when
/// `[metrics] enabled = false`).
void metrics(const api_state& st, exchange_ptr x, const route& rt,
             const request& req);
/// `GET /ready`: 200 when the backend is ready, 503 with the reason.
void ready(const api_state& st, exchange_ptr x, const route& rt,
           const request& req);
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
