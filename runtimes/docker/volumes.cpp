#include "runtimes/docker/volumes.hpp"

#include "runtimes/docker/labels.hpp"

namespace osb::runtimes::docker {

namespace {

std::string quote(std::string_view x) {
  return "'" + std::string{x} + "'";
}

} // namespace

volume_result<std::string> named_volume_source(const volume_mount& v,
                                               const volume_info& info,
                                               bool local_fs) {
  if (v.sub_path.empty())
    return v.claim_name;
  if (info.driver != "local" || info.mountpoint.empty())
    return volume_error{ec::volume_pvc_subpath_unsupported_driver,
                        volume_prefix(v)
                          + "subPath needs a Docker volume of the 'local' "
                            "driver with a mount point; volume "
                          + quote(v.claim_name) + " uses driver "
                          + quote(info.driver) + "."};
  auto base = normalize_path(info.mountpoint);
  auto joined = normalize_path(base + "/" + v.sub_path);
  if (!is_under(joined, base))
    return volume_error{ec::volume_invalid_sub_path,
                        volume_prefix(v) + "subPath " + quote(v.sub_path)
                          + " leaves volume " + quote(v.claim_name) + "."};
  if (local_fs && !is_under(real_path(joined), real_path(base)))
    return volume_error{ec::volume_invalid_sub_path,
                        volume_prefix(v) + "subPath " + quote(v.sub_path)
                          + " leaves volume " + quote(v.claim_name)
                          + " through a symlink."};
  return joined;
}

std::string make_bind(const std::string& source, const volume_mount& v) {
  return source + ":" + v.mount_path + (v.read_only ? ":ro" : ":rw");
}

std::map<std::string, std::string>
managed_volume_labels(const volume_mount& v, const std::string& sandbox_id,
                      const std::string& node,
                      const std::string& runtime_host) {
  std::map<std::string, std::string> result{
    {volume_managed_label, "server"},
    {volume_owner_label, sandbox_id},
    {volume_delete_label, v.delete_on_termination ? "true" : "false"}};
  if (!node.empty())
    result.emplace(node_label, node);
  if (!runtime_host.empty())
    result.emplace(host_label, runtime_host);
  return result;
}

std::string volume_owner(const volume_info& info) {
  auto managed = info.labels.find(volume_managed_label);
  auto owner = info.labels.find(volume_owner_label);
  if (managed == info.labels.end() || managed->second != "server"
      || owner == info.labels.end())
    return {};
  return owner->second;
}

bool created_for(const volume_info& info, const std::string& sandbox_id) {
  auto managed = info.labels.find(volume_managed_label);
  auto owner = info.labels.find(volume_owner_label);
  return managed != info.labels.end() && managed->second == "server"
         && owner != info.labels.end() && owner->second == sandbox_id;
}

bool delete_with_sandbox(const volume_info& info) {
  auto i = info.labels.find(volume_delete_label);
  return i != info.labels.end() && i->second == "true";
}

} // namespace osb::runtimes::docker
