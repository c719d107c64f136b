// Pools in a cluster, the NODE actor's part (docs/pools.md "Cluster"): the
// POOLS actor of each node keeps the pool records and its share of the
// members; the NODE actor carries records and counts to and from its peers
// and tells the POOLS actor who is up.

#include <algorithm>

#include "actors/node_detail.hpp"

namespace osb::node_detail {

namespace {

/// Sends `xs` to every up peer.
template <class... Ts>
void to_peers(self_ptr self, const Ts&... xs) {
  for (auto& [name, m] : self->state.members)
    if (m.up)
      self->send(m.hdl, xs...);
}

} // namespace

void pools_members_changed(self_ptr self) {
  auto& st = self->state;
  if (!st.pools)
    return;
  std::vector<std::string> up{self_name(self)};
  for (auto& [name, m] : st.members)
    if (m.up)
      up.push_back(name);
  std::sort(up.begin(), up.end());
  self->send(st.pools, atom::members_v, std::move(up));
}

void pools_joined(self_ptr self, const node_actor& peer) {
  auto& st = self->state;
  if (!st.pool_records_known.empty()) {
    pool_records all;
    for (auto& [name, r] : st.pool_records_known)
      all.push_back(r);
    self->send(peer, atom::replicate_v, std::move(all));
  }
  self->send(peer, atom::pool_load_v, self_name(self), st.pool_tallies_here);
  pools_members_changed(self);
}

void pools_changed_here(self_ptr self, pool_records xs) {
  for (auto& x : xs)
    merge_record(self->state.pool_records_known, x);
  // All of them (also those the cache had already): each peer keeps what
  // supersedes its own.
  to_peers(self, atom::replicate_v, xs);
}

void pools_from_peer(self_ptr self, pool_records xs) {
  pool_records newer;
  if (xs.empty()) // the POOLS actor was just wired: everything known
    for (auto& [name, r] : self->state.pool_records_known)
      newer.push_back(r);
  for (auto& x : xs)
    if (merge_record(self->state.pool_records_known, x))
      newer.push_back(std::move(x));
  if (!newer.empty() && self->state.pools)
    self->send(self->state.pools, atom::pool_rep_v, std::move(newer));
}

} // namespace osb::node_detail
