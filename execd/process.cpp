#include "execd/process.hpp"

#include "base/strings.hpp"
#include "execd/users.hpp"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <thread>
#include <unordered_map>

#ifndef CLOSE_RANGE_CLOEXEC
#  define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace osb::execd {

// -- exit_status --------------------------------------------------------------

bool exit_status::signaled() const {
  return WIFSIGNALED(raw);
}

int exit_status::code() const {
  if (WIFEXITED(raw))
    return WEXITSTATUS(raw);
  return -1;
}

namespace {

/// Go's names of signals (syscall.Signal.String).
std::string signal_name(int sig) {
  switch (sig) {
    case SIGHUP:
      return "hangup";
    case SIGINT:
      return "interrupt";
    case SIGQUIT:
      return "quit";
    case SIGILL:
      return "illegal instruction";
    case SIGTRAP:
      return "trace/breakpoint trap";
    case SIGABRT:
      return "aborted";
    case SIGBUS:
      return "bus error";
    case SIGFPE:
      return "floating point exception";
    case SIGKILL:
      return "killed";
    case SIGUSR1:
      return "user defined signal 1";
    case SIGSEGV:
      return "segmentation fault";
    case SIGUSR2:
      return "user defined signal 2";
    case SIGPIPE:
      return "broken pipe";
    case SIGALRM:
      return "alarm clock";
    case SIGTERM:
      return "terminated";
    default:
      return "signal " + std::to_string(sig);
  }
}

} // namespace

std::string exit_status::describe() const {
  if (WIFEXITED(raw))
    return "exit status " + std::to_string(WEXITSTATUS(raw));
  if (WIFSIGNALED(raw)) {
    auto out = "signal: " + signal_name(WTERMSIG(raw));
    if (WCOREDUMP(raw))
      out += " (core dumped)";
    return out;
  }
  return "exit status " + std::to_string(raw);
}

// -- child_process ------------------------------------------------------------

child_process::child_process(pid_t pid)
  : pid_(pid), efd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  // nop
}

child_process::~child_process() {
  if (efd_ >= 0)
    ::close(efd_);
}

bool child_process::exited() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return status_.has_value();
}

std::optional<exit_status> child_process::status() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return status_;
}

timespec child_process::exit_time() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return exit_time_;
}

bool child_process::wait_for(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> guard{mtx_};
  return cv_.wait_for(guard, timeout, [&] { return status_.has_value(); });
}

exit_status child_process::wait() const {
  std::unique_lock<std::mutex> guard{mtx_};
  cv_.wait(guard, [&] { return status_.has_value(); });
  return *status_;
}

void child_process::signal_group(int sig) const {
  ::kill(-pid_, sig);
}

bool child_process::group_alive() const {
  return ::kill(-pid_, 0) == 0 || errno == EPERM;
}

void child_process::terminate_group(std::chrono::milliseconds grace) const {
  signal_group(SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (wait_for(std::chrono::milliseconds(50)) && !group_alive())
      return;
  }
  signal_group(SIGKILL);
  // Wait (bounded) until the killed members are reaped, so that callers see
  // an empty group.
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < deadline) {
    if (wait_for(std::chrono::milliseconds(10)) && !group_alive())
      return;
  }
}

void child_process::set_exited(int raw) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    status_ = exit_status{raw};
    exit_time_ = wall_clock();
  }
  cv_.notify_all();
  uint64_t one = 1;
  auto n = ::write(efd_, &one, sizeof(one));
  (void) n;
}

// -- registry and reaper ------------------------------------------------------

namespace {

/// All children we spawned and have not reaped yet, plus the process groups
/// we created. One thread reaps with waitpid(-1): execd may be a child
/// subreaper, so orphaned descendants must be reaped too, and a single
/// waiter avoids racing per-child waits against it.
struct registry {
  std::mutex mtx;
  std::condition_variable cv;
  uint64_t generation = 0;
  std::unordered_map<pid_t, std::shared_ptr<child_process>> live;
  std::set<pid_t> groups;
  bool reaper_started = false;
};

registry& reg() {
  static auto* x = new registry; // never destroyed: the reaper outlives main
  return *x;
}

void reaper_loop() {
  auto& r = reg();
  for (;;) {
    uint64_t gen;
    {
      std::lock_guard<std::mutex> guard{r.mtx};
      gen = r.generation;
    }
    int raw = 0;
    auto pid = ::waitpid(-1, &raw, __WALL);
    if (pid > 0) {
      std::shared_ptr<child_process> child;
      {
        std::lock_guard<std::mutex> guard{r.mtx};
        auto i = r.live.find(pid);
        if (i != r.live.end()) {
          child = std::move(i->second);
          r.live.erase(i);
        }
      }
      if (child)
        child->set_exited(raw);
      continue;
    }
    if (errno == EINTR)
      continue;
    // ECHILD: sleep until the next spawn.
    std::unique_lock<std::mutex> guard{r.mtx};
    r.cv.wait(guard, [&] { return r.generation != gen; });
  }
}

/// Removes process groups without members (so that a recycled pid never
/// makes us signal a stranger). Call with the lock held.
void prune_groups(registry& r) {
  for (auto i = r.groups.begin(); i != r.groups.end();) {
    if (r.live.count(*i) == 0 && ::kill(-*i, 0) != 0 && errno == ESRCH)
      i = r.groups.erase(i);
    else
      ++i;
  }
}

} // namespace

