// The list+watch cache of one collection (client-go's reflector and store,
// in small): a paged LIST, then a WATCH from its resourceVersion with
// bookmarks; a re-list on 410 Gone that reports what changed meanwhile; a
// resumed watch with backoff after a broken connection.

#include "base/json.hpp"
#include "base/log.hpp"
#include "runtimes/kubernetes/kube_internal.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <map>
#include <mutex>

namespace osb::runtimes::kubernetes {

namespace {

constexpr const char* component = "kubernetes";

std::string member_string(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject())
    return {};
  auto it = v.FindMember(key);
  if (it == v.MemberEnd() || !it->value.IsString())
    return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

const rapidjson::Value* member(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject())
    return nullptr;
  auto it = v.FindMember(key);
  return it == v.MemberEnd() ? nullptr : &it->value;
}

std::string to_text(const rapidjson::Value& v) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> writer{out};
  v.Accept(writer);
  return {out.GetString(), out.GetSize()};
}

/// metadata.name and metadata.resourceVersion of an object.
struct meta {
  std::string name;
  std::string resource_version;
};

meta meta_of(const rapidjson::Value& obj) {
  meta result;
  if (auto* m = member(obj, "metadata")) {
    result.name = member_string(*m, "name");
    result.resource_version = member_string(*m, "resourceVersion");
  }
  return result;
}

/// "message" of a Status, else the text itself (shortened).
std::string status_message(const std::string& body) {
  rapidjson::Document doc;
  if (base::parse_json(doc, body) == base::json_status::ok) {
    if (auto msg = member_string(doc, "message"); !msg.empty())
      return msg;
  }
  return body.size() > 200 ? body.substr(0, 200) + "..." : body;
}

