#include "execd/daemon.hpp"

#include "execd/claim.hpp"
#include "execd/code.hpp"
#include "execd/commands.hpp"
#include "base/log.hpp"
#include "execd/metrics.hpp"
#include "execd/process.hpp"
#include "execd/pty.hpp"
#include "execd/routes.hpp"
#include "execd/server.hpp"
#include "execd/sessions.hpp"
#include "execd/util.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace osb::execd {

namespace {

constexpr const char* version_text = "opensandbox-execd 1.0.0 (C++)";

constexpr const char* usage_text
  = "usage: opensandbox-execd [flags] [--bootstrap [--] [command...]]\n"
    "\n"
    "  --port N                         listen port (default 44772)\n"
    "  --access-token T                 require X-EXECD-ACCESS-TOKEN "
    "(env EXECD_ACCESS_TOKEN)\n"
    "  --jupyter-host URL               accepted, unused (env JUPYTER_HOST)\n"
    "  --jupyter-token T                accepted, unused (env JUPYTER_TOKEN)\n"
    "  --graceful-shutdown-timeout D    accepted, unused "
    "(env EXECD_API_GRACE_SHUTDOWN)\n"
    "  --jupyter-idle-poll-interval D   accepted, unused\n"
    "  --log-level N                    0-7 as syslog: 7 debug, 6 info "
    "(default),\n"
    "                                   4-5 warning, 0-3 error\n"
    "  --await-claim                    with --bootstrap: start the command\n"
    "                                   once POST /bootstrap/claim arrives\n"
    "  --bootstrap [--] [command...]    container entrypoint mode: start the\n"
    "                                   daemon in the background, then exec\n"
    "                                   the command (default /bin/sh;\n"
    "                                   BOOTSTRAP_CMD runs via sh -c)\n"
    "\n"
    "Environment: EXECD_ENVS (KEY=VALUE file merged into command "
    "environments),\n"
    "EXECD_LOG_FILE (log destination, default stderr).\n";

std::string env_or(const char* name, std::string fallback) {
  auto v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string{v} : fallback;
}

} // namespace

std::optional<int64_t> parse_go_duration(const std::string& x) {
  if (x.empty())
    return std::nullopt;
  if (x == "0")
    return 0;
  double total = 0;
  size_t i = 0;
  while (i < x.size()) {
    size_t j = i;
    while (j < x.size() && ((x[j] >= '0' && x[j] <= '9') || x[j] == '.'))
      ++j;
    if (j == i)
      return std::nullopt;
    auto value = std::strtod(x.substr(i, j - i).c_str(), nullptr);
    size_t k = j;
    while (k < x.size() && !((x[k] >= '0' && x[k] <= '9') || x[k] == '.'))
      ++k;
    auto unit = x.substr(j, k - j);
    double ms;
    if (unit == "ns")
      ms = 1e-6;
    else if (unit == "us" || unit == "\xC2\xB5s")
      ms = 1e-3;
    else if (unit == "ms")
      ms = 1;
    else if (unit == "s")
      ms = 1000;
    else if (unit == "m")
      ms = 60000;
    else if (unit == "h")
      ms = 3600000;
    else
      return std::nullopt;
    total += value * ms;
    i = k;
  }
  return static_cast<int64_t>(total);
}

