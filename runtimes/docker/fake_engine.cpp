#include "runtimes/docker/fake_engine.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

namespace osb::runtimes::docker {

namespace {

int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch())
    .count();
}

failure shut_down() {
  return failure{failure_kind::unavailable, "fake engine is shut down"};
}

bool matches(const container_info& info,
             const std::map<std::string, std::string>& labels) {
  for (auto& [key, value] : labels) {
    auto i = info.labels.find(key);
    if (i == info.labels.end())
      return false;
    if (!value.empty() && i->second != value)
      return false;
  }
  return true;
}

} // namespace

// -- container_engine interface --------------------------------------------------------

void fake_engine::ping(callback<unit> cb) {
  std::unique_lock guard{mtx_};
  auto err = enter("ping");
  guard.unlock();
  if (err)
    deliver("ping", [cb, f = *err] { cb(f); });
  else
    deliver("ping", [cb] { cb(unit{}); });
}

void fake_engine::create(const container_spec& spec,
                          callback<std::string> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<std::string> {
    if (auto err = enter("create"))
      return *err;
    if (known_images_ && known_images_->count(spec.image) == 0
        && committed_.count(spec.image) == 0)
      return failure{failure_kind::failed,
                     "Failed to pull image " + spec.image + ": not found"};
    if (!spec.runtime.empty()
        && std::none_of(daemon_.runtimes.begin(), daemon_.runtimes.end(),
                        [&](auto& rt) { return rt.name == spec.runtime; }))
      return failure{failure_kind::invalid,
                     "create container: Unknown runtime specified "
                       + spec.runtime};
    if (!spec.name.empty() && find(spec.name) != nullptr)
      return failure{failure_kind::conflict,
                     "create container: Conflict. The container name \"/"
                       + spec.name + "\" is already in use"};
    auto seq = next_id_++;
    auto id = "fake-" + std::to_string(seq);
    auto& e = containers_[id];
    e.seq = seq;
    e.spec = spec;
    // The hook holds the caller (an actor handle); a stored spec must not.
    e.spec.on_pull_progress = nullptr;
    e.info.id = id;
    e.info.name = spec.name.empty() ? id : spec.name;
    e.info.labels = spec.labels;
    e.info.status = "created";
    e.info.created_us = now_us();
    return id;
  }();
  auto progress = result ? pull_progress_ : std::vector<std::string>{};
  guard.unlock();
  if (spec.on_pull_progress)
    for (auto& msg : progress)
      spec.on_pull_progress(msg);
  deliver("create", [cb, r = std::move(result)] { cb(r); });
}

void fake_engine::start(const std::string& id, callback<unit> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<unit> {
    if (auto err = enter("start"))
      return *err;
    auto e = find(id);
    if (e == nullptr)
      return failure{failure_kind::not_found,
                     "start container: No such container: " + id};
    auto& st = e->info.status;
    if (st == "running")
      return unit{}; // Docker: 304 Not Modified
    if (st == "paused")
      return failure{failure_kind::conflict,
                     "start container: cannot start a paused container, "
                     "try unpause instead"};
    st = "running";
    e->info.exit_code = 0;
    e->info.finished_us = 0;
    e->info.ip = "10.0.0." + std::to_string(next_ip_++);
    return unit{};
  }();
  guard.unlock();
  deliver("start", [cb, r = std::move(result)] { cb(r); });
}

void fake_engine::pause(const std::string& id, callback<unit> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<unit> {
    if (auto err = enter("pause"))
      return *err;
    auto e = find(id);
    if (e == nullptr)
      return failure{failure_kind::not_found,
                     "pause container: No such container: " + id};
    if (e->info.status != "running")
      return failure{failure_kind::conflict,
                     "pause container: Container " + id + " is not running"};
    e->info.status = "paused";
    return unit{};
  }();
  guard.unlock();
  deliver("pause", [cb, r = std::move(result)] { cb(r); });
}

void fake_engine::unpause(const std::string& id, callback<unit> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<unit> {
    if (auto err = enter("unpause"))
      return *err;
    auto e = find(id);
    if (e == nullptr)
      return failure{failure_kind::not_found,
                     "unpause container: No such container: " + id};
    if (e->info.status != "paused")
      return failure{failure_kind::conflict,
                     "unpause container: Container " + id + " is not paused"};
    e->info.status = "running";
    return unit{};
  }();
  guard.unlock();
  deliver("unpause", [cb, r = std::move(result)] { cb(r); });
}