class informer_impl : public informer,
                      public std::enable_shared_from_this<informer_impl> {
public:
  informer_impl(kube_client_ptr client, informer_options opts)
    : client_(std::move(client)),
      opts_(std::move(opts)),
      backoff_(opts_.backoff_initial) {
    // nop
  }

  void start(informer_handler on_change) override {
    {
      std::lock_guard guard{cb_mtx_};
      handler_ = std::move(on_change);
    }
    auto self = shared_from_this();
    // Callbacks run on the client's thread; start there as well.
    client_->after(std::chrono::milliseconds{0}, [self] { self->list({}); });
  }

  bool synced() const override {
    std::lock_guard guard{mtx_};
    return synced_;
  }

  std::string last_error() const override {
    std::lock_guard guard{mtx_};
    return last_error_;
  }

  std::vector<std::string> objects() const override {
    std::lock_guard guard{mtx_};
    std::vector<std::string> result;
    result.reserve(cache_.size());
    for (auto& [name, entry] : cache_)
      result.push_back(*entry.json);
    return result;
  }

  std::string object(const std::string& name) const override {
    std::lock_guard guard{mtx_};
    auto it = cache_.find(name);
    return it == cache_.end() ? std::string{} : *it->second.json;
  }

  std::vector<std::shared_ptr<const std::string>> snapshot() const override {
    std::lock_guard guard{mtx_};
    std::vector<std::shared_ptr<const std::string>> result;
    result.reserve(cache_.size());
    for (auto& [name, entry] : cache_)
      result.push_back(entry.json);
    return result;
  }

  void stop() override {
    std::shared_ptr<watch_handle> w;
    {
      // Waits for a handler running on the I/O thread; a handler that
      // stops us re-enters (recursive mutex).
      std::lock_guard cb_guard{cb_mtx_};
      std::lock_guard guard{mtx_};
      stopped_ = true;
      handler_ = nullptr;
      w = std::move(watch_);
    }
    if (w)
      w->cancel();
  }

private:
  struct entry {
    std::string resource_version;
    /// Shared with snapshot(): never changed once cached.
    std::shared_ptr<const std::string> json;
  };

  bool stopped() const {
    std::lock_guard guard{mtx_};
    return stopped_;
  }

  void emit(const std::string& type, const std::string& json) {
    std::lock_guard guard{cb_mtx_};
    if (handler_)
      handler_(watch_event{type, json});
  }

  std::string server_name() const {
    auto s = client_->server();
    return s.empty() ? std::string{"API server"} : "API server " + s;
  }

  void set_error(std::string what) {
    std::lock_guard guard{mtx_};
    if (what != last_error_)
      OSB_WARN(component, "", "", what);
    last_error_ = std::move(what);
  }

  void clear_error() {
    std::lock_guard guard{mtx_};
    if (!last_error_.empty())
      OSB_INFO(component, "", "",
               server_name() << " answers again on " << opts_.collection);
    last_error_.clear();
  }

  /// What a failed answer means, naming the server.
  std::string describe(const char* what, const kube_response& r) const {
    if (r.status == 0)
      return r.body.find("API server") != std::string::npos
               ? r.body
               : server_name() + ": " + r.body;
    return server_name() + " answered " + std::to_string(r.status) + " to "
           + what + " " + opts_.collection + ": " + status_message(r.body);
  }

  /// Runs `fn` after the current backoff, doubling it.
  void retry_later(std::function<void()> fn) {
    auto delay = backoff_;
    backoff_ = std::min(backoff_ * 2, opts_.backoff_max);
    auto self = shared_from_this();
    client_->after(delay, [self, fn = std::move(fn)] {
      if (!self->stopped())
        fn();
    });
  }

  std::string selector_query() const {
    return opts_.label_selector.empty()
             ? std::string{}
             : "&labelSelector=" + query_escape(opts_.label_selector);
  }

  // -- list ------------------------------------------------------------------

  void list(std::string continue_token) {
    if (stopped())
      return;
    paging_ = !continue_token.empty();
    if (!paging_)
      listing_.clear();
    std::string path = opts_.collection + "?";
    if (opts_.page_size > 0)
      path += "limit=" + std::to_string(opts_.page_size);
    path += selector_query();
    if (!continue_token.empty())
      path += "&continue=" + query_escape(continue_token);
    auto self = shared_from_this();
    client_->request("GET", path, {}, [self](kube_response r) {
      self->on_list(std::move(r));
    });
  }

  void on_list(kube_response r) {
    if (stopped())
      return;
    if (r.status == 410 && paging_) {
      // The continue token expired (compaction): list again from scratch.
      return list({});
    }
    if (r.status != 200) {
      set_error(describe("LIST", r));
      return retry_later([this] { list({}); });
    }
    rapidjson::Document doc;
    if (base::parse_json(doc, r.body) != base::json_status::ok
        || !doc.IsObject()) {
      set_error(server_name() + " sent an invalid list of "
                + opts_.collection);
      return retry_later([this] { list({}); });
    }
    if (auto* items = member(doc, "items"); items && items->IsArray()) {
      for (auto& item : items->GetArray()) {
        auto m = meta_of(item);
        if (!m.name.empty())
          listing_[m.name] = entry{
            m.resource_version,
            std::make_shared<const std::string>(to_text(item))};
      }
    }
    std::string cont;
    std::string rv;
    if (auto* m = member(doc, "metadata")) {
      cont = member_string(*m, "continue");
      rv = member_string(*m, "resourceVersion");
    }
    if (!cont.empty())
      return list(std::move(cont));
    replace(std::move(rv));
  }

  /// The list is complete: swap it in, report the differences, watch.
  void replace(std::string rv) {
    auto fresh = std::move(listing_);
    listing_.clear();
    std::map<std::string, entry> old;
    {
      std::lock_guard guard{mtx_};
      old = std::move(cache_);
      cache_ = fresh;
      resource_version_ = rv;
      synced_ = true;
    }
    clear_error();
    backoff_ = opts_.backoff_initial;
    for (auto& [name, e] : old)
      if (fresh.count(name) == 0)
        emit("DELETED", *e.json);
    for (auto& [name, e] : fresh) {
      auto it = old.find(name);
      if (it == old.end())
        emit("ADDED", *e.json);
      else if (it->second.resource_version != e.resource_version)
        emit("MODIFIED", *e.json);
    }
    OSB_DEBUG(component, "", "",
              "listed " << fresh.size() << " objects of " << opts_.collection
                        << " at resourceVersion " << rv);
    watch();
  }

  // -- watch -----------------------------------------------------------------

  void watch() {
    if (stopped())
      return;
    std::string rv;
    {
      std::lock_guard guard{mtx_};
      rv = resource_version_;
    }
    std::string path = opts_.collection + "?watch=1&allowWatchBookmarks=true"
                       + "&resourceVersion=" + query_escape(rv)
                       + "&timeoutSeconds="
                       + std::to_string(opts_.watch_timeout_seconds)
                       + selector_query();
    gone_ = false;
    auto self = shared_from_this();
    auto w = client_->open_watch(
      path, [self] { self->on_open(); },
      [self](watch_event ev) { self->on_event(std::move(ev)); },
      [self](kube_response r) { self->on_end(std::move(r)); });
    std::lock_guard guard{mtx_};
    if (stopped_)
      w->cancel();
    else
      watch_ = std::move(w);
  }

  /// The server accepted the watch: it answers again.
  void on_open() {
    if (stopped())
      return;
    clear_error();
    backoff_ = opts_.backoff_initial;
  }

  void on_event(watch_event ev) {
    if (stopped() || gone_)
      return;
    rapidjson::Document doc;
    if (base::parse_json(doc, ev.object) != base::json_status::ok
        || !doc.IsObject())
      return;
    if (ev.type == "ERROR") {
      // A Status: 410 Expired means our resourceVersion was compacted.
      auto* code = member(doc, "code");
      if (code && code->IsInt() && code->GetInt() == 410) {
        OSB_INFO(component, "", "",
                 opts_.collection << ": watch expired ("
                                  << member_string(doc, "message")
                                  << "); lists again");
        gone_ = true;
        return;
      }
      set_error(server_name() + " sent a watch error on " + opts_.collection
                + ": " + member_string(doc, "message"));
      watch_error_ = true;
      return;
    }
    auto m = meta_of(doc);
    clear_error();
    backoff_ = opts_.backoff_initial;
    if (ev.type == "BOOKMARK") {
      std::lock_guard guard{mtx_};
      if (!m.resource_version.empty())
        resource_version_ = m.resource_version;
      return;
    }
    if (m.name.empty())
      return;
    {
      std::lock_guard guard{mtx_};
      if (!m.resource_version.empty())
        resource_version_ = m.resource_version;
      if (ev.type == "DELETED")
        cache_.erase(m.name);
      else if (ev.type == "ADDED" || ev.type == "MODIFIED")
        cache_[m.name] = entry{m.resource_version,
                               std::make_shared<const std::string>(ev.object)};
      else
        return;
    }
    emit(ev.type, ev.object);
  }

  void on_end(kube_response r) {
    {
      std::lock_guard guard{mtx_};
      watch_.reset();
      if (stopped_)
        return;
    }
    if (gone_ || r.status == 410) {
      gone_ = false;
      return list({});
    }
    if (r.status == 200 && !watch_error_) {
      // The server ended the watch (timeoutSeconds): resume at once.
      clear_error();
      return watch();
    }
    watch_error_ = false;
    if (r.status != 200)
      set_error(describe("WATCH", r));
    retry_later([this] { watch(); });
  }

  kube_client_ptr client_;
  informer_options opts_;

  /// Guards the handler, held while it runs (stop() waits for it).
  mutable std::recursive_mutex cb_mtx_;
  informer_handler handler_;

  mutable std::mutex mtx_;
  std::map<std::string, entry> cache_;
  std::string resource_version_;
  std::string last_error_;
  bool synced_ = false;
  bool stopped_ = false;
  std::shared_ptr<watch_handle> watch_;

  // The client's I/O thread only.
  std::map<std::string, entry> listing_;
  std::chrono::milliseconds backoff_;
  bool paging_ = false; ///< the list in flight has a continue token
  bool gone_ = false;
  bool watch_error_ = false;
};

} // namespace

std::shared_ptr<informer> make_informer(kube_client_ptr client,
                                        informer_options opts) {
  return std::make_shared<informer_impl>(std::move(client), std::move(opts));
}

} // namespace osb::runtimes::kubernetes
