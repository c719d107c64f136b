#include "net/proxy.hpp"

#include "base/strings.hpp"

#include "net/endpoints.hpp"
#include "net/signed_route.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>

namespace osb::net {

namespace {

char lower_char(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower_char(a[i]) != lower_char(b[i]))
      return false;
  return true;
}

bool starts_with(std::string_view str, std::string_view prefix) {
  return str.substr(0, prefix.size()) == prefix;
}



/// Pops the next `/`-separated segment off `path` (which starts after a `/`).
/// Always succeeds (for use in conditions); `more` tells whether a `/`
/// followed the segment.
bool next_segment(std::string_view& path, std::string_view& seg, bool& more) {
  auto slash = path.find('/');
  seg = path.substr(0, slash);
  more = slash != std::string_view::npos;
  path = more ? path.substr(slash + 1) : std::string_view{};
  return true;
}

/// Whether one (decoded) path contains a `.`/`..` segment or a byte that no
/// path may carry. Backslashes count as separators: some servers treat them
/// as `/`.
bool has_escape(std::string_view path) {
  size_t begin = 0;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i < path.size()) {
      auto c = path[i];
      if (c == '\0' || c == '\r' || c == '\n')
        return true;
      if (c != '/' && c != '\\')
        continue;
    }
    auto seg = path.substr(begin, i - begin);
    if (seg == "." || seg == "..")
      return true;
    begin = i + 1;
  }
  return false;
}

/// Fields that never cross the proxy towards a sandbox, whatever the
/// `Connection` header says: the inbound host, credentials meant for this
/// server, and framing/expectations the server handles itself.
constexpr std::array<std::string_view, 7> dropped_request_fields = {
  "host",   "authorization",  "cookie", "open-sandbox-api-key",
  "expect", "content-length", "opensandbox-secure-access",
};

constexpr std::array<std::string_view, 9> hop_by_hop_fields = {
  "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
  "te",         "trailer",    "transfer-encoding",  "upgrade",
  "proxy-connection",
};

bool has_field(const header_list& headers, std::string_view name) {
  for (const auto& field : headers)
    if (iequals(field.first, name))
      return true;
  return false;
}

} // namespace

std::optional<proxy_path> parse_proxy_path(std::string_view raw_path) {
  if (raw_path.empty() || raw_path.front() != '/')
    return std::nullopt;
  auto p = raw_path.substr(1);
  if (starts_with(p, "v1/"))
    p.remove_prefix(3);
  std::string_view seg;
  bool more = false;
  next_segment(p, seg, more);
  auto head = percent_decode(seg);
  proxy_path result;
  if (head == "sandboxes") {
    // sandboxes/{id}/proxy/{port}[/rest]
    std::string_view id;
    std::string_view word;
    std::string_view port;
    if (!more || !next_segment(p, id, more) || id.empty() || !more)
      return std::nullopt;
    next_segment(p, word, more);
    if (percent_decode(word) != "proxy" || !more)
      return std::nullopt;
    next_segment(p, port, more);
    if (port.empty())
      return std::nullopt;
    result.sandbox_id = percent_decode(id);
    result.port = percent_decode(port);
  } else if (head == "route") {
    // route/{id}/{port}[/rest]
    std::string_view id;
    std::string_view port;
    if (!more || !next_segment(p, id, more) || id.empty() || !more)
      return std::nullopt;
    next_segment(p, port, more);
    if (port.empty())
      return std::nullopt;
    result.sandbox_id = percent_decode(id);
    result.port = percent_decode(port);
  } else if (head == "signed") {
    // signed/{sandbox_id}-{port}-{expires_b36}-{signature}[/rest]
    std::string_view token;
    if (!more || !next_segment(p, token, more) || token.empty())
      return std::nullopt;
    result.signed_token = percent_decode(token);
    if (auto t = parse_route_token(result.signed_token)) {
      result.sandbox_id = t->sandbox_id;
      result.port = std::to_string(t->port);
    }
  } else {
    return std::nullopt;
  }
  if (more)
    result.rest = std::string{p};
  return result;
}