void fake_engine::remove(const std::string& id, callback<unit> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<unit> {
    if (auto err = enter("remove"))
      return *err;
    if (auto e = find(id))
      containers_.erase(e->info.id);
    return unit{};
  }();
  guard.unlock();
  deliver("remove", [cb, r = std::move(result)] { cb(r); });
}

void fake_engine::put_archive(const std::string& id, const std::string& path,
                               std::shared_ptr<const std::string> tar,
                               callback<unit> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<unit> {
    if (auto err = enter("put_archive"))
      return *err;
    auto e = find(id);
    if (e == nullptr)
      return failure{failure_kind::not_found,
                     "upload archive: No such container: " + id};
    e->archives.emplace_back(path, tar ? tar->size() : 0);
    return unit{};
  }();
  guard.unlock();
  deliver("put_archive", [cb, r = std::move(result)] { cb(r); });
}

std::vector<std::pair<std::string, size_t>>
fake_engine::archives(const std::string& id) const {
  std::lock_guard guard{mtx_};
  auto self = const_cast<fake_engine*>(this);
  if (auto e = self->find(id))
    return e->archives;
  return {};
}

void fake_engine::inspect(const std::string& id,
                           callback<container_info> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<container_info> {
    if (auto err = enter("inspect"))
      return *err;
    auto e = find(id);
    if (e == nullptr)
      return failure{failure_kind::not_found,
                     "inspect container: No such container: " + id};
    return e->info;
  }();
  guard.unlock();
  deliver("inspect", [cb, r = std::move(result)] { cb(r); });
}

void fake_engine::list(const std::map<std::string, std::string>& labels,
                        callback<std::vector<container_info>> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<std::vector<container_info>> {
    if (auto err = enter("list"))
      return *err;
    std::vector<const entry*> hits;
    for (auto& [id, e] : containers_)
      if (matches(e.info, labels))
        hits.push_back(&e);
    // Creation order reads better in tests than "fake-10" < "fake-2".
    std::sort(hits.begin(), hits.end(),
              [](auto x, auto y) { return x->seq < y->seq; });
    std::vector<container_info> xs;
    xs.reserve(hits.size());
    for (auto e : hits) {
      xs.push_back(e->info);
      xs.back().finished_us = 0; // Docker's list does not report it.
    }
    return xs;
  }();
  guard.unlock();
  deliver("list", [cb, r = std::move(result)] { cb(r); });
}

void fake_engine::info(callback<daemon_info> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<daemon_info> {
    if (auto err = enter("info"))
      return *err;
    return daemon_;
  }();
  guard.unlock();
  deliver("info", [cb, r = std::move(result)] { cb(r); });
}

void fake_engine::details(const std::string& id,
                           callback<container_details> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<container_details> {
    if (auto err = enter("details"))
      return *err;
    auto e = find(id);
    if (e == nullptr)
      return failure{failure_kind::not_found,
                     "inspect container: No such container: " + id};
    container_details d;
    d.id = e->info.id;
    d.name = e->info.name;
    d.image = e->spec.image;
    d.status = e->info.status;
    d.running = e->info.status == "running" || e->info.status == "paused";
    d.paused = e->info.status == "paused";
    d.exit_code = e->info.exit_code;
    d.nano_cpus = e->spec.nano_cpus;
    d.memory_bytes = e->spec.memory_bytes;
    d.pids_limit = e->spec.pids_limit;
    if (!e->info.ip.empty())
      d.networks.emplace_back("bridge", e->info.ip);
    for (auto& p : e->spec.ports)
      d.ports.emplace_back(std::to_string(p.container_port) + "/tcp",
                           std::vector<std::string>{
                             p.host_ip + ":" + std::to_string(p.host_port)});
    d.labels = e->info.labels;
    d.env = e->spec.env;
    return d;
  }();
  guard.unlock();
  deliver("details", [cb, r = std::move(result)] { cb(r); });
}

void fake_engine::logs(const std::string& id, const log_query&,
                        callback<std::string> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<std::string> {
    if (auto err = enter("logs"))
      return *err;
    auto e = find(id);
    if (e == nullptr)
      return failure{failure_kind::not_found,
                     "container logs: No such container: " + id};
    return e->logs;
  }();
  guard.unlock();
  deliver("logs", [cb, r = std::move(result)] { cb(r); });
}

