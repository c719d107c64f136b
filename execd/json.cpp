#include "execd/json.hpp"

#include <charconv>
#include <cmath>

namespace osb::execd {

namespace {

/// Returns the length of the valid UTF-8 sequence at `s[i]`, or 0.
size_t utf8_length(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t n = 0;
  uint32_t cp = 0;
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size())
    return 0;
  for (size_t k = 1; k < n; ++k) {
    auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (d & 0x3F);
  }
  // Reject overlong forms, surrogates and values past U+10FFFF.
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))
      || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

} // namespace

void append_json_string(std::string& out, std::string_view x) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  size_t i = 0;
  while (i < x.size()) {
    // Copy runs of plain ASCII in one go.
    size_t run = i;
    while (run < x.size()) {
      auto c = static_cast<unsigned char>(x[run]);
      if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
        break;
      ++run;
    }
    out.append(x.data() + i, run - i);
    i = run;
    if (i >= x.size())
      break;
    auto c = static_cast<unsigned char>(x[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        ++i;
        continue;
      case '\\':
        out += "\\\\";
        ++i;
        continue;
      case '\n':
        out += "\\n";
        ++i;
        continue;
      case '\r':
        out += "\\r";
        ++i;
        continue;
      case '\t':
        out += "\\t";
        ++i;
        continue;
      default:
        break;
    }
    if (c < 0x20) {
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
      ++i;
      continue;
    }
    auto n = utf8_length(x, i);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    // U+2028/U+2029 break JavaScript parsers that eval; Go escapes them too.
    if (n == 3 && c == 0xE2 && static_cast<unsigned char>(x[i + 1]) == 0x80
        && (static_cast<unsigned char>(x[i + 2]) & 0xFE) == 0xA8) {
      out += static_cast<unsigned char>(x[i + 2]) == 0xA8 ? "\\u2028"
                                                         : "\\u2029";
      i += 3;
      continue;
    }
    out.append(x.data() + i, n);
    i += n;
  }
  out += '"';
}

void json_writer::separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!empty_.empty()) {
    if (!empty_.back())
      out_ += ',';
    empty_.back() = false;
  }
}

json_writer& json_writer::begin_object() {
  separate();
  out_ += '{';
  empty_.push_back(true);
  return *this;
}

json_writer& json_writer::end_object() {
  out_ += '}';
  empty_.pop_back();
  return *this;
}

json_writer& json_writer::begin_array() {
  separate();
  out_ += '[';
  empty_.push_back(true);
  return *this;
}

json_writer& json_writer::end_array() {
  out_ += ']';
  empty_.pop_back();
  return *this;
}

json_writer& json_writer::key(std::string_view k) {
  separate();
  append_json_string(out_, k);
  out_ += ':';
  after_key_ = true;
  return *this;
}

json_writer& json_writer::string(std::string_view x) {
  separate();
  append_json_string(out_, x);
  return *this;
}

json_writer& json_writer::integer(int64_t x) {
  separate();
  out_ += std::to_string(x);
  return *this;
}

json_writer& json_writer::number(double x) {
  separate();
  if (!std::isfinite(x))
    x = 0;
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), x);
  out_.append(buf, res.ptr);
  return *this;
}

json_writer& json_writer::boolean(bool x) {
  separate();
  out_ += x ? "true" : "false";
  return *this;
}

json_writer& json_writer::null() {
  separate();
  out_ += "null";
  return *this;
}

} // namespace osb::execd
