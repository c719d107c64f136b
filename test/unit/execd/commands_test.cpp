#include "execd/commands.hpp"
#include "execd/process.hpp"
#include "execd/util.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace osb::execd;

namespace {

/// Collects the stream; optionally fails after `fail_after` writes.
class capture_sink : public event_sink {
public:
  bool write(std::string_view bytes) override {
    {
      std::lock_guard<std::mutex> guard{mtx};
      data.append(bytes.data(), bytes.size());
    }
    cv.notify_all();
    return true;
  }

  /// Waits until something was written (the first events go out once the
  /// process runs); false after `timeout`.
  bool wait_for_data(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, timeout, [&] { return !data.empty(); });
  }

  std::mutex mtx;
  std::condition_variable cv;
  std::string data;
};

struct event {
  std::string type;
  std::string text;
  std::string ename;
  std::string evalue;
  std::vector<std::string> traceback;
  bool has_timestamp = false;
};

std::vector<event> parse(const std::string& data) {
  std::vector<event> out;
  size_t pos = 0;
  while (pos < data.size()) {
    auto end = data.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "unterminated event";
    if (end == std::string::npos)
      break;
    rapidjson::Document doc;
    doc.Parse(data.substr(pos, end - pos).c_str());
    EXPECT_FALSE(doc.HasParseError()) << data.substr(pos, end - pos);
    event e;
    e.type = doc["type"].GetString();
    if (doc.HasMember("text"))
      e.text = doc["text"].GetString();
    e.has_timestamp = doc.HasMember("timestamp") && doc["timestamp"].IsInt64();
    if (doc.HasMember("error")) {
      e.ename = doc["error"]["ename"].GetString();
      e.evalue = doc["error"]["evalue"].GetString();
      for (auto& t : doc["error"]["traceback"].GetArray())
        e.traceback.emplace_back(t.GetString());
    }
    out.push_back(std::move(e));
    pos = end + 2;
  }
  return out;
}

std::vector<std::string> texts(const std::vector<event>& evs,
                               const std::string& type) {
  std::vector<std::string> out;
  for (auto& e : evs)
    if (e.type == type)
      out.push_back(e.text);
  return out;
}

class ExecdCommands : public ::testing::Test {
protected:
  void SetUp() override {
    // As the daemon does: reap orphaned descendants (this sandbox's PID 1
    // may not).
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    dir = "/tmp/execd-cmd-test-" + random_hex(4);
    make_dirs(dir);
    ::unsetenv("EXECD_ENVS");
  }

  void TearDown() override {
    ::unsetenv("EXECD_ENVS");
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  std::vector<event> run(command_request req) {
    capture_sink sink;
    auto err = mgr.run(req, sink);
    EXPECT_EQ(err, "");
    return parse(sink.data);
  }

  std::vector<event> run(const std::string& command) {
    command_request req;
    req.command = command;
    return run(req);
  }

  std::string dir;
  command_manager mgr{"/tmp/execd-cmd-test-logs"};
};

/// Whether any process of group `pgid` still exists.
bool group_exists(pid_t pgid) {
  return ::kill(-pgid, 0) == 0;
}

} // namespace

TEST_F(ExecdCommands, SuccessStreamsLinesAndCompletes) {
  auto evs = run("echo 'Hello OpenSandbox E2E'");
  ASSERT_GE(evs.size(), 3u);
  EXPECT_EQ(evs.front().type, "init");
  EXPECT_EQ(evs.front().text.size(), 32u);
  EXPECT_EQ(evs.back().type, "execution_complete");
  EXPECT_EQ(texts(evs, "stdout"), (std::vector<std::string>{
                                    "Hello OpenSandbox E2E"}));
  EXPECT_TRUE(texts(evs, "stderr").empty());
  for (auto& e : evs)
    EXPECT_TRUE(e.has_timestamp) << e.type;
  EXPECT_EQ(texts(evs, "error").size(), 0u);
}

