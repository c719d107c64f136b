// The NODE actor's directory of the fleet's sandboxes: this node's own
// (registered by their actors, replicated to every peer) and its peers'
// (replicated by their owners), with the per-node counts placement uses.
// The ownership rules for Kubernetes replicas (docs/runtimes.md "The
// directory"): only an entry's owner drops it, a peer's claim on a sandbox
// this node runs is kept aside, and a node that gives up what another
// adopted takes the adopter's claim.

#include <caf/actor_cast.hpp>

#include "actors/node_detail.hpp"

namespace osb::node_detail {

void store_view(self_ptr self, sandbox_view view, sandbox_actor hdl) {
  auto& st = self->state;
  auto id = view.id;
  auto i = st.directory.find(id);
  if (i == st.directory.end()) {
    ++st.num_owned[view.node];
    if (view.node == self_name(self))
      ++st.num_on_host[view.runtime_host];
    st.directory.emplace(id, node_state::entry{std::move(hdl),
                                               std::move(view)});
    return;
  }
  if (i->second.view.node != view.node) {
    --st.num_owned[i->second.view.node];
    ++st.num_owned[view.node];
  }
  if (hdl)
    i->second.hdl = std::move(hdl);
  i->second.view = std::move(view);
}

node_state::entry* find_entry(self_ptr self, const std::string& id) {
  auto i = self->state.directory.find(id);
  return i == self->state.directory.end() ? nullptr : &i->second;
}

void erase_view(self_ptr self, const std::string& id) {
  auto& st = self->state;
  auto i = st.directory.find(id);
  if (i == st.directory.end())
    return;
  --st.num_owned[i->second.view.node];
  if (i->second.view.node == self_name(self))
    --st.num_on_host[i->second.view.runtime_host];
  st.directory.erase(i);
}

sandbox_views local_views(self_ptr self) {
  sandbox_views result;
  for (auto& [id, e] : self->state.directory)
    if (e.view.node == self_name(self))
      result.push_back(e.view);
  return result;
}

void replace_owned(self_ptr self, const std::string& owner,
                   sandbox_views views) {
  auto& dir = self->state.directory;
  for (auto i = dir.begin(); i != dir.end();) {
    if (i->second.view.node == owner) {
      --self->state.num_owned[owner];
      i = dir.erase(i);
    } else {
      ++i;
    }
  }
  for (auto& v : views) {
    // A sandbox this node runs is its own: a peer that still claims it
    // lost it to this node (Kubernetes adoption) and drops it soon.
    auto i = dir.find(v.id);
    if (i != dir.end() && i->second.view.node == self_name(self)) {
      self->state.contested[v.id] = std::move(v);
      continue;
    }
    store_view(self, std::move(v));
  }
}

void register_local(self_ptr self, sandbox_actor hdl, sandbox_view view) {
  if (view.endpoint_host.empty())
    view.endpoint_host = self->state.init.public_host;
  broadcast(self, atom::replicate_v, view);
  store_view(self, std::move(view), std::move(hdl));
}

void update_local(self_ptr self, sandbox_view view) {
  auto e = find_entry(self, view.id);
  if (e == nullptr)
    return;
  if (view.endpoint_host.empty())
    view.endpoint_host = self->state.init.public_host;
  broadcast(self, atom::replicate_v, view);
  e->view = std::move(view);
}

void forget_local(self_ptr self, const std::string& id) {
  auto e = find_entry(self, id);
  if (e == nullptr || e->view.node != self_name(self))
    return;
  self->state.contested.erase(id);
  erase_view(self, id);
  broadcast(self, atom::drop_v, id);
}

void forget_adopted(self_ptr self, const std::string& id) {
  auto e = find_entry(self, id);
  if (e == nullptr || e->view.node != self_name(self))
    return;
  erase_view(self, id);
  auto i = self->state.contested.find(id);
  if (i != self->state.contested.end()) {
    // The adopter's claim arrived while this node still ran it.
    store_view(self, std::move(i->second));
    self->state.contested.erase(i);
  }
  // No drop to the peers: they learnt the new owner from it (and a drop
  // from a non-owner is ignored anyway, see apply_drop).
}

void apply_replica(self_ptr self, sandbox_view view) {
  if (view.node == self_name(self))
    return;
  // As in replace_owned: never over a sandbox this node runs.
  if (auto e = find_entry(self, view.id);
      e != nullptr && e->view.node == self_name(self)) {
    self->state.contested[view.id] = std::move(view);
    return;
  }
  store_view(self, std::move(view));
}

void apply_drop(self_ptr self, const std::string& id) {
  auto e = find_entry(self, id);
  if (e == nullptr || e->view.node == self_name(self))
    return;
  // Only its owner drops an entry: a replica that lost a sandbox to
  // another (Kubernetes adoption) must not erase the new owner's.
  auto m = self->state.members.find(e->view.node);
  if (m != self->state.members.end()
      && m->second.hdl.address()
           != caf::actor_cast<caf::actor_addr>(self->current_sender()))
    return;
  erase_view(self, id);
}

} // namespace osb::node_detail
