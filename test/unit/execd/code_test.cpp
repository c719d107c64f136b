// Code contexts against the scripted fake kernel (fake_kernel.hpp):
// the event stream of a run, context bookkeeping, a dying kernel,
// interrupts, limits and bad input.

#include "execd/code.hpp"

#include "test/unit/execd/fake_kernel.hpp"

#include <algorithm>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

namespace {

[[maybe_unused]] const bool fake_kernel_mode
  = osb::execd::test::fake_kernel::maybe_serve();

} // namespace

namespace osb::execd {

namespace {

/// Collects events.
class capture_sink : public event_sink {
public:
  bool write(std::string_view bytes) override {
    std::lock_guard<std::mutex> guard{mtx};
    raw.append(bytes.data(), bytes.size());
    return !gone;
  }

  /// The events' types, in order (pings left out).
  std::vector<std::string> types() {
    std::vector<std::string> out;
    for (auto& d : docs())
      if (std::string{d["type"].GetString()} != "ping")
        out.push_back(d["type"].GetString());
    return out;
  }

  std::vector<rapidjson::Document> docs() {
    std::lock_guard<std::mutex> guard{mtx};
    std::vector<rapidjson::Document> out;
    size_t pos = 0;
    while (pos < raw.size()) {
      auto end = raw.find("\n\n", pos);
      if (end == std::string::npos)
        break;
      out.emplace_back();
      out.back().Parse(raw.substr(pos, end - pos).c_str());
      EXPECT_FALSE(out.back().HasParseError()) << raw.substr(pos, end - pos);
      pos = end + 2;
    }
    return out;
  }

  /// The first event of `type`.
  rapidjson::Document first(const std::string& type) {
    for (auto& d : docs())
      if (type == d["type"].GetString())
        return std::move(d);
    ADD_FAILURE() << "no " << type << " event in " << raw;
    return {};
  }

  std::mutex mtx;
  std::string raw;
  bool gone = false;
};

std::string self_exe() {
  char buf[4096];
  auto n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string{buf, static_cast<size_t>(n)} : std::string{};
}

class ExecdCode : public ::testing::Test {
protected:
  void SetUp() override {
    dir = "/tmp/execd-code-test-" + random_hex(4);
    auto kdir = dir + "/share/kernels/fake";
    std::filesystem::create_directories(kdir);
    std::ofstream{kdir + "/kernel.json"}
      << R"({"argv":[")" << self_exe()
      << R"(","{connection_file}"],"display_name":"Fake","language":"python",)"
      << R"("env":{"OSB_FAKE_KERNEL":"1"}})";
    opts.dir = dir + "/run";
    opts.spec_dirs = {dir + "/share/kernels"};
    opts.start_timeout = std::chrono::milliseconds(10000);
    opts.idle_grace = std::chrono::milliseconds(300);
  }

  void TearDown() override {
    mgr.reset();
    std::filesystem::remove_all(dir);
  }

  code_manager& manager() {
    if (!mgr)
      mgr = std::make_unique<code_manager>(opts);
    return *mgr;
  }

  /// Runs `code` in context `id` (or the language's default context).
  code_error run(const std::string& id, const std::string& code,
                 capture_sink& sink, run_summary* s = nullptr) {
    return manager().run(id, id.empty() ? "python" : "", code, sink, s);
  }

  std::string dir;
  code_options opts;
  std::unique_ptr<code_manager> mgr;
};

} // namespace

