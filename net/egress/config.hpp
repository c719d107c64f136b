#pragma once

#include "net/egress/firewall.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace osb::egress {

/// Everything the sidecar reads from its environment.
struct config {
  /// OPENSANDBOX_EGRESS_RULES: the create request's networkPolicy as JSON.
  std::string rules_json;
  /// OPENSANDBOX_EGRESS_MODE: dns (default) | dns+nft.
  enforcement mode = enforcement::dns;
  /// OPENSANDBOX_EGRESS_TOKEN: required in OPENSANDBOX-EGRESS-AUTH when set.
  std::string token;
  /// OPENSANDBOX_EGRESS_HTTP_ADDR: "[host]:port", default ":18080".
  std::string http_host = "0.0.0.0";
  uint16_t http_port = 18080;
  /// OPENSANDBOX_EGRESS_DNS_PORT: the proxy's port on 127.0.0.1 and ::1.
  uint16_t dns_port = 53;
  /// OPENSANDBOX_EGRESS_UPSTREAM_DNS or OPENSANDBOX_EGRESS_DNS_UPSTREAM
  /// (comma-separated ip[:port]); else the nameservers of /etc/resolv.conf
  /// at start; else 8.8.8.8.
  std::vector<upstream> upstreams;
  /// OPENSANDBOX_EGRESS_DNS_UPSTREAM_TIMEOUT (seconds, 1..120, default 5):
  /// budget for one query across all upstreams.
  std::chrono::milliseconds upstream_timeout{5000};
  /// OPENSANDBOX_EGRESS_POLICY_FILE: wins over the env at start when it
  /// exists and parses; every change is written back.
  std::string policy_file;
  /// OPENSANDBOX_EGRESS_MAX_RULES (default 4096, 0 = unlimited).
  size_t max_rules = 4096;
  /// OPENSANDBOX_EGRESS_MARK: packet mark of the upstream sockets. Default:
  /// random per start, so a sandbox cannot guess it (see ruleset_options).
  uint32_t mark = 0;
  /// OPENSANDBOX_EGRESS_NFT: path of the nft binary.
  std::string nft_path = "/usr/sbin/nft";
  /// Directory of deny.always / allow.always.
  std::string always_dir = "/var/egress/rules";
  /// Problems found while reading (each a warning; the value fell back).
  std::vector<std::string> warnings;
};

/// Reads the configuration through `getenv` (injectable for tests).
/// `resolv_conf` is the text of /etc/resolv.conf.
config load_config(const std::function<const char*(const char*)>& getenv,
                   std::string_view resolv_conf);

/// Returns the nameservers of a resolv.conf, non-loopback ones first, at most
/// 10, without `exclude_port` on loopback (the proxy itself).
std::vector<upstream> parse_resolv_conf(std::string_view text,
                                        uint16_t exclude_port);

} // namespace osb::egress