void fake_engine::inspect_volume(const std::string& name,
                                  callback<volume_info> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<volume_info> {
    if (auto err = enter("inspect_volume"))
      return *err;
    auto i = volumes_.find(name);
    if (i == volumes_.end())
      return failure{failure_kind::not_found,
                     "inspect volume " + name + ": get " + name
                       + ": no such volume"};
    return i->second;
  }();
  guard.unlock();
  deliver("inspect_volume", [cb, r = std::move(result)] { cb(r); });
}

void fake_engine::create_volume(
  const std::string& name, const std::map<std::string, std::string>& labels,
  callback<volume_info> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<volume_info> {
    if (auto err = enter("create_volume"))
      return *err;
    auto i = volumes_.find(name);
    if (i != volumes_.end())
      return i->second;
    volume_info v{name, "local", "/var/lib/docker/volumes/" + name + "/_data",
                  labels};
    volumes_.emplace(name, v);
    return v;
  }();
  guard.unlock();
  deliver("create_volume", [cb, r = std::move(result)] { cb(r); });
}

void fake_engine::remove_volume(const std::string& name, callback<unit> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<unit> {
    if (auto err = enter("remove_volume"))
      return *err;
    for (auto& [id, e] : containers_)
      for (auto& b : e.spec.binds)
        if (b.compare(0, name.size() + 1, name + ":") == 0)
          return failure{failure_kind::conflict,
                         "remove volume " + name + ": volume is in use - ["
                           + id + "]"};
    volumes_.erase(name);
    return unit{};
  }();
  guard.unlock();
  deliver("remove_volume", [cb, r = std::move(result)] { cb(r); });
}

void fake_engine::commit(const std::string& id, const std::string& repo,
                          const std::string& tag, callback<std::string> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<std::string> {
    if (auto err = enter("commit"))
      return *err;
    auto e = find(id);
    if (e == nullptr)
      return failure{failure_kind::not_found,
                     "commit container: No such container: " + id};
    committed_.insert(repo + ":" + tag);
    image_labels_[repo + ":" + tag] = e->info.labels;
    return "sha256:fake-image-" + std::to_string(next_id_++);
  }();
  guard.unlock();
  deliver("commit", [cb, r = std::move(result)] { cb(r); });
}

void fake_engine::image_exists(const std::string& ref, callback<bool> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<bool> {
    if (auto err = enter("image_exists"))
      return *err;
    return committed_.count(ref) > 0
           || (known_images_ && known_images_->count(ref) > 0);
  }();
  guard.unlock();
  deliver("image_exists", [cb, r = std::move(result)] { cb(r); });
}

void fake_engine::remove_image(const std::string& ref, callback<unit> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<unit> {
    if (auto err = enter("remove_image"))
      return *err;
    for (auto& [id, e] : containers_)
      if (e.spec.image == ref)
        return failure{failure_kind::conflict,
                       "remove image " + ref
                         + ": image is being used by container " + id};
    committed_.erase(ref);
    if (known_images_)
      known_images_->erase(ref);
    return unit{};
  }();
  guard.unlock();
  deliver("remove_image", [cb, r = std::move(result)] { cb(r); });
}

void fake_engine::list_images(const std::string& repository,
                               const std::map<std::string, std::string>& labels,
                               callback<std::vector<std::string>> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<std::vector<std::string>> {
    if (auto err = enter("list_images"))
      return *err;
    std::vector<std::string> refs;
    for (auto& ref : committed_) {
      if (ref.compare(0, repository.size() + 1, repository + ":") != 0)
        continue;
      auto& ls = image_labels_[ref];
      bool all = true;
      for (auto& [k, v] : labels) {
        auto i = ls.find(k);
        if (i == ls.end() || (!v.empty() && i->second != v))
          all = false;
      }
      if (all)
        refs.push_back(ref);
    }
    return refs;
  }();
  guard.unlock();
  deliver("list_images", [cb, r = std::move(result)] { cb(r); });
}

void fake_engine::add_image(const std::string& ref,
                             std::map<std::string, std::string> labels) {
  std::lock_guard guard{mtx_};
  committed_.insert(ref);
  image_labels_[ref] = std::move(labels);
}

std::set<std::string> fake_engine::committed_images() const {
  std::lock_guard guard{mtx_};
  return committed_;
}

void fake_engine::list_volumes(
  const std::map<std::string, std::string>& labels,
  callback<std::vector<volume_info>> cb) {
  std::unique_lock guard{mtx_};
  auto result = [&]() -> expected<std::vector<volume_info>> {
    if (auto err = enter("list_volumes"))
      return *err;
    std::vector<volume_info> xs;
    for (auto& [name, v] : volumes_) {
      container_info probe;
      probe.labels = v.labels;
      if (matches(probe, labels))
        xs.push_back(v);
    }
    return xs;
  }();
  guard.unlock();
  deliver("list_volumes", [cb, r = std::move(result)] { cb(r); });
}

