#include "execd/commands.hpp"

#include "execd/json.hpp"
#include "base/log.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

namespace osb::execd {

namespace {

using clock = std::chrono::steady_clock;

/// Upper bound for output read after the command exited (descendants may
/// keep writing; they are not waited for).
constexpr size_t max_tail_bytes = 4 * 1024 * 1024;

/// Keep this many command records; older finished ones are forgotten.
constexpr size_t max_records = 4096;

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

int64_t elapsed_ms(clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now()
                                                               - since)
    .count();
}

/// Nobody watches `child` anymore, but its timeout still applies.
void kill_after(const std::shared_ptr<child_process>& child,
                clock::time_point deadline) {
  if (child->exited())
    return;
  std::thread{[child, deadline] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - clock::now());
    if (!child->wait_for(std::max(left, std::chrono::milliseconds(0))))
      child->signal_group(SIGKILL);
  }}.detach();
}

} // namespace

pump_result pump_output(const std::shared_ptr<child_process>& child,
                        int out_fd, int err_fd, event_sink& sink,
                        int64_t timeout_ms,
                        std::chrono::milliseconds ping_every) {
  pump_result result;
  struct source {
    int fd;
    const char* type;
    line_splitter lines;
  };
  source srcs[2] = {{out_fd, "stdout", line_splitter{}},
                    {err_fd, "stderr", line_splitter{}}};
  for (auto& s : srcs)
    if (s.fd >= 0)
      set_nonblocking(s.fd);
  auto start = clock::now();
  auto deadline = timeout_ms > 0 ? start + std::chrono::milliseconds(timeout_ms)
                                 : clock::time_point::max();
  auto next_ping = start + ping_every;
  // Events decoded from one pipe read go out as one chunk right away:
  // nothing waits for more output, but 100 MB of short lines do not cost a
  // syscall per line either.
  std::string batch;
  std::vector<char> buf(64 * 1024);
  auto flush = [&] {
    if (!batch.empty() && !result.client_gone && !sink.write(batch))
      result.client_gone = true;
    batch.clear();
  };
  // Reads once from `s`; returns the number of bytes read (0 when nothing
  // was available or at EOF).
  auto read_once = [&](source& s) -> size_t {
    auto n = ::read(s.fd, buf.data(), buf.size());
    if (n > 0) {
      auto ts = now_ms();
      s.lines.feed(std::string_view{buf.data(), static_cast<size_t>(n)},
                   [&](std::string_view line) {
                     batch += encode_output(s.type, line, ts);
                   });
      return static_cast<size_t>(n);
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return 0;
    // EOF or error: the last partial line is complete now.
    auto ts = now_ms();
    s.lines.finish(
      [&](std::string_view line) { batch += encode_output(s.type, line, ts); });
    ::close(s.fd);
    s.fd = -1;
    return 0;
  };
  bool exited = false;
  while (!result.client_gone) {
    pollfd pfds[3];
    int n = 0;
    for (auto& s : srcs)
      if (s.fd >= 0)
        pfds[n++] = pollfd{s.fd, POLLIN, 0};
    if (!exited)
      pfds[n++] = pollfd{child->exit_fd(), POLLIN, 0};
    if (n == 0)
      break;
    auto now = clock::now();
    auto wake = std::min(next_ping, deadline);
    auto wait_ms = wake <= now ? 0
                               : std::chrono::duration_cast<
                                   std::chrono::milliseconds>(wake - now)
                                     .count()
                                   + 1;
    auto rc = ::poll(pfds, static_cast<nfds_t>(n),
                     static_cast<int>(std::min<int64_t>(wait_ms, 60000)));
    if (rc < 0 && errno != EINTR)
      break;
    bool saw_exit = false;
    for (int i = 0; i < n && rc > 0; ++i) {
      if (pfds[i].revents == 0)
        continue;
      if (pfds[i].fd == child->exit_fd()) {
        saw_exit = true;
        continue;
      }
      for (auto& s : srcs)
        if (s.fd == pfds[i].fd)
          read_once(s);
    }
    flush();
    if (saw_exit) {
      exited = true;
      // Whatever the command wrote is in the pipes now; take it, but do
      // not wait for descendants that still hold the write ends.
      for (auto& s : srcs) {
        size_t taken = 0;
        while (s.fd >= 0 && taken < max_tail_bytes && !result.client_gone) {
          auto n = read_once(s);
          flush();
          if (n == 0)
            break;
          taken += n;
        }
        auto ts = now_ms();
        s.lines.finish([&](std::string_view line) {
          batch += encode_output(s.type, line, ts);
        });
      }
      flush();
      break;
    }
    now = clock::now();
    if (now >= deadline && !result.timed_out) {
      result.timed_out = true;
      child->signal_group(SIGKILL);
      deadline = clock::time_point::max();
    }
    if (now >= next_ping) {
      batch += encode_ping(now_ms());
      flush();
      next_ping = now + ping_every;
    }
  }
  for (auto& s : srcs)
    if (s.fd >= 0)
      drain_and_close(s.fd);
  if (result.client_gone && deadline != clock::time_point::max())
    kill_after(child, deadline);
  return result;
}

std::vector<std::string> shell_argv(const env_list& env,
                                    const std::string& command) {
  return {find_shell(env), "-c", command};
}

// -- command_record -----------------------------------------------------------

bool command_record::running() const {
  return child && !child->exited();
}

std::string command_record::status_json() const {
  json_writer w;
  w.begin_object();
  w.key("id").string(id);
  w.key("content").string(content);
  w.key("running").boolean(running());
  std::optional<exit_status> st;
  if (child)
    st = child->status();
  if (st) {
    w.key("exit_code").integer(st->code());
    if (st->code() != 0)
      w.key("error").string(st->describe());
  } else if (!child) {
    w.key("exit_code").integer(255);
    w.key("error").string(spawn_error);
  }
  w.key("started_at").string(rfc3339(started_at));
  if (st)
    w.key("finished_at").string(rfc3339(child->exit_time()));
  else if (!child)
    w.key("finished_at").string(rfc3339(failed_at));
  w.end_object();
  return w.take();
}

// -- command_manager ----------------------------------------------------------

command_manager::command_manager(std::string dir) : dir_(std::move(dir)) {
  make_dirs(dir_, 0755);
}

std::shared_ptr<command_record> command_manager::add(std::string content,
                                                     bool background) {
  auto rec = std::make_shared<command_record>();
  rec->id = random_hex(16);
  rec->content = std::move(content);
  rec->background = background;
  rec->started_at = wall_clock();
  std::lock_guard<std::mutex> guard{mtx_};
  records_.emplace(rec->id, rec);
  order_.push_back(rec->id);
  // Forget the oldest finished commands beyond the cap.
  for (size_t scanned = 0; records_.size() > max_records
                           && scanned < order_.size();) {
    auto id = order_.front();
    order_.pop_front();
    auto i = records_.find(id);
    if (i != records_.end() && i->second->running()) {
      order_.push_back(id);
      ++scanned;
      continue;
    }
    records_.erase(id);
  }
  return rec;
}

std::shared_ptr<command_record>
command_manager::find(const std::string& id) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = records_.find(id);
  return i == records_.end() ? nullptr : i->second;
}

