#pragma once

// The `operation` label of `opensandbox_runtime_request_duration_seconds`
// for an Engine API call: its resource and action, never an id or a name.

#include <ostream>

#include <boost/beast/http/verb.hpp>

#include <string>
#include <string_view>

namespace osb::runtimes::docker {

/// "containers_start", "containers_delete", "images_create" (a pull),
/// "volumes_json", "_ping", ... for a method and a request target
/// ("/v1.41/containers/abc/start?t=1").
std::string docker_operation(boost::beast::http::verb method,
                             std::string_view target);

} // namespace osb::runtimes::docker
