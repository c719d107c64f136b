#include "actors/runtime_bridge.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "actors/error.hpp"

namespace osb {

namespace {

/// Returns a promise for the current request and a runtime callback that
/// fulfils it on the actor thread, converting the value with `f`.
template <class Out, class In, class F>
std::pair<caf::typed_response_promise<Out>, runtimes::callback<In>>
bridge(runtime_actor::pointer self, F f) {
  auto rp = self->make_response_promise<Out>();
  auto hdl = caf::actor_cast<runtime_actor>(self);
  runtimes::callback<In> cb = [hdl, rp, f](expected<In> x) mutable {
    auto fn = [rp, x = std::move(x), f]() mutable {
      if (x)
        rp.deliver(f(x.value()));
      else
        rp.deliver(make_error(x.error()));
    };
    caf::anon_send(hdl, atom::internal_v, completion{std::move(fn)});
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
                                            runtimes::docker::engine_ptr rt) {
  return stamping_runtime_bridge(self, std::move(rt), {});
}

runtime_actor::behavior_type
stamping_runtime_bridge(runtime_actor::pointer self, runtimes::docker::engine_ptr rt,
                        string_map stamp) {
  return {
    [=](atom::create, runtimes::docker::container_spec& spec)
      -> caf::result<std::string> {
      auto [rp, cb] = bridge<std::string, std::string>(self, same<std::string>);
      for (auto& [k, v] : stamp)
        spec.labels[k] = v;
      rt->create(spec, std::move(cb));
      return rp;
    },
    [=](atom::start, std::string& id) -> caf::result<bool> {
      auto [rp, cb] = bridge<bool, unit>(self, done);
      rt->start(id, std::move(cb));
      return rp;
    },
    [=](atom::pause, std::string& id) -> caf::result<bool> {
      auto [rp, cb] = bridge<bool, unit>(self, done);
      rt->pause(id, std::move(cb));
      return rp;
    },
    [=](atom::resume, std::string& id) -> caf::result<bool> {
      auto [rp, cb] = bridge<bool, unit>(self, done);
      rt->unpause(id, std::move(cb));
      return rp;
    },
    [=](atom::remove, std::string& id) -> caf::result<bool> {
      auto [rp, cb] = bridge<bool, unit>(self, done);
      rt->remove(id, std::move(cb));
      return rp;
    },
    [=](atom::upload, std::string& id, std::string& path,
        shared_bytes& tar) -> caf::result<bool> {
      auto [rp, cb] = bridge<bool, unit>(self, done);
      rt->put_archive(id, path, tar, std::move(cb));
      return rp;
    },
    [=](atom::list, string_map& labels) -> caf::result<container_infos> {
      auto [rp, cb] = bridge<container_infos, container_infos>(
        self, same<container_infos>);
      rt->list(labels, std::move(cb));
      return rp;
    },
    [=](atom::info) -> caf::result<runtimes::docker::daemon_info> {
      auto [rp, cb] = bridge<runtimes::docker::daemon_info, runtimes::docker::daemon_info>(
        self, same<runtimes::docker::daemon_info>);
      rt->info(std::move(cb));
      return rp;
    },
    [=](atom::details,
        std::string& id) -> caf::result<runtimes::docker::container_details> {
      auto [rp, cb]
        = bridge<runtimes::docker::container_details, runtimes::docker::container_details>(
          self, same<runtimes::docker::container_details>);
      rt->details(id, std::move(cb));
      return rp;
    },
    [=](atom::logs, std::string& id,
        runtimes::docker::log_query& q) -> caf::result<std::string> {
      auto [rp, cb] = bridge<std::string, std::string>(self, same<std::string>);
      rt->logs(id, q, std::move(cb));
      return rp;
    },
    [=](atom::vol_inspect,
        std::string& name) -> caf::result<runtimes::docker::volume_info> {
      auto [rp, cb] = bridge<runtimes::docker::volume_info, runtimes::docker::volume_info>(
        self, same<runtimes::docker::volume_info>);
      rt->inspect_volume(name, std::move(cb));
      return rp;
    },
    [=](atom::vol_create, std::string& name,
        string_map& labels) -> caf::result<runtimes::docker::volume_info> {
      auto [rp, cb] = bridge<runtimes::docker::volume_info, runtimes::docker::volume_info>(
        self, same<runtimes::docker::volume_info>);
      for (auto& [k, v] : stamp)
        labels[k] = v;
      rt->create_volume(name, labels, std::move(cb));
      return rp;
    },
    [=](atom::vol_remove, std::string& name) -> caf::result<bool> {
      auto [rp, cb] = bridge<bool, unit>(self, done);
      rt->remove_volume(name, std::move(cb));
      return rp;
    },
    [=](atom::vol_list, string_map& labels) -> caf::result<volume_infos> {
      auto [rp, cb] = bridge<volume_infos, volume_infos>(self,
                                                          same<volume_infos>);
      rt->list_volumes(labels, std::move(cb));
      return rp;
    },
    [=](atom::commit, std::string& id, std::string& repo,
        std::string& tag) -> caf::result<std::string> {
      auto [rp, cb] = bridge<std::string, std::string>(self, same<std::string>);
      rt->commit(id, repo, tag, std::move(cb));
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
    [=](atom::img_list, std::string& repo,
        string_map& labels) -> caf::result<std::vector<std::string>> {
      using refs = std::vector<std::string>;
      auto [rp, cb] = bridge<refs, refs>(self, same<refs>);
      rt->list_images(repo, labels, std::move(cb));
      return rp;
    },
    [=](atom::internal, completion& c) { c.fn(); },
  };
}

} // namespace osb
