// Code contexts on Jupyter kernels (execd/code.hpp).

#include "execd/code.hpp"

#include "base/log.hpp"
#include "execd/json.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <set>
#include <thread>

namespace osb::execd {

namespace {

using clock = std::chrono::steady_clock;

/// The languages of the code-interpreter SDKs (and Go's execd): a request
/// for one of these without a kernel is "not installed", anything else
/// "unknown".
const std::set<std::string>& known_languages() {
  static const std::set<std::string> x
    = {"python", "java", "javascript", "typescript", "go", "bash"};
  return x;
}

std::string join(const std::vector<std::string>& xs) {
  std::string out;
  for (auto& x : xs) {
    if (!out.empty())
      out += ", ";
    out += x;
  }
  return out;
}

std::string string_member(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject())
    return {};
  auto i = v.FindMember(key);
  if (i == v.MemberEnd() || !i->value.IsString())
    return {};
  return {i->value.GetString(), i->value.GetStringLength()};
}

std::optional<int64_t> int_member(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject())
    return std::nullopt;
  auto i = v.FindMember(key);
  if (i == v.MemberEnd() || !i->value.IsInt64())
    return std::nullopt;
  return i->value.GetInt64();
}

stream_error error_of(const rapidjson::Value& content) {
  stream_error e;
  e.ename = string_member(content, "ename");
  e.evalue = string_member(content, "evalue");
  if (e.ename.empty()) {
    // Some kernels (tslab) fail without naming the error; its text went
    // to stderr.
    e.ename = "ExecutionError";
    if (e.evalue.empty())
      e.evalue = "the code raised an error (see stderr)";
  }
  if (auto tb = content.FindMember("traceback");
      tb != content.MemberEnd() && tb->value.IsArray())
    for (auto& line : tb->value.GetArray())
      if (line.IsString())
        e.traceback.emplace_back(line.GetString(), line.GetStringLength());
  return e;
}

std::string encode_error_event(const stream_error& e) {
  return encode_error(e.ename, e.evalue, e.traceback, now_ms());
}

} // namespace

std::string encode_mime_bundle(const rapidjson::Value& data) {
  if (!data.IsObject())
    return "{}";
  std::vector<std::pair<std::string, const rapidjson::Value*>> items;
  for (auto& kv : data.GetObject()) {
    std::string k{kv.name.GetString(), kv.name.GetStringLength()};
    items.emplace_back(k == "text/plain" ? "text" : k, &kv.value);
  }
  std::sort(items.begin(), items.end(),
            [](auto& a, auto& b) { return a.first < b.first; });
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w{buf};
  w.StartObject();
  std::string last;
  for (size_t i = 0; i < items.size(); ++i) {
    // "text/plain" and a literal "text" would collide: the first wins.
    if (i > 0 && items[i].first == last)
      continue;
    last = items[i].first;
    w.Key(items[i].first.data(),
          static_cast<rapidjson::SizeType>(items[i].first.size()));
    items[i].second->Accept(w);
  }
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::optional<kernel_spec>
pick_kernel_spec(const std::vector<kernel_spec>& specs,
                 std::string_view language) {
  const kernel_spec* best = nullptr;
  for (auto& s : specs) {
    if (s.language != language)
      continue;
    if (s.name == language)
      return s;
    if (best == nullptr)
      best = &s;
  }
  if (best == nullptr)
    return std::nullopt;
  return *best;
}

code_manager::code_manager(code_options opts) : opts_(std::move(opts)) {
  // nop
}

code_manager::~code_manager() {
  std::map<std::string, std::shared_ptr<context>> all;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    all.swap(contexts_);
  }
  for (auto& [id, c] : all) {
    std::lock_guard<std::mutex> guard{c->kernel_mtx};
    if (c->k)
      c->k->shutdown(std::chrono::milliseconds(0));
  }
}

std::vector<std::string> code_manager::spec_dirs() const {
  if (!opts_.spec_dirs.empty())
    return opts_.spec_dirs;
  return kernel_spec_dirs(command_env({}));
}

