// Jupyter kernels over ZeroMQ's wire protocol (execd/kernel.hpp).

#include "execd/kernel.hpp"

#include "base/json.hpp"
#include "base/log.hpp"
#include "execd/digest.hpp"
#include "execd/json.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <thread>

namespace osb::execd {

namespace {

constexpr std::string_view delimiter = "<IDS|MSG>";

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(
           std::chrono::steady_clock::now() - t)
    .count();
}

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now())
                .count();
  return left < 0 ? 0 : static_cast<int>(left);
}

std::string lower_ascii(std::string x) {
  for (auto& c : x)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return x;
}

/// The string member `key` of a small JSON object, "" if absent.
std::string member(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject())
    return {};
  auto i = v.FindMember(key);
  if (i == v.MemberEnd() || !i->value.IsString())
    return {};
  return {i->value.GetString(), i->value.GetStringLength()};
}

std::string replace_all(std::string s, std::string_view from,
                        std::string_view to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

} // namespace

std::vector<std::string> kernel_spec_dirs(const env_list& env) {
  std::vector<std::string> out;
  auto add = [&](const std::string& base) {
    if (!base.empty())
      out.push_back(normalize_path(base + "/kernels"));
  };
  if (auto jp = env_get(env, "JUPYTER_PATH"); jp && !jp->empty()) {
    size_t start = 0;
    for (;;) {
      auto colon = jp->find(':', start);
      add(jp->substr(start, colon - start));
      if (colon == std::string::npos)
        break;
      start = colon + 1;
    }
  }
  if (auto d = env_get(env, "JUPYTER_DATA_DIR"); d && !d->empty())
    add(*d);
  if (auto home = env_get(env, "HOME"); home && !home->empty())
    add(*home + "/.local/share/jupyter");
  add("/usr/local/share/jupyter");
  add("/usr/share/jupyter");
  std::vector<std::string> unique;
  std::set<std::string> seen;
  for (auto& d : out)
    if (seen.insert(d).second)
      unique.push_back(d);
  return unique;
}

std::optional<kernel_spec> parse_kernel_spec(std::string_view json,
                                             const std::string& name,
                                             const std::string& dir) {
  rapidjson::Document doc;
  if (base::parse_json(doc, json) != base::json_status::ok || !doc.IsObject())
    return std::nullopt;
  kernel_spec s;
  s.name = name;
  s.resource_dir = dir;
  s.language = lower_ascii(member(doc, "language"));
  s.display_name = member(doc, "display_name");
  auto argv = doc.FindMember("argv");
  if (argv == doc.MemberEnd() || !argv->value.IsArray()
      || argv->value.Empty())
    return std::nullopt;
  for (auto& a : argv->value.GetArray()) {
    if (!a.IsString())
      return std::nullopt;
    s.argv.emplace_back(a.GetString(), a.GetStringLength());
  }
  if (auto e = doc.FindMember("env");
      e != doc.MemberEnd() && e->value.IsObject())
    for (auto& kv : e->value.GetObject())
      if (kv.value.IsString())
        s.env.emplace_back(kv.name.GetString(), kv.value.GetString());
  s.interrupt_by_message = member(doc, "interrupt_mode") == "message";
  if (s.language.empty())
    return std::nullopt;
  return s;
}

std::vector<kernel_spec>
find_kernel_specs(const std::vector<std::string>& dirs) {
  std::vector<kernel_spec> out;
  std::set<std::string> names;
  for (auto& base : dirs) {
    auto d = ::opendir(base.c_str());
    if (d == nullptr)
      continue;
    std::vector<std::string> entries;
    while (auto e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..")
        entries.push_back(n);
    }
    ::closedir(d);
    std::sort(entries.begin(), entries.end());
    for (auto& n : entries) {
      if (names.count(n) > 0)
        continue;
      auto dir = base + "/" + n;
      std::string text;
      if (!read_file(dir + "/kernel.json", text))
        continue;
      if (auto s = parse_kernel_spec(text, n, dir)) {
        names.insert(n);
        out.push_back(std::move(*s));
      }
    }
  }
  return out;
}

kernel_codec::kernel_codec(std::string key, std::string session)
  : key_(std::move(key)), session_(std::move(session)) {
  // nop
}

