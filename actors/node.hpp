#pragma once

#include <caf/typed_event_based_actor.hpp>

#include <string>
#include <unordered_map>
#include <vector>

#include "actors/interfaces.hpp"

namespace osb {

struct node_state {
  static inline const char* name = "node";
  struct entry {
    sandbox_actor hdl;
    sandbox_view view;
  };
  /// Name of this node.
  std::string name_;
  /// Directory of this node's sandboxes with their last reported views:
  /// gets and lists are answered from here, never from the runtime.
  std::unordered_map<std::string, entry> directory;
  /// Host supervisors of this node.
  std::vector<supervisor_actor> supervisors;
  /// Round-robin cursor for placement.
  size_t next_supervisor = 0;
};

/// Implements the NODE actor.
/// @param name The node's name.
node_actor::behavior_type node(node_actor::stateful_pointer<node_state> self,
                               std::string name);

} // namespace osb
