// Code interpreting and terminals in a real sandbox: the real server, the
// execd it injects, and opensandbox/code-interpreter:latest (built by
// deploy/build-images.sh) with its real kernels. Contexts, state, rich
// results, interrupts, a dying kernel, bad input, the languages the image
// has, and /pty over WebSocket directly, through the server proxy and
// through a signed URL.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <ctime>
#include <future>
#include <thread>

#include "execd/websocket.hpp"
#include "server_process.hpp"

using namespace std::chrono_literals;
using osb::test::http_call;
using osb::test::http_reply;
using osb::test::server_process;
using osb::test::shell;
namespace ws = osb::execd::ws;

namespace {

constexpr const char* image = "opensandbox/code-interpreter:latest";

/// Events of an SSE-like stream body.
std::vector<rapidjson::Document> events(const std::string& body) {
  std::vector<rapidjson::Document> out;
  size_t pos = 0;
  while (pos < body.size()) {
    auto end = body.find("\n\n", pos);
    if (end == std::string::npos)
      break;
    out.emplace_back();
    out.back().Parse(body.substr(pos, end - pos).c_str());
    pos = end + 2;
  }
  return out;
}

/// The first event of `type` in `body` (a Null document if none).
rapidjson::Document first(const std::string& body, const std::string& type) {
  for (auto& e : events(body))
    if (e.IsObject() && e.HasMember("type") && type == e["type"].GetString())
      return std::move(e);
  return {};
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

/// A WebSocket client on a raw socket.
struct ws_client {
  int fd = -1;
  int status = 0;
  ws::frame_parser parser{false, 64 << 20};

  ~ws_client() {
    if (fd >= 0)
      ::close(fd);
  }

  bool open(uint16_t port, const std::string& target,
            const std::map<std::string, std::string>& hdrs) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      return false;
    timeval tv{20, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::string req = "GET " + target
                      + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n";
    for (auto& [k, v] : hdrs)
      req += k + ": " + v + "\r\n";
    req += "\r\n";
    ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    std::string buf;
    char tmp[4096];
    while (buf.find("\r\n\r\n") == std::string::npos) {
      auto n = ::recv(fd, tmp, sizeof(tmp), 0);
      if (n <= 0)
        return false;
      buf.append(tmp, static_cast<size_t>(n));
    }
    status = std::atoi(buf.c_str() + 9);
    parser.feed(buf.substr(buf.find("\r\n\r\n") + 4));
    return status == 101;
  }

  void input(const std::string& text) {
    std::string out;
    ws::append_frame(out, ws::op_binary, std::string{"\x00", 1} + text, true);
    ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
  }

  ws::frame next() {
    ws::frame f;
    char tmp[65536];
    for (;;) {
      if (parser.next(f) == ws::frame_parser::result::frame)
        return f;
      auto n = ::recv(fd, tmp, sizeof(tmp), 0);
      if (n <= 0) {
        f.opcode = 0xff;
        return f;
      }
      parser.feed({tmp, static_cast<size_t>(n)});
    }
  }

  /// Terminal output until `text` appears (false on close or timeout).
  bool await_output(const std::string& text) {
    std::string out;
    for (;;) {
      auto f = next();
      if (f.opcode == 0xff || f.opcode == ws::op_close)
        return false;
      if (f.opcode == ws::op_binary && f.payload.size() > 1)
        out += f.payload.substr(f.payload[0] == 0x03 ? 9 : 1);
      if (out.find(text) != std::string::npos)
        return true;
    }
  }
};

class CodeInterpreter : public testing::Test {
protected:
  static void SetUpTestSuite() {
    if (!osb::test::has_image(image))
      return;
    // Signing key "c" = base64("code-interpreter-secret").
    srv_ = new server_process{
      "[ingress.secure_access]\nactive_key = \"c\"\n"
      "[[ingress.secure_access.keys]]\nkey_id = \"c\"\n"
      "key = \"Y29kZS1pbnRlcnByZXRlci1zZWNyZXQ=\"\n"};
    if (!srv_->start())
      return;
    id_ = create();
    if (!id_.empty())
      endpoint(id_, port_, token_);
  }

  static void TearDownTestSuite() {
    delete srv_; // kills the server, removes this node's containers
    srv_ = nullptr;
    id_.clear();
  }

  void SetUp() override {
    ASSERT_TRUE(osb::test::has_image(image))
      << image << " is missing: run deploy/build-images.sh";
    ASSERT_NE(srv_, nullptr);
    ASSERT_FALSE(id_.empty()) << srv_->read_log();
    ASSERT_NE(port_, 0);
  }

  /// A sandbox as the upstream e2e suite creates one.
  static std::string create() {
    auto r = srv_->call(
      "POST", "/v1/sandboxes",
      std::string{R"({"image":{"uri":")"} + image
        + R"("},"entrypoint":["/opt/code-interpreter/code-interpreter.sh"],)"
          R"("env":{"PYTHON_VERSION":"3.12","JAVA_VERSION":"21",)"
          R"("NODE_VERSION":"18","GO_VERSION":"1.25"},"timeout":900,)"
          R"("resourceLimits":{"cpu":"1","memory":"2Gi"}})");
    if (r.status != 202)
      return {};
    std::string id = r.json()["id"].GetString();
    if (srv_->wait_state(id, "Running", 60s) != "Running")
      return {};
    return id;
  }