std::vector<std::string> kernel_codec::encode(std::string_view msg_type,
                                              std::string_view msg_id,
                                              std::string content) const {
  json_writer h;
  h.begin_object()
    .key("msg_id")
    .string(msg_id)
    .key("session")
    .string(session_)
    .key("username")
    .string("execd")
    .key("date")
    .string(rfc3339(wall_clock()))
    .key("msg_type")
    .string(msg_type)
    .key("version")
    .string("5.3")
    .end_object();
  std::string header = h.take();
  std::string parent = "{}";
  std::string metadata = "{}";
  std::string sig;
  if (!key_.empty())
    sig = hmac_sha256{key_}.hex(header, parent, metadata, content);
  return {std::string{delimiter}, std::move(sig), std::move(header),
          std::move(parent),      std::move(metadata), std::move(content)};
}

bool kernel_codec::decode(std::vector<std::string>& parts, kernel_message& out,
                          std::string* err) const {
  auto fail = [&](const char* what) {
    if (err != nullptr)
      *err = what;
    return false;
  };
  size_t i = 0;
  while (i < parts.size() && parts[i] != delimiter)
    ++i;
  if (parts.size() < i + 6)
    return fail("a kernel message without its five frames");
  auto& sig = parts[i + 1];
  auto& header = parts[i + 2];
  auto& parent = parts[i + 3];
  auto& metadata = parts[i + 4];
  auto& content = parts[i + 5];
  if (!key_.empty()) {
    auto want = hmac_sha256{key_}.hex(header, parent, metadata, content);
    if (sig.size() != want.size()
        || !std::equal(sig.begin(), sig.end(), want.begin()))
      return fail("a kernel message with a wrong signature");
  }
  rapidjson::Document h;
  if (base::parse_json(h, header) != base::json_status::ok || !h.IsObject())
    return fail("a kernel message with a malformed header");
  out.msg_type = member(h, "msg_type");
  out.msg_id = member(h, "msg_id");
  rapidjson::Document p;
  out.parent_id.clear();
  if (base::parse_json(p, parent) == base::json_status::ok && p.IsObject())
    out.parent_id = member(p, "msg_id");
  // A fresh Document per message: RapidJSON's pool allocator keeps what
  // every Parse() into the same Document took, so reusing one would grow
  // with the whole output of a run.
  rapidjson::Document c;
  if (base::parse_json(c, content) != base::json_status::ok || !c.IsObject())
    return fail("a kernel message with malformed content");
  out.content.Swap(c);
  return true;
}

std::vector<uint16_t> free_ports(size_t n) {
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  for (size_t i = 0; i < n; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
      break;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
        || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ::close(fd);
      break;
    }
    fds.push_back(fd);
    ports.push_back(ntohs(addr.sin_port));
  }
  for (auto fd : fds)
    ::close(fd);
  return ports;
}

kernel::kernel(kernel_spec spec, std::string key, std::string dir,
               std::string id)
  : spec_(std::move(spec)),
    codec_(key, new_uuid()),
    conn_file_(dir + "/" + id + ".json"),
    log_file_(dir + "/" + id + ".log") {
  // nop
}

kernel::~kernel() {
  if (child_ && !child_->exited())
    shutdown(std::chrono::milliseconds(500));
  ::unlink(conn_file_.c_str());
  ::unlink(log_file_.c_str());
}

