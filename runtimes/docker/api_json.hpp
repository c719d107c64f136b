#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <string>
#include <string_view>

/// RapidJSON access shared by the Engine API helpers (docker_api.cpp,
/// docker_pull.cpp). Internal to runtimes/docker/.
namespace osb::runtimes::docker::detail {

using writer_t = rapidjson::Writer<rapidjson::StringBuffer>;

inline void write_str(writer_t& w, std::string_view x) {
  w.String(x.data(), static_cast<rapidjson::SizeType>(x.size()));
}

inline void write_key(writer_t& w, std::string_view x) {
  w.Key(x.data(), static_cast<rapidjson::SizeType>(x.size()));
}

/// Member `key` of `obj` if `obj` is an object and the member exists.
inline const rapidjson::Value* member(const rapidjson::Value& obj,
                                      const char* key) {
  if (!obj.IsObject())
    return nullptr;
  auto i = obj.FindMember(key);
  return i == obj.MemberEnd() ? nullptr : &i->value;
}

inline std::string string_of(const rapidjson::Value& obj, const char* key) {
  auto x = member(obj, key);
  if (x == nullptr || !x->IsString())
    return {};
  return {x->GetString(), x->GetStringLength()};
}

inline uint64_t uint_of(const rapidjson::Value& obj, const char* key) {
  auto x = member(obj, key);
  if (x != nullptr && x->IsUint64())
    return x->GetUint64();
  if (x != nullptr && x->IsDouble() && x->GetDouble() > 0)
    return static_cast<uint64_t>(x->GetDouble());
  return 0;
}

/// Megabytes with one decimal, as people read download sizes.
inline std::string format_mb(uint64_t bytes) {
  auto tenths = (bytes + 50'000) / 100'000;
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10);
}

} // namespace osb::runtimes::docker::detail
