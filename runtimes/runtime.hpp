#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/expected.hpp"

namespace osb::runtimes {

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

/// Callback of an asynchronous runtime operation. Invoked exactly once, on a
/// runtime I/O thread (never on the caller's stack for real runtimes).
template <class T>
using callback = std::function<void(expected<T>)>;

/// A container runtime on one host. All operations are asynchronous and
/// thread-safe; none blocks the calling thread.
class runtime {
public:
  virtual ~runtime() = default;

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

  /// Stops I/O; pending callbacks fail with `unavailable`.
  virtual void shutdown() = 0;
};

using runtime_ptr = std::shared_ptr<runtime>;

} // namespace osb::runtimes