TEST_F(ExecdCode, RunStreamsOutputResultsAndCompletion) {
  code_context_info c;
  ASSERT_TRUE(manager().create("python", "", c).ok());
  capture_sink sink;
  run_summary s;
  auto e = run(c.id, "out hello\nerr warn\nresult 42\ndisplay", sink, &s);
  ASSERT_TRUE(e.ok()) << e.message;
  EXPECT_TRUE(s.started.has_value());
  EXPECT_EQ(sink.types(),
            (std::vector<std::string>{"init", "stdout", "stderr",
                                      "execution_count", "result", "result",
                                      "execution_complete"}));
  EXPECT_EQ(std::string{sink.first("init")["text"].GetString()}, c.id);
  EXPECT_STREQ(sink.first("stdout")["text"].GetString(), "hello\n");
  EXPECT_STREQ(sink.first("stderr")["text"].GetString(), "warn\n");
  EXPECT_EQ(sink.first("execution_count")["execution_count"].GetInt(), 1);
  auto docs = sink.docs();
  std::vector<const rapidjson::Value*> results;
  for (auto& d : docs)
    if (std::string{d["type"].GetString()} == "result")
      results.push_back(&d["results"]);
  ASSERT_EQ(results.size(), 2u);
  // text/plain is renamed to text; the other MIME types stay.
  EXPECT_STREQ((*results[0])["text"].GetString(), "42");
  EXPECT_STREQ((*results[0])["text/html"].GetString(), "<b>42</b>");
  EXPECT_FALSE(results[0]->HasMember("text/plain"));
  EXPECT_STREQ((*results[1])["image/png"].GetString(), "iVBORw0KGgo=");
  EXPECT_TRUE(sink.first("execution_complete").HasMember("timestamp"));
}

TEST_F(ExecdCode, ErrorIsTerminalWithStatusFirst) {
  capture_sink sink;
  ASSERT_TRUE(run("", "out before\nerror", sink).ok());
  EXPECT_EQ(sink.types(), (std::vector<std::string>{"init", "stdout",
                                                    "status", "error"}));
  auto err = sink.first("error");
  EXPECT_STREQ(err["error"]["ename"].GetString(), "ValueError");
  EXPECT_STREQ(err["error"]["evalue"].GetString(), "bad");
  EXPECT_EQ(err["error"]["traceback"].Size(), 2u);
  EXPECT_STREQ(sink.first("status")["text"].GetString(), "error");
}

TEST_F(ExecdCode, DefaultContextIsReusedAndListed) {
  capture_sink a, b;
  ASSERT_TRUE(run("", "out 1", a).ok());
  ASSERT_TRUE(run("", "result 2", b).ok());
  std::string id = a.first("init")["text"].GetString();
  EXPECT_EQ(id, b.first("init")["text"].GetString());
  // Same kernel: its execution counter went on.
  EXPECT_EQ(b.first("execution_count")["execution_count"].GetInt(), 2);
  auto all = manager().list("");
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].id, id);
  EXPECT_TRUE(all[0].is_default);
  EXPECT_TRUE(all[0].kernel_running);
  EXPECT_EQ(manager().running_kernels(), 1u);
}

TEST_F(ExecdCode, ContextsAreSeparateKernels) {
  code_context_info c1, c2;
  ASSERT_TRUE(manager().create("python", "", c1).ok());
  ASSERT_TRUE(manager().create("python", "", c2).ok());
  capture_sink a, b, a2;
  ASSERT_TRUE(run(c1.id, "result x", a).ok());
  ASSERT_TRUE(run(c2.id, "result y", b).ok());
  ASSERT_TRUE(run(c1.id, "result z", a2).ok());
  EXPECT_EQ(a.first("execution_count")["execution_count"].GetInt(), 1);
  EXPECT_EQ(b.first("execution_count")["execution_count"].GetInt(), 1);
  EXPECT_EQ(a2.first("execution_count")["execution_count"].GetInt(), 2);
  EXPECT_EQ(manager().running_kernels(), 2u);
}

TEST_F(ExecdCode, KernelsStartOnFirstRunOnly) {
  code_context_info c;
  ASSERT_TRUE(manager().create("python", "", c).ok());
  EXPECT_EQ(manager().running_kernels(), 0u);
  EXPECT_FALSE(manager().get(c.id)->kernel_running);
  capture_sink sink;
  run_summary s1, s2;
  ASSERT_TRUE(run(c.id, "out a", sink, &s1).ok());
  ASSERT_TRUE(run(c.id, "out b", sink, &s2).ok());
  EXPECT_TRUE(s1.started.has_value());
  EXPECT_FALSE(s2.started.has_value());
}

