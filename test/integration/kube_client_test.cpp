// The Kubernetes API client and informer (runtimes/kubernetes/) against the
// API-server emulator (test/k8s-emulator): TLS with a client certificate or
// a token, CRUD and optimistic concurrency, list+watch with 410 Gone and
// reconnects, the rate limiter, one watch connection for many pods.
// Skipped only when node is missing.

#include "k8s_emulator.hpp"
#include "runtimes/kubernetes/kube_api.hpp"

#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <vector>

using namespace osb;
using namespace osb::runtimes::kubernetes;
using namespace std::chrono_literals;

namespace {

constexpr auto pods_path = "/api/v1/namespaces/default/pods";

/// A blocking request (tests only).
kube_response call(kube_client& client, const std::string& method,
                   const std::string& path, const std::string& body = {},
                   const std::string& content_type = {}) {
  auto promise = std::make_shared<std::promise<kube_response>>();
  auto future = promise->get_future();
  client.request(
    method, path, body,
    [promise](kube_response r) { promise->set_value(std::move(r)); },
    content_type);
  if (future.wait_for(20s) != std::future_status::ready)
    return kube_response{0, "test gave up waiting"};
  return future.get();
}

std::string pod_json(const std::string& name,
                     const std::string& labels = R"({"app":"kc-test"})") {
  return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name
         + R"(","labels":)" + labels
         + R"(},"spec":{"containers":[{"name":"main","image":"busybox:1.36"}]}})";
}

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str());
  return doc;
}

std::string resource_version(const std::string& obj) {
  auto doc = parse(obj);
  if (!doc.IsObject() || !doc.HasMember("metadata"))
    return {};
  return doc["metadata"]["resourceVersion"].GetString();
}

std::string name_of(const std::string& obj) {
  auto doc = parse(obj);
  if (!doc.IsObject() || !doc.HasMember("metadata"))
    return {};
  return doc["metadata"]["name"].GetString();
}

kube_client_ptr client_for(const kube_endpoint& ep, rate_limits limits = {}) {
  auto c = make_kube_client(ep, limits);
  EXPECT_TRUE(c) << c.error().message;
  return c ? *c : nullptr;
}

kube_client_ptr client_for(const test::k8s_emulator& emu) {
  auto ep = load_kubeconfig(emu.kubeconfig);
  EXPECT_TRUE(ep) << ep.error().message;
  return ep ? client_for(*ep) : nullptr;
}

/// Records what an informer reports; waits for a condition on it.
class recorder {
public:
  informer_handler handler() {
    return [this](const watch_event& ev) {
      std::lock_guard guard{mtx_};
      events_.push_back({ev.type, name_of(ev.object)});
      cv_.notify_all();
    };
  }

  /// Waits (up to `limit`) until `type` was reported for `name`.
  bool wait_for(const std::string& type, const std::string& name,
                std::chrono::milliseconds limit = 10s) {
    std::unique_lock guard{mtx_};
    return cv_.wait_for(guard, limit, [&] { return seen(type, name); });
  }

  bool saw(const std::string& type, const std::string& name) {
    std::lock_guard guard{mtx_};
    return seen(type, name);
  }

  size_t count(const std::string& type) {
    std::lock_guard guard{mtx_};
    size_t n = 0;
    for (auto& [t, name] : events_)
      n += t == type;
    return n;
  }

private:
  bool seen(const std::string& type, const std::string& name) const {
    for (auto& [t, n] : events_)
      if (t == type && n == name)
        return true;
    return false;
  }

  std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, std::string>> events_;
};

/// Polls `pred` every 10 ms up to `limit` (for state without a callback:
/// the informer's last_error()).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

