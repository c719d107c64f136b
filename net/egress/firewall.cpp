#include "net/egress/firewall.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

extern char** environ;

namespace osb::egress {

std::string_view to_string(enforcement x) {
  return x == enforcement::dns ? "dns" : "dns+nft";
}

std::optional<upstream> parse_upstream(std::string_view x) {
  upstream result;
  std::string_view host = x;
  std::string_view port;
  if (!x.empty() && x.front() == '[') {
    auto close = x.find(']');
    if (close == std::string_view::npos)
      return std::nullopt;
    host = x.substr(1, close - 1);
    auto rest = x.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return std::nullopt;
      port = rest.substr(1);
    }
  } else if (auto colon = x.find(':');
             colon != std::string_view::npos && x.find(':', colon + 1)
                                                  == std::string_view::npos) {
    // Exactly one colon: IPv4 with a port. More colons: a bare IPv6.
    host = x.substr(0, colon);
    port = x.substr(colon + 1);
  }
  auto ip = parse_ip(host);
  if (!ip)
    return std::nullopt;
  result.address = *ip;
  if (!port.empty()) {
    unsigned p = 0;
    if (port.size() > 5)
      return std::nullopt;
    for (auto c : port) {
      if (c < '0' || c > '9')
        return std::nullopt;
      p = p * 10 + static_cast<unsigned>(c - '0');
    }
    if (p == 0 || p > 65535)
      return std::nullopt;
    result.port = static_cast<uint16_t>(p);
  }
  return result;
}

std::string to_string(const upstream& x) {
  if (x.address.v6)
    return "[" + to_string(x.address) + "]:" + std::to_string(x.port);
  return to_string(x.address) + ":" + std::to_string(x.port);
}

std::string render_ruleset(const ruleset_options& opts, const policy& effective,
                           bool initial) {
  std::ostringstream out;
  auto t = std::string{"inet "} + std::string{nft_table};
  char mark[16];
  std::snprintf(mark, sizeof(mark), "0x%08x", opts.mark);
  if (initial) {
    // "add" first so that "delete" cannot fail on a fresh namespace.
    out << "add table " << t << "\n";
    out << "delete table " << t << "\n";
  }
  out << "add table " << t << "\n";
  out << "add chain " << t
      << " dns_redirect { type nat hook output priority -100; policy accept; }"
         "\n";
  out << "flush chain " << t << " dns_redirect\n";
  // The proxy's own upstream queries carry the mark and go out unchanged;
  // every other DNS packet, whatever its destination, reaches the proxy.
  out << "add rule " << t << " dns_redirect meta mark " << mark << " return\n";
  out << "add rule " << t << " dns_redirect udp dport 53 redirect to :"
      << opts.dns_port << "\n";
  out << "add rule " << t << " dns_redirect tcp dport 53 redirect to :"
      << opts.dns_port << "\n";
  if (opts.mode == enforcement::dns)
    return out.str();
  for (auto v6 : {false, true}) {
    auto type = v6 ? "ipv6_addr" : "ipv4_addr";
    auto suffix = v6 ? "_v6" : "_v4";
    out << "add set " << t << " dyn_allow" << suffix << " { type " << type
        << "; }\n";
    for (auto kind : {"allow", "deny"}) {
      out << "add set " << t << " " << kind << suffix << " { type " << type
          << "; flags interval; auto-merge; }\n";
      out << "flush set " << t << " " << kind << suffix << "\n";
    }
  }
  // Static IP/CIDR rules.
  std::set<std::string> elements[2][2]; // [deny?][v6?]
  for (auto& r : effective.egress)
    if (r.kind != target_kind::domain)
      elements[r.act == action::deny][r.address.v6].insert(r.pattern);
  for (int deny = 0; deny < 2; ++deny)
    for (int v6 = 0; v6 < 2; ++v6) {
      auto& xs = elements[deny][v6];
      if (xs.empty())
        continue;
      out << "add element " << t << " " << (deny ? "deny" : "allow")
          << (v6 ? "_v6" : "_v4") << " { ";
      bool first = true;
      for (auto& x : xs) {
        out << (first ? "" : ", ") << x;
        first = false;
      }
      out << " }\n";
    }
  auto policy_word = effective.default_action == action::deny ? "drop"
                                                              : "accept";
  // Re-adding a base chain with another policy updates the policy.
  out << "add chain " << t
      << " egress { type filter hook output priority 0; policy "
      << policy_word << "; }\n";
  out << "flush chain " << t << " egress\n";
  auto rule = [&](const std::string& x) {
    out << "add rule " << t << " egress " << x << "\n";
  };
  rule("ct state established,related accept");
  rule("oifname \"lo\" accept");
  // Redirected DNS: the hook's output device is still the original one
  // (the reroute after NAT does not change it), the address already is.
  rule("ip daddr 127.0.0.0/8 accept");
  rule("ip6 daddr ::1 accept");
  rule("icmpv6 type { nd-neighbor-solicit, "
       "nd-neighbor-advert, nd-router-solicit } accept");
  for (auto& u : opts.upstreams) {
    auto family = u.address.v6 ? "ip6" : "ip";
    for (auto proto : {"udp", "tcp"})
      rule(std::string{"meta mark "} + mark + " " + family + " daddr "
           + to_string(u.address) + " " + proto + " dport "
           + std::to_string(u.port) + " accept");
  }
  // DNS over TLS would bypass the proxy.
  rule("tcp dport 853 drop");
  rule("udp dport 853 drop");
  rule("ip daddr @deny_v4 drop");
  rule("ip6 daddr @deny_v6 drop");
  rule("ip daddr @dyn_allow_v4 accept");
  rule("ip6 daddr @dyn_allow_v6 accept");
  rule("ip daddr @allow_v4 accept");
  rule("ip6 daddr @allow_v6 accept");
  return out.str();
}

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace

