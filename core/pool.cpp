#include "core/pool.hpp"

#include <algorithm>
#include <cstdio>

#include "base/json.hpp"
#include "base/strings.hpp"
#include "core/json.hpp"
#include "core/spec_json.hpp"

namespace osb {

namespace {

/// The largest size of any capacity field: far above what one node or a
/// fleet can keep warm, far below what overflows the arithmetic.
constexpr int64_t max_size = 1000000;

int64_t split(int64_t x, size_t index, size_t count) {
  auto n = static_cast<int64_t>(count);
  auto i = static_cast<int64_t>(index);
  return x / n + (i < x % n ? 1 : 0);
}

} // namespace

pool_plan plan_pool(const pool_capacity& share, const pool_counts& now) {
  pool_plan result;
  auto buffer = now.warming + now.available;
  auto total = buffer + now.allocated;
  auto wanted_buffer = buffer;
  if (buffer < share.buffer_min || buffer > share.buffer_max)
    wanted_buffer = (share.buffer_min + share.buffer_max) / 2;
  auto wanted_total = std::max(now.allocated + wanted_buffer, share.pool_min);
  if (wanted_total > total)
    result.create = std::max<int64_t>(
      0, std::min(wanted_total - total, share.pool_max - total));
  int64_t excess = 0;
  if (wanted_total < total)
    excess = total - wanted_total;
  if (total > share.pool_max)
    excess = std::max(excess, total - share.pool_max);
  result.remove = std::min(excess, now.available);
  return result;
}

pool_capacity share_of(const pool_capacity& total, size_t index,
                       size_t count) {
  if (count <= 1)
    return total;
  return pool_capacity{split(total.buffer_max, index, count),
                       split(total.buffer_min, index, count),
                       split(total.pool_max, index, count),
                       split(total.pool_min, index, count)};
}

std::pair<size_t, size_t> rank_of(const std::string& self,
                                  std::vector<std::string> up) {
  if (std::find(up.begin(), up.end(), self) == up.end())
    up.push_back(self);
  std::sort(up.begin(), up.end());
  up.erase(std::unique(up.begin(), up.end()), up.end());
  auto i = std::find(up.begin(), up.end(), self);
  return {static_cast<size_t>(i - up.begin()), up.size()};
}

std::string pick_peer(const std::map<std::string, int64_t>& idle) {
  std::string best;
  int64_t most = 0;
  // By name: the first of equals stays.
  for (auto& [node, n] : idle)
    if (n > most) {
      best = node;
      most = n;
    }
  return best;
}

bool merge_record(std::map<std::string, pool_record>& records,
                  const pool_record& x) {
  auto i = records.find(x.name);
  if (i != records.end() && !supersedes(x, i->second))
    return false;
  records[x.name] = x;
  return true;
}

std::string check_capacity(const pool_capacity& x) {
  for (auto [name, value] : {std::pair{"bufferMax", x.buffer_max},
                             std::pair{"bufferMin", x.buffer_min},
                             std::pair{"poolMax", x.pool_max},
                             std::pair{"poolMin", x.pool_min}})
    if (value < 0 || value > max_size)
      return std::string{"capacitySpec."} + name + " must be between 0 and "
             + std::to_string(max_size) + ", got " + std::to_string(value)
             + ".";
  if (x.buffer_min > x.buffer_max)
    return "capacitySpec.bufferMin (" + std::to_string(x.buffer_min)
           + ") must not exceed bufferMax (" + std::to_string(x.buffer_max)
           + ").";
  if (x.pool_min > x.pool_max)
    return "capacitySpec.poolMin (" + std::to_string(x.pool_min)
           + ") must not exceed poolMax (" + std::to_string(x.pool_max)
           + ").";
  return {};
}

bool supersedes(const pool_record& a, const pool_record& b) {
  if (a.generation != b.generation)
    return a.generation > b.generation;
  if (a.updated_us != b.updated_us)
    return a.updated_us > b.updated_us;
  return a.origin > b.origin;
}

std::string template_revision(const sandbox_spec& tmpl) {
  // FNV-1a: stable across processes and builds (std::hash is not
  // guaranteed to be).
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : codec::spec_to_json(tmpl)) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(h));
  return buf;
}

const std::vector<std::string>& default_entrypoint() {
  static const std::vector<std::string> x = {"tail", "-f", "/dev/null"};
  return x;
}

