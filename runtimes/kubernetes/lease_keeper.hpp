#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtimes/kubernetes/kube_api.hpp"
#include "runtimes/kubernetes/lease.hpp"
#include "runtimes/ownership.hpp"

/// The replica's side of a fleet on one namespace (docs/runtimes.md,
/// "Several replicas"): it holds a Lease `opensandbox-<node>` renewed every
/// `renew`; it watches every replica's lease (one informer); when a peer's
/// lease went unchanged for its duration it takes that lease over (an update
/// with the seen resourceVersion: exactly one replica wins), relabels the
/// lost replica's pods (and Sandbox objects) to itself (each patch
/// conditional on the object's resourceVersion) and deletes the lease; the runtime then hands the pods to
/// the supervisor's adoption. A renewal that finds its lease taken over means
/// this replica lost its sandboxes: it reports that once (`take_released`)
/// and makes a fresh lease after. All I/O is asynchronous on the client's
/// I/O thread; timers, never sleeps.
namespace osb::runtimes::kubernetes {

struct lease_keeper_options {
  std::string node;
  std::string incarnation;
  std::string namespace_name = "default";
  std::chrono::milliseconds duration{10000};
  std::chrono::milliseconds renew{2000};
  /// Shared with the runtime and the actors; the keeper moves its deadline.
  std::shared_ptr<ownership_gate> gate;
  /// Whether it takes lapsed peers' leases over.
  bool adopt = true;
  /// With the agent-sandbox provider: the collection of its Sandbox objects,
  /// relabelled (metadata and pod template) after the pods, so that a
  /// Sandbox arrives at the adopter with its pod already there.
  std::string sandboxes;
};

class lease_keeper : public std::enable_shared_from_this<lease_keeper> {
public:
  lease_keeper(kube_client_ptr client, std::shared_ptr<informer> leases,
               lease_keeper_options opts);

  /// Starts the lease informer and the renewal timer; call once.
  void start();

  /// Stops renewing (the lease then expires and a peer adopts).
  void stop();

  /// Pod names relabelled to this replica whose adoption is pending.
  std::set<std::string> pending_adoptions() const;

  /// The supervisor adopted (or will adopt) pod `name`.
  void adopted(const std::string& name);

  /// True once after this replica lost its lease: everything it held is
  /// another replica's now. The keeper makes a fresh lease after this.
  bool take_released();

  /// "/apis/coordination.k8s.io/v1/namespaces/<ns>/leases".
  std::string collection() const;

private:
  void tick();
  void hold();
  void on_lost(const std::string& why);
  void consider_takeovers();
  void take_over(const lease_facts& f);
  /// Relabels the lost replica's objects of `collection` (a round), then
  /// those of `next` (empty: done; the lease goes).
  void relabel(const std::string& lost, const std::string& lease_rv,
               int attempt, const std::string& collection,
               const std::string& next);
  void accepted(lease_clock::time_point sent, const std::string& rv);

  kube_client_ptr client_;
  std::shared_ptr<informer> leases_;
  lease_keeper_options opts_;
  std::string holder_;
  mutable std::mutex mtx_;
  bool stopped_ = false;
  /// The API server has no leases for us (403/404 on create): the replica
  /// runs without (one replica; never fenced).
  bool disabled_ = false;
  /// A create or renewal is in flight.
  bool busy_ = false;
  /// resourceVersion of our lease; empty = none held.
  std::string rv_;
  /// Lost: fenced until the supervisor dropped what it had.
  bool lost_ = false;
  bool release_pending_ = false;
  /// Peers' leases by name: when we saw each change.
  std::map<std::string, lease_sighting> seen_;
  /// A look at the peers' leases is scheduled before the next tick.
  bool early_check_ = false;
  /// Leases being taken over by us (no second attempt meanwhile).
  std::set<std::string> taking_;
  std::set<std::string> pending_;
};

} // namespace osb::runtimes::kubernetes
