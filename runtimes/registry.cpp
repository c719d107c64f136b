#include "runtimes/registry.hpp"

#include <future>
#include <memory>
#include <string_view>

#include "base/log.hpp"
#include "runtimes/docker/hosts.hpp"
#include "runtimes/kubernetes/hosts.hpp"

namespace osb::runtimes {

namespace {

/// One kind of runtime: its `runtime.type`, how it completes the
/// configuration, and how it builds the runtimes of a node's hosts.
struct registered_kind {
  std::string_view type;
  bool (*prepare)(node_config& cfg);
  expected<std::vector<host_runtime>> (*make)(const runtime_context& ctx);
};

/// The Docker hosts cannot fail to be made (an unreachable daemon is a
/// later failure).
template <std::vector<host_runtime> (*Make)(const runtime_context&)>
expected<std::vector<host_runtime>> always(const runtime_context& ctx) {
  return Make(ctx);
}

/// Every runtime this server can run; a new one is one line here.
constexpr registered_kind kinds[] = {
  {"docker", docker::prepare_hosts, always<docker::make_hosts>},
  {"fake", docker::prepare_fake_hosts, always<docker::make_fake_hosts>},
  {"kubernetes", kubernetes::prepare, kubernetes::make_hosts},
};

const registered_kind* find(std::string_view type) {
  for (auto& k : kinds)
    if (k.type == type)
      return &k;
  return nullptr;
}

} // namespace

bool prepare_runtime(node_config& cfg) {
  auto k = find(cfg.runtime.type);
  return k == nullptr || k->prepare(cfg);
}

expected<std::vector<host_runtime>> make_runtimes(const runtime_context& ctx) {
  auto k = find(ctx.cfg->runtime.type);
  if (k == nullptr)
    return failure{failure_kind::invalid, "runtime.type '"
                                            + ctx.cfg->runtime.type
                                            + "' is not a runtime of this "
                                              "server"};
  return k->make(ctx);
}

expected<unit> verify_runtimes(const std::vector<host_runtime>& hosts,
                               std::chrono::milliseconds timeout) {
  for (auto& host : hosts) {
    // The callback may outlive this wait (a slow daemon): it owns the
    // promise.
    auto done = std::make_shared<std::promise<expected<unit>>>();
    auto answer = done->get_future();
    host.runtime->verify([done](expected<unit> r) { done->set_value(r); });
    if (answer.wait_for(timeout) != std::future_status::ready) {
      OSB_WARN("main", "", "",
               "runtime host '" << host.name << "' did not answer the "
                                   "start-up check in time; creates check "
                                   "it again");
      continue;
    }
    if (auto r = answer.get(); !r)
      return r.error();
  }
  return unit{};
}

} // namespace osb::runtimes
