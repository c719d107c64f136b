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

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>

#include <rapidjson/document.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/encodedstream.h>
#include <rapidjson/reader.h>

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

/// Forwards a RapidJSON reader's events to a Document, converting numbers
/// itself (kParseNumbersAsStringsFlag) with std::from_chars, which rounds
/// correctly, like Python. RapidJSON 1.1's own full-precision conversion
/// must never run on outside input: `0.` followed by 400 zeros and a digit
/// indexes its power table out of bounds (a segfault), 330 zeros give
/// -4.3e301, and `0e-30` passes 0 to clzll (9.6e-240); found by fuzz_codec.
template <class Document>
struct exact_numbers {
  Document& doc;

  bool Null() {
    return doc.Null();
  }
  bool Bool(bool x) {
    return doc.Bool(x);
  }
  bool Int(int x) {
    return doc.Int(x);
  }
  bool Uint(unsigned x) {
    return doc.Uint(x);
  }
  bool Int64(int64_t x) {
    return doc.Int64(x);
  }
  bool Uint64(uint64_t x) {
    return doc.Uint64(x);
  }
  bool Double(double x) {
    return doc.Double(x);
  }
  bool String(const char* x, rapidjson::SizeType n, bool copy) {
    return doc.String(x, n, copy);
  }
  bool Key(const char* x, rapidjson::SizeType n, bool copy) {
    return doc.Key(x, n, copy);
  }
  bool StartObject() {
    return doc.StartObject();
  }
  bool EndObject(rapidjson::SizeType n) {
    return doc.EndObject(n);
  }
  bool StartArray() {
    return doc.StartArray();
  }
  bool EndArray(rapidjson::SizeType n) {
    return doc.EndArray(n);
  }

  /// `x` matches the JSON number grammar (the reader checked it), or is
  /// NaN / [-]Inf[inity] with kParseNanAndInfFlag.
  bool RawNumber(const char* x, rapidjson::SizeType n, bool) {
    std::string_view text{x, n};
    bool neg = !text.empty() && text.front() == '-';
    auto body = neg ? text.substr(1) : text;
    if (body == "NaN")
      return doc.Double(std::numeric_limits<double>::quiet_NaN());
    if (body == "Inf" || body == "Infinity")
      return doc.Double(neg ? -std::numeric_limits<double>::infinity()
                            : std::numeric_limits<double>::infinity());
    // Integers as RapidJSON types them: int64 when negative, uint64
    // otherwise, a double beyond.
    if (text.find_first_of(".eE") == std::string_view::npos) {
      if (neg) {
        int64_t v = 0;
        auto r = std::from_chars(text.data(), text.data() + text.size(), v);
        if (r.ec == std::errc{} && r.ptr == text.data() + text.size())
          return doc.Int64(v);
      } else {
        uint64_t v = 0;
        auto r = std::from_chars(text.data(), text.data() + text.size(), v);
        if (r.ec == std::errc{} && r.ptr == text.data() + text.size())
          return doc.Uint64(v);
      }
    }
    double d = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), d);
    if (r.ec == std::errc::result_out_of_range) {
      // Too small for a denormal is ±0 (too large was refused by the
      // reader, kParseErrorNumberTooBig); strtod tells which, with sign.
      std::string copy{text};
      d = std::strtod(copy.c_str(), nullptr);
    } else if (r.ec != std::errc{}) {
      return false;
    }
    return doc.Double(d);
  }
};

} // namespace detail

/// Outcome of parse_json().
enum class json_status {
  ok,       ///< parsed; the Document holds the value
  too_deep, ///< refused before parsing; the Document is untouched
  invalid,  ///< a syntax error (see json_error)
};

/// Where and why parse_json() failed.
struct json_error {
  /// RapidJSON's code; kParseErrorTermination when too deep.
  rapidjson::ParseErrorCode code = rapidjson::kParseErrorNone;
  /// Offset of the error, or of the bracket that crossed the depth limit.
  size_t offset = 0;
};

/// Parses `text` into `doc` with `Flags` unless it nests deeper than
/// `max_depth`. With kParseFullPrecisionFlag, numbers are converted by
/// std::from_chars instead of RapidJSON (see exact_numbers), and a failure
/// is reported only through `error` (the Document's own parse result is
/// not set then).
template <unsigned Flags = rapidjson::kParseDefaultFlags, class Document>
json_status parse_json(Document& doc, std::string_view text,
                       size_t max_depth = json_max_depth,
                       json_error* error = nullptr) {
  if (auto at = json_too_deep(text, max_depth);
      at != std::string_view::npos) {
    if (error != nullptr)
      *error = json_error{rapidjson::kParseErrorTermination, at};
    return json_status::too_deep;
  }
  rapidjson::ParseResult result;
  if constexpr ((Flags & rapidjson::kParseFullPrecisionFlag) != 0) {
    constexpr unsigned flags = (Flags & ~rapidjson::kParseFullPrecisionFlag)
                               | rapidjson::kParseNumbersAsStringsFlag;
    auto generate = [&](Document& target) {
      detail::exact_numbers<Document> handler{target};
      rapidjson::MemoryStream ms{text.data(), text.size()};
      rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream>
        is{ms};
      rapidjson::Reader reader;
      result = reader.template Parse<flags>(is, handler);
      return !result.IsError();
    };
    doc.Populate(generate);
  } else {
    doc.template Parse<Flags>(text.data(), text.size());
    result = rapidjson::ParseResult{doc.GetParseError(), doc.GetErrorOffset()};
  }
  if (!result.IsError())
    return json_status::ok;
  if (error != nullptr)
    *error = json_error{result.Code(), result.Offset()};
  return json_status::invalid;
}

} // namespace osb::base