bool cloexec_listed_fds(int keep) {
  // The kernel's linux_dirent64 (getdents64 needs no allocation, unlike
  // opendir).
  struct entry {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[1];
  };
  int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0)
    return false;
  alignas(8) char buf[4096];
  bool ok = true;
  for (;;) {
    auto n = ::syscall(SYS_getdents64, dir, buf, sizeof buf);
    if (n <= 0) {
      ok = n == 0;
      break;
    }
    for (long at = 0; at < n;) {
      auto* e = reinterpret_cast<const entry*>(buf + at);
      at += e->reclen;
      int fd = 0;
      bool number = e->name[0] != '\0';
      for (const char* c = e->name; *c != '\0' && number; ++c) {
        number = *c >= '0' && *c <= '9';
        fd = fd * 10 + (*c - '0');
      }
      if (number && fd > 2 && fd != keep && fd != dir)
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
  }
  ::close(dir);
  return ok;
}

bool make_pipe(int fds[2]) {
  return ::pipe2(fds, O_CLOEXEC) == 0;
}

std::shared_ptr<child_process> spawn_process(const spawn_options& opts,
                                             std::string* err) {
  auto fail = [&](const std::string& what) {
    if (err != nullptr)
      *err = what;
    return nullptr;
  };
  if (opts.argv.empty())
    return fail("empty argv");
  // Everything the child needs is prepared before fork: after fork only
  // async-signal-safe calls are allowed.
  std::vector<char*> argv;
  for (auto& a : opts.argv)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : opts.env)
    envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  bool change_user = opts.uid.has_value();
  uid_t uid = change_user ? static_cast<uid_t>(*opts.uid) : 0;
  gid_t gid = ::getgid();
  std::vector<gid_t> groups;
  if (change_user) {
    auto pw = users::by_uid(uid);
    if (pw) {
      gid = pw->gid;
      groups = users::groups_of(pw->name);
    }
    if (opts.gid)
      gid = static_cast<gid_t>(*opts.gid);
    groups.push_back(gid);
  }
  int null_fd = -1;
  if (opts.stdin_fd < 0 || opts.stdout_fd < 0 || opts.stderr_fd < 0) {
    null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0)
      return fail("open /dev/null: " + errno_text(errno));
  }
  int in_fd = opts.stdin_fd >= 0 ? opts.stdin_fd : null_fd;
  int out_fd = opts.stdout_fd >= 0 ? opts.stdout_fd : null_fd;
  int err_fd = opts.stderr_fd >= 0 ? opts.stderr_fd : null_fd;
  int report[2];
  if (!make_pipe(report)) {
    auto e = errno;
    if (null_fd >= 0)
      ::close(null_fd);
    return fail("pipe: " + errno_text(e));
  }
  const char* cwd = opts.cwd.empty() ? nullptr : opts.cwd.c_str();
  auto& r = reg();
  std::shared_ptr<child_process> child;
  pid_t pid;
  {
    // Holding the lock across fork keeps the reaper from looking the pid up
    // before it is registered.
    std::lock_guard<std::mutex> guard{r.mtx};
    if (!r.reaper_started) {
      r.reaper_started = true;
      std::thread{reaper_loop}.detach();
    }
    pid = ::fork();
    if (pid == 0) {
      // Child.
      auto report_errno = [&](int e) {
        auto n = ::write(report[1], &e, sizeof(e));
        (void) n;
        ::_exit(127);
      };
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      struct sigaction dfl{};
      dfl.sa_handler = SIG_DFL;
      for (int s = 1; s < NSIG; ++s)
        if (s != SIGKILL && s != SIGSTOP)
          ::sigaction(s, &dfl, nullptr);
      ::setsid();
      // Move the stream sources above 2 first, so dup2 cannot clobber one.
      int src[3] = {in_fd, out_fd, err_fd};
      for (auto& fd : src)
        if (fd < 3) {
          int x = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
          if (x < 0)
            report_errno(errno);
          fd = x;
        }
      for (int i = 0; i < 3; ++i)
        if (::dup2(src[i], i) < 0)
          report_errno(errno);
      if (opts.controlling_tty && ::ioctl(0, TIOCSCTTY, 0) != 0)
        report_errno(errno);
      if (cwd != nullptr && ::chdir(cwd) != 0)
        report_errno(errno);
      if (change_user) {
        if (::setgroups(groups.size(), groups.data()) != 0 && errno != EPERM)
          report_errno(errno);
        if (::setgid(gid) != 0 || ::setuid(uid) != 0)
          report_errno(errno);
      }
      // Descriptors without O_CLOEXEC (Asio sockets) must not leak into the
      // command: a leaked client socket would keep connections open.
      if (::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0
          && !cloexec_listed_fds(report[1])) {
        for (int fd = 3; fd < 65536; ++fd)
          if (fd != report[1])
            ::fcntl(fd, F_SETFD, FD_CLOEXEC);
      }
      ::execve(argv[0], argv.data(), envp.data());
      report_errno(errno);
    }
    if (pid < 0) {
      auto e = errno;
      ::close(report[0]);
      ::close(report[1]);
      if (null_fd >= 0)
        ::close(null_fd);
      return fail("fork: " + errno_text(e));
    }
    child = std::make_shared<child_process>(pid);
    prune_groups(r);
    r.live.emplace(pid, child);
    r.groups.insert(pid);
    ++r.generation;
  }
  r.cv.notify_all();
  ::close(report[1]);
  if (null_fd >= 0)
    ::close(null_fd);
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(report[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n == static_cast<ssize_t>(sizeof(child_errno))) {
    child->wait();
    return fail(errno_text(child_errno));
  }
  return child;
}

