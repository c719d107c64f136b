#include "net/signed_route.hpp"

#include "base/secure_compare.hpp"

#include <openssl/sha.h>

namespace osb::net {

namespace {

bool is_b36_digit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
}

void append_be32(std::string& out, size_t n) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out += static_cast<char>((n >> shift) & 0xFF);
}

/// Decimal port 1..65535 without leading zeros.
std::optional<int> parse_port(std::string_view x) {
  if (x.empty() || x.size() > 5 || x[0] == '0')
    return std::nullopt;
  int result = 0;
  for (char c : x) {
    if (c < '0' || c > '9')
      return std::nullopt;
    result = result * 10 + (c - '0');
  }
  if (result > 65535)
    return std::nullopt;
  return result;
}

} // namespace

std::string to_base36(uint64_t x) {
  static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  if (x == 0)
    return "0";
  std::string result;
  while (x > 0) {
    result.insert(result.begin(), digits[x % 36]);
    x /= 36;
  }
  return result;
}

std::optional<uint64_t> parse_base36(std::string_view x) {
  if (x.empty() || x.size() > 13 || (x.size() > 1 && x[0] == '0'))
    return std::nullopt;
  uint64_t result = 0;
  for (char c : x) {
    if (!is_b36_digit(c))
      return std::nullopt;
    uint64_t digit = c <= '9' ? uint64_t(c - '0') : uint64_t(c - 'a' + 10);
    if (result > (UINT64_MAX - digit) / 36)
      return std::nullopt;
    result = result * 36 + digit;
  }
  return result;
}

std::string sign_route(std::string_view secret, char key_id,
                       std::string_view sandbox_id, int port,
                       std::string_view expires_b36) {
  std::string canonical = "v1\nshort\n";
  canonical.append(sandbox_id);
  canonical += '\n';
  canonical += std::to_string(port);
  canonical += '\n';
  canonical.append(expires_b36);
  canonical += '\n';
  std::string inner;
  inner.reserve(8 + secret.size() + canonical.size());
  append_be32(inner, secret.size());
  inner.append(secret);
  append_be32(inner, canonical.size());
  inner += canonical;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(inner.data()), inner.size(),
         digest);
  static constexpr char hex[] = "0123456789abcdef";
  std::string result;
  for (int i = 0; i < 4; ++i) {
    result += hex[digest[i] >> 4];
    result += hex[digest[i] & 0xF];
  }
  result += key_id;
  return result;
}

std::optional<route_token> parse_route_token(std::string_view token) {
  auto pop = [&token]() -> std::optional<std::string_view> {
    auto dash = token.rfind('-');
    if (dash == std::string_view::npos)
      return std::nullopt;
    auto seg = token.substr(dash + 1);
    token = token.substr(0, dash);
    return seg;
  };
  auto sig = pop();
  auto exp = pop();
  auto port = pop();
  if (!sig || !exp || !port || token.empty() || sig->size() != 9)
    return std::nullopt;
  for (size_t i = 0; i < 8; ++i)
    if (!((*sig)[i] >= '0' && (*sig)[i] <= '9')
        && !((*sig)[i] >= 'a' && (*sig)[i] <= 'f'))
      return std::nullopt;
  if (!is_b36_digit((*sig)[8]))
    return std::nullopt;
  auto expires = parse_base36(*exp);
  auto p = parse_port(*port);
  if (!expires || !p)
    return std::nullopt;
  route_token result;
  result.sandbox_id = std::string{token};
  result.port = *p;
  result.expires_b36 = std::string{*exp};
  result.expires_s = *expires;
  result.signature = std::string{*sig};
  return result;
}

std::string mint_route_token(
  const node_config::ingress_section::secure_access_section& keys,
  std::string_view sandbox_id, int port, uint64_t expires_s) {
  std::string secret;
  for (auto& k : keys.keys)
    if (k.id == keys.active_key)
      secret = k.secret;
  auto b36 = to_base36(expires_s);
  std::string result{sandbox_id};
  result += '-';
  result += std::to_string(port);
  result += '-';
  result += b36;
  result += '-';
  result += sign_route(secret, keys.active_key, sandbox_id, port, b36);
  return result;
}

route_check verify_route_token(
  const route_token& t,
  const node_config::ingress_section::secure_access_section& keys,
  uint64_t now_s) {
  const std::string* secret = nullptr;
  for (auto& k : keys.keys)
    if (k.id == t.signature.back())
      secret = &k.secret;
  if (secret == nullptr)
    return route_check::bad_signature;
  auto want = sign_route(*secret, t.signature.back(), t.sandbox_id, t.port,
                         t.expires_b36);
  if (!constant_time_equal(t.signature, want))
    return route_check::bad_signature;
  if (now_s > t.expires_s)
    return route_check::expired;
  return route_check::ok;
}

} // namespace osb::net
