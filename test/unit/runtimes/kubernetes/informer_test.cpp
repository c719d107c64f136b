// Unit tests of the informer (runtimes/kubernetes/informer.cpp) on a
// scripted client: the test answers each request and drives each watch by
// hand, so every step is deterministic (no threads, no sleeps).

#include "runtimes/kubernetes/kube_api.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <utility>
#include <vector>

using namespace osb;
using namespace osb::runtimes::kubernetes;

namespace {

/// A client whose requests, watches and timers wait for the test.
class scripted_client : public kube_client {
public:
  struct pending_request {
    std::string method;
    std::string path;
    std::function<void(kube_response)> cb;
  };

  struct pending_watch {
    std::string path;
    std::function<void()> on_open;
    std::function<void(watch_event)> on_event;
    std::function<void(kube_response)> on_end;
    bool cancelled = false;
  };

  class handle : public watch_handle {
  public:
    explicit handle(pending_watch* w) : w_(w) {
      // nop
    }
    void cancel() override {
      w_->cancelled = true;
    }

  private:
    pending_watch* w_;
  };

  void request(std::string method, std::string path, std::string,
               std::function<void(kube_response)> cb, std::string) override {
    requests.push_back({std::move(method), std::move(path), std::move(cb)});
  }

  std::shared_ptr<watch_handle>
  watch(std::string path, std::function<void(watch_event)> on_event,
        std::function<void(kube_response)> on_end) override {
    return open_watch(std::move(path), nullptr, std::move(on_event),
                      std::move(on_end));
  }

  std::shared_ptr<watch_handle>
  open_watch(std::string path, std::function<void()> on_open,
             std::function<void(watch_event)> on_event,
             std::function<void(kube_response)> on_end) override {
    watches.push_back({std::move(path), std::move(on_open),
                       std::move(on_event), std::move(on_end)});
    return std::make_shared<handle>(&watches.back());
  }

  void shutdown() override {
    // nop
  }

  std::string server() const override {
    return "https://api.test:6443";
  }

  void after(std::chrono::milliseconds delay,
             std::function<void()> fn) override {
    delays.push_back(delay);
    timers.push_back(std::move(fn));
  }

  /// Runs the timers due so far (not the ones they start).
  void run_timers() {
    auto due = std::move(timers);
    timers.clear();
    for (auto& fn : due)
      fn();
  }

  /// Answers the oldest request.
  std::string answer(unsigned status, const std::string& body) {
    EXPECT_FALSE(requests.empty());
    if (requests.empty())
      return {};
    auto r = std::move(requests.front());
    requests.pop_front();
    r.cb(kube_response{status, body});
    return r.path;
  }

  std::deque<pending_request> requests;
  std::deque<pending_watch> watches; // deque: handles point into it
  std::vector<std::function<void()>> timers;
  std::vector<std::chrono::milliseconds> delays;
};

std::string pod(const std::string& name, int rv) {
  return R"({"metadata":{"name":")" + name + R"(","resourceVersion":")"
         + std::to_string(rv) + R"("}})";
}

std::string event(const std::string& type, const std::string& obj) {
  return R"({"type":")" + type + R"(","object":)" + obj + "}";
}

struct fixture {
  fixture() {
    informer_options opts;
    opts.collection = "/api/v1/namespaces/ns/pods";
    opts.label_selector = "app=x";
    opts.page_size = 2;
    opts.watch_timeout_seconds = 60;
    inf = make_informer(client, opts);
    inf->start([this](const watch_event& ev) {
      seen.push_back(ev.type + " " + name_of(ev.object));
    });
  }

  static std::string name_of(const std::string& obj) {
    auto at = obj.find(R"("name":")");
    return at == std::string::npos
             ? std::string{}
             : obj.substr(at + 8, obj.find('"', at + 8) - at - 8);
  }

  /// Lists a, b (page 1) and c (page 2) at resourceVersion 10.
  void initial_list() {
    client->run_timers();
    auto p1 = client->answer(
      200, R"({"metadata":{"continue":"t1"},"items":[)" + pod("a", 3) + ","
             + pod("b", 4) + "]}");
    EXPECT_EQ(p1, "/api/v1/namespaces/ns/pods?limit=2&labelSelector=app%3Dx");
    auto p2 = client->answer(
      200, R"({"metadata":{"resourceVersion":"10"},"items":[)" + pod("c", 5)
             + "]}");
    EXPECT_EQ(p2, "/api/v1/namespaces/ns/pods?limit=2&labelSelector=app%3Dx"
                  "&continue=t1");
  }

  scripted_client::pending_watch& last_watch() {
    return client->watches.back();
  }

  std::shared_ptr<scripted_client> client
    = std::make_shared<scripted_client>();
  std::shared_ptr<informer> inf;
  std::vector<std::string> seen;
};

using strings = std::vector<std::string>;

} // namespace

