#include "runtimes/docker/claim.hpp"

#include "runtimes/docker/fake_engine.hpp"
#include "runtimes/docker/specs.hpp"
#include "runtimes/execd_claim.hpp"

namespace osb::runtimes::docker {

namespace {

/// execd's port inside every sandbox.
constexpr uint16_t execd_port = 44772;

} // namespace

uint16_t execd_port_of(const sandbox_instance& x) {
  return x.ports.execd != 0 ? x.ports.execd : execd_port;
}

claimer http_claimer(std::string host) {
  return [host](const sandbox_instance& x, const claim_request& c,
                callback<unit> cb) {
    post_claim(host, execd_port_of(x), x.access_token, c, std::move(cb));
  };
}

claimer fake_claimer(std::shared_ptr<fake_engine> engine) {
  return [engine](const sandbox_instance& x, const claim_request&,
                  callback<unit> cb) {
    engine->inspect(container_name(x.id),
                    [cb](expected<container_info> info) {
                      if (!info)
                        return cb(failure{failure_kind::unavailable,
                                          "the member's container is gone"});
                      if (info->status != "running")
                        return cb(failure{failure_kind::unavailable,
                                          "the member's container is "
                                            + info->status});
                      cb(unit{});
                    });
  };
}

} // namespace osb::runtimes::docker
