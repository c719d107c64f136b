// Terminal sessions (execd/pty.hpp).

#include "execd/pty.hpp"

#include "base/log.hpp"
#include "execd/json.hpp"

#include <rapidjson/document.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace osb::execd {

namespace {

/// Signal names a client may send.
int signal_number(std::string name) {
  if (name.rfind("SIG", 0) == 0)
    name = name.substr(3);
  static const std::pair<const char*, int> table[]
    = {{"INT", SIGINT},   {"TERM", SIGTERM}, {"KILL", SIGKILL},
       {"HUP", SIGHUP},   {"QUIT", SIGQUIT}, {"TSTP", SIGTSTP},
       {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"USR1", SIGUSR1},
       {"USR2", SIGUSR2}, {"WINCH", SIGWINCH}};
  for (auto& [n, s] : table)
    if (name == n)
      return s;
  return 0;
}

std::string error_frame(std::string_view code, std::string_view message) {
  json_writer w;
  w.begin_object()
    .key("type")
    .string("error")
    .key("code")
    .string(code)
    .key("error")
    .string(message)
    .end_object();
  return w.take();
}

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

} // namespace

void replay_buffer::append(std::string_view data) {
  total_ += data.size();
  if (data.size() >= cap_) {
    data_.assign(data.substr(data.size() - cap_));
    return;
  }
  if (data_.size() + data.size() > cap_)
    data_.erase(0, data_.size() + data.size() - cap_);
  data_.append(data.data(), data.size());
}

std::string replay_buffer::since(uint64_t since, uint64_t* from) const {
  auto first = total_ - data_.size();
  if (since < first)
    since = first;
  if (since > total_)
    since = total_;
  if (from != nullptr)
    *from = since;
  return data_.substr(static_cast<size_t>(since - first));
}

pty_session::pty_session(std::string id, pty_options opts)
  : id_(std::move(id)), opts_(std::move(opts)) {
  // nop
}

pty_session::~pty_session() {
  for (int fd : {in_fd_, out_fd_, err_fd_})
    if (fd >= 0)
      ::close(fd);
}

bool pty_session::running() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return child_ && !child_->exited();
}

uint64_t pty_session::output_offset() const {
  std::lock_guard<std::mutex> guard{out_mtx_};
  return replay_.end();
}

bool pty_session::attached() const {
  std::lock_guard<std::mutex> guard{client_mtx_};
  return client_ != nullptr && !client_->closed();
}

bool pty_session::start(bool pipe_mode, std::string* err) {
  // Called with mtx_ held.
  auto env = command_env({});
  if (!env_get(env, "TERM"))
    env_set(env, "TERM", "xterm-256color");
  auto shell = find_shell(env);
  spawn_options so;
  so.argv = {shell};
  if (shell.size() >= 4 && shell.compare(shell.size() - 4, 4, "bash") == 0) {
    so.argv.push_back("--norc");
    so.argv.push_back("--noprofile");
  }
  if (!opts_.command.empty()) {
    so.argv.push_back("-c");
    so.argv.push_back(opts_.command);
  } else if (pipe_mode) {
    so.argv.push_back("-s"); // commands from stdin, without a prompt
  }
  so.env = std::move(env);
  so.cwd = opts_.cwd;
  int in = -1, out = -1, errfd = -1;
  int child_ends[3] = {-1, -1, -1};
  if (!pipe_mode) {
    int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) {
      *err = "cannot open a pseudo-terminal: " + errno_text(errno);
      if (master >= 0)
        ::close(master);
      return false;
    }
    char name[128];
    if (::ptsname_r(master, name, sizeof(name)) != 0) {
      *err = "ptsname: " + errno_text(errno);
      ::close(master);
      return false;
    }
    int slave = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) {
      *err = std::string{"cannot open "} + name + ": " + errno_text(errno);
      ::close(master);
      return false;
    }
    winsize ws{};
    ws.ws_col = opts_.cols;
    ws.ws_row = opts_.rows;
    ::ioctl(master, TIOCSWINSZ, &ws);
    in = master;
    out = ::fcntl(master, F_DUPFD_CLOEXEC, 3);
    child_ends[0] = child_ends[1] = child_ends[2] = slave;
    so.controlling_tty = true;
  } else {
    int pin[2], pout[2], perr[2];
    if (!make_pipe(pin) || !make_pipe(pout) || !make_pipe(perr)) {
      *err = "pipe: " + errno_text(errno);
      return false;
    }
    in = pin[1];
    out = pout[0];
    errfd = perr[0];
    child_ends[0] = pin[0];
    child_ends[1] = pout[1];
    child_ends[2] = perr[1];
  }
  so.stdin_fd = child_ends[0];
  so.stdout_fd = child_ends[1];
  so.stderr_fd = child_ends[2];
  std::string spawn_err;
  auto child = spawn_process(so, &spawn_err);
  ::close(child_ends[0]);
  if (pipe_mode) {
    ::close(child_ends[1]);
    ::close(child_ends[2]);
  }
  if (!child) {
    for (int fd : {in, out, errfd})
      if (fd >= 0)
        ::close(fd);
    *err = "cannot start " + shell + ": " + spawn_err;
    return false;
  }
  set_nonblocking(out);
  if (errfd >= 0)
    set_nonblocking(errfd);
  for (int fd : {in_fd_, out_fd_, err_fd_})
    if (fd >= 0)
      ::close(fd);
  {
    std::lock_guard<std::mutex> guard{in_mtx_};
    in_fd_ = in;
  }
  out_fd_ = out;
  err_fd_ = errfd;
  child_ = child;
  pty_mode_ = !pipe_mode;
  pump_running_ = true;
  OSB_INFO("execd", "", "",
           "pty " << id_ << ": started " << shell << " (pid " << child->pid()
                  << (pipe_mode ? ", pipes)" : ", pty)"));
  std::thread{[self = shared_from_this()] { self->pump(); }}.detach();
  return true;
}

