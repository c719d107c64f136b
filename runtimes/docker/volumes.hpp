#pragma once

#include <map>
#include <string>

#include "runtimes/docker/engine.hpp"
#include "runtimes/volumes.hpp"

/// Named volumes of the Docker runtime: a `pvc` volume of the API is a Docker
/// named volume (created when missing and allowed), bound into the sandbox
/// container; the volumes the server creates carry labels that record
/// whose they are and whether they go with their sandbox.
namespace osb::runtimes::docker {

/// The bind source of a `pvc` volume: the volume name, or with `subPath`
/// the directory inside a local volume's mount point (which must stay
/// inside it, also after resolving symlinks when `local_fs`).
volume_result<std::string> named_volume_source(const volume_mount& v,
                                               const volume_info& info,
                                               bool local_fs = true);

/// "source:mountPath:rw|ro".
std::string make_bind(const std::string& source, const volume_mount& v);

/// Labels of a volume the server creates for `sandbox_id` on runtime host
/// `runtime_host` of node `node` (the scope of the sweep of volumes whose
/// sandbox is gone).
std::map<std::string, std::string>
managed_volume_labels(const volume_mount& v, const std::string& sandbox_id,
                      const std::string& node = {},
                      const std::string& runtime_host = {});

/// The sandbox a server-created volume belongs to ("" if none).
std::string volume_owner(const volume_info& info);

/// Whether the server created `info` for `sandbox_id`, and whether it goes
/// with the sandbox on delete/expiry.
bool created_for(const volume_info& info, const std::string& sandbox_id);
bool delete_with_sandbox(const volume_info& info);

} // namespace osb::runtimes::docker
