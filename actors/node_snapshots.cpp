#include "actors/node_snapshots.hpp"

#include <caf/actor_cast.hpp>

#include "core/ids.hpp"

namespace osb::node_detail {

caf::error snapshot_not_found(const std::string& id) {
  return make_error(ec::snapshot_not_found, "Snapshot " + id + " not found");
}

bool is_snapshot_not_found(const caf::error& err) {
  return err.category() == osb_category()
         && err.code() == static_cast<uint8_t>(ec::snapshot_not_found);
}

caf::error snapshot_unavailable(const std::string& node,
                                const std::string& id) {
  return make_error(ec::node_unavailable,
                    "Snapshot " + id + " was not found on the reachable "
                      "nodes; node '" + node + "' is unavailable.");
}

namespace {

/// Creates a sandbox from a snapshot of this node on the Docker host that
/// holds its image (the SNAPSHOTS actor vouches that it is Ready and that
/// the image exists).
void restore_here(self_ptr self, caf::typed_response_promise<sandbox_view> rp,
                  sandbox_spec spec, std::string rid) {
  auto& keeper = self->state.snapshots;
  if (!keeper) {
    rp.deliver(snapshot_not_found(spec.snapshot_id));
    return;
  }
  auto sid = spec.snapshot_id;
  self->request(keeper, caf::infinite, atom::place_v, sid)
    .then(
      [self, rp, spec, rid](snapshot_view& x) mutable {
        auto sup = pick_supervisor(self, x.runtime_host);
        if (!sup) {
          rp.deliver(std::move(sup.error()));
          return;
        }
        spec.image = x.image;
        rp.delegate(*sup, atom::create_v, codec::make_uuid(), std::move(spec),
                    std::move(rid));
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
}

} // namespace

caf::result<sandbox_view> restore(self_ptr self, sandbox_spec spec,
                                  std::string rid, bool anywhere) {
  auto rp = self->make_response_promise<sandbox_view>();
  if (!anywhere) {
    restore_here(self, rp, std::move(spec), std::move(rid));
    return rp;
  }
  // Which node holds it: this one or a peer (through a self-request).
  auto sid = spec.snapshot_id;
  self
    ->request(caf::actor_cast<node_actor>(self), caf::infinite,
              atom::snap_get_v, sid)
    .then(
      [self, rp, spec, rid, sid](snapshot_view& x) mutable {
        if (x.node == self_name(self)) {
          restore_here(self, rp, std::move(spec), std::move(rid));
          return;
        }
        auto i = self->state.members.find(x.node);
        if (i == self->state.members.end() || !i->second.up) {
          rp.deliver(snapshot_unavailable(x.node, sid));
          return;
        }
        self
          ->request(i->second.hdl, remote_create_timeout, atom::place_v,
                    std::move(spec), std::move(rid))
          .then([rp](sandbox_view& v) mutable { rp.deliver(std::move(v)); },
                [rp, owner = x.node, sid](caf::error& err) mutable {
                  if (err == caf::sec::request_timeout
                      || err == caf::sec::request_receiver_down)
                    rp.deliver(snapshot_unavailable(owner, sid));
                  else
                    rp.deliver(std::move(err));
                });
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

} // namespace osb::node_detail