std::optional<daemon_options> parse_options(const std::vector<std::string>& args,
                                            std::string* err) {
  daemon_options o;
  o.access_token = env_or("EXECD_ACCESS_TOKEN", "");
  o.jupyter_host = env_or("JUPYTER_HOST", "");
  o.jupyter_token = env_or("JUPYTER_TOKEN", "");
  o.graceful_shutdown_timeout = env_or("EXECD_API_GRACE_SHUTDOWN", "1s");
  o.jupyter_idle_poll_interval
    = env_or("EXECD_JUPYTER_IDLE_POLL_INTERVAL", "100ms");
  auto fail = [&](std::string msg) -> std::optional<daemon_options> {
    if (err != nullptr)
      *err = std::move(msg);
    return std::nullopt;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    auto arg = args[i];
    if (arg == "--bootstrap" || arg == "-bootstrap") {
      o.bootstrap = true;
      size_t k = i + 1;
      if (k < args.size() && args[k] == "--")
        ++k;
      o.user_argv.assign(args.begin() + static_cast<long>(k), args.end());
      break;
    }
    if (arg == "--await-claim") {
      o.await_claim = true;
      continue;
    }
    if (arg == "-h" || arg == "--help" || arg == "-help") {
      o.help = true;
      continue;
    }
    if (arg == "--version" || arg == "-version") {
      o.version = true;
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-')
      return fail("unexpected argument: " + arg);
    auto name = arg.substr(arg[1] == '-' ? 2 : 1);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    static const char* known[]
      = {"port",
         "access-token",
         "jupyter-host",
         "jupyter-token",
         "graceful-shutdown-timeout",
         "jupyter-idle-poll-interval",
         "log-level"};
    bool ok = false;
    for (auto k : known)
      ok = ok || name == k;
    if (!ok)
      return fail("unknown flag: " + arg);
    if (!value) {
      if (i + 1 >= args.size())
        return fail("flag needs a value: " + arg);
      value = args[++i];
    }
    if (name == "port") {
      auto p = parse_u64(*value);
      if (!p || *p > 65535)
        return fail("invalid port: " + *value);
      o.port = static_cast<uint16_t>(*p);
    } else if (name == "access-token") {
      o.access_token = *value;
    } else if (name == "jupyter-host") {
      o.jupyter_host = *value;
    } else if (name == "jupyter-token") {
      o.jupyter_token = *value;
    } else if (name == "graceful-shutdown-timeout") {
      o.graceful_shutdown_timeout = *value;
    } else if (name == "jupyter-idle-poll-interval") {
      o.jupyter_idle_poll_interval = *value;
    } else if (name == "log-level") {
      auto l = parse_u64(*value);
      if (!l || *l > 7)
        return fail("invalid log level: " + *value);
      o.log_level = static_cast<int>(*l);
    }
  }
  return o;
}

namespace {

/// Logs to EXECD_LOG_FILE (stderr when unset or not writable), at the level
/// of `--log-level` (the Go execd's syslog-style numbers).
void init_log(const daemon_options& opts) {
  auto level = opts.log_level >= 7   ? log::level::debug
               : opts.log_level == 6 ? log::level::info
               : opts.log_level >= 4 ? log::level::warning
                                     : log::level::error;
  log::set_level(level);
  if (auto path = env_or("EXECD_LOG_FILE", ""); !path.empty())
    log::to_file(path);
}

} // namespace

int run_daemon(const daemon_options& opts) {
  init_log(opts);
  // Block the termination signals before any thread exists, so that only
  // the sigwait below sees them (children get a clean mask at spawn).
  sigset_t set;
  sigemptyset(&set);
  for (auto s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT})
    sigaddset(&set, s);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  // Orphaned descendants of commands get reparented to us and reaped,
  // instead of piling up as zombies under a PID 1 that never waits.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  // Few threads do real work; fewer malloc arenas keep RSS small.
  ::mallopt(M_ARENA_MAX, 2);
  auto dir = work_dir();
  static command_manager commands{dir + "/commands"};
  static session_manager sessions{dir + "/sessions"};
  static metrics_sampler metrics;
  // Kernels start on a context's first run, so a sandbox that never runs
  // code has no kernel process.
  code_options co;
  co.dir = dir + "/kernels";
  if (auto n = parse_u64(env_or("EXECD_MAX_KERNELS", "")); n && *n > 0)
    co.max_kernels = static_cast<size_t>(*n);
  static code_manager code{co};
  static pty_manager ptys;
  server_options so;
  so.port = opts.port;
  so.access_token = opts.access_token;
  std::string err;
  auto srv = http_server::start(so, router{commands, sessions, metrics, code, ptys}, &err);
  if (!srv) {
    OSB_ERROR("execd", "", "", err);
    return 1;
  }
  OSB_INFO("execd", "", "",
           "opensandbox-execd listening on 0.0.0.0:"
             << srv->port() << " (pid " << ::getpid() << ", access token "
             << (opts.access_token.empty() ? "off" : "on") << ")");
  int sig = 0;
  for (;;) {
    if (::sigwait(&set, &sig) != 0)
      continue;
    if (sig == SIGHUP)
      continue;
    break;
  }
  OSB_INFO("execd", "", "",
           "received signal " << sig << ", stopping commands");
  // Leave no strays: every process group we created gets SIGTERM, then
  // SIGKILL after a short grace period.
  signal_all_groups(SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (any_group_alive() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  signal_all_groups(SIGKILL);
  OSB_INFO("execd", "", "", "exiting");
  // _exit: other threads are still running; static destructors must not.
  ::_exit(0);
}

namespace {

/// Creates the EXECD_ENVS file (best effort: the file system may be
/// read-only) and exports its path.
void prepare_envs_file() {
  auto path = env_or("EXECD_ENVS", "/opt/opensandbox/.env");
  make_dirs(dirname_of(path), 0755);
  auto fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                   0644);
  if (fd >= 0)
    ::close(fd);
  ::setenv("EXECD_ENVS", path.c_str(), 1);
}

std::string bootstrap_shell() {
  auto shell = env_or("BOOTSTRAP_SHELL", "");
  if (!shell.empty())
    return shell;
  auto bash = find_executable("bash", env_or("PATH", "/usr/bin:/bin"));
  return bash.empty() ? "/bin/sh" : bash;
}

[[noreturn]] void exec_user(std::vector<std::string> argv) {
  auto cmd = env_or("BOOTSTRAP_CMD", "");
  if (!cmd.empty()) {
    argv = {bootstrap_shell(), "-c", cmd};
  } else if (argv.empty()) {
    argv = {"/bin/sh"};
  } else if (argv[0] == "-c" && argv.size() >= 2) {
    argv.insert(argv.begin(), bootstrap_shell());
  }
  std::vector<char*> raw;
  for (auto& a : argv)
    raw.push_back(a.data());
  raw.push_back(nullptr);
  ::execvp(raw[0], raw.data());
  auto e = errno;
  std::fprintf(stderr, "opensandbox-execd: cannot execute '%s': %s\n", raw[0],
               std::strerror(e));
  ::_exit(127);
}

} // namespace

int execd_main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string err;
  auto opts = parse_options(args, &err);
  // The token is a credential for callers outside the sandbox: neither the
  // user's entrypoint nor the commands the daemon runs inherit it.
  ::unsetenv("EXECD_ACCESS_TOKEN");
  if (!opts) {
    std::fprintf(stderr, "opensandbox-execd: %s\n%s", err.c_str(), usage_text);
    return 2;
  }
  if (opts->help) {
    std::fputs(usage_text, stdout);
    return 0;
  }
  if (opts->version) {
    std::puts(version_text);
    return 0;
  }
  if (!opts->bootstrap)
    return run_daemon(*opts);
  prepare_envs_file();
  auto& gate = the_claim_gate();
  if (opts->await_claim && !gate.open())
    std::fprintf(stderr, "opensandbox-execd: cannot wait for a claim: %s\n",
                 std::strerror(errno));
  auto pid = ::fork();
  if (pid == 0) {
    gate.daemon_side();
    // The daemon: its own session, detached from the user's terminal.
    ::setsid();
    auto null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) {
      ::dup2(null_fd, STDIN_FILENO);
      if (null_fd != STDIN_FILENO)
        ::close(null_fd);
    }
    return run_daemon(*opts);
  }
  if (pid < 0)
    std::fprintf(stderr, "opensandbox-execd: cannot start the daemon: %s\n",
                 std::strerror(errno));
  // A pool member waits for its claim (execd/claim.hpp): its env, then its
  // entrypoint (the command line's when it names none).
  if (opts->await_claim && pid > 0) {
    auto c = gate.wait();
    if (!c) {
      std::fprintf(stderr, "opensandbox-execd: the daemon ended before the "
                           "sandbox was claimed\n");
      ::_exit(1);
    }
    for (auto& [k, v] : c->env)
      ::setenv(k.c_str(), v.c_str(), 1);
    if (!c->entrypoint.empty())
      exec_user(c->entrypoint);
  }
  // The user command replaces this process (PID 1 of the container): its
  // exit ends the container, as with the original bootstrap.sh.
  exec_user(opts->user_argv);
}

} // namespace osb::execd
