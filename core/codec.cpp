#include "core/codec.hpp"
#include "base/json.hpp"
#include "base/strings.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <random>

#include <sys/random.h>
#include <set>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/validation.hpp"

namespace osb::codec {

namespace {

using rapidjson::Value;

constexpr unsigned parse_flags = rapidjson::kParseValidateEncodingFlag
                                 | rapidjson::kParseFullPrecisionFlag
                                 | rapidjson::kParseNanAndInfFlag;

using json_writer
  = rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>,
                      rapidjson::UTF8<>, rapidjson::CrtAllocator,
                      rapidjson::kWriteNanAndInfFlag>;

/// Thin convenience layer over the RapidJSON writer.
class out {
public:
  out() : w_(buf_) {
    // nop
  }

  out& key(std::string_view k) {
    w_.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    return *this;
  }

  out& str(std::string_view s) {
    w_.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    return *this;
  }

  out& num(int64_t x) {
    w_.Int64(x);
    return *this;
  }

  out& boolean(bool x) {
    w_.Bool(x);
    return *this;
  }

  out& null() {
    w_.Null();
    return *this;
  }

  out& raw(std::string_view json) {
    w_.RawValue(json.data(), json.size(), rapidjson::kObjectType);
    return *this;
  }

  out& value(const Value& v) {
    v.Accept(w_);
    return *this;
  }

  out& begin_object() {
    w_.StartObject();
    return *this;
  }

  out& end_object() {
    w_.EndObject();
    return *this;
  }

  out& begin_array() {
    w_.StartArray();
    return *this;
  }

  out& end_array() {
    w_.EndArray();
    return *this;
  }

  out& map(const string_map& xs) {
    begin_object();
    for (auto& [k, v] : xs)
      key(k).str(v);
    return end_object();
  }

  out& strings(const std::vector<std::string>& xs) {
    begin_array();
    for (auto& x : xs)
      str(x);
    return end_array();
  }