TEST(KubeInformerUnit, PagedListThenWatchFromItsResourceVersion) {
  fixture f;
  EXPECT_FALSE(f.inf->synced());
  f.initial_list();
  EXPECT_TRUE(f.inf->synced());
  EXPECT_EQ(f.seen, (strings{"ADDED a", "ADDED b", "ADDED c"}));
  EXPECT_EQ(f.inf->objects().size(), 3u);
  ASSERT_EQ(f.client->watches.size(), 1u);
  EXPECT_EQ(f.last_watch().path,
            "/api/v1/namespaces/ns/pods?watch=1&allowWatchBookmarks=true"
            "&resourceVersion=10&timeoutSeconds=60&labelSelector=app%3Dx");
  f.last_watch().on_open();
  f.last_watch().on_event({"MODIFIED", pod("b", 11)});
  f.last_watch().on_event({"ADDED", pod("d", 12)});
  f.last_watch().on_event({"DELETED", pod("a", 13)});
  f.last_watch().on_event({"BOOKMARK", pod("", 20)});
  EXPECT_EQ(f.seen, (strings{"ADDED a", "ADDED b", "ADDED c", "MODIFIED b",
                             "ADDED d", "DELETED a"}));
  EXPECT_TRUE(f.inf->object("a").empty());
  EXPECT_EQ(f.inf->object("b"), pod("b", 11));
  auto snap = f.inf->snapshot();
  ASSERT_EQ(snap.size(), 3u); // b, c, d by name
  EXPECT_EQ(*snap[0], pod("b", 11));
  EXPECT_EQ(*snap[2], pod("d", 12));
  // The server ends the watch (timeoutSeconds): resumed at once from the
  // bookmark's resourceVersion.
  f.last_watch().on_end({200, {}});
  ASSERT_EQ(f.client->watches.size(), 2u);
  EXPECT_NE(f.last_watch().path.find("&resourceVersion=20&"),
            std::string::npos);
  f.inf->stop();
  EXPECT_TRUE(f.last_watch().cancelled);
}

TEST(KubeInformerUnit, BrokenWatchResumesWithBackoffAndReportsTheServer) {
  fixture f;
  f.initial_list();
  f.last_watch().on_event({"MODIFIED", pod("c", 15)});
  f.last_watch().on_end({0, "watch on API server https://api.test:6443 "
                            "broken: end of stream"});
  EXPECT_EQ(f.inf->last_error(),
            "watch on API server https://api.test:6443 broken: end of stream");
  // Refused reconnects double the delay: 200, 400, ...
  f.client->run_timers();
  ASSERT_EQ(f.client->watches.size(), 2u);
  EXPECT_NE(f.last_watch().path.find("&resourceVersion=15&"),
            std::string::npos);
  f.last_watch().on_end({0, "API server https://api.test:6443 unreachable: "
                            "Connection refused"});
  EXPECT_EQ(f.inf->last_error(), "API server https://api.test:6443 "
                                 "unreachable: Connection refused");
  f.client->run_timers();
  ASSERT_EQ(f.client->watches.size(), 3u);
  f.last_watch().on_end({503, R"({"kind":"Status","message":"overloaded"})"});
  EXPECT_EQ(f.inf->last_error(),
            "API server https://api.test:6443 answered 503 to WATCH "
            "/api/v1/namespaces/ns/pods: overloaded");
  ASSERT_GE(f.client->delays.size(), 4u);
  EXPECT_EQ(f.client->delays[1].count(), 200);
  EXPECT_EQ(f.client->delays[2].count(), 400);
  EXPECT_EQ(f.client->delays[3].count(), 800);
  // Accepted again: the error clears before any event; the cache stayed.
  f.client->run_timers();
  f.last_watch().on_open();
  EXPECT_TRUE(f.inf->last_error().empty());
  EXPECT_EQ(f.inf->objects().size(), 3u);
  EXPECT_TRUE(f.client->requests.empty()); // no second list
}

TEST(KubeInformerUnit, GoneRelistsAndReportsTheDifference) {
  fixture f;
  f.initial_list();
  // An ERROR event with a 410 Status, then the stream ends.
  f.last_watch().on_event(
    {"ERROR", R"({"kind":"Status","code":410,"reason":"Expired",)"
              R"x("message":"too old resource version: 10 (50)"})x"});
  f.last_watch().on_end({200, {}});
  ASSERT_EQ(f.client->requests.size(), 1u);
  f.seen.clear();
  // a vanished, b unchanged, c changed, d new (two pages).
  auto p1 = f.client->answer(
    200, R"({"metadata":{"continue":"t2"},"items":[)" + pod("b", 4) + ","
           + pod("c", 55) + "]}");
  EXPECT_EQ(p1.find("continue"), std::string::npos); // a fresh list
  f.client->answer(200, R"({"metadata":{"resourceVersion":"60"},"items":[)"
                          + pod("d", 56) + "]}");
  EXPECT_EQ(f.seen, (strings{"DELETED a", "MODIFIED c", "ADDED d"}));
  EXPECT_EQ(f.inf->objects().size(), 3u);
  EXPECT_EQ(f.inf->object("c"), pod("c", 55));
  ASSERT_EQ(f.client->watches.size(), 2u);
  EXPECT_NE(f.last_watch().path.find("&resourceVersion=60&"),
            std::string::npos);
  // A watch refused with HTTP 410 lists again too.
  f.last_watch().on_end({410, R"({"kind":"Status","code":410})"});
  ASSERT_EQ(f.client->requests.size(), 1u);
  // A continue token that expired mid-list (410) restarts the list.
  f.client->answer(200, R"({"metadata":{"continue":"t3"},"items":[)"
                          + pod("b", 4) + "]}");
  auto expired = f.client->answer(410, R"({"kind":"Status","code":410})");
  EXPECT_NE(expired.find("continue=t3"), std::string::npos);
  ASSERT_EQ(f.client->requests.size(), 1u);
  EXPECT_EQ(f.client->requests.front().path.find("continue"),
            std::string::npos);
  f.inf->stop();
}
