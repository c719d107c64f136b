// Cluster membership and the SDKs' metrics events.

#include "http/api_routes.hpp"

#include "http/codec_response.hpp"

#include <vector>

namespace osb::http::detail {

void cluster_nodes(const api_state& st, exchange_ptr x, const route&,
                   const request&) {
  st.backend->members(
    x->ctx(), on_success<std::vector<member_info>>(
                x, [](exchange& x, std::vector<member_info> xs) {
                  finish(x, json_response(200, codec::encode_members(xs)));
                }));
}

void metrics_events(const api_state&, exchange_ptr x, const route&,
                    const request&) {
  // The JS SDK's telemetry: accepted and dropped.
  finish(*x, empty_response(204));
}

std::vector<route_binding> cluster_routes() {
  return {
    {route_id::cluster_nodes, cluster_nodes},
    {route_id::metrics_events, metrics_events},
  };
}

} // namespace osb::http::detail
