#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtimes/docker/engine.hpp"

namespace osb::runtimes::docker {

/// An in-memory container engine for deterministic tests of everything
/// above it (the Docker runtime, the actors) and for benchmarks of the
/// control plane. Mirrors Docker's state machine closely enough for them:
/// create → created, start → running, pause/unpause, exit, remove.
///
/// Unlike the real engine, every callback runs synchronously on the
/// caller's stack before the method returns (unless its operation is held,
/// see `hold`). The object is thread-safe; its mutex is never held while a
/// callback runs, so callbacks may call back into the engine.
///
/// Operation names used by the test hooks: "ping", "create", "start",
/// "pause", "unpause", "remove", "inspect", "list", "info", "details",
/// "logs", "inspect_volume", "create_volume", "remove_volume",
/// "list_volumes", "commit", "image_exists", "remove_image", "list_images".
class fake_engine : public container_engine {
public:
  fake_engine() = default;
  ~fake_engine() override = default;

  // -- container_engine interface ------------------------------------------------------

  void ping(callback<unit> cb) override;

  /// Fails with `conflict` if a container with the same name exists, with
  /// `invalid` for an OCI runtime `info` does not list (only "runc" by
  /// default) and, when known images are configured, with `failed` for
  /// unknown images.
  void create(const container_spec& spec, callback<std::string> cb) override;

  /// `not_found` for unknown ids; starting a running container succeeds
  /// (Docker answers 304), a paused one is a `conflict`.
  void start(const std::string& id, callback<unit> cb) override;

  /// `conflict` unless the container is running.
  void pause(const std::string& id, callback<unit> cb) override;

  /// `conflict` unless the container is paused.
  void unpause(const std::string& id, callback<unit> cb) override;

  /// Removing a missing container succeeds.
  void remove(const std::string& id, callback<unit> cb) override;

  /// Looks up by id or by name.
  /// Records the archive (see `archives`).
  void put_archive(const std::string& id, const std::string& path,
                   std::shared_ptr<const std::string> tar,
                   callback<unit> cb) override;

  /// Archives uploaded into a container: (path, size) pairs.
  std::vector<std::pair<std::string, size_t>>
  archives(const std::string& id) const;

  void inspect(const std::string& id, callback<container_info> cb) override;

  /// Label filter: every entry must match; a value of "" only requires the
  /// key to exist.
  void list(const std::map<std::string, std::string>& labels,
            callback<std::vector<container_info>> cb) override;

  /// Reports `set_daemon_info` (default linux/amd64).
  void info(callback<daemon_info> cb) override;

  /// Built from the container's spec and state.
  void details(const std::string& id,
               callback<container_details> cb) override;

  /// Returns what `set_logs` stored for the container ("" by default).
  void logs(const std::string& id, const log_query& q,
            callback<std::string> cb) override;

  void inspect_volume(const std::string& name,
                      callback<volume_info> cb) override;

  /// Returns an existing volume unchanged, like Docker.
  void create_volume(const std::string& name,
                     const std::map<std::string, std::string>& labels,
                     callback<volume_info> cb) override;

  /// `conflict` while a container binds the volume by name.
  void remove_volume(const std::string& name, callback<unit> cb) override;

  void list_volumes(const std::map<std::string, std::string>& labels,
                    callback<std::vector<volume_info>> cb) override;

  /// `not_found` for unknown containers; the image becomes known.
  void commit(const std::string& id, const std::string& repo,
              const std::string& tag, callback<std::string> cb) override;

  /// True for committed images and for known images (see
  /// `set_known_images`).
  void image_exists(const std::string& ref, callback<bool> cb) override;

  /// `conflict` while a container was created from the image.
  void remove_image(const std::string& ref, callback<unit> cb) override;

  /// Committed images of `repository` whose source container carried every
  /// label (labels of committed images are those of their container).
  void list_images(const std::string& repository,
                   const std::map<std::string, std::string>& labels,
                   callback<std::vector<std::string>> cb) override;

  /// Adds an image as if committed from a container with `labels`.
  void add_image(const std::string& ref,
                 std::map<std::string, std::string> labels);

  /// Flushes held callbacks; later calls fail with `unavailable`.
  void shutdown() override;

  /// Images made by `commit` and not removed.
  std::set<std::string> committed_images() const;

  // -- test hooks -------------------------------------------------------------

  /// Makes the next call of `op` fail with `f` without touching any state.
  /// Injections queue up: calling this twice fails the next two calls.
  void fail_next(const std::string& op, failure f);

  /// Restricts the images that "exist"; creating any other image fails with
  /// `failure{failed, "Failed to pull image X: not found"}`. Without a call,
  /// every image exists.
  void set_known_images(std::set<std::string> images);

  /// Simulates the entry process exiting with `code`: status "exited".
  /// Does nothing for unknown ids.
  void exit_container(const std::string& id, int code);

  /// Snapshot of all containers, ordered by id creation order.
  std::vector<container_info> containers() const;

  /// How often `op` was called (including failed and held calls).
  size_t calls(const std::string& op) const;

  /// The spec a container was created from (default-constructed if unknown).
  container_spec spec_of(const std::string& id) const;

  /// Defers the callbacks of `op` until `release(op)`. The state change of a
  /// held call happens immediately (as if Docker acted but its answer is
  /// still in flight), which lets tests interleave e.g. a delete with a
  /// provisioning sandbox.
  void hold(const std::string& op);

  /// Stops holding `op` and invokes its deferred callbacks in call order,
  /// on the caller's stack.
  void release(const std::string& op);

  /// Number of callbacks currently deferred for `op`.
  size_t held(const std::string& op) const;

  /// Sets what `logs` returns for a container (by id or name).
  void set_logs(const std::string& id, std::string text);

  /// Sets what `info` reports.
  void set_daemon_info(daemon_info x);

  /// Snapshot of all volumes by name.
  std::map<std::string, volume_info> volumes() const;

  /// Calls `on_pull_progress` of every later create with these messages
  /// before it completes (simulates a pull).
  void set_pull_progress(std::vector<std::string> messages);

private:
  struct entry {
    uint64_t seq = 0;
    container_info info;
    container_spec spec;
    std::vector<std::pair<std::string, size_t>> archives;
    std::string logs;
  };

  /// Counts the call and pops an injected failure. Requires `mtx_`.
  std::optional<failure> enter(const std::string& op);

  /// Runs `fn` now or defers it if `op` is held.
  void deliver(const std::string& op, std::function<void()> fn);

  /// Finds a container by id or name. Requires `mtx_`.
  entry* find(const std::string& id_or_name);

  mutable std::mutex mtx_;
  std::map<std::string, entry> containers_;
  uint64_t next_id_ = 1;
  uint64_t next_ip_ = 2;
  std::map<std::string, size_t> calls_;
  std::map<std::string, std::vector<failure>> injected_;
  std::optional<std::set<std::string>> known_images_;
  std::set<std::string> held_ops_;
  std::map<std::string, std::vector<std::function<void()>>> deferred_;
  bool stopped_ = false;
  std::map<std::string, volume_info> volumes_;
  daemon_info daemon_{"linux", "amd64", "fake", {{"runc", "runc", {}}},
                      "runc"};
  std::vector<std::string> pull_progress_;
  std::set<std::string> committed_;
  std::map<std::string, std::map<std::string, std::string>> image_labels_;
};

} // namespace osb::runtimes::docker
