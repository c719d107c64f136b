#include "http/codec_volumes.hpp"

#include <algorithm>
#include <cctype>
#include <set>

namespace osb::codec::detail {

namespace {

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

api_error volume_error(const char* code, std::string msg) {
  // A 400 under the volume rule's own code.
  return api_error{ec::invalid_parameter, code, std::move(msg)};
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

} // namespace

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

std::string volumes_json(const std::vector<volume>& xs) {
  json::writer o;
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

} // namespace osb::codec::detail
