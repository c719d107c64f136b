#pragma once

// The digests execd needs without a crypto library (it links fully static
// and small): SHA-1 and Base64 for the WebSocket handshake (RFC 6455 §4.2.2),
// SHA-256 and HMAC-SHA256 for signing Jupyter messages.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace osb::execd {

/// SHA-1 of `data` (20 bytes).
std::array<uint8_t, 20> sha1(std::string_view data);

/// Incremental SHA-256.
class sha256 {
public:
  sha256();

  /// Adds bytes.
  void update(std::string_view data);

  /// The digest (32 bytes); the object must not be used afterwards.
  std::array<uint8_t, 32> finish();

private:
  void block(const uint8_t* p);

  uint32_t h_[8];
  uint8_t buf_[64];
  size_t len_ = 0;
  uint64_t total_ = 0;
};

/// HMAC-SHA256 over the concatenation of `parts` (RFC 2104), as lowercase
/// hex: how Jupyter signs a message's header, parent header, metadata and
/// content.
class hmac_sha256 {
public:
  explicit hmac_sha256(std::string_view key);

  /// The hex signature of the concatenated `parts`.
  template <class... Parts>
  std::string hex(const Parts&... parts) const {
    sha256 inner = inner_;
    (inner.update(std::string_view{parts}), ...);
    return finish(inner);
  }

private:
  std::string finish(sha256& inner) const;

  sha256 inner_;
  sha256 outer_;
};

/// Standard Base64 with padding.
std::string base64_encode(std::string_view data);

/// Lowercase hex of bytes.
std::string to_hex(const uint8_t* p, size_t n);

} // namespace osb::execd
