#include "net/egress/sidecar.hpp"

#include "base/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace osb::egress {

namespace {

std::optional<std::string> slurp(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool same_rules(const std::vector<rule>& x, const std::vector<rule>& y) {
  if (x.size() != y.size())
    return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i].act != y[i].act || x[i].target != y[i].target)
      return false;
  return true;
}

} // namespace

std::optional<policy> initial_policy(const config& cfg, std::string* error) {
  if (!cfg.policy_file.empty()) {
    if (auto text = slurp(cfg.policy_file)) {
      std::string err;
      if (auto p = parse_policy(*text, &err)) {
        OSB_INFO("egress", "", "", "policy loaded from " << cfg.policy_file);
        return p;
      }
      OSB_WARN("egress", "", "",
               "ignoring unparseable policy file " << cfg.policy_file << ": "
                                                   << err);
    }
  }
  std::string err;
  auto p = parse_policy(cfg.rules_json, &err);
  if (!p && error)
    *error = "invalid OPENSANDBOX_EGRESS_RULES: " + err;
  return p;
}

bool save_policy_file(const std::string& path, const policy& x,
                      std::string* error) {
  auto tmp = path + ".tmp";
  auto text = to_json(x) + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0;
  size_t done = 0;
  while (ok && done < text.size()) {
    auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    ok = n > 0;
    if (ok)
      done += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  if (fd >= 0)
    ok = ::close(fd) == 0 && ok;
  ok = ok && ::rename(tmp.c_str(), path.c_str()) == 0;
  if (!ok) {
    if (error)
      *error = path + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
  }
  return ok;
}

sidecar::sidecar(config cfg, policy initial, bool firewall_enabled)
  : cfg_(std::move(cfg)),
    firewall_enabled_(firewall_enabled),
    user_(std::move(initial)),
    learned_([this](bool add, bool v6, const std::vector<ip_address>& xs) {
      if (!firewall_enabled_)
        return true;
      std::string err;
      auto set = v6 ? "dyn_allow_v6" : "dyn_allow_v4";
      auto ok = add ? netlink_.add(nft_table, set, xs, &err)
                    : netlink_.remove(nft_table, set, xs, &err);
      if (!ok)
        OSB_WARN("egress", "", "",
                 "cannot " << (add ? "add to " : "remove from ") << set
                           << ": " << err);
      return ok;
    }) {
  auto read_always = [&](const char* file, action act) {
    auto text = slurp(cfg_.always_dir + "/" + file);
    return text ? parse_always_rules(*text, act) : std::vector<rule>{};
  };
  always_deny_ = read_always("deny.always", action::deny);
  always_allow_ = read_always("allow.always", action::allow);
  effective_ = effective_policy(user_, always_deny_, always_allow_);
}

ruleset_options sidecar::ruleset() const {
  ruleset_options opts;
  opts.mode = cfg_.mode;
  opts.dns_port = cfg_.dns_port;
  opts.mark = cfg_.mark;
  opts.upstreams = cfg_.upstreams;
  return opts;
}

bool sidecar::enforce(const policy& effective, bool initial,
                      std::string* error) {
  if (!firewall_enabled_)
    return true;
  // In dns mode the ruleset does not depend on the policy.
  if (!initial && cfg_.mode == enforcement::dns)
    return true;
  return run_nft(cfg_.nft_path, render_ruleset(ruleset(), effective, initial),
                 error);
}

bool sidecar::install(std::string* error) {
  if (!enforce(effective_, true, error))
    return false;
  learned_.clear();
  if (firewall_enabled_ && cfg_.mode == enforcement::dns_nft)
    return netlink_.open(error);
  return true;
}

std::optional<std::string> sidecar::commit(policy next) {
  std::string err;
  if (!cfg_.policy_file.empty() && !save_policy_file(cfg_.policy_file, next, &err))
    return "failed to persist policy: " + err;
  auto effective = effective_policy(next, always_deny_, always_allow_);
  if (!enforce(effective, false, &err))
    return "failed to apply nftables policy: " + err;
  user_ = std::move(next);
  effective_ = std::move(effective);
  // Addresses learned for names that are denied now stop working at once.
  if (auto n = learned_.revoke(effective_); n > 0)
    OSB_INFO("egress", "", "", "revoked " << n << " learned address(es)");
  OSB_INFO("egress", "", "",
           "policy updated: mode=" << mode_of(user_)
                                   << " rules=" << user_.egress.size());
  return std::nullopt;
}

void sidecar::learn(const std::string& name,
                    const std::vector<dns::answer_address>& xs) {
  if (cfg_.mode != enforcement::dns_nft)
    return;
  learned_.learn(name, xs, learned_addresses::clock::now());
}

void sidecar::expire() {
  learned_.expire(learned_addresses::clock::now());
}

void sidecar::reload_always_rules() {
  auto read_always = [&](const char* file, action act) {
    auto text = slurp(cfg_.always_dir + "/" + file);
    return text ? parse_always_rules(*text, act) : std::vector<rule>{};
  };
  auto deny = read_always("deny.always", action::deny);
  auto allow = read_always("allow.always", action::allow);
  if (same_rules(deny, always_deny_) && same_rules(allow, always_allow_))
    return;
  auto effective = effective_policy(user_, deny, allow);
  std::string err;
  if (!enforce(effective, false, &err)) {
    OSB_WARN("egress", "", "", "cannot apply reloaded always-rules: " << err);
    return;
  }
  always_deny_ = std::move(deny);
  always_allow_ = std::move(allow);
  effective_ = std::move(effective);
  learned_.revoke(effective_);
  OSB_INFO("egress", "", "",
           "always-rules reloaded: deny=" << always_deny_.size() << " allow="
                                          << always_allow_.size());
}

} // namespace osb::egress
