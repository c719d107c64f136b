#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace osb {

/// Every error a user of the lifecycle API can see. The HTTP status and the
/// wire code of each value live in one table in error.cpp.
enum class ec : uint8_t {
  none = 0,
  unspecified,
  // -- request validation (400) ----------------------------------------------
  invalid_parameter,           ///< SANDBOX::INVALID_PARAMETER
  invalid_metadata_label,      ///< SANDBOX::INVALID_METADATA_LABEL
  reserved_metadata_key,       ///< INVALID_METADATA_LABEL (PATCH, un-namespaced)
  invalid_metadata_format,     ///< INVALID_METADATA_FORMAT (list filter)
  unsupported_pool_ref,        ///< SANDBOX::UNSUPPORTED_POOL_REF
  api_not_supported,           ///< SANDBOX::API_NOT_SUPPORTED
  invalid_entrypoint,          ///< DOCKER::INVALID_ENTRYPOINT
  invalid_port,                ///< DOCKER::INVALID_PORT
  invalid_expiration,          ///< DOCKER::INVALID_EXPIRATION (400: in the past)
  // -- state (404/409) -------------------------------------------------------
  sandbox_not_found,           ///< DOCKER::SANDBOX_NOT_FOUND (404)
  expiration_not_renewable,    ///< DOCKER::INVALID_EXPIRATION (409)
  sandbox_not_running,         ///< DOCKER::SANDBOX_NOT_RUNNING (409)
  sandbox_not_paused,          ///< DOCKER::SANDBOX_NOT_PAUSED (409)
  // -- runtime failures (5xx) ------------------------------------------------
  query_failed,                ///< DOCKER::SANDBOX_QUERY_FAILED (500)
  image_pull_failed,           ///< DOCKER::SANDBOX_IMAGE_PULL_FAILED (500)
  start_failed,                ///< DOCKER::SANDBOX_START_FAILED (500)
  delete_failed,               ///< DOCKER::SANDBOX_DELETE_FAILED (500)
  pause_failed,                ///< DOCKER::SANDBOX_PAUSE_FAILED (500)
  resume_failed,               ///< DOCKER::SANDBOX_RESUME_FAILED (500)
  endpoint_unavailable,        ///< DOCKER::NETWORK_MODE_ENDPOINT_UNAVAILABLE (500)
  runtime_unavailable,         ///< DOCKER::INITIALIZATION_ERROR (503)
  store_failed,                ///< SANDBOX::STORE_FAILED (500)
  node_unavailable,            ///< CLUSTER::NODE_UNAVAILABLE (503)
  cluster_incompatible,        ///< CLUSTER::INCOMPATIBLE_NODE (409)
  capacity_exhausted,          ///< CLUSTER::NO_CAPACITY (503)
  request_timeout,             ///< GENERAL::TIMEOUT (504)
  internal,                    ///< GENERAL::UNKNOWN_ERROR (500)
  // -- HTTP layer ------------------------------------------------------------
  missing_api_key,             ///< MISSING_API_KEY (401)
  invalid_api_key,             ///< INVALID_API_KEY (401)
  not_implemented,             ///< GENERAL::NOT_IMPLEMENTED (501)
  // -- volumes, diagnostics (issue 6; appended: codes cross nodes) -----------
  volume_host_path_not_allowed,  ///< VOLUME::HOST_PATH_NOT_ALLOWED (400)
  volume_host_path_create_failed, ///< VOLUME::HOST_PATH_CREATE_FAILED (500)
  volume_invalid_sub_path,       ///< VOLUME::INVALID_SUB_PATH (400)
  volume_pvc_not_found,          ///< VOLUME::PVC_NOT_FOUND (400)
  volume_pvc_inspect_failed,     ///< VOLUME::PVC_INSPECT_FAILED (500)
  volume_pvc_subpath_unsupported_driver, ///< VOLUME::PVC_SUBPATH_UNSUPPORTED_DRIVER (400)
  volume_unsupported_backend,    ///< VOLUME::UNSUPPORTED_BACKEND (400)
  diagnostics_not_implemented,   ///< DIAGNOSTICS_NOT_IMPLEMENTED (501)
  // -- snapshots (issue 6; appended: codes cross nodes) ----------------------
  snapshot_invalid_source_state, ///< SNAPSHOT::INVALID_SOURCE_STATE (409)
  snapshot_not_found,            ///< SNAPSHOT::NOT_FOUND (404)
  snapshot_invalid_state,        ///< SNAPSHOT::INVALID_STATE (409)
  snapshot_delete_conflict,      ///< SNAPSHOT::DELETE_CONFLICT (409)
  snapshot_not_ready,            ///< SNAPSHOT::NOT_READY (409)
  snapshot_invalid_restore_config, ///< SNAPSHOT::INVALID_RESTORE_CONFIG (409)
  snapshot_image_remove_failed,  ///< DOCKER::SNAPSHOT_IMAGE_REMOVE_FAILED (500)
  // -- access and outcomes (issue 11; appended: codes cross nodes) -----------
  proxy_unauthorized,            ///< SANDBOX::UNAUTHORIZED (401)
  outcome_unknown,               ///< SANDBOX::OUTCOME_UNKNOWN (504)
  // -- cluster membership (issue 11; appended: codes cross nodes) ------------
  cluster_membership_incomplete, ///< CLUSTER::MEMBERSHIP_INCOMPLETE (503)
  cluster_name_taken,            ///< CLUSTER::NODE_NAME_TAKEN (409)
  // -- pools (issue 13; appended: codes cross nodes; the seed's wire codes) ---
  pool_not_found,                ///< KUBERNETES::POOL_NOT_FOUND (404)
  pool_already_exists,           ///< KUBERNETES::POOL_ALREADY_EXISTS (409)
};

/// HTTP status and wire code of an error code.
struct ec_info {
  int status;
  const char* code;
};

/// Looks up the HTTP status and wire code for `x`.
ec_info describe(ec x);

/// An error as the user sees it: status, wire code and message.
struct api_error {
  int status = 500;
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
