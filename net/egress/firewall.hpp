#pragma once

#include "net/egress/dns_message.hpp"
#include "net/egress/nft_netlink.hpp"
#include "net/egress/policy.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace osb::egress {

/// The enforcement backend, from OPENSANDBOX_EGRESS_MODE.
enum class enforcement : uint8_t {
  /// DNS filtering only: all DNS is redirected to the proxy; IP literals are
  /// not filtered (as the original's "dns" mode).
  dns,
  /// DNS filtering plus an output filter: with defaultAction deny only
  /// addresses learned from allowed answers and allowed IP/CIDR rules are
  /// reachable; deny IP/CIDR rules are dropped in both defaults.
  dns_nft,
};

/// Returns "dns" or "dns+nft".
std::string_view to_string(enforcement x);

/// A resolver the proxy forwards to.
struct upstream {
  ip_address address;
  uint16_t port = 53;
};

/// Parses "ip", "ip:port", "[v6]" or "[v6]:port".
std::optional<upstream> parse_upstream(std::string_view x);

/// Formats like parse_upstream accepts.
std::string to_string(const upstream& x);

/// The name of the nftables table (family inet) the sidecar owns.
inline constexpr std::string_view nft_table = "opensandbox";

/// Inputs of the ruleset.
struct ruleset_options {
  enforcement mode = enforcement::dns;
  /// Port of the local DNS proxy (127.0.0.1 / ::1).
  uint16_t dns_port = 53;
  /// Packet mark of the proxy's upstream sockets: exempt from the redirect.
  uint32_t mark = 1;
  /// The upstream resolvers: the only destinations of marked DNS the filter
  /// lets out (dns+nft), so a sandbox that sets the mark itself (CAP_NET_RAW
  /// suffices since Linux 5.17) gains no direct route anywhere else.
  std::vector<upstream> upstreams;
};

/// Renders the nft script that (re)configures the table for `effective`.
/// With `initial`, the table is deleted first (a fresh start); otherwise the
/// learned-address sets survive and only chains and static sets are
/// replaced, in one transaction.
std::string render_ruleset(const ruleset_options& opts, const policy& effective,
                           bool initial);

/// Runs `nft -f -` with `script` on stdin; false with nft's stderr in
/// `error` on failure.
bool run_nft(const std::string& nft_path, const std::string& script,
             std::string* error);

/// Remembers which addresses allowed names resolved to and until when, and
/// mirrors them into the dynamic allow sets (through `sink`). Expiry is kept
/// here rather than as kernel element timeouts so that refreshing an address
/// never needs a delete/re-add in the kernel.
class learned_addresses {
public:
  using clock = std::chrono::steady_clock;

  /// Called with (add?, addresses of one family); returns success.
  using sink_fn
    = std::function<bool(bool add, bool v6, const std::vector<ip_address>&)>;

  /// Minimum and maximum time an address stays allowed after an answer.
  static constexpr std::chrono::seconds min_hold{60};
  static constexpr std::chrono::seconds max_hold{360};

  explicit learned_addresses(sink_fn sink) : sink_(std::move(sink)) {
  }

  /// Records the answer of allowed `name`: new addresses are pushed to the
  /// sink before this returns; known ones get a later expiry
  /// (TTL + 60 s, clamped to [60 s, 360 s]).
  void learn(const std::string& name, const std::vector<dns::answer_address>& xs,
             clock::time_point now);

  /// Drops expired addresses; returns how many.
  size_t expire(clock::time_point now);

  /// Drops the addresses none of whose names `p` still allows; returns how
  /// many.
  size_t revoke(const policy& p);

  /// Forgets everything without touching the sink (after the sets were
  /// recreated).
  void clear() {
    entries_.clear();
  }

  size_t size() const {
    return entries_.size();
  }

  bool contains(const ip_address& x) const {
    return entries_.count(x) > 0;
  }

private:
  struct entry {
    clock::time_point expiry;
    std::set<std::string> names;
  };

  void remove(const std::vector<ip_address>& doomed);

  sink_fn sink_;
  std::map<ip_address, entry> entries_;
};

} // namespace osb::egress
