#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/model.hpp"

namespace osb::codec {

/// A request the API rejects before any work: HTTP status (422 for schema
/// errors with FastAPI's `{"detail":[...]}` body, 400 envelopes for service
/// checks) and the complete JSON body to send.
struct rejection {
  int status = 422;
  std::string body;
  /// One-line summary for the log.
  std::string summary;
};

template <class T>
using decoded = std::variant<T, rejection>;

// -- time ---------------------------------------------------------------------

/// Microseconds since the epoch, now.
int64_t now_us();

/// RFC 3339 UTC with `Z`, microseconds only when non-zero
/// (`2026-06-12T10:30:00.123456Z` / `2026-06-12T10:30:00Z`).
std::string format_time(int64_t us);

/// Parses RFC 3339 (any offset, up to 9 fraction digits, truncated to µs), a
/// naive timestamp (UTC) or a number of Unix seconds. False if unparseable.
bool parse_time(std::string_view str, int64_t& us);

// -- requests -----------------------------------------------------------------

/// Decodes and validates `POST /sandboxes` (schema rules → 422, service rules
/// → 400 in the order of reference/server-behavior.md §1.4).
/// `network_policy_json` is the egress sidecar payload
/// (`{"defaultAction"?:..,"egress":[{"action","target"}]}`); `volumes_json` is
/// the `volumes` array in camelCase with defaults applied (`readOnly`,
/// `pvc.createIfNotExists`/`deleteOnSandboxTermination`, `ossfs.version`).
/// A snapshot restore without entrypoint gets `["tail","-f","/dev/null"]`.
decoded<sandbox_spec> decode_create(std::string_view body,
                                    const node_config& cfg);

/// Decodes `POST .../renew-expiration` into microseconds since the epoch
/// (422 for a missing/unparseable `expiresAt`). Does not check "future".
decoded<int64_t> decode_renew(std::string_view body);

/// Decodes `PATCH .../metadata` (object of string|null; 422 otherwise) and
/// validates keys (reserved prefix → INVALID_METADATA_LABEL, label rules on
/// non-null values → SANDBOX::INVALID_METADATA_LABEL).
decoded<metadata_patch> decode_patch(std::string_view body);

/// Parses the query string (without or with a leading `?`) of
/// `GET /sandboxes` (state, metadata, page, pageSize) with the validation of
/// §1.5. Unknown parameters are ignored.
decoded<list_query> decode_list_query(std::string_view query);

/// Parses the query of `GET /snapshots` (sandboxId, name, state repeated,
/// page, pageSize; 422 like the sandbox list). States match exactly.
decoded<snapshot_query> decode_snapshot_query(std::string_view query);

/// Decodes the optional body of `POST /sandboxes/{id}/snapshots`: absent,
/// `{}` or `{"name": "<at least 1 char>"}` (422 otherwise); returns the name
/// ("" = none). Unknown fields are ignored.
decoded<std::string> decode_snapshot_request(std::string_view body);

// -- responses ----------------------------------------------------------------

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

// -- persistence --------------------------------------------------------------

/// Compact JSON of a spec for the store; `spec_from_json` reverses it.
std::string spec_to_json(const sandbox_spec& x);
bool spec_from_json(std::string_view json, sandbox_spec& x);

/// Compact JSON of a string map (metadata in the store).
std::string map_to_json(const string_map& x);
bool map_from_json(std::string_view json, string_map& x);

// -- misc ---------------------------------------------------------------------

/// Percent-decodes a query component (`+` → space).
std::string url_decode(std::string_view x);

/// Random UUID4 with hyphens (sandbox ids).
std::string make_uuid();

/// Random UUID4 as 32 hex chars (request ids).
std::string make_request_id();

/// 24 random bytes from the kernel, URL-safe base64 (egress auth tokens).
std::string make_token();

} // namespace osb::codec
