#pragma once

// Signed server-proxy URLs after OSEP-0011: a route token
// `{sandbox_id}-{port}-{expires_b36}-{signature}` that grants access to one
// port of one sandbox until `expires` (Unix seconds), signed with one of the
// `[ingress.secure_access]` keys. Our proxy carries it as the first path
// segment after `/signed/` (see docs/security.md).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"

namespace osb::net {

/// `x` in base 36, lower case, no leading zeros ("0" for 0).
std::string to_base36(uint64_t x);

/// Parses `expires_b36`: 1..13 characters of [0-9a-z], no leading zero
/// (except "0"), no overflow of 64 bits.
std::optional<uint64_t> parse_base36(std::string_view x);

/// The 9-character signature: the first 8 hex digits of
/// SHA-256(BE32(len(secret)) ‖ secret ‖ BE32(len(c)) ‖ c) with
/// c = "v1\nshort\n{id}\n{port}\n{expires_b36}\n", then `key_id`.
std::string sign_route(std::string_view secret, char key_id,
                       std::string_view sandbox_id, int port,
                       std::string_view expires_b36);

/// The parts of a route token, split from the right (ids contain `-`).
struct route_token {
  std::string sandbox_id;
  int port = 0;
  std::string expires_b36;
  uint64_t expires_s = 0;
  std::string signature;
};

/// Splits and checks the syntax of a route token; nullopt when malformed.
std::optional<route_token> parse_route_token(std::string_view token);

/// Mints the token for `port` of `sandbox_id` until `expires_s` with the
/// active key of `keys` (which must have one).
std::string mint_route_token(
  const node_config::ingress_section::secure_access_section& keys,
  std::string_view sandbox_id, int port, uint64_t expires_s);

/// Why a token does not grant access.
enum class route_check { ok, expired, bad_signature };

/// Verifies a parsed token at `now_s` against the configured keys (the
/// signature's last character names the key, so rotated keys keep
/// working while they are configured).
route_check verify_route_token(
  const route_token& t,
  const node_config::ingress_section::secure_access_section& keys,
  uint64_t now_s);

} // namespace osb::net
