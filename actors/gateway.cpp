#include "actors/gateway.hpp"

#include <caf/send.hpp>

#include "actors/error.hpp"

namespace osb {

namespace {

// Requests to the local NODE actor wait without a timer: CAF 0.17 cannot
// cancel a request's timeout, so every timed request kept ~200 bytes in the
// clock until it expired (gigabytes at 40k req/s). The node always answers:
// its own work is bounded by the runtime, store and peer timeouts.

/// Completes `cb` with the response of `req`, translating errors.
template <class T, class Request, class Callback>
void forward(Request req, Callback cb, std::string id) {
  req.then(
    [cb](T& x) { cb(result<T>::ok(std::move(x))); },
    [cb, id](caf::error& err) { cb(result<T>::fail(to_api_error(err, id))); });
}

template <class R, class Request, class Callback>
void forward_unit(Request req, Callback cb, std::string id) {
  req.then([cb](R&) { cb(result<unit>::ok(unit{})); },
           [cb, id](caf::error& err) {
             cb(result<unit>::fail(to_api_error(err, id)));
           });
}

class actor_backend : public http::lifecycle_backend {
public:
  explicit actor_backend(gateway_actor gw) : gw_(std::move(gw)) {
    // nop
  }

  void create(const http::call_context& ctx, sandbox_spec spec,
              http::reply<sandbox_view> done) override {
    caf::anon_send(gw_, atom::create_v, std::move(spec), ctx.request_id,
                   view_reply{std::move(done)});
  }

  void get(const http::call_context& ctx, const std::string& id,
           http::reply<sandbox_view> done) override {
    caf::anon_send(gw_, atom::get_v, id, ctx.request_id,
                   view_reply{std::move(done)});
  }

  void list(const http::call_context& ctx, list_query q,
            http::reply<list_page> done) override {
    caf::anon_send(gw_, atom::list_v, std::move(q), ctx.request_id,
                   page_reply{std::move(done)});
  }

  void remove(const http::call_context& ctx, const std::string& id,
              http::reply<std::string> done) override {
    caf::anon_send(gw_, atom::remove_v, id, ctx.request_id,
                   text_reply{std::move(done)});
  }

  void pause(const http::call_context& ctx, const std::string& id,
             http::reply<unit> done) override {
    caf::anon_send(gw_, atom::pause_v, id, ctx.request_id,
                   unit_reply{std::move(done)});
  }

  void resume(const http::call_context& ctx, const std::string& id,
              http::reply<unit> done) override {
    caf::anon_send(gw_, atom::resume_v, id, ctx.request_id,
                   unit_reply{std::move(done)});
  }

  void renew(const http::call_context& ctx, const std::string& id,
             int64_t expires_us, http::reply<int64_t> done) override {
    caf::anon_send(gw_, atom::renew_v, id, expires_us, ctx.request_id,
                   time_reply{std::move(done)});
  }

  void extend(const http::call_context& ctx, const std::string& id,
              int64_t at_least_us, http::reply<int64_t> done) override {
    caf::anon_send(gw_, atom::renew_v, id, at_least_us, true, ctx.request_id,
                   time_reply{std::move(done)});
  }

  void patch(const http::call_context& ctx, const std::string& id,
             metadata_patch p, http::reply<sandbox_view> done) override {
    caf::anon_send(gw_, atom::patch_v, id, std::move(p), ctx.request_id,
                   view_reply{std::move(done)});
  }

  void get_started(const http::call_context& ctx, const std::string& id,
                   http::reply<sandbox_view> done) override {
    caf::anon_send(gw_, atom::started_v, id, ctx.request_id,
                   view_reply{std::move(done)});
  }

  void members(const http::call_context& ctx,
               http::reply<std::vector<member_info>> done) override {
    caf::anon_send(gw_, atom::members_v, ctx.request_id,
                   members_reply{std::move(done)});
  }

  void diagnostics(const http::call_context& ctx, const std::string& id,
                   diagnostics_query q,
                   http::reply<std::string> done) override {
    caf::anon_send(gw_, atom::diagnose_v, id, std::move(q), ctx.request_id,
                   text_reply{std::move(done)});
  }

  void create_snapshot(const http::call_context& ctx, const std::string& id,
                       std::string name,
                       http::reply<snapshot_view> done) override {
    caf::anon_send(gw_, atom::snapshot_v, id, std::move(name), ctx.request_id,
                   snapshot_reply{std::move(done)});
  }

  void get_snapshot(const http::call_context& ctx, const std::string& id,
                    http::reply<snapshot_view> done) override {
    caf::anon_send(gw_, atom::snap_get_v, id, ctx.request_id,
                   snapshot_reply{std::move(done)});
  }