  std::string release() {
    return std::string{buf_.GetString(), buf_.GetSize()};
  }

private:
  rapidjson::StringBuffer buf_;
  json_writer w_;
};

std::string to_json(const Value& v) {
  out o;
  o.value(v);
  return o.release();
}

std::string quote(std::string_view s) {
  out o;
  o.str(s);
  return o.release();
}

std::string_view view(const Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

/// Python's `repr()` of a str, as the original embeds it in messages.
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

bool starts_with(std::string_view x, std::string_view prefix) {
  return x.substr(0, prefix.size()) == prefix;
}

/// Number of code points, which is what Pydantic's length limits count.
size_t char_count(std::string_view s) {
  size_t n = 0;
  for (auto c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80)
      ++n;
  return n;
}

/// Returns the last member named `name` (Python's json keeps the last one).
const Value* member(const Value& obj, std::string_view name) {
  const Value* found = nullptr;
  for (auto& m : obj.GetObject())
    if (view(m.name) == name)
      found = &m.value;
  return found;
}

/// Like `member`, but treats JSON null as absent.
const Value* present(const Value& obj, std::string_view name) {
  auto v = member(obj, name);
  return v != nullptr && !v->IsNull() ? v : nullptr;
}

// -- 422 problems -------------------------------------------------------------

/// A location in the request (`["body","volumes",0,"name"]`).
class loc {
public:
  loc() = default;

  explicit loc(std::string root) {
    parts_.push_back(quote(root));
  }

  loc operator/(std::string_view key) const {
    auto r = *this;
    r.parts_.push_back(quote(key));
    return r;
  }

  loc operator/(size_t index) const {
    auto r = *this;
    r.parts_.push_back(std::to_string(index));
    return r;
  }

  std::string json() const {
    std::string r = "[";
    for (size_t i = 0; i < parts_.size(); ++i) {
      if (i > 0)
        r += ',';
      r += parts_[i];
    }
    return r + "]";
  }

  /// `body.volumes.0.name` for log lines.
  std::string dotted() const {
    std::string r;
    for (auto& p : parts_) {
      if (!r.empty())
        r += '.';
      r += p.front() == '"' ? p.substr(1, p.size() - 2) : p;
    }
    return r;
  }

private:
  std::vector<std::string> parts_;
};

struct problem {
  std::string type;
  std::string loc_json;
  std::string where;
  std::string msg;
  std::string input_json;
  std::string ctx_json;
};

std::string detail_body(const std::vector<problem>& xs) {
  out o;
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
  r.status = e.status;
  r.body = encode_error(e);
  r.summary = std::to_string(e.status) + " " + e.code + ": " + e.message;
  return r;
}

std::string ctx_num(std::string_view name, int64_t x) {
  return "{" + quote(name) + ":" + std::to_string(x) + "}";
}

std::string ctx_str(std::string_view name, std::string_view x) {
  return "{" + quote(name) + ":" + quote(x) + "}";
}

/// Collects problems the way Pydantic does: every field is checked, the
/// model-level validators run only when the fields are clean.
class checker {
public:
  std::vector<problem> problems;

  void add(const loc& l, std::string type, std::string msg,
           std::string input_json, std::string ctx_json = {}) {
    problems.push_back(problem{std::move(type), l.json(), l.dotted(),
                               std::move(msg), std::move(input_json),
                               std::move(ctx_json)});
  }

  void add(const loc& l, std::string type, std::string msg, const Value& input,
           std::string ctx_json = {}) {
    add(l, std::move(type), std::move(msg), to_json(input),
        std::move(ctx_json));
  }

  size_t mark() const {
    return problems.size();
  }

  bool clean_since(size_t m) const {
    return problems.size() == m;
  }

  void missing(const loc& l, const Value& parent) {
    add(l, "missing", "Field required", parent);
  }

  /// A required field of `obj`; reports "missing" when absent.
  const Value* required(const Value& obj, std::string_view name,
                        const loc& l) {
    auto v = member(obj, name);
    if (v == nullptr)
      missing(l / name, obj);
    return v;
  }

  bool is_object(const Value& v, const loc& l, std::string_view class_name) {
    if (v.IsObject())
      return true;
    add(l, "model_type",
        "Input should be a valid dictionary or instance of "
          + std::string{class_name},
        v, ctx_str("class_name", class_name));
    return false;
  }

  bool is_dict(const Value& v, const loc& l) {
    if (v.IsObject())
      return true;
    add(l, "dict_type", "Input should be a valid dictionary", v);
    return false;
  }

  bool is_list(const Value& v, const loc& l) {
    if (v.IsArray())
      return true;
    add(l, "list_type", "Input should be a valid list", v);
    return false;
  }

  std::optional<std::string> str(const Value& v, const loc& l) {
    if (v.IsString())
      return std::string{view(v)};
    add(l, "string_type", "Input should be a valid string", v);
    return std::nullopt;
  }

  /// Optional[str]: null → nullopt without a problem.
  std::optional<std::string> opt_str(const Value* v, const loc& l) {
    if (v == nullptr || v->IsNull())
      return std::nullopt;
    return str(*v, l);
  }

  bool min_len(const std::string& s, const Value& v, const loc& l, size_t n) {
    if (char_count(s) >= n)
      return true;
    add(l, "string_too_short",
        "String should have at least " + std::to_string(n)
          + (n == 1 ? " character" : " characters"),
        v, ctx_num("min_length", static_cast<int64_t>(n)));
    return false;
  }

  bool max_len(const std::string& s, const Value& v, const loc& l, size_t n) {
    if (char_count(s) <= n)
      return true;
    add(l, "string_too_long",
        "String should have at most " + std::to_string(n)
          + (n == 1 ? " character" : " characters"),
        v, ctx_num("max_length", static_cast<int64_t>(n)));
    return false;
  }

  bool pattern(bool ok, const Value& v, const loc& l, std::string_view pat) {
    if (ok)
      return true;
    add(l, "string_pattern_mismatch",
        "String should match pattern '" + std::string{pat} + "'", v,
        ctx_str("pattern", pat));
    return false;
  }

  /// Pydantic's lax bool (true/false, 0/1, "yes"/"no"/... strings).
  std::optional<bool> boolean(const Value& v, const loc& l) {
    if (v.IsBool())
      return v.GetBool();
    if (v.IsInt64() && (v.GetInt64() == 0 || v.GetInt64() == 1))
      return v.GetInt64() == 1;
    if (v.IsString()) {
      auto s = lower(view(v));
      static const std::set<std::string> yes
        = {"1", "on", "t", "true", "y", "yes"};
      static const std::set<std::string> no
        = {"0", "off", "f", "false", "n", "no"};
      if (yes.count(s) > 0)
        return true;
      if (no.count(s) > 0)
        return false;
    }
    if (v.IsString() || v.IsNumber())
      add(l, "bool_parsing",
          "Input should be a valid boolean, unable to interpret input", v);
    else
      add(l, "bool_type", "Input should be a valid boolean", v);
    return std::nullopt;
  }

  /// A `Dict[str, str]`; duplicate keys keep the last value.
  std::optional<string_map> str_map(const Value& v, const loc& l) {
    if (!is_dict(v, l))
      return std::nullopt;
    string_map r;
    bool ok = true;
    for (auto& m : v.GetObject()) {
      auto k = std::string{view(m.name)};
      if (auto s = str(m.value, l / k))
        r[k] = std::move(*s);
      else
        ok = false;
    }
    if (!ok)
      return std::nullopt;
    return r;
  }

  std::optional<std::vector<std::string>> str_list(const Value& v,
                                                   const loc& l) {
    if (!is_list(v, l))
      return std::nullopt;
    std::vector<std::string> r;
    bool ok = true;
    size_t i = 0;
    for (auto& e : v.GetArray()) {
      if (auto s = str(e, l / i))
        r.push_back(std::move(*s));
      else
        ok = false;
      ++i;
    }
    if (!ok)
      return std::nullopt;
    return r;
  }

  void value_error(const loc& l, const std::string& msg, const Value& input) {
    add(l, "value_error", "Value error, " + msg, input, R"({"error":{}})");
  }
};

// -- lax integers -------------------------------------------------------------

/// An integer as Pydantic's lax mode reads it. `text` is its decimal form,
/// kept for messages when the value exceeds int64.
struct lax_int {
  int64_t value = 0;
  bool overflow = false;
  std::string text;
};

/// Parses `[+-]digits[.0*]` (Pydantic accepts "3600.0").
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

// -- time ---------------------------------------------------------------------

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  auto era = (y >= 0 ? y : y - 399) / 400;
  auto yoe = static_cast<unsigned>(y - era * 400);
  auto doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  auto doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  auto era = (z >= 0 ? z : z - 146096) / 146097;
  auto doe = static_cast<unsigned>(z - era * 146097);
  auto yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  auto doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  auto mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

bool is_leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned days_in_month(int64_t y, unsigned m) {
  static constexpr unsigned days[] = {31, 28, 31, 30, 31, 30,
                                      31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/// Python's datetime range: 0001-01-01 .. 9999-12-31T23:59:59.999999.
constexpr int64_t min_us = -62135596800LL * 1000000;
constexpr int64_t max_us = 253402300799LL * 1000000 + 999999;

/// Unix seconds as Pydantic reads numbers: beyond ±2e10 they are millis.
bool unix_to_us(long double seconds, int64_t& us, std::string& err) {
  if (std::fabs(seconds) > 2e10L)
    seconds /= 1000;
  auto x = std::floor(seconds * 1000000.0L + 0.5L);
  if (x < static_cast<long double>(min_us)
      || x > static_cast<long double>(max_us)) {
    err = "timestamp value is outside the supported range";
    return false;
  }
  us = static_cast<int64_t>(x);
  return true;
}

/// Reads exactly `n` digits at `pos`.
bool digits(std::string_view s, size_t& pos, size_t n, unsigned& out) {
  if (pos + n > s.size())
    return false;
  out = 0;
  for (size_t i = 0; i < n; ++i) {
    auto c = s[pos + i];
    if (c < '0' || c > '9')
      return false;
    out = out * 10 + static_cast<unsigned>(c - '0');
  }
  pos += n;
  return true;
}

/// A speedate-like parser; `err` gets Pydantic's wording on failure.
bool parse_time_detail(std::string_view s, int64_t& us, std::string& err) {
  // Numbers (and numeric strings) are Unix timestamps.
  {
    auto t = s;
    if (!t.empty() && (t[0] == '-' || t[0] == '+'))
      t.remove_prefix(1);
    auto dot = t.find('.');
    auto whole = t.substr(0, dot);
    auto frac = dot == std::string_view::npos ? std::string_view{}
                                              : t.substr(dot + 1);
    auto all_digits = [](std::string_view x) {
      return x.find_first_not_of("0123456789") == std::string_view::npos;
    };
    if (!whole.empty() && all_digits(whole) && all_digits(frac)
        && (dot == std::string_view::npos || !frac.empty())) {
      if (whole.size() > 20) {
        err = "timestamp value is outside the supported range";
        return false;
      }
      long double v = 0;
      for (auto c : whole)
        v = v * 10 + (c - '0');
      long double scale = 0.1L;
      for (auto c : frac.substr(0, 9)) {
        v += (c - '0') * scale;
        scale /= 10;
      }
      if (s[0] == '-')
        v = -v;
      return unix_to_us(v, us, err);
    }
  }
  if (s.size() < 10) {
    err = "input is too short";
    return false;
  }
  size_t pos = 0;
  unsigned year = 0;
  unsigned month = 0;
  unsigned day = 0;
  if (!digits(s, pos, 4, year)) {
    err = "invalid character in year";
    return false;
  }
  if (s[pos++] != '-') {
    err = "invalid date separator, expected `-`";
    return false;
  }
  if (!digits(s, pos, 2, month)) {
    err = "invalid character in month";
    return false;
  }
  if (s[pos++] != '-') {
    err = "invalid date separator, expected `-`";
    return false;
  }
  if (!digits(s, pos, 2, day)) {
    err = "invalid character in day";
    return false;
  }
  if (month < 1 || month > 12) {
    err = "month value is outside expected range of 1-12";
    return false;
  }
  if (year < 1) {
    err = "year value is outside expected range";
    return false;
  }
  if (day < 1 || day > days_in_month(year, month)) {
    err = "day value is outside expected range";
    return false;
  }
  int64_t micros = days_from_civil(year, month, day) * 86400LL * 1000000;
  if (pos == s.size()) {
    us = micros;
    return true;
  }
  auto sep = s[pos++];
  if (sep != 'T' && sep != 't' && sep != ' ' && sep != '_') {
    err = "invalid datetime separator, expected `T`, `t`, `_` or space";
    return false;
  }
  unsigned hour = 0;
  unsigned minute = 0;
  unsigned second = 0;
  if (!digits(s, pos, 2, hour)) {
    err = "invalid character in hour";
    return false;
  }
  if (hour > 23) {
    err = "hour value is outside expected range of 0-23";
    return false;
  }
  if (pos >= s.size() || s[pos++] != ':') {
    err = "invalid time separator, expected `:`";
    return false;
  }
  if (!digits(s, pos, 2, minute)) {
    err = "invalid character in minute";
    return false;
  }
  if (minute > 59) {
    err = "minute value is outside expected range of 0-59";
    return false;
  }
  int64_t frac_us = 0;
  if (pos < s.size() && s[pos] == ':') {
    ++pos;
    if (!digits(s, pos, 2, second)) {
      err = "invalid character in second";
      return false;
    }
    if (second > 59) {
      err = "second value is outside expected range of 0-59";
      return false;
    }
    if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
      ++pos;
      size_t n = 0;
      int64_t scale = 100000;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        if (n < 6) {
          frac_us += (s[pos] - '0') * scale;
          scale /= 10;
        }
        ++n;
        ++pos;
      }
      if (n == 0) {
        err = "invalid character in second fraction";
        return false;
      }
      if (n > 9) {
        err = "second fraction value is more than 9 digits long";
        return false;
      }
    }
  }
  micros += ((hour * 60LL + minute) * 60 + second) * 1000000 + frac_us;
  if (pos < s.size()) {
    auto c = s[pos];
    if (c == 'Z' || c == 'z') {
      ++pos;
    } else if (c == '+' || c == '-') {
      ++pos;
      unsigned oh = 0;
      unsigned om = 0;
      if (!digits(s, pos, 2, oh)) {
        err = "invalid timezone hour";
        return false;
      }
      if (pos < s.size() && s[pos] == ':')
        ++pos;
      if (pos < s.size() && !digits(s, pos, 2, om)) {
        err = "invalid timezone minute";
        return false;
      }
      if (oh > 23 || om > 59) {
        err = "timezone offset must be less than 24 hours";
        return false;
      }
      auto offset = (oh * 60LL + om) * 60 * 1000000;
      micros += c == '+' ? -offset : offset;
    } else {
      err = "invalid timezone sign";
      return false;
    }
  }
  if (pos != s.size()) {
    err = "unexpected extra characters at the end of the input";
    return false;
  }
  us = micros;
  return true;
}

// -- request parsing ----------------------------------------------------------

/// The body as FastAPI sees it: empty/null → missing, bad JSON →
/// json_invalid, JSON nested too deep → FastAPI's answer to Python's
/// RecursionError (400 "There was an error parsing the body").
std::optional<rejection> parse_body(std::string_view body,
                                    rapidjson::Document& doc) {
  if (body.empty()) {
    checker chk;
    chk.add(loc{"body"}, "missing", "Field required", std::string{"null"});
    return reject_422(chk.problems);
  }
  base::json_error error;
  auto status = base::parse_json<parse_flags>(doc, body, base::json_max_depth,
                                              &error);
  if (status == base::json_status::too_deep)
    return reject(api_error{
      400, "GENERAL::UNKNOWN_ERROR",
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

struct network_rule {
  std::string action;
  std::string target;
};

struct network_policy {
  std::optional<std::string> default_action;
  std::vector<network_rule> egress;
};

struct pvc_backend {
  std::string claim_name;
  bool create_if_not_exists = true;
  bool delete_on_sandbox_termination = false;
  std::optional<std::string> storage_class;
  std::optional<std::string> storage;
  std::optional<std::vector<std::string>> access_modes;
};

struct ossfs_backend {
  std::string bucket;
  std::string endpoint;
  std::string version = "2.0";
  std::optional<std::vector<std::string>> options;
  std::optional<std::string> access_key_id;
  std::optional<std::string> access_key_secret;
};

struct volume {
  std::string name;
  std::string mount_path;
  bool read_only = false;
  std::optional<std::string> sub_path;
  std::optional<std::string> host_path;
  std::optional<pvc_backend> pvc;
  std::optional<ossfs_backend> ossfs;
};

/// `CreateSandboxRequest` after schema validation.
struct create_request {
  std::optional<std::string> image_uri;
  std::string username;
  std::string password;
  std::optional<std::string> snapshot_id;
  std::optional<std::pair<std::string, std::string>> platform;
  std::optional<lax_int> timeout;
  std::optional<string_map> resource_limits;
  std::optional<string_map> env;
  std::optional<string_map> metadata;
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<network_policy> policy;
  bool credential_proxy = false;
  bool secure_access = false;
  std::optional<std::vector<volume>> volumes;
  std::optional<string_map> extensions;
};

bool is_dns_label(std::string_view x) {
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  };
  if (x.empty() || !ok(x.front()) || !ok(x.back()))
    return false;
  return std::all_of(x.begin(), x.end(),
                     [&](char c) { return ok(c) || c == '-'; });
}

bool is_drive_path(std::string_view x) {
  return x.size() >= 3
         && ((x[0] >= 'A' && x[0] <= 'Z') || (x[0] >= 'a' && x[0] <= 'z'))
         && x[1] == ':' && (x[2] == '/' || x[2] == '\\');
}

/// `^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei)?$`
bool is_storage_quantity(std::string_view x) {
  size_t i = 0;
  auto digits = [&] {
    auto start = i;
    while (i < x.size() && x[i] >= '0' && x[i] <= '9')
      ++i;
    return i > start;
  };
  if (!digits())
    return false;
  if (i < x.size() && x[i] == '.') {
    ++i;
    if (!digits())
      return false;
  }
  auto unit = x.substr(i);
  return unit.empty() || unit == "Ki" || unit == "Mi" || unit == "Gi"
         || unit == "Ti" || unit == "Pi" || unit == "Ei";
}

constexpr std::string_view dns_label_pattern
  = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

std::optional<std::string> check_name(checker& chk, const Value& obj,
                                      std::string_view field, const loc& l,
                                      size_t max) {
  auto v = chk.required(obj, field, l);
  if (v == nullptr)
    return std::nullopt;
  auto s = chk.str(*v, l / field);
  if (!s || !chk.max_len(*s, *v, l / field, max)
      || !chk.pattern(is_dns_label(*s), *v, l / field, dns_label_pattern))
    return std::nullopt;
  return s;
}

std::optional<pvc_backend> read_pvc(checker& chk, const Value& v,
                                    const loc& l) {
  if (!chk.is_object(v, l, "PVC"))
    return std::nullopt;
  auto m = chk.mark();
  pvc_backend r;
  if (auto s = check_name(chk, v, "claimName", l, 253))
    r.claim_name = *s;
  if (auto x = member(v, "createIfNotExists"))
    if (auto b = chk.boolean(*x, l / "createIfNotExists"))
      r.create_if_not_exists = *b;
  if (auto x = member(v, "deleteOnSandboxTermination"))
    if (auto b = chk.boolean(*x, l / "deleteOnSandboxTermination"))
      r.delete_on_sandbox_termination = *b;
  r.storage_class = chk.opt_str(member(v, "storageClass"), l / "storageClass");
  if (auto x = present(v, "storage")) {
    if (auto s = chk.str(*x, l / "storage"))
      if (chk.pattern(is_storage_quantity(*s), *x, l / "storage",
                      R"(^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei)?$)"))
        r.storage = *s;
  }
  if (auto x = present(v, "accessModes"))
    r.access_modes = chk.str_list(*x, l / "accessModes");
  if (!chk.clean_since(m))
    return std::nullopt;
  return r;
}

std::optional<ossfs_backend> read_ossfs(checker& chk, const Value& v,
                                        const loc& l) {
  if (!chk.is_object(v, l, "OSSFS"))
    return std::nullopt;
  auto m = chk.mark();
  ossfs_backend r;
  if (auto x = chk.required(v, "bucket", l))
    if (auto s = chk.str(*x, l / "bucket"))
      if (chk.min_len(*s, *x, l / "bucket", 3)
          && chk.max_len(*s, *x, l / "bucket", 63))
        r.bucket = *s;
  if (auto x = chk.required(v, "endpoint", l))
    if (auto s = chk.str(*x, l / "endpoint"))
      if (chk.min_len(*s, *x, l / "endpoint", 1))
        r.endpoint = *s;
  if (auto x = member(v, "version")) {
    if (x->IsString() && (view(*x) == "1.0" || view(*x) == "2.0"))
      r.version = std::string{view(*x)};
    else
      chk.add(l / "version", "literal_error", "Input should be '1.0' or '2.0'",
              *x, ctx_str("expected", "'1.0' or '2.0'"));
  }
  if (auto x = present(v, "options"))
    r.options = chk.str_list(*x, l / "options");
  auto secret = [&](std::string_view field) -> std::optional<std::string> {
    auto x = present(v, field);
    if (x == nullptr)
      return std::nullopt;
    auto s = chk.str(*x, l / field);
    if (s && !chk.min_len(*s, *x, l / field, 1))
      return std::nullopt;
    return s;
  };
  r.access_key_id = secret("accessKeyId");
  r.access_key_secret = secret("accessKeySecret");
  if (!chk.clean_since(m))
    return std::nullopt;
  if (!r.access_key_id || !r.access_key_secret) {
    chk.value_error(l,
                    "OSSFS inline credentials are required: accessKeyId and "
                    "accessKeySecret.",
                    v);
    return std::nullopt;
  }
  return r;
}

std::optional<volume> read_volume(checker& chk, const Value& v, const loc& l) {
  if (!chk.is_object(v, l, "Volume"))
    return std::nullopt;
  auto m = chk.mark();
  volume r;
  if (auto s = check_name(chk, v, "name", l, 63))
    r.name = *s;
  if (auto x = present(v, "host")) {
    auto hl = l / "host";
    if (chk.is_object(*x, hl, "Host")) {
      if (auto p = chk.required(*x, "path", hl))
        if (auto s = chk.str(*p, hl / "path"))
          if (chk.pattern(starts_with(*s, "/") || is_drive_path(*s), *p,
                          hl / "path", R"(^(/|[A-Za-z]:[\\/]))"))
            r.host_path = *s;
    }
  }
  if (auto x = present(v, "pvc"))
    r.pvc = read_pvc(chk, *x, l / "pvc");
  if (auto x = present(v, "ossfs"))
    r.ossfs = read_ossfs(chk, *x, l / "ossfs");
  if (auto x = chk.required(v, "mountPath", l))
    if (auto s = chk.str(*x, l / "mountPath"))
      if (chk.pattern(starts_with(*s, "/"), *x, l / "mountPath", "^/.*"))
        r.mount_path = *s;
  if (auto x = member(v, "readOnly"))
    if (auto b = chk.boolean(*x, l / "readOnly"))
      r.read_only = *b;
  r.sub_path = chk.opt_str(member(v, "subPath"), l / "subPath");
  if (!chk.clean_since(m))
    return std::nullopt;
  auto backends = (r.host_path ? 1 : 0) + (r.pvc ? 1 : 0) + (r.ossfs ? 1 : 0);
  if (backends != 1) {
    chk.value_error(l,
                    std::string{"Exactly one backend (host, pvc, ossfs) must "
                                "be specified, but "}
                      + (backends == 0 ? "none was" : "multiple were")
                      + " provided.",
                    v);
    return std::nullopt;
  }
  return r;
}

std::optional<network_policy> read_policy(checker& chk, const Value& v,
                                          const loc& l) {
  if (!chk.is_object(v, l, "NetworkPolicy"))
    return std::nullopt;
  network_policy r;
  auto m = chk.mark();
  r.default_action = chk.opt_str(member(v, "defaultAction"),
                                 l / "defaultAction");
  if (auto e = member(v, "egress")) {
    auto el = l / "egress";
    if (chk.is_list(*e, el)) {
      size_t i = 0;
      for (auto& item : e->GetArray()) {
        auto il = el / i++;
        if (!chk.is_object(item, il, "NetworkRule"))
          continue;
        network_rule rule;
        if (auto a = chk.required(item, "action", il))
          if (auto s = chk.str(*a, il / "action"))
            rule.action = *s;
        if (auto t = chk.required(item, "target", il))
          if (auto s = chk.str(*t, il / "target"))
            if (chk.min_len(*s, *t, il / "target", 1))
              rule.target = *s;
        r.egress.push_back(std::move(rule));
      }
    }
  }
  if (!chk.clean_since(m))
    return std::nullopt;
  return r;
}

/// Schema validation of the create body (Pydantic's field order).
void read_create(checker& chk, const Value& body, create_request& req) {
  loc b{"body"};
  if (auto v = present(body, "image")) {
    auto il = b / "image";
    if (chk.is_object(*v, il, "ImageSpec")) {
      if (auto u = chk.required(*v, "uri", il))
        req.image_uri = chk.str(*u, il / "uri");
      if (auto a = present(*v, "auth")) {
        auto al = il / "auth";
        if (chk.is_object(*a, al, "ImageAuth")) {
          if (auto x = chk.required(*a, "username", al))
            if (auto s = chk.str(*x, al / "username"))
              req.username = *s;
          if (auto x = chk.required(*a, "password", al))
            if (auto s = chk.str(*x, al / "password"))
              req.password = *s;
        }
      }
    }
  }
  req.snapshot_id = chk.opt_str(member(body, "snapshotId"), b / "snapshotId");
  if (auto v = present(body, "platform")) {
    auto pl = b / "platform";
    if (chk.is_object(*v, pl, "PlatformSpec")) {
      std::optional<std::string> os;
      std::optional<std::string> arch;
      if (auto x = chk.required(*v, "os", pl))
        os = chk.str(*x, pl / "os");
      if (auto x = chk.required(*v, "arch", pl))
        arch = chk.str(*x, pl / "arch");
      if (os && arch)
        req.platform.emplace(*os, *arch);
    }
  }
  if (auto v = present(body, "timeout")) {
    if (auto t = read_int(chk, *v, b / "timeout")) {
      if (t->value < 60)
        chk.add(b / "timeout", "greater_than_equal",
                "Input should be greater than or equal to 60", *v,
                ctx_num("ge", 60));
      else
        req.timeout = *t;
    }
  }
  if (auto v = present(body, "resourceLimits"))
    req.resource_limits = chk.str_map(*v, b / "resourceLimits");
  if (auto v = present(body, "env")) {
    auto el = b / "env";
    if (chk.is_dict(*v, el)) {
      string_map env;
      for (auto& m : v->GetObject()) {
        auto k = std::string{view(m.name)};
        if (m.value.IsNull())
          env.erase(k);
        else if (auto s = chk.str(m.value, el / k))
          env[k] = *s;
      }
      req.env = std::move(env);
    }
  }
  if (auto v = present(body, "metadata"))
    req.metadata = chk.str_map(*v, b / "metadata");
  if (auto v = present(body, "entrypoint")) {
    auto el = b / "entrypoint";
    if (auto xs = chk.str_list(*v, el)) {
      if (xs->empty())
        chk.add(el, "too_short",
                "List should have at least 1 item after validation, not 0",
                *v,
                R"({"field_type":"List","min_length":1,"actual_length":0})");
      else
        req.entrypoint = std::move(*xs);
    }
  }
  if (auto v = present(body, "networkPolicy"))
    req.policy = read_policy(chk, *v, b / "networkPolicy");
  if (auto v = present(body, "credentialProxy")) {
    auto cl = b / "credentialProxy";
    if (chk.is_object(*v, cl, "CredentialProxyConfig"))
      if (auto e = member(*v, "enabled"))
        if (auto x = chk.boolean(*e, cl / "enabled"))
          req.credential_proxy = *x;
  }
  if (auto v = member(body, "secureAccess"))
    if (auto x = chk.boolean(*v, b / "secureAccess"))
      req.secure_access = *x;
  if (auto v = present(body, "volumes")) {
    auto vl = b / "volumes";
    if (chk.is_list(*v, vl)) {
      std::vector<volume> xs;
      size_t i = 0;
      for (auto& item : v->GetArray())
        if (auto x = read_volume(chk, item, vl / i++))
          xs.push_back(std::move(*x));
      req.volumes = std::move(xs);
    }
  }
  if (auto v = present(body, "extensions"))
    req.extensions = chk.str_map(*v, b / "extensions");
}

bool is_blank(const std::optional<std::string>& x) {
  return !x || trim(*x).empty();
}

/// The model validator of `CreateSandboxRequest`.
void check_create_model(checker& chk, const Value& body, create_request& req) {
  loc b{"body"};
  std::optional<std::string> pool_ref;
  if (req.extensions)
    if (auto i = req.extensions->find("poolRef"); i != req.extensions->end())
      pool_ref = i->second;
  if (!is_blank(pool_ref)) {
    if (!is_blank(req.snapshot_id))
      chk.value_error(b, "snapshotId cannot be used together with poolRef.",
                      body);
    else if (req.credential_proxy)
      chk.value_error(
        b, "credentialProxy.enabled cannot be used together with poolRef.",
        body);
    return;
  }
  if (req.credential_proxy && !req.policy) {
    chk.value_error(b, "credentialProxy.enabled requires networkPolicy.",
                    body);
    return;
  }
  auto has_image = !is_blank(req.image_uri);
  auto has_snapshot = !is_blank(req.snapshot_id);
  if (has_image == has_snapshot) {
    chk.value_error(b, "Exactly one of image or snapshotId must be provided.",
                    body);
    return;
  }
  if (has_image && !req.entrypoint) {
    chk.value_error(b, "Entrypoint is required when image is provided.", body);
    return;
  }
  if (!has_image)
    req.image_uri.reset();
  if (!has_snapshot)
    req.snapshot_id.reset();
  if (!req.resource_limits)
    chk.value_error(b, "resourceLimits is required when poolRef is not "
                       "provided.",
                    body);
}

api_error invalid(std::string msg) {
  return make_api_error(ec::invalid_parameter, std::move(msg));
}

api_error volume_error(const char* code, std::string msg) {
  return api_error{400, code, std::move(msg)};
}

/// `access.renew.extend.seconds` (OSEP-0009).
std::optional<api_error> check_extensions(const string_map& ext) {
  static constexpr const char* key = "access.renew.extend.seconds";
  auto i = ext.find(key);
  if (i == ext.end())
    return std::nullopt;
  auto raw = i->second;
  auto s = trim(raw);
  auto prefix = std::string{"Invalid extensions[\""} + key + "\"]: ";
  if (s.empty())
    return invalid(prefix
                   + "empty value; omit the key to disable renew-on-access, "
                     "or use an integer between 300 and 86400 seconds.");
  auto n = int_from_string(s);
  if (!n || s.find('.') != std::string_view::npos)
    return invalid(prefix
                   + "must be a base-10 integer string between 300 and "
                     "86400, got "
                   + py_repr(raw) + ".");
  if (n->overflow || n->value < 300 || n->value > 86400)
    return invalid(prefix
                   + "must be between 300 and 86400 seconds (5 minutes to 24 "
                     "hours inclusive), got "
                   + n->text + ".");
  return std::nullopt;
}

std::optional<api_error> check_platform(create_request& req,
                                        sandbox_spec& spec) {
  if (!req.platform)
    return std::nullopt;
  auto& [os, arch] = *req.platform;
  auto nos = lower(trim(os));
  auto narch = lower(trim(arch));
  if (nos != "linux" && nos != "windows")
    return invalid("Unsupported platform.os '" + os
                   + "'. Supported values: ['linux', 'windows'].");
  if (narch != "amd64" && narch != "arm64")
    return invalid("Unsupported platform.arch '" + arch
                   + "'. Supported values: ['amd64', 'arm64'].");
  spec.platform_os = nos;
  spec.platform_arch = narch;
  return std::nullopt;
}

std::optional<api_error> check_timeout(const create_request& req,
                                       const node_config& cfg,
                                       sandbox_spec& spec) {
  if (!req.timeout)
    return std::nullopt;
  auto& t = *req.timeout;
  auto now_s = now_us() / 1000000;
  constexpr int64_t max_s = 253402300799LL; // 9999-12-31T23:59:59Z
  if (t.overflow || t.value > max_s - now_s)
    return invalid("Sandbox timeout " + t.text
                   + "s is too large to represent safely.");
  auto cap = cfg.server.max_sandbox_timeout_seconds;
  if (cap > 0 && t.value > cap)
    return invalid("Sandbox timeout " + t.text
                   + "s exceeds configured maximum of " + std::to_string(cap)
                   + "s.");
  spec.timeout_s = t.value;
  return std::nullopt;
}

std::optional<api_error> check_network(const create_request& req,
                                       const node_config& cfg) {
  if (!req.policy)
    return std::nullopt;
  auto& mode = cfg.docker.network_mode;
  if (mode == "host")
    return invalid(
      "networkPolicy is not supported when docker network_mode=host.");
  if (mode != "bridge")
    return invalid("networkPolicy is not supported when docker network_mode='"
                   + mode
                   + "' (user-defined network). Use network_mode='bridge' to "
                     "enable network policy enforcement.");
  if (cfg.egress.image.empty())
    return invalid(
      "egress.image must be configured when networkPolicy is provided.");
  return std::nullopt;
}

/// Our addition: the original silently ignored limits it could not parse.
std::optional<api_error> check_resources(const string_map& limits) {
  auto get = [&](const char* key) -> std::optional<std::string> {
    auto i = limits.find(key);
    if (i == limits.end() || trim(i->second).empty())
      return std::nullopt;
    return i->second;
  };
  if (auto cpu = get("cpu"); cpu && !validation::parse_cpu(*cpu))
    return invalid("Invalid resourceLimits.cpu '" + *cpu
                   + "': expected a positive number of cores (e.g. '2', "
                     "'0.5') or millicores (e.g. '500m').");
  if (auto mem = get("memory"); mem && !validation::parse_memory(*mem))
    return invalid("Invalid resourceLimits.memory '" + *mem
                   + "': expected a byte count with an optional unit (b, k, "
                     "kb, m, mb, g, gb, t, tb, ki, mi, gi, ti), e.g. '512Mi' "
                     "or '2G'.");
  if (auto gpu = get("gpu"); gpu && !validation::parse_gpu(*gpu)) {
    auto zero = trim(*gpu).find_first_not_of('0') == std::string_view::npos;
    if (!zero)
      return invalid("Invalid resourceLimits.gpu '" + *gpu
                     + "': expected a non-negative integer or 'all'.");
  }
  return std::nullopt;
}

std::string normalize_prefix_path(std::string path) {
  std::replace(path.begin(), path.end(), '\\', '/');
  if (path.size() >= 2 && path[1] == ':'
      && ((path[0] >= 'A' && path[0] <= 'Z')
          || (path[0] >= 'a' && path[0] <= 'z')))
    path[0] = static_cast<char>(std::tolower(path[0]));
  if (path.size() > 1 && path.back() == '/')
    path.pop_back();
  return path;
}

std::optional<api_error>
check_host_path(const std::string& path,
                const std::vector<std::string>& allowed) {
  if (path.empty())
    return volume_error("VOLUME::INVALID_HOST_PATH",
                        "Host path cannot be empty.");
  if (!starts_with(path, "/") && !is_drive_path(path))
    return volume_error("VOLUME::INVALID_HOST_PATH",
                        "Host path '" + path
                          + "' must be an absolute path starting with '/' or "
                            "a Windows drive letter (e.g. 'C:\\' or 'D:/').");
  auto fwd = path;
  std::replace(fwd.begin(), fwd.end(), '\\', '/');
  auto tail = std::string_view{fwd};
  if (is_drive_path(fwd))
    tail.remove_prefix(2);
  if (tail.find("/..") != std::string_view::npos)
    return volume_error("VOLUME::INVALID_HOST_PATH",
                        "Host path '" + path
                          + "' contains path traversal component '..'.");
  if (tail.find("//") != std::string_view::npos
      || (tail.size() > 1 && tail.back() == '/'))
    return volume_error("VOLUME::INVALID_HOST_PATH",
                        "Host path '" + path
                          + "' is not normalized. Remove redundant slashes.");
  auto norm = normalize_prefix_path(path);
  for (auto& prefix : allowed) {
    auto p = normalize_prefix_path(prefix);
    if (norm == p || starts_with(norm, p == "/" ? p : p + "/"))
      return std::nullopt;
  }
  return volume_error("VOLUME::HOST_PATH_NOT_ALLOWED",
                      "Host path '" + path
                        + "' is not under any allowed prefix. Allowed "
                          "prefixes: "
                        + py_list_repr(allowed));
}

std::optional<api_error> check_volumes(const std::vector<volume>& xs,
                                       const node_config& cfg) {
  std::set<std::string> seen;
  for (auto& v : xs) {
    // Every message names the offending volume.
    auto named = [&v](api_error e) {
      e.message = "Volume '" + v.name + "': " + e.message;
      return e;
    };
    if (!seen.insert(v.name).second)
      return volume_error("VOLUME::DUPLICATE_NAME",
                          "Duplicate volume name '" + v.name
                            + "'. Each volume must have a unique name.");
    if (v.name.empty())
      return volume_error("VOLUME::INVALID_NAME",
                          "Volume name cannot be empty.");
    if (v.name.size() > 63)
      return volume_error("VOLUME::INVALID_NAME",
                          "Volume name '" + v.name
                            + "' exceeds maximum length of 63 characters.");
    if (!is_dns_label(v.name))
      return volume_error("VOLUME::INVALID_NAME",
                          "Volume name '" + v.name
                            + "' is not a valid DNS label. Must be lowercase "
                              "alphanumeric with optional hyphens.");
    if (v.mount_path.empty())
      return named(volume_error("VOLUME::INVALID_MOUNT_PATH",
                                "Mount path cannot be empty."));
    if (!starts_with(v.mount_path, "/"))
      return named(
        volume_error("VOLUME::INVALID_MOUNT_PATH",
                     "Mount path '" + v.mount_path
                       + "' must be an absolute path starting with '/'."));
    if (v.sub_path && !v.sub_path->empty()) {
      auto& sp = *v.sub_path;
      if (starts_with(sp, "/"))
        return named(volume_error(
          "VOLUME::INVALID_SUB_PATH",
          "SubPath '" + sp + "' must be a relative path, not absolute."));
      size_t start = 0;
      for (;;) {
        auto slash = sp.find('/', start);
        if (sp.compare(start,
                       slash == std::string::npos ? std::string::npos
                                                  : slash - start,
                       "..")
            == 0)
          return named(
            volume_error("VOLUME::INVALID_SUB_PATH",
                         "SubPath '" + sp
                           + "' contains path traversal '..' which is "
                             "not allowed."));
        if (slash == std::string::npos)
          break;
        start = slash + 1;
      }
    }
    if (v.host_path)
      if (auto e
          = check_host_path(*v.host_path, cfg.storage.allowed_host_paths))
        return named(*e);
    if (v.pvc) {
      auto& n = v.pvc->claim_name;
      if (n.empty())
        return named(volume_error("VOLUME::INVALID_PVC_NAME",
                                  "PVC claim name cannot be empty."));
      if (n.size() > 253)
        return named(
          volume_error("VOLUME::INVALID_PVC_NAME",
                       "PVC claim name '" + n
                         + "' exceeds maximum length of 253 characters."));
      if (!is_dns_label(n))
        return named(
          volume_error("VOLUME::INVALID_PVC_NAME",
                       "PVC claim name '" + n
                         + "' is not a valid Kubernetes resource name."));
    }
    if (v.ossfs) {
      auto& o = *v.ossfs;
      if (trim(o.bucket).empty())
        return named(volume_error("VOLUME::INVALID_OSSFS_BUCKET",
                                  "OSSFS bucket cannot be empty."));
      if (trim(o.endpoint).empty())
        return named(volume_error("VOLUME::INVALID_OSSFS_ENDPOINT",
                                  "OSSFS endpoint cannot be empty."));
      if (o.options) {
        for (auto& opt : *o.options) {
          auto t = trim(opt);
          if (t.empty())
            return named(
              volume_error("VOLUME::INVALID_OSSFS_OPTION",
                           "OSSFS options must be non-empty strings."));
          if (t.front() == '-')
            return named(
              volume_error("VOLUME::INVALID_OSSFS_OPTION",
                           "OSSFS options must be raw option payloads "
                           "without '-' prefix (e.g. 'allow_other', "
                           "'uid=1000')."));
        }
      }
      if (!o.access_key_id || o.access_key_id->empty() || !o.access_key_secret
          || o.access_key_secret->empty())
        return named(volume_error("VOLUME::INVALID_OSSFS_CREDENTIALS",
                                  "OSSFS inline credentials are required: "
                                  "accessKeyId and accessKeySecret must be "
                                  "provided."));
    }
  }
  return std::nullopt;
}

/// `model_dump(by_alias=True, exclude_none=True)` of the policy: what the
/// egress sidecar receives.
std::string policy_json(const network_policy& p) {
  out o;
  o.begin_object();
  if (p.default_action)
    o.key("defaultAction").str(*p.default_action);
  o.key("egress").begin_array();
  for (auto& r : p.egress)
    o.begin_object().key("action").str(r.action).key("target").str(r.target)
      .end_object();
  o.end_array().end_object();
  return o.release();
}

/// The volumes with defaults applied, in the API's camelCase shape.
std::string volumes_json(const std::vector<volume>& xs) {
  out o;
  o.begin_array();
  for (auto& v : xs) {
    o.begin_object();
    o.key("name").str(v.name);
    if (v.host_path)
      o.key("host").begin_object().key("path").str(*v.host_path).end_object();
    if (v.pvc) {
      auto& p = *v.pvc;
      o.key("pvc").begin_object();
      o.key("claimName").str(p.claim_name);
      o.key("createIfNotExists").boolean(p.create_if_not_exists);
      o.key("deleteOnSandboxTermination")
        .boolean(p.delete_on_sandbox_termination);
      if (p.storage_class)
        o.key("storageClass").str(*p.storage_class);
      if (p.storage)
        o.key("storage").str(*p.storage);
      if (p.access_modes)
        o.key("accessModes").strings(*p.access_modes);
      o.end_object();
    }
    if (v.ossfs) {
      auto& s = *v.ossfs;
      o.key("ossfs").begin_object();
      o.key("bucket").str(s.bucket);
      o.key("endpoint").str(s.endpoint);
      o.key("version").str(s.version);
      if (s.options)
        o.key("options").strings(*s.options);
      if (s.access_key_id)
        o.key("accessKeyId").str(*s.access_key_id);
      if (s.access_key_secret)
        o.key("accessKeySecret").str(*s.access_key_secret);
      o.end_object();
    }
    o.key("mountPath").str(v.mount_path);
    o.key("readOnly").boolean(v.read_only);
    if (v.sub_path)
      o.key("subPath").str(*v.sub_path);
    o.end_object();
  }
  o.end_array();
  return o.release();
}

const std::vector<std::string>& snapshot_default_entrypoint() {
  static const std::vector<std::string> x = {"tail", "-f", "/dev/null"};
  return x;
}

// -- query strings ------------------------------------------------------------

/// `parse_qsl(qs, keep_blank_values=True)` as Starlette calls it.
std::vector<std::pair<std::string, std::string>>
split_query(std::string_view qs) {
  std::vector<std::pair<std::string, std::string>> r;
  size_t start = 0;
  while (start <= qs.size()) {
    auto amp = qs.find('&', start);
    auto seg = qs.substr(start, amp == std::string_view::npos
                                  ? std::string_view::npos
                                  : amp - start);
    if (!seg.empty()) {
      auto eq = seg.find('=');
      if (eq == std::string_view::npos)
        r.emplace_back(url_decode(seg), std::string{});
      else
        r.emplace_back(url_decode(seg.substr(0, eq)),
                       url_decode(seg.substr(eq + 1)));
    }
    if (amp == std::string_view::npos)
      break;
    start = amp + 1;
  }
  return r;
}

} // namespace

// -- time ---------------------------------------------------------------------

int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch())
    .count();
}

std::string format_time(int64_t us) {
  auto secs = us / 1000000;
  auto frac = us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    --secs;
  }
  auto days = secs / 86400;
  auto sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    --days;
  }
  int64_t y = 0;
  unsigned m = 0;
  unsigned d = 0;
  civil_from_days(days, y, m, d);
  char buf[64];
  auto n = std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02uT%02d:%02d:%02d",
                         static_cast<long long>(y), m, d,
                         static_cast<int>(sod / 3600),
                         static_cast<int>(sod / 60 % 60),
                         static_cast<int>(sod % 60));
  std::string r(buf, static_cast<size_t>(n));
  if (frac != 0) {
    std::snprintf(buf, sizeof(buf), ".%06d", static_cast<int>(frac));
    r += buf;
  }
  r += 'Z';
  return r;
}

