#include "actors/runtime_bridge.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "actors/error.hpp"

namespace osb {

namespace {

/// Posts `fn` to the actor: it runs there as a `completion`.
void post(const runtime_actor& hdl, std::function<void()> fn) {
  caf::anon_send(hdl, atom::internal_v, completion{std::move(fn)});
}

/// Returns a promise for the current request and a runtime callback that
/// fulfils it on the actor thread, converting the value with `f`.
template <class Out, class In, class F>
std::pair<caf::typed_response_promise<Out>, runtimes::callback<In>>
bridge(runtime_actor::pointer self, F f) {
  auto rp = self->make_response_promise<Out>();
  auto hdl = caf::actor_cast<runtime_actor>(self);
  runtimes::callback<In> cb = [hdl, rp, f](expected<In> x) mutable {
    post(hdl, [rp, x = std::move(x), f]() mutable {
      if (x)
        rp.deliver(f(x.value()));
      else
        rp.deliver(make_error(x.error()));
    });
  };
  return {rp, std::move(cb)};
}

template <class T>
T same(T& x) {
  return std::move(x);
}

bool done(unit&) {
  return true;
}

} // namespace

runtime_actor::behavior_type runtime_bridge(runtime_actor::pointer self,
                                            runtimes::runtime_ptr rt) {
  return {
    [=](atom::admit,
        sandbox_spec& spec) -> caf::result<runtimes::admission> {
      auto rp = self->make_response_promise<runtimes::admission>();
      auto hdl = caf::actor_cast<runtime_actor>(self);
      rt->admit(spec, [hdl, rp](expected<runtimes::admission> x) mutable {
        post(hdl, [rp, x = std::move(x)]() mutable {
          if (!x)
            rp.deliver(make_error(x.error()));
          else if (x->refused)
            rp.deliver(make_error(x->refused->code, x->refused->message));
          else
            rp.deliver(std::move(x.value()));
        });
      });
      return rp;
    },
    [=](atom::provision, runtimes::sandbox_instance& x,
        runtimes::provision_options& opts)
      -> caf::result<runtimes::provision_result> {
      auto rp = self->make_response_promise<runtimes::provision_result>();
      auto hdl = caf::actor_cast<runtime_actor>(self);
      rt->provision(x, std::move(opts),
                    [hdl, rp](runtimes::provision_result r) mutable {
                      post(hdl, [rp, r = std::move(r)]() mutable {
                        rp.deliver(std::move(r));
                      });
                    });
      return rp;
    },
    [=](atom::pause, runtimes::sandbox_instance& x) -> caf::result<bool> {
      auto [rp, cb] = bridge<bool, unit>(self, done);
      rt->pause(x, std::move(cb));
      return rp;
    },
    [=](atom::resume, runtimes::sandbox_instance& x) -> caf::result<bool> {
      auto [rp, cb] = bridge<bool, unit>(self, done);
      rt->resume(x, std::move(cb));
      return rp;
    },
    [=](atom::remove, runtimes::sandbox_instance& x,
        bool never_ran) -> caf::result<bool> {
      auto [rp, cb] = bridge<bool, unit>(self, done);
      rt->remove(x, never_ran, std::move(cb));
      return rp;
    },
    [=](atom::claim, runtimes::sandbox_instance& x,
        runtimes::claim_request& c) -> caf::result<bool> {
      auto [rp, cb] = bridge<bool, unit>(self, done);
      rt->claim(x, c, std::move(cb));
      return rp;
    },
    [=](atom::observe) -> caf::result<runtimes::observation> {
      using obs = runtimes::observation;
      auto [rp, cb] = bridge<obs, obs>(self, same<obs>);
      rt->observe(std::move(cb));
      return rp;
    },
    [=](atom::vol_list) -> caf::result<runtime_objects> {
      auto [rp, cb] = bridge<runtime_objects, runtime_objects>(
        self, same<runtime_objects>);
      rt->leftover_volumes(std::move(cb));
      return rp;
    },
    [=](atom::update, runtimes::sandbox_instance& x) -> caf::result<bool> {
      auto [rp, cb] = bridge<bool, unit>(self, done);
      rt->record(x, std::move(cb));
      return rp;
    },
    [=](atom::remove, runtimes::runtime_object& x) -> caf::result<bool> {
      auto [rp, cb] = bridge<bool, unit>(self, done);
      rt->remove_object(x, std::move(cb));
      return rp;
    },
    [=](atom::diagnose, runtimes::sandbox_instance& x, sandbox_view& now,
        diagnostics_query& q) -> caf::result<std::string> {
      auto [rp, cb] = bridge<std::string, std::string>(self, same<std::string>);
      rt->diagnose(x, now, q, std::move(cb));
      return rp;
    },
    [=](atom::image, std::string& snapshot_id) -> std::string {
      return rt->image_of(snapshot_id);
    },
    [=](atom::commit, std::string& sandbox_id,
        std::string& snapshot_id) -> caf::result<std::string> {
      auto [rp, cb] = bridge<std::string, std::string>(self, same<std::string>);
      rt->snapshot(sandbox_id, snapshot_id, std::move(cb));
      return rp;
    },
    [=](atom::img_exists, std::string& ref) -> caf::result<bool> {
      auto [rp, cb] = bridge<bool, bool>(self, same<bool>);
      rt->image_exists(ref, std::move(cb));
      return rp;
    },
    [=](atom::img_remove, std::string& ref) -> caf::result<bool> {
      auto [rp, cb] = bridge<bool, unit>(self, done);
      rt->remove_image(ref, std::move(cb));
      return rp;
    },
    [=](atom::img_list,
        std::vector<std::string>& incarnations) -> caf::result<snapshot_images> {
      auto [rp, cb] = bridge<snapshot_images, snapshot_images>(
        self, same<snapshot_images>);
      rt->snapshot_images(incarnations, std::move(cb));
      return rp;
    },
    [=](atom::internal, completion& c) { c.fn(); },
  };
}

} // namespace osb
