#include "http/query.hpp"

#include "base/strings.hpp"
#include "http/codec_request.hpp"

namespace osb::http::detail {

std::optional<std::string> query_param(std::string_view query,
                                       std::string_view key) {
  std::optional<std::string> result;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{}
                                          : query.substr(amp + 1);
    if (part.empty())
      continue;
    auto eq = part.find('=');
    auto name = codec::url_decode(part.substr(0, eq));
    if (name != key)
      continue;
    result = eq == std::string_view::npos
               ? std::string{}
               : codec::url_decode(part.substr(eq + 1));
  }
  return result;
}

bool parse_int(std::string_view str, int64_t& out) {
  str = trim(str);
  if (str.empty())
    return false;
  bool neg = false;
  if (str.front() == '+' || str.front() == '-') {
    neg = str.front() == '-';
    str.remove_prefix(1);
  }
  if (str.empty())
    return false;
  int64_t value = 0;
  for (auto c : str) {
    if (c < '0' || c > '9')
      return false;
    if (value > (INT64_MAX - 9) / 10)
      value = INT64_MAX / 2; // saturate; any caller rejects this range
    else
      value = value * 10 + (c - '0');
  }
  out = neg ? -value : value;
  return true;
}

bool parse_bool(std::string_view str, bool& out) {
  auto x = lower(trim(str));
  if (x == "true" || x == "1" || x == "yes" || x == "on" || x == "t"
      || x == "y") {
    out = true;
    return true;
  }
  if (x == "false" || x == "0" || x == "no" || x == "off" || x == "f"
      || x == "n") {
    out = false;
    return true;
  }
  return false;
}

std::optional<uint64_t> parse_uint64(std::string_view str) {
  str = trim(str);
  if (str.empty() || str.size() > 20)
    return std::nullopt;
  uint64_t value = 0;
  for (auto c : str) {
    if (c < '0' || c > '9')
      return std::nullopt;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10)
      return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

} // namespace osb::http::detail