std::unique_ptr<kernel> kernel::start(const kernel_launch& l, std::string* err,
                                      kernel_start_times* times) {
  auto fail = [&](std::string what) -> std::unique_ptr<kernel> {
    if (err != nullptr)
      *err = std::move(what);
    return nullptr;
  };
  auto t0 = std::chrono::steady_clock::now();
  auto deadline = t0 + l.start_timeout;
  make_dirs(l.dir, 0700);
  auto key = random_hex(32);
  std::unique_ptr<kernel> k{new kernel(l.spec, key, l.dir, l.id)};
  auto ports = free_ports(5);
  if (ports.size() != 5)
    return fail("no free ports for the kernel");
  json_writer cf;
  cf.begin_object()
    .key("shell_port")
    .integer(ports[0])
    .key("iopub_port")
    .integer(ports[1])
    .key("stdin_port")
    .integer(ports[2])
    .key("control_port")
    .integer(ports[3])
    .key("hb_port")
    .integer(ports[4])
    .key("ip")
    .string("127.0.0.1")
    .key("key")
    .string(key)
    .key("transport")
    .string("tcp")
    .key("signature_scheme")
    .string("hmac-sha256")
    .key("kernel_name")
    .string(l.spec.name)
    .end_object();
  {
    auto fd = ::open(k->conn_file_.c_str(),
                     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
      return fail("cannot write the connection file " + k->conn_file_ + ": "
                  + errno_text(errno));
    auto& text = cf.str();
    auto n = ::write(fd, text.data(), text.size());
    ::close(fd);
    if (n != static_cast<ssize_t>(text.size()))
      return fail("cannot write the connection file " + k->conn_file_);
  }
  spawn_options so;
  for (auto a : l.spec.argv) {
    a = replace_all(a, "{connection_file}", k->conn_file_);
    a = replace_all(a, "{resource_dir}", l.spec.resource_dir);
    so.argv.push_back(std::move(a));
  }
  so.env = l.env;
  for (auto& [name, value] : l.spec.env)
    env_set(so.env, name, value);
  // ipykernel's debugger warns on every start otherwise.
  env_set(so.env, "PYDEVD_DISABLE_FILE_VALIDATION", "1");
  if (!so.argv[0].empty() && so.argv[0][0] != '/') {
    auto path = env_get(so.env, "PATH").value_or("/usr/bin:/bin");
    auto found = find_executable(so.argv[0], path);
    if (found.empty())
      return fail("kernel " + l.spec.name + ": " + so.argv[0]
                  + " not found in PATH");
    so.argv[0] = found;
  }
  so.cwd = l.cwd;
  auto log_fd = ::open(k->log_file_.c_str(),
                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  so.stdout_fd = log_fd;
  so.stderr_fd = log_fd;
  std::string spawn_err;
  k->child_ = spawn_process(so, &spawn_err);
  if (log_fd >= 0)
    ::close(log_fd);
  if (!k->child_)
    return fail("cannot start kernel " + l.spec.name + ": " + spawn_err);
  if (times != nullptr)
    times->spawn_ms = ms_since(t0);
  std::string why;
  if (!k->connect_all(ports[0], ports[1], ports[3], deadline, &why)) {
    auto tail = k->log_tail();
    k->shutdown(std::chrono::milliseconds(0));
    return fail("kernel " + l.spec.name + " did not start: " + why
                + (tail.empty() ? "" : "; its output: " + tail));
  }
  if (times != nullptr)
    times->connect_ms = ms_since(t0) - times->spawn_ms;
  if (!k->wait_ready(deadline, &why)) {
    auto tail = k->log_tail();
    k->shutdown(std::chrono::milliseconds(0));
    return fail("kernel " + l.spec.name + " did not become ready: " + why
                + (tail.empty() ? "" : "; its output: " + tail));
  }
  if (times != nullptr)
    times->ready_ms = ms_since(t0) - times->spawn_ms - times->connect_ms;
  return k;
}

bool kernel::connect_all(uint16_t shell, uint16_t iopub, uint16_t control,
                         std::chrono::steady_clock::time_point deadline,
                         std::string* err) {
  struct target {
    zmtp_socket* s;
    uint16_t port;
    const char* type;
  };
  target all[] = {{&shell_, shell, "DEALER"},
                  {&iopub_, iopub, "SUB"},
                  {&control_, control, "DEALER"}};
  for (auto& t : all) {
    for (;;) {
      if (child_->exited()) {
        *err = "the kernel process exited (" + exit_text() + ")";
        return false;
      }
      bool refused = false;
      if (t.s->connect(t.port, t.type, std::max(remaining_ms(deadline), 1),
                       err, &refused))
        break;
      if (!refused || std::chrono::steady_clock::now() >= deadline)
        return false;
      // Not listening yet: the kernel is still importing.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (!iopub_.subscribe("")) {
    *err = "cannot subscribe to iopub";
    return false;
  }
  return true;
}

bool kernel::wait_ready(std::chrono::steady_clock::time_point deadline,
                        std::string* err) {
  // A SUB socket misses what was published before the kernel processed
  // the subscription. kernel_info_request is answered on shell and also
  // publishes busy/idle on iopub: once one of those arrives, iopub is
  // live. Until then, ask again now and then.
  bool replied = false;
  std::string pending;
  auto resend_at = std::chrono::steady_clock::now();
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      *err = replied ? "no iopub messages" : "no kernel_info_reply";
      return false;
    }
    if (now >= resend_at) {
      pending = request("kernel_info_request", "{}");
      if (pending.empty()) {
        *err = "the kernel closed its shell socket";
        return false;
      }
      resend_at = now + std::chrono::milliseconds(replied ? 100 : 1000);
    }
    kernel_message m;
    auto wait = std::min(remaining_ms(deadline), remaining_ms(resend_at));
    auto r = next(m, std::max(wait, 1));
    if (r == wait_result::died) {
      *err = "the kernel exited (" + exit_text() + ")";
      return false;
    }
    if (r != wait_result::message)
      continue;
    if (m.from == kernel_message::channel::shell
        && m.msg_type == "kernel_info_reply" && !replied) {
      replied = true;
      // The kernel is up; only iopub may be missing: ask again soon.
      resend_at = std::min(resend_at, std::chrono::steady_clock::now()
                                        + std::chrono::milliseconds(20));
    }
    if (m.from == kernel_message::channel::iopub && !m.parent_id.empty()
        && m.msg_type == "status") {
      // Any status for one of our requests: the subscription is live.
      if (replied)
        return true;
      // Reply still to come on shell.
      resend_at = deadline;
      for (;;) {
        auto r2 = next(m, std::max(remaining_ms(deadline), 1));
        if (r2 == wait_result::died) {
          *err = "the kernel exited (" + exit_text() + ")";
          return false;
        }
        if (r2 == wait_result::timeout) {
          *err = "no kernel_info_reply";
          return false;
        }
        if (m.from == kernel_message::channel::shell
            && m.msg_type == "kernel_info_reply")
          return true;
      }
    }
  }
}

std::string kernel::request(std::string_view msg_type, std::string content) {
  if (broken_)
    return {};
  auto id = new_uuid();
  auto frames = codec_.encode(msg_type, id, std::move(content));
  std::vector<std::string_view> views(frames.begin(), frames.end());
  if (!shell_.send(views)) {
    broken_ = true;
    return {};
  }
  return id;
}

bool kernel::decode_from(zmtp_socket& s, kernel_message::channel ch,
                         kernel_message& out) {
  std::vector<std::string> parts;
  while (s.pop_buffered(parts)) {
    std::string err;
    if (codec_.decode(parts, out, &err)) {
      out.from = ch;
      return true;
    }
    OSB_WARN("execd", "", "", "kernel " << spec_.name << ": " << err);
  }
  return false;
}

kernel::wait_result kernel::next(kernel_message& out, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now()
                  + std::chrono::milliseconds(std::max(timeout_ms, 0));
  for (;;) {
    if (decode_from(iopub_, kernel_message::channel::iopub, out))
      return wait_result::message;
    if (decode_from(shell_, kernel_message::channel::shell, out))
      return wait_result::message;
    if (broken_)
      return wait_result::died;
    pollfd p[3] = {{iopub_.fd(), POLLIN, 0},
                   {shell_.fd(), POLLIN, 0},
                   {child_->exit_fd(), POLLIN, 0}};
    auto rc = ::poll(p, 3, remaining_ms(deadline));
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc <= 0)
      return wait_result::timeout;
    bool read_any = false;
    for (int i = 0; i < 2; ++i) {
      if (p[i].revents == 0)
        continue;
      read_any = true;
      auto& s = i == 0 ? iopub_ : shell_;
      if (!s.fill()) {
        // Whatever arrived before the close is still delivered first.
        broken_ = true;
      }
    }
    if (!read_any && (p[2].revents & POLLIN)) {
      // The process is gone; drain what its sockets still hold.
      broken_ = true;
    }
  }
}

