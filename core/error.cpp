#include "core/error.hpp"

namespace osb {

const char* wire_code(ec x) {
  switch (x) {
    case ec::none:
      return "";
    case ec::invalid_parameter:
      return "SANDBOX::INVALID_PARAMETER";
    case ec::invalid_metadata_label:
      return "SANDBOX::INVALID_METADATA_LABEL";
    case ec::reserved_metadata_key:
      return "INVALID_METADATA_LABEL";
    case ec::invalid_metadata_format:
      return "INVALID_METADATA_FORMAT";
    case ec::unsupported_pool_ref:
      return "SANDBOX::UNSUPPORTED_POOL_REF";
    case ec::api_not_supported:
      return "SANDBOX::API_NOT_SUPPORTED";
    case ec::invalid_entrypoint:
      return "DOCKER::INVALID_ENTRYPOINT";
    case ec::invalid_port:
      return "DOCKER::INVALID_PORT";
    case ec::invalid_expiration:
      return "DOCKER::INVALID_EXPIRATION";
    case ec::sandbox_not_found:
      return "DOCKER::SANDBOX_NOT_FOUND";
    case ec::expiration_not_renewable:
      return "DOCKER::INVALID_EXPIRATION";
    case ec::sandbox_not_running:
      return "DOCKER::SANDBOX_NOT_RUNNING";
    case ec::sandbox_not_paused:
      return "DOCKER::SANDBOX_NOT_PAUSED";
    case ec::query_failed:
      return "DOCKER::SANDBOX_QUERY_FAILED";
    case ec::image_pull_failed:
      return "DOCKER::SANDBOX_IMAGE_PULL_FAILED";
    case ec::start_failed:
      return "DOCKER::SANDBOX_START_FAILED";
    case ec::delete_failed:
      return "DOCKER::SANDBOX_DELETE_FAILED";
    case ec::pause_failed:
      return "DOCKER::SANDBOX_PAUSE_FAILED";
    case ec::resume_failed:
      return "DOCKER::SANDBOX_RESUME_FAILED";
    case ec::endpoint_unavailable:
      return "DOCKER::NETWORK_MODE_ENDPOINT_UNAVAILABLE";
    case ec::runtime_unavailable:
      return "DOCKER::INITIALIZATION_ERROR";
    case ec::store_failed:
      return "SANDBOX::STORE_FAILED";
    case ec::node_unavailable:
      return "CLUSTER::NODE_UNAVAILABLE";
    case ec::cluster_incompatible:
      return "CLUSTER::INCOMPATIBLE_NODE";
    case ec::cluster_membership_incomplete:
      return "CLUSTER::MEMBERSHIP_INCOMPLETE";
    case ec::cluster_name_taken:
      return "CLUSTER::NODE_NAME_TAKEN";
    case ec::capacity_exhausted:
      return "CLUSTER::NO_CAPACITY";
    case ec::request_timeout:
      return "GENERAL::TIMEOUT";
    case ec::missing_api_key:
      return "MISSING_API_KEY";
    case ec::invalid_api_key:
      return "INVALID_API_KEY";
    case ec::not_implemented:
      return "GENERAL::NOT_IMPLEMENTED";
    case ec::volume_host_path_not_allowed:
      return "VOLUME::HOST_PATH_NOT_ALLOWED";
    case ec::volume_host_path_create_failed:
      return "VOLUME::HOST_PATH_CREATE_FAILED";
    case ec::volume_invalid_sub_path:
      return "VOLUME::INVALID_SUB_PATH";
    case ec::volume_pvc_not_found:
      return "VOLUME::PVC_NOT_FOUND";
    case ec::volume_pvc_inspect_failed:
      return "VOLUME::PVC_INSPECT_FAILED";
    case ec::volume_pvc_subpath_unsupported_driver:
      return "VOLUME::PVC_SUBPATH_UNSUPPORTED_DRIVER";
    case ec::volume_unsupported_backend:
      return "VOLUME::UNSUPPORTED_BACKEND";
    case ec::diagnostics_not_implemented:
      return "DIAGNOSTICS_NOT_IMPLEMENTED";
    case ec::snapshot_invalid_source_state:
      return "SNAPSHOT::INVALID_SOURCE_STATE";
    case ec::pool_not_found:
      return "KUBERNETES::POOL_NOT_FOUND";
    case ec::pool_already_exists:
      return "KUBERNETES::POOL_ALREADY_EXISTS";
    case ec::pause_not_supported:
      return "KUBERNETES::INVALID_STATE";
    case ec::snapshot_not_found:
      return "SNAPSHOT::NOT_FOUND";
    case ec::snapshot_invalid_state:
      return "SNAPSHOT::INVALID_STATE";
    case ec::snapshot_delete_conflict:
      return "SNAPSHOT::DELETE_CONFLICT";
    case ec::snapshot_not_ready:
      return "SNAPSHOT::NOT_READY";
    case ec::snapshot_invalid_restore_config:
      return "SNAPSHOT::INVALID_RESTORE_CONFIG";
    case ec::snapshot_image_remove_failed:
      return "DOCKER::SNAPSHOT_IMAGE_REMOVE_FAILED";
    case ec::proxy_unauthorized:
      return "SANDBOX::UNAUTHORIZED";
    case ec::outcome_unknown:
      return "SANDBOX::OUTCOME_UNKNOWN";
    case ec::proxy_backend_unreachable:
      return "GENERAL::UNKNOWN_ERROR";
    case ec::unspecified:
    case ec::internal:
      break;
  }
  return "GENERAL::UNKNOWN_ERROR";
}

api_error make_api_error(ec x, std::string message) {
  return api_error{x, wire_code(x), std::move(message)};
}

} // namespace osb
