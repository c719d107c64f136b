#pragma once

// Internal to the lifecycle API's request decoders: the `volumes` of a
// create request (host, pvc and ossfs backends), their schema, the
// service's rules and the JSON the sandbox keeps of them.

#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/error.hpp"
#include "http/codec_schema.hpp"

namespace osb::codec::detail {

struct pvc_backend {
  std::string claim_name;
  bool create_if_not_exists = true;
  bool delete_on_sandbox_termination = false;
  std::optional<std::string> storage_class;
  std::optional<std::string> storage;
  std::optional<std::vector<std::string>> access_modes;
};

struct ossfs_backend {
  std::string bucket;
  std::string endpoint;
  std::string version = "2.0";
  std::optional<std::vector<std::string>> options;
  std::optional<std::string> access_key_id;
  std::optional<std::string> access_key_secret;
};

struct volume {
  std::string name;
  std::string mount_path;
  bool read_only = false;
  std::optional<std::string> sub_path;
  std::optional<std::string> host_path;
  std::optional<pvc_backend> pvc;
  std::optional<ossfs_backend> ossfs;
};


/// Schema validation of one `Volume` (Pydantic's field order, then its
/// "exactly one backend" model validator).
std::optional<volume> read_volume(checker& chk, const Value& v, const loc& l);

/// The service's volume rules (names, mount and sub paths, the host-path
/// allow-list, PVC names, OSSFS settings), in the original's order.
std::optional<api_error> check_volumes(const std::vector<volume>& xs,
                                       const node_config& cfg);

/// The volumes with defaults applied, in the API's camelCase shape.
std::string volumes_json(const std::vector<volume>& xs);

} // namespace osb::codec::detail
