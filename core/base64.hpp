#pragma once

// Base64 (RFC 4648) in both alphabets, header-only.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace osb {

/// URL-safe base64 (`-`, `_`) with `=` padding.
inline std::string base64url_encode(std::string_view x) {
  static constexpr char alphabet[]
    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string result;
  result.reserve((x.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t j) {
    return static_cast<uint32_t>(static_cast<unsigned char>(x[j]));
  };
  for (; i + 2 < x.size(); i += 3) {
    auto n = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    result += alphabet[(n >> 18) & 63];
    result += alphabet[(n >> 12) & 63];
    result += alphabet[(n >> 6) & 63];
    result += alphabet[n & 63];
  }
  if (auto rest = x.size() - i; rest > 0) {
    auto n = byte(i) << 16;
    if (rest == 2)
      n |= byte(i + 1) << 8;
    result += alphabet[(n >> 18) & 63];
    result += alphabet[(n >> 12) & 63];
    result += rest == 2 ? alphabet[(n >> 6) & 63] : '=';
    result += '=';
  }
  return result;
}

/// Decodes standard or URL-safe base64, padded or not (Python's lenient
/// `b64decode` after re-padding, as the original's config does); nullopt on
/// any other character or an impossible length.
inline std::optional<std::string> base64_decode(std::string_view x) {
  while (!x.empty() && x.back() == '=')
    x.remove_suffix(1);
  if (x.size() % 4 == 1)
    return std::nullopt;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z')
      return c - 'A';
    if (c >= 'a' && c <= 'z')
      return c - 'a' + 26;
    if (c >= '0' && c <= '9')
      return c - '0' + 52;
    if (c == '+' || c == '-')
      return 62;
    if (c == '/' || c == '_')
      return 63;
    return -1;
  };
  std::string result;
  result.reserve(x.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : x) {
    auto v = value(c);
    if (v < 0)
      return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      result += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return result;
}

} // namespace osb
