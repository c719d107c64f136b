// The one mapping from an error's kind to its HTTP status. Every layer
// below http/ speaks `ec` (with its wire code); the status is chosen here,
// when the answer leaves the server.

#include "http/status.hpp"

namespace osb::http {

int status_of(ec x) {
  switch (x) {
    case ec::none:
      return 200;
    case ec::invalid_parameter:
    case ec::invalid_metadata_label:
    case ec::reserved_metadata_key:
    case ec::invalid_metadata_format:
    case ec::unsupported_pool_ref:
    case ec::api_not_supported:
    case ec::pause_not_supported:
    case ec::invalid_entrypoint:
    case ec::invalid_port:
    case ec::invalid_expiration:
    case ec::volume_host_path_not_allowed:
    case ec::volume_invalid_sub_path:
    case ec::volume_pvc_not_found:
    case ec::volume_pvc_subpath_unsupported_driver:
    case ec::volume_unsupported_backend:
      return 400;
    case ec::missing_api_key:
    case ec::invalid_api_key:
    case ec::proxy_unauthorized:
      return 401;
    case ec::sandbox_not_found:
    case ec::pool_not_found:
    case ec::snapshot_not_found:
      return 404;
    case ec::expiration_not_renewable:
    case ec::sandbox_not_running:
    case ec::sandbox_not_paused:
    case ec::cluster_incompatible:
    case ec::cluster_name_taken:
    case ec::snapshot_invalid_source_state:
    case ec::pool_already_exists:
    case ec::snapshot_invalid_state:
    case ec::snapshot_delete_conflict:
    case ec::snapshot_not_ready:
    case ec::snapshot_invalid_restore_config:
      return 409;
    case ec::query_failed:
    case ec::image_pull_failed:
    case ec::start_failed:
    case ec::delete_failed:
    case ec::pause_failed:
    case ec::resume_failed:
    case ec::endpoint_unavailable:
    case ec::store_failed:
    case ec::volume_host_path_create_failed:
    case ec::volume_pvc_inspect_failed:
    case ec::snapshot_image_remove_failed:
      return 500;
    case ec::not_implemented:
    case ec::diagnostics_not_implemented:
      return 501;
    case ec::runtime_unavailable:
    case ec::node_unavailable:
    case ec::cluster_membership_incomplete:
    case ec::capacity_exhausted:
      return 503;
    case ec::request_timeout:
    case ec::outcome_unknown:
      return 504;
    case ec::proxy_backend_unreachable:
      return 502;
    case ec::unspecified:
    case ec::internal:
      break;
  }
  return 500;
}

} // namespace osb::http
