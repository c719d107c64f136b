// Membership of the NODE actor: connecting to peers and joining them,
// refusing a second process under a member's name, and knowing when the
// node has joined everyone it should know (until then it cannot tell a
// missing sandbox from one of a peer not joined yet).

#include <caf/actor_cast.hpp>

#include "actors/connector.hpp"
#include "actors/error.hpp"
#include "actors/node_detail.hpp"
#include "core/ids.hpp"
#include "core/spec_json.hpp"
#include "core/time.hpp"
#include "base/log.hpp"

namespace osb::node_detail {

namespace {

constexpr const char* component = "node";
constexpr auto join_timeout = std::chrono::seconds(5);
constexpr auto connect_timeout = std::chrono::seconds(15);

/// Enough of an incarnation to tell two apart in a log line.
std::string short_id(const std::string& incarnation) {
  return incarnation.empty() ? "unknown" : incarnation.substr(0, 8);
}

std::string joined(const std::vector<std::string>& xs) {
  std::string result;
  for (auto& x : xs)
    result += (result.empty() ? "" : ", ") + x;
  return result;
}

/// Why `info` cannot be a member under its name: it is this node's name,
/// or a live member of that name is another process (incarnation).
caf::error name_conflict(self_ptr self, const node_info& info) {
  auto& st = self->state;
  if (info.name == self_name(self))
    return make_error(ec::cluster_name_taken,
                      "Node name '" + info.name + "' is taken by the node at "
                        + st.init.self.address + " (incarnation "
                        + short_id(st.init.self.incarnation)
                        + "); a second process with this name is refused.");
  auto i = st.members.find(info.name);
  if (i != st.members.end() && i->second.up
      && i->second.info.incarnation != info.incarnation)
    return make_error(ec::cluster_name_taken,
                      "Node name '" + info.name
                        + "' is taken by a live member of the cluster (at "
                        + i->second.info.address + ", incarnation "
                        + short_id(i->second.info.incarnation)
                        + "); a second process with this name is refused.");
  return caf::none;
}

/// Logs a refused process once (it retries every reconnect interval).
void log_refusal(self_ptr self, const node_info& info,
                 const caf::error& err) {
  if (!self->state.refused.insert(info.name + "/" + info.incarnation).second)
    return;
  OSB_ERROR(component, "", "",
            "node " << self_name(self) << " refuses the node '" << info.name
                    << "' at " << info.address << " (incarnation "
                    << short_id(info.incarnation)
                    << "): " << to_api_error(err).message);
}

void add_member(self_ptr self, const node_info& info, node_actor hdl,
                sandbox_views views) {
  auto& st = self->state;
  auto& m = st.members[info.name];
  auto was_up = m.up;
  auto restarted = !m.info.incarnation.empty()
                   && m.info.incarnation != info.incarnation;
  if (restarted)
    OSB_INFO(component, "", "",
             "node " << self_name(self) << " sees peer " << info.name
                     << " restarted (incarnation "
                     << short_id(m.info.incarnation) << " -> "
                     << short_id(info.incarnation) << ")");
  m.info = info;
  m.hdl = std::move(hdl);
  m.up = true;
  m.joined = true;
  m.since_us = codec::now_us();
  self->monitor(m.hdl);
  replace_owned(self, info.name, std::move(views));
  OSB_INFO(component, "", "",
           "node " << self_name(self) << (was_up ? " refreshed" : " joined")
                   << " peer " << info.name << " at " << info.address
                   << " (" << st.num_owned[info.name] << " sandboxes)");
  pools_joined(self, m.hdl);
  check_membership(self);
}

} // namespace

void join_peer(self_ptr self, const std::string& address, node_actor peer) {
  auto& st = self->state;
  // Watch the connection while the join is under way (see the down
  // handler): the answer of a lost join never comes.
  st.joining[peer.address()] = address;
  self->monitor(peer);
  /// False when the down handler gave up on this join already.
  auto current = [self, peer] {
    return self->state.joining.erase(peer.address()) > 0;
  };
  self->request(peer, join_timeout, atom::join_v, st.init.self,
                local_views(self))
    .then(
      [self, address, peer, current](node_info& info, sandbox_views& views,
                                     node_infos& known) {
        if (current())
          self->state.connecting.erase(address);
        // The answer comes from whoever listens at the address: never let
        // it replace a live member of the same name.
        if (auto err = name_conflict(self, info)) {
          log_refusal(self, info, err);
          return;
        }
        self->state.reached[address] = info.name;
        // Peers of the peer: kept as addresses to reach, also those that
        // are down right now (they are retried on every tick, and this
        // node waits for them before it calls a sandbox missing, so they
        // count before add_member checks the membership).
        std::vector<std::string> others;
        for (auto& other : known)
          if (other.name != self_name(self)
              && self->state.members.count(other.name) == 0) {
            self->state.seeds.insert(other.address);
            others.push_back(other.address);
          }
        add_member(self, info, peer, std::move(views));
        // Sandboxes registered while the join was under way (e.g. recovered
        // right after a restart) missed both the snapshot and the
        // broadcasts: send the peer everything once more.
        for (auto& v : local_views(self))
          self->send(peer, atom::replicate_v, v);
        for (auto& a : others)
          connect_to(self, a);
      },
      [self, address, current](caf::error& err) {
        if (!current())
          return; // lost the connection meanwhile, retried already
        self->state.connecting.erase(address);
        OSB_ERROR(component, "", "",
                  "node " << self_name(self) << " cannot join the peer at "
                          << address << ": " << to_api_error(err).message);
      });
}

void connect_to(self_ptr self, const std::string& address) {
  auto& st = self->state;
  if (!st.init.clustered || st.init.reconnect_interval.count() == 0
      || address.empty() || address == st.init.self.address
      || st.connecting.count(address) || st.self_addresses.count(address))
    return;
  st.connecting[address] = true;
  auto attempt = self->spawn<caf::detached>(connector, st.init.transport);
  self->request(attempt, connect_timeout, atom::connect_v, address)
    .then(
      [self, address](node_actor& peer) {
        if (peer.node() == self->node()) {
          // Another address of this very node (e.g. a seed list that names
          // every node): nothing to join, nothing to wait for.
          self->state.connecting.erase(address);
          self->state.self_addresses.insert(address);
          check_membership(self);
          return;
        }
        join_peer(self, address, peer);
      },
      [self, address](caf::error& err) {
        self->state.connecting.erase(address);
        auto e = to_api_error(err);
        if (e.code == "CLUSTER::INCOMPATIBLE_NODE")
          OSB_ERROR(component, "", "", "node refuses " << e.message);
        else
          OSB_DEBUG(component, "", "",
                    "node cannot reach " << address << ": " << e.message);
      });
}

void reconnect(self_ptr self) {
  auto& st = self->state;
  std::set<std::string> live;
  for (auto& [name, m] : st.members)
    if (m.up)
      live.insert(m.info.address);
  for (auto& [name, m] : st.members)
    if (!m.up)
      connect_to(self, m.info.address);
  for (auto& a : st.seeds) {
    auto i = st.reached.find(a);
    auto up = i != st.reached.end() && st.members[i->second].up;
    if (!up && live.count(a) == 0)
      connect_to(self, a);
  }
}

caf::result<node_info, sandbox_views, node_infos>
accept_join(self_ptr self, node_info& info, sandbox_views& views) {
  auto& st = self->state;
  if (info.version != st.init.self.version) {
    OSB_ERROR(component, "", "",
              "node " << self_name(self) << " refuses peer " << info.name
                      << " at " << info.address << ": it speaks "
                      << info.version << ", this node speaks "
                      << st.init.self.version);
    return make_error(ec::cluster_incompatible,
                      "Node '" + self_name(self) + "' speaks "
                        + st.init.self.version + ", node '" + info.name
                        + "' speaks " + info.version
                        + "; incompatible versions do not join.");
  }
  if (auto err = name_conflict(self, info)) {
    log_refusal(self, info, err);
    return err;
  }
  auto peer = caf::actor_cast<node_actor>(self->current_sender());
  add_member(self, info, peer, std::move(views));
  node_infos known;
  for (auto& [name, m] : st.members)
    if (name != info.name)
      known.push_back(m.info);
  return {st.init.self, local_views(self), std::move(known)};
}

std::vector<std::string> missing_peers(self_ptr self) {
  auto& st = self->state;
  std::vector<std::string> result;
  for (auto& a : st.seeds) {
    if (a == st.init.self.address || st.self_addresses.count(a) > 0)
      continue;
    // Satisfied when a member that joined during this process's life
    // answered there or advertises it (it may have joined us first).
    std::string name;
    bool done = false;
    if (auto i = st.reached.find(a); i != st.reached.end()) {
      name = i->second;
      auto m = st.members.find(name);
      done = m != st.members.end() && m->second.joined;
    }
    for (auto& [n, m] : st.members) {
      if (done || m.info.address != a)
        continue;
      done = m.joined;
      if (name.empty())
        name = n;
    }
    if (!done)
      result.push_back(name.empty() ? a : a + " (" + name + ")");
  }
  return result;
}

void check_membership(self_ptr self) {
  auto& st = self->state;
  if (st.settled || !missing_peers(self).empty())
    return;
  st.settled = true;
  size_t num_joined = 0;
  for (auto& [name, m] : st.members)
    num_joined += m.joined ? 1 : 0;
  OSB_INFO(component, "", "",
           "node " << self_name(self) << " joined all " << num_joined
                   << " peers it knows of: cluster membership complete");
}

void give_up(self_ptr self) {
  auto& st = self->state;
  if (st.settled)
    return;
  auto missing = missing_peers(self);
  st.settled = true;
  OSB_WARN(component, "", "",
           "node " << self_name(self) << " stops waiting for "
                   << joined(missing) << " after "
                   << st.init.seed_timeout.count() / 1000
                   << " s (cluster.seed_timeout_seconds): sandboxes it does "
                      "not know answer 404 from now on and lists are no "
                      "longer marked partial");
}

std::string incomplete_reason(self_ptr self) {
  auto& st = self->state;
  if (!st.settled) {
    auto missing = missing_peers(self);
    return missing.empty() ? std::string{"cluster membership not complete"}
                           : "cluster membership not complete: waiting for "
                               + joined(missing);
  }
  if (!st.recovering.empty())
    return "node '" + self_name(self)
           + "' is still recovering its sandboxes (Docker host "
           + joined({st.recovering.begin(), st.recovering.end()}) + ")";
  return {};
}

caf::error unknown_sandbox(self_ptr self, const std::string& id) {
  auto why = incomplete_reason(self);
  if (why.empty())
    return make_error(ec::sandbox_not_found, "Sandbox " + id + " not found.");
  return make_error(ec::cluster_membership_incomplete,
                    "Sandbox " + id + " is not known to node '"
                      + self_name(self) + "' yet (" + why
                      + "); retry shortly.");
}

} // namespace osb::node_detail