  static void endpoint(const std::string& id, uint16_t& port,
                       std::string& token) {
    auto r = srv_->call("GET", "/v1/sandboxes/" + id + "/endpoints/44772");
    if (r.status != 200)
      return;
    auto doc = r.json();
    std::string ep = doc["endpoint"].GetString();
    port = static_cast<uint16_t>(std::stoi(ep.substr(ep.find(':') + 1)));
    token = doc["headers"]["X-EXECD-ACCESS-TOKEN"].GetString();
    // execd answers once the sandbox runs; wait for its ping.
    for (int i = 0; i < 100; ++i) {
      if (http_call(port, "GET", "/ping").status == 200)
        break;
      std::this_thread::sleep_for(100ms);
    }
  }

  static http_reply execd(const std::string& method, const std::string& path,
                          const std::string& body = {}) {
    return http_call(port_, method, path, body,
                     {{"X-EXECD-ACCESS-TOKEN", token_}});
  }

  static std::string new_context(const std::string& language) {
    auto r = execd("POST", "/code/context",
                   R"({"language":")" + language + R"("})");
    EXPECT_EQ(r.status, 200) << r.body;
    auto doc = r.json();
    return doc.IsObject() && doc.HasMember("id") ? doc["id"].GetString() : "";
  }

  /// Runs code in a context (or by language when `ctx` is empty).
  static http_reply run(const std::string& ctx, const std::string& code,
                        const std::string& language = "python") {
    std::string context = ctx.empty()
                            ? R"({"language":")" + language + R"("})"
                            : R"({"id":")" + ctx + R"("})";
    return execd("POST", "/code",
                 R"({"code":)" + json_string(code) + R"(,"context":)"
                   + context + "}");
  }

  static inline server_process* srv_ = nullptr;
  static inline std::string id_;
  static inline uint16_t port_ = 0;
  static inline std::string token_;
};

} // namespace

TEST_F(CodeInterpreter, PrintOnePlusOneByLanguage) {
  auto r = run("", "print(1+1)");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["content-type"], "text/event-stream");
  auto out = first(r.body, "stdout");
  ASSERT_TRUE(out.IsObject()) << r.body;
  EXPECT_STREQ(out["text"].GetString(), "2\n");
  EXPECT_TRUE(first(r.body, "execution_complete").IsObject()) << r.body;
  // The default context of the language is listed.
  auto list = execd("GET", "/code/contexts?language=python");
  EXPECT_NE(list.body.find(first(r.body, "init")["text"].GetString()),
            std::string::npos);
}

TEST_F(CodeInterpreter, StatePersistsWithinAContextOnly) {
  auto a = new_context("python");
  auto b = new_context("python");
  ASSERT_EQ(run(a, "x = 42").status, 200);
  auto same = run(a, "x");
  EXPECT_STREQ(first(same.body, "result")["results"]["text"].GetString(), "42")
    << same.body;
  EXPECT_TRUE(first(same.body, "execution_count").IsObject());
  auto other = run(b, "x");
  auto err = first(other.body, "error");
  ASSERT_TRUE(err.IsObject()) << other.body;
  EXPECT_STREQ(err["error"]["ename"].GetString(), "NameError");
  EXPECT_FALSE(first(other.body, "execution_complete").IsObject());
  // get, delete, then 404.
  EXPECT_EQ(execd("GET", "/code/contexts/" + a).status, 200);
  EXPECT_EQ(execd("DELETE", "/code/contexts/" + a).status, 200);
  auto gone = execd("GET", "/code/contexts/" + a);
  EXPECT_EQ(gone.status, 404);
  EXPECT_NE(gone.body.find("CONTEXT_NOT_FOUND"), std::string::npos);
  auto r = run(a, "x");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_NE(r.body.find("CONTEXT_NOT_FOUND"), std::string::npos);
}

