#include "core/validation.hpp"

#include "base/strings.hpp"

#include <cctype>
#include <climits>
#include <string_view>

namespace osb::validation {

namespace {

constexpr std::string_view reserved_prefix = "opensandbox.io/";

bool is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool is_alnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
bool is_dns_label(std::string_view x) {
  if (x.empty() || !is_lower_alnum(x.front()) || !is_lower_alnum(x.back()))
    return false;
  for (auto c : x)
    if (!is_lower_alnum(c) && c != '-')
      return false;
  return true;
}

/// `^(label\.)*label$`
bool is_dns_subdomain(std::string_view x) {
  size_t start = 0;
  for (;;) {
    auto dot = x.find('.', start);
    auto label = x.substr(start, dot == std::string_view::npos
                                   ? std::string_view::npos
                                   : dot - start);
    if (!is_dns_label(label))
      return false;
    if (dot == std::string_view::npos)
      return true;
    start = dot + 1;
  }
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`
bool is_label_name(std::string_view x) {
  if (x.empty() || !is_alnum(x.front()) || !is_alnum(x.back()))
    return false;
  for (auto c : x)
    if (!is_alnum(c) && c != '-' && c != '_' && c != '.')
      return false;
  return true;
}

bool is_valid_key(std::string_view key) {
  auto name = key;
  if (auto slash = key.find('/'); slash != std::string_view::npos) {
    auto prefix = key.substr(0, slash);
    name = key.substr(slash + 1);
    if (prefix.empty() || name.empty())
      return false;
    if (prefix.size() > 253 || !is_dns_subdomain(prefix))
      return false;
  }
  return name.size() <= 63 && is_label_name(name);
}

bool is_valid_value(std::string_view value) {
  return value.size() <= 63 && (value.empty() || is_label_name(value));
}

/// A non-negative decimal `digits[.digits]` scaled by `scale` and floored:
/// exact integer arithmetic, no locale and no binary rounding.
std::optional<int64_t> scaled_decimal(std::string_view x, __int128 scale) {
  auto dot = x.find('.');
  auto whole = x.substr(0, dot);
  auto frac = dot == std::string_view::npos ? std::string_view{}
                                            : x.substr(dot + 1);
  if (whole.empty() && frac.empty())
    return std::nullopt;
  __int128 limit = INT64_MAX;
  __int128 value = 0;
  for (auto c : whole) {
    if (c < '0' || c > '9')
      return std::nullopt;
    value = value * 10 + (c - '0');
    if (value > limit)
      return std::nullopt;
  }
  value *= scale;
  if (value > limit)
    return std::nullopt;
  __int128 num = 0;
  __int128 den = 1;
  for (auto c : frac) {
    if (c < '0' || c > '9')
      return std::nullopt;
    // Digits beyond 18 cannot change the floored result for our scales.
    if (den < static_cast<__int128>(1000000000000000000LL)) {
      num = num * 10 + (c - '0');
      den *= 10;
    }
  }
  value += num * scale / den;
  if (value > limit)
    return std::nullopt;
  return static_cast<int64_t>(value);
}

} // namespace

std::optional<api_error> check_metadata(const string_map& xs) {
  for (auto& [key, value] : xs) {
    if (key.compare(0, reserved_prefix.size(), reserved_prefix) == 0)
      return make_api_error(
        ec::invalid_metadata_label,
        "Metadata key '" + key
          + "' uses the reserved prefix 'opensandbox.io/'. Keys under this "
            "prefix are managed by the system and cannot be set via "
            "metadata.");
    if (!is_valid_key(key))
      return make_api_error(
        ec::invalid_metadata_label,
        "Metadata key '" + key
          + "' is invalid: must be either a name or a DNS-subdomain prefix "
            "and name separated by /, where the name is up to 63 characters "
            "and matches [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, and the "
            "optional prefix is a valid DNS subdomain up to 253 characters.");
    if (!is_valid_value(value))
      return make_api_error(
        ec::invalid_metadata_label,
        "Metadata value '" + value
          + "' is invalid: must be 63 characters or less, start/end with an "
            "alphanumeric character, and contain only alphanumeric, '-', "
            "'_', or '.' characters.");
  }
  return std::nullopt;
}

std::optional<api_error> check_patch_key(const std::string& key) {
  if (key.compare(0, reserved_prefix.size(), reserved_prefix) == 0)
    return make_api_error(ec::reserved_metadata_key,
                          "Metadata key '" + key
                            + "' is reserved (opensandbox.io/ prefix).");
  return std::nullopt;
}

std::optional<int64_t> parse_memory(const std::string& x) {
  auto s = trim(x);
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i]))
                          || s[i] == '.'))
    ++i;
  auto number = s.substr(0, i);
  auto unit = std::string{trim(s.substr(i))};
  for (auto& c : unit)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  constexpr __int128 k = 1000;
  constexpr __int128 ki = 1024;
  __int128 scale = 0;
  if (unit.empty() || unit == "b")
    scale = 1;
  else if (unit == "k" || unit == "kb")
    scale = k;
  else if (unit == "m" || unit == "mb")
    scale = k * k;
  else if (unit == "g" || unit == "gb")
    scale = k * k * k;
  else if (unit == "t" || unit == "tb")
    scale = k * k * k * k;
  else if (unit == "ki")
    scale = ki;
  else if (unit == "mi")
    scale = ki * ki;
  else if (unit == "gi")
    scale = ki * ki * ki;
  else if (unit == "ti")
    scale = ki * ki * ki * ki;
  else
    return std::nullopt;
  return scaled_decimal(number, scale);
}

std::optional<int64_t> parse_cpu(const std::string& x) {
  auto s = trim(x);
  std::optional<int64_t> result;
  if (!s.empty() && s.back() == 'm')
    result = scaled_decimal(trim(s.substr(0, s.size() - 1)), 1000000);
  else
    result = scaled_decimal(s, 1000000000);
  if (!result || *result <= 0)
    return std::nullopt;
  return result;
}

std::optional<int64_t> parse_gpu(const std::string& x) {
  auto s = trim(x);
  if (s.size() == 3 && std::tolower(static_cast<unsigned char>(s[0])) == 'a'
      && std::tolower(static_cast<unsigned char>(s[1])) == 'l'
      && std::tolower(static_cast<unsigned char>(s[2])) == 'l')
    return -1;
  if (s.find('.') != std::string_view::npos)
    return std::nullopt;
  auto n = scaled_decimal(s, 1);
  if (!n || *n <= 0)
    return std::nullopt;
  return n;
}

} // namespace osb::validation