bool run_nft(const std::string& nft_path, const std::string& script,
             std::string* error) {
  // Files rather than pipes: no deadlock whatever the sizes, and posix_spawn
  // (vfork) keeps the child cheap even from a threaded parent.
  char script_path[] = "/tmp/osb-egress-nft-XXXXXX";
  char err_path[] = "/tmp/osb-egress-err-XXXXXX";
  int script_fd = ::mkstemp(script_path);
  int err_fd = ::mkstemp(err_path);
  auto cleanup = [&] {
    if (script_fd >= 0) {
      ::close(script_fd);
      ::unlink(script_path);
    }
    if (err_fd >= 0) {
      ::close(err_fd);
      ::unlink(err_path);
    }
  };
  if (script_fd < 0 || err_fd < 0) {
    if (error)
      *error = std::string{"mkstemp: "} + std::strerror(errno);
    cleanup();
    return false;
  }
  size_t written = 0;
  while (written < script.size()) {
    auto n = ::write(script_fd, script.data() + written,
                     script.size() - written);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (error)
        *error = std::string{"write: "} + std::strerror(errno);
      cleanup();
      return false;
    }
    written += static_cast<size_t>(n);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, err_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_fd, STDERR_FILENO);
  std::string arg_f = "-f";
  std::string arg_path = script_path;
  char* argv[] = {const_cast<char*>(nft_path.c_str()), arg_f.data(),
                  arg_path.data(), nullptr};
  pid_t pid = 0;
  auto rc = ::posix_spawn(&pid, nft_path.c_str(), &actions, nullptr, argv,
                          environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    if (error)
      *error = "cannot run " + nft_path + ": " + std::strerror(rc);
    cleanup();
    return false;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok && error) {
    *error = read_file(err_path);
    while (!error->empty() && (error->back() == '\n' || error->back() == ' '))
      error->pop_back();
    if (error->empty())
      *error = "nft failed with status " + std::to_string(status);
  }
  cleanup();
  return ok;
}

void learned_addresses::learn(const std::string& name,
                              const std::vector<dns::answer_address>& xs,
                              clock::time_point now) {
  constexpr size_t max_names = 16;
  constexpr size_t max_entries = 16384;
  std::vector<ip_address> fresh[2];
  std::vector<std::pair<ip_address, clock::time_point>> fresh_expiry;
  for (auto& x : xs) {
    auto hold = std::chrono::seconds{uint64_t{x.ttl} + 60};
    hold = std::clamp<std::chrono::seconds>(hold, min_hold, max_hold);
    auto expiry = now + hold;
    if (auto it = entries_.find(x.address); it != entries_.end()) {
      it->second.expiry = std::max(it->second.expiry, expiry);
      auto& names = it->second.names;
      if (names.count(name) == 0) {
        // Bounded: a wildcard answered by one CDN address must not grow
        // this without limit.
        if (names.size() >= max_names)
          names.erase(names.begin());
        names.insert(name);
      }
      continue;
    }
    if (std::find(fresh[x.address.v6].begin(), fresh[x.address.v6].end(),
                  x.address)
        != fresh[x.address.v6].end())
      continue;
    fresh[x.address.v6].push_back(x.address);
    fresh_expiry.emplace_back(x.address, expiry);
  }
  if (fresh_expiry.empty())
    return;
  // Make room: evict the addresses that expire first.
  while (entries_.size() + fresh_expiry.size() > max_entries
         && !entries_.empty()) {
    auto victim = std::min_element(entries_.begin(), entries_.end(),
                                   [](auto& x, auto& y) {
                                     return x.second.expiry < y.second.expiry;
                                   });
    auto before = entries_.size();
    remove({victim->first});
    if (entries_.size() == before)
      break; // the sink failed; do not spin
  }
  for (int v6 = 0; v6 < 2; ++v6) {
    if (fresh[v6].empty() || sink_(true, v6 == 1, fresh[v6]))
      continue;
    // Not in the kernel: do not remember, so the next answer retries.
    for (auto& a : fresh[v6])
      fresh_expiry.erase(std::remove_if(fresh_expiry.begin(),
                                        fresh_expiry.end(),
                                        [&](auto& e) { return e.first == a; }),
                         fresh_expiry.end());
  }
  for (auto& [address, expiry] : fresh_expiry)
    entries_[address] = entry{expiry, {name}};
}

void learned_addresses::remove(const std::vector<ip_address>& doomed) {
  std::vector<ip_address> by_family[2];
  for (auto& a : doomed)
    by_family[a.v6].push_back(a);
  for (int v6 = 0; v6 < 2; ++v6) {
    if (by_family[v6].empty())
      continue;
    // On failure keep them: the next sweep tries again.
    if (!sink_(false, v6 == 1, by_family[v6]))
      continue;
    for (auto& a : by_family[v6])
      entries_.erase(a);
  }
}

size_t learned_addresses::expire(clock::time_point now) {
  std::vector<ip_address> doomed;
  for (auto& [address, e] : entries_)
    if (e.expiry <= now)
      doomed.push_back(address);
  auto before = entries_.size();
  remove(doomed);
  return before - entries_.size();
}

size_t learned_addresses::revoke(const policy& p) {
  std::vector<ip_address> doomed;
  for (auto& [address, e] : entries_) {
    auto allowed = std::any_of(e.names.begin(), e.names.end(),
                               [&](const std::string& name) {
                                 return p.evaluate(name) == action::allow;
                               });
    if (!allowed)
      doomed.push_back(address);
  }
  auto before = entries_.size();
  remove(doomed);
  return before - entries_.size();
}

} // namespace osb::egress
