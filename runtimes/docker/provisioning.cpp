#include "runtimes/docker/provisioning.hpp"

#include <string_view>
#include <utility>
#include <vector>

#include "base/log.hpp"
#include "runtimes/docker/claim.hpp"
#include "runtimes/docker/docker_runtime.hpp"
#include "runtimes/docker/health_probe.hpp"
#include "runtimes/docker/oci_runtime.hpp"
#include "runtimes/docker/specs.hpp"
#include "runtimes/docker/volumes.hpp"

namespace osb::runtimes::docker {

namespace {

constexpr const char* component = "sandbox";

using outcome = provision_result::outcome;
using remedy = provision_result::remedy;

/// Steps of a provisioning as the failure messages name them ("Failed to
/// <step> sandbox container: ...").
constexpr std::string_view create_step = "create";
constexpr std::string_view start_step = "start";
constexpr std::string_view inject_step = "inject execd into";
constexpr std::string_view tmp_step = "keep /tmp in";
constexpr std::string_view sidecar_create_step
  = "create the egress sidecar of";
constexpr std::string_view sidecar_start_step = "start the egress sidecar of";

/// A failed step in the API's terms: reason and message.
provision_result failed(std::string_view step, const failure& f) {
  provision_result r;
  r.status = outcome::failed;
  if (f.kind == failure_kind::unavailable)
    r.reason = "DOCKER_UNAVAILABLE";
  else if (f.message.find("pull image") != std::string::npos)
    r.reason = "IMAGE_PULL_FAILED";
  else if (f.message.find("could not select device driver")
           != std::string::npos)
    r.reason = "GPU_UNAVAILABLE";
  else if (step == start_step)
    r.reason = "CONTAINER_START_FAILED";
  else if (step == inject_step)
    r.reason = "EXECD_DISTRIBUTION_FAILED";
  else if (step.find("egress sidecar") != std::string_view::npos)
    r.reason = "EGRESS_SIDECAR_FAILED";
  else
    r.reason = "CONTAINER_CREATE_FAILED";
  r.message = "Failed to " + std::string{step} + " sandbox container: "
              + f.message;
  if (r.reason == "GPU_UNAVAILABLE")
    r.message += " (resourceLimits.gpu needs a GPU and the NVIDIA container "
                 "runtime on the Docker host)";
  return r;
}

/// Whether a start failed because another program holds a published host
/// port (Docker's two wordings).
bool port_taken(const failure& f) {
  return f.message.find("address already in use") != std::string::npos
         || f.message.find("port is already allocated") != std::string::npos;
}

/// One provisioning of one sandbox; each step continues in the callback of
/// the previous one and holds the chain alive.
class provisioning : public std::enable_shared_from_this<provisioning> {
public:
  provisioning(std::shared_ptr<const docker_runtime> rt, sandbox_instance x,
               provision_options opts,
               std::function<void(provision_result)> done)
    : rt_(std::move(rt)),
      x_(std::move(x)),
      opts_(std::move(opts)),
      done_(std::move(done)) {
    // nop
  }

  void run() {
    auto& cfg = *options().cfg;
    if (!x_.member_of.empty() && !options().claimer
        && cfg.runtime.execd_inject == "none") {
      provision_result r;
      r.status = outcome::failed;
      r.reason = "EXECD_DISTRIBUTION_FAILED";
      r.message = "Pool members need execd in the sandbox to hold their "
                  "entrypoint until a claim, but runtime.execd_inject is "
                  "'none' (no execd binary found).";
      return finish(std::move(r));
    }
    if (opts_.fresh)
      return prepare_volumes();
    // A crash (or a create that outlived its answer) may have left
    // containers behind: clear them first.
    auto self = shared_from_this();
    remove_containers(engine(), x_, [self](expected<unit> r) {
      if (!r)
        return self->finish(failed(create_step, r.error()));
      if (!self->cancelled())
        self->prepare_volumes();
    });
  }

private:
  const engine_ptr& engine() const {
    return rt_->engine();
  }

  const docker_options& options() const {
    return rt_->options();
  }

  void finish(provision_result r) {
    auto done = std::move(done_);
    done(std::move(r));
  }

  /// Ends the chain when the caller gave up on it (a deletion, its end).
  bool cancelled() {
    if (!opts_.cancel || !opts_.cancel->load())
      return false;
    provision_result r;
    r.status = outcome::cancelled;
    finish(std::move(r));
    return true;
  }

