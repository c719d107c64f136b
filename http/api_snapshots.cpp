// The snapshot routes: create (from a sandbox), list, get, delete.

#include "http/api_routes.hpp"

#include "http/codec_request.hpp"
#include "http/codec_response.hpp"

#include <variant>

namespace osb::http::detail {

void create_snapshot(const api_state& st, exchange_ptr x, const route& rt,
                     const request& req) {
  auto name = codec::decode_snapshot_request(req.body);
  if (auto r = std::get_if<codec::rejection>(&name))
    return reject(*x, *r);
  st.backend->create_snapshot(
    x->ctx(), rt.sandbox_id, std::move(std::get<std::string>(name)),
    on_success<snapshot_view>(x, [](exchange& x, snapshot_view snap) {
      auto res = json_response(202, codec::encode_snapshot(snap));
      // Always with /v1, also when called at the root (§1.12).
      res.headers.emplace_back("Location", "/v1/snapshots/" + snap.id);
      finish(x, std::move(res));
    }));
}

void list_snapshots(const api_state& st, exchange_ptr x, const route&,
                    const request& req) {
  auto q = codec::decode_snapshot_query(req.query);
  if (auto r = std::get_if<codec::rejection>(&q))
    return reject(*x, *r);
  st.backend->list_snapshots(
    x->ctx(), std::move(std::get<snapshot_query>(q)),
    on_success<snapshot_page>(x, [](exchange& x, snapshot_page page) {
      finish(x, json_response(200, codec::encode_snapshot_list(page)));
    }));
}

void get_snapshot(const api_state& st, exchange_ptr x, const route& rt,
                  const request&) {
  st.backend->get_snapshot(
    x->ctx(), rt.param,
    on_success<snapshot_view>(x, [](exchange& x, snapshot_view snap) {
      finish(x, json_response(200, codec::encode_snapshot(snap)));
    }));
}

void delete_snapshot(const api_state& st, exchange_ptr x, const route& rt,
                     const request&) {
  st.backend->delete_snapshot(x->ctx(), rt.param,
                              on_success<unit>(x, [](exchange& x, unit) {
                                finish(x, empty_response(204));
                              }));
}

std::vector<route_binding> snapshot_routes() {
  return {
    {route_id::create_snapshot, create_snapshot},
    {route_id::list_snapshots, list_snapshots},
    {route_id::get_snapshot, get_snapshot},
    {route_id::delete_snapshot, delete_snapshot},
  };
}

} // namespace osb::http::detail
