#include "runtimes/kubernetes/kubernetes_runtime.hpp"

#include <atomic>
#include <set>
#include <utility>

#include "base/json.hpp"
#include "base/log.hpp"
#include "core/json.hpp"
#include "core/spec_json.hpp"
#include "runtimes/kubernetes/lease_keeper.hpp"
#include "runtimes/kubernetes/pod_guard.hpp"
#include "runtimes/kubernetes/agent_sandbox.hpp"
#include "runtimes/volumes.hpp"

namespace osb::runtimes::kubernetes {

namespace {

constexpr const char* component = "kubernetes";

/// The `message` of a Status the API server answered, else the body.
std::string status_message(const kube_response& r) {
  rapidjson::Document doc;
  if (base::json_too_deep(r.body) == std::string_view::npos) {
    doc.Parse(r.body.data(), r.body.size());
    if (!doc.HasParseError() && doc.IsObject())
      if (auto m = json::present(doc, "message"); m != nullptr && m->IsString())
        return std::string{json::view(*m)};
  }
  return r.body.size() > 300 ? r.body.substr(0, 300) + "..." : r.body;
}

provision_result failed(std::string reason, std::string message) {
  provision_result r;
  r.status = provision_result::outcome::failed;
  r.reason = std::move(reason);
  r.message = std::move(message);
  return r;
}

/// "?" or "&" + `param`.
std::string query(const std::string& path, const std::string& param) {
  return path + (path.find('?') == std::string::npos ? "?" : "&") + param;
}

/// Percent-encodes a query value (selectors carry '=' and ',').
std::string encode(const std::string& x) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string result;
  for (unsigned char c : x) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      result += static_cast<char>(c);
    } else {
      result += '%';
      result += hex[c >> 4];
      result += hex[c & 15];
    }
  }
  return result;
}

/// The events of a pod as lines ("<time> <type> <reason>: <message>"),
/// newest last.
std::string render_events(const std::string& list_json, int32_t limit) {
  rapidjson::Document doc;
  if (base::json_too_deep(list_json) != std::string_view::npos)
    return "(events cannot be read)\n";
  doc.Parse(list_json.data(), list_json.size());
  if (doc.HasParseError() || !doc.IsObject())
    return "(events cannot be read)\n";
  auto items = json::present(doc, "items");
  if (items == nullptr || !items->IsArray() || items->Empty())
    return "(no events)\n";
  std::vector<std::string> lines;
  for (auto& e : items->GetArray()) {
    if (!e.IsObject())
      continue;
    auto str = [&e](const char* k) {
      auto v = json::present(e, k);
      return v != nullptr && v->IsString() ? std::string{json::view(*v)}
                                           : std::string{};
    };
    auto when = str("lastTimestamp");
    if (when.empty())
      when = str("eventTime");
    lines.push_back(when + " " + str("type") + " " + str("reason") + ": "
                    + str("message"));
  }
  std::string out;
  auto first = lines.size() > static_cast<size_t>(limit)
                 ? lines.size() - static_cast<size_t>(limit)
                 : 0;
  for (auto i = first; i < lines.size(); ++i)
    out += lines[i] + "\n";
  return out;
}

} // namespace

/// One provisioning waiting for its pod.
struct kubernetes_runtime::wait_state {
  sandbox_instance x;
  provision_options opts;
  std::function<void(provision_result)> cb;
  std::vector<volume_mount> volumes;
  std::string name;
  std::atomic<bool> done{false};
  /// The pod exists (our POST was answered 201, or it was adopted).
  std::atomic<bool> created{false};
  std::mutex mtx;
  bool started = false;
  std::string progress;
  /// What the pod showed last (for the timeout's message).
  std::string unschedulable;
};

kubernetes_runtime::kubernetes_runtime(kube_client_ptr client,
                                       std::shared_ptr<informer> pods,
                                       kubernetes_options opts)
  : client_(std::move(client)), pods_(std::move(pods)), opts_(std::move(opts)) {
  // nop
}

std::string kubernetes_runtime::fenced() const {
  if (!opts_.gate || !opts_.gate->fenced())
    return {};
  return "replica '" + opts_.node + "': " + opts_.gate->reason();
}