bool is_proxy_path(std::string_view raw_path) {
  // Fast rejection of everything that is not under sandboxes/ or route/.
  auto p = raw_path;
  if (starts_with(p, "/v1/"))
    p.remove_prefix(3);
  if (!starts_with(p, "/sandboxes/") && !starts_with(p, "/route/")
      && !starts_with(p, "/signed/") && p.find('%') == std::string_view::npos)
    return false;
  return parse_proxy_path(raw_path).has_value();
}

std::string internal_endpoint::text() const {
  auto h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ':' + std::to_string(port) + prefix;
}

result<internal_endpoint> resolve_internal(const sandbox_view& sbx, int port,
                                           const node_config& cfg,
                                           const std::string& local_host,
                                           const std::string& local_address) {
  using res = result<internal_endpoint>;
  if (port < 1 || port > 65535)
    return res::fail(
      make_api_error(ec::invalid_port, "Port must be between 1 and 65535."));
  internal_endpoint x;
  const auto& where = sbx.endpoint_host;
  bool here = where.empty() || where == local_host || where == "127.0.0.1"
              || where == "localhost" || where == "::1";
  if (!here) {
    // Published on another machine: its address comes from the record
    // (node config), and only a numeric one is used (no resolver on the
    // I/O threads, no name from anywhere else).
    in6_addr buf;
    if (::inet_pton(AF_INET, where.c_str(), &buf) != 1
        && ::inet_pton(AF_INET6, where.c_str(), &buf) != 1)
      return res::fail(make_api_error(
        ec::endpoint_unavailable,
        "Sandbox " + sbx.id + " is published on host '" + where
          + "', which the server proxy cannot reach by name."));
    x.host = where;
  }
  // A sandbox with an egress sidecar lives in the sidecar's (bridged)
  // namespace even in host mode: it is reached through published ports.
  if (cfg.docker.network_mode == "host" && sbx.egress_token.empty()) {
    // The sandbox shares the host's network: its port is the host's port.
    // The server's own port would only loop back into this proxy.
    if (here && port == cfg.server.port)
      return res::fail(make_api_error(
        ec::invalid_port, "Port " + std::to_string(port)
                            + " is the server's own port."));
    x.port = static_cast<uint16_t>(port);
    return res::ok(std::move(x));
  }
  // A published port of this machine: at a non-loopback address Docker's
  // NAT rules take the connection straight to the container, where
  // 127.0.0.1 would go through docker-proxy (a userspace copy per byte).
  if (here && !local_address.empty())
    x.host = local_address;
  if (port == http_port) {
    if (sbx.ports.http == 0)
      return res::fail(make_api_error(
        ec::endpoint_unavailable,
        "Missing host port mapping for container port 8080."));
    x.port = static_cast<uint16_t>(sbx.ports.http);
    return res::ok(std::move(x));
  }
  if (port == egress_port && sbx.ports.egress != 0) {
    // The sidecar's API has its own published port.
    x.port = sbx.ports.egress;
    return res::ok(std::move(x));
  }
  if (sbx.ports.execd == 0)
    return res::fail(make_api_error(
      ec::endpoint_unavailable,
      "Missing host port mapping for execd proxy port 44772."));
  x.port = static_cast<uint16_t>(sbx.ports.execd);
  // execd itself needs no second hop through its own /proxy.
  if (port != execd_port)
    x.prefix = "/proxy/" + std::to_string(port);
  return res::ok(std::move(x));
}