  void list_snapshots(const http::call_context& ctx, snapshot_query q,
                      http::reply<snapshot_page> done) override {
    caf::anon_send(gw_, atom::snap_list_v, std::move(q), ctx.request_id,
                   snapshot_page_reply{std::move(done)});
  }

  void delete_snapshot(const http::call_context& ctx, const std::string& id,
                       http::reply<unit> done) override {
    caf::anon_send(gw_, atom::snap_del_v, id, ctx.request_id,
                   unit_reply{std::move(done)});
  }

private:
  gateway_actor gw_;
};

} // namespace

gateway_actor::behavior_type gateway(gateway_actor::pointer self,
                                     node_actor node) {
  constexpr auto timeout = caf::infinite;
  return {
    [=](atom::create, sandbox_spec& spec, std::string& rid, view_reply& cb) {
      forward<sandbox_view>(self->request(node, timeout, atom::create_v,
                                          std::move(spec), rid),
                            std::move(cb), std::string{});
    },
    [=](atom::get, std::string& id, std::string&, view_reply& cb) {
      forward<sandbox_view>(self->request(node, timeout, atom::get_v, id),
                            std::move(cb), id);
    },
    [=](atom::list, list_query& q, std::string&, page_reply& cb) {
      forward<list_page>(self->request(node, timeout, atom::list_v,
                                       std::move(q)),
                         std::move(cb), std::string{});
    },
    [=](atom::remove, std::string& id, std::string& rid, text_reply& cb) {
      forward<std::string>(self->request(node, timeout, atom::remove_v, id,
                                         rid),
                           std::move(cb), id);
    },
    [=](atom::pause, std::string& id, std::string& rid, unit_reply& cb) {
      forward_unit<sandbox_view>(self->request(node, timeout, atom::pause_v, id, rid),
                   std::move(cb), id);
    },
    [=](atom::resume, std::string& id, std::string& rid, unit_reply& cb) {
      forward_unit<sandbox_view>(self->request(node, timeout, atom::resume_v, id, rid),
                   std::move(cb), id);
    },
    [=](atom::renew, std::string& id, int64_t expires_us, std::string& rid,
        time_reply& cb) {
      forward<int64_t>(self->request(node, timeout, atom::renew_v, id,
                                     expires_us, rid),
                       std::move(cb), id);
    },
    [=](atom::renew, std::string& id, int64_t at_least_us, bool tag,
        std::string& rid, time_reply& cb) {
      forward<int64_t>(self->request(node, timeout, atom::renew_v, id,
                                     at_least_us, tag, rid),
                       std::move(cb), id);
    },
    [=](atom::patch, std::string& id, metadata_patch& p, std::string& rid,
        view_reply& cb) {
      forward<sandbox_view>(self->request(node, timeout, atom::patch_v, id,
                                          std::move(p), rid),
                            std::move(cb), id);
    },
    [=](atom::started, std::string& id, std::string&, view_reply& cb) {
      forward<sandbox_view>(self->request(node, timeout, atom::started_v, id),
                            std::move(cb), id);
    },
    [=](atom::members, std::string&, members_reply& cb) {
      forward<member_infos>(self->request(node, timeout, atom::members_v),
                            std::move(cb), std::string{});
    },
    [=](atom::diagnose, std::string& id, diagnostics_query& q,
        std::string& rid, text_reply& cb) {
      forward<std::string>(self->request(node, timeout, atom::diagnose_v, id,
                                         std::move(q), rid),
                           std::move(cb), id);
    },
    [=](atom::snapshot, std::string& id, std::string& name, std::string& rid,
        snapshot_reply& cb) {
      forward<snapshot_view>(self->request(node, timeout, atom::snapshot_v, id,
                                           std::move(name), rid),
                             std::move(cb), id);
    },
    // Snapshot ids are not sandbox ids: no id for the error translation.
    [=](atom::snap_get, std::string& id, std::string&, snapshot_reply& cb) {
      forward<snapshot_view>(self->request(node, timeout, atom::snap_get_v,
                                           id),
                             std::move(cb), std::string{});
    },
    [=](atom::snap_list, snapshot_query& q, std::string&,
        snapshot_page_reply& cb) {
      forward<snapshot_page>(self->request(node, timeout, atom::snap_list_v,
                                           std::move(q)),
                             std::move(cb), std::string{});
    },
    [=](atom::snap_del, std::string& id, std::string& rid, unit_reply& cb) {
      forward_unit<bool>(self->request(node, timeout, atom::snap_del_v, id,
                                       rid),
                         std::move(cb), std::string{});
    },
  };
}

std::shared_ptr<http::lifecycle_backend> make_actor_backend(gateway_actor gw) {
  return std::make_shared<actor_backend>(std::move(gw));
}

} // namespace osb
