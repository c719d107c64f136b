#pragma once

// The wire format of the pool API (docs/pools.md): the seed's
// `CreatePoolRequest`, `UpdatePoolRequest`, `PoolResponse` and
// `ListPoolsResponse` (server/opensandbox_server/api/schema.py).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/pool.hpp"
#include "http/codec_request.hpp"

namespace osb::codec {

/// Decodes `POST /pools`: `name` (a Kubernetes resource name, 422 when
/// not), `template` and `capacitySpec` (four integers >= 0, 422 when
/// negative; bufferMin > bufferMax or poolMin > poolMax are 400). The
/// template is a create request's body (`image`, `entrypoint`, `env`,
/// `resourceLimits`, `networkPolicy`, `volumes`, `metadata`, `timeout`), or
/// a Kubernetes PodTemplateSpec when `spec.containers` is present (first
/// container's `image`, `command` + `args`, `env`, `resources.limits`); it
/// is validated as a create (its problems are located under
/// `body.template`). Without entrypoint it runs
/// `["tail","-f","/dev/null"]`; without resourceLimits it has none.
decoded<pool_record> decode_create_pool(std::string_view body,
                                        const node_config& cfg);

/// Decodes `PUT /pools/{name}`: `{"capacitySpec":{...}}` as above.
decoded<pool_capacity> decode_update_pool(std::string_view body);

/// Rejects what a create that names a pool may not carry (400): its own
/// `volumes` (a member's volumes exist before the claim). `snapshotId` is a
/// 422 of the create's schema already.
std::optional<api_error> check_pool_claim(const sandbox_spec& spec);

/// `PoolResponse`: name, capacitySpec, status (total, allocated,
/// available, revision), createdAt.
std::string encode_pool(const pool_view& x);

/// `ListPoolsResponse`: `{"items":[...]}`.
std::string encode_pool_list(const std::vector<pool_view>& xs);

} // namespace osb::codec
