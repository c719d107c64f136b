#pragma once

#include <caf/fwd.hpp>
#include <caf/io/basp/header.hpp>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace osb {

/// What a cluster peer may send, shared by every connection of a node.
struct basp_policy {
  /// Largest BASP payload; a header announcing more closes the connection
  /// before its payload is read or anything is allocated for it.
  uint32_t max_payload = 64u << 20;
  /// Deepest nesting of messages and sequences inside a payload (CAF's
  /// deserializer recurses once per level).
  int max_depth = 32;
  /// Element types a message may carry: ours (registered by
  /// system_config) and the CAF builtins the cluster protocol uses.
  std::set<std::string> types;

  /// Builds the policy of `sys`: every type registered by name except
  /// streams, plus the builtins of CAF's own traffic and errors.
  static std::shared_ptr<const basp_policy> make(caf::actor_system& sys,
                                                 uint32_t max_payload);
};

/// Checks the BASP frames of one connection before CAF's BASP broker sees
/// them: the header's payload length against the bound, the order of the
/// handshake, and each payload by deserializing it once with every length
/// prefix checked against the bytes left and the nesting bounded (CAF 0.17
/// resizes a byte vector to an unchecked prefix, recurses without limit and
/// instantiates any registered type). A refused frame closes the connection.
class basp_guard {
public:
  /// @param accepted True for connections a peer opened to us: their first
  ///        frame must be the client handshake, otherwise the server's.
  basp_guard(caf::actor_system& sys, std::shared_ptr<const basp_policy> policy,
             bool accepted);

  /// Checks a header (`caf::io::basp::header_size` bytes); returns why the
  /// connection must close, or an empty string.
  std::string on_header(const std::vector<char>& bytes);

  /// Checks the payload announced by the last header.
  std::string on_payload(const std::vector<char>& bytes);

  /// True after a header whose payload has not arrived yet.
  bool awaiting_payload() const {
    return awaiting_payload_;
  }

  /// Payload length announced by the last header.
  uint32_t payload_len() const {
    return hdr_.payload_len;
  }

  /// The bound on payloads.
  uint32_t max_payload() const {
    return policy_->max_payload;
  }

private:
  caf::actor_system& sys_;
  std::shared_ptr<const basp_policy> policy_;
  bool accepted_;
  bool handshaken_ = false;
  bool awaiting_payload_ = false;
  caf::io::basp::header hdr_;
};

} // namespace osb
