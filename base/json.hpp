#pragma once

// Depth-limited JSON parsing for every parser of outside input (server,
// execd, egress sidecar). Header-only and RapidJSON-only, so that the fully
// static execd and egress binaries use it as well as the server.
//
// RapidJSON's recursive parser and GenericValue's destructor both recurse
// once per nesting level, so a body nested 100,000 deep overflows the
// thread's stack either while parsing or while destroying the Document. The
// depth is therefore refused by a scan of the text *before* any Document is
// built.

#include <cstddef>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

namespace osb::base {

/// Nesting limit for JSON from outside: far above any schema of ours (the
/// deepest, a create request's volume with its access modes, has 4 levels),
/// far below what exhausts a thread's stack.
inline constexpr size_t json_max_depth = 128;

/// Returns the offset of the first `[` or `{` in `text` that opens nesting
/// level `max_depth + 1`, or `std::string_view::npos` if there is none.
///
/// Brackets inside strings do not count (escapes are honoured). Up to the
/// first syntax error the scan sees the tokens that RapidJSON sees (without
/// kParseCommentsFlag), so a text that passes the scan never nests deeper
/// than `max_depth` in the parser; an invalid text may be refused here for
/// its depth rather than for its syntax.
inline size_t json_too_deep(std::string_view text,
                            size_t max_depth = json_max_depth) noexcept {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i; // the escaped character cannot end the string
      else if (c == '"')
        in_string = false;
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth)
          return i;
        break;
      case ']':
      case '}':
        // Unbalanced closers are a syntax error the parser reports.
        if (depth > 0)
          --depth;
        break;
      default:
        break;
    }
  }
  return std::string_view::npos;
}

namespace detail {

/// Finds, outside strings, the numbers whose digits are all zero and that
/// have a fraction or an exponent (`0e-30`, `-0.00E+400`, `0.000…`), and
/// calls `f(begin, end)` with the offsets of each such token. Tokens follow
/// RapidJSON's number grammar:
/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
template <class F>
void for_each_zero_number(std::string_view text, F&& f) {
  auto digit = [&](size_t i) {
    return i < text.size() && text[i] >= '0' && text[i] <= '9';
  };
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
      continue;
    }
    if (c != '-' && !digit(i))
      continue;
    // A number token starts here; walk it as RapidJSON does.
    auto j = i;
    bool zero = true;
    bool decorated = false; // a fraction or an exponent
    if (text[j] == '-')
      ++j;
    if (!digit(j)) {
      i = j;
      continue;
    }
    if (text[j] == '0') {
      ++j;
    } else {
      zero = false;
      while (digit(j))
        ++j;
    }
    if (j < text.size() && text[j] == '.' && digit(j + 1)) {
      decorated = true;
      ++j;
      while (digit(j)) {
        zero = zero && text[j] == '0';
        ++j;
      }
    }
    if (j < text.size() && (text[j] == 'e' || text[j] == 'E')) {
      auto k = j + 1;
      if (k < text.size() && (text[k] == '+' || text[k] == '-'))
        ++k;
      if (digit(k)) {
        decorated = true;
        while (digit(k))
          ++k;
        j = k;
      }
    }
    if (zero && decorated)
      f(i, j);
    i = j - 1;
  }
}

} // namespace detail

/// Outcome of parse_json().
enum class json_status {
  ok,       ///< parsed; the Document holds the value
  too_deep, ///< refused before parsing; the Document is untouched
  invalid,  ///< RapidJSON's parse error (GetParseError/GetErrorOffset)
};

/// Parses `text` into `doc` with `Flags` unless it nests deeper than
/// `max_depth`. On `too_deep`, `*offset` (when given) is the offset of the
/// bracket that crossed the limit.
template <unsigned Flags = rapidjson::kParseDefaultFlags, class Document>
json_status parse_json(Document& doc, std::string_view text,
                       size_t max_depth = json_max_depth,
                       size_t* offset = nullptr) {
  if (auto at = json_too_deep(text, max_depth);
      at != std::string_view::npos) {
    if (offset != nullptr)
      *offset = at;
    return json_status::too_deep;
  }
  if constexpr ((Flags & rapidjson::kParseFullPrecisionFlag) != 0) {
    // RapidJSON 1.1's full-precision strtod passes a zero significand to
    // __builtin_clzll (undefined for 0) whenever the decimal exponent is
    // beyond ±22: `0e-30` parsed as 9.6e-240, `-0e-99` as -1.6e32, and
    // `0.` with 30 zeros likewise (found by fuzz_codec). Such a number is
    // ±0.0 whatever its digits, so it is rewritten as `0.0` or `-0.0`
    // padded with spaces: every offset stays where it was, and the value
    // stays a double, as in Python.
    std::string fixed;
    detail::for_each_zero_number(text, [&](size_t from, size_t to) {
      auto neg = text[from] == '-';
      std::string_view canonical = neg ? "-0.0" : "0.0";
      // Shortest forms (`0e5`, `0.0`) are as long as `0.0`.
      if (text.substr(from, to - from) == canonical)
        return;
      if (fixed.empty())
        fixed.assign(text.data(), text.size());
      fixed.replace(from, to - from, to - from, ' ');
      fixed.replace(from, canonical.size(), canonical);
    });
    if (!fixed.empty()) {
      doc.template Parse<Flags>(fixed.data(), fixed.size());
      return doc.HasParseError() ? json_status::invalid : json_status::ok;
    }
  }
  doc.template Parse<Flags>(text.data(), text.size());
  return doc.HasParseError() ? json_status::invalid : json_status::ok;
}

} // namespace osb::base