std::vector<std::string> code_manager::languages() const {
  std::set<std::string> langs;
  for (auto& s : find_kernel_specs(spec_dirs()))
    langs.insert(s.language);
  return {langs.begin(), langs.end()};
}

code_error code_manager::check_language(const std::string& language,
                                        kernel_spec* spec) const {
  if (language.empty())
    return {400, "INVALID_REQUEST_BODY", "language must not be empty"};
  auto specs = find_kernel_specs(spec_dirs());
  if (auto s = pick_kernel_spec(specs, language)) {
    if (spec != nullptr)
      *spec = std::move(*s);
    return {};
  }
  std::set<std::string> langs;
  for (auto& s : specs)
    langs.insert(s.language);
  std::string have
    = langs.empty() ? std::string{"this sandbox has no Jupyter kernels (the "
                                  "opensandbox/code-interpreter image has them)"}
                    : "kernels here: "
                        + join({langs.begin(), langs.end()});
  if (known_languages().count(language) > 0)
    return {501, "NOT_SUPPORTED",
            "no Jupyter kernel for language " + language
              + " is installed; " + have};
  return {400, "INVALID_REQUEST_BODY",
          "unknown language " + language + "; " + have};
}

code_context_info code_manager::info_of(const context& c) {
  code_context_info i;
  i.id = c.id;
  i.language = c.language;
  i.cwd = c.cwd;
  i.is_default = c.is_default;
  std::lock_guard<std::mutex> guard{c.kernel_mtx};
  i.kernel_running = c.k && c.k->alive();
  return i;
}

code_error code_manager::create(const std::string& language,
                                const std::string& cwd,
                                code_context_info& out) {
  if (auto e = check_language(language, nullptr); !e.ok())
    return e;
  auto c = std::make_shared<context>();
  c->id = random_hex(16);
  c->language = language;
  c->cwd = cwd;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (contexts_.size() >= opts_.max_contexts)
      return {429, "TOO_MANY_CONTEXTS",
              "this sandbox already has " + std::to_string(contexts_.size())
                + " code contexts (the limit); delete some first"};
    contexts_.emplace(c->id, c);
  }
  out = info_of(*c);
  return {};
}

std::vector<code_context_info>
code_manager::list(const std::string& language) const {
  std::vector<std::shared_ptr<context>> xs;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& [id, c] : contexts_)
      if (language.empty() || c->language == language)
        xs.push_back(c);
  }
  std::vector<code_context_info> out;
  out.reserve(xs.size());
  for (auto& c : xs)
    out.push_back(info_of(*c));
  return out;
}

std::shared_ptr<code_manager::context>
code_manager::find(const std::string& id) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = contexts_.find(id);
  return i == contexts_.end() ? nullptr : i->second;
}

bool code_manager::exists(const std::string& id) const {
  return find(id) != nullptr;
}

std::optional<code_context_info>
code_manager::get(const std::string& id) const {
  auto c = find(id);
  if (!c)
    return std::nullopt;
  return info_of(*c);
}

void code_manager::retire(std::shared_ptr<context> c) {
  std::shared_ptr<kernel> k;
  {
    std::lock_guard<std::mutex> guard{c->kernel_mtx};
    k.swap(c->k);
  }
  if (!k)
    return;
  OSB_INFO("execd", "", "",
           "code context " << c->id << ": shutting its " << c->language
                           << " kernel down (pid " << k->pid() << ")");
  // A shutdown takes up to a second or two: not on the request's time.
  std::thread{[k] { k->shutdown(std::chrono::milliseconds(1000)); }}.detach();
}

bool code_manager::remove(const std::string& id) {
  std::shared_ptr<context> c;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = contexts_.find(id);
    if (i == contexts_.end())
      return false;
    c = i->second;
    contexts_.erase(i);
    auto d = defaults_.find(c->language);
    if (d != defaults_.end() && d->second == id)
      defaults_.erase(d);
  }
  retire(std::move(c));
  return true;
}

