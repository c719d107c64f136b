#include "http/api.hpp"
#include "base/strings.hpp"

#include "core/codec.hpp"
#include "base/log.hpp"
#include "http/proxy_cache.hpp"
#include "http/renew_intent.hpp"
#include "http/router.hpp"
#include "net/endpoints.hpp"
#include "net/proxy.hpp"
#include "net/signed_route.hpp"

#include "base/secure_compare.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <exception>
#include <string_view>
#include <utility>
#include <variant>

namespace osb::http {

namespace {

constexpr std::string_view missing_key_message
  = "Authentication credentials are missing. Provide API key via "
    "OPEN-SANDBOX-API-KEY header.";

constexpr std::string_view invalid_key_message
  = "Authentication credentials are invalid. Check your API key and try "
    "again.";

/// Starlette's ALL_METHODS, the CORS allow-list for `allow_methods=["*"]`.
constexpr std::string_view cors_methods
  = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT";

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
  responder respond;
  /// When the request arrived (for the access log).
  std::chrono::steady_clock::time_point started;
  call_context ctx() const {
    return call_context{rid};
  }
};

using exchange_ptr = std::shared_ptr<exchange>;

response json_response(int status, std::string body) {
  response res;
  res.status = status;
  res.body = std::move(body);
  return res;
}

response empty_response(int status) {
  response res;
  res.status = status;
  res.content_type.clear();
  return res;
}

/// Adds the CORS headers of a simple (non-preflight) response (Starlette's
/// CORSMiddleware with allow_origins=["*"] and allow_credentials=True).
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

/// Adds X-Request-ID and CORS headers and logs the outcome (errors exactly
/// once, at WARNING for 4xx and ERROR for 5xx).
/// @param code the error code or a short reason for the log (errors only).
void decorate(const exchange& x, response& res, std::string_view code,
              std::string_view message, bool cors) {
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

/// Sends the response, decorated (see decorate()).
void finish(const exchange& x, response res, std::string_view code = {},
            std::string_view message = {}, bool cors = true) {
  decorate(x, res, code, message, cors);
  x.respond(std::move(res));
}

void fail(const exchange& x, const api_error& err) {
  finish(x, json_response(err.status, codec::encode_error(err)), err.code,
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

void not_implemented(const exchange& x, std::string message) {
  fail(x, ec::not_implemented, std::move(message));
}

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

// -- query parameters ---------------------------------------------------------

/// Returns the last value of query parameter `key` (Starlette's
/// QueryParams.get), decoded; nullopt when absent.
std::optional<std::string> query_param(std::string_view query,
                                       std::string_view key) {
  std::optional<std::string> result;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{}
                                          : query.substr(amp + 1);
    if (part.empty())
      continue;
    auto eq = part.find('=');
    auto name = codec::url_decode(part.substr(0, eq));
    if (name != key)
      continue;
    result = eq == std::string_view::npos
               ? std::string{}
               : codec::url_decode(part.substr(eq + 1));
  }
  return result;
}

/// Pydantic's lax int parsing of a string: surrounding whitespace, optional
/// sign, decimal digits. Saturates on overflow (callers range-check).
bool parse_int(std::string_view str, int64_t& out) {
  str = trim(str);
  if (str.empty())
    return false;
  bool neg = false;
  if (str.front() == '+' || str.front() == '-') {
    neg = str.front() == '-';
    str.remove_prefix(1);
  }
  if (str.empty())
    return false;
  int64_t value = 0;
  for (auto c : str) {
    if (c < '0' || c > '9')
      return false;
    if (value > (INT64_MAX - 9) / 10)
      value = INT64_MAX / 2; // saturate; any caller rejects this range
    else
      value = value * 10 + (c - '0');
  }
  out = neg ? -value : value;
  return true;
}

/// Pydantic's lax bool parsing of a string.
bool parse_bool(std::string_view str, bool& out) {
  auto x = lower(trim(str));
  if (x == "true" || x == "1" || x == "yes" || x == "on" || x == "t"
      || x == "y") {
    out = true;
    return true;
  }
  if (x == "false" || x == "0" || x == "no" || x == "off" || x == "f"
      || x == "n") {
    out = false;
    return true;
  }
  return false;
}

constexpr std::string_view int_parsing_msg
  = "Input should be a valid integer, unable to parse string as an integer";

// -- routes -------------------------------------------------------------------

/// Strict decimal uint64 (OSEP-0011's `expires`): digits only.
std::optional<uint64_t> parse_uint64(std::string_view str) {
  str = trim(str);
  if (str.empty() || str.size() > 20)
    return std::nullopt;
  uint64_t value = 0;
  for (auto c : str) {
    if (c < '0' || c > '9')
      return std::nullopt;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10)
      return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

void get_endpoint(const api_state& st, exchange_ptr x, const route& rt,
                  const request& req) {
  int64_t port = 0;
  if (!parse_int(rt.param, port))
    return reject_detail(*x, "int_parsing", R"(["path","port"])",
                         int_parsing_msg);
  bool use_server_proxy = false;
  if (auto usp = query_param(req.query, "use_server_proxy");
      usp && !parse_bool(*usp, use_server_proxy))
    return reject_detail(
      *x, "bool_parsing", R"(["query","use_server_proxy"])",
      "Input should be a valid boolean, unable to interpret input");
  auto expires_str = query_param(req.query, "expires");
  std::optional<uint64_t> expires;
  if (expires_str) {
    int64_t ignored = 0;
    if (!parse_int(*expires_str, ignored))
      return reject_detail(*x, "int_parsing", R"(["query","expires"])",
                           int_parsing_msg);
    // Signed URLs are served by our proxy, with or without
    // use_server_proxy (a deviation: the original mints them only for a
    // gateway and refuses use_server_proxy with expires). The SDKs'
    // getSignedEndpoint sends expires alone.
    if (st.cfg->ingress.secure_access.active_key == 0)
      return fail(*x, ec::api_not_supported,
                  "Signed routes (expires parameter) need signing keys in "
                  "[ingress.secure_access] when runtime.type='docker'.");
    expires = parse_uint64(*expires_str);
    auto now_s = static_cast<uint64_t>(codec::now_us() / 1000000);
    if (!expires || *expires <= now_s)
      return fail(*x, ec::invalid_parameter,
                  "expires must be a Unix time in seconds in the future "
                  "(at most 18446744073709551615).");
  }
  if (port < 1 || port > 65535)
    return fail(*x, ec::invalid_port, "Port must be between 1 and 65535.");
  std::string proxy_base;
  if (use_server_proxy || expires) {
    if (!st.cfg->server.eip.empty()) {
      proxy_base = st.cfg->server.eip;
    } else {
      auto& host = req.header("host");
      proxy_base = "http://"
                   + (host.empty() ? st.public_host + ':'
                                       + std::to_string(st.cfg->server.port)
                                   : host);
    }
  }
  auto id = rt.sandbox_id;
  auto cfg = st.cfg;
  auto public_host = st.public_host;
  st.backend->get_started(
    x->ctx(), id,
    on_success<sandbox_view>(
      x, [cfg, public_host, port, use_server_proxy, expires,
          proxy_base = std::move(proxy_base)](exchange& x, sandbox_view sbx) {
        auto p = static_cast<int>(port);
        auto ep = net::resolve_endpoint(sbx, p, *cfg, public_host);
        if (!ep.has_value())
          return fail(x, ep.error);
        if (expires) {
          // The URL is the credential: the proxy adds execd's token.
          ep.value->endpoint = net::signed_proxy_endpoint(
            proxy_base,
            net::mint_route_token(cfg->ingress.secure_access, sbx.id, p,
                                  *expires));
          ep.value->headers.erase(net::execd_token_header);
        } else if (use_server_proxy) {
          ep.value->endpoint
            = net::server_proxy_endpoint(proxy_base, x.sandbox_id, p);
          if (!sbx.access_token.empty())
            ep.value->headers.emplace(net::secure_access_header,
                                      sbx.access_token);
        }
        finish(x, json_response(200, codec::encode_endpoint(*ep.value)));
      }));
}

// -- server proxy (§1.13) -----------------------------------------------------

/// How a proxy request proved that it may reach the sandbox.
enum class proxy_grant {
  open,       ///< no API key is configured (the proxy is as open as the API)
  api_key,    ///< the server's API key
  token,      ///< claims the sandbox's token (checked against its record)
  signed_url, ///< a valid signed URL for this sandbox and port
};

constexpr std::string_view missing_proxy_credentials
  = "Access to a sandbox through the server proxy needs the API key "
    "(OPEN-SANDBOX-API-KEY), the sandbox's access token "
    "(OpenSandbox-Secure-Access) or a signed URL.";

constexpr std::string_view invalid_proxy_credentials
  = "The credentials for this sandbox endpoint are invalid.";

/// Completes `spec` (whose target holds the path and query so far) for the
/// internal endpoint of `port` of `sbx` and hands it to the server. A caller
/// that proved its right to the sandbox gets execd's token added when the
/// upstream is execd (signed URLs cannot carry headers).
void forward_to(const api_state& st, const exchange_ptr& x,
                const std::shared_ptr<forward_spec>& spec, int port,
                const sandbox_view& sbx, proxy_grant grant) {
  auto ep = net::resolve_internal(sbx, port, *st.cfg, st.public_host,
                                  st.proxy_address);
  if (!ep.has_value())
    return fail(*x, ep.error);
  bool to_execd = port == net::execd_port || !ep.value->prefix.empty();
  if (to_execd && grant != proxy_grant::open && !sbx.access_token.empty()) {
    auto& hs = spec->headers;
    hs.erase(std::remove_if(hs.begin(), hs.end(),
                            [](auto& h) {
                              return h.first == "x-execd-access-token";
                            }),
             hs.end());
    hs.emplace_back("x-execd-access-token", sbx.access_token);
  }
  spec->host = ep.value->host;
  spec->port = ep.value->port;
  spec->bind_source = st.proxy_address_local
                      && spec->host == st.proxy_address
                      && spec->host.rfind("127.", 0) != 0;
  spec->target.insert(0, ep.value->prefix);
  response extra;
  extra.headers.emplace_back("X-Request-ID", x->rid);
  add_cors(*x, extra);
  spec->response_headers = std::move(extra.headers);
  auto endpoint = ep.value->text();
  spec->on_error = [x, endpoint](forward_error kind,
                                 const std::string& detail) {
    auto err = kind == forward_error::connect
                 ? api_error{502, "GENERAL::UNKNOWN_ERROR",
                             "Could not connect to the backend sandbox "
                               + endpoint + ": " + detail}
                 : api_error{500, "GENERAL::UNKNOWN_ERROR",
                             "An internal error occurred in the proxy: "
                               + detail};
    auto res = json_response(err.status, codec::encode_error(err));
    decorate(*x, res, err.code, err.message, true);
    return res;
  };
  OSB_DEBUG("http", x->rid, x->sandbox_id,
            x->method << ' ' << x->path << " proxied to "
                      << ep.value->text() << spec->target.substr(
                           ep.value->prefix.size())
                      << (spec->upgrade ? " (websocket)" : ""));
  response res;
  res.forward = spec;
  x->respond(std::move(res));
}

/// Renew-on-access (§1.13 step 1, §4.10, proxy-only mode): asks the
/// coordinator whether this access to `sbx` renews it and, if so, sends the
/// renewal through the normal renew path (durable, like a client's). Never
/// waits for it: the proxied request goes on at once; failures are logged.
void renew_on_access(const api_state& st, const exchange& x,
                     const sandbox_view& sbx) {
  if (!st.renew)
    return;
  auto target = st.renew->on_access(sbx, codec::now_us(),
                                    renew_coordinator::clock::now());
  if (!target)
    return;
  OSB_DEBUG("http", x.rid, sbx.id,
            "renew-on-access: extending the expiry to "
              << codec::format_time(*target));
  st.backend->extend(
    x.ctx(), sbx.id, *target,
    [coord = st.renew, id = sbx.id, rid = x.rid](result<int64_t> r) {
      coord->done(id, r.has_value(), renew_coordinator::clock::now());
      if (!r.has_value())
        OSB_WARN("http", rid, id,
                 "renew-on-access failed: " << r.error.code << ": "
                                            << r.error.message);
    });
}

/// Whether the request carries a header named `lower_name` (any value).
bool has_header(const request& req, std::string_view lower_name) {
  for (const auto& field : req.headers)
    if (field.first == lower_name)
      return true;
  return false;
}

/// Forwards a proxy request to the sandbox port it names. The upstream's
/// address and port come from the configuration and the sandbox record
/// (never from the request), and the path may not leave the addressed
/// port's root; the server streams both bodies (see forward_spec). The
/// record comes from the proxy cache when it was looked up within the last
/// second. The caller needs a credential (see proxy_grant); one without a
/// valid credential gets the same 401 whether or not the sandbox exists.
void proxy(const api_state& st, exchange_ptr x, const route& rt,
           const request& req) {
  bool is_signed = rt.id == route_id::signed_proxy;
  auto pp = net::parse_proxy_path(req.path);
  if (!pp || (!is_signed && pp->sandbox_id != rt.sandbox_id))
    return finish(*x, json_response(404, R"({"detail":"Not Found"})"),
                  "not_found", "ambiguous proxy path");
  auto grant = proxy_grant::open;
  std::string claimed_token;
  std::string sandbox_id = rt.sandbox_id;
  int64_t port = 0;
  if (is_signed) {
    auto t = net::parse_route_token(pp->signed_token);
    if (!t)
      return fail(*x, ec::invalid_parameter,
                  "Malformed signed route: expected "
                  "{sandbox_id}-{port}-{expires_b36}-{signature}.");
    auto& keys = st.cfg->ingress.secure_access;
    auto check = keys.active_key == 0
                   ? net::route_check::bad_signature
                   : net::verify_route_token(
                     *t, keys,
                     static_cast<uint64_t>(codec::now_us() / 1000000));
    if (check == net::route_check::expired)
      return fail(*x, ec::proxy_unauthorized, "The signed URL has expired.");
    if (check != net::route_check::ok)
      return fail(*x, ec::proxy_unauthorized,
                  std::string{invalid_proxy_credentials});
    grant = proxy_grant::signed_url;
    sandbox_id = t->sandbox_id;
    x->sandbox_id = sandbox_id;
    port = t->port;
  } else {
    if (!parse_int(rt.param, port))
      return reject_detail(*x, "int_parsing", R"(["path","port"])",
                           int_parsing_msg);
    // Range-checked before any narrowing: 4294975376 must not become 8080.
    if (port < 1 || port > 65535)
      return fail(*x, ec::invalid_port, "Port must be between 1 and 65535.");
    auto& key = req.header("open-sandbox-api-key");
    if (st.key_required && !key.empty()) {
      if (!constant_time_equal(key, st.cfg->server.api_key))
        return fail(*x, ec::invalid_api_key, std::string{invalid_key_message});
      grant = proxy_grant::api_key;
    } else if (has_header(req, "opensandbox-secure-access")) {
      // Present but wrong fails at once (OSEP-0011): no fallback.
      grant = proxy_grant::token;
      claimed_token = req.header("opensandbox-secure-access");
    } else if (st.key_required) {
      return fail(*x, ec::proxy_unauthorized,
                  std::string{missing_proxy_credentials});
    }
  }
  auto path = net::normalize_proxy_rest(pp->rest);
  if (!path)
    return fail(*x, ec::invalid_parameter,
                "Invalid proxy path: '.' and '..' segments are not allowed.");
  bool websocket = false;
  if (net::wants_websocket(req.headers)) {
    // A real handshake becomes a byte tunnel; anything else that asks for
    // websocket gets the original's answer.
    if (req.method != "GET" || !net::is_websocket_handshake(req.headers))
      return fail(*x, api_error{400, "GENERAL::UNKNOWN_ERROR",
                                "Websocket upgrade is not supported yet"});
    websocket = true;
  }
  auto spec = std::make_shared<forward_spec>();
  net::forward_context fctx;
  fctx.remote_addr = req.remote_addr;
  fctx.request_id = x->rid;
  fctx.websocket = websocket;
  spec->headers = net::filter_request_headers(req.headers, fctx);
  spec->upgrade = websocket;
  spec->request_id = x->rid;
  spec->sandbox_id = x->sandbox_id;
  auto tail = std::move(*path);
  if (req.target.find('?') != std::string::npos && !req.query.empty()) {
    tail += '?';
    tail += req.query;
  }
  spec->target = std::move(tail); // the prefix comes with the endpoint
  auto go = [x, spec, port, grant,
             claimed = std::move(claimed_token)](const api_state& st,
                                                 const sandbox_view& sbx) {
    if (grant == proxy_grant::token
        && (sbx.access_token.empty()
            || !constant_time_equal(claimed, sbx.access_token)))
      return fail(*x, ec::proxy_unauthorized,
                  std::string{invalid_proxy_credentials});
    renew_on_access(st, *x, sbx);
    forward_to(st, x, spec, static_cast<int>(port), sbx, grant);
  };
  if (auto hit = st.cache->find(sandbox_id))
    return go(st, *hit);
  st.backend->get(
    x->ctx(), sandbox_id,
    [x, st = st.shared_from_this(), go, grant](result<sandbox_view> r) {
      try {
        if (r.has_value()) {
          st->cache->put(*r.value);
          return go(*st, *r.value);
        }
        // Only a caller with a credential for the server learns whether
        // the sandbox exists.
        if (grant == proxy_grant::token && r.error.status == 404)
          return fail(*x, ec::proxy_unauthorized,
                      std::string{invalid_proxy_credentials});
        fail(*x, r.error);
      } catch (...) {
        fail(*x, ec::internal, "An unexpected error occurred.");
      }
    });
}

// -- diagnostics (§1.14) ------------------------------------------------------

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
  st.backend->diagnostics(
    x->ctx(), rt.sandbox_id, std::move(q),
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

void dispatch_route(const api_state& st, exchange_ptr x, const route& rt,
                    request& req) {
  auto& backend = *st.backend;
  switch (rt.id) {
    case route_id::not_found:
      return finish(*x, json_response(404, R"({"detail":"Not Found"})"),
                    "not_found", "no such route");
    case route_id::method_not_allowed: {
      auto res = json_response(405, R"({"detail":"Method Not Allowed"})");
      res.headers.emplace_back("Allow", rt.allow);
      return finish(*x, std::move(res), "method_not_allowed",
                    "allowed: " + rt.allow);
    }
    case route_id::redirect_slash: {
      auto res = empty_response(307);
      auto& host = req.header("host");
      auto location = host.empty() ? rt.rest : "http://" + host + rt.rest;
      if (!req.query.empty())
        location += '?' + req.query;
      res.headers.emplace_back("Location", std::move(location));
      return finish(*x, std::move(res));
    }
    case route_id::health:
      return finish(*x, json_response(200, R"({"status":"healthy"})"));
    case route_id::create_sandbox: {
      auto spec = codec::decode_create(req.body, *st.cfg);
      if (auto r = std::get_if<codec::rejection>(&spec))
        return reject(*x, *r);
      return backend.create(
        x->ctx(), std::move(std::get<sandbox_spec>(spec)),
        on_success<sandbox_view>(x, [](exchange& x, sandbox_view sbx) {
          x.sandbox_id = sbx.id;
          finish(x, json_response(202, codec::encode_create_response(sbx)));
        }));
    }
    case route_id::list_sandboxes: {
      auto q = codec::decode_list_query(req.query);
      if (auto r = std::get_if<codec::rejection>(&q))
        return reject(*x, *r);
      return backend.list(
        x->ctx(), std::move(std::get<list_query>(q)),
        on_success<list_page>(x, [](exchange& x, list_page page) {
          auto res = json_response(200, codec::encode_list(page));
          // The node may not know every sandbox yet (docs/cluster.md).
          if (page.partial)
            res.headers.emplace_back("OpenSandbox-List-Partial", "true");
          finish(x, std::move(res));
        }));
    }
    case route_id::get_sandbox:
      return backend.get(
        x->ctx(), rt.sandbox_id,
        on_success<sandbox_view>(x, [](exchange& x, sandbox_view sbx) {
          finish(x, json_response(200, codec::encode_sandbox(sbx)));
        }));
    case route_id::delete_sandbox:
      // The proxy must not reach a deleted sandbox's ports.
      st.cache->erase(rt.sandbox_id);
      return backend.remove(
        x->ctx(), rt.sandbox_id,
        on_success<std::string>(x, [cache = st.cache](exchange& x,
                                                      std::string pending) {
          cache->erase(x.sandbox_id);
          if (pending.empty())
            return finish(x, empty_response(204));
          // Deleted durably; the containers go once the runtime allows.
          finish(x, json_response(202, codec::encode_deletion_pending(
                                         x.sandbox_id, pending)));
        }));
    case route_id::patch_metadata: {
      auto patch = codec::decode_patch(req.body);
      if (auto r = std::get_if<codec::rejection>(&patch))
        return reject(*x, *r);
      return backend.patch(
        x->ctx(), rt.sandbox_id, std::move(std::get<metadata_patch>(patch)),
        on_success<sandbox_view>(x, [](exchange& x, sandbox_view sbx) {
          finish(x, json_response(200, codec::encode_sandbox(sbx)));
        }));
    }
    // State changes drop the proxy's cached view, so that renew-on-access
    // starts from the current state and expiry.
    case route_id::pause_sandbox:
      return backend.pause(x->ctx(), rt.sandbox_id,
                           on_success<unit>(x, [cache = st.cache](exchange& x,
                                                                  unit) {
                             cache->erase(x.sandbox_id);
                             finish(x, empty_response(202));
                           }));
    case route_id::resume_sandbox:
      return backend.resume(x->ctx(), rt.sandbox_id,
                            on_success<unit>(x, [cache = st.cache](exchange& x,
                                                                   unit) {
                              cache->erase(x.sandbox_id);
                              finish(x, empty_response(202));
                            }));
    case route_id::renew_expiration: {
      auto at = codec::decode_renew(req.body);
      if (auto r = std::get_if<codec::rejection>(&at))
        return reject(*x, *r);
      // Existence, "in the future" and manual cleanup are checked by the
      // backend, in that order (§1.10).
      return backend.renew(
        x->ctx(), rt.sandbox_id, std::get<int64_t>(at),
        on_success<int64_t>(x, [cache = st.cache](exchange& x,
                                                  int64_t expires_us) {
          cache->erase(x.sandbox_id);
          finish(x, json_response(200, codec::encode_renew(expires_us)));
        }));
    }
    case route_id::get_endpoint:
      return get_endpoint(st, std::move(x), rt, req);
    case route_id::create_snapshot: {
      auto name = codec::decode_snapshot_request(req.body);
      if (auto r = std::get_if<codec::rejection>(&name))
        return reject(*x, *r);
      return backend.create_snapshot(
        x->ctx(), rt.sandbox_id, std::move(std::get<std::string>(name)),
        on_success<snapshot_view>(x, [](exchange& x, snapshot_view snap) {
          auto res = json_response(202, codec::encode_snapshot(snap));
          // Always with /v1, also when called at the root (§1.12).
          res.headers.emplace_back("Location", "/v1/snapshots/" + snap.id);
          finish(x, std::move(res));
        }));
    }
    case route_id::list_snapshots: {
      auto q = codec::decode_snapshot_query(req.query);
      if (auto r = std::get_if<codec::rejection>(&q))
        return reject(*x, *r);
      return backend.list_snapshots(
        x->ctx(), std::move(std::get<snapshot_query>(q)),
        on_success<snapshot_page>(x, [](exchange& x, snapshot_page page) {
          finish(x, json_response(200, codec::encode_snapshot_list(page)));
        }));
    }
    case route_id::get_snapshot:
      return backend.get_snapshot(
        x->ctx(), rt.param,
        on_success<snapshot_view>(x, [](exchange& x, snapshot_view snap) {
          finish(x, json_response(200, codec::encode_snapshot(snap)));
        }));
    case route_id::delete_snapshot:
      return backend.delete_snapshot(x->ctx(), rt.param,
                                     on_success<unit>(x, [](exchange& x, unit) {
                                       finish(x, empty_response(204));
                                     }));
    case route_id::proxy:
    case route_id::signed_proxy:
      return proxy(st, std::move(x), rt, req);
    case route_id::diagnostics_logs:
    case route_id::diagnostics_events:
    case route_id::diagnostics_inspect:
    case route_id::diagnostics_summary:
      return diagnostics(st, std::move(x), rt, req);
    case route_id::create_pool:
    case route_id::list_pools:
    case route_id::get_pool:
    case route_id::update_pool:
    case route_id::delete_pool:
      return fail(*x, api_error{501, "KUBERNETES::POOL_NOT_SUPPORTED",
                                "Pool management is only available when "
                                "runtime.type is 'kubernetes'."});
    case route_id::metrics_events:
      return finish(*x, empty_response(204));
    case route_id::cluster_nodes:
      return backend.members(
        x->ctx(), on_success<std::vector<member_info>>(
                    x, [](exchange& x, std::vector<member_info> xs) {
                      finish(x, json_response(200, codec::encode_members(xs)));
                    }));
  }
  return finish(*x, json_response(404, R"({"detail":"Not Found"})"),
                "not_found", "no such route");
}

/// Answers a CORS preflight like Starlette's CORSMiddleware does.
void preflight(exchange& x, const request& req) {
  auto& requested_method = req.header("access-control-request-method");
  auto& requested_headers = req.header("access-control-request-headers");
  bool method_ok = false;
  for (std::string_view m : {"DELETE", "GET", "HEAD", "OPTIONS", "PATCH",
                             "POST", "PUT"})
    if (requested_method == m)
      method_ok = true;
  response res;
  res.content_type = "text/plain; charset=utf-8";
  res.headers.emplace_back("Vary", "Origin");
  res.headers.emplace_back("Access-Control-Allow-Methods",
                           std::string{cors_methods});
  res.headers.emplace_back("Access-Control-Max-Age", "600");
  res.headers.emplace_back("Access-Control-Allow-Credentials", "true");
  res.headers.emplace_back("Access-Control-Allow-Origin", x.origin);
  bool has_requested_headers = false;
  for (const auto& [name, value] : req.headers)
    if (name == "access-control-request-headers")
      has_requested_headers = true;
  if (has_requested_headers)
    res.headers.emplace_back("Access-Control-Allow-Headers",
                             requested_headers);
  if (method_ok) {
    res.status = 200;
    res.body = "OK";
    return finish(x, std::move(res), {}, {}, false);
  }
  res.status = 400;
  res.body = "Disallowed CORS method";
  finish(x, std::move(res), "cors", "disallowed CORS method", false);
}

void handle(const api_state& st, request& req, responder& respond) {
  auto x = std::make_shared<exchange>();
  if (log::access_enabled())
    x->started = std::chrono::steady_clock::now();
  auto rid = trim(req.header("x-request-id"));
  x->rid = rid.empty() ? codec::make_request_id() : std::string{rid};
  x->method = req.method;
  x->path = req.path;
  x->origin = req.header("origin");
  for (const auto& field : req.headers)
    if (field.first == "cookie")
      x->has_cookie = true;
  x->respond = std::move(respond);
  try {
    // Middleware order of the original, outermost first: request id, CORS
    // (preflights are answered before auth), auth, routing.
    if (req.method == "OPTIONS" && !x->origin.empty()
        && !req.header("access-control-request-method").empty())
      return preflight(*x, req);
    auto rt = match_route(req.method, req.path);
    x->sandbox_id = rt.sandbox_id;
    if (st.key_required && !auth_exempt(decode_path(req.path))) {
      auto& key = req.header("open-sandbox-api-key");
      if (key.empty())
        return fail(*x, ec::missing_api_key, std::string{missing_key_message});
      if (!constant_time_equal(key, st.cfg->server.api_key))
        return fail(*x, ec::invalid_api_key, std::string{invalid_key_message});
    }
    dispatch_route(st, x, rt, req);
  } catch (const std::exception& e) {
    auto res = json_response(500, "Internal Server Error");
    res.content_type = "text/plain; charset=utf-8";
    finish(*x, std::move(res), "exception", e.what());
  }
}

} // namespace

handler make_api_handler(std::shared_ptr<const node_config> cfg,
                         std::shared_ptr<lifecycle_backend> backend) {
  auto st = std::make_shared<api_state>();
  st->public_host = net::detect_public_host(*cfg);
  {
    std::ifstream in{"/proc/net/route"};
    std::stringstream routes;
    routes << in.rdbuf();
    auto proxy = net::detect_proxy_address(
      *cfg, net::docker_bridge_here(), routes.str(),
      net::resolve_publish_address(*cfg, !net::docker_bridge_here(),
                                   st->public_host));
    st->proxy_address = proxy.host;
    st->proxy_address_local = proxy.local;
  }
  st->key_required = !trim(cfg->server.api_key).empty();
  st->cfg = std::move(cfg);
  st->backend = std::move(backend);
  if (st->cfg->renew_intent.enabled) {
    // Capped at ten years: the monotonic clock counts nanoseconds.
    auto secs = std::min<int64_t>(st->cfg->renew_intent.min_interval_seconds,
                                  int64_t{10} * 365 * 24 * 3600);
    st->renew
      = std::make_shared<renew_coordinator>(std::chrono::seconds(secs));
    OSB_INFO("http", "", "",
             "renew-on-access is on (proxy-only, cool-down "
               << st->cfg->renew_intent.min_interval_seconds << " s)");
  }
  if (st->cfg->renew_intent.redis_requested)
    OSB_WARN("http", "", "",
             "renew_intent.redis.enabled is set, but consuming renew intents "
             "from Redis is not implemented: only proxied requests renew");
  OSB_INFO("http", "", "",
           "endpoints advertise host "
             << st->public_host << "; the proxy reaches ports published "
             << "here at " << st->proxy_address);
  return [st](request&& req, responder respond) {
    handle(*st, req, respond);
  };
}

} // namespace osb::http