bool parse_time(std::string_view str, int64_t& us) {
  std::string err;
  return parse_time_detail(str, us, err);
}

// -- requests -----------------------------------------------------------------

decoded<sandbox_spec> decode_create(std::string_view body,
                                    const node_config& cfg) {
  rapidjson::Document doc;
  if (auto r = parse_body(body, doc))
    return *r;
  if (!doc.IsObject()) {
    checker chk;
    chk.add(loc{"body"}, "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields "
            "from",
            doc);
    return reject_422(chk.problems);
  }
  checker chk;
  create_request req;
  read_create(chk, doc, req);
  if (chk.problems.empty())
    check_create_model(chk, doc, req);
  if (!chk.problems.empty())
    return reject_422(chk.problems);
  // Service-level rules, in the original's order (§1.4).
  sandbox_spec spec;
  if (req.extensions) {
    if (auto e = check_extensions(*req.extensions))
      return reject(*e);
    if (auto i = req.extensions->find("poolRef");
        i != req.extensions->end() && !i->second.empty())
      return reject(make_api_error(
        ec::unsupported_pool_ref,
        "poolRef is not supported by the Docker provider. Use Kubernetes "
        "BatchSandbox provider instead."));
    spec.extensions = *req.extensions;
  }
  if (req.image_uri) {
    spec.image = *req.image_uri;
    spec.image_username = req.username;
    spec.image_password = req.password;
  }
  if (req.entrypoint)
    spec.entrypoint = *req.entrypoint;
  if (req.snapshot_id) {
    spec.snapshot_id = *req.snapshot_id;
    if (!req.entrypoint)
      spec.entrypoint = snapshot_default_entrypoint();
  }
  if (spec.entrypoint.empty())
    return reject(make_api_error(ec::invalid_entrypoint,
                                 "Entrypoint must contain at least one "
                                 "command."));
  if (req.metadata) {
    if (auto e = validation::check_metadata(*req.metadata))
      return reject(*e);
    spec.metadata = *req.metadata;
  }
  if (auto e = check_platform(req, spec))
    return reject(*e);
  if (auto e = check_timeout(req, cfg, spec))
    return reject(*e);
  if (req.secure_access)
    return reject(invalid("secureAccess is not supported when "
                          "runtime.type='docker'. Use the Kubernetes runtime "
                          "to create secured sandboxes."));
  if (auto e = check_network(req, cfg))
    return reject(*e);
  if (req.resource_limits) {
    if (auto e = check_resources(*req.resource_limits))
      return reject(*e);
    spec.resource_limits = *req.resource_limits;
  }
  if (spec.platform_os == "windows")
    return reject(invalid("Windows sandboxes are not supported by this "
                          "server."));
  if (req.volumes) {
    if (auto e = check_volumes(*req.volumes, cfg))
      return reject(*e);
    spec.volumes_json = volumes_json(*req.volumes);
  }
  if (req.env)
    spec.env = *req.env;
  if (req.policy)
    spec.network_policy_json = policy_json(*req.policy);
  return spec;
}