/// Creates `count` pods kc-0... labelled app=kc-test through the admin API.
void bulk_pods(const test::k8s_emulator& emu, int count,
               const std::string& prefix = "kc-") {
  auto r = emu.admin_call(
    "POST", "/_emulator/pods/bulk",
    R"({"namespace":"default","count":)" + std::to_string(count)
      + R"(,"prefix":")" + prefix + R"(","template":)" + pod_json("x")
      + "}");
  ASSERT_EQ(r.status, 200) << r.body;
}

/// The emulator's request count of e.g. "watch pods".
int served(const test::k8s_emulator& emu, const std::string& key) {
  auto doc = emu.admin_call("GET", "/_emulator/requests").json();
  if (!doc.IsObject() || !doc["counts"].HasMember(key.c_str()))
    return 0;
  return doc["counts"][key.c_str()].GetInt();
}

informer_options pod_options() {
  informer_options opts;
  opts.collection = pods_path;
  opts.label_selector = "app=kc-test";
  opts.page_size = 10;
  opts.backoff_initial = 50ms;
  opts.backoff_max = 300ms;
  return opts;
}

} // namespace

TEST(KubeClient, HttpsWithClientCertificateAndKubeconfigErrors) {
  OSB_REQUIRE_NODE();
  test::k8s_emulator emu{{"--tls", "--require-auth"}};
  ASSERT_TRUE(emu.ok()) << emu.error();
  auto ep = load_kubeconfig(emu.kubeconfig);
  ASSERT_TRUE(ep) << ep.error().message;
  EXPECT_EQ(ep->server, emu.url);
  EXPECT_EQ(ep->default_namespace, "default");
  EXPECT_NE(ep->ca_pem.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_NE(ep->client_cert_pem.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_FALSE(ep->client_key_pem.empty());
  EXPECT_TRUE(ep->token.empty());
  auto client = client_for(*ep);
  ASSERT_TRUE(client);
  auto r = call(*client, "GET", pods_path);
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_NE(r.body.find("PodList"), std::string::npos);
  // Without the client certificate the server refuses us: it was sent.
  auto anonymous = *ep;
  anonymous.client_cert_pem.clear();
  anonymous.client_key_pem.clear();
  EXPECT_EQ(call(*client_for(anonymous), "GET", pods_path).status, 401u);
  client->shutdown();
  // Bad kubeconfigs are clear errors (more in the unit tests).
  auto missing = load_kubeconfig("/nonexistent/kubeconfig");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, failure_kind::invalid);
  EXPECT_EQ(missing.error().message,
            "kubeconfig /nonexistent/kubeconfig: file not found");
  auto context = load_kubeconfig(emu.kubeconfig, "nope");
  ASSERT_FALSE(context);
  EXPECT_EQ(context.error().message,
            "kubeconfig " + emu.kubeconfig + ": context 'nope' not found");
  EXPECT_TRUE(load_kubeconfig(emu.kubeconfig, "k8s-emulator"));
  // An unreachable server is an answer with status 0 naming it.
  auto unreachable = *ep;
  unreachable.server = "http://127.0.0.1:1";
  auto refused = call(*client_for(unreachable), "GET", pods_path);
  EXPECT_EQ(refused.status, 0u);
  EXPECT_EQ(
    refused.body.rfind("API server http://127.0.0.1:1 unreachable: ", 0), 0u)
    << refused.body;
  // The emulator's kubeconfig with broken base64 in its CA.
  std::ifstream in{emu.kubeconfig};
  std::string text{std::istreambuf_iterator<char>{in}, {}};
  auto at = text.find("certificate-authority-data: ");
  ASSERT_NE(at, std::string::npos) << text;
  text.insert(at + 30, "*"); // inside the value: a leading * is YAML
  auto bad = (std::filesystem::path{emu.state_dir} / "bad-kubeconfig").string();
  std::ofstream{bad} << text;
  auto broken = load_kubeconfig(bad);
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().message,
            "kubeconfig " + bad
              + ": cluster 'k8s-emulator': certificate-authority-data is not "
                "valid base64");
}

