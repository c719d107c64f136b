#pragma once

// An in-memory API server for the unit tests of the Kubernetes runtime: a
// kube_client whose answers are queued until `run` (as a real client
// answers on its own thread, never on the caller's stack), and an informer
// whose cache and events the test drives.

#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "runtimes/kubernetes/kube_api.hpp"

namespace osb::runtimes::kubernetes::test {

/// One request as the fake client saw it.
struct seen_request {
  std::string method;
  std::string path;
  std::string body;
};

class fake_informer : public informer {
public:
  void start(informer_handler on_change) override {
    std::lock_guard guard{mtx_};
    handler_ = std::move(on_change);
  }
  bool synced() const override {
    std::lock_guard guard{mtx_};
    return synced_;
  }
  std::string last_error() const override {
    std::lock_guard guard{mtx_};
    return error_;
  }
  std::vector<std::string> objects() const override {
    std::lock_guard guard{mtx_};
    std::vector<std::string> xs;
    for (auto& [k, v] : objects_)
      xs.push_back(v);
    return xs;
  }
  std::string object(const std::string& name) const override {
    std::lock_guard guard{mtx_};
    auto i = objects_.find(name);
    return i == objects_.end() ? std::string{} : i->second;
  }
  void stop() override {
    std::lock_guard guard{mtx_};
    handler_ = nullptr;
  }

  /// Test side: the cache changes and the handler hears of it.
  void emit(const std::string& type, const std::string& name,
            const std::string& given) {
    informer_handler h;
    std::string json;
    {
      std::lock_guard guard{mtx_};
      // Every cached object has a resourceVersion, as from an API server.
      json = with_version(given, ++rv_);
      if (type == "DELETED")
        objects_.erase(name);
      else
        objects_[name] = json;
      h = handler_;
    }
    if (h)
      h(watch_event{type, json});
  }
  void set_synced(bool x) {
    std::lock_guard guard{mtx_};
    synced_ = x;
  }
  void set_error(std::string x) {
    std::lock_guard guard{mtx_};
    error_ = std::move(x);
  }

  /// `json` with metadata.resourceVersion set to `rv` (unchanged when it
  /// is no object with metadata).
  static std::string with_version(const std::string& json, int64_t rv) {
    rapidjson::Document doc;
    doc.Parse(json.c_str());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("metadata")
        || !doc["metadata"].IsObject())
      return json;
    auto& meta = doc["metadata"];
    auto text = std::to_string(rv);
    rapidjson::Value v{text.c_str(),
                       static_cast<rapidjson::SizeType>(text.size()),
                       doc.GetAllocator()};
    if (meta.HasMember("resourceVersion"))
      meta["resourceVersion"] = v;
    else
      meta.AddMember("resourceVersion", v, doc.GetAllocator());
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> w{out};
    doc.Accept(w);
    return {out.GetString(), out.GetSize()};
  }

private:
  mutable std::mutex mtx_;
  int64_t rv_ = 0;
  informer_handler handler_;
  std::map<std::string, std::string> objects_;
  bool synced_ = true;
  std::string error_;
};

/// Answers: by default an API server that creates what is POSTed (201,
/// and the informer hears ADDED), deletes (200, or 404 for what it does not
/// have) and knows namespace "default". `answer` overrides it per request.
class fake_client : public kube_client {
public:
  explicit fake_client(std::shared_ptr<fake_informer> pods)
    : pods_(std::move(pods)) {
    // nop
  }

  void request(std::string method, std::string path, std::string body,
               std::function<void(kube_response)> cb,
               std::string = {}) override {
    std::lock_guard guard{mtx_};
    seen.push_back({method, path, body});
    queue_.push_back([this, method, path, body, cb] {
      kube_response r;
      if (answer)
        r = answer(method, path, body);
      if (r.status == 0 && r.body.empty())
        r = serve(method, path, body);
      cb(std::move(r));
    });
  }

  std::shared_ptr<watch_handle>
  watch(std::string, std::function<void(watch_event)>,
        std::function<void(kube_response)>) override {
    return nullptr;
  }

  void shutdown() override {
  }

  /// Delivers every queued answer (and those queued meanwhile).
  void run() {
    for (;;) {
      std::function<void()> f;
      {
        std::lock_guard guard{mtx_};
        if (queue_.empty())
          return;
        f = std::move(queue_.front());
        queue_.pop_front();
      }
      f();
    }
  }

  /// Requests by method and path prefix.
  size_t count(const std::string& method, const std::string& prefix) const {
    std::lock_guard guard{mtx_};
    size_t n = 0;
    for (auto& r : seen)
      if (r.method == method && r.path.rfind(prefix, 0) == 0)
        ++n;
    return n;
  }

  /// Overrides an answer; {0, ""} = the default behaviour.
  std::function<kube_response(const std::string&, const std::string&,
                              const std::string&)>
    answer;
  std::vector<seen_request> seen;

private:
  static std::string name_of(const std::string& json) {
    rapidjson::Document doc;
    doc.Parse(json.c_str());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("metadata"))
      return {};
    return doc["metadata"]["name"].GetString();
  }

  bool has_pending(const std::string& name) const {
    std::lock_guard guard{mtx_};
    return pending_.count(name) > 0;
  }

  kube_response serve(const std::string& method, const std::string& path,
                      const std::string& body) {
    if (method == "GET" && path == "/api/v1/namespaces/default")
      return {200, R"({"kind":"Namespace"})"};
    if (method == "GET")
      return {404, R"({"kind":"Status","message":"not found"})"};
    auto pods = path.find("/pods") != std::string::npos;
    if (method == "POST") {
      auto name = name_of(body);
      if (pods) {
        if (!pods_->object(name).empty() || has_pending(name))
          return {409, R"({"kind":"Status","message":"pods \")" + name
                         + R"(\" already exists"})"};
        // The watch brings it after the answer, as from a real server.
        std::lock_guard guard{mtx_};
        pending_.insert(name);
        queue_.push_back([this, name, body] {
          {
            std::lock_guard guard{mtx_};
            pending_.erase(name);
          }
          pods_->emit("ADDED", name, body);
        });
      }
      return {201, body};
    }
    if (method == "DELETE") {
      auto name = path.substr(path.rfind('/') + 1);
      if (!pods)
        return {200, "{}"};
      auto json = pods_->object(name);
      if (json.empty())
        return {404, R"({"kind":"Status","message":"pods \")" + name
                       + R"(\" not found"})"};
      pods_->emit("DELETED", name, json);
      return {200, json};
    }
    if (method == "PATCH") {
      // Not merged: the tests look at the request.
      auto json = pods_->object(path.substr(path.rfind('/') + 1));
      return json.empty() ? kube_response{404, "{}"}
                          : kube_response{200, json};
    }
    return {405, "{}"};
  }

  std::shared_ptr<fake_informer> pods_;
  mutable std::mutex mtx_;
  std::deque<std::function<void()>> queue_;
  std::set<std::string> pending_;
};

} // namespace osb::runtimes::kubernetes::test
