#include "net/egress/config.hpp"

#include "base/strings.hpp"

#include <sys/random.h>

#include <algorithm>
#include <cstdlib>

namespace osb::egress {

namespace {

bool parse_unsigned(std::string_view x, uint64_t max, uint64_t& out,
                    int base = 10) {
  if (x.empty())
    return false;
  uint64_t value = 0;
  for (auto c : x) {
    unsigned digit;
    if (c >= '0' && c <= '9')
      digit = static_cast<unsigned>(c - '0');
    else if (base == 16 && c >= 'a' && c <= 'f')
      digit = static_cast<unsigned>(c - 'a' + 10);
    else if (base == 16 && c >= 'A' && c <= 'F')
      digit = static_cast<unsigned>(c - 'A' + 10);
    else
      return false;
    value = value * static_cast<uint64_t>(base) + digit;
    if (value > max)
      return false;
  }
  out = value;
  return true;
}

bool is_loopback(const ip_address& x) {
  if (!x.v6)
    return x.bytes[0] == 127;
  static const uint8_t one[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                  0, 0, 0, 0, 0, 0, 0, 1};
  return std::equal(x.bytes, x.bytes + 16, one);
}

bool is_self(const ip_address& x) {
  // The proxy listens on exactly these two.
  auto v4 = parse_ip("127.0.0.1");
  auto v6 = parse_ip("::1");
  return x == *v4 || x == *v6;
}

uint32_t random_mark() {
  uint32_t x = 0;
  while (x == 0 || x == 1) {
    if (::getrandom(&x, sizeof(x), 0) != sizeof(x))
      x = static_cast<uint32_t>(std::rand()) << 1 | 1u;
  }
  return x;
}

} // namespace

std::vector<upstream> parse_resolv_conf(std::string_view text,
                                        uint16_t exclude_port) {
  std::vector<upstream> remote;
  std::vector<upstream> local;
  while (!text.empty()) {
    auto eol = text.find('\n');
    auto line = trim(text.substr(0, eol));
    text = eol == std::string_view::npos ? std::string_view{}
                                         : text.substr(eol + 1);
    if (line.substr(0, 10) != "nameserver")
      continue;
    auto rest = line.substr(10);
    if (rest.empty() || (rest.front() != ' ' && rest.front() != '\t'))
      continue;
    rest = trim(rest);
    // Drop an IPv6 zone ("fe80::1%eth0") and any trailing fields.
    rest = rest.substr(0, rest.find_first_of(" \t#;%"));
    auto ip = parse_ip(rest);
    if (!ip)
      continue;
    upstream u{*ip, 53};
    if (is_self(*ip) && u.port == exclude_port)
      continue;
    (is_loopback(*ip) ? local : remote).push_back(u);
  }
  remote.insert(remote.end(), local.begin(), local.end());
  if (remote.size() > 10)
    remote.resize(10);
  return remote;
}

config load_config(const std::function<const char*(const char*)>& getenv,
                   std::string_view resolv_conf) {
  config cfg;
  auto env = [&](const char* key) -> std::string {
    auto x = getenv(key);
    return x ? std::string{trim(x)} : std::string{};
  };
  cfg.rules_json = env("OPENSANDBOX_EGRESS_RULES");
  if (auto mode = lower(env("OPENSANDBOX_EGRESS_MODE")); !mode.empty()) {
    if (mode == "dns+nft" || mode == "nft" || mode == "dns_nft")
      cfg.mode = enforcement::dns_nft;
    else if (mode != "dns")
      cfg.warnings.push_back("invalid OPENSANDBOX_EGRESS_MODE=\"" + mode
                             + "\"; falling back to dns");
  }
  cfg.token = env("OPENSANDBOX_EGRESS_TOKEN");
  if (auto addr = env("OPENSANDBOX_EGRESS_HTTP_ADDR"); !addr.empty()) {
    auto colon = addr.rfind(':');
    uint64_t port = 0;
    if (colon != std::string::npos
        && parse_unsigned(std::string_view{addr}.substr(colon + 1), 65535, port)
        && port > 0) {
      auto host = addr.substr(0, colon);
      if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
      cfg.http_host = host.empty() ? "0.0.0.0" : host;
      cfg.http_port = static_cast<uint16_t>(port);
    } else {
      cfg.warnings.push_back("invalid OPENSANDBOX_EGRESS_HTTP_ADDR=\"" + addr
                             + "\"; using :18080");
    }
  }
  if (auto port = env("OPENSANDBOX_EGRESS_DNS_PORT"); !port.empty()) {
    uint64_t p = 0;
    if (parse_unsigned(port, 65535, p) && p > 0)
      cfg.dns_port = static_cast<uint16_t>(p);
    else
      cfg.warnings.push_back("invalid OPENSANDBOX_EGRESS_DNS_PORT=\"" + port
                             + "\"; using 53");
  }
  auto list = env("OPENSANDBOX_EGRESS_UPSTREAM_DNS");
  if (list.empty())
    list = env("OPENSANDBOX_EGRESS_DNS_UPSTREAM");
  std::string_view rest = list;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    auto item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{}
                                           : rest.substr(comma + 1);
    if (item.empty())
      continue;
    if (auto u = parse_upstream(item))
      cfg.upstreams.push_back(*u);
    else
      cfg.warnings.push_back("ignoring invalid upstream DNS \""
                             + std::string{item} + "\"");
  }
  if (cfg.upstreams.empty())
    cfg.upstreams = parse_resolv_conf(resolv_conf, cfg.dns_port);
  if (cfg.upstreams.empty())
    cfg.upstreams.push_back(*parse_upstream("8.8.8.8:53"));
  if (auto t = env("OPENSANDBOX_EGRESS_DNS_UPSTREAM_TIMEOUT"); !t.empty()) {
    uint64_t secs = 0;
    if (parse_unsigned(t, 120, secs) && secs > 0)
      cfg.upstream_timeout = std::chrono::seconds{secs};
    else
      cfg.warnings.push_back("invalid OPENSANDBOX_EGRESS_DNS_UPSTREAM_TIMEOUT=\""
                             + t + "\"; using 5");
  }
  cfg.policy_file = env("OPENSANDBOX_EGRESS_POLICY_FILE");
  if (auto m = env("OPENSANDBOX_EGRESS_MAX_RULES"); !m.empty()) {
    uint64_t n = 0;
    if (parse_unsigned(m, 1u << 30, n))
      cfg.max_rules = static_cast<size_t>(n);
    else
      cfg.warnings.push_back("invalid OPENSANDBOX_EGRESS_MAX_RULES=\"" + m
                             + "\"; using 4096");
  }
  if (auto m = env("OPENSANDBOX_EGRESS_MARK"); !m.empty()) {
    uint64_t n = 0;
    std::string_view digits = m;
    int base = 10;
    if (digits.size() > 2 && digits[0] == '0'
        && (digits[1] == 'x' || digits[1] == 'X')) {
      digits.remove_prefix(2);
      base = 16;
    }
    if (parse_unsigned(digits, 0xffffffffu, n, base) && n != 0)
      cfg.mark = static_cast<uint32_t>(n);
    else
      cfg.warnings.push_back("invalid OPENSANDBOX_EGRESS_MARK=\"" + m
                             + "\"; using a random mark");
  }
  if (cfg.mark == 0)
    cfg.mark = random_mark();
  if (auto p = env("OPENSANDBOX_EGRESS_NFT"); !p.empty())
    cfg.nft_path = p;
  if (auto d = env("OPENSANDBOX_EGRESS_ALWAYS_DIR"); !d.empty())
    cfg.always_dir = d;
  return cfg;
}

} // namespace osb::egress
