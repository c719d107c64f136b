#pragma once

#include "net/egress/policy.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace osb::egress::dns {

/// Size of the fixed DNS header.
inline constexpr size_t header_size = 12;

/// Response codes used by the proxy.
inline constexpr uint8_t rcode_noerror = 0;
inline constexpr uint8_t rcode_formerr = 1;
inline constexpr uint8_t rcode_servfail = 2;
inline constexpr uint8_t rcode_nxdomain = 3;

/// Record types the proxy looks at.
inline constexpr uint16_t type_a = 1;
inline constexpr uint16_t type_aaaa = 28;

/// The fixed header of a DNS message.
struct header {
  uint16_t id = 0;
  uint16_t flags = 0;
  uint16_t qdcount = 0;
  uint16_t ancount = 0;
  uint16_t nscount = 0;
  uint16_t arcount = 0;

  bool is_response() const {
    return (flags & 0x8000) != 0;
  }

  uint8_t opcode() const {
    return static_cast<uint8_t>((flags >> 11) & 0x0f);
  }

  uint8_t rcode() const {
    return static_cast<uint8_t>(flags & 0x0f);
  }

  bool truncated() const {
    return (flags & 0x0200) != 0;
  }
};

/// The first question of a message.
struct question {
  /// Presentation form without the trailing dot, lower-cased; bytes outside
  /// [a-z0-9-_*] and dots inside labels are escaped as \DDD (so that a label
  /// "a.b" can never pass for two labels). The root is "".
  std::string name;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  /// Offset just past the question in the message.
  size_t end = 0;
};

/// An address from an A or AAAA answer.
struct answer_address {
  ip_address address;
  uint32_t ttl = 0;
};

/// Parses the header; nullopt when `size` < 12.
std::optional<header> parse_header(const uint8_t* data, size_t size);

/// Reads the (possibly compressed) name at `offset` and advances `offset`
/// past it. Pointers must point backwards, so loops are impossible; names
/// longer than 255 bytes are rejected. `out` may be null.
bool read_name(const uint8_t* data, size_t size, size_t& offset,
               std::string* out);

/// Parses the first question; nullopt for malformed messages or qdcount 0.
std::optional<question> parse_question(const uint8_t* data, size_t size);

/// Builds a reply to `query` with `rcode`, echoing the first question (no
/// answers). When the query has no parseable question the reply carries only
/// the header. Empty when the query is shorter than a header.
std::vector<uint8_t> make_reply(const uint8_t* query, size_t size,
                                uint8_t rcode);

/// Returns a copy of `response` cut down to header and first question with
/// the TC bit set (the client retries over TCP).
std::vector<uint8_t> make_truncated(const uint8_t* response, size_t size);

/// Extracts the A and AAAA records of the answer section (class IN) of a
/// response; nullopt when the message is malformed.
std::optional<std::vector<answer_address>>
extract_addresses(const uint8_t* data, size_t size);

/// Builds a query (RD set) for tests and tools.
std::vector<uint8_t> make_query(uint16_t id, const std::string& name,
                                uint16_t qtype);

/// Builds a NOERROR response to `query` with one A/AAAA answer per address
/// (all with `ttl`), using a compression pointer to the question name. For
/// tests and the integration test's DNS server.
std::vector<uint8_t> make_answer(const uint8_t* query, size_t size,
                                 const std::vector<ip_address>& addresses,
                                 uint32_t ttl);

} // namespace osb::egress::dns
