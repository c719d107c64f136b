// The sandbox routes: create, list, get, delete, metadata patch, pause,
// resume, renew.

#include "http/api_routes.hpp"

#include "http/codec_pools.hpp"
#include "http/codec_request.hpp"
#include "http/codec_response.hpp"

#include <variant>

namespace osb::http::detail {

void create_sandbox(const api_state& st, exchange_ptr x, const route&,
                    const request& req) {
  auto spec = codec::decode_create(req.body, *st.cfg);
  if (auto r = std::get_if<codec::rejection>(&spec))
    return reject(*x, *r);
  if (auto e = codec::check_pool_claim(std::get<sandbox_spec>(spec)))
    return fail(*x, *e);
  st.backend->create(
    x->ctx(), std::move(std::get<sandbox_spec>(spec)),
    on_success<sandbox_view>(x, [](exchange& x, sandbox_view sbx) {
      x.sandbox_id = sbx.id;
      finish(x, json_response(202, codec::encode_create_response(sbx)));
    }));
}

void list_sandboxes(const api_state& st, exchange_ptr x, const route&,
                    const request& req) {
  auto q = codec::decode_list_query(req.query);
  if (auto r = std::get_if<codec::rejection>(&q))
    return reject(*x, *r);
  st.backend->list(
    x->ctx(), std::move(std::get<list_query>(q)),
    on_success<list_page>(x, [](exchange& x, list_page page) {
      auto res = json_response(200, codec::encode_list(page));
      // The node may not know every sandbox yet (docs/cluster.md).
      if (page.partial)
        res.headers.emplace_back("OpenSandbox-List-Partial", "true");
      finish(x, std::move(res));
    }));
}

void get_sandbox(const api_state& st, exchange_ptr x, const route& rt,
                 const request&) {
  st.backend->get(
    x->ctx(), rt.sandbox_id,
    on_success<sandbox_view>(x, [](exchange& x, sandbox_view sbx) {
      finish(x, json_response(200, codec::encode_sandbox(sbx)));
    }));
}

void delete_sandbox(const api_state& st, exchange_ptr x, const route& rt,
                    const request&) {
  // The proxy must not reach a deleted sandbox's ports.
  st.cache->erase(rt.sandbox_id);
  st.backend->call(
    x->ctx(), rt.sandbox_id, remove_op{},
    on_success<std::string>(x, [cache = st.cache](exchange& x,
                                                  std::string pending) {
      cache->erase(x.sandbox_id);
      if (pending.empty())
        return finish(x, empty_response(204));
      // Deleted durably; the containers go once the runtime allows.
      finish(x, json_response(202, codec::encode_deletion_pending(
                                     x.sandbox_id, pending)));
    }));
}

void patch_metadata(const api_state& st, exchange_ptr x, const route& rt,
                    const request& req) {
  auto patch = codec::decode_patch(req.body);
  if (auto r = std::get_if<codec::rejection>(&patch))
    return reject(*x, *r);
  st.backend->call(
    x->ctx(), rt.sandbox_id,
    patch_op{std::move(std::get<metadata_patch>(patch))},
    on_success<sandbox_view>(x, [](exchange& x, sandbox_view sbx) {
      finish(x, json_response(200, codec::encode_sandbox(sbx)));
    }));
}

// State changes drop the proxy's cached view, so that renew-on-access
// starts from the current state and expiry.

void pause_sandbox(const api_state& st, exchange_ptr x, const route& rt,
                   const request&) {
  st.backend->call(x->ctx(), rt.sandbox_id, pause_op{},
                   on_success<sandbox_view>(
                     x, [cache = st.cache](exchange& x, sandbox_view) {
                       cache->erase(x.sandbox_id);
                       finish(x, empty_response(202));
                     }));
}

void resume_sandbox(const api_state& st, exchange_ptr x, const route& rt,
                    const request&) {
  st.backend->call(x->ctx(), rt.sandbox_id, resume_op{},
                   on_success<sandbox_view>(
                     x, [cache = st.cache](exchange& x, sandbox_view) {
                       cache->erase(x.sandbox_id);
                       finish(x, empty_response(202));
                     }));
}

void renew_expiration(const api_state& st, exchange_ptr x, const route& rt,
                      const request& req) {
  auto at = codec::decode_renew(req.body);
  if (auto r = std::get_if<codec::rejection>(&at))
    return reject(*x, *r);
  // Existence, "in the future" and manual cleanup are checked by the
  // backend, in that order (§1.10).
  st.backend->call(
    x->ctx(), rt.sandbox_id, renew_op{std::get<int64_t>(at)},
    on_success<int64_t>(x, [cache = st.cache](exchange& x,
                                              int64_t expires_us) {
      cache->erase(x.sandbox_id);
      finish(x, json_response(200, codec::encode_renew(expires_us)));
    }));
}

std::vector<route_binding> sandbox_routes() {
  return {
    {route_id::create_sandbox, create_sandbox},
    {route_id::list_sandboxes, list_sandboxes},
    {route_id::get_sandbox, get_sandbox},
    {route_id::delete_sandbox, delete_sandbox},
    {route_id::patch_metadata, patch_metadata},
    {route_id::pause_sandbox, pause_sandbox},
    {route_id::resume_sandbox, resume_sandbox},
    {route_id::renew_expiration, renew_expiration},
  };
}

} // namespace osb::http::detail