void kubernetes_runtime::start() {
  if (opts_.keeper)
    opts_.keeper->start();
  std::weak_ptr<kubernetes_runtime> weak = shared_from_this();
  pods_->start([weak](const watch_event& e) {
    if (auto self = weak.lock())
      self->on_change(e);
  });
  if (opts_.sandboxes)
    opts_.sandboxes->start([weak](const watch_event& e) {
      if (auto self = weak.lock())
        self->on_sandbox_change(e);
    });
}

std::string kubernetes_runtime::collection(const char* plural) const {
  if (std::string_view{plural} == agent_sandbox_plural)
    return sandbox_collection(opts_.namespace_name);
  return "/api/v1/namespaces/" + opts_.namespace_name + "/" + plural;
}

std::string kubernetes_runtime::unavailable() const {
  if (auto err = pods_->last_error(); !err.empty())
    return err;
  if (!pods_->synced())
    return "API server " + opts_.server
           + ": the first listing of pods is not complete yet";
  return sandboxes_unavailable();
}

// -- admission ----------------------------------------------------------------

void kubernetes_runtime::admit(const sandbox_spec& spec,
                               callback<admission> cb) {
  admission a;
  auto refuse = [&](ec code, std::string msg) {
    a.refused = admission::refusal{code, std::move(msg)};
    cb(std::move(a));
  };
  // Refused at once (503) rather than after the 202.
  if (auto why = unavailable(); !why.empty())
    return refuse(ec::runtime_unavailable,
                  "The Kubernetes API server is unavailable: " + why);
  if (auto why = fenced(); !why.empty())
    return refuse(ec::runtime_unavailable, "Creates are refused: " + why);
  if (!spec.snapshot_id.empty())
    return refuse(ec::invalid_parameter,
                  "Snapshots are not supported with runtime.type = "
                  "'kubernetes'.");
  auto volumes = parse_volumes(spec.volumes_json);
  if (auto e = std::get_if<volume_error>(&volumes))
    return refuse(e->code, e->message);
  // Host paths are the Kubernetes node's: only the lexical checks apply.
  if (auto e = precheck_volumes(std::get<std::vector<volume_mount>>(volumes),
                                opts_.cfg->storage.allowed_host_paths, false))
    return refuse(e->code, e->message);
  // The pod's own address serves execd, 8080 and the egress API: no host
  // ports to reserve.
  a.fixed = pod_ports(!spec.network_policy_json.empty());
  // A replica's store is an emptyDir: the pod (or Sandbox) is the record.
  a.state_in_workload = true;
  cb(std::move(a));
}

// -- provisioning -------------------------------------------------------------