sandbox_spec merge_claim(const sandbox_spec& tmpl, const sandbox_spec& claim) {
  auto r = tmpl;
  if (!claim.entrypoint.empty() && claim.entrypoint != default_entrypoint())
    r.entrypoint = claim.entrypoint;
  for (auto& [k, v] : claim.env)
    r.env[k] = v;
  for (auto& [k, v] : claim.metadata)
    r.metadata[k] = v;
  if (claim.timeout_s > 0)
    r.timeout_s = claim.timeout_s;
  r.extensions = claim.extensions;
  return r;
}

bool pool_serves(const sandbox_spec& tmpl, const sandbox_spec& req) {
  return req.snapshot_id.empty() && tmpl.image == req.image
         && tmpl.image_username == req.image_username
         && tmpl.image_password == req.image_password
         && tmpl.resource_limits == req.resource_limits
         && tmpl.network_policy_json == req.network_policy_json
         && tmpl.platform_os == req.platform_os
         && tmpl.platform_arch == req.platform_arch
         && tmpl.volumes_json.empty() && req.volumes_json.empty()
         && tmpl.extensions == req.extensions
         && std::all_of(tmpl.env.begin(), tmpl.env.end(), [&](auto& kv) {
              return req.env.count(kv.first) > 0;
            });
}

std::string pool_ref(const sandbox_spec& req) {
  auto i = req.extensions.find("poolRef");
  if (i == req.extensions.end())
    return {};
  return std::string{trim(i->second)};
}

std::string pool_note(const sandbox_spec& spec) {
  auto i = spec.extensions.find(pool_cold_extension);
  if (i == spec.extensions.end())
    return {};
  return " Pool '" + i->second
         + "' had no idle member: served by a cold create of its template.";
}

std::string pool_to_json(const pool_record& x) {
  json::writer o;
  o.begin_object();
  o.key("name").str(x.name);
  o.key("template").raw(codec::spec_to_json(x.tmpl));
  o.key("capacity").begin_object();
  o.key("bufferMax").num(x.capacity.buffer_max);
  o.key("bufferMin").num(x.capacity.buffer_min);
  o.key("poolMax").num(x.capacity.pool_max);
  o.key("poolMin").num(x.capacity.pool_min);
  o.end_object();
  o.key("createdUs").num(x.created_us);
  o.key("generation").num(x.generation);
  o.key("updatedUs").num(x.updated_us);
  o.key("origin").str(x.origin);
  o.key("deleted").boolean(x.deleted);
  o.end_object();
  return o.release();
}

bool pool_from_json(std::string_view text, pool_record& x) {
  rapidjson::Document doc;
  if (base::parse_json<json::parse_flags>(doc, text) != base::json_status::ok
      || !doc.IsObject())
    return false;
  pool_record r;
  auto num = [&](const json::Value& obj, const char* key, int64_t& out) {
    auto v = json::member(obj, key);
    if (v == nullptr || !v->IsInt64())
      return false;
    out = v->GetInt64();
    return true;
  };
  auto name = json::member(doc, "name");
  auto tmpl = json::member(doc, "template");
  auto cap = json::member(doc, "capacity");
  auto origin = json::member(doc, "origin");
  auto deleted = json::member(doc, "deleted");
  if (name == nullptr || !name->IsString() || tmpl == nullptr
      || !tmpl->IsObject() || cap == nullptr || !cap->IsObject()
      || origin == nullptr || !origin->IsString() || deleted == nullptr
      || !deleted->IsBool())
    return false;
  r.name = std::string{json::view(*name)};
  if (!codec::spec_from_json(json::to_json(*tmpl), r.tmpl))
    return false;
  if (!num(*cap, "bufferMax", r.capacity.buffer_max)
      || !num(*cap, "bufferMin", r.capacity.buffer_min)
      || !num(*cap, "poolMax", r.capacity.pool_max)
      || !num(*cap, "poolMin", r.capacity.pool_min)
      || !num(doc, "createdUs", r.created_us)
      || !num(doc, "generation", r.generation)
      || !num(doc, "updatedUs", r.updated_us))
    return false;
  r.origin = std::string{json::view(*origin)};
  r.deleted = deleted->GetBool();
  x = std::move(r);
  return true;
}

} // namespace osb