decoded<int64_t> decode_renew(std::string_view body) {
  rapidjson::Document doc;
  if (auto r = parse_body(body, doc))
    return *r;
  checker chk;
  loc b{"body"};
  if (!doc.IsObject()) {
    chk.add(b, "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields "
            "from",
            doc);
    return reject_422(chk.problems);
  }
  auto v = chk.required(doc, "expiresAt", b);
  if (v == nullptr)
    return reject_422(chk.problems);
  auto l = b / "expiresAt";
  int64_t us = 0;
  std::string err;
  bool ok = false;
  if (v->IsString()) {
    ok = parse_time_detail(view(*v), us, err);
  } else if (v->IsNumber() && !v->IsDouble()) {
    ok = unix_to_us(v->IsInt64() ? static_cast<long double>(v->GetInt64())
                                 : static_cast<long double>(v->GetUint64()),
                    us, err);
  } else if (v->IsDouble() && std::isfinite(v->GetDouble())) {
    ok = unix_to_us(v->GetDouble(), us, err);
  } else {
    chk.add(l, "datetime_type", "Input should be a valid datetime", *v);
    return reject_422(chk.problems);
  }
  if (!ok) {
    chk.add(l, "datetime_from_date_parsing",
            "Input should be a valid datetime or date, " + err, *v,
            ctx_str("error", err));
    return reject_422(chk.problems);
  }
  return us;
}