  void fail(std::string_view step, const failure& f) {
    if ((step == start_step || step == sidecar_start_step) && port_taken(f)) {
      // New ports need new containers: the old ones go first.
      auto r = failed(step, f);
      auto self = shared_from_this();
      remove_containers(engine(), x_, [self, r](expected<unit> removed) {
        if (!removed) {
          provision_result gone;
          gone.status = outcome::failed;
          gone.reason = "CONTAINER_START_FAILED";
          gone.message = "Failed to start sandbox container: "
                         + removed.error().message;
          return self->finish(std::move(gone));
        }
        auto result = r;
        result.fix = remedy::new_ports;
        self->finish(std::move(result));
      });
      return;
    }
    auto r = failed(step, f);
    if (step == create_step || step == start_step)
      r.message += oci_runtime_hint(
        secure_docker_runtime(*options().cfg), f.message);
    finish(std::move(r));
  }

  void fail_volume(const volume_error& e) {
    provision_result r;
    r.status = outcome::failed;
    r.reason = "VOLUME_PREPARATION_FAILED";
    r.message = std::string{wire_code(e.code)} + ": " + e.message;
    finish(std::move(r));
  }

  // -- volumes ----------------------------------------------------------------

  /// Provides the sandbox's volumes before its container exists: host
  /// directories (checked and created on this host) and Docker named
  /// volumes (created when missing and allowed), in the request's order.
  void prepare_volumes() {
    auto parsed = parse_volumes(x_.spec.volumes_json);
    if (auto e = std::get_if<volume_error>(&parsed))
      return fail_volume(*e);
    mounts_ = std::move(std::get<std::vector<volume_mount>>(parsed));
    binds_.assign(mounts_.size(), std::string{});
    auto& cfg = *options().cfg;
    for (size_t i = 0; i < mounts_.size(); ++i) {
      auto& v = mounts_[i];
      if (v.backend == volume_mount::backend_kind::ossfs)
        return fail_volume(*precheck_volumes({v}, {}));
      if (v.backend != volume_mount::backend_kind::host)
        continue;
      auto path = prepare_host_path(v, cfg.storage.allowed_host_paths,
                                    options().local_fs);
      if (auto e = std::get_if<volume_error>(&path))
        return fail_volume(*e);
      binds_[i] = make_bind(std::get<std::string>(path), v);
    }
    prepare_named_volumes(0);
  }

  void prepare_named_volumes(size_t i) {
    while (i < mounts_.size()
           && mounts_[i].backend != volume_mount::backend_kind::pvc)
      ++i;
    if (i == mounts_.size())
      return start_workload();
    auto& v = mounts_[i];
    auto what = volume_prefix(v) + "Docker volume '" + v.claim_name + "'";
    auto self = shared_from_this();
    engine()->inspect_volume(v.claim_name, [self, i, what](
                                             expected<volume_info> info) {
      if (self->cancelled())
        return;
      if (info)
        return self->bind_named_volume(i, *info);
      auto& f = info.error();
      auto& v = self->mounts_[i];
      if (f.kind != failure_kind::not_found)
        return self->fail_volume({ec::volume_pvc_inspect_failed,
                                  what + " cannot be inspected: "
                                    + f.message});
      if (!v.create_if_not_exists)
        return self->fail_volume({ec::volume_pvc_not_found,
                                  what
                                    + " does not exist and createIfNotExists "
                                      "is false."});
      auto& x = self->x_;
      auto labels = managed_volume_labels(v, x.id, x.node, x.runtime_host);
      self->rt_->stamp(labels);
      self->engine()->create_volume(
        v.claim_name, labels, [self, i, what](expected<volume_info> info) {
          if (self->cancelled())
            return;
          if (!info)
            return self->fail_volume({ec::volume_pvc_inspect_failed,
                                      what + " cannot be created: "
                                        + info.error().message});
          OSB_INFO(component, "", self->x_.id,
                   "sandbox created volume " << info->name);
          self->bind_named_volume(i, *info);
        });
    });
  }

  void bind_named_volume(size_t i, const volume_info& info) {
    auto& v = mounts_[i];
    auto src = named_volume_source(v, info, options().local_fs);
    if (auto e = std::get_if<volume_error>(&src))
      return fail_volume(*e);
    binds_[i] = make_bind(std::get<std::string>(src), v);
    prepare_named_volumes(i + 1);
  }

  // -- containers -------------------------------------------------------------

  void start_workload() {
    if (x_.egress_token.empty())
      create_container();
    else
      create_sidecar();
  }

  void create_sidecar() {
    auto spec = make_sidecar_spec(*options().cfg, x_,
                                  options().publish_address);
    rt_->stamp(spec.labels);
    auto self = shared_from_this();
    engine()->create(spec, [self](expected<std::string> id) {
      if (!id)
        return self->fail(sidecar_create_step, id.error());
      if (self->cancelled())
        return;
      self->engine()->start(sidecar_name(self->x_.id),
                            [self](expected<unit> r) {
                              if (!r)
                                return self->fail(sidecar_start_step,
                                                  r.error());
                              if (!self->cancelled())
                                self->await_sidecar();
                            });
    });
  }

