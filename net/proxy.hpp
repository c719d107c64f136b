#pragma once

// The rules of the server proxy (§1.13) as pure functions: which sandbox and
// port a path names, where that port is reached from this node, which path
// may be forwarded, and which header fields cross the proxy. The streaming
// itself lives in the HTTP server (http/server.cpp).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/model.hpp"

namespace osb::net {

/// Header fields as (name, value) pairs; request names are lower-case.
using header_list = std::vector<std::pair<std::string, std::string>>;

/// The parts of a server-proxy path: `(/v1)?/sandboxes/{id}/proxy/{port}[/…]`,
/// `(/v1)?/route/{id}/{port}[/…]` or the signed `(/v1)?/signed/{token}[/…]`
/// (see net/signed_route.hpp).
struct proxy_path {
  /// Percent-decoded sandbox id.
  std::string sandbox_id;
  /// Percent-decoded port segment (not validated).
  std::string port;
  /// What follows `{port}/`, raw (not decoded); empty for `…/{port}` and
  /// `…/{port}/`.
  std::string rest;
  /// The percent-decoded route token of a signed path (then `sandbox_id`
  /// and `port` come from it, empty when it is malformed); empty otherwise.
  std::string signed_token;
};

/// Splits a raw request path (no query) into a proxy_path; nullopt when the
/// path has neither shape. The fixed segments are compared after
/// percent-decoding (`/sandboxes/x/%70roxy/1` is a proxy path), like the
/// router does.
std::optional<proxy_path> parse_proxy_path(std::string_view raw_path);

/// Whether a raw path is a server-proxy path (cheap prefix test; what the
/// HTTP server streams instead of buffering).
bool is_proxy_path(std::string_view raw_path);

/// Where the server proxy reaches a sandbox port. Host and port come from
/// the sandbox record, never from the request: 127.0.0.1 for sandboxes
/// whose ports are published on this machine, else the numeric address of
/// the machine that publishes them (another node, a remote Docker host).
struct internal_endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  /// Path prefix on the upstream: "" or "/proxy/<container port>" (execd
  /// inside the sandbox forwards `/proxy/P/…` to `127.0.0.1:P`).
  std::string prefix;

  /// `<host>:<port><prefix>`, for messages.
  std::string text() const;
};

/// Resolves the internal endpoint of container port `port` (§3.7
/// resolve_internal). Host network mode (without an
/// egress sidecar): `127.0.0.1:<port>`. Other modes, and sandboxes behind an
/// egress sidecar: 8080 → `127.0.0.1:<ports.http>`, 44772 →
/// `127.0.0.1:<ports.execd>` (execd itself), 18080 with a published egress
/// port → `127.0.0.1:<ports.egress>`, any other port →
/// `127.0.0.1:<ports.execd>/proxy/<port>`. A sandbox whose `endpoint_host`
/// names another machine (a remote Docker host or another node's host) is
/// reached at that address instead of 127.0.0.1, if it is numeric.
/// Published ports of this machine are reached at `local_address` instead
/// of 127.0.0.1 when it is given (see `detect_proxy_address`).
/// @param local_host this node's public host (`detect_public_host`): an
///        `endpoint_host` equal to it, empty or loopback means this machine.
/// @param local_address where this machine's published ports are reached;
///        empty = 127.0.0.1. Not used for host-mode ports (an app may
///        listen on loopback only).
/// @returns `ec::invalid_port` outside 1..65535 or, in host mode, for the
///          server's own port (a request loop); `ec::endpoint_unavailable`
///          when the needed host port is unknown or the sandbox's machine
///          has no numeric address.
result<internal_endpoint> resolve_internal(const sandbox_view& sbx, int port,
                                           const node_config& cfg,
                                           const std::string& local_host
                                           = {},
                                           const std::string& local_address
                                           = {});

/// Turns the raw rest of a proxy path into the path sent upstream: `/` +
/// rest with leading slashes collapsed, encoding kept as is. Returns nullopt
/// for anything that could leave the addressed port's root: `.`/`..`
/// segments (also percent-encoded, also double-encoded, also with `\` as
/// separator), encoded NUL, CR, LF.
std::optional<std::string> normalize_proxy_rest(std::string_view raw_rest);

/// Hop-by-hop header fields (RFC 9110 §7.6.1, plus `proxy-connection`);
/// case-insensitive.
bool is_hop_by_hop(std::string_view name);

/// Whether `name` is one of the comma-separated tokens of a `Connection`
/// header value (case-insensitive).
bool named_in_connection(std::string_view name, std::string_view connection);

/// Whether a request asks for a WebSocket upgrade: `Upgrade: websocket` (any
/// case) on a request with a `Connection: upgrade` token and a
/// `Sec-WebSocket-Key`.
bool is_websocket_handshake(const header_list& lower_headers);

/// Whether any `Upgrade` field names websocket (any case).
bool wants_websocket(const header_list& lower_headers);

/// What the forwarded request says about the inbound one.
struct forward_context {
  std::string remote_addr;
  std::string scheme = "http";
  /// The inbound request id (client's or generated); added when absent.
  std::string request_id;
  /// Keep the WebSocket handshake fields (`Upgrade`, `Sec-WebSocket-*`,
  /// `Origin`) for a byte tunnel.
  bool websocket = false;
};

/// The request header fields sent upstream (§1.13 step 4): the inbound ones
/// minus `host`, hop-by-hop fields, `authorization`, `cookie`,
/// `open-sandbox-api-key`, `opensandbox-secure-access` (credentials meant for
/// this server), `expect` (the server answers 100-continue itself),
/// `content-length` (framing is the server's) and every field named in
/// `Connection`; plus `X-Forwarded-Proto/Host/For` and `X-Request-ID` when
/// absent. For a WebSocket handshake `Upgrade: websocket` and
/// `Connection: Upgrade` are set.
/// @param lower_headers inbound fields with lower-case names.
header_list filter_request_headers(const header_list& lower_headers,
                                   const forward_context& ctx);

/// The response header fields relayed to the client (§1.13 step 6): minus
/// hop-by-hop fields, `content-length` (framing is the server's) and every
/// field named in the response's `Connection` header (case-insensitive
/// names; order kept).
header_list filter_response_headers(const header_list& headers);

/// The test of `filter_response_headers` for one field, without copies (the
/// server's relay loop).
/// @param connection the value of the response's `Connection` header.
bool drop_response_header(std::string_view name, std::string_view connection);

} // namespace osb::net
