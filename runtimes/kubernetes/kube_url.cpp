// The API server's URL and query escaping (kube_internal.hpp).

#include "runtimes/kubernetes/kube_internal.hpp"

#include <cctype>

namespace osb::runtimes::kubernetes {

expected<server_url> parse_server_url(std::string_view url) {
  auto bad = [&](const std::string& why) {
    return failure{failure_kind::invalid,
                   "server '" + std::string{url} + "' " + why};
  };
  server_url result;
  if (url.rfind("https://", 0) == 0) {
    result.tls = true;
    url.remove_prefix(8);
  } else if (url.rfind("http://", 0) == 0) {
    url.remove_prefix(7);
  } else {
    return bad("is not an http:// or https:// URL");
  }
  auto slash = url.find('/');
  auto authority = url.substr(0, slash);
  if (slash != std::string_view::npos) {
    result.prefix = std::string{url.substr(slash)};
    while (!result.prefix.empty() && result.prefix.back() == '/')
      result.prefix.pop_back();
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return bad("has an unclosed IPv6 address");
    result.host = std::string{authority.substr(1, close - 1)};
    auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return bad("has garbage after the IPv6 address");
      port = rest.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    result.host = std::string{authority.substr(0, colon)};
    if (colon != std::string_view::npos)
      port = authority.substr(colon + 1);
  }
  if (result.host.empty())
    return bad("has no host");
  if (port.empty()) {
    result.port = result.tls ? "443" : "80";
  } else {
    if (port.find_first_not_of("0123456789") != std::string_view::npos
        || port.size() > 5 || std::stoi(std::string{port}) > 65535)
      return bad("has an invalid port");
    result.port = std::string{port};
  }
  return result;
}

std::string query_escape(std::string_view x) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : x) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

} // namespace osb::runtimes::kubernetes
