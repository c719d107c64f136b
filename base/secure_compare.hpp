#pragma once

// Comparison of secrets (API keys, access tokens, signatures) whose time
// does not depend on where the inputs differ. Header-only: the static execd
// and egress binaries use it too.

#include <cstddef>
#include <string_view>

namespace osb {

/// Whether `a` equals `secret`, in time that depends only on their lengths.
inline bool constant_time_equal(std::string_view a, std::string_view secret) {
  unsigned char diff = a.size() == secret.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(
      a[i] ^ (secret.empty() ? 0 : secret[i % secret.size()]));
  return diff == 0;
}

} // namespace osb