void signal_all_groups(int sig) {
  auto& r = reg();
  std::lock_guard<std::mutex> guard{r.mtx};
  for (auto g : r.groups)
    ::kill(-g, sig);
}

bool any_group_alive() {
  auto& r = reg();
  std::lock_guard<std::mutex> guard{r.mtx};
  prune_groups(r);
  return !r.groups.empty();
}

// -- shell and environment ----------------------------------------------------

std::string find_executable(std::string_view name, std::string_view path_var) {
  if (name.find('/') != std::string_view::npos)
    return std::string{name};
  while (true) {
    auto colon = path_var.find(':');
    auto dir = path_var.substr(0, colon);
    if (dir.empty())
      dir = ".";
    std::string candidate{dir};
    candidate += '/';
    candidate += name;
    struct stat st{};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)
        && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
    if (colon == std::string_view::npos)
      break;
    path_var.remove_prefix(colon + 1);
  }
  return {};
}

std::string find_shell(const env_list& env) {
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  if (auto p = env_get(env, "PATH"); p && !p->empty())
    path = *p + ":" + path;
  if (auto bash = find_executable("bash", path); !bash.empty())
    return bash;
  if (::access("/bin/sh", X_OK) == 0)
    return "/bin/sh";
  if (auto sh = find_executable("sh", path); !sh.empty())
    return sh;
  return "/bin/sh";
}

namespace {

bool valid_name(std::string_view x) {
  if (x.empty() || (x[0] >= '0' && x[0] <= '9'))
    return false;
  for (auto c : x)
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
          || (c >= '0' && c <= '9')))
      return false;
  return true;
}

} // namespace

void apply_env_file(std::string_view text, env_list& env) {
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{}
                                        : text.substr(nl + 1);
    if (line.empty() || line[0] == '#')
      continue;
    if (line.substr(0, 7) == "export ")
      line = trim(line.substr(7));
    auto eq = line.find('=');
    if (eq == std::string_view::npos)
      continue;
    auto key = trim(line.substr(0, eq));
    auto value = trim(line.substr(eq + 1));
    if (!valid_name(key))
      continue;
    auto lookup = [&](const std::string& name) { return env_get(env, name); };
    std::string result;
    if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') {
      result = std::string{value.substr(1, value.size() - 2)};
    } else {
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      result = *expand_vars(value, lookup, false);
    }
    env_set(env, key, result);
  }
}

env_list command_env(const std::map<std::string, std::string>& overrides) {
  auto env = current_env();
  if (auto file = env_get(env, "EXECD_ENVS"); file && !file->empty()) {
    std::string text;
    if (read_file(*file, text))
      apply_env_file(text, env);
  }
  for (auto& [k, v] : overrides)
    env_set(env, k, v);
  return env;
}

// -- drain --------------------------------------------------------------------

namespace {

struct drainer {
  int ep = ::epoll_create1(EPOLL_CLOEXEC);

  drainer() {
    std::thread{[this] { run(); }}.detach();
  }

  void run() {
    epoll_event evs[16];
    char buf[65536];
    for (;;) {
      auto n = ::epoll_wait(ep, evs, 16, -1);
      for (int i = 0; i < n; ++i) {
        int fd = evs[i].data.fd;
        for (;;) {
          auto got = ::read(fd, buf, sizeof(buf));
          if (got > 0)
            continue;
          if (got < 0 && (errno == EAGAIN || errno == EINTR))
            break;
          ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
          ::close(fd);
          break;
        }
      }
    }
  }
};

} // namespace

void drain_and_close(int fd) {
  static auto* d = new drainer; // lives until exit
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.fd = fd;
  if (::epoll_ctl(d->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
    ::close(fd);
}

} // namespace osb::execd