bool kernel::interrupt() {
  if (!child_ || child_->exited())
    return false;
  if (spec_.interrupt_by_message) {
    std::lock_guard<std::mutex> guard{control_mtx_};
    auto frames
      = codec_.encode("interrupt_request", new_uuid(), std::string{"{}"});
    std::vector<std::string_view> views(frames.begin(), frames.end());
    if (!control_.send(views))
      return false;
    // Replies pile up otherwise; nobody else reads control.
    std::vector<std::string> parts;
    control_.recv(parts, 0);
    return true;
  }
  child_->signal_group(SIGINT);
  return true;
}

bool kernel::alive() const {
  return child_ && !child_->exited() && !broken_;
}

std::string kernel::exit_text() const {
  if (!child_)
    return {};
  auto st = child_->status();
  return st ? st->describe() : std::string{};
}

std::string kernel::log_tail(size_t max_bytes) const {
  std::string text;
  if (!read_file(log_file_, text))
    return {};
  if (text.size() > max_bytes)
    text = text.substr(text.size() - max_bytes);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  return text;
}

void kernel::shutdown(std::chrono::milliseconds grace) {
  if (!child_ || child_->exited())
    return;
  if (grace.count() > 0) {
    {
      std::lock_guard<std::mutex> guard{control_mtx_};
      auto frames = codec_.encode("shutdown_request", new_uuid(),
                                  std::string{R"({"restart":false})"});
      std::vector<std::string_view> views(frames.begin(), frames.end());
      control_.send(views);
    }
    if (child_->wait_for(grace))
      return;
  }
  child_->terminate_group(std::chrono::milliseconds(1000));
}

} // namespace osb::execd
