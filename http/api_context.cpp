#include "http/api_context.hpp"

#include "base/log.hpp"
#include "http/api_routes.hpp"
#include "http/codec_response.hpp"
#include "http/status.hpp"

namespace osb::http::detail {

void add_cors(const exchange& x, response& res) {
  if (x.origin.empty())
    return;
  if (x.has_cookie) {
    // A credentialed request must see its own origin, never `*`.
    res.headers.emplace_back("Access-Control-Allow-Origin", x.origin);
    res.headers.emplace_back("Vary", "Origin");
  } else {
    res.headers.emplace_back("Access-Control-Allow-Origin", "*");
  }
  res.headers.emplace_back("Access-Control-Allow-Credentials", "true");
}

void decorate(const exchange& x, response& res, std::string_view code,
              std::string_view message, bool cors) {
  record_request(x, res.status);
  res.headers.emplace_back("X-Request-ID", x.rid);
  if (cors)
    add_cors(x, res);
  if (log::access_enabled()) {
    std::chrono::duration<double, std::milli> dt
      = std::chrono::steady_clock::now() - x.started;
    log::access(x.rid, x.method, x.path, res.status, dt.count());
  }
  if (res.status >= 500) {
    OSB_ERROR("http", x.rid, x.sandbox_id,
              x.method << ' ' << x.path << " failed with " << res.status
                       << ' ' << code << ": " << message);
  } else if (res.status >= 400) {
    OSB_WARN("http", x.rid, x.sandbox_id,
             x.method << ' ' << x.path << " failed with " << res.status << ' '
                      << code << ": " << message);
  } else {
    OSB_DEBUG("http", x.rid, x.sandbox_id,
              x.method << ' ' << x.path << " answered " << res.status);
  }
}

void finish(const exchange& x, response res, std::string_view code,
            std::string_view message, bool cors) {
  decorate(x, res, code, message, cors);
  x.respond(std::move(res));
}

void fail(const exchange& x, const api_error& err) {
  finish(x, json_response(status_of(err), codec::encode_error(err)), err.code,
         err.message);
}

void fail(const exchange& x, ec code, std::string message) {
  fail(x, make_api_error(code, std::move(message)));
}

void reject(const exchange& x, const codec::rejection& r) {
  finish(x, json_response(r.status, r.body), "rejected", r.summary);
}

void reject_detail(const exchange& x, std::string_view type,
                   std::string_view loc_json, std::string_view msg) {
  finish(x, json_response(422, codec::encode_detail(type, loc_json, msg)),
         type, std::string{loc_json} + " " + std::string{msg});
}

} // namespace osb::http::detail
