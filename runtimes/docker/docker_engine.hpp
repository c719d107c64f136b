#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "runtimes/docker/engine.hpp"

namespace osb::runtimes::docker {

class ssh_tunnel;

namespace detail {
class docker_client;
} // namespace detail

/// A container engine speaking the Docker Engine API (v1.41) over a unix
/// socket or TCP. It owns an I/O context run by its own threads; every public method
/// only posts work there and returns at once. Connections to the daemon are
/// pooled and kept alive; concurrent calls use concurrent connections.
///
/// Callbacks run exactly once on a runtime I/O thread. After `shutdown`
/// (or during it, for calls still in flight) they run with `unavailable`
/// on the calling thread.
class docker_engine : public container_engine {
public:
  /// @param docker_host "unix:///path" or "tcp://host:port"; empty means
  ///        $DOCKER_HOST, else unix:///var/run/docker.sock. Unsupported
  ///        schemes (ssh://) make every call fail with `unavailable`.
  /// @param api_timeout deadline of one API call; image pulls instead fail
  ///        when no data arrives for this long.
  /// @param io_threads number of threads running the I/O context (≥ 1).
  docker_engine(const std::string& docker_host,
                 std::chrono::seconds api_timeout, int io_threads);

  /// Calls `shutdown`.
  ~docker_engine() override;

  docker_engine(const docker_engine&) = delete;
  docker_engine& operator=(const docker_engine&) = delete;

  void ping(callback<unit> cb) override;
  void create(const container_spec& spec, callback<std::string> cb) override;
  void start(const std::string& id, callback<unit> cb) override;
  void pause(const std::string& id, callback<unit> cb) override;
  void unpause(const std::string& id, callback<unit> cb) override;
  void remove(const std::string& id, callback<unit> cb) override;
  void put_archive(const std::string& id, const std::string& path,
                   std::shared_ptr<const std::string> tar,
                   callback<unit> cb) override;
  void inspect(const std::string& id, callback<container_info> cb) override;
  void list(const std::map<std::string, std::string>& labels,
            callback<std::vector<container_info>> cb) override;
  void info(callback<daemon_info> cb) override;
  void details(const std::string& id,
               callback<container_details> cb) override;
  void logs(const std::string& id, const log_query& q,
            callback<std::string> cb) override;
  void inspect_volume(const std::string& name,
                      callback<volume_info> cb) override;
  void create_volume(const std::string& name,
                     const std::map<std::string, std::string>& labels,
                     callback<volume_info> cb) override;
  void remove_volume(const std::string& name, callback<unit> cb) override;
  void list_volumes(const std::map<std::string, std::string>& labels,
                    callback<std::vector<volume_info>> cb) override;

  /// Stops the I/O threads (joining all but the calling one) and fails every
  /// pending call with `unavailable`. Idempotent; safe to call from a
  /// callback.
  void commit(const std::string& id, const std::string& repo,
              const std::string& tag, callback<std::string> cb) override;
  void image_exists(const std::string& ref, callback<bool> cb) override;
  void remove_image(const std::string& ref, callback<unit> cb) override;
  void list_images(const std::string& repository,
                   const std::map<std::string, std::string>& labels,
                   callback<std::vector<std::string>> cb) override;
  void shutdown() override;

  /// The daemon address as given (after $DOCKER_HOST resolution).
  const std::string& host() const;

private:
  /// Shared with the I/O threads, so it outlives a runtime destroyed from
  /// inside one of its own callbacks.
  std::shared_ptr<detail::docker_client> impl_;
  /// Forwards a local socket to the daemon for ssh:// hosts.
  std::unique_ptr<ssh_tunnel> tunnel_;
};

/// Creates a Docker engine client; see `docker_engine::docker_engine`.
engine_ptr make_docker_engine(const std::string& docker_host,
                                             std::chrono::seconds api_timeout,
                                             int io_threads = 1);

} // namespace osb::runtimes::docker
