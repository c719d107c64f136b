#include "http/codec_pools.hpp"

#include <utility>

#include <rapidjson/document.h>

#include "core/json.hpp"
#include "core/time.hpp"
#include "http/codec_schema.hpp"

namespace osb::codec {

using namespace detail;

namespace {

constexpr std::string_view name_pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

bool valid_name(std::string_view s) {
  if (s.empty())
    return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  };
  for (auto c : s)
    if (!alnum(c) && c != '-')
      return false;
  return alnum(s.front()) && alnum(s.back());
}

/// Reads `capacitySpec` at `l` (`PoolCapacitySpec`).
std::optional<pool_capacity> read_capacity(checker& chk, const Value& v,
                                           const loc& l) {
  if (!chk.is_object(v, l, "PoolCapacitySpec"))
    return std::nullopt;
  pool_capacity r;
  auto mark = chk.mark();
  for (auto [name, out] : {std::pair{"bufferMax", &r.buffer_max},
                           std::pair{"bufferMin", &r.buffer_min},
                           std::pair{"poolMax", &r.pool_max},
                           std::pair{"poolMin", &r.pool_min}}) {
    auto x = chk.required(v, name, l);
    if (x == nullptr)
      continue;
    auto n = read_int(chk, *x, l / name);
    if (!n)
      continue;
    if (n->overflow || n->value < 0) {
      if (n->value < 0 || n->text.rfind('-', 0) == 0)
        chk.add(l / name, "greater_than_equal",
                "Input should be greater than or equal to 0", *x,
                ctx_num("ge", 0));
      else
        chk.add(l / name, "int_parsing",
                "Input should be a valid integer, unable to parse string as "
                "an integer",
                *x);
      continue;
    }
    *out = n->value;
  }
  if (!chk.clean_since(mark))
    return std::nullopt;
  return r;
}

/// A capacity the schema accepts but that makes no sense (400).
std::optional<rejection> check(const pool_capacity& x) {
  auto why = check_capacity(x);
  if (why.empty())
    return std::nullopt;
  return reject(make_api_error(ec::invalid_parameter, std::move(why)));
}

/// The create request of a PodTemplateSpec (`spec.containers[0]`).
std::optional<std::string> from_pod_template(checker& chk, const Value& tmpl,
                                             const loc& l) {
  auto spec = member(tmpl, "spec");
  auto sl = l / "spec";
  auto containers = member(*spec, "containers");
  auto cl = sl / "containers";
  if (!chk.is_list(*containers, cl))
    return std::nullopt;
  if (containers->GetArray().Empty()) {
    chk.add(cl, "too_short",
            "List should have at least 1 item after validation, not 0",
            *containers);
    return std::nullopt;
  }
  auto& c = (*containers)[0];
  auto l0 = cl / size_t{0};
  if (!chk.is_dict(c, l0))
    return std::nullopt;
  auto mark = chk.mark();
  std::optional<std::string> image;
  if (auto v = chk.required(c, "image", l0))
    image = chk.str(*v, l0 / "image");
  std::vector<std::string> entrypoint;
  for (auto key : {"command", "args"})
    if (auto v = member(c, key); v != nullptr && !v->IsNull())
      if (auto xs = chk.str_list(*v, l0 / key))
        entrypoint.insert(entrypoint.end(), xs->begin(), xs->end());
  string_map env;
  if (auto v = member(c, "env"); v != nullptr && !v->IsNull()) {
    if (chk.is_list(*v, l0 / "env")) {
      size_t i = 0;
      for (auto& e : v->GetArray()) {
        auto el = l0 / "env" / i++;
        if (!chk.is_dict(e, el))
          continue;
        auto name = chk.required(e, "name", el);
        auto value = member(e, "value");
        if (name == nullptr)
          continue;
        auto n = chk.str(*name, el / "name");
        std::optional<std::string> s = std::string{};
        if (value != nullptr && !value->IsNull())
          s = chk.str(*value, el / "value");
        if (n && s)
          env[*n] = *s;
      }
    }
  }
  string_map limits;
  if (auto r = member(c, "resources"); r != nullptr && r->IsObject())
    if (auto lim = member(*r, "limits"); lim != nullptr && lim->IsObject())
      for (auto& m : lim->GetObject()) {
        auto k = std::string{view(m.name)};
        if (m.value.IsString())
          limits[k] = std::string{view(m.value)};
        else if (m.value.IsNumber())
          limits[k] = json::to_json(m.value);
        else
          chk.add(l0 / "resources" / "limits" / k, "string_type",
                  "Input should be a valid string", m.value);
      }
  if (!chk.clean_since(mark) || !image)
    return std::nullopt;
  json::writer o;
  o.begin_object();
  o.key("image").begin_object().key("uri").str(*image).end_object();
  if (!entrypoint.empty())
    o.key("entrypoint").strings(entrypoint);
  o.key("env").map(env);
  o.key("resourceLimits").map(limits);
  o.end_object();
  return o.release();
}

/// The create request of a template in a create request's shape: with the
/// defaults a pool's template may leave out.
std::string from_create_shape(const Value& tmpl) {
  rapidjson::Document doc;
  doc.CopyFrom(tmpl, doc.GetAllocator());
  auto& a = doc.GetAllocator();
  if (member(doc, "entrypoint") == nullptr) {
    rapidjson::Value xs{rapidjson::kArrayType};
    for (auto& x : default_entrypoint())
      xs.PushBack(rapidjson::Value{x.c_str(), a}, a);
    doc.AddMember("entrypoint", xs, a);
  }
  if (member(doc, "resourceLimits") == nullptr)
    doc.AddMember("resourceLimits", rapidjson::Value{rapidjson::kObjectType},
                  a);
  return json::to_json(doc);
}

/// Moves the locations of a create's rejection under `body.template`.
rejection under_template(rejection r) {
  std::string from = R"("loc":["body")";
  std::string to = R"("loc":["body","template")";
  for (auto i = r.body.find(from); i != std::string::npos;
       i = r.body.find(from, i + to.size()))
    r.body.replace(i, from.size(), to);
  if (r.status != 422)
    r.summary = "template: " + r.summary;
  return r;
}

} // namespace

