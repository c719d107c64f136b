#include "execd/sessions.hpp"
#include "execd/util.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

using namespace osb::execd;

namespace {

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

struct result {
  std::vector<std::string> stdout_lines;
  std::string init;
  std::string terminal;
  std::string evalue;
  int completes = 0;
};

result parse(const std::string& data) {
  result r;
  size_t pos = 0;
  while (pos < data.size()) {
    auto end = data.find("\n\n", pos);
    if (end == std::string::npos)
      break;
    rapidjson::Document doc;
    doc.Parse(data.substr(pos, end - pos).c_str());
    EXPECT_FALSE(doc.HasParseError());
    EXPECT_TRUE(doc.HasMember("timestamp"));
    std::string type = doc["type"].GetString();
    if (type == "init")
      r.init = doc["text"].GetString();
    else if (type == "stdout")
      r.stdout_lines.emplace_back(doc["text"].GetString());
    else if (type == "execution_complete") {
      r.terminal = type;
      ++r.completes;
    } else if (type == "error") {
      r.terminal = type;
      r.evalue = doc["error"]["evalue"].GetString();
    }
    pos = end + 2;
  }
  return r;
}

class ExecdSession : public ::testing::Test {
protected:
  void SetUp() override {
    base = "/tmp/execd-session-test-" + random_hex(4);
    make_dirs(base + "/a");
    make_dirs(base + "/b");
  }

  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(base, ec);
  }

  result run(const std::string& id, const std::string& command,
             const std::string& cwd = "", int64_t timeout_ms = 0) {
    capture_sink sink;
    session_run_request req;
    req.command = command;
    req.cwd = cwd;
    req.timeout_ms = timeout_ms;
    EXPECT_EQ(mgr.run(id, req, sink), session_manager::run_result::ok);
    return parse(sink.data);
  }

  std::string base;
  session_manager mgr{"/tmp/execd-session-test-state"};
};

} // namespace

TEST_F(ExecdSession, CwdAndExportsPersistAcrossRuns) {
  std::string err;
  auto id = mgr.create(base + "/a", &err);
  ASSERT_FALSE(id.empty()) << err;
  EXPECT_EQ(id.size(), 36u);
  auto r = run(id, "pwd");
  EXPECT_EQ(r.init, id);
  EXPECT_EQ(r.stdout_lines, (std::vector<std::string>{base + "/a"}));
  EXPECT_EQ(r.terminal, "execution_complete");
  r = run(id, "export SESSION_VAR=hello; cd ../b; LOCAL=1");
  EXPECT_EQ(r.terminal, "execution_complete");
  r = run(id, "echo \"$SESSION_VAR\"; pwd");
  EXPECT_EQ(r.stdout_lines,
            (std::vector<std::string>{"hello", base + "/b"}));
  EXPECT_EQ(mgr.cwd_of(id), base + "/b");
}

TEST_F(ExecdSession, PerRunCwdOverride) {
  std::string err;
  auto id = mgr.create(base + "/a", &err);
  auto r = run(id, "pwd", base + "/b");
  EXPECT_EQ(r.stdout_lines, (std::vector<std::string>{base + "/b"}));
  // As in the Go execd, the override becomes the session's directory.
  r = run(id, "pwd");
  EXPECT_EQ(r.stdout_lines, (std::vector<std::string>{base + "/b"}));
}

TEST_F(ExecdSession, FailingRunReportsExitCode) {
  std::string err;
  auto id = mgr.create(base, &err);
  auto r = run(id, "export KEEP=1; echo before; exit 7");
  EXPECT_EQ(r.stdout_lines, (std::vector<std::string>{"before"}));
  EXPECT_EQ(r.terminal, "error");
  EXPECT_EQ(r.evalue, "7");
  EXPECT_EQ(r.completes, 0);
  // The session survives `exit` and kept the export.
  r = run(id, "echo $KEEP; false");
  EXPECT_EQ(r.stdout_lines, (std::vector<std::string>{"1"}));
  EXPECT_EQ(r.evalue, "1");
}

TEST_F(ExecdSession, StderrIsMergedIntoStdout) {
  std::string err;
  auto id = mgr.create(base, &err);
  auto r = run(id, "echo out; echo err >&2; printf partial");
  EXPECT_EQ(r.stdout_lines,
            (std::vector<std::string>{"out", "err", "partial"}));
}

TEST_F(ExecdSession, TimeoutKillsTheRun) {
  std::string err;
  auto id = mgr.create(base, &err);
  auto start = std::chrono::steady_clock::now();
  auto r = run(id, "sleep 30", "", 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(r.terminal, "error");
  EXPECT_EQ(r.evalue, "-1");
  r = run(id, "echo alive");
  EXPECT_EQ(r.stdout_lines, (std::vector<std::string>{"alive"}));
}

TEST_F(ExecdSession, DeleteKillsRunningCommand) {
  std::string err;
  auto id = mgr.create(base, &err);
  capture_sink sink;
  std::thread t{[&] {
    session_run_request req;
    req.command = "sleep 30";
    mgr.run(id, req, sink);
  }};
  // The init event goes out once the command runs.
  ASSERT_TRUE(sink.wait_for_data(std::chrono::seconds(10)));
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(mgr.remove(id));
  t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(parse(sink.data).terminal, "error");
  EXPECT_FALSE(mgr.exists(id));
  EXPECT_FALSE(mgr.remove(id));
  capture_sink sink2;
  EXPECT_EQ(mgr.run(id, {"true", "", 0}, sink2),
            session_manager::run_result::unknown);
  EXPECT_TRUE(sink2.data.empty());
}

TEST_F(ExecdSession, CreateMakesMissingDirectory) {
  std::string err;
  auto dir = base + "/new/deep";
  auto id = mgr.create(dir, &err);
  ASSERT_FALSE(id.empty()) << err;
  EXPECT_TRUE(std::filesystem::is_directory(dir));
  auto r = run(id, "pwd");
  EXPECT_EQ(r.stdout_lines, (std::vector<std::string>{dir}));
}

TEST_F(ExecdSession, ScriptQuotesPaths) {
  auto s = session_script("/state dir", "/it's", "echo hi");
  EXPECT_NE(s.find("cd '/it'\\''s'"), std::string::npos) << s;
  EXPECT_NE(s.find("__osb_state='/state dir'"), std::string::npos) << s;
  // The user command comes last, so an unterminated quote cannot swallow
  // the bookkeeping.
  EXPECT_EQ(s.substr(s.size() - 8), "echo hi\n");
}
