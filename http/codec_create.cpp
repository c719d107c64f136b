// Decoding of `POST /sandboxes`: the schema of `CreateSandboxRequest`
// (Pydantic's field order, then its model validator), then the service's
// rules in the original's order (reference/server-behavior.md §1.4). The
// volumes have a file of their own (codec_volumes.cpp).

#include "http/codec_request.hpp"

#include "base/strings.hpp"
#include "core/time.hpp"
#include "core/validation.hpp"
#include "http/codec_schema.hpp"
#include "http/codec_volumes.hpp"

#include <algorithm>
#include <optional>
#include <vector>

#include <rapidjson/document.h>

namespace osb::codec {

using namespace detail;

namespace {

struct network_rule {
  std::string action;
  std::string target;
};

struct network_policy {
  std::optional<std::string> default_action;
  std::vector<network_rule> egress;
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

/// `model_dump(by_alias=True, exclude_none=True)` of the policy: what the
/// egress sidecar receives.
std::string policy_json(const network_policy& p) {
  json::writer o;
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

/// What a snapshot restore without entrypoint runs.
const std::vector<std::string>& snapshot_default_entrypoint() {
  static const std::vector<std::string> x = {"tail", "-f", "/dev/null"};
  return x;
}

} // namespace

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

} // namespace osb::codec
