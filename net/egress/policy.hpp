#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace osb::egress {

/// What a rule or the default does with matching traffic.
enum class action : uint8_t { allow, deny };

/// Returns "allow" or "deny".
std::string_view to_string(action x);

/// What a rule's target names.
enum class target_kind : uint8_t { domain, ip, cidr };

/// An IPv4 or IPv6 address in network byte order.
struct ip_address {
  bool v6 = false;
  uint8_t bytes[16] = {};

  /// Returns the 4 or 16 significant bytes.
  size_t size() const {
    return v6 ? 16 : 4;
  }

  friend bool operator==(const ip_address& x, const ip_address& y);
  friend bool operator!=(const ip_address& x, const ip_address& y) {
    return !(x == y);
  }
  friend bool operator<(const ip_address& x, const ip_address& y);
};

/// Parses a literal IPv4 or IPv6 address (no brackets, no port).
std::optional<ip_address> parse_ip(std::string_view x);

/// Formats an address like inet_ntop.
std::string to_string(const ip_address& x);

/// One egress rule as configured.
struct rule {
  action act = action::deny;
  /// The target as given (whitespace trimmed, case preserved): shown by GET.
  std::string target;
  target_kind kind = target_kind::domain;
  /// Domains: lower-case, without trailing dot. IP/CIDR: canonical text
  /// ("10.0.0.0/8"), used for the firewall sets.
  std::string pattern;
  /// IP/CIDR targets: the network address and its prefix length.
  ip_address address;
  uint8_t prefix_length = 0;

  /// Returns whether this domain rule matches `name` (already normalized:
  /// lower-case, no trailing dot). `*.example.com` matches strict
  /// sub-domains only. IP and CIDR rules never match names.
  bool matches(std::string_view name) const;
};

/// The egress policy: rules evaluated in order, first match wins.
struct policy {
  action default_action = action::deny;
  std::vector<rule> egress;

  /// Returns the verdict for a query name (any case, optional trailing dot).
  action evaluate(std::string_view name) const;
};

/// Lower-cases `name` and strips one trailing dot.
std::string normalize_name(std::string_view name);

/// Returns "allow_all" (default allow, no rules), "deny_all" (default deny,
/// no rules) or "enforcing".
std::string_view mode_of(const policy& x);

/// Builds and validates a rule: `act` is lower-cased and trimmed ("" means
/// deny); anything but allow/deny is an error, and so is an empty target.
std::optional<rule> make_rule(std::string_view act, std::string_view target,
                              std::string* error);

/// Parses a policy document. Empty text, `null` and `{}` give the default
/// deny-all policy; a missing `defaultAction` means deny. Keys match
/// case-insensitively and unknown keys are ignored (as Go's decoder does).
std::optional<policy> parse_policy(std::string_view json, std::string* error);

/// Parses the PATCH body: a JSON array of rules.
std::optional<std::vector<rule>> parse_rules(std::string_view json,
                                             std::string* error);

/// Parses the DELETE body: a JSON array of target strings.
std::optional<std::vector<std::string>> parse_targets(std::string_view json,
                                                      std::string* error);

/// Renders `{"egress":[...],"defaultAction":"..."}`; `egress` is never null.
std::string to_json(const policy& x);

/// Merges PATCH rules into `base`: incoming rules first (the first
/// occurrence of a target wins, case-insensitively), then the old rules whose
/// target is not overridden. The default action is kept.
policy patch_policy(const policy& base, const std::vector<rule>& incoming);

/// Removes the rules whose target equals one of `targets`
/// (case-insensitively); returns how many were removed.
size_t remove_targets(policy& x, const std::vector<std::string>& targets);

/// The policy the DNS proxy and firewall enforce: always-deny rules, then
/// always-allow rules, then the user's rules.
policy effective_policy(const policy& user, const std::vector<rule>& always_deny,
                        const std::vector<rule>& always_allow);

/// Parses an always-rule file: one domain or wildcard per line, `#` starts a
/// comment, blank lines are skipped.
std::vector<rule> parse_always_rules(std::string_view text, action act);

} // namespace osb::egress