void fake_engine::shutdown() {
  std::map<std::string, std::vector<std::function<void()>>> pending;
  {
    std::lock_guard guard{mtx_};
    stopped_ = true;
    held_ops_.clear();
    pending.swap(deferred_);
  }
  // Held answers were "in flight": deliver them so no callback is lost.
  for (auto& [op, fns] : pending)
    for (auto& fn : fns)
      fn();
}

// -- test hooks ---------------------------------------------------------------

void fake_engine::fail_next(const std::string& op, failure f) {
  std::lock_guard guard{mtx_};
  injected_[op].push_back(std::move(f));
}

void fake_engine::set_known_images(std::set<std::string> images) {
  std::lock_guard guard{mtx_};
  known_images_ = std::move(images);
}

void fake_engine::exit_container(const std::string& id, int code) {
  std::lock_guard guard{mtx_};
  if (auto e = find(id)) {
    e->info.status = "exited";
    e->info.exit_code = code;
    e->info.finished_us = now_us();
    e->info.ip.clear();
  }
}

std::vector<container_info> fake_engine::containers() const {
  std::lock_guard guard{mtx_};
  std::vector<const entry*> xs;
  for (auto& [id, e] : containers_)
    xs.push_back(&e);
  std::sort(xs.begin(), xs.end(),
            [](auto x, auto y) { return x->seq < y->seq; });
  std::vector<container_info> result;
  result.reserve(xs.size());
  for (auto e : xs)
    result.push_back(e->info);
  return result;
}

size_t fake_engine::calls(const std::string& op) const {
  std::lock_guard guard{mtx_};
  auto i = calls_.find(op);
  return i == calls_.end() ? 0 : i->second;
}

container_spec fake_engine::spec_of(const std::string& id) const {
  std::lock_guard guard{mtx_};
  auto i = containers_.find(id);
  return i == containers_.end() ? container_spec{} : i->second.spec;
}

void fake_engine::hold(const std::string& op) {
  std::lock_guard guard{mtx_};
  held_ops_.insert(op);
}

void fake_engine::release(const std::string& op) {
  std::vector<std::function<void()>> fns;
  {
    std::lock_guard guard{mtx_};
    held_ops_.erase(op);
    auto i = deferred_.find(op);
    if (i != deferred_.end()) {
      fns.swap(i->second);
      deferred_.erase(i);
    }
  }
  for (auto& fn : fns)
    fn();
}

size_t fake_engine::held(const std::string& op) const {
  std::lock_guard guard{mtx_};
  auto i = deferred_.find(op);
  return i == deferred_.end() ? 0 : i->second.size();
}

void fake_engine::set_logs(const std::string& id, std::string text) {
  std::lock_guard guard{mtx_};
  if (auto e = find(id))
    e->logs = std::move(text);
}

void fake_engine::set_daemon_info(daemon_info x) {
  std::lock_guard guard{mtx_};
  daemon_ = std::move(x);
}

std::map<std::string, volume_info> fake_engine::volumes() const {
  std::lock_guard guard{mtx_};
  return volumes_;
}

void fake_engine::set_pull_progress(std::vector<std::string> messages) {
  std::lock_guard guard{mtx_};
  pull_progress_ = std::move(messages);
}

// -- private ------------------------------------------------------------------

std::optional<failure> fake_engine::enter(const std::string& op) {
  ++calls_[op];
  if (stopped_)
    return shut_down();
  auto i = injected_.find(op);
  if (i == injected_.end() || i->second.empty())
    return std::nullopt;
  auto f = std::move(i->second.front());
  i->second.erase(i->second.begin());
  return f;
}

void fake_engine::deliver(const std::string& op, std::function<void()> fn) {
  {
    std::lock_guard guard{mtx_};
    if (held_ops_.count(op) > 0) {
      deferred_[op].push_back(std::move(fn));
      return;
    }
  }
  fn();
}

fake_engine::entry* fake_engine::find(const std::string& id_or_name) {
  auto i = containers_.find(id_or_name);
  if (i != containers_.end())
    return &i->second;
  for (auto& [id, e] : containers_)
    if (e.info.name == id_or_name)
      return &e;
  return nullptr;
}

} // namespace osb::runtimes::docker