TEST(KubeClient, HttpsWithBearerTokenAndServerVerification) {
  OSB_REQUIRE_NODE();
  test::k8s_emulator emu{{"--tls", "--token", "t0k3n", "--require-auth",
                          "--kubeconfig-auth", "token"}};
  ASSERT_TRUE(emu.ok()) << emu.error();
  auto ep = load_kubeconfig(emu.kubeconfig);
  ASSERT_TRUE(ep) << ep.error().message;
  EXPECT_EQ(ep->token, "t0k3n");
  EXPECT_TRUE(ep->client_cert_pem.empty());
  EXPECT_EQ(call(*client_for(*ep), "GET", pods_path).status, 200u);
  auto wrong = *ep;
  wrong.token = "nope";
  EXPECT_EQ(call(*client_for(wrong), "GET", pods_path).status, 401u);
  // The system CAs do not know the emulator's CA: the handshake fails...
  auto system_cas = *ep;
  system_cas.ca_pem.clear();
  auto r = call(*client_for(system_cas), "GET", pods_path);
  EXPECT_EQ(r.status, 0u);
  EXPECT_NE(r.body.find("TLS handshake with API server " + emu.url),
            std::string::npos)
    << r.body;
  // ... unless verification is off.
  system_cas.insecure_skip_tls_verify = true;
  EXPECT_EQ(call(*client_for(system_cas), "GET", pods_path).status, 200u);
  // A host name (sent as SNI) the certificate names is accepted.
  auto by_name = *ep;
  by_name.server = "https://localhost:" + emu.url.substr(emu.url.rfind(':') + 1);
  EXPECT_EQ(call(*client_for(by_name), "GET", pods_path).status, 200u);
  // The in-cluster configuration: token, CA and namespace from files.
  auto dir = std::filesystem::path{emu.state_dir} / "serviceaccount";
  std::filesystem::create_directories(dir);
  std::ofstream{dir / "token"} << "t0k3n\n";
  std::ofstream{dir / "ca.crt"} << ep->ca_pem;
  std::ofstream{dir / "namespace"} << "sandboxes";
  auto port = emu.url.substr(emu.url.rfind(':') + 1);
  ::setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", port.c_str(), 1);
  auto in_cluster = load_in_cluster(dir.string());
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(in_cluster) << in_cluster.error().message;
  EXPECT_EQ(in_cluster->server, emu.url);
  EXPECT_EQ(in_cluster->default_namespace, "sandboxes");
  EXPECT_EQ(in_cluster->token_file, (dir / "token").string());
  EXPECT_EQ(call(*client_for(*in_cluster), "GET", pods_path).status, 200u);
}

TEST(KubeClient, ServerNameIsVerified) {
  OSB_REQUIRE_NODE();
  // The emulator's certificate names 127.0.0.1, ::1 and localhost only.
  test::k8s_emulator other{{"--tls", "--host", "127.0.0.2"}};
  ASSERT_TRUE(other.ok()) << other.error();
  auto ep = load_kubeconfig(other.kubeconfig);
  ASSERT_TRUE(ep) << ep.error().message;
  ASSERT_EQ(ep->server.rfind("https://127.0.0.2:", 0), 0u) << ep->server;
  auto r = call(*client_for(*ep), "GET", pods_path);
  EXPECT_EQ(r.status, 0u);
  EXPECT_NE(r.body.find("TLS handshake with API server " + ep->server
                        + " failed"),
            std::string::npos)
    << r.body;
  ep->insecure_skip_tls_verify = true;
  EXPECT_EQ(call(*client_for(*ep), "GET", pods_path).status, 200u);
}

