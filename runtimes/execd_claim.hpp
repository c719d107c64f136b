#pragma once

#include <cstdint>
#include <string>

#include "runtimes/runtime.hpp"

/// The runtime-neutral half of a pool member's claim (docs/pools.md): a
/// member's execd holds its entrypoint back until the server posts the
/// claim to execd's `POST /bootstrap/claim` (execd/claim.hpp) with the
/// sandbox's access token. Docker reaches execd at a published host port
/// (runtimes/docker/claim.*), Kubernetes at the pod's IP
/// (runtimes/kubernetes/pod_claim.*).
namespace osb::runtimes {

/// The body of `POST /bootstrap/claim`:
/// `{"entrypoint":[...],"env":{...}}`.
std::string claim_body(const claim_request& c);

/// Posts claim `c` to execd at `host:port` with `token`, on a short-lived
/// thread of its own with blocking sockets (a claim is one small request;
/// no caller's thread waits). 200 is success; 409 (claimed with another
/// content) a `conflict`; no connection `unavailable`; no answer within
/// 10 s `timeout`; anything else `failed` with execd's answer. `cb` runs
/// once, on that thread.
void post_claim(std::string host, uint16_t port, std::string token,
                const claim_request& c, callback<unit> cb);

} // namespace osb::runtimes
