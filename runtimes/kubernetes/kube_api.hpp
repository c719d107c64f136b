#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/expected.hpp"

/// The Kubernetes API as the Kubernetes runtime sees it: an asynchronous
/// client of one API server (plain HTTP, or HTTPS with the kubeconfig's CA,
/// client certificate or bearer token), client-side rate limits, and an
/// informer that keeps a list+watch cache of the pods of one label
/// selector. No Beast type shows here; nothing above runtimes/kubernetes/
/// includes this header.
namespace osb::runtimes::kubernetes {

/// How to reach and authenticate to one API server (from a kubeconfig or
/// the in-cluster service account).
struct kube_endpoint {
  /// "https://10.0.0.1:6443" or "http://127.0.0.1:8080".
  std::string server;
  /// PEM of the CA that signs the server's certificate; empty = system CAs.
  std::string ca_pem;
  /// PEM of a client certificate and its key; empty = none.
  std::string client_cert_pem;
  std::string client_key_pem;
  /// Bearer token; empty = none.
  std::string token;
  /// File the token is re-read from (the in-cluster token rotates); empty =
  /// `token` is fixed.
  std::string token_file;
  bool insecure_skip_tls_verify = false;
  /// The namespace of the kubeconfig's context (or the service account's);
  /// empty = not given.
  std::string default_namespace;
  /// How long a request may take in all (connect, send, answer), and how
  /// long connecting (with the TLS handshake) may take. Watches are bounded
  /// by their timeoutSeconds instead.
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::milliseconds connect_timeout{10000};
};

/// Reads a kubeconfig (YAML or JSON): the current context, or `context`
/// when given; inline *-data and file paths both work (relative to the
/// kubeconfig's folder). Errors are `invalid` and name the file and what is
/// wrong ("kubeconfig /x: context 'a' not found").
expected<kube_endpoint> load_kubeconfig(const std::string& path,
                                        const std::string& context = {});

/// The in-cluster configuration: KUBERNETES_SERVICE_HOST/_PORT and
/// /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}
/// (`dir` overrides the folder for tests).
expected<kube_endpoint> load_in_cluster(
  const std::string& dir = "/var/run/secrets/kubernetes.io/serviceaccount");

/// Client-side rate limits (token buckets, as client-go's QPS/burst):
/// reads are GET/LIST/WATCH, writes everything else. 0 = unlimited.
struct rate_limits {
  double read_qps = 0;
  int read_burst = 0;
  double write_qps = 0;
  int write_burst = 0;
};

/// One answer of the API server. `status` 0 = no answer (connection
/// refused, TLS failure, timeout): `body` then says what happened.
struct kube_response {
  unsigned status = 0;
  std::string body;
};

/// One event of a watch stream: "ADDED", "MODIFIED", "DELETED", "BOOKMARK"
/// or "ERROR", and the object as JSON text.
struct watch_event {
  std::string type;
  std::string object;
};

/// A watch in progress; `cancel` ends it (its `on_end` then runs with
/// status 0 and body "cancelled").
class watch_handle {
public:
  virtual ~watch_handle() = default;
  virtual void cancel() = 0;
};

/// An asynchronous client of one API server. Thread-safe; callbacks run on
/// the client's I/O thread, never on the caller's stack; each runs once
/// (`on_event` once per event). Requests wait for the rate limiter, never
/// block the caller.
class kube_client {
public:
  virtual ~kube_client() = default;

  /// One request; `path` includes the query ("/api/v1/namespaces/ns/pods?
  /// labelSelector=a%3Db"). `content_type` defaults to application/json
  /// (merge patches pass "application/merge-patch+json").
  virtual void request(std::string method, std::string path,
                       std::string body,
                       std::function<void(kube_response)> cb,
                       std::string content_type = {})
    = 0;

  /// A watch (`path` carries watch=1, resourceVersion, allowWatchBookmarks,
  /// timeoutSeconds). `on_event` gets every event in order; `on_end` runs
  /// once when the stream ends: status 200 for a clean end, the error
  /// status of a refused watch (e.g. 410), or 0 for a broken connection.
  virtual std::shared_ptr<watch_handle>
  watch(std::string path, std::function<void(watch_event)> on_event,
        std::function<void(kube_response)> on_end)
    = 0;

