#include "core/spec_json.hpp"

#include "base/json.hpp"
#include "core/json.hpp"

#include <utility>

namespace osb::codec {

using json::member;
using json::parse_flags;
using json::Value;
using json::view;

std::string spec_to_json(const sandbox_spec& x) {
  json::writer o;
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
  json::writer o;
  o.map(x);
  return o.release();
}

bool map_from_json(std::string_view json, string_map& x) {
  rapidjson::Document doc;
  if (base::parse_json<parse_flags>(doc, json) != base::json_status::ok)
    return false;
  return read_map(doc, x);
}

} // namespace osb::codec
