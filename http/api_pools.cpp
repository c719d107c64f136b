// The pool routes (docs/pools.md): create, list, get, update capacity,
// delete, with the seed's paths, bodies and codes.

#include "http/api_routes.hpp"

#include "http/codec_pools.hpp"

#include <variant>

namespace osb::http::detail {

void create_pool(const api_state& st, exchange_ptr x, const route&,
                 const request& req) {
  auto rec = codec::decode_create_pool(req.body, *st.cfg);
  if (auto r = std::get_if<codec::rejection>(&rec))
    return reject(*x, *r);
  st.backend->create_pool(
    x->ctx(), std::move(std::get<pool_record>(rec)),
    on_success<pool_view>(x, [](exchange& x, pool_view p) {
      finish(x, json_response(201, codec::encode_pool(p)));
    }));
}

void list_pools(const api_state& st, exchange_ptr x, const route&,
                const request&) {
  st.backend->list_pools(
    x->ctx(), on_success<std::vector<pool_view>>(
                x, [](exchange& x, std::vector<pool_view> xs) {
                  finish(x, json_response(200, codec::encode_pool_list(xs)));
                }));
}

void get_pool(const api_state& st, exchange_ptr x, const route& rt,
              const request&) {
  st.backend->get_pool(x->ctx(), rt.param,
                       on_success<pool_view>(x, [](exchange& x, pool_view p) {
                         finish(x, json_response(200, codec::encode_pool(p)));
                       }));
}

void update_pool(const api_state& st, exchange_ptr x, const route& rt,
                 const request& req) {
  auto cap = codec::decode_update_pool(req.body);
  if (auto r = std::get_if<codec::rejection>(&cap))
    return reject(*x, *r);
  st.backend->update_pool(
    x->ctx(), rt.param, std::get<pool_capacity>(cap),
    on_success<pool_view>(x, [](exchange& x, pool_view p) {
      finish(x, json_response(200, codec::encode_pool(p)));
    }));
}

void delete_pool(const api_state& st, exchange_ptr x, const route& rt,
                 const request&) {
  st.backend->delete_pool(x->ctx(), rt.param,
                          on_success<unit>(x, [](exchange& x, unit) {
                            finish(x, empty_response(204));
                          }));
}

std::vector<route_binding> pool_routes() {
  return {
    {route_id::create_pool, create_pool},
    {route_id::list_pools, list_pools},
    {route_id::get_pool, get_pool},
    {route_id::update_pool, update_pool},
    {route_id::delete_pool, delete_pool},
  };
}

} // namespace osb::http::detail