void kubernetes_runtime::provision(const sandbox_instance& x,
                                   provision_options opts,
                                   std::function<void(provision_result)> cb) {
  auto parsed = parse_volumes(x.spec.volumes_json);
  if (auto e = std::get_if<volume_error>(&parsed))
    return cb(failed("VOLUME_PREPARATION_FAILED", e->message));
  auto volumes = std::get<std::vector<volume_mount>>(std::move(parsed));
  for (auto& v : volumes) {
    if (v.backend != volume_mount::backend_kind::host)
      continue;
    auto path = prepare_host_path(v, opts_.cfg->storage.allowed_host_paths,
                                  false);
    if (auto e = std::get_if<volume_error>(&path))
      return cb(failed("VOLUME_PREPARATION_FAILED", e->message));
    // The sub-path is part of the host path now.
    v.host_path = std::get<std::string>(path);
    v.sub_path.clear();
  }
  if (auto why = unavailable(); !why.empty())
    return cb(failed("KUBERNETES_UNAVAILABLE",
                     "The Kubernetes API server is unavailable: " + why));
  if (auto why = fenced(); !why.empty())
    return cb(failed("KUBERNETES_UNAVAILABLE", why));
  auto w = std::make_shared<wait_state>();
  w->x = x;
  w->opts = std::move(opts);
  w->cb = std::move(cb);
  w->volumes = std::move(volumes);
  w->name = pod_name(x.id);
  {
    std::lock_guard guard{mtx_};
    // Registered before anything is sent: the pod's events may come before
    // the POST's answer.
    if (auto i = waits_.find(w->name); i != waits_.end() && i->second) {
      auto old = i->second;
      i->second = w;
      if (!old->done.exchange(true)) {
        provision_result r;
        r.status = provision_result::outcome::cancelled;
        old->cb(r);
      }
    } else {
      waits_[w->name] = w;
    }
  }
  auto self = shared_from_this();
  auto seconds = opts_.cfg->kubernetes.sandbox_create_timeout_seconds;
  opts_.after(std::chrono::seconds(seconds), [self, w, seconds] {
    std::unique_lock guard{w->mtx};
    auto unschedulable = w->unschedulable;
    auto progress = w->progress;
    guard.unlock();
    if (!unschedulable.empty())
      return self->finish(w, failed("POD_UNSCHEDULABLE",
                                    "Pod " + w->name
                                      + " cannot be scheduled: "
                                      + unschedulable));
    self->finish(w, failed("SANDBOX_CREATE_TIMEOUT",
                           "Pod " + w->name + " did not become ready within "
                             + std::to_string(seconds)
                             + " s (kubernetes.sandbox_create_timeout_"
                               "seconds)"
                             + (progress.empty() ? "" : "; last: " + progress)));
  });
  if (w->opts.fresh)
    return create(w);
  // An earlier attempt (before a restart) may have made the pod: the same
  // request is adopted, anything else replaced.
  auto json = workloads().object(w->name);
  if (json.empty())
    return create(w);
  auto facts = read_pod(json);
  auto same = facts && !facts->deleting
              && facts->spec_hash == spec_hash(codec::spec_to_json(x.spec));
  if (same) {
    w->created = true;
    if (w->opts.on_phase)
      w->opts.on_phase(create_phase::created);
    // A Sandbox's pod says whether it is ready.
    return check(w, opts_.sandboxes ? pods_->object(w->name) : json);
  }
  auto retry = [self, w](expected<unit>) {
    provision_result r = failed("CONTAINER_CREATE_FAILED",
                                "An earlier pod " + w->name
                                  + " is still being removed");
    r.fix = provision_result::remedy::retry_later;
    self->finish(w, std::move(r));
  };
  if (facts && facts->deleting)
    return retry(unit{});
  remove_named(workload_plural(), w->name, retry);
}

void kubernetes_runtime::create(const wait_ptr& w) {
  if (w->opts.cancel && w->opts.cancel->load()) {
    provision_result r;
    r.status = provision_result::outcome::cancelled;
    return finish(w, r);
  }
  auto self = shared_from_this();
  auto pod = make_workload(w->x, w->volumes);
  std::string kind = opts_.sandboxes ? "Sandbox" : "pod";
  auto post_pod = [self, w, pod, kind] {
    if (w->opts.on_phase)
      w->opts.on_phase(create_phase::prepared);
    self->client_->request(
      "POST", self->collection(self->workload_plural()), pod,
      [self, w, kind](kube_response r) {
        if (r.status == 201 || r.status == 200) {
          w->created = true;
          if (w->opts.on_phase)
            w->opts.on_phase(create_phase::created);
          // Events that came before this answer found `created` unset; the
          // informer may also not have seen the pod yet: then the answer
          // is its first state.
          auto json = self->pods_->object(w->name);
          return self->check(w, json.empty() ? r.body : json);
        }
        if (r.status == 409) {
          // A create from before a restart landed meanwhile.
          provision_result res = failed(
            "CONTAINER_CREATE_FAILED",
            (kind == "pod" ? "Pod" : kind) + " " + w->name + " already exists");
          res.fix = provision_result::remedy::retry_later;
          return self->finish(w, std::move(res));
        }
        if (r.status == 0)
          return self->finish(
            w, failed("KUBERNETES_UNAVAILABLE",
                      "The Kubernetes API server " + self->opts_.server
                        + " did not answer the create of " + kind + " "
                        + w->name + ": " + r.body));
        self->finish(w, failed("CONTAINER_CREATE_FAILED",
                               "The API server refused " + kind + " " + w->name
                                 + " (HTTP " + std::to_string(r.status)
                                 + "): " + status_message(r)));
      });
  };
  auto secret = make_pull_secret(w->x, opts_.incarnation);
  if (secret.empty())
    return post_pod();
  client_->request("POST", collection("secrets"), secret,
                   [self, w, post_pod](kube_response r) {
                     if (r.status == 201 || r.status == 200
                         || r.status == 409)
                       return post_pod();
                     self->finish(
                       w, failed("IMAGE_PULL_FAILED",
                                 "Failed to store the registry credentials "
                                 "of image "
                                   + w->x.spec.image + " (HTTP "
                                   + std::to_string(r.status)
                                   + "): " + status_message(r)));
                   });
}

