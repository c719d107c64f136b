#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/model.hpp"
#include "core/pool.hpp"
#include "core/sandbox_ops.hpp"
#include "http/server.hpp"

namespace osb::http {

/// Per-request context handed to the backend (for logging and tracing).
struct call_context {
  std::string request_id;
};

template <class T>
using reply = std::function<void(result<T>)>;

/// The lifecycle operations behind the REST API. Implemented by the actor
/// gateway (actors/gateway) and by fakes in router tests. Every call answers
/// exactly once, from any thread, without blocking the caller.
class lifecycle_backend {
public:
  virtual ~lifecycle_backend() = default;
  virtual void create(const call_context& ctx, sandbox_spec spec,
                      reply<sandbox_view> done)
    = 0;
  virtual void get(const call_context& ctx, const std::string& id,
                   reply<sandbox_view> done)
    = 0;
  virtual void list(const call_context& ctx, list_query q,
                    reply<list_page> done)
    = 0;
  /// Runs an operation on one sandbox (core/sandbox_ops.hpp: pause,
  /// resume, remove, renew, extend, patch, diagnose, ...) wherever the
  /// sandbox lives: the one generic forwarder of every sandbox operation.
  virtual void forward(const call_context& ctx, sandbox_request req,
                       reply<sandbox_answer> done)
    = 0;
  /// forward() for one operation `Op` on sandbox `id`, answered with the
  /// operation's own answer type.
  template <class Op>
  void call(const call_context& ctx, const std::string& id, Op op,
            reply<typename Op::answer> done) {
    using answer = typename Op::answer;
    forward(ctx, sandbox_request{id, ctx.request_id, sandbox_op{std::move(op)}},
            [done = std::move(done)](result<sandbox_answer> r) {
              if (!r.has_value())
                return done(result<answer>::fail(std::move(r.error)));
              auto x = std::get_if<answer>(&*r.value);
              if (x == nullptr)
                return done(result<answer>::fail(make_api_error(
                  ec::internal, "The sandbox answered with another type.")));
              done(result<answer>::ok(std::move(*x)));
            });
  }
  /// Like `get`, but a Pending sandbox answers once its container has
  /// started (bounded): endpoint lookups use it, because the SDKs ping right
  /// after and a ping before the start costs a 1 s TCP retransmit.
  virtual void get_started(const call_context& ctx, const std::string& id,
                           reply<sandbox_view> done) {
    get(ctx, id, std::move(done));
  }
  /// Readiness (`GET /ready`): "" when this node can serve (its runtime
  /// answers, its store is writable, its sandboxes are recovered and its
  /// cluster membership is complete), else why not. The default is ready.
  virtual void readiness(const call_context&, reply<std::string> done) {
    done(result<std::string>::ok(std::string{}));
  }
  /// Cluster membership: every node with its state and sandbox count.
  virtual void members(const call_context&,
                       reply<std::vector<member_info>> done) {
    done(result<std::vector<member_info>>::fail(
      make_api_error(ec::not_implemented, "Cluster membership is not "
                                          "available on this server.")));
  }
  /// Snapshots (`POST /sandboxes/{id}/snapshots`, `GET /snapshots[/{id}]`,
  /// `DELETE /snapshots/{id}`); `name` "" = unnamed.
  virtual void create_snapshot(const call_context&, const std::string&,
                               std::string, reply<snapshot_view> done) {
    done(result<snapshot_view>::fail(snapshots_unavailable()));
  }
  virtual void get_snapshot(const call_context&, const std::string&,
                            reply<snapshot_view> done) {
    done(result<snapshot_view>::fail(snapshots_unavailable()));
  }
  virtual void list_snapshots(const call_context&, snapshot_query,
                              reply<snapshot_page> done) {
    done(result<snapshot_page>::fail(snapshots_unavailable()));
  }
  virtual void delete_snapshot(const call_context&, const std::string&,
                               reply<unit> done) {
    done(result<unit>::fail(snapshots_unavailable()));
  }

  /// Pools (`POST/GET /pools`, `GET/PUT/DELETE /pools/{name}`,
  /// docs/pools.md); the string is the pool's name.
  virtual void create_pool(const call_context&, pool_record,
                           reply<pool_view> done) {
    done(result<pool_view>::fail(pools_unavailable()));
  }
  virtual void get_pool(const call_context&, const std::string&,
                        reply<pool_view> done) {
    done(result<pool_view>::fail(pools_unavailable()));
  }
  virtual void list_pools(const call_context&,
                          reply<std::vector<pool_view>> done) {
    done(result<std::vector<pool_view>>::fail(pools_unavailable()));
  }
  virtual void update_pool(const call_context&, const std::string&,
                           pool_capacity, reply<pool_view> done) {
    done(result<pool_view>::fail(pools_unavailable()));
  }
  virtual void delete_pool(const call_context&, const std::string&,
                           reply<unit> done) {
    done(result<unit>::fail(pools_unavailable()));
  }

private:
  static api_error pools_unavailable() {
    return api_error{ec::not_implemented,
                     "KUBERNETES::POOL_NOT_SUPPORTED",
                     "Pool management is not available on this server."};
  }

  static api_error snapshots_unavailable() {
    return make_api_error(ec::not_implemented,
                          "Snapshots are not available on this server.");
  }
};

/// Builds the request handler of the lifecycle API: request ids, CORS,
/// API-key check with its exemptions, routing at `/` and `/v1`, JSON codecs,
/// endpoint resolution and error envelopes. Every user-visible error is
/// logged once with the request id.
handler make_api_handler(std::shared_ptr<const node_config> cfg,
                         std::shared_ptr<lifecycle_backend> backend);

} // namespace osb::http