TEST_F(ExecdCode, BookkeepingGetListDelete) {
  code_context_info p1, p2;
  ASSERT_TRUE(manager().create("python", "/tmp", p1).ok());
  ASSERT_TRUE(manager().create("python", "", p2).ok());
  EXPECT_EQ(p1.language, "python");
  EXPECT_EQ(p1.id.size(), 32u);
  EXPECT_EQ(manager().get(p1.id)->cwd, "/tmp");
  EXPECT_EQ(manager().list("python").size(), 2u);
  EXPECT_EQ(manager().list("bash").size(), 0u);
  EXPECT_TRUE(manager().remove(p1.id));
  EXPECT_FALSE(manager().remove(p1.id));
  EXPECT_FALSE(manager().get(p1.id).has_value());
  capture_sink sink;
  auto e = run(p1.id, "out x", sink);
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(e.code, "CONTEXT_NOT_FOUND");
  EXPECT_TRUE(sink.raw.empty());
  EXPECT_EQ(manager().remove_language("python"), 1u);
  EXPECT_TRUE(manager().list("").empty());
}

TEST_F(ExecdCode, UnknownAndUninstalledLanguages) {
  code_context_info c;
  auto e = manager().create("cobol", "", c);
  EXPECT_EQ(e.status, 400);
  EXPECT_NE(e.message.find("unknown language cobol"), std::string::npos);
  EXPECT_NE(e.message.find("python"), std::string::npos) << e.message;
  e = manager().create("java", "", c);
  EXPECT_EQ(e.status, 501);
  EXPECT_NE(e.message.find("no Jupyter kernel for language java"),
            std::string::npos);
  capture_sink sink;
  e = manager().run("", "go", "x", sink);
  EXPECT_EQ(e.status, 501);
  EXPECT_TRUE(manager().list("").empty());
}

TEST_F(ExecdCode, EmptyAndOversizedCodeAreRefused) {
  opts.max_code = 1024;
  capture_sink sink;
  EXPECT_EQ(run("", "", sink).status, 400);
  std::string big(1025, 'x');
  auto e = run("", big, sink);
  EXPECT_EQ(e.status, 413);
  EXPECT_EQ(e.code, "CODE_TOO_LARGE");
  EXPECT_TRUE(sink.raw.empty());
}

TEST_F(ExecdCode, ThousandContextsCostNoKernelAndHaveALimit) {
  opts.max_contexts = 1000;
  code_context_info c;
  for (int i = 0; i < 1000; ++i)
    ASSERT_TRUE(manager().create("python", "", c).ok()) << i;
  auto e = manager().create("python", "", c);
  EXPECT_EQ(e.status, 429);
  EXPECT_EQ(manager().list("python").size(), 1000u);
  EXPECT_EQ(manager().running_kernels(), 0u);
  EXPECT_EQ(manager().remove_language("python"), 1000u);
  EXPECT_TRUE(manager().create("python", "", c).ok());
}