decoded<metadata_patch> decode_patch(std::string_view body) {
  rapidjson::Document doc;
  if (auto r = parse_body(body, doc))
    return *r;
  checker chk;
  loc b{"body"};
  if (!chk.is_dict(doc, b))
    return reject_422(chk.problems);
  // Document order with the last duplicate winning, like a Python dict.
  std::vector<std::pair<std::string, const Value*>> entries;
  for (auto& m : doc.GetObject()) {
    auto k = std::string{view(m.name)};
    auto i = std::find_if(entries.begin(), entries.end(),
                          [&](auto& e) { return e.first == k; });
    if (i != entries.end())
      i->second = &m.value;
    else
      entries.emplace_back(k, &m.value);
  }
  metadata_patch patch;
  for (auto& [k, v] : entries) {
    if (v->IsNull())
      patch.remove.push_back(k);
    else if (auto s = chk.str(*v, b / k))
      patch.set[k] = *s;
  }
  if (!chk.problems.empty())
    return reject_422(chk.problems);
  for (auto& [k, v] : entries)
    if (auto e = validation::check_patch_key(k))
      return reject(*e);
  if (auto e = validation::check_metadata(patch.set))
    return reject(*e);
  return patch;
}

/// Reads `page` (>= 1) and `pageSize` (1..200) of a list query; problems go
/// to `chk` with FastAPI's wording.
void read_page_params(checker& chk, const std::optional<std::string>& page,
                      const std::optional<std::string>& page_size,
                      int32_t& page_out, int32_t& page_size_out) {
  auto read = [&](const std::optional<std::string>& raw, const char* name,
                  int32_t& out, int64_t max) {
    if (!raw)
      return;
    auto l = loc{"query"} / name;
    auto input = quote(*raw);
    auto n = int_from_string(*raw);
    if (!n) {
      chk.add(l, "int_parsing",
              "Input should be a valid integer, unable to parse string as an "
              "integer",
              input);
      return;
    }
    if (n->value < 1) {
      chk.add(l, "greater_than_equal",
              "Input should be greater than or equal to 1", input,
              ctx_num("ge", 1));
      return;
    }
    if (n->value > max) {
      chk.add(l, "less_than_equal",
              "Input should be less than or equal to " + std::to_string(max),
              input, ctx_num("le", max));
      return;
    }
    // A page number beyond int32 can only be past the end anyway.
    out = static_cast<int32_t>(std::min<int64_t>(n->value, INT32_MAX));
  };
  read(page, "page", page_out, INT64_MAX);
  read(page_size, "pageSize", page_size_out, 200);
}