  /// Stops I/O: requests in flight and later end with status 0.
  virtual void shutdown() = 0;

  // Added by the client's implementation; not pure, so that test fakes need
  // not implement them.

  /// As `watch`; `on_open` runs once when the server accepted the watch
  /// (status 200, before any event), so that a reconnect is known to work
  /// before the first event or bookmark. This default (for fakes) never
  /// runs `on_open`.
  virtual std::shared_ptr<watch_handle>
  open_watch(std::string path, std::function<void()> on_open,
             std::function<void(watch_event)> on_event,
             std::function<void(kube_response)> on_end) {
    (void) on_open;
    return watch(std::move(path), std::move(on_event), std::move(on_end));
  }

  /// The API server's URL ("https://10.0.0.1:6443"), for messages.
  virtual std::string server() const {
    return {};
  }

  /// Runs `fn` once after `delay` on the client's I/O thread (timers of
  /// the informer's backoff); never after shutdown. This default, for
  /// fakes, runs it on a thread of its own.
  virtual void after(std::chrono::milliseconds delay,
                     std::function<void()> fn) {
    std::thread{[delay, fn = std::move(fn)] {
      std::this_thread::sleep_for(delay);
      fn();
    }}.detach();
  }
};

using kube_client_ptr = std::shared_ptr<kube_client>;

/// The client of `endpoint` with its own I/O thread.
expected<kube_client_ptr> make_kube_client(kube_endpoint endpoint,
                                           rate_limits limits);

/// What the informer reports.
struct informer_options {
  /// "/api/v1/namespaces/<ns>/pods" (the collection, without a query).
  std::string collection;
  /// labelSelector of the list and the watch; empty = everything.
  std::string label_selector;
  /// Page size of the initial list (limit/continue); 0 = unpaged.
  int page_size = 500;
  /// timeoutSeconds of each watch request (the server ends it, we resume
  /// from the last resourceVersion).
  int watch_timeout_seconds = 300;
  /// Delay before reconnecting after a failure, doubling up to the max.
  std::chrono::milliseconds backoff_initial{200};
  std::chrono::milliseconds backoff_max{5000};
};

/// A change the informer saw: "ADDED", "MODIFIED", "DELETED" and the
/// object's JSON text; after a re-list, objects that vanished meanwhile
/// are reported DELETED.
using informer_handler = std::function<void(const watch_event&)>;

/// A list+watch cache of one collection: lists (paged), then watches from
/// the list's resourceVersion with bookmarks; on 410 Gone it lists again;
/// on a broken connection it resumes with backoff. One watch connection per
/// informer, however many objects.
class informer {
public:
  virtual ~informer() = default;
  /// Starts listing; `on_change` runs on the client's I/O thread.
  virtual void start(informer_handler on_change) = 0;
  /// True once the first list completed (the cache is complete).
  virtual bool synced() const = 0;
  /// Empty while the API server answers; else what the last failure was
  /// ("API server https://x:6443 unreachable: connection refused").
  virtual std::string last_error() const = 0;
  /// The cached objects (JSON texts), by name. Thread-safe copy.
  virtual std::vector<std::string> objects() const = 0;
  /// The object named `name`, empty if none is cached.
  virtual std::string object(const std::string& name) const = 0;
  /// Stops the watch; no `on_change` runs after this returns.
  virtual void stop() = 0;

  // Added by the implementation; not pure, so that fakes need not have it.

  /// The cached objects by name without copying their texts (immutable,
  /// shared with the cache): 10,000 pods are ~20 MB of JSON, which
  /// `objects()` copies. The default copies through `objects()`.
  virtual std::vector<std::shared_ptr<const std::string>> snapshot() const {
    std::vector<std::shared_ptr<const std::string>> result;
    for (auto& x : objects())
      result.push_back(std::make_shared<const std::string>(std::move(x)));
    return result;
  }
};

std::shared_ptr<informer> make_informer(kube_client_ptr client,
                                        informer_options opts);

} // namespace osb::runtimes::kubernetes