void kubernetes_runtime::on_change(const watch_event& e) {
  {
    std::lock_guard guard{mtx_};
    if (waits_.empty())
      return;
  }
  auto facts = read_pod(e.object);
  if (!facts)
    return;
  wait_ptr w;
  {
    std::lock_guard guard{mtx_};
    auto i = waits_.find(facts->name);
    if (i == waits_.end())
      return;
    w = i->second;
  }
  check(w, e.object, e.type == "DELETED");
}

void kubernetes_runtime::check(const wait_ptr& w, const std::string& json,
                               bool deleted) {
  if (w->done)
    return;
  if (w->opts.cancel && w->opts.cancel->load()) {
    provision_result r;
    r.status = provision_result::outcome::cancelled;
    return finish(w, r);
  }
  if (deleted) {
    if (w->created)
      finish(w, failed("CONTAINER_START_FAILED",
                       "Pod " + w->name
                         + " was deleted before it became ready"));
    return;
  }
  auto f = read_pod(json);
  if (!f)
    return;
  if (f->deleting)
    return finish(w, failed("CONTAINER_START_FAILED",
                            "Pod " + w->name
                              + " is being deleted before it became ready"));
  if (!f->fail_reason.empty())
    return finish(w, failed(f->fail_reason, f->fail_message));
  if (f->workload == workload::exited)
    return finish(w, failed("CONTAINER_START_FAILED",
                            "Sandbox container exited with code "
                              + std::to_string(f->exit_code)
                              + " before the pod became ready"));
  std::unique_lock guard{w->mtx};
  w->unschedulable = f->unschedulable;
  bool report_start = f->phase == "Running" && !w->started;
  if (report_start)
    w->started = true;
  bool report_progress = !f->ready && !f->progress.empty()
                         && f->progress != w->progress;
  if (report_progress)
    w->progress = f->progress;
  guard.unlock();
  if (report_start && w->opts.on_phase)
    w->opts.on_phase(create_phase::started);
  if (f->ready) {
    provision_result r;
    r.address = f->pod_ip;
    return finish(w, std::move(r));
  }
  if (report_progress && w->opts.progress)
    w->opts.progress(f->progress);
}

void kubernetes_runtime::on_sandbox_change(const watch_event& e) {
  {
    std::lock_guard guard{mtx_};
    if (waits_.empty())
      return;
  }
  auto s = read_sandbox(e.object);
  if (!s)
    return;
  wait_ptr w;
  {
    std::lock_guard guard{mtx_};
    auto i = waits_.find(s->meta.name);
    if (i == waits_.end())
      return;
    w = i->second;
  }
  // The pod's own changes come through `on_change`; a Sandbox says only
  // what its pod cannot: it went, expired, or its pod cannot be made.
  if (e.type == "DELETED" || s->meta.deleting) {
    if (w->created)
      finish(w, failed("CONTAINER_START_FAILED",
                       "Sandbox " + w->name
                         + " was deleted before it became ready"));
    return;
  }
  if (auto f = sandbox_failed(*s))
    finish(w, failed(f->reason, f->message));
}

void kubernetes_runtime::finish(const wait_ptr& w, provision_result r) {
  if (w->done.exchange(true))
    return;
  {
    std::lock_guard guard{mtx_};
    if (auto i = waits_.find(w->name); i != waits_.end() && i->second == w)
      waits_.erase(i);
  }
  w->cb(std::move(r));
}

