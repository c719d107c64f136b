#include "core/ids.hpp"

#include <cstdint>
#include <random>

#include <sys/random.h>

namespace osb::codec {

namespace {

std::mt19937_64& rng() {
  thread_local std::mt19937_64 gen = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64{seq};
  }();
  return gen;
}

/// 16 random bytes with the UUID version 4 and RFC 4122 variant bits.
std::string uuid4_hex() {
  auto hi = rng()();
  auto lo = rng()();
  hi = (hi & ~0xF000ULL) | 0x4000ULL;
  lo = (lo & ~(0xC0ULL << 56)) | (0x80ULL << 56);
  // By hand: one per request, and snprintf was the costliest part of it.
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[15 - i] = digits[(hi >> (4 * i)) & 0xF];
    out[31 - i] = digits[(lo >> (4 * i)) & 0xF];
  }
  return out;
}

} // namespace

std::string make_uuid() {
  auto h = uuid4_hex();
  return h.substr(0, 8) + '-' + h.substr(8, 4) + '-' + h.substr(12, 4) + '-'
         + h.substr(16, 4) + '-' + h.substr(20);
}

std::string make_request_id() {
  return uuid4_hex();
}

std::string make_token() {
  // A capability: drawn from the kernel's CSPRNG, not from the id generator.
  unsigned char bytes[24];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    auto n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0)
      got += static_cast<size_t>(n);
  }
  static constexpr char alphabet[]
    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string result;
  for (size_t i = 0; i < sizeof(bytes); i += 3) {
    uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    for (int shift = 18; shift >= 0; shift -= 6)
      result += alphabet[(v >> shift) & 63];
  }
  return result;
}

} // namespace osb::codec
