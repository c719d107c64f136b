#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace osb {

/// Every error a user of the lifecycle API can see. The wire code of each
/// value lives in error.cpp; its HTTP status is chosen at the HTTP boundary
/// (http/status.cpp), never below it.
enum class ec : uint8_t {
  none = 0,
  unspecified,
  // -- request validation -----------------------------------------------------
  invalid_parameter,           ///< SANDBOX::INVALID_PARAMETER
  invalid_metadata_label,      ///< SANDBOX::INVALID_METADATA_LABEL
  reserved_metadata_key,       ///< INVALID_METADATA_LABEL (PATCH, un-namespaced)
  invalid_metadata_format,     ///< INVALID_METADATA_FORMAT (list filter)
  unsupported_pool_ref,        ///< SANDBOX::UNSUPPORTED_POOL_REF
  api_not_supported,           ///< SANDBOX::API_NOT_SUPPORTED
  invalid_entrypoint,          ///< DOCKER::INVALID_ENTRYPOINT
  invalid_port,                ///< DOCKER::INVALID_PORT
  invalid_expiration,          ///< DOCKER::INVALID_EXPIRATION (in the past)
  // -- state ------------------------------------------------------------------
  sandbox_not_found,           ///< DOCKER::SANDBOX_NOT_FOUND
  expiration_not_renewable,    ///< DOCKER::INVALID_EXPIRATION (a state)
  sandbox_not_running,         ///< DOCKER::SANDBOX_NOT_RUNNING
  sandbox_not_paused,          ///< DOCKER::SANDBOX_NOT_PAUSED
  // -- runtime failures -------------------------------------------------------
  query_failed,                ///< DOCKER::SANDBOX_QUERY_FAILED
  image_pull_failed,           ///< DOCKER::SANDBOX_IMAGE_PULL_FAILED
  start_failed,                ///< DOCKER::SANDBOX_START_FAILED
  delete_failed,               ///< DOCKER::SANDBOX_DELETE_FAILED
  pause_failed,                ///< DOCKER::SANDBOX_PAUSE_FAILED
  resume_failed,               ///< DOCKER::SANDBOX_RESUME_FAILED
  endpoint_unavailable,        ///< DOCKER::NETWORK_MODE_ENDPOINT_UNAVAILABLE
  runtime_unavailable,         ///< DOCKER::INITIALIZATION_ERROR
  store_failed,                ///< SANDBOX::STORE_FAILED
  node_unavailable,            ///< CLUSTER::NODE_UNAVAILABLE
  cluster_incompatible,        ///< CLUSTER::INCOMPATIBLE_NODE
  capacity_exhausted,          ///< CLUSTER::NO_CAPACITY
  request_timeout,             ///< GENERAL::TIMEOUT
  internal,                    ///< GENERAL::UNKNOWN_ERROR
  // -- HTTP layer -------------------------------------------------------------
  missing_api_key,             ///< MISSING_API_KEY
  invalid_api_key,             ///< INVALID_API_KEY
  not_implemented,             ///< GENERAL::NOT_IMPLEMENTED
  // -- volumes, diagnostics (issue 6; appended: codes cross nodes) ------------
  volume_host_path_not_allowed,  ///< VOLUME::HOST_PATH_NOT_ALLOWED
  volume_host_path_create_failed, ///< VOLUME::HOST_PATH_CREATE_FAILED
  volume_invalid_sub_path,       ///< VOLUME::INVALID_SUB_PATH
  volume_pvc_not_found,          ///< VOLUME::PVC_NOT_FOUND
  volume_pvc_inspect_failed,     ///< VOLUME::PVC_INSPECT_FAILED
  volume_pvc_subpath_unsupported_driver, ///< VOLUME::PVC_SUBPATH_UNSUPPORTED_DRIVER
  volume_unsupported_backend,    ///< VOLUME::UNSUPPORTED_BACKEND
  diagnostics_not_implemented,   ///< DIAGNOSTICS_NOT_IMPLEMENTED
  // -- snapshots (issue 6; appended: codes cross nodes) -----------------------
  snapshot_invalid_source_state, ///< SNAPSHOT::INVALID_SOURCE_STATE
  snapshot_not_found,            ///< SNAPSHOT::NOT_FOUND
  snapshot_invalid_state,        ///< SNAPSHOT::INVALID_STATE
  snapshot_delete_conflict,      ///< SNAPSHOT::DELETE_CONFLICT
  snapshot_not_ready,            ///< SNAPSHOT::NOT_READY
  snapshot_invalid_restore_config, ///< SNAPSHOT::INVALID_RESTORE_CONFIG
  snapshot_image_remove_failed,  ///< DOCKER::SNAPSHOT_IMAGE_REMOVE_FAILED
  // -- access and outcomes (issue 11; appended: codes cross nodes) ------------
  proxy_unauthorized,            ///< SANDBOX::UNAUTHORIZED
  outcome_unknown,               ///< SANDBOX::OUTCOME_UNKNOWN
  // -- cluster membership (issue 11; appended: codes cross nodes) -------------
  cluster_membership_incomplete, ///< CLUSTER::MEMBERSHIP_INCOMPLETE
  cluster_name_taken,            ///< CLUSTER::NODE_NAME_TAKEN
  // -- pools (issue 13; appended: codes cross nodes; the seed's wire codes) ---
  pool_not_found,                ///< KUBERNETES::POOL_NOT_FOUND
  pool_already_exists,           ///< KUBERNETES::POOL_ALREADY_EXISTS
  // -- the server proxy (appended: codes cross nodes) -------------------------
  proxy_backend_unreachable,     ///< GENERAL::UNKNOWN_ERROR (bad gateway)
  // -- the Kubernetes runtime (appended: codes cross nodes; the seed's code) --
  pause_not_supported,           ///< KUBERNETES::INVALID_STATE
};

/// Looks up the wire code of `x` ("DOCKER::SANDBOX_NOT_FOUND").
const char* wire_code(ec x);

/// An error as the user sees it: its kind (which decides the HTTP status at
/// the boundary), wire code and message.
struct api_error {
  ec kind = ec::internal;
  std::string code;
  std::string message;
};

/// Builds an api_error from a code and a message.
api_error make_api_error(ec x, std::string message);

} // namespace osb

namespace osb {

/// Either a value or an api_error; what the lifecycle backend answers.
template <class T>
struct result {
  std::optional<T> value;
  api_error error;

  static result ok(T x) {
    result r;
    r.value = std::move(x);
    return r;
  }
  static result fail(api_error e) {
    result r;
    r.error = std::move(e);
    return r;
  }
  bool has_value() const {
    return value.has_value();
  }
};

} // namespace osb