std::string command_manager::run(const command_request& req,
                                 event_sink& sink) {
  auto env = command_env(req.envs);
  spawn_options opts;
  opts.argv = shell_argv(env, req.command);
  opts.env = std::move(env);
  opts.cwd = req.cwd;
  opts.uid = req.uid;
  opts.gid = req.gid;
  auto start = clock::now();
  if (req.background) {
    auto rec = add(req.command, true);
    rec->log_path = dir_ + "/" + rec->id + ".output";
    auto log_fd = ::open(rec->log_path.c_str(),
                         O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0)
      return "failed to create log file " + rec->log_path + ": "
             + errno_text(errno);
    opts.stdout_fd = log_fd;
    opts.stderr_fd = log_fd;
    std::string err;
    rec->child = spawn_process(opts, &err);
    ::close(log_fd);
    auto out = encode_init(rec->id, now_ms());
    if (!rec->child) {
      rec->spawn_error = err;
      rec->failed_at = wall_clock();
      out += encode_error("CommandExecError", err, {err}, now_ms());
      sink.write(out);
      return {};
    }
    OSB_INFO("execd", "", "",
             "command " << rec->id << " started in background, pid "
                        << rec->child->pid());
    out += encode_complete(elapsed_ms(start), now_ms());
    sink.write(out);
    if (req.timeout_ms > 0)
      kill_after(rec->child, start + std::chrono::milliseconds(req.timeout_ms));
    return {};
  }
  int out_pipe[2];
  int err_pipe[2];
  if (!make_pipe(out_pipe))
    return "pipe: " + errno_text(errno);
  if (!make_pipe(err_pipe)) {
    auto e = errno;
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return "pipe: " + errno_text(e);
  }
  auto rec = add(req.command, false);
  opts.stdout_fd = out_pipe[1];
  opts.stderr_fd = err_pipe[1];
  std::string err;
  rec->child = spawn_process(opts, &err);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  auto head = encode_init(rec->id, now_ms());
  if (!rec->child) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    rec->spawn_error = err;
    rec->failed_at = wall_clock();
    head += encode_error("CommandExecError", err, {err}, now_ms());
    sink.write(head);
    return {};
  }
  head += encode_ping(now_ms());
  if (!sink.write(head)) {
    // Client gone before the first byte: the command still runs, as in Go.
    drain_and_close(out_pipe[0]);
    drain_and_close(err_pipe[0]);
    if (req.timeout_ms > 0)
      kill_after(rec->child, start + std::chrono::milliseconds(req.timeout_ms));
    return {};
  }
  auto res = pump_output(rec->child, out_pipe[0], err_pipe[0], sink,
                         req.timeout_ms);
  if (res.client_gone)
    return {};
  auto st = rec->child->wait();
  if (!st.signaled() && st.code() == 0)
    sink.write(encode_complete(elapsed_ms(start), now_ms()));
  else
    sink.write(encode_error("CommandExecError", std::to_string(st.code()),
                            {st.describe()}, now_ms()));
  return {};
}

command_manager::interrupt_result
command_manager::interrupt(const std::string& id,
                           std::chrono::milliseconds grace) {
  auto rec = find(id);
  if (!rec)
    return interrupt_result::unknown;
  if (!rec->running())
    return interrupt_result::not_running;
  OSB_INFO("execd", "", "", "interrupting command " << id);
  rec->child->terminate_group(grace);
  return interrupt_result::done;
}

} // namespace osb::execd