// -- other lifecycle operations ------------------------------------------------

void kubernetes_runtime::pause(const sandbox_instance&, callback<unit> cb) {
  cb(failure{failure_kind::invalid,
             "Pause is not supported for this sandbox type (Kubernetes "
             "pods cannot be paused)"});
}

void kubernetes_runtime::resume(const sandbox_instance&, callback<unit> cb) {
  cb(failure{failure_kind::invalid,
             "Resume is not supported for this sandbox type (Kubernetes "
             "pods cannot be paused)"});
}

void kubernetes_runtime::remove_named(const char* plural,
                                      const std::string& name,
                                      callback<unit> cb) {
  auto server = opts_.server;
  std::string kind = plural;
  client_->request("DELETE", collection(plural) + "/" + name, {},
                   [cb, server, kind, name](kube_response r) {
                     if (r.status == 200 || r.status == 202
                         || r.status == 404)
                       return cb(unit{});
                     if (r.status == 0)
                       return cb(failure{failure_kind::unavailable,
                                         "API server " + server
                                           + " unreachable: " + r.body});
                     cb(failure{r.status == 409 ? failure_kind::conflict
                                                : failure_kind::failed,
                                "DELETE of " + kind + " " + name
                                  + " answered HTTP "
                                  + std::to_string(r.status) + ": "
                                  + status_message(r)});
                   });
}

void kubernetes_runtime::remove(const sandbox_instance& x, bool,
                                callback<unit> cb) {
  if (auto why = fenced(); !why.empty())
    return cb(failure{failure_kind::unavailable, why});
  auto self = shared_from_this();
  bool secret = !x.spec.image_username.empty()
                || !x.spec.image_password.empty();
  auto id = x.id;
  auto name = pod_name(x.id);
  guarded_write w{"DELETE", collection(workload_plural()) + "/" + name, {},
                  opts_.node, workloads().object(name)};
  write_guarded(
    client_, std::move(w),
    [self, secret, id, name, cb](guarded_outcome o, kube_response r) {
      if (o == guarded_outcome::not_ours) {
        // Another replica adopted it: its pod is not ours to delete.
        OSB_WARN(component, "", id,
                 "pod " << name << " belongs to another replica now; "
                        << "not deleted");
        return cb(unit{});
      }
      if (o == guarded_outcome::failed)
        return cb(failure{r.status == 0 ? failure_kind::unavailable
                                        : failure_kind::failed,
                          "removing its pod failed (DELETE answered HTTP "
                            + std::to_string(r.status) + ": "
                            + status_message(r) + ")"});
      if (!secret)
        return cb(unit{});
      self->remove_named("secrets", pull_secret_name(id),
                         [cb](expected<unit> r) {
                           if (!r)
                             return cb(failure{
                               r.error().kind,
                               "removing its pull secret failed ("
                                 + r.error().message + ")"});
                           cb(unit{});
                         });
    });
}

void kubernetes_runtime::record(const sandbox_instance& x,
                                callback<unit> cb) {
  if (auto why = fenced(); !why.empty())
    return cb(failure{failure_kind::unavailable, why});
  auto name = pod_name(x.id);
  auto server = opts_.server;
  guarded_write w{"PATCH", collection(workload_plural()) + "/" + name,
                  record_patch(x), opts_.node, workloads().object(name)};
  write_guarded(
    client_, std::move(w),
    [cb, name, server](guarded_outcome o, kube_response r) {
      // A pod that is gone keeps nothing; one adopted by another replica
      // is that replica's to change.
      if (o != guarded_outcome::failed)
        return cb(unit{});
      if (r.status == 0)
        return cb(failure{failure_kind::unavailable,
                          "API server " + server + " unreachable: " + r.body});
      cb(failure{failure_kind::failed,
                 "PATCH of pod " + name + " answered HTTP "
                   + std::to_string(r.status) + ": " + status_message(r)});
    });
}

void kubernetes_runtime::observe(callback<observation> cb) {
  // A start lists before the informer's first listing completes: wait for
  // it a little rather than report the runtime down.
  observe_synced(40, std::move(cb));
}

