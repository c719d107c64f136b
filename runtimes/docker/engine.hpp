#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/expected.hpp"
#include "runtimes/runtime.hpp"

/// The container level of the Docker runtime: one host's containers,
/// volumes and images behind an asynchronous interface, implemented by the
/// Engine API client (docker_engine) and by an in-memory fake (fake_engine).
/// Nothing above runtimes/docker/ sees these types.
namespace osb::runtimes::docker {

/// One published container port.
struct port_binding {
  uint16_t container_port = 0;
  uint16_t host_port = 0;
  std::string host_ip = "0.0.0.0";
};

/// Everything needed to create a container. Empty/zero fields are omitted.
struct container_spec {
  std::string name;
  std::string image;
  /// Registry credentials for a pull, empty when anonymous.
  std::string registry_username;
  std::string registry_password;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env; ///< "K=V"
  std::map<std::string, std::string> labels;
  std::string network_mode;     ///< "bridge", "host", "container:<id>", name
  std::vector<port_binding> ports;
  std::vector<uint16_t> exposed_ports;
  int64_t nano_cpus = 0;
  int64_t memory_bytes = 0;
  int64_t pids_limit = 0;
  int64_t gpu_count = 0;        ///< -1 = all GPUs
  std::vector<std::string> cap_drop;
  std::vector<std::string> cap_add;
  std::vector<std::string> security_opt;
  std::vector<std::string> binds; ///< "src:dst:mode"
  std::map<std::string, std::string> sysctls;
  std::string platform;         ///< "os/arch", empty = daemon default
  /// OCI runtime registered with the daemon ("runsc"); empty = default.
  std::string runtime;
  /// Receives human-readable progress ("Pulling image X: 42% (12.3/29.1
  /// MB)") at most every 250 ms while `create` pulls the image; may be
  /// empty. Runs on a runtime I/O thread.
  std::function<void(const std::string&)> on_pull_progress;
};

/// What the runtime reports about a container (from list or inspect).
struct container_info {
  std::string id;
  std::string name;
  std::map<std::string, std::string> labels;
  /// Docker's State.Status: created, running, paused, restarting, removing,
  /// exited, dead.
  std::string status;
  int exit_code = 0;
  int64_t created_us = 0;
  int64_t finished_us = 0; ///< 0 if unknown (list does not report it)
  std::string ip;          ///< first network IP, empty if none/unknown
};

/// A named volume (`docker volume`).
struct volume_info {
  std::string name;
  std::string driver;
  /// Where the volume's data lives on the runtime host (local driver).
  std::string mountpoint;
  std::map<std::string, std::string> labels;
};

/// What `logs` returns.
struct log_query {
  /// Trailing lines; 0 = all.
  int32_t tail = 100;
  /// Only lines newer than this (Unix seconds); 0 = from the start.
  int64_t since_s = 0;
  /// Prefix every line with its RFC 3339 timestamp.
  bool timestamps = true;
};

/// A container in detail, for diagnostics (Docker's inspect, verbatim
/// strings where the report prints them as the daemon wrote them).
struct container_details {
  std::string id;
  std::string name;
  std::string image; ///< Config.Image
  std::string status;
  bool running = false;
  bool paused = false;
  bool oom_killed = false;
  int exit_code = 0;
  std::string created;     ///< RFC 3339 as reported
  std::string started_at;  ///< RFC 3339 as reported
  std::string finished_at; ///< RFC 3339 as reported
  std::string error;
  int64_t nano_cpus = 0;
  int64_t memory_bytes = 0;
  int64_t pids_limit = 0;
  /// Network name -> IP address (in the daemon's order).
  std::vector<std::pair<std::string, std::string>> networks;
  /// Published/exposed ports: "80/tcp" -> "host_ip:host_port" bindings
  /// (empty = not bound).
  std::vector<std::pair<std::string, std::vector<std::string>>> ports;
  std::map<std::string, std::string> labels;
  std::vector<std::string> env; ///< "K=V"
  /// Health check state, empty without a health check.
  std::string health_status;
  struct health_entry {
    std::string start;
    int exit_code = 0;
    std::string output;
  };
  std::vector<health_entry> health_log;
};

/// The platform of a runtime host (`GET /info`), normalized to the API's
/// names (os "linux", arch "amd64"/"arm64").
struct daemon_info {
  std::string os;
  std::string arch;
  std::string version;
  /// One OCI runtime registered with the daemon (`Runtimes`).
  struct oci_runtime {
    std::string name;
    std::string path;
    std::vector<std::string> args;
  };
  /// The registered OCI runtimes (runc, and those of daemon.json).
  std::vector<oci_runtime> runtimes;
  /// The runtime of containers that name none (`DefaultRuntime`).
  std::string default_runtime;
};

/// A container engine on one host. All operations are asynchronous and
/// thread-safe; none blocks the calling thread.
class container_engine {
public:
  virtual ~container_engine() = default;

