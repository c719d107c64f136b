#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/error.hpp"
#include "base/strings.hpp"

/// Volumes of a sandbox (reference/server-behavior.md §3.10) as the API
/// describes them: host directories restricted to an allowlist and named
/// volumes (the `pvc` shape), both with `subPath` and `readOnly`. The
/// request was validated by core/codec already; these are the checks that
/// need the host's filesystem, for every runtime. How a runtime provides a
/// named volume is its own business (runtimes/docker/volumes.hpp).
namespace osb::runtimes {

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
  /// `pvc.claimName`: the name of the runtime's volume.
  std::string claim_name;
  bool create_if_not_exists = true;
  bool delete_on_termination = false;
};

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

/// Whether normalized `path` equals normalized `prefix` or lies below it.
bool is_under(std::string_view path, std::string_view prefix);

/// Resolves the symlinks of the existing part of `path` on this host (the
/// rest stays lexical); returns `path` itself when that fails.
std::string real_path(const std::string& path);

/// "Volume '<name>': ", the start of every message about a volume.
std::string volume_prefix(const volume_mount& v);

/// The host-side checks of a host volume: joins `subPath`, re-checks the
/// result against the allowlist, compares real paths (a symlink escaping
/// every allowed prefix is refused), accepts an existing file as is and
/// otherwise creates the directory (`mkdir -p`) on this host. Returns the
/// host path to mount. `local_fs` = false: the runtime host is another
/// machine, whose files this server cannot see; only the lexical checks
/// apply and the runtime creates a missing directory there.
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

} // namespace osb::runtimes
