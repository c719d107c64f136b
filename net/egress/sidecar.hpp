#pragma once

#include "net/egress/api.hpp"
#include "net/egress/config.hpp"
#include "net/egress/firewall.hpp"
#include "net/egress/nft_netlink.hpp"
#include "net/egress/policy.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace osb::egress {

/// The sidecar's state: the user policy, the always-rules, the effective
/// policy the DNS proxy evaluates, and the firewall that mirrors it. Not
/// thread-safe: the DNS proxy and the timers (on the io_context's thread) and
/// the API (which commits through it, on its connections' threads) share it
/// under one lock (app/egress_main.cpp).
class sidecar : public policy_store {
public:
  /// Whether to touch nftables at all (off only for tests of the binary
  /// outside a container: OPENSANDBOX_EGRESS_FIREWALL=off).
  sidecar(config cfg, policy initial, bool firewall_enabled);

  /// Installs the firewall from scratch; false with `error` on failure.
  bool install(std::string* error);

  const policy& current() const override {
    return user_;
  }

  std::optional<std::string> commit(policy next) override;

  /// The verdict for a normalized query name.
  bool allowed(const std::string& name) const {
    return effective_.evaluate(name) == action::allow;
  }

  /// Records the addresses of an allowed answer (dns+nft only).
  void learn(const std::string& name,
             const std::vector<dns::answer_address>& xs);

  /// Drops expired learned addresses.
  void expire();

  /// Re-reads deny.always / allow.always and applies a change.
  void reload_always_rules();

  const config& cfg() const {
    return cfg_;
  }

  size_t num_learned() const {
    return learned_.size();
  }

private:
  ruleset_options ruleset() const;
  bool enforce(const policy& effective, bool initial, std::string* error);

  config cfg_;
  bool firewall_enabled_;
  policy user_;
  policy effective_;
  std::vector<rule> always_deny_;
  std::vector<rule> always_allow_;
  nft_netlink netlink_;
  learned_addresses learned_;
};

/// Loads the start-up policy: the policy file when it exists and parses,
/// else OPENSANDBOX_EGRESS_RULES. nullopt (with `error`) when the env value
/// is invalid.
std::optional<policy> initial_policy(const config& cfg, std::string* error);

/// Writes `x` to `path` atomically (temp file, fsync, rename).
bool save_policy_file(const std::string& path, const policy& x,
                      std::string* error);

} // namespace osb::egress
