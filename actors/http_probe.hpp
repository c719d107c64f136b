#pragma once

#include <caf/typed_event_based_actor.hpp>

#include "actors/interfaces.hpp"

namespace osb {

/// Implements the PROBE actor: polls an HTTP endpoint on this host until it
/// answers 2xx. Uses blocking sockets, so spawn it with `caf::detached`; it
/// quits after answering.
probe_actor::behavior_type http_probe(probe_actor::pointer self);

/// One blocking GET with short timeouts; returns the status or 0.
int http_get_status(const std::string& host, uint16_t port,
                    const std::string& path, const string_map& headers,
                    int timeout_ms);

} // namespace osb
