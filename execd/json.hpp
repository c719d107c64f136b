#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace osb::execd {

/// Appends `x` as a JSON string literal. Invalid UTF-8 becomes U+FFFD (as
/// Go's encoder does), so the output always parses.
void append_json_string(std::string& out, std::string_view x);

/// A minimal compact JSON writer; keys and values are written in call order.
class json_writer {
public:
  /// Structure: `{`, `}`, `[`, `]` and object keys; commas are automatic.
  json_writer& begin_object();
  json_writer& end_object();
  json_writer& begin_array();
  json_writer& end_array();
  json_writer& key(std::string_view k);
  /// Scalars (as values or array elements).
  json_writer& string(std::string_view x);
  json_writer& integer(int64_t x);
  json_writer& number(double x);
  json_writer& boolean(bool x);
  json_writer& null();

  /// Returns the text written so far.
  const std::string& str() const {
    return out_;
  }

  /// Moves the text out.
  std::string take() {
    return std::move(out_);
  }

private:
  void separate();

  std::string out_;
  /// One entry per open container: whether it has no element yet.
  std::vector<bool> empty_;
  bool after_key_ = false;
};

} // namespace osb::execd