size_t code_manager::remove_language(const std::string& language) {
  std::vector<std::shared_ptr<context>> gone;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto i = contexts_.begin(); i != contexts_.end();) {
      if (i->second->language == language) {
        gone.push_back(i->second);
        i = contexts_.erase(i);
      } else {
        ++i;
      }
    }
    defaults_.erase(language);
  }
  for (auto& c : gone)
    retire(c);
  return gone.size();
}

size_t code_manager::running_kernels() const {
  std::vector<std::shared_ptr<context>> xs;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& [id, c] : contexts_)
      xs.push_back(c);
  }
  size_t n = 0;
  for (auto& c : xs) {
    std::lock_guard<std::mutex> guard{c->kernel_mtx};
    if (c->k && c->k->alive())
      ++n;
  }
  return n;
}

code_manager::interrupt_result
code_manager::interrupt(const std::string& id) {
  auto c = find(id);
  if (!c)
    return interrupt_result::unknown;
  if (!c->running)
    return interrupt_result::not_running;
  std::shared_ptr<kernel> k;
  {
    std::lock_guard<std::mutex> guard{c->kernel_mtx};
    k = c->k;
  }
  if (!k || !k->interrupt())
    return interrupt_result::not_running;
  OSB_INFO("execd", "", "", "code context " << id << ": interrupted");
  return interrupt_result::done;
}

code_error code_manager::ensure_kernel(context& c, std::shared_ptr<kernel>& k,
                                       bool& restarted, run_summary* summary) {
  {
    std::lock_guard<std::mutex> guard{c.kernel_mtx};
    k = c.k;
  }
  if (k && k->alive())
    return {};
  restarted = k != nullptr;
  if (k) {
    OSB_WARN("execd", "", "",
             "code context " << c.id << ": its " << c.language
                             << " kernel has exited (" << k->exit_text()
                             << "); starting a new one");
    std::lock_guard<std::mutex> guard{c.kernel_mtx};
    c.k.reset();
    auto old = std::move(k);
    std::thread{[old] { old->shutdown(std::chrono::milliseconds(0)); }}
      .detach();
  }
  kernel_spec spec;
  if (auto e = check_language(c.language, &spec); !e.ok())
    return e;
  auto running = running_kernels();
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (running + starting_ >= opts_.max_kernels)
      return {503, "TOO_MANY_KERNELS",
              std::to_string(opts_.max_kernels)
                + " kernels are running already (the limit); delete code "
                  "contexts that are no longer needed"};
    ++starting_;
  }
  kernel_launch l;
  l.spec = spec;
  l.cwd = c.cwd;
  l.env = command_env({});
  l.dir = opts_.dir;
  // Unique per start: a dead predecessor's cleanup must not remove the
  // files of its successor.
  l.id = c.id + "-" + random_hex(4);
  l.start_timeout = opts_.start_timeout;
  std::string err;
  kernel_start_times times;
  auto t0 = clock::now();
  std::shared_ptr<kernel> fresh = kernel::start(l, &err, &times);
  {
    std::lock_guard<std::mutex> guard{mtx_};
    --starting_;
  }
  if (!fresh) {
    OSB_ERROR("execd", "", "",
              "code context " << c.id << ": kernel start failed: " << err);
    return {500, "KERNEL_START_FAILED", err};
  }
  auto total = std::chrono::duration<double, std::milli>(clock::now() - t0);
  OSB_INFO("execd", "", "",
           "code context " << c.id << ": kernel " << spec.name << " (pid "
                           << fresh->pid() << ") ready in "
                           << static_cast<int64_t>(total.count())
                           << " ms (spawn "
                           << static_cast<int64_t>(times.spawn_ms)
                           << " ms, listening "
                           << static_cast<int64_t>(times.connect_ms)
                           << " ms, kernel_info "
                           << static_cast<int64_t>(times.ready_ms) << " ms)");
  if (summary != nullptr)
    summary->started = times;
  if (!find(c.id)) {
    // Deleted while the kernel started.
    std::thread{[fresh] { fresh->shutdown(std::chrono::milliseconds(0)); }}
      .detach();
    return {404, "CONTEXT_NOT_FOUND", "context " + c.id + " was deleted"};
  }
  std::lock_guard<std::mutex> guard{c.kernel_mtx};
  c.k = fresh;
  k = fresh;
  return {};
}

