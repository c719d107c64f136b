#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "runtimes/docker/engine.hpp"

/// Volumes of a sandbox on a Docker host (reference/server-behavior.md
/// §3.10): host bind mounts restricted to an allowlist and Docker named
/// volumes for the API's `pvc` shape, both with `subPath` and `readOnly`.
/// The request was validated by core/codec already; these are the checks
/// that need the host's filesystem or the volume's Docker metadata, and the
/// bind strings handed to the container.
namespace osb::runtimes {

using docker::volume_info;

/// One entry of `sandbox_spec::volumes_json`.
struct volume_mount {
  enum class backend_kind { host, pvc, ossfs };
  std::string name;
  std::string mount_path;
  bool read_only = false;
  /// Relative path inside the source, empty for its root.
  std::string sub_path;
  backend_kind backend = backend_kind::host;
  /// `host.path`.
  std::string host_path;
  /// `pvc.claimName`: the Docker volume's name.
  std::string claim_name;
  bool create_if_not_exists = true;
  bool delete_on_termination = false;
};

/// Marks the volumes the server created (same key as the original).
inline constexpr const char* volume_managed_label
  = "opensandbox.io/volume-managed-by";
/// The sandbox a server-created volume was created for. Together with the
/// next label it is the durable record of what to remove with the sandbox:
/// Docker writes volume and labels atomically, so no crash can leave a
/// created volume unrecorded.
inline constexpr const char* volume_owner_label = "opensandbox.io/volume-for";
/// "true" when the volume goes with its sandbox (delete, expiry).
inline constexpr const char* volume_delete_label
  = "opensandbox.io/volume-delete-on-termination";

/// A problem with one volume: the API error code and a message that names
/// the volume.
struct volume_error {
  ec code = ec::invalid_parameter;
  std::string message;
};

template <class T>
using volume_result = std::variant<T, volume_error>;

/// Parses `volumes_json` (empty = no volumes).
volume_result<std::vector<volume_mount>> parse_volumes(std::string_view json);

/// True if some volume is a `pvc` one.
bool has_named_volumes(const std::vector<volume_mount>& xs);

/// True if some `pvc` volume asks for removal with the sandbox.
bool has_volumes_to_delete(const std::vector<volume_mount>& xs);

/// Lexically normalized absolute path (core/strings.hpp).
using osb::normalize_path;

/// The Docker-side checks of a host volume: joins `subPath`, re-checks the
/// result against the allowlist, compares real paths (a symlink escaping
/// every allowed prefix is refused), accepts an existing file as is and
/// otherwise creates the directory (`mkdir -p`) on this host. Returns the
/// host path to bind. `local_fs` = false: the Docker host is another
/// machine, whose files this server cannot see; only the lexical checks
/// apply and Docker creates a missing directory there.
volume_result<std::string>
prepare_host_path(const volume_mount& v,
                  const std::vector<std::string>& allowed,
                  bool local_fs = true);

/// The checks that need no runtime, in request order: host volumes
/// (`prepare_host_path`) and backends this server cannot mount (OSSFS).
std::optional<volume_error>
precheck_volumes(const std::vector<volume_mount>& xs,
                 const std::vector<std::string>& allowed,
                 bool local_fs = true);

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

} // namespace osb::runtimes
