#include "core/error.hpp"

namespace osb {

ec_info describe(ec x) {
  switch (x) {
    case ec::none:
      return {200, ""};
    case ec::invalid_parameter:
      return {400, "SANDBOX::INVALID_PARAMETER"};
    case ec::invalid_metadata_label:
      return {400, "SANDBOX::INVALID_METADATA_LABEL"};
    case ec::reserved_metadata_key:
      return {400, "INVALID_METADATA_LABEL"};
    case ec::invalid_metadata_format:
      return {400, "INVALID_METADATA_FORMAT"};
    case ec::unsupported_pool_ref:
      return {400, "SANDBOX::UNSUPPORTED_POOL_REF"};
    case ec::api_not_supported:
      return {400, "SANDBOX::API_NOT_SUPPORTED"};
    case ec::invalid_entrypoint:
      return {400, "DOCKER::INVALID_ENTRYPOINT"};
    case ec::invalid_port:
      return {400, "DOCKER::INVALID_PORT"};
    case ec::invalid_expiration:
      return {400, "DOCKER::INVALID_EXPIRATION"};
    case ec::sandbox_not_found:
      return {404, "DOCKER::SANDBOX_NOT_FOUND"};
    case ec::expiration_not_renewable:
      return {409, "DOCKER::INVALID_EXPIRATION"};
    case ec::sandbox_not_running:
      return {409, "DOCKER::SANDBOX_NOT_RUNNING"};
    case ec::sandbox_not_paused:
      return {409, "DOCKER::SANDBOX_NOT_PAUSED"};
    case ec::query_failed:
      return {500, "DOCKER::SANDBOX_QUERY_FAILED"};
    case ec::image_pull_failed:
      return {500, "DOCKER::SANDBOX_IMAGE_PULL_FAILED"};
    case ec::start_failed:
      return {500, "DOCKER::SANDBOX_START_FAILED"};
    case ec::delete_failed:
      return {500, "DOCKER::SANDBOX_DELETE_FAILED"};
    case ec::pause_failed:
      return {500, "DOCKER::SANDBOX_PAUSE_FAILED"};
    case ec::resume_failed:
      return {500, "DOCKER::SANDBOX_RESUME_FAILED"};
    case ec::endpoint_unavailable:
      return {500, "DOCKER::NETWORK_MODE_ENDPOINT_UNAVAILABLE"};
    case ec::runtime_unavailable:
      return {503, "DOCKER::INITIALIZATION_ERROR"};
    case ec::store_failed:
      return {500, "SANDBOX::STORE_FAILED"};
    case ec::node_unavailable:
      return {503, "CLUSTER::NODE_UNAVAILABLE"};
    case ec::cluster_incompatible:
      return {409, "CLUSTER::INCOMPATIBLE_NODE"};
    case ec::cluster_membership_incomplete:
      return {503, "CLUSTER::MEMBERSHIP_INCOMPLETE"};
    case ec::cluster_name_taken:
      return {409, "CLUSTER::NODE_NAME_TAKEN"};
    case ec::capacity_exhausted:
      return {503, "CLUSTER::NO_CAPACITY"};
    case ec::request_timeout:
      return {504, "GENERAL::TIMEOUT"};
    case ec::missing_api_key:
      return {401, "MISSING_API_KEY"};
    case ec::invalid_api_key:
      return {401, "INVALID_API_KEY"};
    case ec::not_implemented:
      return {501, "GENERAL::NOT_IMPLEMENTED"};
    case ec::volume_host_path_not_allowed:
      return {400, "VOLUME::HOST_PATH_NOT_ALLOWED"};
    case ec::volume_host_path_create_failed:
      return {500, "VOLUME::HOST_PATH_CREATE_FAILED"};
    case ec::volume_invalid_sub_path:
      return {400, "VOLUME::INVALID_SUB_PATH"};
    case ec::volume_pvc_not_found:
      return {400, "VOLUME::PVC_NOT_FOUND"};
    case ec::volume_pvc_inspect_failed:
      return {500, "VOLUME::PVC_INSPECT_FAILED"};
    case ec::volume_pvc_subpath_unsupported_driver:
      return {400, "VOLUME::PVC_SUBPATH_UNSUPPORTED_DRIVER"};
    case ec::volume_unsupported_backend:
      return {400, "VOLUME::UNSUPPORTED_BACKEND"};
    case ec::diagnostics_not_implemented:
      return {501, "DIAGNOSTICS_NOT_IMPLEMENTED"};
    case ec::snapshot_invalid_source_state:
      return {409, "SNAPSHOT::INVALID_SOURCE_STATE"};
    case ec::pool_not_found:
      return {404, "KUBERNETES::POOL_NOT_FOUND"};
    case ec::pool_already_exists:
      return {409, "KUBERNETES::POOL_ALREADY_EXISTS"};
    case ec::snapshot_not_found:
      return {404, "SNAPSHOT::NOT_FOUND"};
    case ec::snapshot_invalid_state:
      return {409, "SNAPSHOT::INVALID_STATE"};
    case ec::snapshot_delete_conflict:
      return {409, "SNAPSHOT::DELETE_CONFLICT"};
    case ec::snapshot_not_ready:
      return {409, "SNAPSHOT::NOT_READY"};
    case ec::snapshot_invalid_restore_config:
      return {409, "SNAPSHOT::INVALID_RESTORE_CONFIG"};
    case ec::snapshot_image_remove_failed:
      return {500, "DOCKER::SNAPSHOT_IMAGE_REMOVE_FAILED"};
    case ec::proxy_unauthorized:
      return {401, "SANDBOX::UNAUTHORIZED"};
    case ec::outcome_unknown:
      return {504, "SANDBOX::OUTCOME_UNKNOWN"};
    case ec::unspecified:
    case ec::internal:
      break;
  }
  return {500, "GENERAL::UNKNOWN_ERROR"};
}

api_error make_api_error(ec x, std::string message) {
  auto info = describe(x);
  return api_error{info.status, info.code, std::move(message)};
}

} // namespace osb