TEST_F(ExecdCommands, NonZeroExitIsCommandExecError) {
  auto evs = run("echo out; echo oops >&2; exit 7");
  EXPECT_EQ(texts(evs, "stdout"), (std::vector<std::string>{"out"}));
  EXPECT_EQ(texts(evs, "stderr"), (std::vector<std::string>{"oops"}));
  ASSERT_EQ(evs.back().type, "error");
  EXPECT_EQ(evs.back().ename, "CommandExecError");
  EXPECT_EQ(evs.back().evalue, "7");
  EXPECT_EQ(evs.back().traceback, (std::vector<std::string>{"exit status 7"}));
  EXPECT_TRUE(texts(evs, "execution_complete").empty());
}

TEST_F(ExecdCommands, UnknownCommandReportsOnStderr) {
  auto evs = run("definitely-not-a-command-xyz");
  ASSERT_EQ(evs.back().type, "error");
  EXPECT_EQ(evs.back().evalue, "127");
  auto err = texts(evs, "stderr");
  ASSERT_FALSE(err.empty());
  EXPECT_NE(err[0].find("definitely-not-a-command-xyz"), std::string::npos);
}

TEST_F(ExecdCommands, BlankLinesAndPartialLastLine) {
  auto evs = run("printf 'a\\n\\nb'");
  EXPECT_EQ(texts(evs, "stdout"), (std::vector<std::string>{"a", "\n", "b"}));
}

TEST_F(ExecdCommands, WorkingDirectory) {
  command_request req;
  req.command = "pwd";
  req.cwd = dir;
  auto evs = run(req);
  EXPECT_EQ(texts(evs, "stdout"), (std::vector<std::string>{dir}));
}

TEST_F(ExecdCommands, EnvironmentLayering) {
  auto file = dir + "/.env";
  std::ofstream{file} << "# comment\nFROM_FILE=file\nOVERRIDDEN=file\n"
                         "export EXPANDED=\"$FROM_FILE-x\"\n";
  ::setenv("EXECD_ENVS", file.c_str(), 1);
  ::setenv("EXECD_TEST_BASE", "base", 1);
  command_request req;
  req.command = "echo $EXECD_TEST_BASE $FROM_FILE $OVERRIDDEN $EXPANDED "
                "${ABSENT_VAR:-absent}";
  req.envs["OVERRIDDEN"] = "request";
  auto evs = run(req);
  EXPECT_EQ(texts(evs, "stdout"),
            (std::vector<std::string>{"base file request file-x absent"}));
  ::unsetenv("EXECD_TEST_BASE");
}

TEST_F(ExecdCommands, StdinIsDevNull) {
  auto evs = run("cat; echo done");
  EXPECT_EQ(texts(evs, "stdout"), (std::vector<std::string>{"done"}));
}

TEST_F(ExecdCommands, TimeoutKillsTheGroup) {
  command_request req;
  req.command = "sleep 30 & sleep 30; echo never";
  req.timeout_ms = 300;
  auto start = std::chrono::steady_clock::now();
  capture_sink sink;
  mgr.run(req, sink);
  auto evs = parse(sink.data);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  ASSERT_EQ(evs.back().type, "error");
  EXPECT_EQ(evs.back().evalue, "-1");
  EXPECT_EQ(evs.back().traceback,
            (std::vector<std::string>{"signal: killed"}));
  auto rec = mgr.find(evs.front().text);
  ASSERT_TRUE(rec);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(group_exists(rec->child->pid()));
}

TEST_F(ExecdCommands, InterruptKillsTheWholeGroup) {
  capture_sink sink;
  command_request req;
  // A child that ignores SIGTERM must still go (SIGKILL after the grace).
  req.command = "sh -c 'trap \"\" TERM; sleep 30' & sleep 30 & wait";
  std::thread runner{[&] { mgr.run(req, sink); }};
  // The init event (with the id) goes out once the command runs.
  ASSERT_TRUE(sink.wait_for_data(std::chrono::seconds(2)));
  std::string id;
  {
    std::lock_guard<std::mutex> guard{sink.mtx};
    auto evs = parse(sink.data);
    if (!evs.empty())
      id = evs.front().text;
  }
  ASSERT_FALSE(id.empty());
  // Time for the inner shell to install its trap (a timing, not an event).
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto rec = mgr.find(id);
  ASSERT_TRUE(rec);
  EXPECT_TRUE(rec->running());
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(mgr.interrupt(id, std::chrono::milliseconds(500)),
            command_manager::interrupt_result::done);
  runner.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_FALSE(rec->running());
  EXPECT_FALSE(group_exists(rec->child->pid()));
  auto evs = parse(sink.data);
  ASSERT_EQ(evs.back().type, "error");
  EXPECT_EQ(mgr.interrupt(id), command_manager::interrupt_result::not_running);
  EXPECT_EQ(mgr.interrupt("nope"), command_manager::interrupt_result::unknown);
}

