#include "runtimes/docker/docker_runtime.hpp"

#include <utility>

#include "core/ids.hpp"
#include "core/spec_json.hpp"
#include "core/time.hpp"
#include "base/log.hpp"
#include "runtimes/docker/claim.hpp"
#include "runtimes/docker/diagnostics.hpp"
#include "runtimes/docker/labels.hpp"
#include "runtimes/docker/oci_runtime.hpp"
#include "runtimes/docker/provisioning.hpp"
#include "runtimes/docker/specs.hpp"
#include "runtimes/docker/volumes.hpp"
#include "runtimes/volumes.hpp"

namespace osb::runtimes::docker {

namespace {

constexpr const char* component = "docker";

std::string label_of(const std::map<std::string, std::string>& labels,
                     const char* key) {
  auto i = labels.find(key);
  return i == labels.end() ? std::string{} : i->second;
}

/// Docker's states in the runtime-neutral vocabulary: "dead" (a removal
/// that failed half-way) ended like "exited".
std::string workload_status(const std::string& status) {
  return status == "dead" ? std::string{workload::exited} : status;
}

/// "removing its <what> failed (<why>)": the text a DELETE that has to wait
/// carries.
failure removal_failure(const char* what, const failure& f) {
  return failure{f.kind, std::string{"removing its "} + what + " failed ("
                           + f.message + ")"};
}

/// What diagnostics say about a sandbox without a container (still
/// provisioning, or a create that failed).
std::string no_container_text(const sandbox_view& v) {
  return "(no container) Sandbox " + v.id + " is " + to_string(v.state) + " ("
         + v.reason + "): " + v.message;
}

} // namespace

docker_runtime::docker_runtime(engine_ptr engine, docker_options opts)
  : engine_(std::move(engine)),
    opts_(std::move(opts)),
    oci_runtime_(secure_docker_runtime(*opts_.cfg)) {
  // nop
}

void docker_runtime::stamp(std::map<std::string, std::string>& labels) const {
  if (!opts_.incarnation.empty())
    labels[incarnation_label] = opts_.incarnation;
}

// -- admission ----------------------------------------------------------------

void docker_runtime::admit(const sandbox_spec& spec, callback<admission> cb) {
  std::unique_lock guard{mtx_};
  bool unchecked = !oci_runtime_.empty() && !runtime_found_;
  guard.unlock();
  if (unchecked) {
    // A secure runtime the start-up check could not confirm (the daemon
    // did not answer then): refused here rather than failed after the 202.
    auto self = shared_from_this();
    check_runtime([self, spec, cb](std::optional<admission::refusal> no,
                                   bool) {
      if (!no)
        return self->admit(spec, cb);
      admission a;
      a.refused = std::move(no);
      cb(std::move(a));
    });
    return;
  }
  if (spec.platform_os.empty())
    return admit_known(spec, std::move(cb));
  // The host's platform is not known yet (just started): learn it first.
  auto self = shared_from_this();
  learn_platform([self, spec, cb](std::optional<daemon_info> p,
                                  std::string why) {
    if (p)
      return self->admit_known(spec, cb);
    admission a;
    a.refused = admission::refusal{ec::runtime_unavailable,
                                   "Cannot learn the platform of the Docker "
                                   "host: "
                                     + why};
    cb(std::move(a));
  });
}

void docker_runtime::admit_known(const sandbox_spec& spec,
                                 callback<admission> cb) {
  admission a;
  auto refuse = [&](ec code, std::string msg) {
    a.refused = admission::refusal{code, std::move(msg)};
    cb(std::move(a));
  };
  if (!spec.platform_os.empty()) {
    // Refused before Docker would pull an image variant it cannot start
    // (or fail with a vaguer error).
    std::unique_lock guard{mtx_};
    auto p = *platform_;
    guard.unlock();
    if (spec.platform_os != p.os || spec.platform_arch != p.arch)
      return refuse(ec::invalid_parameter,
                    "Platform " + spec.platform_os + "/" + spec.platform_arch
                      + " is not supported by this server's Docker host '"
                      + opts_.host + "', which runs " + p.os + "/" + p.arch
                      + ".");
  }
  // Volume checks that need this host's filesystem but no daemon: answered
  // before the 202, naming the volume.
  auto volumes = parse_volumes(spec.volumes_json);
  if (auto e = std::get_if<volume_error>(&volumes))
    return refuse(e->code, e->message);
  if (auto e = precheck_volumes(std::get<std::vector<volume_mount>>(volumes),
                                opts_.cfg->storage.allowed_host_paths,
                                opts_.local_fs))
    return refuse(e->code, e->message);
  // Published ports, except in host network mode; a sidecar publishes them
  // (and its policy API) in every mode.
  bool published = opts_.cfg->docker.network_mode != "host";
  bool sidecar = !spec.network_policy_json.empty();
  a.execd_port = published || sidecar;
  a.http_port = published || sidecar;
  a.egress_port = sidecar;
  cb(std::move(a));
}

void docker_runtime::learn_platform(
  std::function<void(std::optional<daemon_info>, std::string)> then) {
  std::unique_lock guard{mtx_};
  if (platform_) {
    auto p = *platform_;
    guard.unlock();
    return then(std::move(p), {});
  }
  guard.unlock();
  auto self = shared_from_this();
  engine_->info([self, then](expected<daemon_info> info) {
    if (!info)
      return then(std::nullopt, info.error().message);
    std::unique_lock guard{self->mtx_};
    if (!self->platform_)
      OSB_INFO(component, "", "",
               "Docker host '" << self->opts_.host << "' runs "
                               << info->os << "/" << info->arch
                               << " (Docker " << info->version << ")");
    self->platform_ = *info;
    guard.unlock();
    then(std::move(*info), {});
  });
}

void docker_runtime::check_runtime(
  std::function<void(std::optional<admission::refusal>, bool)> then) {
  std::unique_lock guard{mtx_};
  if (oci_runtime_.empty() || runtime_found_) {
    guard.unlock();
    return then(std::nullopt, true);
  }
  guard.unlock();
  // Asked again each time until found: an administrator may register the
  // runtime (SIGHUP) while this server runs.
  auto self = shared_from_this();
  engine_->info([self, then](expected<daemon_info> info) {
    if (!info)
      return then(admission::refusal{ec::runtime_unavailable,
                                     "Cannot check Docker runtime '"
                                       + self->oci_runtime_
                                       + "' on Docker host '"
                                       + self->opts_.host
                                       + "': " + info.error().message},
                  false);
    auto no = check_oci_runtime(*info, self->oci_runtime_, self->opts_.host,
                                self->opts_.local_fs);
    std::unique_lock guard{self->mtx_};
    if (!self->platform_)
      self->platform_ = *info;
    if (!no && !self->runtime_found_) {
      self->runtime_found_ = true;
      OSB_INFO(component, "", "",
               "Docker host '" << self->opts_.host
                               << "' runs sandboxes under OCI runtime '"
                               << self->oci_runtime_ << "'");
    }
    guard.unlock();
    if (no)
      return then(admission::refusal{ec::runtime_unavailable, *no}, true);
    then(std::nullopt, true);
  });
}

void docker_runtime::verify(callback<unit> cb) {
  if (oci_runtime_.empty())
    return cb(unit{});
  check_runtime([cb](std::optional<admission::refusal> no, bool answered) {
    if (!no)
      return cb(unit{});
    if (answered)
      return cb(failure{failure_kind::invalid, no->message});
    OSB_WARN(component, "", "",
             no->message << "; creates are refused until the runtime is "
                            "found");
    cb(unit{});
  });
}

// -- lifecycle ----------------------------------------------------------------

void docker_runtime::provision(const sandbox_instance& x,
                               provision_options opts,
                               std::function<void(provision_result)> cb) {
  provision_sandbox(shared_from_this(), x, std::move(opts), std::move(cb));
}

void docker_runtime::claim(const sandbox_instance& x, const claim_request& c,
                           callback<unit> cb) {
  if (opts_.claimer)
    return opts_.claimer(x, c, std::move(cb));
  http_claimer(execd_host())(x, c, std::move(cb));
}

std::string docker_runtime::execd_host() const {
  if (!opts_.execd_host.empty())
    return opts_.execd_host;
  auto& a = opts_.publish_address;
  if (a.empty() || a == "0.0.0.0" || a == "::" || a == "[::]")
    return "127.0.0.1";
  return a;
}

void docker_runtime::pause(const sandbox_instance& x, callback<unit> cb) {
  engine_->pause(container_name(x.id), std::move(cb));
}

void docker_runtime::resume(const sandbox_instance& x, callback<unit> cb) {
  engine_->unpause(container_name(x.id), std::move(cb));
}

void docker_runtime::remove(const sandbox_instance& x, bool never_ran,
                            callback<unit> cb) {
  auto self = shared_from_this();
  remove_containers(engine_, x, [self, x, never_ran, cb](expected<unit> r) {
    if (!r)
      return cb(removal_failure("container", r.error()));
    self->remove_volumes(x, never_ran, [cb](expected<unit> r) {
      if (!r)
        return cb(removal_failure("volumes", r.error()));
      cb(unit{});
    });
  });
}

void docker_runtime::remove_volumes(const sandbox_instance& x, bool all,
                                    callback<unit> cb) {
  // No volume of the request can qualify: spare the daemon the listing.
  auto parsed = parse_volumes(x.spec.volumes_json);
  if (auto mounts = std::get_if<std::vector<volume_mount>>(&parsed);
      mounts != nullptr
      && !(all ? has_named_volumes(*mounts)
               : has_volumes_to_delete(*mounts)))
    return cb(unit{});
  // The record is the volumes' own labels, written atomically with them,
  // so this also works after a restart.
  auto id = x.id;
  auto engine = engine_;
  engine_->list_volumes(
    {{volume_owner_label, id}},
    [engine, id, all, cb](expected<std::vector<volume_info>> xs) {
      if (!xs)
        return cb(xs.error());
      std::vector<std::string> names;
      for (auto& v : *xs)
        if (created_for(v, id) && (all || delete_with_sandbox(v)))
          names.push_back(v.name);
      if (names.empty())
        return cb(unit{});
      struct state {
        size_t pending;
        std::optional<failure> first;
        std::mutex mtx;
      };
      auto st = std::make_shared<state>();
      st->pending = names.size();
      for (auto& name : names)
        engine->remove_volume(name, [st, name, id, cb](expected<unit> r) {
          std::unique_lock guard{st->mtx};
          if (r) {
            OSB_INFO("volumes", "", id, "removed volume " << name);
          } else if (r.error().kind == failure_kind::conflict) {
            // Still used by another sandbox: the volume sweep takes it
            // once that one is gone.
            OSB_WARN("volumes", "", id,
                     "keeps volume " << name
                                     << ", another container uses it: "
                                     << r.error().message);
          } else if (!st->first) {
            st->first = r.error();
          }
          if (--st->pending > 0)
            return;
          auto first = st->first;
          guard.unlock();
          if (first)
            cb(*first);
          else
            cb(unit{});
        });
    });
}

// -- observation --------------------------------------------------------------

void docker_runtime::observe(callback<observation> cb) {
  // Learned while things work, so that creates naming a platform need no
  // extra call.
  learn_platform([](std::optional<daemon_info>, std::string) {});
  engine_->list(scope_labels(opts_.node, opts_.host),
                [cb](expected<std::vector<container_info>> cs) {
                  if (!cs)
                    return cb(cs.error());
                  observation result;
                  for (auto& c : *cs) {
                    auto inc = label_of(c.labels, incarnation_label);
                    if (auto id = label_of(c.labels, id_label); !id.empty()) {
                      result.workloads.push_back(
                        {id, workload_status(c.status), c.exit_code, {}});
                      result.objects.push_back(
                        {id, "container", c.name, c.id, inc});
                    }
                    if (auto id = label_of(c.labels, sidecar_for_label);
                        !id.empty())
                      result.objects.push_back(
                        {id, "egress sidecar", c.name, c.id, inc});
                  }
                  cb(std::move(result));
                });
}

void docker_runtime::leftover_volumes(
  callback<std::vector<runtime_object>> cb) {
  auto filter = scope_labels(opts_.node, opts_.host);
  filter[volume_managed_label] = "server";
  filter[volume_delete_label] = "true";
  engine_->list_volumes(filter, [cb](expected<std::vector<volume_info>> xs) {
    if (!xs)
      return cb(xs.error());
    std::vector<runtime_object> result;
    for (auto& v : *xs)
      if (auto owner = volume_owner(v); !owner.empty())
        result.push_back({owner, "volume", v.name, v.name,
                          label_of(v.labels, incarnation_label)});
    cb(std::move(result));
  });
}

void docker_runtime::remove_object(const runtime_object& x,
                                   callback<unit> cb) {
  if (x.kind == "volume")
    engine_->remove_volume(x.ref, std::move(cb));
  else
    engine_->remove(x.ref, std::move(cb));
}

// -- diagnostics --------------------------------------------------------------

void docker_runtime::diagnose(const sandbox_instance& x,
                              const sandbox_view& now,
                              const diagnostics_query& q,
                              callback<std::string> cb) {
  auto name = container_name(x.id);
  auto missing = [](const failure& f) {
    return f.kind == failure_kind::not_found;
  };
  log_query lq;
  lq.tail = q.tail;
  if (!q.since.empty())
    lq.since_s = codec::now_us() / 1000000 - parse_since_seconds(q.since);
  if (q.kind == "logs") {
    engine_->logs(name, lq, [cb, missing](expected<std::string> text) {
      if (text)
        return cb(render_logs(std::move(*text)));
      if (missing(text.error()))
        return cb(render_logs({}));
      cb(text.error());
    });
    return;
  }
  auto absent = no_container_text(now);
  if (q.kind != "summary") {
    engine_->details(name, [cb, q, absent,
                            missing](expected<container_details> d) {
      if (d)
        return cb(q.kind == "events" ? render_events(*d, q.limit)
                                     : render_inspect(*d));
      if (missing(d.error()))
        return cb(absent);
      cb(d.error());
    });
    return;
  }
  // Summary: one inspect for two sections, then the logs; a section that
  // fails is replaced by a line without details (logged here once).
  using text = std::optional<std::string>;
  auto id = x.id;
  auto section_failed = [id](const failure& f, const char* what) {
    OSB_ERROR(component, "", id,
              "sandbox failed to collect " << what << " diagnostics: "
                                           << f.message);
  };
  auto engine = engine_;
  auto with_logs = [engine, cb, q, lq, name, id, section_failed,
                    missing](text inspect, text events) {
    engine->logs(name, lq, [cb, q, id, inspect, events, section_failed,
                            missing](expected<std::string> logs) {
      text section;
      if (logs)
        section = render_logs(std::move(*logs));
      else if (missing(logs.error()))
        section = render_logs({});
      else
        section_failed(logs.error(), "log");
      cb(render_summary(id, q.tail, inspect, events, section));
    });
  };
  engine_->details(name, [q, absent, with_logs, section_failed,
                          missing](expected<container_details> d) {
    if (d)
      return with_logs(render_inspect(*d), render_events(*d, q.limit));
    if (missing(d.error()))
      return with_logs(absent, absent);
    section_failed(d.error(), "inspect");
    with_logs(std::nullopt, std::nullopt);
  });
}

// -- snapshots ----------------------------------------------------------------

std::string docker_runtime::image_of(const std::string& snapshot_id) const {
  return std::string{snapshot_repository} + ":" + snapshot_id;
}

void docker_runtime::snapshot(const std::string& sandbox_id,
                              const std::string& snapshot_id,
                              callback<std::string> cb) {
  // Docker pauses the container meanwhile; its sandbox ignores that pause.
  engine_->commit(container_name(sandbox_id), snapshot_repository,
                  snapshot_id, std::move(cb));
}

void docker_runtime::image_exists(const std::string& ref, callback<bool> cb) {
  engine_->image_exists(ref, std::move(cb));
}

void docker_runtime::remove_image(const std::string& ref, callback<unit> cb) {
  engine_->remove_image(ref, std::move(cb));
}

void docker_runtime::snapshot_images(
  const std::vector<std::string>& incarnations,
  callback<std::vector<snapshot_image>> cb) {
  // Images keep the labels of the container they were committed from: one
  // labelled listing per recorded incarnation.
  std::vector<std::map<std::string, std::string>> filters;
  auto scope = scope_labels(opts_.node, opts_.host);
  if (incarnations.empty())
    filters.push_back(scope);
  for (auto& x : incarnations) {
    filters.push_back(scope);
    filters.back()[incarnation_label] = x;
  }
  struct state {
    size_t pending;
    std::vector<snapshot_image> found;
    std::optional<failure> first;
    bool any = false;
    std::mutex mtx;
  };
  auto st = std::make_shared<state>();
  st->pending = filters.size();
  const std::string prefix = std::string{snapshot_repository} + ":";
  for (auto& labels : filters)
    engine_->list_images(
      snapshot_repository, labels,
      [st, prefix, cb](expected<std::vector<std::string>> refs) {
        std::unique_lock guard{st->mtx};
        if (refs) {
          st->any = true;
          for (auto& ref : *refs)
            if (ref.compare(0, prefix.size(), prefix) == 0)
              st->found.push_back({ref.substr(prefix.size()), ref});
        } else if (!st->first) {
          st->first = refs.error();
        }
        if (--st->pending > 0)
          return;
        auto any = st->any;
        auto first = st->first;
        auto found = std::move(st->found);
        guard.unlock();
        if (!any && first)
          cb(*first);
        else
          cb(std::move(found));
      });
}

void docker_runtime::shutdown() {
  engine_->shutdown();
}

} // namespace osb::runtimes::docker
