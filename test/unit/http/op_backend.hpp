#pragma once

// A lifecycle backend for the API handler's tests with one virtual method
// per sandbox operation: forward(), the generic forwarder the handlers
// call, hands each operation (core/sandbox_ops.hpp) to its method, so that
// fakes record and answer per operation.

#include <string>
#include <utility>
#include <variant>

#include "http/api.hpp"

namespace osb::test {

using namespace osb::http;

class op_backend : public lifecycle_backend {
public:
  void forward(const call_context& ctx, sandbox_request req,
               reply<sandbox_answer> done) override {
    std::visit([&](auto& op) { dispatch(ctx, req.id, op, std::move(done)); },
               req.op);
  }

  virtual void remove(const call_context& ctx, const std::string& id,
                      reply<std::string> done)
    = 0;
  virtual void pause(const call_context& ctx, const std::string& id,
                     reply<sandbox_view> done)
    = 0;
  virtual void resume(const call_context& ctx, const std::string& id,
                      reply<sandbox_view> done)
    = 0;
  virtual void renew(const call_context& ctx, const std::string& id,
                     int64_t expires_us, reply<int64_t> done)
    = 0;
  /// Renew-on-access; renews unconditionally unless overridden.
  virtual void extend(const call_context& ctx, const std::string& id,
                      int64_t at_least_us, reply<int64_t> done) {
    renew(ctx, id, at_least_us, std::move(done));
  }
  virtual void patch(const call_context& ctx, const std::string& id,
                     metadata_patch p, reply<sandbox_view> done)
    = 0;
  virtual void diagnostics(const call_context&, const std::string&,
                           diagnostics_query, reply<std::string> done) {
    done(result<std::string>::fail(make_api_error(
      ec::not_implemented, "Diagnostics are not available on this server.")));
  }

private:
  /// A reply of one operation's answer type that completes `done`.
  template <class T>
  static reply<T> answer(reply<sandbox_answer> done) {
    return [done = std::move(done)](result<T> r) {
      if (!r.has_value())
        return done(result<sandbox_answer>::fail(std::move(r.error)));
      done(result<sandbox_answer>::ok(sandbox_answer{std::move(*r.value)}));
    };
  }

  /// Operations without a method here: 501.
  template <class Op>
  void dispatch(const call_context&, const std::string&, Op&,
                reply<sandbox_answer> done) {
    done(result<sandbox_answer>::fail(
      make_api_error(ec::not_implemented, "not implemented by this fake")));
  }
  void dispatch(const call_context& ctx, const std::string& id, pause_op&,
                reply<sandbox_answer> done) {
    pause(ctx, id, answer<sandbox_view>(std::move(done)));
  }
  void dispatch(const call_context& ctx, const std::string& id, resume_op&,
                reply<sandbox_answer> done) {
    resume(ctx, id, answer<sandbox_view>(std::move(done)));
  }
  void dispatch(const call_context& ctx, const std::string& id, remove_op&,
                reply<sandbox_answer> done) {
    remove(ctx, id, answer<std::string>(std::move(done)));
  }
  void dispatch(const call_context& ctx, const std::string& id, renew_op& op,
                reply<sandbox_answer> done) {
    renew(ctx, id, op.expires_us, answer<int64_t>(std::move(done)));
  }
  void dispatch(const call_context& ctx, const std::string& id,
                extend_op& op, reply<sandbox_answer> done) {
    extend(ctx, id, op.at_least_us, answer<int64_t>(std::move(done)));
  }
  void dispatch(const call_context& ctx, const std::string& id, patch_op& op,
                reply<sandbox_answer> done) {
    patch(ctx, id, std::move(op.patch), answer<sandbox_view>(std::move(done)));
  }
  void dispatch(const call_context& ctx, const std::string& id,
                diagnose_op& op, reply<sandbox_answer> done) {
    diagnostics(ctx, id, std::move(op.query),
                answer<std::string>(std::move(done)));
  }
};

} // namespace osb::test
