#pragma once

#include "execd/routes.hpp"

#include <cstdint>
#include <string>

namespace osb::execd {

/// Relays a request to 127.0.0.1:`port` with `target` (origin form) and
/// relays the answer back, over the raw connection below `w`
/// (`w.raw()`; without one, answers 502):
/// - the request body streams up piece by piece as it arrives, the
///   response head is relayed at once and its body piece by piece, so that
///   SSE events are not held back (close-delimited bodies are chunked);
/// - `X-Forwarded-For`/`-Proto` are set, hop-by-hop fields dropped;
/// - a `101` answer to an upgrade becomes a raw two-way byte relay (e.g.
///   WebSocket) until both directions ended;
/// - a failure before the response started is a `502 Bad Gateway`, an
///   upstream response with ambiguous framing too.
void relay(const http_request& req, uint16_t port, const std::string& target,
           response_writer& w);

} // namespace osb::execd
