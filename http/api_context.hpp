#pragma once

// Internal to the lifecycle API handler (http/api*.cpp): the state all
// requests share, one request in flight, and how its answer leaves
// (X-Request-ID, CORS, one log line per error, error envelopes).

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "core/config.hpp"
#include "core/error.hpp"
#include "http/api.hpp"
#include "http/codec_request.hpp"
#include "http/proxy_cache.hpp"
#include "http/renew_intent.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace osb::http::detail {

/// The 401 messages of the API-key check (also the server proxy's).
constexpr std::string_view missing_key_message
  = "Authentication credentials are missing. Provide API key via "
    "OPEN-SANDBOX-API-KEY header.";

constexpr std::string_view invalid_key_message
  = "Authentication credentials are invalid. Check your API key and try "
    "again.";

/// Everything the handler needs, shared by all requests.
struct api_state : std::enable_shared_from_this<api_state> {
  std::shared_ptr<const node_config> cfg;
  std::shared_ptr<lifecycle_backend> backend;
  /// Host advertised in endpoints, detected once.
  std::string public_host;
  /// Where the proxy reaches ports published on this machine, detected once.
  std::string proxy_address;
  /// Whether `proxy_address` is an address of this machine (bound first).
  bool proxy_address_local = false;
  /// Whether an API key is configured (non-blank).
  bool key_required = false;
  /// Sandboxes the server proxy resolved within the last second.
  std::shared_ptr<proxy_cache> cache
    = std::make_shared<proxy_cache>(std::chrono::seconds(1));
  /// Renew-on-access (`[renew_intent] enabled`), else null.
  std::shared_ptr<renew_coordinator> renew;
};

/// One request in flight: what the final response needs, shared by the
/// asynchronous continuations.
struct exchange {
  std::string rid;
  std::string method;
  std::string path;
  std::string origin;
  bool has_cookie = false;
  std::string sandbox_id;
  /// The matched route (for metrics: its pattern, never the id).
  route_id route = route_id::not_found;
  responder respond;
  /// When the request arrived (for the access log and metrics).
  std::chrono::steady_clock::time_point started;
  call_context ctx() const {
    return call_context{rid};
  }
};

using exchange_ptr = std::shared_ptr<exchange>;

/// A JSON response (`status`, `body`).
inline response json_response(int status, std::string body) {
  response res;
  res.status = status;
  res.body = std::move(body);
  return res;
}

/// A response without body or Content-Type.
inline response empty_response(int status) {
  response res;
  res.status = status;
  res.content_type.clear();
  return res;
}

/// Adds the CORS headers of a simple (non-preflight) response (Starlette's
/// CORSMiddleware with allow_origins=["*"] and allow_credentials=True).
void add_cors(const exchange& x, response& res);

/// Adds X-Request-ID and CORS headers and logs the outcome (errors exactly
/// once, at WARNING for 4xx and ERROR for 5xx).
/// @param code the error code or a short reason for the log (errors only).
void decorate(const exchange& x, response& res, std::string_view code,
              std::string_view message, bool cors);

/// Sends the response, decorated (see decorate()).
void finish(const exchange& x, response res, std::string_view code = {},
            std::string_view message = {}, bool cors = true);

/// Answers with the error envelope of `err`.
void fail(const exchange& x, const api_error& err);
void fail(const exchange& x, ec code, std::string message);

/// Answers with a rejection of the request decoders.
void reject(const exchange& x, const codec::rejection& r);

/// Answers 422 with FastAPI's body for one problem (`"input":null`).
void reject_detail(const exchange& x, std::string_view type,
                   std::string_view loc_json, std::string_view msg);

/// Wraps a success continuation into a backend reply: errors become
/// envelopes, values go to `f`.
template <class T, class F>
reply<T> on_success(exchange_ptr x, F f) {
  return [x = std::move(x), f = std::move(f)](result<T> r) mutable {
    // Runs on the backend's thread: nothing may escape into it.
    try {
      if (!r.has_value())
        return fail(*x, r.error);
      f(*x, std::move(*r.value));
    } catch (...) {
      fail(*x, ec::internal, "An unexpected error occurred.");
    }
  };
}

} // namespace osb::http::detail
