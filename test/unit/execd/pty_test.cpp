// /pty over real HTTP and WebSocket: create, attach, input, output,
// resize, replay, takeover, exit, delete, and the refusals before the
// upgrade.

#include "test/unit/execd/http_client.hpp"

#include "execd/websocket.hpp"

namespace osb::execd::test {

namespace {

/// A WebSocket test client on a raw socket.
struct ws_client {
  int fd = -1;
  int status = 0;
  std::string buf;
  ws::frame_parser parser{false, 64 << 20};

  ~ws_client() {
    if (fd >= 0)
      ::close(fd);
  }

  bool open(uint16_t port, const std::string& target) {
    fd = connect_to(port);
    if (fd < 0)
      return false;
    send_all(fd, "GET " + target
                   + " HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n");
    auto r = read_response(fd, buf);
    status = r.status;
    if (status != 101)
      return false;
    EXPECT_EQ(r.header("sec-websocket-accept"),
              "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    parser.feed(buf);
    buf.clear();
    return true;
  }

  void send(uint8_t op, std::string_view payload) {
    std::string out;
    ws::append_frame(out, op, payload, true);
    send_all(fd, out);
  }

  void input(std::string_view text) {
    send(ws::op_binary, std::string{"\x00", 1} + std::string{text});
  }

  /// The next frame; opcode 0xff on EOF or timeout.
  ws::frame next() {
    ws::frame f;
    for (;;) {
      if (parser.next(f) == ws::frame_parser::result::frame)
        return f;
      std::string more;
      if (!fill(fd, more)) {
        f.opcode = 0xff;
        return f;
      }
      parser.feed(more);
    }
  }

  /// Reads frames until the terminal output contains `text`; returns all
  /// output seen (false on EOF).
  bool await_output(const std::string& text, std::string* seen = nullptr) {
    std::string out;
    for (;;) {
      auto f = next();
      if (f.opcode == 0xff || f.opcode == ws::op_close)
        return false;
      if (f.opcode == ws::op_binary && !f.payload.empty()) {
        out += f.payload.substr(f.payload[0] == 0x03 ? 9 : 1);
        if (out.find(text) != std::string::npos) {
          if (seen != nullptr)
            *seen = out;
          return true;
        }
      }
    }
  }

  /// The next text frame.
  std::string next_text() {
    for (;;) {
      auto f = next();
      if (f.opcode == 0xff || f.opcode == ws::op_close)
        return "";
      if (f.opcode == ws::op_text)
        return f.payload;
    }
  }
};

std::string create(uint16_t port, const std::string& body) {
  auto r = request(port, "POST", "/pty", body);
  EXPECT_EQ(r.status, 201) << r.body;
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  return d.HasMember("session_id") ? d["session_id"].GetString() : "";
}

} // namespace

TEST_F(ExecdHttp, PtyShellWithInputOutputAndResize) {
  auto id = create(port, R"({"cols":100,"rows":30})");
  auto st = request(port, "GET", "/pty/" + id);
  EXPECT_NE(st.body.find(R"("running":false)"), std::string::npos);
  ws_client c;
  ASSERT_TRUE(c.open(port, "/pty/" + id + "/ws"));
  EXPECT_NE(c.next_text().find(R"("type":"connected")"), std::string::npos);
  c.input("stty size; echo marker-$((6*7))\n");
  std::string out;
  ASSERT_TRUE(c.await_output("marker-42", &out));
  EXPECT_NE(out.find("30 100"), std::string::npos) << out;
  c.send(ws::op_text, R"({"type":"resize","cols":50,"rows":10})");
  c.send(ws::op_text, R"({"type":"stdin","data":"stty size\n"})");
  ASSERT_TRUE(c.await_output("10 50"));
  c.send(ws::op_text, R"({"type":"ping"})");
  EXPECT_EQ(c.next_text(), R"({"type":"pong"})");
  c.send(ws::op_text, R"({"type":"nonsense"})");
  EXPECT_NE(c.next_text().find("INVALID_FRAME"), std::string::npos);
  st = request(port, "GET", "/pty/" + id);
  EXPECT_NE(st.body.find(R"("running":true)"), std::string::npos);
}

TEST_F(ExecdHttp, PtyExitClosesTheSocketCleanly) {
  auto id = create(port, "");
  ws_client c;
  ASSERT_TRUE(c.open(port, "/pty/" + id + "/ws"));
  c.next_text();
  c.input("exit 3\n");
  std::string exit_frame;
  ws::frame f;
  for (;;) {
    f = c.next();
    ASSERT_NE(f.opcode, 0xff);
    if (f.opcode == ws::op_text)
      exit_frame = f.payload;
    if (f.opcode == ws::op_close)
      break;
  }
  EXPECT_EQ(exit_frame, R"({"type":"exit","exit_code":3})");
  ASSERT_GE(f.payload.size(), 2u);
  EXPECT_EQ((static_cast<uint8_t>(f.payload[0]) << 8)
              | static_cast<uint8_t>(f.payload[1]),
            1000);
  auto st = request(port, "GET", "/pty/" + id);
  EXPECT_NE(st.body.find(R"("running":false)"), std::string::npos);
}

TEST_F(ExecdHttp, PtyCommandInPipeMode) {
  auto id = create(port, R"({"command":"echo out; echo err >&2"})");
  ws_client c;
  ASSERT_TRUE(c.open(port, "/pty/" + id + "/ws?pty=0"));
  std::string out, err, connected;
  for (;;) {
    auto f = c.next();
    if (f.opcode == 0xff || f.opcode == ws::op_close)
      break;
    if (f.opcode == ws::op_text && connected.empty())
      connected = f.payload;
    if (f.opcode == ws::op_binary && f.payload[0] == 0x01)
      out += f.payload.substr(1);
    if (f.opcode == ws::op_binary && f.payload[0] == 0x02)
      err += f.payload.substr(1);
  }
  EXPECT_NE(connected.find(R"("mode":"pipe")"), std::string::npos);
  EXPECT_EQ(out, "out\n");
  EXPECT_EQ(err, "err\n");
}

TEST_F(ExecdHttp, PtyTakeoverAndReplay) {
  auto id = create(port, "");
  ws_client first;
  ASSERT_TRUE(first.open(port, "/pty/" + id + "/ws"));
  first.next_text();
  first.input("echo before-$((1+1))\n");
  ASSERT_TRUE(first.await_output("before-2"));
  // A second client without takeover is refused before the upgrade.
  ws_client refused;
  EXPECT_FALSE(refused.open(port, "/pty/" + id + "/ws"));
  EXPECT_EQ(refused.status, 409);
  ws_client second;
  ASSERT_TRUE(second.open(port, "/pty/" + id + "/ws?takeover=1"));
  // The first gets an error frame and close code 4001.
  ws::frame f;
  do {
    f = first.next();
  } while (f.opcode != ws::op_close && f.opcode != 0xff);
  ASSERT_EQ(f.opcode, ws::op_close);
  EXPECT_EQ(f.payload, ws::close_payload(4001, "TAKEN_OVER"));
  // The second sees what was missed (replay from offset 0), then lives on.
  auto replay = second.next();
  ASSERT_EQ(replay.opcode, ws::op_binary);
  ASSERT_EQ(replay.payload[0], 0x03);
  EXPECT_NE(replay.payload.find("before-2"), std::string::npos);
  EXPECT_NE(second.next_text().find("connected"), std::string::npos);
  second.input("echo after-$((2+2))\n");
  EXPECT_TRUE(second.await_output("after-4"));
}

TEST_F(ExecdHttp, PtyRefusalsAndDelete) {
  EXPECT_EQ(request(port, "GET", "/pty/nope").status, 404);
  EXPECT_EQ(request(port, "DELETE", "/pty/nope").status, 404);
  ws_client missing;
  EXPECT_FALSE(missing.open(port, "/pty/nope/ws"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(request(port, "POST", "/pty", R"({"cwd":"/definitely/missing"})")
              .status,
            400);
  EXPECT_EQ(request(port, "POST", "/pty", R"({"cols":0})").status, 400);
  auto id = create(port, "");
  // Not a WebSocket handshake.
  auto plain = request(port, "GET", "/pty/" + id + "/ws");
  EXPECT_EQ(plain.status, 400);
  ws_client c;
  ASSERT_TRUE(c.open(port, "/pty/" + id + "/ws"));
  c.next_text();
  auto r = request(port, "DELETE", "/pty/" + id);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), "0");
  ws::frame f;
  do {
    f = c.next();
  } while (f.opcode != ws::op_close && f.opcode != 0xff);
  EXPECT_EQ(f.opcode, ws::op_close);
  EXPECT_EQ(request(port, "GET", "/pty/" + id).status, 404);
}

} // namespace osb::execd::test