TEST(KubeClient, CrudRoundTripAndStaleResourceVersion) {
  OSB_REQUIRE_NODE();
  test::k8s_emulator emu;
  ASSERT_TRUE(emu.ok()) << emu.error();
  auto client = client_for(emu);
  ASSERT_TRUE(client);
  auto created = call(*client, "POST", pods_path, pod_json("crud-1"));
  ASSERT_EQ(created.status, 201u) << created.body;
  auto got = call(*client, "GET", std::string{pods_path} + "/crud-1");
  ASSERT_EQ(got.status, 200u) << got.body;
  EXPECT_EQ(name_of(got.body), "crud-1");
  EXPECT_EQ(call(*client, "POST", pods_path, pod_json("crud-1")).status,
            409u);
  auto patched = call(*client, "PATCH", std::string{pods_path} + "/crud-1",
                      R"({"metadata":{"labels":{"extra":"yes"}}})",
                      "application/merge-patch+json");
  ASSERT_EQ(patched.status, 200u) << patched.body;
  auto doc = parse(patched.body);
  EXPECT_STREQ(doc["metadata"]["labels"]["extra"].GetString(), "yes");
  EXPECT_STREQ(doc["metadata"]["labels"]["app"].GetString(), "kc-test");
  auto deleted = call(*client, "DELETE",
                      std::string{pods_path} + "/crud-1?gracePeriodSeconds=0");
  EXPECT_EQ(deleted.status, 200u) << deleted.body;
  EXPECT_EQ(call(*client, "GET", std::string{pods_path} + "/crud-1").status,
            404u);
  // A PUT with a stale resourceVersion is a conflict.
  created = call(*client, "POST", pods_path, pod_json("occ-1"));
  ASSERT_EQ(created.status, 201u) << created.body;
  ASSERT_EQ(call(*client, "PATCH", std::string{pods_path} + "/occ-1",
                 R"({"metadata":{"annotations":{"a":"1"}}})",
                 "application/merge-patch+json")
              .status,
            200u);
  // The first answer's resourceVersion is now stale.
  ASSERT_FALSE(resource_version(created.body).empty());
  auto put = call(*client, "PUT", std::string{pods_path} + "/occ-1",
                  created.body);
  EXPECT_EQ(put.status, 409u) << put.body;
  EXPECT_NE(put.body.find("the object has been modified"), std::string::npos);
  // Sequential requests go out on the pooled keep-alive connection.
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(call(*client, "GET", pods_path).status, 200u);
  client->shutdown();
  // After shutdown, requests end with status 0 (on the client's thread).
  EXPECT_EQ(call(*client, "GET", pods_path).status, 0u);
}

TEST(KubeClient, TimeoutCancelAndShutdownOnAFrozenServer) {
  OSB_REQUIRE_NODE();
  test::k8s_emulator emu;
  ASSERT_TRUE(emu.ok()) << emu.error();
  auto ep = load_kubeconfig(emu.kubeconfig);
  ASSERT_TRUE(ep);
  ep->request_timeout = 500ms;
  auto client = client_for(*ep);
  ASSERT_EQ(call(*client, "GET", pods_path).status, 200u);
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/freeze").status, 200);
  auto start = std::chrono::steady_clock::now();
  auto r = call(*client, "GET", pods_path);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, 0u);
  EXPECT_EQ(r.body, "no answer from API server " + emu.url + " within 500ms");
  EXPECT_GE(took, 450ms);
  EXPECT_LT(took, 3s);
  // A cancelled watch ends with status 0 "cancelled".
  auto ended = std::make_shared<std::promise<kube_response>>();
  auto w = client->watch(
    std::string{pods_path} + "?watch=1", [](watch_event) {},
    [ended](kube_response r) { ended->set_value(std::move(r)); });
  w->cancel();
  auto end = ended->get_future();
  ASSERT_EQ(end.wait_for(5s), std::future_status::ready);
  auto cancelled = end.get();
  EXPECT_EQ(cancelled.status, 0u);
  EXPECT_EQ(cancelled.body, "cancelled");
  // A request in flight at shutdown ends at once with status 0.
  auto long_wait = *ep;
  long_wait.request_timeout = 60s;
  auto second = client_for(long_wait);
  auto pending = std::make_shared<std::promise<kube_response>>();
  second->request("GET", pods_path, {}, [pending](kube_response r) {
    pending->set_value(std::move(r));
  });
  auto answer = pending->get_future();
  EXPECT_EQ(answer.wait_for(300ms), std::future_status::timeout);
  second->shutdown();
  ASSERT_EQ(answer.wait_for(5s), std::future_status::ready);
  auto aborted = answer.get();
  EXPECT_EQ(aborted.status, 0u);
  EXPECT_EQ(aborted.body, "Kubernetes API client is shut down");
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/unfreeze").status, 200);
  // The timed-out connection was closed, not pooled: the next one works.
  EXPECT_EQ(call(*client, "GET", pods_path).status, 200u);
  // A HEAD answer (the emulator's is 405) carries no body: it completes
  // and the pooled connection stays in step.
  EXPECT_NE(call(*client, "HEAD", pods_path).status, 0u);
  EXPECT_EQ(call(*client, "GET", pods_path).status, 200u);
  client->shutdown();
}

