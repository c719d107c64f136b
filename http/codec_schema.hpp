#pragma once

// Internal to the lifecycle API's request decoders (http/codec_*.cpp):
// Pydantic's way of checking a request (every field checked, problems
// collected with their location) and FastAPI's 422 bodies built from them.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "core/error.hpp"
#include "core/json.hpp"
#include "core/model.hpp"
#include "base/strings.hpp"
#include "http/codec_request.hpp"

namespace osb::codec::detail {

using json::member;
using json::present;
using json::quote;
using json::to_json;
using json::Value;
using json::view;

/// Python's `repr()` of a str, as the original embeds it in messages.
std::string py_repr(std::string_view s);

/// Python's `repr()` of a list of str.
std::string py_list_repr(const std::vector<std::string>& xs);

inline bool starts_with(std::string_view x, std::string_view prefix) {
  return x.substr(0, prefix.size()) == prefix;
}

/// Number of code points, which is what Pydantic's length limits count.
size_t char_count(std::string_view s);

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

/// One problem of a request, in the shape of an entry of FastAPI's `detail`.
struct problem {
  std::string type;
  std::string loc_json;
  std::string where;
  std::string msg;
  std::string input_json;
  std::string ctx_json;
};

/// FastAPI's `{"detail":[...]}` body of `xs`.
std::string detail_body(const std::vector<problem>& xs);

/// A 422 rejection of `xs` (not empty).
rejection reject_422(const std::vector<problem>& xs);

/// The rejection of a service rule: `e`'s status and error envelope.
rejection reject(const api_error& e);

/// `{"<name>":x}` as a problem's `ctx`.
std::string ctx_num(std::string_view name, int64_t x);
std::string ctx_str(std::string_view name, std::string_view x);

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
std::optional<lax_int> int_from_string(std::string_view s);

/// Reads an integer field the way Pydantic's lax mode does; reports to
/// `chk` and returns nullopt if it is none.
std::optional<lax_int> read_int(checker& chk, const Value& v, const loc& l);

// -- bodies -------------------------------------------------------------------

/// Parses a request body into `doc` as FastAPI sees it: empty/null →
/// missing, bad JSON → json_invalid, JSON nested too deep → FastAPI's answer
/// to Python's RecursionError (400 "There was an error parsing the body").
std::optional<rejection> parse_body(std::string_view body,
                                    rapidjson::Document& doc);

} // namespace osb::codec::detail
