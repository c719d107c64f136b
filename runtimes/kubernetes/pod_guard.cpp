#include "runtimes/kubernetes/pod_guard.hpp"

#include <memory>
#include <optional>

#include <rapidjson/document.h>

#include "base/json.hpp"
#include "core/json.hpp"
#include "runtimes/kubernetes/pod_spec.hpp"

namespace osb::runtimes::kubernetes {

namespace {

/// Rounds of "changed meanwhile, look again" before giving up.
constexpr int max_conflicts = 3;

struct pod_version {
  std::string node;
  std::string uid;
  std::string resource_version;
};

std::optional<pod_version> read_version(const std::string& text) {
  rapidjson::Document doc;
  if (base::parse_json(doc, text) != base::json_status::ok || !doc.IsObject())
    return std::nullopt;
  auto meta = json::present(doc, "metadata");
  if (meta == nullptr || !meta->IsObject())
    return std::nullopt;
  auto str = [](const rapidjson::Value& obj, const char* key) {
    auto v = json::present(obj, key);
    return v != nullptr && v->IsString() ? std::string{json::view(*v)}
                                         : std::string{};
  };
  pod_version v;
  v.uid = str(*meta, "uid");
  v.resource_version = str(*meta, "resourceVersion");
  if (auto labels = json::present(*meta, "labels");
      labels != nullptr && labels->IsObject())
    v.node = str(*labels, node_label);
  if (v.resource_version.empty())
    return std::nullopt;
  return v;
}

struct run_state {
  kube_client_ptr client;
  guarded_write w;
  std::function<void(guarded_outcome, kube_response)> cb;
};

void attempt(const std::shared_ptr<run_state>& st, const std::string& json,
             int conflicts);

/// A Role without `get` on pods (the one-replica manifests before leases):
/// the write goes without preconditions, as before fleets.
void unconditional(const std::shared_ptr<run_state>& st) {
  auto del = st->w.method == "DELETE";
  st->client->request(
    st->w.method, st->w.path, del ? std::string{} : st->w.patch,
    [st](kube_response r) {
      if (r.status == 200 || r.status == 202)
        return st->cb(guarded_outcome::done, std::move(r));
      if (r.status == 404)
        return st->cb(guarded_outcome::gone, std::move(r));
      st->cb(guarded_outcome::failed, std::move(r));
    },
    del ? std::string{} : std::string{"application/merge-patch+json"});
}

void fetch(const std::shared_ptr<run_state>& st, int conflicts) {
  st->client->request("GET", st->w.path, {}, [st, conflicts](kube_response r) {
    if (r.status == 404)
      return st->cb(guarded_outcome::gone, std::move(r));
    if (r.status == 403)
      return unconditional(st);
    if (r.status != 200)
      return st->cb(guarded_outcome::failed, std::move(r));
    attempt(st, r.body, conflicts);
  });
}

void attempt(const std::shared_ptr<run_state>& st, const std::string& json,
             int conflicts) {
  auto v = read_version(json);
  if (!v)
    return fetch(st, conflicts);
  if (v->node != st->w.node)
    return st->cb(guarded_outcome::not_ours, kube_response{409, {}});
  std::string body;
  std::string type;
  if (st->w.method == "DELETE") {
    // An empty uid would be a precondition no pod meets.
    body = "{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\","
           "\"preconditions\":{"
           + (v->uid.empty() ? std::string{}
                             : "\"uid\":" + json::quote(v->uid) + ",")
           + "\"resourceVersion\":" + json::quote(v->resource_version) + "}}";
  } else {
    static constexpr std::string_view head = "{\"metadata\":{";
    body = st->w.patch;
    if (body.compare(0, head.size(), head) == 0)
      body.insert(head.size(), "\"resourceVersion\":"
                                 + json::quote(v->resource_version) + ",");
    type = "application/merge-patch+json";
  }
  st->client->request(
    st->w.method, st->w.path, body,
    [st, conflicts](kube_response r) {
      if (r.status == 200 || r.status == 202)
        return st->cb(guarded_outcome::done, std::move(r));
      if (r.status == 404)
        return st->cb(guarded_outcome::gone, std::move(r));
      if (r.status == 409 && conflicts < max_conflicts)
        return fetch(st, conflicts + 1);
      st->cb(guarded_outcome::failed, std::move(r));
    },
    type);
}

} // namespace

void write_guarded(kube_client_ptr client, guarded_write w,
                   std::function<void(guarded_outcome, kube_response)> cb) {
  auto st = std::make_shared<run_state>(
    run_state{std::move(client), std::move(w), std::move(cb)});
  auto cached = st->w.cached;
  attempt(st, cached, 0);
}

} // namespace osb::runtimes::kubernetes
