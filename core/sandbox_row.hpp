#pragma once

// The durable record of one sandbox, as the store keeps it and the actors
// exchange it (core types only: see actors/atoms.hpp).

#include <cstdint>
#include <string>

namespace osb::store {

/// What a node persists about one sandbox: everything needed to bring it
/// back after `kill -9` (the spec to re-provision, renewed expiry, patched
/// metadata, reserved ports, provisioning phase).
struct sandbox_row {
  std::string id;
  std::string node;
  std::string spec_json;
  std::string metadata_json;
  /// "provisioning", "provisioned", "failed" or "deleting".
  std::string phase;
  std::string reason;
  std::string message;
  int64_t created_us = 0;
  int64_t expires_us = 0;
  int64_t last_transition_us = 0;
  uint16_t execd_port = 0;
  uint16_t http_port = 0;
  uint16_t egress_port = 0;
  /// Token of the egress sidecar; empty without a network policy.
  std::string egress_token;
  /// The sandbox's access token (execd, server proxy); empty for rows from
  /// before tokens existed.
  std::string access_token;
  /// Docker host (of this node) that runs the sandbox.
  std::string runtime_host;
};

} // namespace osb::store
