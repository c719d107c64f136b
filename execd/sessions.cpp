#include "execd/sessions.hpp"

#include "execd/commands.hpp"
#include "base/log.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace osb::execd {

std::string session_script(const std::string& state_dir,
                           const std::string& cwd,
                           const std::string& command) {
  std::string s;
  s += "__osb_state=" + shell_quote(state_dir) + "\n";
  s += "if [ -f \"$__osb_state/env\" ]; then . \"$__osb_state/env\" "
       ">/dev/null 2>&1; fi\n";
  s += "cd " + shell_quote(cwd) + " || exit 1\n";
  s += "trap '__osb_ec=$?; export -p > \"$__osb_state/env\" 2>/dev/null; "
       "printf \"%s\" \"$PWD\" > \"$__osb_state/cwd\" 2>/dev/null; "
       "exit $__osb_ec' EXIT\n";
  s += command;
  s += "\n";
  return s;
}

session_manager::session_manager(std::string dir) : dir_(std::move(dir)) {
  make_dirs(dir_, 0700);
}

std::string session_manager::create(const std::string& cwd, std::string* err) {
  std::string dir = cwd;
  if (dir.empty()) {
    char buf[4096];
    dir = ::getcwd(buf, sizeof(buf)) != nullptr ? buf : "/";
  }
  if (auto e = make_dirs(dir, 0755); e != 0) {
    if (err != nullptr)
      *err = "cannot create " + dir + ": " + errno_text(e);
    return {};
  }
  auto s = std::make_shared<session>();
  s->id = new_uuid();
  s->dir = dir_ + "/" + s->id;
  s->cwd = dir;
  if (auto e = make_dirs(s->dir, 0700); e != 0) {
    if (err != nullptr)
      *err = "cannot create " + s->dir + ": " + errno_text(e);
    return {};
  }
  std::lock_guard<std::mutex> guard{mtx_};
  sessions_.emplace(s->id, s);
  return s->id;
}

std::shared_ptr<session_manager::session>
session_manager::find(const std::string& id) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = sessions_.find(id);
  return i == sessions_.end() ? nullptr : i->second;
}

bool session_manager::exists(const std::string& id) const {
  return find(id) != nullptr;
}

std::string session_manager::cwd_of(const std::string& id) const {
  auto s = find(id);
  if (!s)
    return {};
  std::lock_guard<std::mutex> guard{s->run_mtx};
  return s->cwd;
}

session_manager::run_result
session_manager::run(const std::string& id, const session_run_request& req,
                     event_sink& sink) {
  auto s = find(id);
  if (!s)
    return run_result::unknown;
  std::lock_guard<std::mutex> run_guard{s->run_mtx};
  if (s->closed)
    return run_result::unknown;
  auto start = std::chrono::steady_clock::now();
  auto cwd = req.cwd.empty() ? s->cwd : req.cwd;
  auto script_path = s->dir + "/run.sh";
  auto cwd_path = s->dir + "/cwd";
  ::unlink(cwd_path.c_str());
  auto fail = [&](const std::string& msg) {
    auto out = encode_init(s->id, now_ms());
    out += encode_error("CommandExecError", msg, {msg}, now_ms());
    sink.write(out);
    return run_result::ok;
  };
  {
    auto fd = ::open(script_path.c_str(),
                     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
      return fail("cannot write " + script_path + ": " + errno_text(errno));
    auto text = session_script(s->dir, cwd, req.command);
    size_t off = 0;
    while (off < text.size()) {
      auto n = ::write(fd, text.data() + off, text.size() - off);
      if (n <= 0) {
        if (n < 0 && errno == EINTR)
          continue;
        auto e = errno;
        ::close(fd);
        return fail("cannot write " + script_path + ": " + errno_text(e));
      }
      off += static_cast<size_t>(n);
    }
    ::close(fd);
  }
  auto env = command_env({});
  auto shell = find_shell(env);
  spawn_options opts;
  if (basename_of(shell) == "bash")
    opts.argv = {shell, "--noprofile", "--norc", script_path};
  else
    opts.argv = {shell, script_path};
  opts.env = std::move(env);
  int p[2];
  if (!make_pipe(p))
    return fail("pipe: " + errno_text(errno));
  opts.stdout_fd = p[1];
  opts.stderr_fd = p[1];
  std::string err;
  auto child = spawn_process(opts, &err);
  ::close(p[1]);
  if (!child) {
    ::close(p[0]);
    return fail(err);
  }
  {
    std::lock_guard<std::mutex> guard{s->child_mtx};
    s->current = child;
  }
  if (s->closed)
    child->signal_group(SIGKILL);
  auto res = sink.write(encode_init(s->id, now_ms()))
               ? pump_output(child, p[0], -1, sink, req.timeout_ms)
               : (drain_and_close(p[0]), pump_result{true, false});
  auto st = child->wait();
  {
    std::lock_guard<std::mutex> guard{s->child_mtx};
    s->current.reset();
  }
  std::string new_cwd;
  if (read_file(cwd_path, new_cwd) && !new_cwd.empty()) {
    struct stat sb{};
    if (::stat(new_cwd.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode))
      s->cwd = new_cwd;
  }
  if (res.client_gone)
    return run_result::ok;
  if (!st.signaled() && st.code() == 0) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - start)
                .count();
    sink.write(encode_complete(ms, now_ms()));
  } else {
    auto trace = st.signaled() ? st.describe()
                               : "command exited with code "
                                   + std::to_string(st.code());
    sink.write(encode_error("CommandExecError", std::to_string(st.code()),
                            {trace}, now_ms()));
  }
  return run_result::ok;
}

bool session_manager::remove(const std::string& id) {
  std::shared_ptr<session> s;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = sessions_.find(id);
    if (i == sessions_.end())
      return false;
    s = std::move(i->second);
    sessions_.erase(i);
  }
  s->closed = true;
  {
    std::lock_guard<std::mutex> guard{s->child_mtx};
    if (s->current)
      s->current->signal_group(SIGKILL);
  }
  std::error_code ec;
  std::filesystem::remove_all(s->dir, ec);
  OSB_INFO("execd", "", "", "session " << id << " deleted");
  return true;
}

} // namespace osb::execd