TEST_F(ExecdCommands, BackgroundCommandLogsAndStatus) {
  command_request req;
  req.command = "echo log-line-1; echo log-line-2 >&2; sleep 0.3; exit 4";
  req.background = true;
  auto start = std::chrono::steady_clock::now();
  auto evs = run(req);
  EXPECT_LT(std::chrono::steady_clock::now() - start,
            std::chrono::milliseconds(500));
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0].type, "init");
  EXPECT_EQ(evs[1].type, "execution_complete");
  auto rec = mgr.find(evs[0].text);
  ASSERT_TRUE(rec);
  EXPECT_TRUE(rec->running());
  EXPECT_NE(rec->status_json().find("\"running\":true"), std::string::npos);
  EXPECT_EQ(rec->status_json().find("exit_code"), std::string::npos);
  rec->child->wait();
  std::string log;
  ASSERT_TRUE(read_file(rec->log_path, log));
  EXPECT_EQ(log, "log-line-1\nlog-line-2\n");
  auto status = rec->status_json();
  EXPECT_NE(status.find("\"running\":false"), std::string::npos) << status;
  EXPECT_NE(status.find("\"exit_code\":4"), std::string::npos) << status;
  EXPECT_NE(status.find("\"finished_at\":\""), std::string::npos) << status;
  EXPECT_NE(status.find("\"content\":\"echo log-line-1"), std::string::npos);
}

TEST_F(ExecdCommands, BackgroundTimeout) {
  command_request req;
  req.command = "sleep 30";
  req.background = true;
  req.timeout_ms = 200;
  auto evs = run(req);
  auto rec = mgr.find(evs[0].text);
  ASSERT_TRUE(rec);
  ASSERT_TRUE(rec->child->wait_for(std::chrono::seconds(3)));
  EXPECT_EQ(rec->child->status()->code(), -1);
  EXPECT_NE(rec->status_json().find("\"error\":\"signal: killed\""),
            std::string::npos);
}

TEST_F(ExecdCommands, SpawnFailureIsAnErrorEvent) {
  command_request req;
  req.command = "true";
  req.cwd = "/nonexistent-dir-xyz";
  auto evs = run(req);
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0].type, "init");
  EXPECT_EQ(evs[1].type, "error");
  EXPECT_EQ(evs[1].evalue, "No such file or directory");
}

TEST_F(ExecdCommands, DescendantsOutlivingTheCommandDoNotBlockIt) {
  // The background sleep keeps the pipes open; the stream must still end
  // when the shell exits.
  auto start = std::chrono::steady_clock::now();
  auto evs = run("sleep 5 & echo started");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(texts(evs, "stdout"), (std::vector<std::string>{"started"}));
  EXPECT_EQ(evs.back().type, "execution_complete");
  auto rec = mgr.find(evs.front().text);
  rec->child->signal_group(SIGKILL);
}

TEST_F(ExecdCommands, SlowConsumerThrottlesTheCommand) {
  // A sink that blocks: the command must block on its pipe, not execd's
  // memory.
  struct slow_sink : event_sink {
    size_t bytes = 0;
    int writes = 0;
    bool write(std::string_view b) override {
      bytes += b.size();
      if (++writes < 20)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return true;
    }
  } sink;
  command_request req;
  req.command = "head -c 20000000 /dev/zero | tr '\\0' 'x' | fold -w 1000";
  auto err = mgr.run(req, sink);
  EXPECT_EQ(err, "");
  // 20000 lines of 1000 bytes plus framing.
  EXPECT_GT(sink.bytes, 20000000u);
}

