#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "runtimes/docker/engine.hpp"
#include "runtimes/runtime.hpp"

namespace osb::runtimes::docker {

/// How the Docker runtime of one host runs its sandboxes.
struct docker_options {
  std::shared_ptr<const node_config> cfg;
  /// This node, and the name of this runtime host among the node's hosts:
  /// what the runtime makes carries both, and its listings see nothing else.
  std::string node;
  std::string host = "default";
  /// This process's incarnation, stamped on every container and volume the
  /// runtime makes (the evidence orphan removal needs); empty = none.
  std::string incarnation;
  /// Host address the sandboxes' published ports bind to
  /// (net::resolve_publish_address).
  std::string publish_address = "127.0.0.1";
  /// False when the Docker host is another machine: host volume paths are
  /// then checked lexically only (runtimes::prepare_host_path).
  bool local_fs = true;
  /// The execd archive uploaded into each container before its start
  /// (`runtime.execd_inject = "archive"`), null otherwise.
  std::shared_ptr<const std::string> execd_tar;
  /// Wait for the egress sidecar's health before starting the sandbox (off
  /// in deterministic tests, where no sidecar answers).
  bool probe_sidecars = true;
  /// Wait for a pool member's execd to answer before its provisioning
  /// ends (off in deterministic tests, where no execd answers).
  bool probe_members = true;
  /// Address at which this machine reaches the host's published ports
  /// (execd of pool members); empty = `publish_address`, or 127.0.0.1
  /// when that is a wildcard.
  std::string execd_host;
  /// Delivers the claims of pool members (claim.hpp); empty = over HTTP to
  /// their execd at `execd_host`.
  std::function<void(const sandbox_instance&, const claim_request&,
                     callback<unit>)>
    claimer;
};

/// The Docker runtime of one host, built on a container engine (the Engine
/// API client, or the fake for tests and benchmarks). A sandbox is a
/// container (`sandbox-<id>`) labelled with everything recovery needs, plus
/// an egress sidecar (`sandbox-egress-<id>`) that owns its network
/// namespace when it has a network policy; `pvc` volumes are Docker named
/// volumes; snapshots are commits (`opensandbox-snapshots:<id>`).
///
/// Like the engine, it never blocks: every operation is a chain of engine
/// calls, each continuing in the previous one's callback, and ends on an
/// engine thread (on the caller's stack with the fake engine).
class docker_runtime : public sandbox_runtime,
                       public std::enable_shared_from_this<docker_runtime> {
public:
  docker_runtime(engine_ptr engine, docker_options opts);

  void admit(const sandbox_spec& spec, callback<admission> cb) override;
  void provision(const sandbox_instance& x, provision_options opts,
                 std::function<void(provision_result)> cb) override;
  void claim(const sandbox_instance& x, const claim_request& c,
             callback<unit> cb) override;
  void pause(const sandbox_instance& x, callback<unit> cb) override;
  void resume(const sandbox_instance& x, callback<unit> cb) override;
  void remove(const sandbox_instance& x, bool never_ran,
              callback<unit> cb) override;
  void observe(callback<observation> cb) override;
  /// `GET /_ping` of the Docker Engine API.
  void ping(callback<unit> cb) override {
    engine()->ping(std::move(cb));
  }
  void leftover_volumes(callback<std::vector<runtime_object>> cb) override;
  void remove_object(const runtime_object& x, callback<unit> cb) override;
  void diagnose(const sandbox_instance& x, const sandbox_view& now,
                const diagnostics_query& q, callback<std::string> cb) override;
  std::string image_of(const std::string& snapshot_id) const override;
  void snapshot(const std::string& sandbox_id, const std::string& snapshot_id,
                callback<std::string> cb) override;
  void image_exists(const std::string& ref, callback<bool> cb) override;
  void remove_image(const std::string& ref, callback<unit> cb) override;
  void snapshot_images(const std::vector<std::string>& incarnations,
                       callback<std::vector<snapshot_image>> cb) override;
  /// Checks the OCI runtime of `[secure_runtime]` on this host (an
  /// unreachable daemon is logged and left to admission).
  void verify(callback<unit> cb) override;
  void shutdown() override;

  /// The engine underneath.
  const engine_ptr& engine() const {
    return engine_;
  }

  const docker_options& options() const {
    return opts_;
  }

  /// Adds this process's incarnation to the labels of something it makes.
  void stamp(std::map<std::string, std::string>& labels) const;

  /// Where this machine reaches the host's published ports (see
  /// `docker_options::execd_host`).
  std::string execd_host() const;

private:
  /// Answers `admit` once the platform is known (or not needed).
  void admit_known(const sandbox_spec& spec, callback<admission> cb);

  /// Learns the host's platform (once), then runs `then` with it (nullopt
  /// when the daemon could not tell; `why` says why).
  void learn_platform(
    std::function<void(std::optional<daemon_info>, std::string why)> then);

  /// Runs `then` with nullopt once this host is known to have the sandboxes'
  /// OCI runtime (or none is configured), else with the refusal and whether
  /// the daemon answered (one that did not is a refusal too). Asks the
  /// daemon until the runtime was found once.
  void check_runtime(
    std::function<void(std::optional<admission::refusal>, bool answered)>
      then);

  /// Removes the server-created volumes of a sandbox (see `remove`).
  void remove_volumes(const sandbox_instance& x, bool all, callback<unit> cb);

  engine_ptr engine_;
  docker_options opts_;
  mutable std::mutex mtx_;
  /// The host's platform (`GET /info`), once known.
  std::optional<daemon_info> platform_;
  /// The OCI runtime of the sandbox containers; empty = Docker's default.
  std::string oci_runtime_;
  /// Whether the host was seen to have `oci_runtime_`.
  bool runtime_found_ = false;
};

/// Repository of the images of snapshots (`opensandbox-snapshots:<id>`).
constexpr const char* snapshot_repository = "opensandbox-snapshots";

} // namespace osb::runtimes::docker