TEST_F(ExecdCode, KernelLimit) {
  opts.max_kernels = 1;
  code_context_info c1, c2;
  ASSERT_TRUE(manager().create("python", "", c1).ok());
  ASSERT_TRUE(manager().create("python", "", c2).ok());
  capture_sink a, b;
  ASSERT_TRUE(run(c1.id, "out 1", a).ok());
  auto e = run(c2.id, "out 2", b);
  EXPECT_EQ(e.status, 503);
  EXPECT_EQ(e.code, "TOO_MANY_KERNELS");
  ASSERT_TRUE(manager().remove(c1.id));
  // The deleted context's kernel goes away in the background.
  for (int i = 0; i < 200 && manager().running_kernels() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(run(c2.id, "out 2", b).ok());
}

TEST_F(ExecdCode, DyingKernelGivesAnErrorEventThenANewKernel) {
  code_context_info c;
  ASSERT_TRUE(manager().create("python", "", c).ok());
  capture_sink a;
  ASSERT_TRUE(run(c.id, "result 1", a).ok());
  capture_sink dead;
  run_summary s;
  ASSERT_TRUE(run(c.id, "out last words\ndie", dead, &s).ok());
  EXPECT_TRUE(s.kernel_died);
  auto types = dead.types();
  ASSERT_FALSE(types.empty());
  EXPECT_EQ(types.back(), "error");
  auto err = dead.first("error");
  EXPECT_STREQ(err["error"]["ename"].GetString(), "KernelDied");
  EXPECT_NE(std::string{err["error"]["evalue"].GetString()}.find(
              "exit status 3"),
            std::string::npos)
    << err["error"]["evalue"].GetString();
  // The next run starts a new kernel and says so.
  capture_sink next;
  run_summary s2;
  ASSERT_TRUE(run(c.id, "result 1", next, &s2).ok());
  EXPECT_TRUE(s2.started.has_value());
  EXPECT_NE(std::string{next.first("stderr")["text"].GetString()}.find(
              "earlier state is gone"),
            std::string::npos);
  EXPECT_EQ(next.first("execution_count")["execution_count"].GetInt(), 1);
}

TEST_F(ExecdCode, InterruptAndBusy) {
  code_context_info c;
  ASSERT_TRUE(manager().create("python", "", c).ok());
  capture_sink warm;
  ASSERT_TRUE(run(c.id, "out warm", warm).ok());
  EXPECT_EQ(manager().interrupt(c.id),
            code_manager::interrupt_result::not_running);
  EXPECT_EQ(manager().interrupt("nope"),
            code_manager::interrupt_result::unknown);
  capture_sink sink;
  // Interrupt once the kernel runs the code (its first output), not when
  // execd merely accepted it: an earlier SIGINT finds no code to stop.
  auto f = std::async(std::launch::async, [&] {
    return run(c.id, "out started\nsleep 20000", sink);
  });
  auto has_output = [&] {
    auto t = sink.types();
    return std::find(t.begin(), t.end(), "stdout") != t.end();
  };
  for (int i = 0; i < 1000 && !has_output(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(has_output());
  capture_sink other;
  auto busy = run(c.id, "out x", other);
  EXPECT_EQ(busy.status, 409);
  EXPECT_NE(busy.message.find("session is busy"), std::string::npos);
  EXPECT_EQ(manager().interrupt(c.id), code_manager::interrupt_result::done);
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(f.get().ok());
  EXPECT_STREQ(sink.first("error")["error"]["ename"].GetString(),
               "KeyboardInterrupt");
}

TEST_F(ExecdCode, MissingIdleDoesNotHang) {
  capture_sink sink;
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(run("", "out x\nnoidle", sink).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(sink.types().back(), "execution_complete");
}

TEST_F(ExecdCode, GoneClientStillDrainsTheExecution) {
  capture_sink sink;
  sink.gone = true;
  run_summary s;
  ASSERT_TRUE(run("", "flood 20\nresult done", sink, &s).ok());
  EXPECT_TRUE(s.client_gone);
  EXPECT_TRUE(s.completed);
  // Only the first event was attempted.
  EXPECT_EQ(sink.types(), std::vector<std::string>{"init"});
  capture_sink next;
  ASSERT_TRUE(run("", "result again", next).ok());
  EXPECT_STREQ(next.first("result")["results"]["text"].GetString(), "again");
}

TEST_F(ExecdCode, PingsDuringSilence) {
  opts.ping_every = std::chrono::milliseconds(50);
  capture_sink sink;
  ASSERT_TRUE(run("", "sleep 300", sink).ok());
  int pings = 0;
  for (auto& d : sink.docs())
    pings += std::string{d["type"].GetString()} == "ping";
  EXPECT_GE(pings, 3);
}

TEST_F(ExecdCode, StartFailureIsAClearError) {
  auto kdir = dir + "/share/kernels/broken";
  std::filesystem::create_directories(kdir);
  std::ofstream{kdir + "/kernel.json"}
    << R"({"argv":["/bin/sh","-c","echo cannot import ipykernel >&2; exit 1"],)"
    << R"("display_name":"Broken","language":"bash"})";
  capture_sink sink;
  auto e = manager().run("", "bash", "echo", sink);
  EXPECT_EQ(e.status, 500);
  EXPECT_EQ(e.code, "KERNEL_START_FAILED");
  EXPECT_NE(e.message.find("cannot import ipykernel"), std::string::npos)
    << e.message;
  EXPECT_TRUE(sink.raw.empty());
}

} // namespace osb::execd