  /// Waits until the sidecar's policy API answers: its firewall is in place
  /// before the sandbox's first process runs.
  void await_sidecar() {
    if (!options().probe_sidecars)
      return create_container();
    auto self = shared_from_this();
    await_healthy("127.0.0.1", x_.ports.egress, "/healthz",
                  {{"OPENSANDBOX-EGRESS-AUTH", x_.egress_token}}, 30000,
                  [self](expected<unit> r) {
                    if (!r)
                      return self->fail(sidecar_start_step, r.error());
                    if (!self->cancelled())
                      self->create_container();
                  });
  }

  void create_container() {
    auto spec = make_container_spec(*options().cfg, x_,
                                    options().publish_address);
    for (auto& bind : binds_)
      if (!bind.empty())
        spec.binds.push_back(bind);
    spec.on_pull_progress = opts_.progress;
    rt_->stamp(spec.labels);
    phase(create_phase::prepared);
    auto self = shared_from_this();
    engine()->create(spec, [self](expected<std::string> id) {
      if (!id) {
        // A create from before a crash may still land after the cleanup:
        // the daemon reserves the name before the container is listed.
        if (id.error().kind == failure_kind::conflict) {
          auto r = failed(create_step, id.error());
          r.fix = remedy::retry_later;
          return self->finish(std::move(r));
        }
        return self->fail(create_step, id.error());
      }
      if (self->cancelled())
        return;
      self->phase(create_phase::created);
      self->keep_tmp();
    });
  }

  /// Under gVisor: /tmp made non-empty before the start, so that it stays
  /// on the container's filesystem as under runc (see gvisor_tmp_archive).
  void keep_tmp() {
    if (!is_gvisor(*options().cfg))
      return after_create();
    auto self = shared_from_this();
    engine()->put_archive(container_name(x_.id), "/", gvisor_tmp_archive(),
                          [self](expected<unit> r) {
                            if (!r)
                              return self->fail(tmp_step, r.error());
                            if (!self->cancelled())
                              self->after_create();
                          });
  }

  void after_create() {
    if (options().execd_tar)
      upload_execd();
    else
      start_container();
  }

  /// Copies execd into the created container (remote Docker hosts, where
  /// the server's files cannot be bind-mounted).
  void upload_execd() {
    auto self = shared_from_this();
    engine()->put_archive(container_name(x_.id), "/", options().execd_tar,
                          [self](expected<unit> r) {
                            if (!r)
                              return self->fail(inject_step, r.error());
                            if (!self->cancelled())
                              self->start_container();
                          });
  }

  void start_container() {
    auto self = shared_from_this();
    engine()->start(container_name(x_.id), [self](expected<unit> r) {
      if (!r)
        return self->fail(start_step, r.error());
      self->phase(create_phase::started);
      if (!self->x_.member_of.empty() && self->options().probe_members)
        return self->await_execd();
      self->finish(provision_result{});
    });
  }

  /// A pool member is ready once its execd answers: a claim goes there
  /// right away (docs/pools.md).
  void await_execd() {
    if (cancelled())
      return;
    auto self = shared_from_this();
    await_healthy(rt_->execd_host(), execd_port_of(x_), "/ping", {}, 30000,
                  [self](expected<unit> r) {
                    if (!r)
                      return self->fail(start_step, r.error());
                    self->finish(provision_result{});
                  });
  }

  /// Tells the caller that provisioning reached `p`.
  void phase(create_phase p) {
    if (opts_.on_phase)
      opts_.on_phase(p);
  }

  std::shared_ptr<const docker_runtime> rt_;
  sandbox_instance x_;
  provision_options opts_;
  std::function<void(provision_result)> done_;
  /// The request's volumes and their binds (empty for none yet).
  std::vector<volume_mount> mounts_;
  std::vector<std::string> binds_;
};

} // namespace

void provision_sandbox(std::shared_ptr<const docker_runtime> rt,
                       const sandbox_instance& x, provision_options opts,
                       std::function<void(provision_result)> done) {
  std::make_shared<provisioning>(std::move(rt), x, std::move(opts),
                                 std::move(done))
    ->run();
}

void remove_containers(const engine_ptr& engine, const sandbox_instance& x,
                       callback<unit> done) {
  auto sidecar = x.egress_token.empty() ? std::string{}
                                        : sidecar_name(x.id);
  engine->remove(container_name(x.id), [engine, sidecar, done](
                                          expected<unit> r) {
    if (!r || sidecar.empty())
      return done(std::move(r));
    engine->remove(sidecar, done);
  });
}

} // namespace osb::runtimes::docker