void pty_session::pump() {
  std::shared_ptr<child_process> child;
  int out, errfd;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    child = child_;
    out = out_fd_;
    errfd = err_fd_;
  }
  std::vector<char> buf(1 + 32 * 1024);
  auto deliver = [&](uint8_t type, size_t n) {
    std::lock_guard<std::mutex> out_guard{out_mtx_};
    replay_.append({buf.data() + 1, n});
    std::shared_ptr<ws::connection> c;
    {
      std::lock_guard<std::mutex> guard{client_mtx_};
      c = client_;
    }
    if (!c)
      return;
    buf[0] = static_cast<char>(type);
    if (!c->send(ws::op_binary, {buf.data(), n + 1})) {
      c->close(ws::close_going_away, "write failed");
      std::lock_guard<std::mutex> guard{client_mtx_};
      if (client_ == c)
        client_.reset();
    }
  };
  bool open[2] = {out >= 0, errfd >= 0};
  bool exited = false;
  // Once the shell exited, what is still readable is drained briefly
  // (background jobs may hold the terminal open forever).
  std::optional<std::chrono::steady_clock::time_point> drain_until;
  while (open[0] || open[1]) {
    pollfd p[3];
    int idx[3];
    nfds_t n = 0;
    if (open[0]) {
      idx[n] = 0;
      p[n++] = {out, POLLIN, 0};
    }
    if (open[1]) {
      idx[n] = 1;
      p[n++] = {errfd, POLLIN, 0};
    }
    if (!exited) {
      idx[n] = 2;
      p[n++] = {child->exit_fd(), POLLIN, 0};
    }
    int timeout = -1;
    if (drain_until) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    *drain_until - std::chrono::steady_clock::now())
                    .count();
      if (left <= 0)
        break;
      timeout = static_cast<int>(left);
    }
    auto rc = ::poll(p, n, timeout);
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc < 0)
      break;
    if (rc == 0)
      break; // drain time is up
    for (nfds_t i = 0; i < n; ++i) {
      if (p[i].revents == 0)
        continue;
      if (idx[i] == 2) {
        exited = true;
        drain_until
          = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
        continue;
      }
      int fd = idx[i] == 0 ? out : errfd;
      auto got = ::read(fd, buf.data() + 1, buf.size() - 1);
      if (got > 0) {
        deliver(idx[i] == 0 ? pty_frame::stdout_data : pty_frame::stderr_data,
                static_cast<size_t>(got));
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        // EOF, or EIO from a PTY master once the last slave closed.
        open[idx[i]] = false;
      }
    }
  }
  auto st = child->wait();
  int code = st.code();
  OSB_INFO("execd", "", "",
           "pty " << id_ << ": shell exited (" << st.describe() << ")");
  {
    std::lock_guard<std::mutex> out_guard{out_mtx_};
    std::shared_ptr<ws::connection> c;
    {
      std::lock_guard<std::mutex> guard{client_mtx_};
      c.swap(client_);
    }
    if (c) {
      json_writer w;
      w.begin_object()
        .key("type")
        .string("exit")
        .key("exit_code")
        .integer(code)
        .end_object();
      c->send(ws::op_text, w.str());
      c->close(ws::close_normal, "process exited");
    }
  }
  std::lock_guard<std::mutex> guard{mtx_};
  {
    std::lock_guard<std::mutex> in_guard{in_mtx_};
    if (in_fd_ >= 0)
      ::close(in_fd_);
    in_fd_ = -1;
  }
  for (int* fd : {&out_fd_, &err_fd_}) {
    if (*fd >= 0)
      ::close(*fd);
    *fd = -1;
  }
  pump_running_ = false;
}

