#include "runtimes/docker/docker_engine.hpp"

#include <cstdlib>

#include "runtimes/docker/engine_client.hpp"
#include "runtimes/docker/ssh_tunnel.hpp"

namespace osb::runtimes::docker {

// -- docker_engine -----------------------------------------------------------

docker_engine::docker_engine(const std::string& docker_host,
                               std::chrono::seconds api_timeout,
                               int io_threads) {
  auto host = docker_host;
  if (host.empty())
    if (auto env = std::getenv("DOCKER_HOST"); env != nullptr)
      host = env;
  docker::host_address addr;
  if (host.rfind("ssh://", 0) == 0) {
    std::string destination, port, socket;
    if (docker::parse_ssh_url(host, destination, port, socket)) {
      tunnel_ = std::make_unique<docker::ssh_tunnel>(host);
      addr = docker::parse_host("unix://" + tunnel_->socket_path());
    } else {
      addr.kind = docker::host_address::kind_t::unsupported;
      addr.error = "Docker host " + host + " is not a valid ssh:// address";
    }
    addr.display = host;
  } else {
    addr = docker::parse_host(host);
  }
  impl_ = std::make_shared<detail::docker_client>(std::move(addr),
                                                  api_timeout, io_threads);
  impl_->launch();
}

docker_engine::~docker_engine() {
  shutdown();
}

void docker_engine::ping(callback<unit> cb) {
  impl_->ping(std::move(cb));
}

void docker_engine::create(const container_spec& spec,
                            callback<std::string> cb) {
  impl_->create(spec, std::move(cb));
}

void docker_engine::start(const std::string& id, callback<unit> cb) {
  // 304: already running.
  impl_->unit_call(detail::http::verb::post,
                   docker::container_target(id, "/start"),
                   "start container", {204, 304}, std::move(cb));
}

void docker_engine::pause(const std::string& id, callback<unit> cb) {
  impl_->unit_call(detail::http::verb::post,
                   docker::container_target(id, "/pause"),
                   "pause container", {204}, std::move(cb));
}

void docker_engine::unpause(const std::string& id, callback<unit> cb) {
  impl_->unit_call(detail::http::verb::post,
                   docker::container_target(id, "/unpause"),
                   "unpause container", {204}, std::move(cb));
}

void docker_engine::remove(const std::string& id, callback<unit> cb) {
  // 404: already gone, which is what the caller wants.
  impl_->unit_call(detail::http::verb::delete_,
                   docker::container_target(id, "?force=true"),
                   "remove container", {200, 204, 404}, std::move(cb));
}

void docker_engine::put_archive(const std::string& id,
                                 const std::string& path,
                                 std::shared_ptr<const std::string> tar,
                                 callback<unit> cb) {
  impl_->unit_call(detail::http::verb::put,
                   docker::container_target(id, "/archive?path="
                                                  + docker::url_encode(path)),
                   "upload archive", {200}, std::move(cb), std::move(tar),
                   "application/x-tar");
}

void docker_engine::inspect(const std::string& id,
                             callback<container_info> cb) {
  impl_->inspect(id, std::move(cb));
}

void docker_engine::list(const std::map<std::string, std::string>& labels,
                          callback<std::vector<container_info>> cb) {
  impl_->list(labels, std::move(cb));
}

void docker_engine::info(callback<daemon_info> cb) {
  impl_->value_call<daemon_info>(
    detail::http::verb::get, std::string{docker::api_prefix} + "/info", {},
    "daemon info", 200, [](std::string_view b) { return docker::parse_info(b); },
    std::move(cb));
}

void docker_engine::details(const std::string& id,
                             callback<container_details> cb) {
  impl_->value_call<container_details>(
    detail::http::verb::get, docker::container_target(id, "/json"), {},
    "inspect container", 200,
    [](std::string_view b) { return docker::parse_details(b); },
    std::move(cb));
}

void docker_engine::logs(const std::string& id, const log_query& q,
                          callback<std::string> cb) {
  impl_->value_call<std::string>(
    detail::http::verb::get, docker::logs_target(id, q), {},
    "container logs", 200,
    [](std::string_view b) -> expected<std::string> {
      return docker::demux_logs(b);
    },
    std::move(cb));
}

void docker_engine::inspect_volume(const std::string& name,
                                    callback<volume_info> cb) {
  impl_->value_call<volume_info>(
    detail::http::verb::get, docker::volume_target(name), {},
    "inspect volume " + name, 200,
    [](std::string_view b) { return docker::parse_volume(b); },
    std::move(cb));
}

void docker_engine::create_volume(
  const std::string& name, const std::map<std::string, std::string>& labels,
  callback<volume_info> cb) {
  impl_->value_call<volume_info>(
    detail::http::verb::post,
    std::string{docker::api_prefix} + "/volumes/create",
    docker::volume_create_body(name, labels), "create volume " + name, 201,
    [](std::string_view b) { return docker::parse_volume(b); },
    std::move(cb));
}

void docker_engine::remove_volume(const std::string& name,
                                   callback<unit> cb) {
  // 404: already gone; 409 (in use) stays a conflict for the caller.
  impl_->unit_call(detail::http::verb::delete_, docker::volume_target(name),
                   "remove volume " + name, {204, 404}, std::move(cb));
}

void docker_engine::list_volumes(
  const std::map<std::string, std::string>& labels,
  callback<std::vector<volume_info>> cb) {
  impl_->value_call<std::vector<volume_info>>(
    detail::http::verb::get, docker::volume_list_target(labels), {},
    "list volumes", 200,
    [](std::string_view b) { return docker::parse_volume_list(b); },
    std::move(cb));
}

void docker_engine::commit(const std::string& id, const std::string& repo,
                            const std::string& tag, callback<std::string> cb) {
  impl_->value_call<std::string>(
    detail::http::verb::post, docker::commit_target(id, repo, tag), "{}",
    "commit container", 201,
    [](std::string_view b) -> expected<std::string> {
      if (auto x = docker::parse_created_id(b))
        return std::move(*x);
      return failure{failure_kind::failed, "answer without Id"};
    },
    std::move(cb));
}

void docker_engine::image_exists(const std::string& ref, callback<bool> cb) {
  auto p = std::make_shared<callback<bool>>(std::move(cb));
  impl_->value_call<bool>(
    detail::http::verb::get, docker::image_target(ref, "/json"), {},
    "inspect image " + ref, 200,
    [](std::string_view) -> expected<bool> { return true; },
    [p](expected<bool> x) {
      if (!x && x.error().kind == failure_kind::not_found)
        return (*p)(false);
      (*p)(std::move(x));
    });
}

void docker_engine::remove_image(const std::string& ref, callback<unit> cb) {
  // 404: already gone; 409 (used by a container) stays a conflict.
  impl_->unit_call(detail::http::verb::delete_, docker::image_target(ref, ""),
                   "remove image " + ref, {200, 404}, std::move(cb));
}

void docker_engine::list_images(
  const std::string& repository,
  const std::map<std::string, std::string>& labels,
  callback<std::vector<std::string>> cb) {
  impl_->value_call<std::vector<std::string>>(
    detail::http::verb::get, docker::image_list_target(repository, labels), {},
    "list images", 200,
    [](std::string_view b) { return docker::parse_image_tags(b); },
    std::move(cb));
}

void docker_engine::shutdown() {
  impl_->shutdown();
  tunnel_.reset();
}

const std::string& docker_engine::host() const {
  return impl_->address().display;
}

engine_ptr make_docker_engine(const std::string& docker_host,
                                             std::chrono::seconds api_timeout,
                                             int io_threads) {
  return std::make_shared<docker_engine>(docker_host, api_timeout,
                                          io_threads);
}

} // namespace osb::runtimes::docker
