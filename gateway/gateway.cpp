#include "gateway/gateway.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "actors/error.hpp"

namespace osb::gateway {

/// One call, run inside the GATEWAY actor (local only): it sends the
/// request, whose answer completes the HTTP reply.
struct job {
  std::function<void(caf::event_based_actor*)> run;
};

} // namespace osb::gateway

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(osb::gateway::job)

namespace osb::gateway {

namespace {

/// The GATEWAY actor: runs jobs. Requests to the local NODE actor wait
/// without a timer: CAF 0.17 cannot cancel a request's timeout, so every
/// timed request kept ~200 bytes in the clock until it expired (gigabytes
/// at 40k req/s). The node always answers: its own work is bounded by the
/// runtime, store and peer timeouts.
caf::behavior gateway_actor(caf::event_based_actor* self) {
  return {
    [self](job& j) { j.run(self); },
  };
}

/// `In` as the reply's `Out` (e.g. a view where the API answers nothing).
template <class Out, class In>
Out as(In& x) {
  if constexpr (std::is_same_v<Out, unit>)
    return unit{};
  else
    return std::move(x);
}

class backend : public http::lifecycle_backend {
public:
  backend(caf::actor gw, node_actor node, std::vector<readiness_check> checks)
    : gw_(std::move(gw)),
      node_(std::move(node)),
      checks_(std::make_shared<std::vector<readiness_check>>(
        std::move(checks))) {
    // nop
  }

  void readiness(const http::call_context&,
                 http::reply<std::string> done) override {
    // The runtime and the store first: a node whose Docker does not answer
    // never finishes recovering either, and the runtime is the cause an
    // operator can act on.
    run_checks(checks_, 0, done, [gw = gw_, node = node_, done] {
      send_to(gw, node, done, {}, atom::ready_v);
    });
  }

  void create(const http::call_context& ctx, sandbox_spec spec,
              http::reply<sandbox_view> done) override {
    ask<sandbox_view>(std::move(done), {}, atom::create_v, std::move(spec),
                      ctx.request_id);
  }

  void get(const http::call_context&, const std::string& id,
           http::reply<sandbox_view> done) override {
    ask<sandbox_view>(std::move(done), id, atom::get_v, id);
  }

  void list(const http::call_context&, list_query q,
            http::reply<list_page> done) override {
    ask<list_page>(std::move(done), {}, atom::list_v, std::move(q));
  }

  // Every operation on one sandbox: one message, whatever the operation.
  void forward(const http::call_context&, sandbox_request req,
               http::reply<sandbox_answer> done) override {
    auto id = req.id;
    ask<sandbox_answer>(std::move(done), std::move(id), atom::call_v,
                        std::move(req));
  }

  void get_started(const http::call_context&, const std::string& id,
                   http::reply<sandbox_view> done) override {
    ask<sandbox_view>(std::move(done), id, atom::started_v, id);
  }

  void members(const http::call_context&,
               http::reply<std::vector<member_info>> done) override {
    ask<member_infos>(std::move(done), {}, atom::members_v);
  }

  void create_snapshot(const http::call_context& ctx, const std::string& id,
                       std::string name,
                       http::reply<snapshot_view> done) override {
    ask<snapshot_view>(std::move(done), id, atom::snapshot_v, id,
                       std::move(name), ctx.request_id);
  }

  // Snapshot ids are not sandbox ids: no id for the error translation.

  void get_snapshot(const http::call_context&, const std::string& id,
                    http::reply<snapshot_view> done) override {
    ask<snapshot_view>(std::move(done), {}, atom::snap_get_v, id);
  }

  void list_snapshots(const http::call_context&, snapshot_query q,
                      http::reply<snapshot_page> done) override {
    ask<snapshot_page>(std::move(done), {}, atom::snap_list_v, std::move(q));
  }

  void delete_snapshot(const http::call_context& ctx, const std::string& id,
                       http::reply<unit> done) override {
    ask<bool>(std::move(done), {}, atom::snap_del_v, id, ctx.request_id);
  }

  // Pool names are not sandbox ids: no id for the error translation.

  void create_pool(const http::call_context& ctx, pool_record x,
                   http::reply<pool_view> done) override {
    ask<pool_view>(std::move(done), {}, atom::pool_new_v, std::move(x),
                   ctx.request_id);
  }

  void get_pool(const http::call_context&, const std::string& name,
                http::reply<pool_view> done) override {
    ask<pool_view>(std::move(done), {}, atom::pool_get_v, name);
  }

  void list_pools(const http::call_context&,
                  http::reply<std::vector<pool_view>> done) override {
    ask<pool_views>(std::move(done), {}, atom::pool_list_v);
  }

  void update_pool(const http::call_context& ctx, const std::string& name,
                   pool_capacity cap, http::reply<pool_view> done) override {
    ask<pool_view>(std::move(done), {}, atom::pool_put_v, name, cap,
                   ctx.request_id);
  }

  void delete_pool(const http::call_context& ctx, const std::string& name,
                   http::reply<unit> done) override {
    ask<bool>(std::move(done), {}, atom::pool_del_v, name, ctx.request_id);
  }

private:
  /// Runs `(*checks)[i..]` one after the other; the first reason ends it,
  /// else `then` runs.
  static void run_checks(std::shared_ptr<std::vector<readiness_check>> checks,
                         size_t i, http::reply<std::string> done,
                         std::function<void()> then) {
    if (i == checks->size())
      return then();
    auto& check = (*checks)[i];
    check([checks, i, done, then](std::string why) {
      if (!why.empty())
        return done(result<std::string>::ok(std::move(why)));
      run_checks(checks, i + 1, done, then);
    });
  }

  /// The one forwarder: sends `xs...` to the NODE actor from inside the
  /// GATEWAY actor and completes `done` with the answer (`In`, the node's
  /// result type) or the error as the API shows it (`id` names the sandbox
  /// of a "not found").
  template <class In, class Out, class... Ts>
  void ask(http::reply<Out> done, std::string id, Ts... xs) {
    send_to<In>(gw_, node_, std::move(done), std::move(id), std::move(xs)...);
  }

  /// ask() without the backend (for continuations that may outlive it).
  template <class In = std::string, class Out = std::string, class... Ts>
  static void send_to(const caf::actor& gw, const node_actor& node,
                      http::reply<Out> done, std::string id, Ts... xs) {
    auto args = std::make_tuple(std::move(xs)...);
    caf::anon_send(gw, job{[node, done = std::move(done),
                             id = std::move(id), args = std::move(args)](
                              caf::event_based_actor* self) mutable {
      auto send = [&](auto&... x) {
        return self->request(node, caf::infinite, std::move(x)...);
      };
      std::apply(send, args).then(
        [done](In& x) { done(result<Out>::ok(as<Out>(x))); },
        [done, id](caf::error& err) {
          done(result<Out>::fail(to_api_error(err, id)));
        });
    }});
  }

  caf::actor gw_;
  node_actor node_;
  std::shared_ptr<std::vector<readiness_check>> checks_;
};

} // namespace

running_gateway start(caf::actor_system& sys, node_actor node,
                      std::vector<readiness_check> checks) {
  running_gateway result;
  result.actor = sys.spawn(gateway_actor);
  result.backend = std::make_shared<backend>(result.actor, std::move(node),
                                             std::move(checks));
  return result;
}

} // namespace osb::gateway