bool pty_session::write_stdin(std::string_view data) {
  std::lock_guard<std::mutex> guard{in_mtx_};
  if (in_fd_ < 0)
    return false;
  while (!data.empty()) {
    auto n = ::write(in_fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void pty_session::resize(uint16_t cols, uint16_t rows) {
  std::lock_guard<std::mutex> guard{in_mtx_};
  if (in_fd_ < 0 || !pty_mode_)
    return;
  winsize ws{};
  ws.ws_col = cols;
  ws.ws_row = rows;
  ::ioctl(in_fd_, TIOCSWINSZ, &ws);
}

void pty_session::handle_text(ws::connection& c, const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("type")
      || !doc["type"].IsString()) {
    c.send(ws::op_text, error_frame("INVALID_FRAME", "not a JSON frame"));
    return;
  }
  std::string type = doc["type"].GetString();
  auto str = [&](const char* k) -> std::string {
    auto i = doc.FindMember(k);
    return i != doc.MemberEnd() && i->value.IsString() ? i->value.GetString()
                                                       : "";
  };
  auto num = [&](const char* k) -> int64_t {
    auto i = doc.FindMember(k);
    return i != doc.MemberEnd() && i->value.IsInt64() ? i->value.GetInt64()
                                                      : -1;
  };
  if (type == "stdin") {
    if (!write_stdin(str("data")))
      c.send(ws::op_text, error_frame("STDIN_WRITE_FAILED",
                                      "the shell does not take input"));
  } else if (type == "resize") {
    auto cols = num("cols");
    auto rows = num("rows");
    if (cols < 1 || cols > 10000 || rows < 1 || rows > 10000) {
      c.send(ws::op_text, error_frame("INVALID_FRAME",
                                      "resize needs cols and rows in "
                                      "1..10000"));
      return;
    }
    resize(static_cast<uint16_t>(cols), static_cast<uint16_t>(rows));
  } else if (type == "signal") {
    auto sig = signal_number(str("signal"));
    std::shared_ptr<child_process> child;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      child = child_;
    }
    if (sig == 0)
      c.send(ws::op_text,
             error_frame("INVALID_FRAME", "unknown signal " + str("signal")));
    else if (child && !child->exited())
      child->signal_group(sig);
  } else if (type == "ping") {
    c.send(ws::op_text, R"({"type":"pong"})");
  } else {
    c.send(ws::op_text,
           error_frame("INVALID_FRAME", "unknown frame type " + type));
  }
}

void pty_session::serve(const std::shared_ptr<ws::connection>& ws,
                        bool pipe_mode, std::optional<uint64_t> since) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (closed_) {
      ws->send(ws::op_text, error_frame("SESSION_GONE", "session deleted"));
      ws->close(ws::close_normal, "session deleted");
      return;
    }
    if (!pump_running_) {
      std::string err;
      if (!start(pipe_mode, &err)) {
        ws->send(ws::op_text, error_frame("START_FAILED", err));
        ws->close(1011, "start failed");
        return;
      }
    }
  }
  // Take over: the previous client is closed first, which also frees the
  // output lock if a write to it is stuck.
  std::shared_ptr<ws::connection> old;
  {
    std::lock_guard<std::mutex> guard{client_mtx_};
    old = client_;
  }
  if (old) {
    OSB_INFO("execd", "", "", "pty " << id_ << ": taken over by a new client");
    old->send(ws::op_text, error_frame("TAKEN_OVER",
                                       "another client took the session"));
    old->close(ws::close_taken_over, "TAKEN_OVER");
  }
  {
    std::lock_guard<std::mutex> out_guard{out_mtx_};
    {
      std::lock_guard<std::mutex> guard{client_mtx_};
      client_ = ws;
    }
    uint64_t from = 0;
    auto missed = replay_.since(since.value_or(0), &from);
    if (!missed.empty()) {
      std::string frame(9, '\0');
      frame[0] = static_cast<char>(pty_frame::replay);
      for (int i = 0; i < 8; ++i)
        frame[1 + i] = static_cast<char>((from >> ((7 - i) * 8)) & 0xff);
      frame += missed;
      ws->send(ws::op_binary, frame);
    }
    json_writer w;
    w.begin_object()
      .key("type")
      .string("connected")
      .key("session_id")
      .string(id_)
      .key("mode")
      .string(pty_mode_ ? "pty" : "pipe")
      .end_object();
    ws->send(ws::op_text, w.str());
  }
  // Input until the client leaves: pings after 30 s of silence, and a
  // client silent for 60 s (no pong either) is dropped.
  int silent = 0;
  std::string payload;
  uint8_t op = 0;
  for (;;) {
    auto r = ws->read_message(payload, op, 30000);
    if (r == ws::connection::read_result::closed)
      break;
    if (r == ws::connection::read_result::timeout) {
      if (++silent >= 2) {
        ws->close(ws::close_going_away, "no traffic for 60 s");
        break;
      }
      ws->send(ws::op_ping, "");
      continue;
    }
    silent = 0;
    if (op == ws::op_binary) {
      if (!payload.empty() && static_cast<uint8_t>(payload[0])
                                == pty_frame::stdin_data) {
        if (!write_stdin(std::string_view{payload}.substr(1)))
          ws->send(ws::op_text,
                   error_frame("STDIN_WRITE_FAILED",
                               "the shell does not take input"));
      }
    } else if (op == ws::op_text) {
      handle_text(*ws, payload);
    }
  }
  std::lock_guard<std::mutex> guard{client_mtx_};
  if (client_ == ws)
    client_.reset();
}

