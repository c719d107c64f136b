#pragma once

// String helpers shared by the server, execd and the egress sidecar: ASCII
// whitespace and case, percent decoding, path normalisation. Header-only and
// locale-free, so that the static binaries use the same rules as the server.
// Namespace `osb` (not `osb::base`): these are the project's vocabulary.

#include <string>
#include <string_view>
#include <vector>

namespace osb {

/// ASCII whitespace as Python's str.strip() sees it.
inline bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
         || c == '\v';
}

/// Strips leading and trailing ASCII whitespace.
inline std::string_view trim(std::string_view x) {
  while (!x.empty() && is_space(x.front()))
    x.remove_prefix(1);
  while (!x.empty() && is_space(x.back()))
    x.remove_suffix(1);
  return x;
}

/// Strips leading and trailing spaces and tabs only (HTTP's optional
/// whitespace, RFC 9110 §5.6.3), e.g. around header parameters.
inline std::string_view trim_ows(std::string_view x) {
  while (!x.empty() && (x.front() == ' ' || x.front() == '\t'))
    x.remove_prefix(1);
  while (!x.empty() && (x.back() == ' ' || x.back() == '\t'))
    x.remove_suffix(1);
  return x;
}

/// ASCII lower case of one character.
inline char lower_char(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

/// ASCII lower case.
inline std::string lower(std::string_view x) {
  std::string result{x};
  for (auto& c : result)
    c = lower_char(c);
  return result;
}

/// ASCII case-insensitive equality.
inline bool iequals(std::string_view x, std::string_view y) {
  if (x.size() != y.size())
    return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (lower_char(x[i]) != lower_char(y[i]))
      return false;
  return true;
}

/// Value of a hex digit, -1 if `c` is none.
inline int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/// `%xx` decoding; invalid escapes stay verbatim. `+` is a space only with
/// `plus_is_space` (query-string syntax), never in a path.
inline std::string percent_decode(std::string_view raw,
                                  bool plus_is_space = false) {
  std::string result;
  result.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    auto c = raw[i];
    if (c == '%' && i + 2 < raw.size()) {
      auto hi = hex_digit(raw[i + 1]);
      auto lo = hex_digit(raw[i + 2]);
      if (hi >= 0 && lo >= 0) {
        result += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    result += (c == '+' && plus_is_space) ? ' ' : c;
  }
  return result;
}

/// Lexically normalized absolute path: no `.`, `..` (never above the
/// root), empty segments or trailing slash ("/a/./b/../c/" -> "/a/c").
inline std::string normalize_path(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (pos < path.size()) {
    auto slash = path.find('/', pos);
    auto part = path.substr(pos, slash == std::string_view::npos
                                   ? std::string_view::npos
                                   : slash - pos);
    if (part == "..") {
      if (!parts.empty())
        parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    if (slash == std::string_view::npos)
      break;
    pos = slash + 1;
  }
  std::string result;
  for (auto part : parts) {
    result += '/';
    result += part;
  }
  return result.empty() ? std::string{"/"} : result;
}

} // namespace osb
