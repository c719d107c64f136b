#include "runtimes/kubernetes/lease.hpp"

#include <algorithm>

#include "base/json.hpp"
#include "core/json.hpp"
#include "core/time.hpp"
#include "runtimes/kubernetes/pod_spec.hpp"

namespace osb::runtimes::kubernetes {

std::string lease_name(const std::string& node) {
  return "opensandbox-" + node;
}

std::string holder_identity(const std::string& node,
                            const std::string& incarnation) {
  return node + "/" + incarnation;
}

std::string holder_node(std::string_view holder) {
  auto slash = holder.find('/');
  return std::string{slash == std::string_view::npos ? holder
                                                     : holder.substr(0, slash)};
}

std::optional<lease_facts> read_lease(std::string_view text) {
  rapidjson::Document doc;
  if (base::parse_json(doc, text) != base::json_status::ok || !doc.IsObject())
    return std::nullopt;
  auto str = [](const rapidjson::Value* obj, const char* key) {
    if (obj == nullptr || !obj->IsObject())
      return std::string{};
    auto v = json::present(*obj, key);
    return v != nullptr && v->IsString() ? std::string{json::view(*v)}
                                         : std::string{};
  };
  auto meta = json::present(doc, "metadata");
  if (meta == nullptr || !meta->IsObject())
    return std::nullopt;
  auto labels = json::present(*meta, "labels");
  if (str(labels, lease_label) != lease_label_value)
    return std::nullopt;
  lease_facts f;
  f.name = str(meta, "name");
  f.node = str(labels, node_label);
  f.resource_version = str(meta, "resourceVersion");
  auto spec = json::present(doc, "spec");
  f.holder = str(spec, "holderIdentity");
  if (spec != nullptr && spec->IsObject())
    if (auto d = json::present(*spec, "leaseDurationSeconds");
        d != nullptr && d->IsInt64())
      f.duration_s = d->GetInt64();
  if (f.name.empty() || f.node.empty())
    return std::nullopt;
  return f;
}

std::string make_lease(const std::string& node, const std::string& holder,
                       int64_t duration_s, int64_t now_us,
                       const std::string& resource_version) {
  // MicroTime: RFC 3339 with exactly six fraction digits.
  auto micro = [](int64_t us) {
    auto s = codec::format_time(us - us % 1000000);
    char frac[16];
    std::snprintf(frac, sizeof(frac), ".%06lld",
                  static_cast<long long>(us % 1000000));
    return s.substr(0, s.size() - 1) + frac + "Z";
  };
  json::writer o;
  o.begin_object();
  o.key("apiVersion").str("coordination.k8s.io/v1");
  o.key("kind").str("Lease");
  o.key("metadata").begin_object();
  o.key("name").str(lease_name(node));
  if (!resource_version.empty())
    o.key("resourceVersion").str(resource_version);
  o.key("labels").begin_object();
  o.key(lease_label).str(lease_label_value);
  o.key(node_label).str(node);
  o.end_object();
  o.end_object();
  o.key("spec").begin_object();
  o.key("holderIdentity").str(holder);
  o.key("leaseDurationSeconds").num(duration_s);
  o.key("renewTime").str(micro(now_us));
  o.end_object();
  o.end_object();
  return o.release();
}

void see(lease_sighting& s, const std::string& resource_version,
         lease_clock::time_point now) {
  if (s.resource_version == resource_version
      && s.since != lease_clock::time_point{})
    return;
  s.resource_version = resource_version;
  s.since = now;
}

bool expired(const lease_sighting& s, std::chrono::milliseconds duration,
             lease_clock::time_point now) {
  return now - s.since >= duration;
}

bool fenced(std::optional<lease_clock::time_point> last_accepted_send,
            std::chrono::milliseconds duration, lease_clock::time_point now) {
  return !last_accepted_send || now - *last_accepted_send >= duration;
}

std::chrono::milliseconds adoption_delay(const std::string& self,
                                         std::vector<std::string> live,
                                         const std::string& lost,
                                         std::chrono::milliseconds step) {
  std::sort(live.begin(), live.end());
  live.erase(std::unique(live.begin(), live.end()), live.end());
  auto me = std::find(live.begin(), live.end(), self);
  if (me == live.end())
    return step * static_cast<int64_t>(live.size());
  // FNV-1a of the lost replica's name picks who goes first.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : lost)
    h = (h ^ c) * 1099511628211ull;
  auto n = live.size();
  auto first = static_cast<size_t>(h % n);
  auto index = static_cast<size_t>(me - live.begin());
  auto rank = (index + n - first) % n;
  return step * static_cast<int64_t>(rank);
}

} // namespace osb::runtimes::kubernetes