TEST_F(CodeInterpreter, RichResultsStderrAndTracebacks) {
  auto r = run("", "import sys\nprint('to-err', file=sys.stderr)\n"
                   "from IPython.display import HTML, display\n"
                   "display(HTML('<b>bold</b>'))\n"
                   "import matplotlib.pyplot as plt\n"
                   "plt.plot([1, 2, 3]); plt.show()\n"
                   "{'a': 1}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_STREQ(first(r.body, "stderr")["text"].GetString(), "to-err\n");
  bool html = false, png = false, dict = false;
  for (auto& e : events(r.body)) {
    if (std::string{e["type"].GetString()} != "result")
      continue;
    auto& res = e["results"];
    html = html || (res.HasMember("text/html")
                    && std::string{res["text/html"].GetString()}
                         == "<b>bold</b>");
    // A PNG in Base64 starts with "iVBORw0KGgo".
    png = png || (res.HasMember("image/png")
                  && std::string{res["image/png"].GetString()}.rfind(
                       "iVBORw0KGgo", 0)
                       == 0);
    dict = dict || (res.HasMember("text")
                    && std::string{res["text"].GetString()} == "{'a': 1}");
  }
  EXPECT_TRUE(html) << r.body.substr(0, 2000);
  EXPECT_TRUE(png) << r.body.substr(0, 2000);
  EXPECT_TRUE(dict) << r.body.substr(0, 2000);
  auto e = run("", "1/0");
  auto err = first(e.body, "error");
  ASSERT_TRUE(err.IsObject()) << e.body;
  EXPECT_STREQ(err["error"]["ename"].GetString(), "ZeroDivisionError");
  EXPECT_GT(err["error"]["traceback"].Size(), 0u);
}

TEST_F(CodeInterpreter, OutputStreamsAsItHappens) {
  auto ctx = new_context("python");
  // Two lines a second apart arrive a second apart.
  auto r = run(ctx, "import time\nprint('one', flush=True)\ntime.sleep(1)\n"
                    "print('two')");
  std::vector<int64_t> at;
  for (auto& e : events(r.body))
    if (std::string{e["type"].GetString()} == "stdout")
      at.push_back(e["timestamp"].GetInt64());
  ASSERT_EQ(at.size(), 2u) << r.body;
  EXPECT_GE(at[1] - at[0], 900);
}

TEST_F(CodeInterpreter, InterruptAndAFinishedExecution) {
  auto ctx = new_context("python");
  ASSERT_EQ(run(ctx, "import time").status, 200);
  auto f = std::async(std::launch::async, [&] {
    return run(ctx, "while True: time.sleep(0.05)");
  });
  std::this_thread::sleep_for(1s);
  auto busy = run(ctx, "1");
  EXPECT_EQ(busy.status, 409) << busy.body;
  EXPECT_EQ(execd("DELETE", "/code?id=" + ctx).status, 200);
  ASSERT_EQ(f.wait_for(20s), std::future_status::ready);
  auto r = f.get();
  EXPECT_STREQ(first(r.body, "error")["error"]["ename"].GetString(),
               "KeyboardInterrupt")
    << r.body;
  // Nothing runs now: a clear error, and the context still works.
  auto again = execd("DELETE", "/code?id=" + ctx);
  EXPECT_EQ(again.status, 409);
  EXPECT_NE(again.body.find("not running"), std::string::npos) << again.body;
  EXPECT_EQ(execd("DELETE", "/code?id=no-such-context").status, 404);
  auto after = run(ctx, "time.time() > 0");
  auto res = first(after.body, "result");
  ASSERT_TRUE(res.IsObject()) << after.status << " " << after.body;
  EXPECT_STREQ(res["results"]["text"].GetString(), "True");
}

TEST_F(CodeInterpreter, DyingKernelIsAnErrorEventThenANewKernel) {
  auto ctx = new_context("python");
  ASSERT_EQ(run(ctx, "y = 1").status, 200);
  auto r = run(ctx, "import os\nos._exit(7)");
  auto err = first(r.body, "error");
  ASSERT_TRUE(err.IsObject()) << r.body;
  EXPECT_STREQ(err["error"]["ename"].GetString(), "KernelDied");
  auto next = run(ctx, "print('alive')");
  EXPECT_STREQ(first(next.body, "stdout")["text"].GetString(), "alive\n")
    << next.body;
}

TEST_F(CodeInterpreter, BadInputGetsClearErrorsAndExecdStaysUp) {
  auto r = execd("POST", "/code/context", R"({"language":"cobol"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("unknown language cobol"), std::string::npos);
  r = execd("POST", "/code/context", R"({"language":"go"})");
  EXPECT_EQ(r.status, 501) << r.body;
  EXPECT_NE(r.body.find("no Jupyter kernel for language go"),
            std::string::npos);
  r = execd("POST", "/code", R"({"code":"","context":{"language":"python"}})");
  EXPECT_EQ(r.status, 400);
  std::string big(10 * 1024 * 1024, '#');
  r = execd("POST", "/code",
            R"({"code":")" + big + R"(","context":{"language":"python"}})");
  EXPECT_EQ(r.status, 413) << r.body.substr(0, 200);
  EXPECT_NE(r.body.find("CODE_TOO_LARGE"), std::string::npos);
  // 1,000 contexts: no kernel is started for them.
  for (int i = 0; i < 1000; ++i) {
    auto c = execd("POST", "/code/context", R"({"language":"bash"})");
    ASSERT_EQ(c.status, 200) << i << ": " << c.body;
  }
  auto list = execd("GET", "/code/contexts?language=bash");
  rapidjson::Document d;
  d.Parse(list.body.c_str());
  ASSERT_TRUE(d.IsArray());
  EXPECT_GE(d.Size(), 1000u);
  EXPECT_EQ(execd("DELETE", "/code/contexts?language=bash").status, 200);
  d.Parse(execd("GET", "/code/contexts?language=bash").body.c_str());
  EXPECT_EQ(d.Size(), 0u);
  EXPECT_EQ(http_call(port_, "GET", "/ping").status, 200);
  EXPECT_EQ(run("", "print('still here')").status, 200);
}

TEST_F(CodeInterpreter, BashJavaScriptAndTypeScriptKernels) {
  auto b = new_context("bash");
  ASSERT_EQ(run(b, "COUNT=41; cd /tmp").status, 200);
  auto r = run(b, "echo $((COUNT+1)) $PWD");
  EXPECT_STREQ(first(r.body, "stdout")["text"].GetString(), "42 /tmp\n")
    << r.body;
  r = run(b, "false");
  EXPECT_STREQ(first(r.body, "error")["error"]["evalue"].GetString(), "1");
  // An interrupt reaches the shell's foreground command; the shell stays.
  auto f = std::async(std::launch::async, [&] { return run(b, "sleep 30"); });
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(execd("DELETE", "/code?id=" + b).status, 200);
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  r = f.get();
  EXPECT_STREQ(first(r.body, "error")["error"]["ename"].GetString(),
               "KeyboardInterrupt")
    << r.body;
  r = run(b, "echo $COUNT");
  EXPECT_STREQ(first(r.body, "stdout")["text"].GetString(), "41\n") << r.body;
  auto js = new_context("javascript");
  ASSERT_EQ(run(js, "const xs = [1, 2, 3];").status, 200);
  r = run(js, "console.log(xs.map(x => x * 2).join(','))");
  EXPECT_STREQ(first(r.body, "stdout")["text"].GetString(), "2,4,6\n")
    << r.body;
  auto ts = new_context("typescript");
  r = run(ts, "const n: number = 40;\nconsole.log(n + 2);");
  EXPECT_STREQ(first(r.body, "stdout")["text"].GetString(), "42\n") << r.body;
}

TEST_F(CodeInterpreter, JavaKernelOnJShell) {
  auto j = new_context("java");
  ASSERT_EQ(run(j, "int x = 41;\nint twice(int a) { return 2 * a; }").status,
            200);
  auto r = run(j, "System.out.println(\"x=\" + x);\ntwice(x + 1)");
  EXPECT_STREQ(first(r.body, "stdout")["text"].GetString(), "x=41\n")
    << r.body;
  auto res = first(r.body, "result");
  ASSERT_TRUE(res.IsObject()) << r.body;
  EXPECT_STREQ(res["results"]["text"].GetString(), "84");
  r = run(j, "throw new IllegalStateException(\"boom\");");
  auto err = first(r.body, "error");
  ASSERT_TRUE(err.IsObject()) << r.body;
  EXPECT_STREQ(err["error"]["ename"].GetString(), "EvalException");
  EXPECT_STREQ(err["error"]["evalue"].GetString(), "boom");
  r = run(j, "int y = ;");
  EXPECT_STREQ(first(r.body, "error")["error"]["ename"].GetString(),
               "CompilationException")
    << r.body;
  // Not shared with another Java context.
  auto other = new_context("java");
  r = run(other, "x");
  EXPECT_TRUE(first(r.body, "error").IsObject()) << r.body;
  // An endless loop stops on interrupt; the state survives it. (It sleeps:
  // a bare x++ loop wraps x around within the second.)
  auto f = std::async(std::launch::async, [&] {
    return run(j, "while (true) { x++; Thread.sleep(5); }");
  });
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(execd("DELETE", "/code?id=" + j).status, 200);
  ASSERT_EQ(f.wait_for(20s), std::future_status::ready);
  r = f.get();
  EXPECT_STREQ(first(r.body, "error")["error"]["ename"].GetString(),
               "KeyboardInterrupt")
    << r.body;
  r = run(j, "x > 41");
  res = first(r.body, "result");
  ASSERT_TRUE(res.IsObject()) << r.body;
  EXPECT_STREQ(res["results"]["text"].GetString(), "true");
}

TEST_F(CodeInterpreter, NoKernelUntilCodeRunsAndVersionsAreReported) {
  auto id = create();
  ASSERT_FALSE(id.empty());
  uint16_t port = 0;
  std::string token;
  endpoint(id, port, token);
  auto ps = http_call(port, "POST", "/command", R"({"command":"ps -eo args"})",
                      {{"X-EXECD-ACCESS-TOKEN", token}});
  EXPECT_EQ(ps.status, 200);
  EXPECT_EQ(ps.body.find("ipykernel"), std::string::npos) << ps.body;
  EXPECT_EQ(ps.body.find("jupyter"), std::string::npos) << ps.body;
  // The entrypoint script reports while execd already answers.
  std::string logs;
  for (int i = 0; i < 100; ++i) {
    logs = shell("docker logs sandbox-" + id + " 2>&1");
    if (logs.find("node 18 requested") != std::string::npos)
      break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(logs.find("python 3.12 requested: this image has python 3."),
            std::string::npos)
    << logs;
  EXPECT_NE(logs.find("java 21 requested: this image has java 17."),
            std::string::npos)
    << logs;
  EXPECT_NE(logs.find("go 1.25 requested: this image has no go"),
            std::string::npos);
  EXPECT_NE(logs.find("node 18 requested: using 18."), std::string::npos);
  EXPECT_EQ(srv_->call("DELETE", "/v1/sandboxes/" + id).status, 204);
}

TEST_F(CodeInterpreter, TerminalDirectThroughTheProxyAndSigned) {
  auto r = execd("POST", "/pty", R"({"cols":120,"rows":40})");
  ASSERT_EQ(r.status, 201) << r.body;
  std::string sid = r.json()["session_id"].GetString();
  {
    ws_client c;
    ASSERT_TRUE(c.open(port_, "/pty/" + sid + "/ws",
                       {{"X-EXECD-ACCESS-TOKEN", token_}}))
      << c.status;
    c.input("stty size; echo direct-$((40+2))\n");
    EXPECT_TRUE(c.await_output("direct-42"));
  }
  // Through the server proxy with the API key: a takeover of the session.
  {
    ws_client c;
    ASSERT_TRUE(c.open(srv_->port(),
                       "/sandboxes/" + id_ + "/proxy/44772/pty/" + sid
                         + "/ws?takeover=1",
                       {{"OPEN-SANDBOX-API-KEY", "test-key"}}))
      << c.status;
    // The replay carries what the first client saw, 40 rows and 120 cols.
    EXPECT_TRUE(c.await_output("40 120"));
    c.input("echo proxied-$((1+1))\n");
    EXPECT_TRUE(c.await_output("proxied-2"));
  }
  // Through a signed URL: no header at all.
  auto now = static_cast<int64_t>(std::time(nullptr));
  auto ep = srv_->call("GET", "/v1/sandboxes/" + id_
                                + "/endpoints/44772?use_server_proxy=true"
                                  "&expires="
                                + std::to_string(now + 600));
  ASSERT_EQ(ep.status, 200) << ep.body;
  std::string url = ep.json()["endpoint"].GetString();
  auto path = url.substr(url.find('/'));
  {
    ws_client c;
    ASSERT_TRUE(c.open(srv_->port(), path + "/pty/" + sid + "/ws?takeover=1",
                       {}))
      << c.status;
    c.input("echo signed-ok; exit 5\n");
    EXPECT_TRUE(c.await_output("signed-ok"));
    std::string exit_frame;
    for (;;) {
      auto f = c.next();
      if (f.opcode == ws::op_text)
        exit_frame = f.payload;
      if (f.opcode == ws::op_close || f.opcode == 0xff) {
        EXPECT_EQ(f.opcode, ws::op_close);
        break;
      }
    }
    EXPECT_EQ(exit_frame, R"({"type":"exit","exit_code":5})");
  }
  EXPECT_EQ(execd("DELETE", "/pty/" + sid).status, 200);
  EXPECT_EQ(execd("GET", "/pty/" + sid).status, 404);
}
