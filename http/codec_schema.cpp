#include "http/codec_schema.hpp"

#include "base/json.hpp"
#include "http/codec_response.hpp"
#include "http/status.hpp"

#include <cmath>
#include <cstdio>

namespace osb::codec::detail {

std::string py_repr(std::string_view s) {
  auto q = s.find('\'') != std::string_view::npos
               && s.find('"') == std::string_view::npos
             ? '"'
             : '\'';
  std::string r(1, q);
  for (auto c : s) {
    switch (c) {
      case '\\':
        r += "\\\\";
        break;
      case '\n':
        r += "\\n";
        break;
      case '\r':
        r += "\\r";
        break;
      case '\t':
        r += "\\t";
        break;
      default:
        if (c == q)
          r += '\\';
        r += c;
    }
  }
  r += q;
  return r;
}

std::string py_list_repr(const std::vector<std::string>& xs) {
  std::string r = "[";
  for (size_t i = 0; i < xs.size(); ++i) {
    if (i > 0)
      r += ", ";
    r += py_repr(xs[i]);
  }
  return r + "]";
}

size_t char_count(std::string_view s) {
  size_t n = 0;
  for (auto c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80)
      ++n;
  return n;
}

std::string detail_body(const std::vector<problem>& xs) {
  json::writer o;
  o.begin_object().key("detail").begin_array();
  for (auto& p : xs) {
    o.begin_object();
    o.key("type").str(p.type);
    o.key("loc").raw(p.loc_json);
    o.key("msg").str(p.msg);
    o.key("input").raw(p.input_json.empty() ? "null" : p.input_json);
    if (!p.ctx_json.empty())
      o.key("ctx").raw(p.ctx_json);
    o.end_object();
  }
  o.end_array().end_object();
  return o.release();
}

rejection reject_422(const std::vector<problem>& xs) {
  rejection r;
  r.status = 422;
  r.body = detail_body(xs);
  r.summary = "422 " + xs.front().where + ": " + xs.front().msg;
  if (xs.size() > 1)
    r.summary += " (+" + std::to_string(xs.size() - 1) + " more)";
  return r;
}

rejection reject(const api_error& e) {
  rejection r;
  r.status = http::status_of(e);
  r.body = encode_error(e);
  r.summary = std::to_string(r.status) + " " + e.code + ": " + e.message;
  return r;
}

std::string ctx_num(std::string_view name, int64_t x) {
  return "{" + quote(name) + ":" + std::to_string(x) + "}";
}

std::string ctx_str(std::string_view name, std::string_view x) {
  return "{" + quote(name) + ":" + quote(x) + "}";
}

std::optional<lax_int> int_from_string(std::string_view s) {
  s = trim(s);
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (auto dot = s.find('.'); dot != std::string_view::npos) {
    auto frac = s.substr(dot + 1);
    if (frac.find_first_not_of('0') != std::string_view::npos)
      return std::nullopt;
    s = s.substr(0, dot);
  }
  if (s.empty() || s.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  auto first = s.find_first_not_of('0');
  auto digits = first == std::string_view::npos ? std::string_view{"0"}
                                                : s.substr(first);
  lax_int r;
  r.text = (neg && digits != "0" ? "-" : "") + std::string{digits};
  if (digits.size() > 18) {
    r.overflow = true;
    r.value = neg ? INT64_MIN : INT64_MAX;
    return r;
  }
  int64_t v = 0;
  for (auto c : digits)
    v = v * 10 + (c - '0');
  r.value = neg ? -v : v;
  return r;
}

std::optional<lax_int> read_int(checker& chk, const Value& v, const loc& l) {
  if (v.IsInt64()) {
    return lax_int{v.GetInt64(), false, std::to_string(v.GetInt64())};
  }
  if (v.IsUint64()) {
    return lax_int{INT64_MAX, true, std::to_string(v.GetUint64())};
  }
  if (v.IsDouble()) {
    auto d = v.GetDouble();
    if (!std::isfinite(d)) {
      chk.add(l, "finite_number", "Input should be a finite number", v);
      return std::nullopt;
    }
    if (d != std::floor(d)) {
      chk.add(l, "int_from_float",
              "Input should be a valid integer, got a number with a "
              "fractional part",
              v);
      return std::nullopt;
    }
    char buf[400];
    std::snprintf(buf, sizeof(buf), "%.0f", d);
    if (d >= 9.2e18 || d <= -9.2e18)
      return lax_int{d > 0 ? INT64_MAX : INT64_MIN, true, buf};
    return lax_int{static_cast<int64_t>(d), false, buf};
  }
  if (v.IsString()) {
    if (auto r = int_from_string(view(v)))
      return r;
    chk.add(l, "int_parsing",
            "Input should be a valid integer, unable to parse string as an "
            "integer",
            v);
    return std::nullopt;
  }
  chk.add(l, "int_type", "Input should be a valid integer", v);
  return std::nullopt;
}

std::optional<rejection> parse_body(std::string_view body,
                                    rapidjson::Document& doc) {
  if (body.empty()) {
    checker chk;
    chk.add(loc{"body"}, "missing", "Field required", std::string{"null"});
    return reject_422(chk.problems);
  }
  base::json_error error;
  auto status = base::parse_json<json::parse_flags>(
    doc, body, base::json_max_depth, &error);
  if (status == base::json_status::too_deep)
    return reject(api_error{
      ec::invalid_parameter, "GENERAL::UNKNOWN_ERROR",
      "There was an error parsing the body: JSON nested deeper than "
        + std::to_string(base::json_max_depth) + " levels"});
  if (status == base::json_status::invalid) {
    const char* why = "Expecting value";
    switch (error.code) {
      case rapidjson::kParseErrorDocumentRootNotSingular:
        why = "Extra data";
        break;
      case rapidjson::kParseErrorObjectMissName:
        why = "Expecting property name enclosed in double quotes";
        break;
      case rapidjson::kParseErrorObjectMissColon:
        why = "Expecting ':' delimiter";
        break;
      case rapidjson::kParseErrorObjectMissCommaOrCurlyBracket:
      case rapidjson::kParseErrorArrayMissCommaOrSquareBracket:
        why = "Expecting ',' delimiter";
        break;
      case rapidjson::kParseErrorStringUnicodeEscapeInvalidHex:
      case rapidjson::kParseErrorStringUnicodeSurrogateInvalid:
        why = "Invalid \\uXXXX escape";
        break;
      case rapidjson::kParseErrorStringEscapeInvalid:
        why = "Invalid \\escape";
        break;
      case rapidjson::kParseErrorStringMissQuotationMark:
        why = "Unterminated string starting at";
        break;
      case rapidjson::kParseErrorStringInvalidEncoding:
        why = "Invalid control character or encoding";
        break;
      default:
        break;
    }
    checker chk;
    chk.add(loc{"body"} / error.offset,
            "json_invalid", "JSON decode error", std::string{"{}"},
            ctx_str("error", why));
    return reject_422(chk.problems);
  }
  if (doc.IsNull()) {
    checker chk;
    chk.add(loc{"body"}, "missing", "Field required", std::string{"null"});
    return reject_422(chk.problems);
  }
  return std::nullopt;
}

} // namespace osb::codec::detail
