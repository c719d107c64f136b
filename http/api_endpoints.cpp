// Endpoints (`GET /sandboxes/{id}/endpoints/{port}`, with signed URLs) and
// the server proxy that serves them (`/sandboxes/{id}/proxy/{port}/...`,
// `/route/{id}/{port}/...`, `/signed/{token}/...`): credentials, endpoint
// resolution, renew-on-access and the forward_spec handed to the server.

#include "http/api_routes.hpp"

#include "base/secure_compare.hpp"
#include "base/log.hpp"
#include "core/time.hpp"
#include "http/codec_response.hpp"
#include "http/query.hpp"
#include "http/status.hpp"
#include "net/endpoints.hpp"
#include "net/proxy.hpp"
#include "net/signed_route.hpp"

#include <algorithm>
#include <string_view>

namespace osb::http::detail {

namespace {

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
                 ? api_error{ec::proxy_backend_unreachable,
                             "GENERAL::UNKNOWN_ERROR",
                             "Could not connect to the backend sandbox "
                               + endpoint + ": " + detail}
                 : api_error{ec::internal, "GENERAL::UNKNOWN_ERROR",
                             "An internal error occurred in the proxy: "
                               + detail};
    auto res = json_response(status_of(err), codec::encode_error(err));
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
  st.backend->call(
    x.ctx(), sbx.id, extend_op{*target},
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

} // namespace

/// A port's endpoint: the sandbox's own address, this server's proxy
/// (`use_server_proxy`), or a signed URL of it (`expires`).
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
      return fail(*x, api_error{ec::invalid_parameter,
                                "GENERAL::UNKNOWN_ERROR",
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
        if (grant == proxy_grant::token && status_of(r.error) == 404)
          return fail(*x, ec::proxy_unauthorized,
                      std::string{invalid_proxy_credentials});
        fail(*x, r.error);
      } catch (...) {
        fail(*x, ec::internal, "An unexpected error occurred.");
      }
    });
}

std::vector<route_binding> endpoint_routes() {
  return {
    {route_id::get_endpoint, get_endpoint},
    {route_id::proxy, proxy},
    {route_id::signed_proxy, proxy},
  };
}

} // namespace osb::http::detail
