#pragma once

#include <string>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/model.hpp"

namespace osb::net {

/// Container port of the egress sidecar's API; endpoints for it carry the
/// sidecar token.
constexpr int egress_port = 18080;

/// Container port of execd; in bridge mode every port but 8080 is reached
/// through execd's `/proxy/<port>`.
constexpr int execd_port = 44772;

/// Container port published on its own host port in bridge mode.
constexpr int http_port = 8080;

/// Name of the header that authenticates calls to the egress sidecar.
constexpr const char* egress_auth_header = "OPENSANDBOX-EGRESS-AUTH";

/// Name of the header that carries a sandbox's access token to execd.
constexpr const char* execd_token_header = "X-EXECD-ACCESS-TOKEN";

/// Name of the header that carries a sandbox's access token to the server
/// proxy (OSEP-0011's static header).
constexpr const char* secure_access_header = "OpenSandbox-Secure-Access";

/// Returns the host advertised in public endpoints (§3.7): `server.eip`
/// verbatim if set; else `server.host` unless it is a wildcard; else
/// `docker.host_ip` when running inside a container (`/.dockerenv`); else the
/// machine's outward IPv4 address, falling back to `127.0.0.1`. May touch the
/// network stack (no packet is sent); call once at startup.
std::string detect_public_host(const node_config& cfg);

/// Like `detect_public_host(cfg)` but with the container check given
/// explicitly (for tests).
std::string detect_public_host(const node_config& cfg, bool in_container);

/// Returns the machine's outward IPv4 address as seen by the routing table
/// (UDP "connect" to 8.8.8.8:80, no packet sent), or "" if there is none.
std::string outward_ipv4();

/// The address at which the server proxy reaches ports that Docker
/// publishes on this machine (`docker.proxy_host`): the configured one, or
/// for "auto" this machine's outward IPv4 address, else its first other
/// non-loopback IPv4 address, else 127.0.0.1. A published port connected to
/// at a non-loopback local address is forwarded by Docker's NAT rules
/// (iptables `OUTPUT` → `DOCKER` chain) straight to the container, where
/// 127.0.0.1 goes through docker-proxy; without those rules docker-proxy
/// listens on every address, so the port answers either way. Same lifetime
/// as the published port (no stale container addresses).
std::string detect_proxy_address(const node_config& cfg);

/// What `docker.proxy_host = "auto"` picks, and whether it is an address of
/// this machine (then the proxy binds to it before connecting).
struct proxy_address {
  std::string host;
  bool local = false;
};

/// `auto`: when Docker does not publish ports here (`docker_here` false: its
/// `docker0` bridge is not one of our interfaces; the server runs in a
/// container of its own network, like the compose cluster), the default
/// gateway, i.e. the Docker host that publishes the sandboxes' ports (not
/// local); else the address published ports bind to when it is a specific
/// one (`publish_address`, see resolve_publish_address), else this
/// machine's outward IPv4 (local). A configured value is used
/// as is, local if this machine has it now. `routes` is the text of
/// /proc/net/route (tests pass their own).
proxy_address detect_proxy_address(const node_config& cfg, bool docker_here,
                                   const std::string& routes,
                                   const std::string& publish_address
                                   = "0.0.0.0");

/// The host address the published ports of a Docker host's sandboxes bind
/// to (`docker.publish_address`): a configured address as is; for "auto",
/// 0.0.0.0 when the ports are published outside this network namespace
/// (`remote`: a remote Docker host, or this server runs in a container),
/// else 127.0.0.1 when the
/// endpoints advertise a loopback host, the advertised host itself when it
/// is an address of this machine, and 0.0.0.0 otherwise (e.g. an `eip`
/// behind NAT). Only a wildcard publishes on the bridge gateway, where
/// other sandboxes can reach the ports.
std::string resolve_publish_address(const node_config& cfg, bool remote,
                                    const std::string& public_host);

/// Whether `address` binds every interface (0.0.0.0 or ::).
bool is_wildcard_address(const std::string& address);

/// Whether Docker's default bridge (`docker0`) is an interface of this
/// network namespace, i.e. Docker publishes ports on this machine.
bool docker_bridge_here();

/// Whether this machine has the IPv4 address `host` right now.
bool is_local_address(const std::string& host);

/// The default gateway from /proc/net/route text, "" if none.
std::string default_gateway(const std::string& routes);

/// Resolves the public endpoint of container port `port` of `sbx` (§3.7).
/// Host network mode: `<host>:<port>`. Any other mode: port 8080 maps to the
/// reserved host port for 8080, every other port goes through execd's proxy
/// (`<host>:<execd host port>/proxy/<port>`). Port 18080 of a sandbox with an
/// egress sidecar carries the `OPENSANDBOX-EGRESS-AUTH` header; every
/// endpoint served by execd (44772 itself, and in bridge mode every port but
/// 8080) carries `X-EXECD-ACCESS-TOKEN` when the sandbox has a token.
/// @param public_host the result of `detect_public_host`.
/// @returns `ec::invalid_port` outside 1..65535, `ec::endpoint_unavailable`
///          when the needed host port is unknown.
result<endpoint_view> resolve_endpoint(const sandbox_view& sbx, int port,
                                       const node_config& cfg,
                                       const std::string& public_host);

/// Returns the endpoint of the server's own reverse proxy for a sandbox port:
/// `<base>/sandboxes/<id>/proxy/<port>` with trailing slashes of `base`
/// trimmed and every `http://`/`https://` removed (the SDK adds its scheme).
/// @param base `server.eip` if set, else the request's `scheme://host`.
std::string server_proxy_endpoint(const std::string& base,
                                  const std::string& id, int port);

/// Returns the endpoint of a signed proxy URL: `<base>/signed/<token>`, with
/// `base` treated as in `server_proxy_endpoint`.
std::string signed_proxy_endpoint(const std::string& base,
                                  const std::string& token);

} // namespace osb::net