TEST(ExecdProcess, ExitStatusDescriptions) {
  exit_status ok{0};
  EXPECT_EQ(ok.code(), 0);
  EXPECT_EQ(ok.describe(), "exit status 0");
  exit_status killed{SIGKILL};
  EXPECT_TRUE(killed.signaled());
  EXPECT_EQ(killed.code(), -1);
  EXPECT_EQ(killed.describe(), "signal: killed");
  exit_status term{SIGTERM};
  EXPECT_EQ(term.describe(), "signal: terminated");
}

TEST(ExecdProcess, EnvFileParsing) {
  env_list env{"HOME=/root", "A=1"};
  apply_env_file("A=2\n  B = 'lit $HOME' \n#x=1\nC=\"$HOME/c\"\nD=$A$A\n"
                 "bad-name=1\nnoequals\n",
                 env);
  EXPECT_EQ(env_get(env, "A"), "2");
  EXPECT_EQ(env_get(env, "B"), "lit $HOME");
  EXPECT_EQ(env_get(env, "C"), "/root/c");
  EXPECT_EQ(env_get(env, "D"), "22");
  EXPECT_FALSE(env_get(env, "bad-name"));
}

TEST(ExecdProcess, ShellFallsBackToSh) {
  env_list env{"PATH=/nonexistent"};
  auto shell = find_shell(env);
  // bash is found in the standard directories if installed, else sh.
  EXPECT_TRUE(shell.find("bash") != std::string::npos || shell == "/bin/sh")
    << shell;
  EXPECT_EQ(find_executable("sh", "/bin"), "/bin/sh");
  EXPECT_EQ(find_executable("no-such-binary-xyz", "/bin:/usr/bin"), "");
}

TEST(ExecdProcess, SpawnReportsExecFailure) {
  spawn_options opts;
  opts.argv = {"/nonexistent/binary"};
  std::string err;
  auto child = spawn_process(opts, &err);
  EXPECT_FALSE(child);
  EXPECT_EQ(err, "No such file or directory");
}

TEST(ExecdProcess, SpawnedProcessLeadsItsGroup) {
  int p[2];
  ASSERT_TRUE(make_pipe(p));
  spawn_options opts;
  opts.argv = {"/bin/sh", "-c", "ps -o pgid= -p $$ 2>/dev/null || "
                                "cut -d' ' -f5 /proc/$$/stat"};
  opts.env = current_env();
  opts.stdout_fd = p[1];
  std::string err;
  auto child = spawn_process(opts, &err);
  ::close(p[1]);
  ASSERT_TRUE(child) << err;
  char buf[64] = {};
  auto n = ::read(p[0], buf, sizeof(buf) - 1);
  ::close(p[0]);
  child->wait();
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::atoi(buf), child->pid());
}

// Where close_range(CLOSE_RANGE_CLOEXEC) fails (gVisor of Debian 12), the
// open descriptors of /proc/self/fd get close-on-exec, `keep` and 0..2 not.
TEST(ExecdCloexec, ListedDescriptorsGetCloseOnExecButKeepDoesNot) {
  int a[2];
  int b[2];
  ASSERT_EQ(::pipe(a), 0);
  ASSERT_EQ(::pipe(b), 0);
  // A high number too: the list, not a bound, decides.
  int high = ::fcntl(a[0], F_DUPFD, 900);
  ASSERT_GE(high, 900);
  int in_flags = ::fcntl(0, F_GETFD);
  for (int fd : {a[0], a[1], b[0], b[1], high})
    EXPECT_EQ(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_TRUE(cloexec_listed_fds(b[1]));
  for (int fd : {a[0], a[1], b[0], high})
    EXPECT_EQ(::fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC) << fd;
  EXPECT_EQ(::fcntl(b[1], F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_EQ(::fcntl(0, F_GETFD), in_flags);
  for (int fd : {a[0], a[1], b[0], b[1], high})
    ::close(fd);
}
