#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "core/expected.hpp"

namespace osb::runtimes::docker {

/// Waits until an HTTP endpoint of this host answers 2xx (a GET every 20 ms
/// with short socket timeouts) or `deadline_ms` passed, on a thread of its
/// own: the sockets block, so no caller's thread ever waits. `done` runs
/// once, on that thread.
void await_healthy(std::string host, uint16_t port, std::string path,
                   std::map<std::string, std::string> headers,
                   int64_t deadline_ms,
                   std::function<void(expected<unit>)> done);

/// One blocking GET with short timeouts; returns the status or 0.
int http_get_status(const std::string& host, uint16_t port,
                    const std::string& path,
                    const std::map<std::string, std::string>& headers,
                    int timeout_ms);

} // namespace osb::runtimes::docker