TEST(KubeClient, ThrottledRequestsWaitForRetryAfter) {
  OSB_REQUIRE_NODE();
  test::k8s_emulator emu;
  ASSERT_TRUE(emu.ok()) << emu.error();
  auto client = client_for(emu);
  ASSERT_TRUE(client);
  // One request per second: the second gets 429 with Retry-After: 1.
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/throttle",
                           R"({"qps":1,"burst":1})")
              .status,
            200);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(call(*client, "GET", pods_path).status, 200u);
  auto r = call(*client, "POST", pods_path, pod_json("throttled"));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, 201u) << r.body;
  EXPECT_GE(took, 900ms);
  auto recent = emu.admin_call("GET", "/_emulator/requests").json();
  int posts = 0;
  for (auto& x : recent["recent"].GetArray())
    posts += std::string{x["method"].GetString()} == "POST";
  EXPECT_EQ(posts, 2); // refused once, then created
  // Without Retry-After a 429 is the caller's to handle.
  ASSERT_EQ(emu.admin_call("DELETE", "/_emulator/throttle").status, 200);
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/faults",
                           R"({"verb":"get","count":1,"code":429})")
              .status,
            200);
  EXPECT_EQ(call(*client, "GET", std::string{pods_path} + "/throttled").status,
            429u);
  client->shutdown();
}

TEST(KubeInformer, ListsPagedThenWatchesChanges) {
  OSB_REQUIRE_NODE();
  test::k8s_emulator emu;
  ASSERT_TRUE(emu.ok()) << emu.error();
  bulk_pods(emu, 25);
  auto client = client_for(emu);
  ASSERT_TRUE(client);
  // One pod outside the selector is never seen.
  ASSERT_EQ(call(*client, "POST", pods_path,
                 pod_json("other", R"({"app":"other"})"))
              .status,
            201u);
  auto inf = make_informer(client, pod_options());
  recorder rec;
  inf->start(rec.handler());
  ASSERT_TRUE(eventually([&] { return inf->synced(); }));
  EXPECT_EQ(inf->objects().size(), 25u);
  EXPECT_EQ(rec.count("ADDED"), 25u);
  EXPECT_EQ(name_of(inf->object("kc-7")), "kc-7");
  EXPECT_TRUE(inf->object("other").empty());
  EXPECT_EQ(served(emu, "list pods"), 3); // pages of 10

  ASSERT_EQ(call(*client, "POST", pods_path, pod_json("w-1")).status, 201u);
  EXPECT_TRUE(rec.wait_for("ADDED", "w-1"));
  ASSERT_EQ(call(*client, "PATCH", std::string{pods_path} + "/w-1",
                 R"({"metadata":{"annotations":{"x":"y"}}})",
                 "application/merge-patch+json")
              .status,
            200u);
  EXPECT_TRUE(rec.wait_for("MODIFIED", "w-1"));
  EXPECT_TRUE(eventually([&] {
    return inf->object("w-1").find(R"("x":"y")") != std::string::npos;
  }));
  ASSERT_EQ(call(*client, "DELETE",
                 std::string{pods_path} + "/w-1?gracePeriodSeconds=0")
              .status,
            200u);
  EXPECT_TRUE(rec.wait_for("DELETED", "w-1"));
  EXPECT_TRUE(inf->object("w-1").empty());
  EXPECT_TRUE(inf->last_error().empty());
  inf->stop();
  client->shutdown();
}