void kubernetes_runtime::observe_synced(int tries, callback<observation> cb) {
  if (tries > 0 && pods_->last_error().empty() && !pods_->synced()) {
    auto self = shared_from_this();
    opts_.after(std::chrono::milliseconds(50), [self, tries, cb] {
      self->observe_synced(tries - 1, cb);
    });
    return;
  }
  if (auto why = unavailable(); !why.empty())
    return cb(failure{failure_kind::unavailable, why});
  observation result;
  std::set<std::string> adoptable;
  if (opts_.keeper) {
    result.released = opts_.keeper->take_released();
    adoptable = opts_.keeper->pending_adoptions();
  }
  if (opts_.sandboxes)
    return observe_sandboxes(std::move(result), adoptable, std::move(cb));
  std::unique_lock guard{observe_mtx_};
  std::unordered_map<const std::string*, parsed> seen;
  for (auto& text : pods_->snapshot()) {
    auto key = text.get();
    auto i = parsed_.find(key);
    auto& p = seen[key];
    if (i != parsed_.end())
      p = std::move(i->second);
    else
      p = parsed{text, read_pod(*text)};
    auto& f = p.facts;
    if (!f || f->node != opts_.node || f->host != opts_.host)
      continue;
    workload_state w;
    w.id = f->id;
    w.status = f->workload;
    w.exit_code = f->exit_code;
    w.address = f->pod_ip;
    // What a server that lost its store adopts the pod from; a spec that
    // does not match its hash was altered and is not trusted.
    if (!f->spec_json.empty() && f->spec_hash == spec_hash(f->spec_json)) {
      kept_state k;
      k.spec_json = f->spec_json;
      k.metadata_json = f->metadata_json;
      k.access_token = f->access_token;
      k.egress_token = f->egress_token;
      k.created_us = f->created_us;
      k.expires_us = f->expires_us;
      k.ports = pod_ports(!f->egress_token.empty());
      k.pool = f->pool;
      k.unclaimed = !f->pool.empty() && f->member_state != member_claimed;
      w.kept = std::move(k);
    }
    if (adoptable.count(f->name) != 0) {
      result.adopted.push_back(f->id);
      opts_.keeper->adopted(f->name);
    }
    result.workloads.push_back(std::move(w));
    result.objects.push_back({f->id, "pod", f->name, f->name, f->incarnation});
  }
  // Versions no longer cached go.
  parsed_.swap(seen);
  guard.unlock();
  cb(std::move(result));
}

void kubernetes_runtime::ping(callback<unit> cb) {
  if (auto why = unavailable(); !why.empty())
    return cb(failure{failure_kind::unavailable, why});
  cb(unit{});
}

void kubernetes_runtime::leftover_volumes(
  callback<std::vector<runtime_object>> cb) {
  // Claims are the cluster's; this runtime makes none.
  cb(std::vector<runtime_object>{});
}

void kubernetes_runtime::remove_object(const runtime_object& x,
                                       callback<unit> cb) {
  if (auto why = fenced(); !why.empty())
    return cb(failure{failure_kind::unavailable, why});
  remove_named(x.kind == "pull secret" ? "secrets"
               : x.kind == "sandbox"   ? agent_sandbox_plural
                                       : "pods",
               x.ref, std::move(cb));
}

// -- diagnostics --------------------------------------------------------------