std::optional<std::string> normalize_proxy_rest(std::string_view raw_rest) {
  while (!raw_rest.empty() && raw_rest.front() == '/')
    raw_rest.remove_prefix(1);
  // Check the path as sent and as every decoding of it could be read by the
  // upstream (execd decodes once; a sloppy app may decode again).
  std::string current{raw_rest};
  for (int round = 0; round < 4; ++round) {
    if (has_escape(current))
      return std::nullopt;
    if (current.find('%') == std::string::npos)
      break;
    auto next = percent_decode(current);
    if (next == current)
      break;
    current = std::move(next);
  }
  std::string result;
  result.reserve(raw_rest.size() + 1);
  result += '/';
  result.append(raw_rest.data(), raw_rest.size());
  return result;
}

bool is_hop_by_hop(std::string_view name) {
  for (auto x : hop_by_hop_fields)
    if (iequals(name, x))
      return true;
  return false;
}

bool named_in_connection(std::string_view name, std::string_view connection) {
  while (!connection.empty()) {
    auto comma = connection.find(',');
    auto token = connection.substr(0, comma);
    connection = comma == std::string_view::npos
                   ? std::string_view{}
                   : connection.substr(comma + 1);
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t'))
      token.remove_prefix(1);
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t'))
      token.remove_suffix(1);
    if (!token.empty() && iequals(token, name))
      return true;
  }
  return false;
}

bool wants_websocket(const header_list& lower_headers) {
  for (const auto& [name, value] : lower_headers)
    if (name == "upgrade" && named_in_connection("websocket", value))
      return true;
  return false;
}

bool is_websocket_handshake(const header_list& lower_headers) {
  bool upgrade_token = false;
  bool has_key = false;
  for (const auto& [name, value] : lower_headers) {
    if (name == "connection" && named_in_connection("upgrade", value))
      upgrade_token = true;
    else if (name == "sec-websocket-key" && !value.empty())
      has_key = true;
  }
  return upgrade_token && has_key && wants_websocket(lower_headers);
}

header_list filter_request_headers(const header_list& lower_headers,
                                   const forward_context& ctx) {
  // Every Connection field counts (a client may send several).
  std::string connection;
  std::string_view host;
  for (const auto& [name, value] : lower_headers) {
    if (name == "connection") {
      if (!connection.empty())
        connection += ',';
      connection += value;
    } else if (name == "host" && host.empty()) {
      host = value;
    }
  }
  header_list result;
  result.reserve(lower_headers.size() + 5);
  for (const auto& field : lower_headers) {
    const auto& name = field.first;
    bool drop = is_hop_by_hop(name) || named_in_connection(name, connection);
    for (auto x : dropped_request_fields)
      drop = drop || name == x;
    if (!drop)
      result.push_back(field);
  }
  if (!has_field(result, "x-forwarded-proto"))
    result.emplace_back("x-forwarded-proto", ctx.scheme);
  if (!host.empty() && !has_field(result, "x-forwarded-host"))
    result.emplace_back("x-forwarded-host", std::string{host});
  if (!ctx.remote_addr.empty() && !has_field(result, "x-forwarded-for"))
    result.emplace_back("x-forwarded-for", ctx.remote_addr);
  if (!ctx.request_id.empty() && !has_field(result, "x-request-id"))
    result.emplace_back("x-request-id", ctx.request_id);
  if (ctx.websocket) {
    result.emplace_back("connection", "Upgrade");
    result.emplace_back("upgrade", "websocket");
  }
  return result;
}

bool drop_response_header(std::string_view name, std::string_view connection) {
  return is_hop_by_hop(name) || iequals(name, "content-length")
         || named_in_connection(name, connection);
}

header_list filter_response_headers(const header_list& headers) {
  std::string connection;
  for (const auto& [name, value] : headers) {
    if (iequals(name, "connection")) {
      if (!connection.empty())
        connection += ',';
      connection += value;
    }
  }
  header_list result;
  result.reserve(headers.size());
  for (const auto& field : headers)
    if (!drop_response_header(field.first, connection))
      result.push_back(field);
  return result;
}

} // namespace osb::net
