#include "actors/node.hpp"

#include "actors/error.hpp"
#include "core/codec.hpp"

namespace osb {

namespace {

using self_ptr = node_actor::stateful_pointer<node_state>;

caf::error not_found(const std::string& id) {
  return make_error(ec::sandbox_not_found, "Sandbox " + id + " not found.");
}

const node_state::entry* find(self_ptr self, const std::string& id) {
  auto i = self->state.directory.find(id);
  return i == self->state.directory.end() ? nullptr : &i->second;
}

} // namespace

node_actor::behavior_type node(node_actor::stateful_pointer<node_state> self,
                               std::string name) {
  self->state.name_ = std::move(name);
  return {
    [=](atom::create, sandbox_spec& spec,
        std::string& rid) -> caf::result<sandbox_view> {
      auto& st = self->state;
      if (st.supervisors.empty())
        return make_error(ec::runtime_unavailable,
                          "No container runtime is configured on this node.");
      auto& sup = st.supervisors[st.next_supervisor++ % st.supervisors.size()];
      return self->delegate(sup, atom::create_v, codec::make_uuid(),
                            std::move(spec), std::move(rid));
    },
    [=](atom::get, std::string& id) -> caf::result<sandbox_view> {
      if (auto e = find(self, id))
        return e->view;
      return not_found(id);
    },
    [=](atom::list, list_query& q) -> list_page {
      std::vector<const sandbox_view*> xs;
      xs.reserve(self->state.directory.size());
      for (auto& [id, e] : self->state.directory)
        if (matches(e.view, q))
          xs.push_back(&e.view);
      return paginate(std::move(xs), q);
    },
    [=](atom::remove, std::string& id,
        std::string& rid) -> caf::result<bool> {
      if (auto e = find(self, id))
        return self->delegate(e->hdl, atom::remove_v, std::move(rid));
      return not_found(id);
    },
    [=](atom::pause, std::string& id,
        std::string& rid) -> caf::result<sandbox_view> {
      if (auto e = find(self, id))
        return self->delegate(e->hdl, atom::pause_v, std::move(rid));
      return not_found(id);
    },
    [=](atom::resume, std::string& id,
        std::string& rid) -> caf::result<sandbox_view> {
      if (auto e = find(self, id))
        return self->delegate(e->hdl, atom::resume_v, std::move(rid));
      return not_found(id);
    },
    [=](atom::renew, std::string& id, int64_t expires_us,
        std::string& rid) -> caf::result<int64_t> {
      if (auto e = find(self, id))
        return self->delegate(e->hdl, atom::renew_v, expires_us,
                              std::move(rid));
      return not_found(id);
    },
    [=](atom::patch, std::string& id, metadata_patch& p,
        std::string& rid) -> caf::result<sandbox_view> {
      if (auto e = find(self, id))
        return self->delegate(e->hdl, atom::patch_v, std::move(p),
                              std::move(rid));
      return not_found(id);
    },
    [=](atom::put, sandbox_actor& hdl, sandbox_view& view) {
      auto id = view.id;
      self->state.directory[id] = node_state::entry{std::move(hdl),
                                                    std::move(view)};
    },
    [=](atom::update, sandbox_view& view) {
      auto i = self->state.directory.find(view.id);
      if (i != self->state.directory.end())
        i->second.view = std::move(view);
    },
    [=](atom::forget, std::string& id) { self->state.directory.erase(id); },
    [=](atom::put, supervisor_actor& sup) {
      self->state.supervisors.push_back(std::move(sup));
    },
  };
}

} // namespace osb
