#include "net/endpoints.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <sstream>
#include <string_view>

namespace osb::net {

namespace {

bool is_wildcard(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::";
}

bool file_exists(const char* path) {
  return ::access(path, F_OK) == 0;
}

void erase_all(std::string& str, std::string_view what) {
  for (auto pos = str.find(what); pos != std::string::npos;
       pos = str.find(what, pos))
    str.erase(pos, what.size());
}

} // namespace

std::string outward_ipv4() {
  auto fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0)
    return {};
  // Connecting a UDP socket only consults the routing table: no packet leaves
  // the machine, yet getsockname() then reports the source address the
  // kernel would use for the default route.
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(80);
  ::inet_pton(AF_INET, "8.8.8.8", &dst.sin_addr);
  std::string result;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) == 0) {
    sockaddr_in self{};
    socklen_t len = sizeof(self);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&self), &len) == 0) {
      char buf[INET_ADDRSTRLEN] = {};
      if (::inet_ntop(AF_INET, &self.sin_addr, buf, sizeof(buf)) != nullptr
          && self.sin_addr.s_addr != htonl(INADDR_ANY))
        result = buf;
    }
  }
  ::close(fd);
  return result;
}

std::string detect_public_host(const node_config& cfg, bool in_container) {
  if (!cfg.server.eip.empty())
    return cfg.server.eip;
  if (!is_wildcard(cfg.server.host))
    return cfg.server.host;
  if (in_container && !cfg.docker.host_ip.empty())
    return cfg.docker.host_ip;
  auto ip = outward_ipv4();
  return ip.empty() ? std::string{"127.0.0.1"} : ip;
}

std::string detect_public_host(const node_config& cfg) {
  return detect_public_host(cfg, file_exists("/.dockerenv"));
}

std::string default_gateway(const std::string& routes) {
  // Iface Destination Gateway Flags ...; hex, in network byte order.
  std::istringstream in{routes};
  std::string line;
  std::getline(in, line); // header
  while (std::getline(in, line)) {
    std::istringstream fields{line};
    std::string iface, dest, gw;
    if (!(fields >> iface >> dest >> gw) || dest != "00000000"
        || gw == "00000000")
      continue;
    in_addr addr{};
    addr.s_addr = static_cast<in_addr_t>(std::stoul(gw, nullptr, 16));
    char buf[INET_ADDRSTRLEN] = {};
    if (::inet_ntop(AF_INET, &addr, buf, sizeof(buf)) != nullptr)
      return buf;
  }
  return {};
}

bool is_local_address(const std::string& host) {
  in_addr want{};
  if (::inet_pton(AF_INET, host.c_str(), &want) != 1)
    return false;
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0)
    return false;
  bool found = false;
  for (auto* i = ifs; i != nullptr && !found; i = i->ifa_next)
    if (i->ifa_addr != nullptr && i->ifa_addr->sa_family == AF_INET)
      found = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr
              == want.s_addr;
  ::freeifaddrs(ifs);
  return found;
}

bool docker_bridge_here() {
  return ::if_nametoindex("docker0") != 0;
}

bool is_wildcard_address(const std::string& address) {
  return address == "0.0.0.0" || address == "::" || address == "[::]";
}

std::string resolve_publish_address(const node_config& cfg, bool remote,
                                    const std::string& public_host) {
  auto& x = cfg.docker.publish_address;
  if (x != "auto")
    return x;
  if (remote)
    return "0.0.0.0";
  if (public_host == "localhost" || public_host == "::1"
      || public_host.rfind("127.", 0) == 0)
    return "127.0.0.1";
  if (is_local_address(public_host))
    return public_host;
  return "0.0.0.0";
}

proxy_address detect_proxy_address(const node_config& cfg, bool docker_here,
                                   const std::string& routes,
                                   const std::string& publish_address) {
  if (cfg.docker.proxy_host != "auto")
    return {cfg.docker.proxy_host, is_local_address(cfg.docker.proxy_host)};
  if (!docker_here)
    if (auto gw = default_gateway(routes); !gw.empty())
      return {gw, false};
  // Ports bound to one address answer only there.
  if (!is_wildcard_address(publish_address))
    return {publish_address, is_local_address(publish_address)};
  return {detect_proxy_address(cfg), true};
}

std::string detect_proxy_address(const node_config& cfg) {
  if (cfg.docker.proxy_host != "auto")
    return cfg.docker.proxy_host;
  if (auto ip = outward_ipv4(); !ip.empty())
    return ip;
  // No default route: any other address of this machine will do.
  std::string result = "127.0.0.1";
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0)
    return result;
  for (auto* i = ifs; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET
        || (i->ifa_flags & IFF_LOOPBACK) != 0 || (i->ifa_flags & IFF_UP) == 0)
      continue;
    char buf[INET_ADDRSTRLEN] = {};
    auto* in = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    if (::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf)) != nullptr) {
      result = buf;
      break;
    }
  }
  ::freeifaddrs(ifs);
  return result;
}

result<endpoint_view> resolve_endpoint(const sandbox_view& sbx, int port,
                                       const node_config& cfg,
                                       const std::string& public_host) {
  // In a cluster, endpoints name the host that runs the sandbox.
  const auto& host = sbx.endpoint_host.empty() ? public_host
                                               : sbx.endpoint_host;
  using res = result<endpoint_view>;
  if (port < 1 || port > 65535)
    return res::fail(
      make_api_error(ec::invalid_port, "Port must be between 1 and 65535."));
  endpoint_view x;
  if (cfg.docker.network_mode == "host") {
    x.endpoint = host + ':' + std::to_string(port);
  } else if (port == http_port) {
    if (sbx.ports.http == 0)
      return res::fail(make_api_error(
        ec::endpoint_unavailable,
        "Missing host port mapping for container port 8080."));
    x.endpoint = host + ':' + std::to_string(sbx.ports.http);
  } else {
    if (sbx.ports.execd == 0)
      return res::fail(make_api_error(
        ec::endpoint_unavailable,
        "Missing host port mapping for execd proxy port 44772."));
    x.endpoint = host + ':' + std::to_string(sbx.ports.execd)
                 + "/proxy/" + std::to_string(port);
  }
  if (port == egress_port && !sbx.egress_token.empty())
    x.headers.emplace(egress_auth_header, sbx.egress_token);
  bool via_execd = cfg.docker.network_mode == "host" ? port == execd_port
                                                      : port != http_port;
  if (via_execd && !sbx.access_token.empty())
    x.headers.emplace(execd_token_header, sbx.access_token);
  return res::ok(std::move(x));
}

namespace {

/// `base` + `path` with trailing slashes of `base` trimmed and every scheme
/// removed: a plain substring removal, as the original does (the SDK
/// prepends its own protocol to every endpoint).
std::string proxy_url(const std::string& base, const std::string& path) {
  std::string result = base;
  while (!result.empty() && result.back() == '/')
    result.pop_back();
  result += path;
  erase_all(result, "https://");
  erase_all(result, "http://");
  return result;
}

} // namespace

std::string server_proxy_endpoint(const std::string& base,
                                  const std::string& id, int port) {
  return proxy_url(base, "/sandboxes/" + id + "/proxy/"
                           + std::to_string(port));
}

std::string signed_proxy_endpoint(const std::string& base,
                                  const std::string& token) {
  return proxy_url(base, "/signed/" + token);
}

} // namespace osb::net