void pty_session::close() {
  std::shared_ptr<child_process> child;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    closed_ = true;
    child = child_;
  }
  if (child && !child->exited()) {
    child->signal_group(SIGHUP);
    std::thread{[child] {
      if (!child->wait_for(std::chrono::milliseconds(500)))
        child->signal_group(SIGKILL);
    }}.detach();
  }
  std::shared_ptr<ws::connection> c;
  {
    std::lock_guard<std::mutex> guard{client_mtx_};
    c.swap(client_);
  }
  if (c)
    c->close(ws::close_normal, "session deleted");
}

pty_manager::pty_manager(size_t max_sessions) : max_(max_sessions) {
  // nop
}

pty_manager::~pty_manager() {
  std::map<std::string, std::shared_ptr<pty_session>> all;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    all.swap(sessions_);
  }
  for (auto& [id, s] : all)
    s->close();
}

std::string pty_manager::create(const pty_options& opts) {
  auto id = new_uuid();
  std::lock_guard<std::mutex> guard{mtx_};
  if (sessions_.size() >= max_)
    return {};
  sessions_.emplace(id, std::make_shared<pty_session>(id, opts));
  return id;
}

std::shared_ptr<pty_session> pty_manager::find(const std::string& id) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = sessions_.find(id);
  return i == sessions_.end() ? nullptr : i->second;
}

bool pty_manager::remove(const std::string& id) {
  std::shared_ptr<pty_session> s;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = sessions_.find(id);
    if (i == sessions_.end())
      return false;
    s = i->second;
    sessions_.erase(i);
  }
  s->close();
  return true;
}

} // namespace osb::execd