TEST(KubeInformer, RelistsAfter410AndReportsWhatChanged) {
  OSB_REQUIRE_NODE();
  test::k8s_emulator emu;
  ASSERT_TRUE(emu.ok()) << emu.error();
  bulk_pods(emu, 5);
  auto client = client_for(emu);
  ASSERT_TRUE(client);
  auto inf = make_informer(client, pod_options());
  recorder rec;
  inf->start(rec.handler());
  ASSERT_TRUE(eventually([&] { return inf->synced(); }));
  // The informer's watch breaks and cannot come back while we change
  // things and compact the history behind its resourceVersion.
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/faults",
                           R"({"verb":"watch","count":1000,"code":503})")
              .status,
            200);
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/close-watches").status, 200);
  ASSERT_TRUE(eventually([&] { return !inf->last_error().empty(); }));
  EXPECT_NE(inf->last_error().find("503"), std::string::npos)
    << inf->last_error();
  ASSERT_EQ(call(*client, "DELETE",
                 std::string{pods_path} + "/kc-0?gracePeriodSeconds=0")
              .status,
            200u);
  ASSERT_EQ(call(*client, "PATCH", std::string{pods_path} + "/kc-1",
                 R"({"metadata":{"annotations":{"changed":"yes"}}})",
                 "application/merge-patch+json")
              .status,
            200u);
  ASSERT_EQ(call(*client, "POST", pods_path, pod_json("late")).status, 201u);
  EXPECT_FALSE(rec.saw("DELETED", "kc-0"));
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/compact").status, 200);
  auto lists = served(emu, "list pods");
  ASSERT_EQ(emu.admin_call("DELETE", "/_emulator/faults").status, 200);
  // The resumed watch gets 410 Expired, the informer lists again.
  EXPECT_TRUE(rec.wait_for("DELETED", "kc-0"));
  EXPECT_TRUE(rec.wait_for("MODIFIED", "kc-1"));
  EXPECT_TRUE(rec.wait_for("ADDED", "late"));
  EXPECT_EQ(served(emu, "list pods"), lists + 1);
  EXPECT_TRUE(inf->object("kc-0").empty());
  EXPECT_NE(inf->object("kc-1").find("changed"), std::string::npos);
  EXPECT_EQ(inf->objects().size(), 5u);
  EXPECT_TRUE(eventually([&] { return inf->last_error().empty(); }));
  // A watch refused with HTTP 410 also re-lists.
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/faults",
                           R"({"verb":"watch","count":1,"code":410})")
              .status,
            200);
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/close-watches").status, 200);
  EXPECT_TRUE(eventually(
    [&] { return served(emu, "list pods") == lists + 2; }));
  inf->stop();
  client->shutdown();
}