code_error code_manager::run(const std::string& id,
                             const std::string& language,
                             std::string_view code, event_sink& sink,
                             run_summary* summary) {
  if (code.empty())
    return {400, "INVALID_REQUEST_BODY", "code must not be empty"};
  if (code.size() > opts_.max_code)
    return {413, "CODE_TOO_LARGE",
            "code is " + std::to_string(code.size())
              + " bytes; the limit is " + std::to_string(opts_.max_code)};
  std::shared_ptr<context> c;
  if (!id.empty()) {
    c = find(id);
    if (!c)
      return {404, "CONTEXT_NOT_FOUND", "context " + id + " not found"};
  } else {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (auto d = defaults_.find(language); d != defaults_.end()) {
        auto i = contexts_.find(d->second);
        if (i != contexts_.end())
          c = i->second;
      }
    }
    // Only a new default context looks the language up.
    if (!c)
      if (auto e = check_language(language, nullptr); !e.ok())
        return e;
    std::lock_guard<std::mutex> guard{mtx_};
    if (auto d = defaults_.find(language); !c && d != defaults_.end()) {
      auto i = contexts_.find(d->second);
      if (i != contexts_.end())
        c = i->second;
    }
    if (!c) {
      if (contexts_.size() >= opts_.max_contexts)
        return {429, "TOO_MANY_CONTEXTS",
                "this sandbox already has " + std::to_string(contexts_.size())
                  + " code contexts (the limit); delete some first"};
      c = std::make_shared<context>();
      c->id = random_hex(16);
      c->language = language;
      c->is_default = true;
      contexts_.emplace(c->id, c);
      defaults_[language] = c->id;
    }
  }
  std::unique_lock<std::mutex> lock{c->run_mtx, std::try_to_lock};
  if (!lock.owns_lock())
    return {409, "CONTEXT_BUSY",
            "context " + c->id
              + " is running another execution (session is busy); wait "
                "for it or interrupt it"};
  std::shared_ptr<kernel> k;
  bool restarted = false;
  if (auto e = ensure_kernel(*c, k, restarted, summary); !e.ok())
    return e;
  c->running = true;
  execute(*c, *k, code, sink, restarted, summary);
  c->running = false;
  return {};
}

