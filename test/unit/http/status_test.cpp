// The one mapping from an error's kind to its HTTP status (http/status.cpp):
// every kind with the status the lifecycle API answered before the mapping
// moved out of core/ (issue 12), and the wire code core/ keeps.

#include "http/status.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>

namespace osb::http {
namespace {

TEST(StatusMapping, EveryKindHasItsStatus) {
  struct row {
    ec kind;
    int status;
  };
  const row rows[] = {
    {ec::none, 200},
    {ec::unspecified, 500},
    {ec::invalid_parameter, 400},
    {ec::invalid_metadata_label, 400},
    {ec::reserved_metadata_key, 400},
    {ec::invalid_metadata_format, 400},
    {ec::unsupported_pool_ref, 400},
    {ec::api_not_supported, 400},
    {ec::invalid_entrypoint, 400},
    {ec::invalid_port, 400},
    {ec::invalid_expiration, 400},
    {ec::sandbox_not_found, 404},
    {ec::expiration_not_renewable, 409},
    {ec::sandbox_not_running, 409},
    {ec::sandbox_not_paused, 409},
    {ec::query_failed, 500},
    {ec::image_pull_failed, 500},
    {ec::start_failed, 500},
    {ec::delete_failed, 500},
    {ec::pause_failed, 500},
    {ec::resume_failed, 500},
    {ec::endpoint_unavailable, 500},
    {ec::runtime_unavailable, 503},
    {ec::store_failed, 500},
    {ec::node_unavailable, 503},
    {ec::cluster_incompatible, 409},
    {ec::capacity_exhausted, 503},
    {ec::request_timeout, 504},
    {ec::internal, 500},
    {ec::missing_api_key, 401},
    {ec::invalid_api_key, 401},
    {ec::not_implemented, 501},
    {ec::volume_host_path_not_allowed, 400},
    {ec::volume_host_path_create_failed, 500},
    {ec::volume_invalid_sub_path, 400},
    {ec::volume_pvc_not_found, 400},
    {ec::volume_pvc_inspect_failed, 500},
    {ec::volume_pvc_subpath_unsupported_driver, 400},
    {ec::volume_unsupported_backend, 400},
    {ec::diagnostics_not_implemented, 501},
    {ec::snapshot_invalid_source_state, 409},
    {ec::snapshot_not_found, 404},
    {ec::snapshot_invalid_state, 409},
    {ec::snapshot_delete_conflict, 409},
    {ec::snapshot_not_ready, 409},
    {ec::snapshot_invalid_restore_config, 409},
    {ec::snapshot_image_remove_failed, 500},
    {ec::proxy_unauthorized, 401},
    {ec::outcome_unknown, 504},
    {ec::cluster_membership_incomplete, 503},
    {ec::cluster_name_taken, 409},
    {ec::pool_not_found, 404},
    {ec::pool_already_exists, 409},
    {ec::pause_not_supported, 400},
    {ec::proxy_backend_unreachable, 502},
  };
  std::set<uint8_t> seen;
  for (const auto& r : rows) {
    EXPECT_EQ(status_of(r.kind), r.status)
      << "kind " << static_cast<int>(r.kind) << " (" << wire_code(r.kind)
      << ")";
    seen.insert(static_cast<uint8_t>(r.kind));
  }
  // The table above names every kind (they are numbered densely).
  EXPECT_EQ(seen.size(),
            static_cast<size_t>(ec::pause_not_supported) + 1);
}

// What core's ErrorTable test asserted before the mapping moved here.
TEST(StatusMapping, KeepsTheStatusesOfCoresErrorTable) {
  EXPECT_EQ(status_of(make_api_error(ec::invalid_metadata_label, "m")), 400);
  EXPECT_EQ(status_of(ec::sandbox_not_found), 404);
  EXPECT_EQ(status_of(ec::expiration_not_renewable), 409);
}

TEST(StatusMapping, ErrorsCarryKindAndWireCode) {
  auto e = make_api_error(ec::sandbox_not_paused, "m");
  EXPECT_EQ(e.kind, ec::sandbox_not_paused);
  EXPECT_EQ(e.code, "DOCKER::SANDBOX_NOT_PAUSED");
  EXPECT_EQ(status_of(e), 409);
  // Two kinds share a wire code and differ in status.
  EXPECT_EQ(std::string{wire_code(ec::invalid_expiration)},
            wire_code(ec::expiration_not_renewable));
  EXPECT_EQ(status_of(ec::invalid_expiration), 400);
  EXPECT_EQ(status_of(ec::expiration_not_renewable), 409);
  // A default error is a 500.
  EXPECT_EQ(status_of(api_error{}), 500);
}

} // namespace
} // namespace osb::http