TEST(KubeInformer, ResumesAfterApiServerDownAndUp) {
  OSB_REQUIRE_NODE();
  // No periodic bookmarks and no pod lifecycle (pods stay unscheduled):
  // the error clears when the watch is accepted, not when an event comes.
  test::k8s_emulator emu{
    {"--bookmark-interval-ms", "0", "--delays", "scheduleMs=600000"}};
  ASSERT_TRUE(emu.ok()) << emu.error();
  bulk_pods(emu, 3);
  auto client = client_for(emu);
  ASSERT_TRUE(client);
  auto inf = make_informer(client, pod_options());
  recorder rec;
  inf->start(rec.handler());
  ASSERT_TRUE(eventually([&] { return inf->synced(); }));
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/down").status, 200);
  // First the broken watch, then refused reconnects.
  EXPECT_TRUE(eventually([&] {
    return inf->last_error().find("API server " + emu.url + " unreachable")
           != std::string::npos;
  })) << inf->last_error();
  EXPECT_EQ(inf->objects().size(), 3u); // the cache stays
  ASSERT_EQ(emu.admin_call("POST", "/_emulator/up").status, 200);
  EXPECT_TRUE(eventually([&] { return inf->last_error().empty(); }));
  ASSERT_EQ(call(*client, "POST", pods_path, pod_json("after")).status, 201u);
  EXPECT_TRUE(rec.wait_for("ADDED", "after"));
  // Resumed from its resourceVersion: no second list.
  EXPECT_EQ(served(emu, "list pods"), 1);
  inf->stop();
  client->shutdown();
}

TEST(KubeClient, RateLimiterSpacesRequests) {
  OSB_REQUIRE_NODE();
  test::k8s_emulator emu;
  ASSERT_TRUE(emu.ok()) << emu.error();
  auto ep = load_kubeconfig(emu.kubeconfig);
  ASSERT_TRUE(ep);
  auto run = [&](rate_limits limits) {
    auto client = client_for(*ep, limits);
    std::vector<std::future<kube_response>> answers;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) {
      auto promise = std::make_shared<std::promise<kube_response>>();
      answers.push_back(promise->get_future());
      client->request("GET", pods_path, {}, [promise](kube_response r) {
        promise->set_value(std::move(r));
      });
    }
    for (auto& f : answers)
      EXPECT_EQ(f.get().status, 200u);
    client->shutdown();
    return std::chrono::steady_clock::now() - start;
  };
  // 20 reads at 10/s with a burst of 1: the last goes out after 1.9 s.
  auto limited = run(rate_limits{10, 1, 0, 0});
  EXPECT_GE(limited, 1850ms);
  EXPECT_LT(limited, 5s);
  // Writes have their own bucket; unlimited reads are not delayed.
  auto free = run(rate_limits{0, 0, 1, 1});
  EXPECT_LT(free, 1500ms);
}

TEST(KubeInformer, OneWatchConnectionForAThousandPods) {
  OSB_REQUIRE_NODE();
  test::k8s_emulator emu{{"--no-events"}};
  ASSERT_TRUE(emu.ok()) << emu.error();
  bulk_pods(emu, 1000);
  auto client = client_for(emu);
  ASSERT_TRUE(client);
  auto opts = pod_options();
  opts.page_size = 500;
  auto inf = make_informer(client, opts);
  recorder rec;
  inf->start(rec.handler());
  ASSERT_TRUE(eventually([&] { return inf->synced(); }));
  EXPECT_EQ(inf->objects().size(), 1000u);
  bulk_pods(emu, 10, "more-");
  EXPECT_TRUE(rec.wait_for("ADDED", "more-9"));
  EXPECT_EQ(inf->objects().size(), 1010u);
  // snapshot() shares the cached texts instead of copying them.
  auto shared = inf->snapshot();
  ASSERT_EQ(shared.size(), 1010u);
  EXPECT_EQ(*shared.front(), inf->objects().front());
  EXPECT_EQ(inf->snapshot().front().get(), shared.front().get());
  auto watches = emu.admin_call("GET", "/_emulator/watches").json();
  ASSERT_TRUE(watches.IsObject());
  EXPECT_EQ(watches["watches"].Size(), 1u);
  EXPECT_EQ(served(emu, "watch pods"), 1);
  EXPECT_EQ(served(emu, "list pods"), 2);
  inf->stop();
  client->shutdown();
}