decoded<list_query> decode_list_query(std::string_view query) {
  if (!query.empty() && query.front() == '?')
    query.remove_prefix(1);
  list_query q;
  bool any_state = false;
  std::optional<std::string> metadata;
  std::optional<std::string> page;
  std::optional<std::string> page_size;
  for (auto& [k, v] : split_query(query)) {
    if (k == "state") {
      any_state = true;
      sandbox_state s;
      if (from_string(v, s)
          && std::find(q.states.begin(), q.states.end(), s) == q.states.end())
        q.states.push_back(s);
    } else if (k == "metadata") {
      metadata = v;
    } else if (k == "page") {
      page = v;
    } else if (k == "pageSize") {
      page_size = v;
    }
  }
  q.match_nothing = any_state && q.states.empty();
  checker chk;
  read_page_params(chk, page, page_size, q.page, q.page_size);
  if (!chk.problems.empty())
    return reject_422(chk.problems);
  if (metadata && !metadata->empty()) {
    // parse_qsl(..., keep_blank_values=True, strict_parsing=True)
    std::string_view md = *metadata;
    size_t start = 0;
    for (;;) {
      auto amp = md.find('&', start);
      auto seg = md.substr(start, amp == std::string_view::npos
                                    ? std::string_view::npos
                                    : amp - start);
      auto eq = seg.find('=');
      if (eq == std::string_view::npos)
        return reject(
          make_api_error(ec::invalid_metadata_format,
                         "Invalid metadata format: bad query field: "
                           + py_repr(seg)));
      q.metadata[url_decode(seg.substr(0, eq))]
        = url_decode(seg.substr(eq + 1));
      if (amp == std::string_view::npos)
        break;
      start = amp + 1;
    }
  }
  return q;
}