decoded<pool_record> decode_create_pool(std::string_view body,
                                        const node_config& cfg) {
  rapidjson::Document doc;
  if (auto r = parse_body(body, doc))
    return *r;
  checker chk;
  loc b{"body"};
  if (!chk.is_object(doc, b, "CreatePoolRequest"))
    return reject_422(chk.problems);
  pool_record r;
  if (auto v = chk.required(doc, "name", b)) {
    if (auto s = chk.str(*v, b / "name")) {
      if (chk.pattern(valid_name(*s), *v, b / "name", name_pattern)
          && chk.max_len(*s, *v, b / "name", 253))
        r.name = *s;
    }
  }
  const Value* tmpl = chk.required(doc, "template", b);
  if (tmpl != nullptr && !chk.is_dict(*tmpl, b / "template"))
    tmpl = nullptr;
  if (auto v = chk.required(doc, "capacitySpec", b))
    if (auto cap = read_capacity(chk, *v, b / "capacitySpec"))
      r.capacity = *cap;
  std::optional<std::string> create_body;
  if (tmpl != nullptr) {
    auto spec = member(*tmpl, "spec");
    if (spec != nullptr && spec->IsObject()
        && member(*spec, "containers") != nullptr)
      create_body = from_pod_template(chk, *tmpl, b / "template");
    else
      create_body = from_create_shape(*tmpl);
  }
  if (!chk.problems.empty())
    return reject_422(chk.problems);
  if (auto e = check(r.capacity))
    return *e;
  auto spec = decode_create(*create_body, cfg);
  if (auto e = std::get_if<rejection>(&spec))
    return under_template(std::move(*e));
  r.tmpl = std::move(std::get<sandbox_spec>(spec));
  if (!pool_ref(r.tmpl).empty())
    return reject(make_api_error(ec::invalid_parameter,
                                 "A pool's template cannot name a pool "
                                 "(extensions.poolRef)."));
  if (!r.tmpl.snapshot_id.empty())
    return reject(make_api_error(ec::invalid_parameter,
                                 "A pool's template cannot restore a "
                                 "snapshot (snapshotId)."));
  return r;
}

decoded<pool_capacity> decode_update_pool(std::string_view body) {
  rapidjson::Document doc;
  if (auto r = parse_body(body, doc))
    return *r;
  checker chk;
  loc b{"body"};
  if (!chk.is_object(doc, b, "UpdatePoolRequest"))
    return reject_422(chk.problems);
  pool_capacity cap;
  if (auto v = chk.required(doc, "capacitySpec", b))
    if (auto x = read_capacity(chk, *v, b / "capacitySpec"))
      cap = *x;
  if (!chk.problems.empty())
    return reject_422(chk.problems);
  if (auto e = check(cap))
    return *e;
  return cap;
}

std::optional<api_error> check_pool_claim(const sandbox_spec& spec) {
  if (pool_ref(spec).empty())
    return std::nullopt;
  if (!spec.volumes_json.empty() && spec.volumes_json != "[]")
    return make_api_error(ec::invalid_parameter,
                          "volumes cannot be used together with poolRef: a "
                          "pool's members take the volumes of its "
                          "template.");
  return std::nullopt;
}

namespace {

void write_pool(json::writer& o, const pool_view& x) {
  auto& r = x.record;
  o.begin_object();
  o.key("name").str(r.name);
  o.key("capacitySpec").begin_object();
  o.key("bufferMax").num(r.capacity.buffer_max);
  o.key("bufferMin").num(r.capacity.buffer_min);
  o.key("poolMax").num(r.capacity.pool_max);
  o.key("poolMin").num(r.capacity.pool_min);
  o.end_object();
  o.key("status").begin_object();
  o.key("total").num(x.status.total());
  o.key("allocated").num(x.status.allocated);
  o.key("available").num(x.status.available);
  o.key("revision").str(template_revision(r.tmpl));
  o.end_object();
  o.key("createdAt").str(format_time(r.created_us));
  o.end_object();
}

} // namespace

std::string encode_pool(const pool_view& x) {
  json::writer o;
  write_pool(o, x);
  return o.release();
}

std::string encode_pool_list(const std::vector<pool_view>& xs) {
  json::writer o;
  o.begin_object();
  o.key("items").begin_array();
  for (auto& x : xs)
    write_pool(o, x);
  o.end_array();
  o.end_object();
  return o.release();
}

} // namespace osb::codec
