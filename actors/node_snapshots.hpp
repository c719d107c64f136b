#pragma once

// Internals of the NODE actor: finding a snapshot on this node or its peers,
// and restoring one on the node that holds its image (node_snapshots.cpp).

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/error.hpp"
#include "actors/node_detail.hpp"

namespace osb::node_detail {

/// 404 SNAPSHOT::NOT_FOUND.
caf::error snapshot_not_found(const std::string& id);

bool is_snapshot_not_found(const caf::error& err);

/// 503: not found on the reachable nodes while `node` is down.
caf::error snapshot_unavailable(const std::string& node,
                                const std::string& id);

/// Creates a sandbox from a snapshot on the node that holds the snapshot
/// (`anywhere`: look on the peers too).
caf::result<sandbox_view> restore(self_ptr self, sandbox_spec spec,
                                  std::string rid, bool anywhere);

/// Asks every peer in parallel (`ask(peer)` makes the request) for one
/// snapshot. Delivers the first success at once; otherwise, once all
/// answered: the first real error, else 503 naming a peer that could not
/// answer, else 503 while this node may not know every peer, else 404.
template <class T, class Ask>
void ask_peers(self_ptr self, caf::typed_response_promise<T> rp,
               const std::string& id, Ask ask) {
  struct fanout {
    caf::typed_response_promise<T> rp;
    size_t pending = 0;
    bool done = false;
    caf::error failed;
    std::string down;
    std::string incomplete;
  };
  auto f = std::make_shared<fanout>();
  f->rp = std::move(rp);
  f->incomplete = incomplete_reason(self);
  auto finish = [f, id, name = self_name(self)] {
    if (--f->pending > 0 || f->done)
      return;
    f->done = true;
    if (f->failed)
      f->rp.deliver(f->failed);
    else if (!f->down.empty())
      f->rp.deliver(snapshot_unavailable(f->down, id));
    else if (!f->incomplete.empty())
      f->rp.deliver(make_error(ec::cluster_membership_incomplete,
                               "Snapshot " + id + " is not known to node '"
                                 + name + "' yet (" + f->incomplete
                                 + "); retry shortly."));
    else
      f->rp.deliver(snapshot_not_found(id));
  };
  std::vector<std::pair<std::string, node_actor>> peers;
  for (auto& [name, m] : self->state.members) {
    if (m.up)
      peers.emplace_back(name, m.hdl);
    else
      f->down = name;
  }
  f->pending = peers.size() + 1; // + 1: this loop
  for (auto& [name, hdl] : peers)
    ask(hdl).then(
      [f, finish](T& x) {
        if (!f->done) {
          f->done = true;
          f->rp.deliver(std::move(x));
        }
        finish();
      },
      [f, finish, name = name](caf::error& err) {
        if (err == caf::sec::request_timeout
            || err == caf::sec::request_receiver_down)
          f->down = name;
        else if (!is_snapshot_not_found(err) && !f->failed)
          f->failed = std::move(err);
        finish();
      });
  finish();
}

/// Asks this node's SNAPSHOTS actor (`local()` makes the request), then the
/// peers (`remote(peer)`), for one snapshot.
template <class T, class Local, class Remote>
caf::result<T> ask_everywhere(self_ptr self, const std::string& id,
                              Local local, Remote remote) {
  auto rp = self->make_response_promise<T>();
  if (!self->state.snapshots) {
    ask_peers<T>(self, rp, id, remote);
    return rp;
  }
  local().then([rp](T& x) mutable { rp.deliver(std::move(x)); },
               [self, rp, id, remote](caf::error& err) mutable {
                 if (is_snapshot_not_found(err))
                   ask_peers<T>(self, rp, id, remote);
                 else
                   rp.deliver(std::move(err));
               });
  return rp;
}

} // namespace osb::node_detail
