#pragma once

// The lifecycle API's request decoders: bodies and query strings in,
// validated core types or a ready rejection (FastAPI's 422 shapes, the
// service's 400 envelopes) out.

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "core/config.hpp"
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

/// Percent-decodes a query component (`+` → space).
std::string url_decode(std::string_view x);

} // namespace osb::codec
