#pragma once

// RapidJSON helpers shared by the JSON codecs: the stored-spec JSON
// (core/spec_json) and the lifecycle API's wire format (http/codec_*).
// Header-only, so that the writer inlines into every encoder as before.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace osb::json {

using rapidjson::Value;

/// Parse flags of every codec: strict UTF-8, exact numbers, and NaN/Infinity
/// accepted like Python's json module does.
constexpr unsigned parse_flags = rapidjson::kParseValidateEncodingFlag
                                 | rapidjson::kParseFullPrecisionFlag
                                 | rapidjson::kParseNanAndInfFlag;

using writer_type
  = rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>,
                      rapidjson::UTF8<>, rapidjson::CrtAllocator,
                      rapidjson::kWriteNanAndInfFlag>;

/// Thin convenience layer over the RapidJSON writer.
class writer {
public:
  writer() : w_(buf_) {
    // nop
  }

  writer& key(std::string_view k) {
    w_.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    return *this;
  }

  writer& str(std::string_view s) {
    w_.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    return *this;
  }

  writer& num(int64_t x) {
    w_.Int64(x);
    return *this;
  }

  writer& boolean(bool x) {
    w_.Bool(x);
    return *this;
  }

  writer& null() {
    w_.Null();
    return *this;
  }

  writer& raw(std::string_view json) {
    w_.RawValue(json.data(), json.size(), rapidjson::kObjectType);
    return *this;
  }

  writer& value(const Value& v) {
    v.Accept(w_);
    return *this;
  }

  writer& begin_object() {
    w_.StartObject();
    return *this;
  }

  writer& end_object() {
    w_.EndObject();
    return *this;
  }

  writer& begin_array() {
    w_.StartArray();
    return *this;
  }

  writer& end_array() {
    w_.EndArray();
    return *this;
  }

  writer& map(const std::map<std::string, std::string>& xs) {
    begin_object();
    for (auto& [k, v] : xs)
      key(k).str(v);
    return end_object();
  }

  writer& strings(const std::vector<std::string>& xs) {
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
  writer_type w_;
};

/// Compact JSON text of `v`.
inline std::string to_json(const Value& v) {
  writer o;
  o.value(v);
  return o.release();
}

/// `s` as a JSON string literal.
inline std::string quote(std::string_view s) {
  writer o;
  o.str(s);
  return o.release();
}

/// The characters of a string value.
inline std::string_view view(const Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

/// Returns the last member named `name` (Python's json keeps the last one).
inline const Value* member(const Value& obj, std::string_view name) {
  const Value* found = nullptr;
  for (auto& m : obj.GetObject())
    if (view(m.name) == name)
      found = &m.value;
  return found;
}

/// Like `member`, but treats JSON null as absent.
inline const Value* present(const Value& obj, std::string_view name) {
  auto v = member(obj, name);
  return v != nullptr && !v->IsNull() ? v : nullptr;
}

} // namespace osb::json