decoded<snapshot_query> decode_snapshot_query(std::string_view query) {
  if (!query.empty() && query.front() == '?')
    query.remove_prefix(1);
  snapshot_query q;
  std::optional<std::string> page;
  std::optional<std::string> page_size;
  for (auto& [k, v] : split_query(query)) {
    if (k == "sandboxId")
      q.sandbox_id = v; // the last one wins, like FastAPI
    else if (k == "name") {
      q.name = v;
      q.by_name = !v.empty(); // blank = no filter
    }
    else if (k == "state")
      q.states.push_back(v);
    else if (k == "page")
      page = v;
    else if (k == "pageSize")
      page_size = v;
  }
  checker chk;
  read_page_params(chk, page, page_size, q.page, q.page_size);
  if (!chk.problems.empty())
    return reject_422(chk.problems);
  return q;
}

decoded<std::string> decode_snapshot_request(std::string_view body) {
  // The body is optional: absent, `null` or `{}` mean "no name".
  auto blank = std::all_of(body.begin(), body.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
  });
  if (blank)
    return std::string{};
  rapidjson::Document doc;
  if (auto r = parse_body(body, doc))
    return *r;
  if (doc.IsNull())
    return std::string{};
  checker chk;
  loc b{"body"};
  if (!chk.is_dict(doc, b))
    return reject_422(chk.problems);
  std::string name;
  if (auto v = member(doc, "name"); v != nullptr && !v->IsNull())
    if (auto x = chk.str(*v, b / "name"))
      if (chk.min_len(*x, *v, b / "name", 1))
        name = *x;
  if (!chk.problems.empty())
    return reject_422(chk.problems);
  return name;
}

// -- responses ----------------------------------------------------------------

namespace {

template <class View>
void write_status(out& o, const View& x, const char* state) {
  o.key("status").begin_object();
  o.key("state").str(state);
  if (!x.reason.empty())
    o.key("reason").str(x.reason);
  if (!x.message.empty())
    o.key("message").str(x.message);
  if (x.last_transition_us != 0)
    o.key("lastTransitionAt").str(format_time(x.last_transition_us));
  o.end_object();
}

void write_platform(out& o, const sandbox_view& x) {
  if (x.platform_os.empty() && x.platform_arch.empty())
    return;
  o.key("platform").begin_object();
  o.key("os").str(x.platform_os);
  o.key("arch").str(x.platform_arch);
  o.end_object();
}

void write_sandbox(out& o, const sandbox_view& x) {
  o.begin_object();
  o.key("id").str(x.id);
  if (!x.snapshot_id.empty())
    o.key("snapshotId").str(x.snapshot_id);
  else if (!x.image.empty())
    o.key("image").begin_object().key("uri").str(x.image).end_object();
  write_platform(o, x);
  write_status(o, x, to_string(x.state));
  if (!x.metadata.empty())
    o.key("metadata").map(x.metadata);
  o.key("entrypoint").strings(x.entrypoint);
  if (x.expires_us != 0)
    o.key("expiresAt").str(format_time(x.expires_us));
  o.key("createdAt").str(format_time(x.created_us));
  o.end_object();
}

} // namespace

std::string encode_sandbox(const sandbox_view& x) {
  out o;
  write_sandbox(o, x);
  return o.release();
}

std::string encode_create_response(const sandbox_view& x) {
  out o;
  o.begin_object();
  o.key("id").str(x.id);
  write_status(o, x, to_string(x.state));
  if (!x.metadata.empty())
    o.key("metadata").map(x.metadata);
  write_platform(o, x);
  if (x.expires_us != 0)
    o.key("expiresAt").str(format_time(x.expires_us));
  o.key("createdAt").str(format_time(x.created_us));
  o.key("entrypoint").strings(x.entrypoint);
  o.end_object();
  return o.release();
}

