#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// The Lease of a replica (coordination.k8s.io/v1) and the decisions made
/// from it, as pure functions of what was seen and a clock: is a peer's
/// lease expired, which live replica tries the takeover first, is this
/// replica fenced. lease_keeper.cpp does the I/O.
namespace osb::runtimes::kubernetes {

using lease_clock = std::chrono::steady_clock;

/// Label on every replica lease (its selector for the lease informer).
inline constexpr const char* lease_label = "opensandbox.io/lease";
inline constexpr const char* lease_label_value = "replica";

/// "opensandbox-<node>".
std::string lease_name(const std::string& node);

/// holderIdentity: "<node>/<incarnation>".
std::string holder_identity(const std::string& node,
                            const std::string& incarnation);

/// The node of a holderIdentity ("" when it has none).
std::string holder_node(std::string_view holder);

/// What a Lease says.
struct lease_facts {
  std::string name;
  /// The replica whose pods the lease covers (label opensandbox.io/node).
  std::string node;
  std::string holder;
  std::string resource_version;
  int64_t duration_s = 0;
};

/// Reads a Lease (JSON text of the API); nullopt if it is no replica lease.
std::optional<lease_facts> read_lease(std::string_view json);

/// The body of a create (empty `resource_version`) or an update (with it:
/// the update's precondition) of the lease of `node` held by `holder`,
/// renewed at `now_us` (wall clock, for people: decisions never compare it
/// with another replica's clock).
std::string make_lease(const std::string& node, const std::string& holder,
                       int64_t duration_s, int64_t now_us,
                       const std::string& resource_version = {});

/// When an observer last saw a lease change. client-go's rule: a lease is
/// judged by the observer's own clock from the moment it saw the lease's
/// resourceVersion change, never by the renewTime another replica wrote.
struct lease_sighting {
  std::string resource_version;
  lease_clock::time_point since{};
};

/// Records one observation; a changed resourceVersion restarts the clock.
void see(lease_sighting& s, const std::string& resource_version,
         lease_clock::time_point now);

/// True once the lease went unchanged for its whole duration.
bool expired(const lease_sighting& s, std::chrono::milliseconds duration,
             lease_clock::time_point now);

/// True while a replica must not mutate its sandboxes: it never had its
/// renewal accepted (`last_accepted_send` empty, while a lease is
/// required), or the send time of its last accepted renewal is a whole
/// duration ago.
bool fenced(std::optional<lease_clock::time_point> last_accepted_send,
            std::chrono::milliseconds duration, lease_clock::time_point now);

/// How long after a lease of `lost` expired replica `self` tries to take
/// it over: the live replicas (`live`, `self` among them) take turns in an
/// order that starts at a place given by the lost replica's name (so that
/// the losses of several replicas spread), `step` apart. Only one takeover
/// succeeds anyway (the update's resourceVersion); the turns just spare the
/// API server the losing attempts.
std::chrono::milliseconds adoption_delay(const std::string& self,
                                         std::vector<std::string> live,
                                         const std::string& lost,
                                         std::chrono::milliseconds step);

} // namespace osb::runtimes::kubernetes