void kubernetes_runtime::diagnose(const sandbox_instance& x,
                                  const sandbox_view& now,
                                  const diagnostics_query& q,
                                  callback<std::string> cb) {
  auto name = pod_name(x.id);
  auto pod = pods_->object(name);
  auto absent = "(no pod) Sandbox " + now.id + " is " + to_string(now.state)
                + " (" + now.reason + "): " + now.message + "\n";
  auto inspect = pod.empty() ? absent : pod + "\n";
  if (opts_.sandboxes)
    inspect = "Sandbox: " + opts_.sandboxes->object(name) + "\n" + inspect;
  auto self = shared_from_this();
  auto server = opts_.server;
  auto logs = [self, name, q, server](std::function<void(std::string)> then) {
    auto path = self->collection("pods") + "/" + name + "/log?container="
                + sandbox_container
                + "&tailLines=" + std::to_string(q.tail);
    self->client_->request("GET", path, {}, [then](kube_response r) {
      if (r.status == 200)
        return then(r.body.empty() ? "(no logs)\n" : r.body);
      if (r.status == 404)
        return then("(no logs)\n");
      then("(logs unavailable: HTTP " + std::to_string(r.status) + " "
           + status_message(r) + ")\n");
    });
  };
  auto events = [self, name, q](std::function<void(std::string)> then) {
    auto path = query(self->collection("events"),
                      "fieldSelector="
                        + encode("involvedObject.name=" + name));
    self->client_->request("GET", path, {}, [then, q](kube_response r) {
      if (r.status == 200)
        return then(render_events(r.body, q.limit));
      then("(events unavailable: HTTP " + std::to_string(r.status) + " "
           + status_message(r) + ")\n");
    });
  };
  if (q.kind == "logs")
    return logs([cb](std::string text) { cb(std::move(text)); });
  if (q.kind == "events")
    return events([cb](std::string text) { cb(std::move(text)); });
  if (q.kind == "inspect")
    return cb(inspect);
  events([cb, logs, inspect, id = x.id](std::string ev) {
    logs([cb, inspect, ev, id](std::string lg) {
      cb("== Sandbox " + id + " ==\n\n== Pod ==\n" + inspect
         + "\n== Events ==\n" + ev + "\n== Logs ==\n" + lg);
    });
  });
}

// -- snapshots (not on Kubernetes) ----------------------------------------------

std::string kubernetes_runtime::image_of(const std::string&) const {
  return {};
}

void kubernetes_runtime::snapshot(const std::string&, const std::string&,
                                  callback<std::string> cb) {
  cb(failure{failure_kind::invalid, "Snapshots are not supported with "
                                    "runtime.type = 'kubernetes'"});
}

void kubernetes_runtime::image_exists(const std::string&, callback<bool> cb) {
  cb(false);
}

void kubernetes_runtime::remove_image(const std::string&, callback<unit> cb) {
  cb(unit{});
}

void kubernetes_runtime::snapshot_images(const std::vector<std::string>&,
                                         callback<std::vector<snapshot_image>>
                                           cb) {
  cb(std::vector<snapshot_image>{});
}

// -- start-up -----------------------------------------------------------------

void kubernetes_runtime::verify(callback<unit> cb) {
  auto ns = opts_.namespace_name;
  auto server = opts_.server;
  client_->request(
    "GET", "/api/v1/namespaces/" + ns, {},
    [self = shared_from_this(), cb, ns, server](kube_response r) {
      if (r.status == 200)
        return self->opts_.sandboxes ? self->verify_sandboxes(cb) : cb(unit{});
      if (r.status == 404)
        return cb(failure{failure_kind::invalid,
                          "namespace '" + ns + "' does not exist on API "
                            + "server " + server + " (kubernetes.namespace)"});
      if (r.status == 401 || r.status == 403)
        return cb(failure{failure_kind::invalid,
                          "API server " + server + " refuses our credentials "
                            + "(HTTP " + std::to_string(r.status)
                            + "): " + status_message(r)
                            + " (check kubernetes.kubeconfig_path and the "
                              "service account's Role)"});
      // Not answering now is not a failure: admission checks it again.
      OSB_WARN(component, "", "",
               "API server " << server << " does not answer the start-up "
                             << "check (HTTP " << r.status << " "
                             << status_message(r)
                             << "); creates are refused until it does");
      cb(unit{});
    });
}

void kubernetes_runtime::shutdown() {
  if (opts_.keeper)
    opts_.keeper->stop();
  pods_->stop();
  if (opts_.sandboxes)
    opts_.sandboxes->stop();
  client_->shutdown();
  std::unordered_map<std::string, wait_ptr> waits;
  {
    std::lock_guard guard{mtx_};
    waits.swap(waits_);
  }
  for (auto& [name, w] : waits)
    if (!w->done.exchange(true))
      w->cb(failed("KUBERNETES_UNAVAILABLE", "The server is shutting down"));
}

} // namespace osb::runtimes::kubernetes