/// The `pagination` object of list responses.
template <class Page>
void write_pagination(out& o, const Page& x) {
  int64_t size = std::max<int32_t>(x.page_size, 1);
  auto pages = (x.total_items + size - 1) / size;
  o.key("pagination").begin_object();
  o.key("page").num(x.page);
  o.key("pageSize").num(x.page_size);
  o.key("totalItems").num(x.total_items);
  o.key("totalPages").num(pages);
  o.key("hasNextPage").boolean(x.page < pages);
  o.end_object();
}

std::string encode_list(const list_page& x) {
  out o;
  o.begin_object();
  o.key("items").begin_array();
  for (auto& s : x.items)
    write_sandbox(o, s);
  o.end_array();
  write_pagination(o, x);
  if (x.partial) {
    // Extra fields the SDKs ignore (docs/cluster.md): the node may not
    // know every sandbox yet.
    o.key("partial").boolean(true);
    o.key("partialReason").str(x.partial_reason);
    o.key("missingPeers").begin_array();
    for (auto& p : x.missing_peers)
      o.str(p);
    o.end_array();
  }
  o.end_object();
  return o.release();
}

void write_snapshot(out& o, const snapshot_view& x) {
  o.begin_object();
  o.key("id").str(x.id);
  o.key("sandboxId").str(x.sandbox_id);
  if (!x.name.empty())
    o.key("name").str(x.name);
  write_status(o, x, x.state.c_str());
  o.key("createdAt").str(format_time(x.created_us));
  o.end_object();
}

std::string encode_snapshot(const snapshot_view& x) {
  out o;
  write_snapshot(o, x);
  return o.release();
}

std::string encode_snapshot_list(const snapshot_page& x) {
  out o;
  o.begin_object();
  o.key("items").begin_array();
  for (auto& s : x.items)
    write_snapshot(o, s);
  o.end_array();
  write_pagination(o, x);
  o.end_object();
  return o.release();
}

std::string encode_endpoint(const endpoint_view& x) {
  out o;
  o.begin_object();
  o.key("endpoint").str(x.endpoint);
  if (!x.headers.empty())
    o.key("headers").map(x.headers);
  o.end_object();
  return o.release();
}

std::string encode_renew(int64_t expires_us) {
  out o;
  o.begin_object().key("expiresAt").str(format_time(expires_us)).end_object();
  return o.release();
}

std::string encode_members(const std::vector<member_info>& xs) {
  out o;
  o.begin_object().key("nodes").begin_array();
  for (auto& m : xs) {
    o.begin_object();
    o.key("name").str(m.name);
    o.key("address").str(m.address);
    o.key("state").str(m.state);
    o.key("sandboxes").num(m.sandboxes);
    if (m.since_us != 0)
      o.key("since").str(format_time(m.since_us));
    o.key("version").str(m.version);
    if (!m.incarnation.empty())
      o.key("incarnation").str(m.incarnation);
    o.end_object();
  }
  o.end_array().end_object();
  return o.release();
}

std::string encode_error(const api_error& x) {
  out o;
  o.begin_object();
  o.key("code").str(x.code);
  o.key("message").str(x.message);
  o.end_object();
  return o.release();
}

std::string encode_deletion_pending(const std::string& id,
                                    const std::string& why) {
  out o;
  o.begin_object();
  o.key("id").str(id);
  o.key("code").str("SANDBOX::DELETION_PENDING");
  o.key("message").str("Sandbox " + id
                       + " is deleted; removing its containers is pending "
                         "and retried until it succeeds: "
                       + why);
  o.end_object();
  return o.release();
}

std::string encode_detail(std::string_view type, std::string_view loc_json,
                          std::string_view msg) {
  return encode_detail(type, loc_json, msg, "null");
}

std::string encode_detail(std::string_view type, std::string_view loc_json,
                          std::string_view msg, std::string_view input_json,
                          std::string_view ctx_json) {
  problem p;
  p.type = std::string{type};
  p.loc_json = std::string{loc_json};
  p.msg = std::string{msg};
  p.input_json = std::string{input_json};
  p.ctx_json = std::string{ctx_json};
  return detail_body({p});
}

// -- persistence --------------------------------------------------------------

std::string spec_to_json(const sandbox_spec& x) {
  out o;
  o.begin_object();
  o.key("image").str(x.image);
  o.key("imageUsername").str(x.image_username);
  o.key("imagePassword").str(x.image_password);
  o.key("snapshotId").str(x.snapshot_id);
  o.key("entrypoint").strings(x.entrypoint);
  o.key("env").map(x.env);
  o.key("metadata").map(x.metadata);
  o.key("resourceLimits").map(x.resource_limits);
  o.key("platformOs").str(x.platform_os);
  o.key("platformArch").str(x.platform_arch);
  o.key("timeoutSeconds").num(x.timeout_s);
  o.key("extensions").map(x.extensions);
  o.key("networkPolicy").str(x.network_policy_json);
  o.key("volumes").str(x.volumes_json);
  o.end_object();
  return o.release();
}

namespace {

bool read_map(const Value& v, string_map& out) {
  if (!v.IsObject())
    return false;
  string_map r;
  for (auto& m : v.GetObject()) {
    if (!m.value.IsString())
      return false;
    r[std::string{view(m.name)}] = std::string{view(m.value)};
  }
  out = std::move(r);
  return true;
}

} // namespace

bool spec_from_json(std::string_view json, sandbox_spec& x) {
  rapidjson::Document doc;
  if (base::parse_json<parse_flags>(doc, json) != base::json_status::ok
      || !doc.IsObject())
    return false;
  sandbox_spec r;
  auto str = [&](const char* name, std::string& out) {
    auto v = member(doc, name);
    if (v == nullptr)
      return true;
    if (!v->IsString())
      return false;
    out = std::string{view(*v)};
    return true;
  };
  auto map = [&](const char* name, string_map& out) {
    auto v = member(doc, name);
    return v == nullptr || read_map(*v, out);
  };
  if (!str("image", r.image) || !str("imageUsername", r.image_username)
      || !str("imagePassword", r.image_password)
      || !str("snapshotId", r.snapshot_id) || !map("env", r.env)
      || !map("metadata", r.metadata)
      || !map("resourceLimits", r.resource_limits)
      || !str("platformOs", r.platform_os)
      || !str("platformArch", r.platform_arch)
      || !map("extensions", r.extensions)
      || !str("networkPolicy", r.network_policy_json)
      || !str("volumes", r.volumes_json))
    return false;
  if (auto v = member(doc, "entrypoint")) {
    if (!v->IsArray())
      return false;
    for (auto& e : v->GetArray()) {
      if (!e.IsString())
        return false;
      r.entrypoint.emplace_back(view(e));
    }
  }
  if (auto v = member(doc, "timeoutSeconds")) {
    if (!v->IsInt64())
      return false;
    r.timeout_s = v->GetInt64();
  }
  x = std::move(r);
  return true;
}

std::string map_to_json(const string_map& x) {
  out o;
  o.map(x);
  return o.release();
}

bool map_from_json(std::string_view json, string_map& x) {
  rapidjson::Document doc;
  if (base::parse_json<parse_flags>(doc, json) != base::json_status::ok)
    return false;
  return read_map(doc, x);
}

// -- misc ---------------------------------------------------------------------

std::string url_decode(std::string_view x) {
  return percent_decode(x, true);
}

namespace {

std::mt19937_64& rng() {
  thread_local std::mt19937_64 gen = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64{seq};
  }();
  return gen;
}

/// 16 random bytes with the UUID version 4 and RFC 4122 variant bits.
std::string uuid4_hex() {
  auto hi = rng()();
  auto lo = rng()();
  hi = (hi & ~0xF000ULL) | 0x4000ULL;
  lo = (lo & ~(0xC0ULL << 56)) | (0x80ULL << 56);
  // By hand: one per request, and snprintf was the costliest part of it.
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[15 - i] = digits[(hi >> (4 * i)) & 0xF];
    out[31 - i] = digits[(lo >> (4 * i)) & 0xF];
  }
  return out;
}

} // namespace

std::string make_uuid() {
  auto h = uuid4_hex();
  return h.substr(0, 8) + '-' + h.substr(8, 4) + '-' + h.substr(12, 4) + '-'
         + h.substr(16, 4) + '-' + h.substr(20);
}

std::string make_request_id() {
  return uuid4_hex();
}

std::string make_token() {
  // A capability: drawn from the kernel's CSPRNG, not from the id generator.
  unsigned char bytes[24];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    auto n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0)
      got += static_cast<size_t>(n);
  }
  static constexpr char alphabet[]
    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string result;
  for (size_t i = 0; i < sizeof(bytes); i += 3) {
    uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    for (int shift = 18; shift >= 0; shift -= 6)
      result += alphabet[(v >> shift) & 63];
  }
  return result;
}

} // namespace osb::codec
