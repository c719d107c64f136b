#include "runtimes/volumes.hpp"

#include "base/json.hpp"

#include <rapidjson/document.h>

#include <filesystem>
#include <system_error>

namespace osb::runtimes {

namespace fs = std::filesystem;

namespace {

const rapidjson::Value* member(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject())
    return nullptr;
  auto i = obj.FindMember(key);
  return i == obj.MemberEnd() ? nullptr : &i->value;
}

std::string str(const rapidjson::Value& obj, const char* key) {
  auto x = member(obj, key);
  return x != nullptr && x->IsString()
           ? std::string{x->GetString(), x->GetStringLength()}
           : std::string{};
}

bool boolean(const rapidjson::Value& obj, const char* key, bool fallback) {
  auto x = member(obj, key);
  return x != nullptr && x->IsBool() ? x->GetBool() : fallback;
}

std::string quote(std::string_view x) {
  return "'" + std::string{x} + "'";
}

/// The allowlist entries as normalized absolute paths (others never
/// match on this host).
std::vector<std::string> normalized(const std::vector<std::string>& xs) {
  std::vector<std::string> result;
  for (auto& x : xs)
    if (!x.empty() && x.front() == '/')
      result.push_back(normalize_path(x));
  return result;
}

std::string list_repr(const std::vector<std::string>& xs) {
  std::string result = "[";
  for (size_t i = 0; i < xs.size(); ++i) {
    if (i > 0)
      result += ", ";
    result += quote(xs[i]);
  }
  return result + "]";
}

} // namespace

bool is_under(std::string_view path, std::string_view prefix) {
  if (prefix == "/")
    return !path.empty() && path.front() == '/';
  if (path.size() < prefix.size() || path.substr(0, prefix.size()) != prefix)
    return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

std::string real_path(const std::string& path) {
  std::error_code err;
  auto x = fs::weakly_canonical(fs::path{path}, err);
  if (err)
    return path;
  return normalize_path(x.string());
}

std::string volume_prefix(const volume_mount& v) {
  return "Volume " + quote(v.name) + ": ";
}

volume_result<std::vector<volume_mount>> parse_volumes(std::string_view json) {
  std::vector<volume_mount> result;
  if (json.empty())
    return result;
  rapidjson::Document doc;
  base::parse_json(doc, json); // a refused depth leaves doc null
  if (doc.HasParseError() || !doc.IsArray())
    return volume_error{ec::internal, "The stored volumes are malformed."};
  for (auto& x : doc.GetArray()) {
    volume_mount v;
    v.name = str(x, "name");
    v.mount_path = str(x, "mountPath");
    v.read_only = boolean(x, "readOnly", false);
    v.sub_path = str(x, "subPath");
    if (auto h = member(x, "host")) {
      v.backend = volume_mount::backend_kind::host;
      v.host_path = str(*h, "path");
    } else if (auto p = member(x, "pvc")) {
      v.backend = volume_mount::backend_kind::pvc;
      v.claim_name = str(*p, "claimName");
      v.create_if_not_exists = boolean(*p, "createIfNotExists", true);
      v.delete_on_termination = boolean(*p, "deleteOnSandboxTermination",
                                        false);
    } else if (member(x, "ossfs") != nullptr) {
      v.backend = volume_mount::backend_kind::ossfs;
    } else {
      return volume_error{ec::internal, "The stored volume " + quote(v.name)
                                          + " has no backend."};
    }
    result.push_back(std::move(v));
  }
  return result;
}

bool has_named_volumes(const std::vector<volume_mount>& xs) {
  for (auto& x : xs)
    if (x.backend == volume_mount::backend_kind::pvc)
      return true;
  return false;
}

bool has_volumes_to_delete(const std::vector<volume_mount>& xs) {
  for (auto& x : xs)
    if (x.backend == volume_mount::backend_kind::pvc
        && x.delete_on_termination)
      return true;
  return false;
}

volume_result<std::string>
prepare_host_path(const volume_mount& v,
                  const std::vector<std::string>& allowed, bool local_fs) {
  auto base = normalize_path(v.host_path);
  auto resolved = v.sub_path.empty() ? base
                                     : normalize_path(base + "/" + v.sub_path);
  auto prefixes = normalized(allowed);
  auto allowed_lexically = [&](const std::string& path) {
    for (auto& p : prefixes)
      if (is_under(path, p))
        return true;
    return false;
  };
  if (!allowed_lexically(resolved))
    return volume_error{ec::volume_host_path_not_allowed,
                        volume_prefix(v) + "host path " + quote(resolved)
                          + " is not under any allowed prefix. Allowed "
                            "prefixes: "
                          + list_repr(allowed)};
  if (!local_fs)
    return resolved;
  // A symlink inside an allowed directory must not lead out of it.
  auto real = real_path(resolved);
  bool inside = false;
  for (auto& p : prefixes)
    if (is_under(real, real_path(p)))
      inside = true;
  if (!inside)
    return volume_error{ec::volume_host_path_not_allowed,
                        volume_prefix(v) + "host path " + quote(resolved)
                          + " resolves to " + quote(real)
                          + " through a symlink, outside every allowed "
                            "prefix "
                          + list_repr(allowed) + "."};
  std::error_code err;
  auto st = fs::status(real, err);
  if (!err && fs::exists(st))
    return real; // An existing file (e.g. an ISO) or directory is bound as is.
  fs::create_directories(real, err);
  if (err)
    return volume_error{ec::volume_host_path_create_failed,
                        volume_prefix(v) + "cannot create host directory "
                          + quote(real) + ": " + err.message()};
  return real;
}

std::optional<volume_error>
precheck_volumes(const std::vector<volume_mount>& xs,
                 const std::vector<std::string>& allowed, bool local_fs) {
  for (auto& v : xs) {
    if (v.backend == volume_mount::backend_kind::ossfs)
      return volume_error{ec::volume_unsupported_backend,
                          volume_prefix(v)
                            + "OSSFS volumes are not supported by this "
                              "server; use a host or pvc volume."};
    if (v.backend == volume_mount::backend_kind::host) {
      auto r = prepare_host_path(v, allowed, local_fs);
      if (auto e = std::get_if<volume_error>(&r))
        return *e;
    }
  }
  return std::nullopt;
}

} // namespace osb::runtimes
