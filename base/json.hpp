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
  doc.template Parse<Flags>(text.data(), text.size());
  return doc.HasParseError() ? json_status::invalid : json_status::ok;
}

} // namespace osb::base