void code_manager::execute(context& c, kernel& k, std::string_view code,
                           event_sink& sink, bool restarted,
                           run_summary* summary) {
  run_summary local;
  auto& s = summary != nullptr ? *summary : local;
  auto t0 = clock::now();
  auto last_write = t0;
  auto emit = [&](const std::string& bytes) {
    if (s.client_gone)
      return;
    // A slow client blocks this write, and the kernel's next message is
    // read only afterwards: memory holds one message, not the output.
    if (!sink.write(bytes))
      s.client_gone = true;
    last_write = clock::now();
  };
  // One write for both: the client sees the stream start at once.
  emit(encode_init(c.id, now_ms()) + encode_ping(now_ms()));
  if (restarted)
    emit(encode_output("stderr",
                       "[execd] the kernel of this context had exited; this "
                       "run uses a new one (earlier state is gone)\n",
                       now_ms()));
  json_writer req;
  req.begin_object()
    .key("code")
    .string(code)
    .key("silent")
    .boolean(false)
    .key("store_history")
    .boolean(true)
    .key("user_expressions")
    .begin_object()
    .end_object()
    .key("allow_stdin")
    .boolean(false)
    // One execution at a time per kernel, so there is never a queue to
    // abort; with `true`, ipykernel also aborts a request that arrives just
    // after an error (before it stopped aborting), which made the run after
    // an interrupt fail now and then.
    .key("stop_on_error")
    .boolean(false)
    .end_object();
  auto msg_id = k.request("execute_request", req.take());
  bool replied = false;
  bool idle = false;
  bool count_sent = false;
  int64_t count = 0;
  clock::time_point replied_at;
  auto died = [&] {
    s.kernel_died = true;
    s.errored = true;
    stream_error e;
    e.ename = "KernelDied";
    // Its sockets close a moment before the reaper has its status.
    k.wait_exit(std::chrono::milliseconds(200));
    auto how = k.exit_text();
    e.evalue = "the " + c.language + " kernel exited during the execution"
               + (how.empty() ? std::string{} : " (" + how + ")");
    emit(encode_status("error", now_ms()));
    emit(encode_error_event(e));
    OSB_WARN("execd", "", "", "code context " << c.id << ": " << e.evalue);
  };
  if (msg_id.empty())
    return died();
  kernel_message m;
  while (!(replied && idle)) {
    auto now = clock::now();
    auto until = last_write + opts_.ping_every;
    if (replied)
      until = std::min(until, replied_at + opts_.idle_grace);
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
                  until - now)
                  .count();
    auto r = k.next(m, static_cast<int>(std::max<int64_t>(wait, 0)));
    if (r == kernel::wait_result::died)
      return died();
    if (r == kernel::wait_result::timeout) {
      now = clock::now();
      if (replied && now >= replied_at + opts_.idle_grace)
        break; // a kernel that never says idle must not hang the stream
      if (now >= last_write + opts_.ping_every)
        emit(encode_ping(now_ms()));
      continue;
    }
    if (m.parent_id != msg_id)
      continue;
    auto& t = m.msg_type;
    auto& content = m.content;
    if (m.from == kernel_message::channel::shell) {
      if (t != "execute_reply")
        continue;
      replied = true;
      replied_at = clock::now();
      if (auto n = int_member(content, "execution_count"))
        count = *n;
      auto status = string_member(content, "status");
      if (status == "error" && !s.errored) {
        s.errored = true;
        emit(encode_status("error", now_ms()));
        emit(encode_error_event(error_of(content)));
      } else if (status == "aborted" && !s.errored) {
        s.errored = true;
        stream_error e;
        e.ename = "ExecutionAborted";
        e.evalue = "the kernel aborted the execution";
        emit(encode_error_event(e));
      }
      continue;
    }
    if (t == "stream") {
      auto name = string_member(content, "name");
      auto text = string_member(content, "text");
      if (!text.empty())
        emit(encode_output(name == "stderr" ? "stderr" : "stdout", text,
                           now_ms()));
    } else if (t == "execute_result") {
      if (auto n = int_member(content, "execution_count"); n && *n > 0) {
        count = *n;
        emit(encode_count(count, now_ms()));
        count_sent = true;
      }
      if (auto d = content.FindMember("data");
          d != content.MemberEnd() && d->value.IsObject()
          && d->value.MemberCount() > 0)
        emit(encode_result(encode_mime_bundle(d->value), now_ms()));
    } else if (t == "display_data" || t == "update_display_data") {
      if (auto d = content.FindMember("data");
          d != content.MemberEnd() && d->value.IsObject()
          && d->value.MemberCount() > 0)
        emit(encode_result(encode_mime_bundle(d->value), now_ms()));
    } else if (t == "error") {
      if (!s.errored) {
        s.errored = true;
        emit(encode_status("error", now_ms()));
        emit(encode_error_event(error_of(content)));
      }
    } else if (t == "status") {
      if (string_member(content, "execution_state") == "idle")
        idle = true;
    }
  }
  if (!s.errored) {
    if (!count_sent && count > 0)
      emit(encode_count(count, now_ms()));
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                clock::now() - t0)
                .count();
    emit(encode_complete(ms, now_ms()));
    s.completed = true;
  }
}

} // namespace osb::execd
