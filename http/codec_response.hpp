#pragma once

// The lifecycle API's response bodies: sandboxes, list pages, snapshots,
// endpoints, members, error envelopes and FastAPI's 422 details.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/model.hpp"

namespace osb::codec {

/// `Sandbox` JSON (nulls omitted).
std::string encode_sandbox(const sandbox_view& x);

/// `CreateSandboxResponse` JSON (no image, no snapshotId).
std::string encode_create_response(const sandbox_view& x);

/// `ListSandboxesResponse` JSON.
std::string encode_list(const list_page& x);

/// `Snapshot` JSON.
std::string encode_snapshot(const snapshot_view& x);

/// `ListSnapshotsResponse` JSON.
std::string encode_snapshot_list(const snapshot_page& x);

/// `Endpoint` JSON.
std::string encode_endpoint(const endpoint_view& x);

/// `{"expiresAt": ...}`.
std::string encode_renew(int64_t expires_us);

/// `{"nodes":[{"name","address","state","sandboxes","since"?,"version"}]}`.
std::string encode_members(const std::vector<member_info>& xs);

/// Error envelope `{"code":..., "message":...}`.
std::string encode_error(const api_error& x);

/// Body of a 202 answer to DELETE: the deletion is durable, the removal of
/// the containers is pending (`why`) and retried until it succeeds.
std::string encode_deletion_pending(const std::string& id,
                                    const std::string& why);

/// 422 body in FastAPI's shape for one problem.
std::string encode_detail(std::string_view type, std::string_view loc_json,
                          std::string_view msg);

/// Same, with the offending input and an optional `ctx` object (both as JSON
/// text; an empty `ctx_json` omits `ctx`). The 3-argument form sends
/// `"input":null`.
std::string encode_detail(std::string_view type, std::string_view loc_json,
                          std::string_view msg, std::string_view input_json,
                          std::string_view ctx_json = {});

} // namespace osb::codec