  /// Checks that the daemon answers.
  virtual void ping(callback<unit> cb) = 0;

  /// Creates a container; if the image is missing locally it is pulled first
  /// (with the spec's credentials). Returns the container id.
  virtual void create(const container_spec& spec, callback<std::string> cb)
    = 0;

  /// Starts a created container.
  virtual void start(const std::string& id, callback<unit> cb) = 0;

  /// Freezes / thaws all processes of a running container.
  virtual void pause(const std::string& id, callback<unit> cb) = 0;
  virtual void unpause(const std::string& id, callback<unit> cb) = 0;

  /// Kills and removes a container (force). A missing container is success.
  virtual void remove(const std::string& id, callback<unit> cb) = 0;

  /// Extracts a tar archive into a (created or running) container at
  /// `path`.
  virtual void put_archive(const std::string& id, const std::string& path,
                           std::shared_ptr<const std::string> tar,
                           callback<unit> cb)
    = 0;

  /// Reports one container by id or name.
  virtual void inspect(const std::string& id, callback<container_info> cb)
    = 0;

  /// Lists all containers (any state) carrying every label in `labels`
  /// (a value of "" means "label present with any value"). One daemon call.
  virtual void list(const std::map<std::string, std::string>& labels,
                    callback<std::vector<container_info>> cb)
    = 0;

  /// Reports the host's platform.
  virtual void info(callback<daemon_info> cb) = 0;

  /// Reports one container in detail (`not_found` if missing).
  virtual void details(const std::string& id,
                       callback<container_details> cb)
    = 0;

  /// Returns the output of a container's entry process, stdout and stderr
  /// interleaved as written (`not_found` if missing).
  virtual void logs(const std::string& id, const log_query& q,
                    callback<std::string> cb)
    = 0;

  /// Reports a named volume (`not_found` if missing).
  virtual void inspect_volume(const std::string& name,
                              callback<volume_info> cb)
    = 0;

  /// Creates a named volume with the local driver. Creating an existing
  /// volume returns it unchanged (as Docker does), labels included.
  virtual void create_volume(const std::string& name,
                             const std::map<std::string, std::string>& labels,
                             callback<volume_info> cb)
    = 0;

  /// Removes a named volume; a missing one is success, one in use by a
  /// container is a `conflict`.
  virtual void remove_volume(const std::string& name, callback<unit> cb) = 0;

  /// Lists the volumes carrying every label in `labels` (see `list`).
  virtual void list_volumes(const std::map<std::string, std::string>& labels,
                            callback<std::vector<volume_info>> cb)
    = 0;

  /// Commits a container's filesystem as image `repo:tag` (the container
  /// is paused meanwhile, Docker's default); returns the image id.
  virtual void commit(const std::string& id, const std::string& repo,
                      const std::string& tag, callback<std::string> cb)
    = 0;

  /// Reports whether an image exists on the host.
  virtual void image_exists(const std::string& ref, callback<bool> cb) = 0;

  /// Removes an image; a missing one is success, one in use by a container
  /// is a `conflict`.
  virtual void remove_image(const std::string& ref, callback<unit> cb) = 0;

  /// The "repo:tag" references of the images of `repository` carrying
  /// every label in `labels` (one daemon call).
  virtual void list_images(const std::string& repository,
                           const std::map<std::string, std::string>& labels,
                           callback<std::vector<std::string>> cb)
    = 0;

  /// Stops I/O; pending callbacks fail with `unavailable`.
  virtual void shutdown() = 0;
};

using engine_ptr = std::shared_ptr<container_engine>;

} // namespace osb::runtimes::docker
