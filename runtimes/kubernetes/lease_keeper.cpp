#include "runtimes/kubernetes/lease_keeper.hpp"

#include <rapidjson/document.h>

#include <algorithm>

#include "base/json.hpp"
#include "base/log.hpp"
#include "core/json.hpp"
#include "core/time.hpp"
#include "runtimes/kubernetes/kube_internal.hpp"
#include "runtimes/kubernetes/pod_spec.hpp"

namespace osb::runtimes::kubernetes {

namespace {

constexpr const char* component = "kubernetes";
/// Rounds of relabelling (a pod that changed under a patch is listed again).
constexpr int max_relabel_rounds = 10;

/// metadata.name and metadata.resourceVersion of each item of a list.
std::vector<std::pair<std::string, std::string>>
names_and_versions(const std::string& list_json) {
  std::vector<std::pair<std::string, std::string>> result;
  rapidjson::Document doc;
  if (base::json_too_deep(list_json) != std::string_view::npos)
    return result;
  doc.Parse(list_json.data(), list_json.size());
  if (doc.HasParseError() || !doc.IsObject())
    return result;
  auto items = json::present(doc, "items");
  if (items == nullptr || !items->IsArray())
    return result;
  for (auto& item : items->GetArray()) {
    if (!item.IsObject())
      continue;
    auto meta = json::present(item, "metadata");
    if (meta == nullptr || !meta->IsObject())
      continue;
    auto name = json::present(*meta, "name");
    auto rv = json::present(*meta, "resourceVersion");
    if (name != nullptr && name->IsString() && rv != nullptr && rv->IsString())
      result.emplace_back(std::string{json::view(*name)},
                          std::string{json::view(*rv)});
  }
  return result;
}

/// The resourceVersion in a written object ("" if none).
std::string version_of(const std::string& body) {
  auto f = read_lease(body);
  return f ? f->resource_version : std::string{};
}

} // namespace

lease_keeper::lease_keeper(kube_client_ptr client,
                           std::shared_ptr<informer> leases,
                           lease_keeper_options opts)
  : client_(std::move(client)),
    leases_(std::move(leases)),
    opts_(std::move(opts)),
    holder_(holder_identity(opts_.node, opts_.incarnation)) {
  // nop
}

std::string lease_keeper::collection() const {
  return "/apis/coordination.k8s.io/v1/namespaces/" + opts_.namespace_name
         + "/leases";
}

void lease_keeper::start() {
  std::weak_ptr<lease_keeper> weak = shared_from_this();
  leases_->start([weak](const watch_event& e) {
    auto self = weak.lock();
    if (!self)
      return;
    auto f = read_lease(e.object);
    if (!f)
      return;
    std::lock_guard guard{self->mtx_};
    if (e.type == "DELETED")
      self->seen_.erase(f->name);
    else
      see(self->seen_[f->name], f->resource_version, lease_clock::now());
  });
  tick();
}

void lease_keeper::stop() {
  std::lock_guard guard{mtx_};
  stopped_ = true;
  leases_->stop();
}

std::set<std::string> lease_keeper::pending_adoptions() const {
  std::lock_guard guard{mtx_};
  return pending_;
}

void lease_keeper::adopted(const std::string& name) {
  std::lock_guard guard{mtx_};
  pending_.erase(name);
}

bool lease_keeper::take_released() {
  std::lock_guard guard{mtx_};
  if (!release_pending_)
    return false;
  release_pending_ = false;
  return true;
}

void lease_keeper::tick() {
  {
    std::lock_guard guard{mtx_};
    if (stopped_)
      return;
  }
  hold();
  consider_takeovers();
  std::weak_ptr<lease_keeper> weak = shared_from_this();
  client_->after(opts_.renew, [weak] {
    if (auto self = weak.lock())
      self->tick();
  });
}

void lease_keeper::accepted(lease_clock::time_point sent,
                            const std::string& rv) {
  std::lock_guard guard{mtx_};
  rv_ = rv;
  lost_ = false;
  opts_.gate->valid_until_ns.store(
    ownership_gate::to_ns(sent + opts_.duration), std::memory_order_release);
}

void lease_keeper::on_lost(const std::string& why) {
  std::lock_guard guard{mtx_};
  if (lost_)
    return;
  OSB_ERROR(component, "", "",
            "replica " << opts_.node << " lost its lease "
                       << lease_name(opts_.node) << " (" << why
                       << "): another replica adopted its sandboxes; it "
                          "drops them without touching their pods and makes "
                          "a fresh lease");
  opts_.gate->valid_until_ns.store(0, std::memory_order_release);
  rv_.clear();
  lost_ = true;
  release_pending_ = true;
  pending_.clear();
}

void lease_keeper::hold() {
  std::string rv;
  {
    std::lock_guard guard{mtx_};
    if (disabled_ || busy_ || stopped_ || (lost_ && release_pending_))
      return;
    busy_ = true;
    rv = rv_;
  }
  auto self = shared_from_this();
  auto sent = lease_clock::now();
  auto body = make_lease(opts_.node, holder_,
                         std::chrono::duration_cast<std::chrono::seconds>(
                           opts_.duration)
                           .count(),
                         codec::now_us(), rv);
  auto path = collection() + "/" + lease_name(opts_.node);
  auto done = [self] {
    std::lock_guard guard{self->mtx_};
    self->busy_ = false;
  };
  // What the lease is now, when our write was refused: from the lease
  // informer's cache (the Role grants no get; the cache catches up, and a
  // stale look only costs another round).
  auto inspect = [self, done](bool creating, bool missing) {
    done();
    auto f = read_lease(self->leases_->object(lease_name(self->opts_.node)));
    if (!f) {
      if (!creating && missing)
        self->on_lost("its lease was deleted");
      return;
    }
    if (f->holder == self->holder_) {
      // Our own write landed but its answer was lost (or the cache is
      // behind): renew from what it shows.
      std::lock_guard guard{self->mtx_};
      self->rv_ = f->resource_version;
      return;
    }
    if (!creating)
      return self->on_lost("now held by " + f->holder);
    if (holder_node(f->holder) == self->opts_.node) {
      // A previous process of this node: take its lease over now.
      std::lock_guard guard{self->mtx_};
      self->rv_ = f->resource_version;
      return;
    }
    // Another replica is adopting this node's pods: wait for it to finish
    // (it deletes the lease) before holding any again.
    OSB_WARN(component, "", "",
             "replica " << self->opts_.node << " waits: its lease is held by "
                        << f->holder << " (adopting its sandboxes)");
    self->opts_.gate->valid_until_ns.store(0, std::memory_order_release);
  };
  if (rv.empty()) {
    client_->request(
      "POST", collection(), body,
      [self, sent, done, inspect](kube_response r) {
        if (r.status == 201 || r.status == 200) {
          done();
          OSB_INFO(component, "", "",
                   "replica " << self->opts_.node << " holds lease "
                              << lease_name(self->opts_.node));
          return self->accepted(sent, version_of(r.body));
        }
        if (r.status == 409)
          return inspect(true, false);
        done();
        if (r.status == 403 || r.status == 404) {
          std::lock_guard guard{self->mtx_};
          self->disabled_ = true;
          OSB_ERROR(component, "", "",
                    "replica " << self->opts_.node
                               << " cannot hold a Lease (HTTP " << r.status
                               << "): it runs without one, so no other "
                                  "replica adopts its sandboxes if it is "
                                  "lost (grant the Role get, list, watch, "
                                  "create, update, delete on "
                                  "coordination.k8s.io leases)");
        }
      });
    return;
  }
  client_->request("PUT", path, body,
                   [self, sent, done, inspect](kube_response r) {
                     if (r.status == 200) {
                       done();
                       return self->accepted(sent, version_of(r.body));
                     }
                     if (r.status == 409 || r.status == 404)
                       return inspect(false, r.status == 404);
                     // No answer: the fence runs out by itself.
                     done();
                   });
}

void lease_keeper::consider_takeovers() {
  auto now = lease_clock::now();
  std::vector<lease_facts> leases;
  for (auto& text : leases_->objects())
    if (auto f = read_lease(text))
      leases.push_back(std::move(*f));
  std::vector<lease_facts> due;
  {
    std::lock_guard guard{mtx_};
    if (!opts_.adopt || disabled_ || rv_.empty() || stopped_
        || opts_.gate->fenced(now))
      return;
    auto own = lease_name(opts_.node);
    std::vector<std::string> live{opts_.node};
    for (auto& f : leases) {
      auto& s = seen_[f.name];
      see(s, f.resource_version, now);
      if (f.name != own && !expired(s, opts_.duration, now)
          && holder_node(f.holder) == f.node)
        live.push_back(f.node);
    }
    auto next = lease_clock::time_point::max();
    for (auto& f : leases) {
      if (f.name == own || f.holder == holder_ || taking_.count(f.name) != 0)
        continue;
      auto& s = seen_[f.name];
      auto delay = adoption_delay(opts_.node, live, f.node, opts_.renew);
      auto at = s.since + opts_.duration + delay;
      if (now < at) {
        next = std::min(next, at);
        continue;
      }
      taking_.insert(f.name);
      due.push_back(f);
    }
    // A turn that comes before the next renewal tick is looked at then, not
    // up to a renew interval late.
    if (next < now + opts_.renew && !early_check_) {
      early_check_ = true;
      std::weak_ptr<lease_keeper> weak = shared_from_this();
      client_->after(
        std::chrono::duration_cast<std::chrono::milliseconds>(next - now)
          + std::chrono::milliseconds(1),
        [weak] {
          if (auto self = weak.lock()) {
            {
              std::lock_guard guard{self->mtx_};
              self->early_check_ = false;
            }
            self->consider_takeovers();
          }
        });
    }
  }
  for (auto& f : due)
    take_over(f);
}

void lease_keeper::take_over(const lease_facts& f) {
  auto self = shared_from_this();
  auto body = make_lease(f.node, holder_, f.duration_s > 0 ? f.duration_s : 10,
                         codec::now_us(), f.resource_version);
  client_->request(
    "PUT", collection() + "/" + f.name, body, [self, f](kube_response r) {
      if (r.status != 200) {
        // Another replica won, or the lease changed (renewed, deleted).
        std::lock_guard guard{self->mtx_};
        self->taking_.erase(f.name);
        return;
      }
      OSB_WARN(component, "", "",
               "replica " << self->opts_.node << " takes over lease " << f.name
                          << " of lost replica " << f.node << " (held by "
                          << f.holder << ", unchanged for its duration)");
      auto pods = "/api/v1/namespaces/" + self->opts_.namespace_name
                  + "/pods";
      self->relabel(f.node, version_of(r.body), 0, pods,
                    self->opts_.sandboxes);
    });
}

void lease_keeper::relabel(const std::string& lost,
                           const std::string& lease_rv, int attempt,
                           const std::string& collection,
                           const std::string& next) {
  auto self = shared_from_this();
  auto lease = lease_name(lost);
  auto finish = [self, lease, lease_rv, lost, next] {
    if (!next.empty())
      return self->relabel(lost, lease_rv, 0, next, {});
    // Every pod is ours: the lease goes (conditional on our takeover, so a
    // lease made afresh meanwhile stays).
    self->client_->request(
      "DELETE", self->collection() + "/" + lease,
      "{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\",\"preconditions\":"
      "{\"resourceVersion\":"
        + json::quote(lease_rv) + "}}",
      [self, lease](kube_response) {
        std::lock_guard guard{self->mtx_};
        self->taking_.erase(lease);
      });
  };
  auto retry = [self, lost, lease_rv, attempt, lease, collection, next] {
    if (attempt + 1 >= max_relabel_rounds) {
      OSB_ERROR(component, "", "",
                "replica " << self->opts_.node
                           << " gives up relabelling " << collection
                           << " of " << lost
                           << "; the lease expires and is taken again");
      std::lock_guard guard{self->mtx_};
      self->taking_.erase(lease);
      return;
    }
    self->client_->after(std::chrono::milliseconds(200),
                         [self, lost, lease_rv, attempt, collection, next] {
                           self->relabel(lost, lease_rv, attempt + 1,
                                         collection, next);
                         });
  };
  // A Sandbox's pod template carries the label too: a pod its controller
  // makes again is the adopter's.
  bool templated = collection == opts_.sandboxes;
  auto path = collection + "?labelSelector="
              + query_escape(std::string{node_label} + "=" + lost);
  client_->request("GET", path, {}, [self, lost, finish, retry, collection,
                                     templated](kube_response r) {
    if (r.status != 200)
      return retry();
    auto pods = names_and_versions(r.body);
    if (pods.empty())
      return finish();
    struct round {
      size_t left;
      bool again = false;
      size_t moved = 0;
    };
    auto state = std::make_shared<round>(round{pods.size()});
    auto& node = self->opts_.node;
    for (auto& [name, rv] : pods) {
      json::writer o;
      o.begin_object().key("metadata").begin_object();
      o.key("resourceVersion").str(rv);
      o.key("labels").begin_object().key(node_label).str(node).end_object();
      o.end_object();
      if (templated) {
        o.key("spec").begin_object().key("podTemplate").begin_object();
        o.key("metadata").begin_object().key("labels").begin_object();
        o.key(node_label).str(node).end_object().end_object();
        o.end_object().end_object();
      }
      o.end_object();
      self->client_->request(
        "PATCH", collection + "/" + name, o.release(),
        [self, state, name = name, lost, finish, retry,
         collection](kube_response r) {
          {
            std::lock_guard guard{self->mtx_};
            if (r.status == 200) {
              self->pending_.insert(name);
              ++state->moved;
            } else if (r.status != 404) {
              state->again = true;
            }
          }
          if (--state->left > 0)
            return;
          OSB_INFO(component, "", "",
                   "replica " << self->opts_.node << " relabelled "
                              << state->moved << " of " << collection
                              << " of lost replica " << lost << " to itself");
          if (state->again)
            return retry();
          finish();
        },
        "application/merge-patch+json");
    }
  });
}

} // namespace osb::runtimes::kubernetes
