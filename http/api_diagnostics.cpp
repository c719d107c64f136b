// The plain-text diagnostics of a sandbox (§1.14): logs, events, inspect,
// summary.

#include "http/api_routes.hpp"

#include "http/codec_response.hpp"
#include "http/query.hpp"

#include <string>
#include <string_view>

namespace osb::http::detail {

namespace {

/// A JSON string literal.
std::string json_string(std::string_view x) {
  std::string result = "\"";
  for (unsigned char c : x) {
    if (c == '"' || c == '\\') {
      result += '\\';
      result += static_cast<char>(c);
    } else if (c < 0x20) {
      static constexpr char hex[] = "0123456789abcdef";
      result += "\\u00";
      result += hex[c >> 4];
      result += hex[c & 0xF];
    } else {
      result += static_cast<char>(c);
    }
  }
  return result + "\"";
}

/// Reads integer query parameter `key` within [lo, hi] (FastAPI's
/// `Query(default, ge=lo, le=hi)`); answers 422 and returns false if bad.
bool int_query(const exchange& x, const request& req, const char* key,
               int64_t lo, int64_t hi, int32_t& out) {
  auto raw = query_param(req.query, key);
  if (!raw)
    return true;
  auto loc = std::string{R"(["query",")"} + key + "\"]";
  int64_t n = 0;
  if (!parse_int(*raw, n)) {
    auto body = codec::encode_detail("int_parsing", loc, int_parsing_msg,
                                     json_string(*raw));
    finish(x, json_response(422, std::move(body)), "int_parsing",
           loc + " " + *raw);
    return false;
  }
  if (n < lo || n > hi) {
    auto ge = n < lo;
    auto bound = std::to_string(ge ? lo : hi);
    auto type = ge ? "greater_than_equal" : "less_than_equal";
    auto msg = std::string{"Input should be "}
               + (ge ? "greater than or equal to " : "less than or equal to ")
               + bound;
    auto ctx = std::string{"{\""} + (ge ? "ge" : "le") + "\":" + bound + "}";
    finish(x,
           json_response(422, codec::encode_detail(type, loc, msg,
                                                   json_string(*raw), ctx)),
           type, loc + " " + *raw);
    return false;
  }
  out = static_cast<int32_t>(n);
  return true;
}

} // namespace

/// The deprecated plain-text diagnostics: `logs` and `events` without
/// `scope` (with `scope` the stable API, which no server implements yet:
/// 501 without looking the sandbox up), `inspect` and `summary`.
void diagnostics(const api_state& st, exchange_ptr x, const route& rt,
                 const request& req) {
  diagnostics_query q;
  bool deprecated = false;
  switch (rt.id) {
    case route_id::diagnostics_logs:
    case route_id::diagnostics_events:
      if (query_param(req.query, "scope"))
        return fail(*x, ec::diagnostics_not_implemented,
                    "The stable Diagnostics API is not implemented by this "
                    "OpenSandbox server.");
      deprecated = true;
      if (rt.id == route_id::diagnostics_logs) {
        q.kind = "logs";
        if (!int_query(*x, req, "tail", 1, 10000, q.tail))
          return;
        if (auto since = query_param(req.query, "since"))
          q.since = *since;
      } else {
        q.kind = "events";
        if (!int_query(*x, req, "limit", 1, 500, q.limit))
          return;
      }
      break;
    case route_id::diagnostics_inspect:
      q.kind = "inspect";
      break;
    default:
      q.kind = "summary";
      q.tail = 50;
      q.limit = 20;
      if (!int_query(*x, req, "tail", 1, 10000, q.tail)
          || !int_query(*x, req, "event_limit", 1, 500, q.limit))
        return;
      break;
  }
  st.backend->call(
    x->ctx(), rt.sandbox_id, diagnose_op{std::move(q)},
    on_success<std::string>(x, [deprecated](exchange& x, std::string text) {
      response res;
      res.status = 200;
      res.content_type = "text/plain; charset=utf-8";
      res.body = std::move(text);
      if (deprecated)
        res.headers.emplace_back("Deprecation", "true");
      finish(x, std::move(res));
    }));
}

std::vector<route_binding> diagnostics_routes() {
  return {
    {route_id::diagnostics_logs, diagnostics},
    {route_id::diagnostics_events, diagnostics},
    {route_id::diagnostics_inspect, diagnostics},
    {route_id::diagnostics_summary, diagnostics},
  };
}

} // namespace osb::http::detail
