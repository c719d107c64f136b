// execd's API over real HTTP: the server's front (access token, keep-alive,
// Expect) and every route family. The /proxy relay: execd_proxy_test.cpp.

#include "test/unit/execd/http_client.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace osb::execd;
using namespace osb::execd::test;

namespace {

std::string multipart_body(const std::string& boundary,
                           const std::vector<std::pair<std::string,
                                                       std::string>>& files) {
  std::string body;
  for (auto& [meta, content] : files) {
    body += "--" + boundary + "\r\n"
            "Content-Disposition: form-data; name=\"metadata\"; "
            "filename=\"metadata\"\r\nContent-Type: application/json\r\n\r\n"
            + meta + "\r\n";
    body += "--" + boundary + "\r\n"
            "Content-Disposition: form-data; name=\"file\"; "
            "filename=\"x\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            + content + "\r\n";
  }
  body += "--" + boundary + "--\r\n";
  return body;
}

} // namespace

TEST_F(ExecdHttp, PingIsEmptyWithContentLength) {
  auto r = request(port, "GET", "/ping");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), "0");
  EXPECT_EQ(r.body, "");
}

TEST_F(ExecdHttp, KeepAliveServesSeveralRequests) {
  int fd = connect_to(port);
  std::string buf;
  for (int i = 0; i < 3; ++i) {
    send_all(fd, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
    auto r = read_response(fd, buf);
    EXPECT_EQ(r.status, 200);
  }
  // Pipelined.
  send_all(fd, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics "
               "HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(read_response(fd, buf).status, 200);
  auto m = read_response(fd, buf);
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("\"cpu_count\""), std::string::npos);
  ::close(fd);
}

TEST_F(ExecdHttp, CommandStream) {
  auto r = request(port, "POST", "/command",
                   R"({"command":"echo hi; echo there >&2"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "text/event-stream");
  EXPECT_TRUE(r.chunked);
  auto evs = events(r.body);
  ASSERT_GE(evs.size(), 4u);
  EXPECT_STREQ(evs.front()["type"].GetString(), "init");
  std::vector<std::string> types;
  for (auto& e : evs) {
    types.emplace_back(e["type"].GetString());
    EXPECT_TRUE(e["timestamp"].IsInt64());
  }
  EXPECT_EQ(types.back(), "execution_complete");
  EXPECT_NE(r.body.find(R"({"type":"stdout","text":"hi","timestamp":)"),
            std::string::npos);
  EXPECT_NE(r.body.find(R"({"type":"stderr","text":"there","timestamp":)"),
            std::string::npos);
  // Status of the finished command.
  auto id = std::string{evs.front()["text"].GetString()};
  auto s = request(port, "GET", "/command/status/" + id);
  EXPECT_EQ(s.status, 200);
  rapidjson::Document doc;
  doc.Parse(s.body.c_str());
  EXPECT_EQ(doc["id"].GetString(), id);
  EXPECT_FALSE(doc["running"].GetBool());
  EXPECT_EQ(doc["exit_code"].GetInt(), 0);
  EXPECT_TRUE(doc["started_at"].IsString());
  EXPECT_TRUE(doc["finished_at"].IsString());
}

TEST_F(ExecdHttp, CommandValidationErrorsAreJson) {
  auto check = [&](const std::string& body, int status) {
    auto r = request(port, "POST", "/command", body);
    EXPECT_EQ(r.status, status) << body;
    rapidjson::Document doc;
    doc.Parse(r.body.c_str());
    ASSERT_FALSE(doc.HasParseError()) << r.body;
    EXPECT_STREQ(doc["code"].GetString(), "INVALID_REQUEST_BODY");
    EXPECT_TRUE(doc["message"].IsString());
  };
  check("{not json", 400);
  check(R"({"cwd":"/"})", 400);
  check(R"({"command":""})", 400);
  check(R"({"command":"true","cwd":"/definitely/missing"})", 400);
  check(R"({"command":"true","gid":1})", 400);
  check(R"({"command":"true","timeout":-5})", 400);
  auto r = request(port, "GET", "/command/status/unknown");
  EXPECT_EQ(r.status, 404);
  r = request(port, "DELETE", "/command");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("MISSING_QUERY"), std::string::npos);
  r = request(port, "DELETE", "/command?id=unknown");
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("RUNTIME_ERROR"), std::string::npos);
  r = request(port, "GET", "/no/such/route");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("\"code\""), std::string::npos);
}

TEST_F(ExecdHttp, BackgroundCommandLogsWithCursor) {
  auto r = request(port, "POST", "/command",
                   R"({"command":"echo log-line-1; sleep 0.2; echo log-line-2","background":true})");
  auto evs = events(r.body);
  ASSERT_EQ(evs.size(), 2u);
  std::string id = evs[0]["text"].GetString();
  EXPECT_STREQ(evs[1]["type"].GetString(), "execution_complete");
  std::string all;
  std::string cursor;
  for (int i = 0; i < 50 && all.find("log-line-2") == std::string::npos; ++i) {
    auto l = request(port, "GET", "/command/" + id + "/logs"
                                    + (cursor.empty() ? "" : "?cursor=" + cursor));
    EXPECT_EQ(l.status, 200);
    ASSERT_TRUE(l.has("execd-commands-tail-cursor"));
    cursor = l.header("execd-commands-tail-cursor");
    all += l.body;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(all, "log-line-1\nlog-line-2\n");
  EXPECT_EQ(cursor, std::to_string(all.size()));
  auto again = request(port, "GET", "/command/" + id + "/logs?cursor=" + cursor);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.header("content-length"), "0");
  EXPECT_EQ(request(port, "GET", "/command/nope/logs").status, 400);
}

TEST_F(ExecdHttp, InterruptOverHttp) {
  // Read the stream by hand to learn the id from the init event.
  int fd = connect_to(port);
  std::string body = R"({"command":"sleep 30"})";
  send_all(fd, "POST /command HTTP/1.1\r\nHost: x\r\nContent-Length: "
                 + std::to_string(body.size()) + "\r\n\r\n" + body);
  std::string buf;
  while (buf.find("\"init\"") == std::string::npos)
    ASSERT_TRUE(fill(fd, buf));
  auto at = buf.find("\"text\":\"") + 8;
  auto id = buf.substr(at, 32);
  auto start = std::chrono::steady_clock::now();
  auto r = request(port, "DELETE", "/command?id=" + id);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), "0");
  while (buf.find("\r\n0\r\n\r\n") == std::string::npos && fill(fd, buf)) {
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_NE(buf.find("\"evalue\":\"-1\""), std::string::npos) << buf;
  EXPECT_NE(buf.find("signal: terminated"), std::string::npos) << buf;
  ::close(fd);
  auto s = request(port, "GET", "/command/status/" + id);
  EXPECT_NE(s.body.find("\"running\":false"), std::string::npos) << s.body;
}

TEST_F(ExecdHttp, UploadThenDownloadWithRange) {
  auto a = dir + "/up/a.txt";
  auto b = dir + "/up/nested/b.bin";
  auto body = multipart_body(
    "opensandbox_abc_123",
    {{R"({"path":")" + a + R"(","mode":644,"owner":null,"group":null})",
      "0123456789abcdefghij"},
     {R"({"path":")" + b + R"("})", std::string("\0\1\2\r\n--x", 8)}});
  auto r = request(port, "POST", "/files/upload", body,
                   "Content-Type: multipart/form-data; "
                   "boundary=opensandbox_abc_123\r\n");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-length"), "0");
  std::string got;
  ASSERT_TRUE(read_file(b, got));
  EXPECT_EQ(got, std::string("\0\1\2\r\n--x", 8));
  auto full = request(port, "GET", "/files/download?path=" + a);
  EXPECT_EQ(full.status, 200);
  EXPECT_EQ(full.body, "0123456789abcdefghij");
  EXPECT_EQ(full.header("content-length"), "20");
  EXPECT_EQ(full.header("content-type"), "application/octet-stream");
  EXPECT_EQ(full.header("content-disposition"),
            "attachment; filename=\"a.txt\"");
  auto part = request(port, "GET", "/files/download?path=" + a, "",
                      "Range: bytes=0-9\r\n");
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, "0123456789");
  EXPECT_EQ(part.header("content-range"), "bytes 0-9/20");
  EXPECT_EQ(part.header("content-length"), "10");
  auto tail = request(port, "GET", "/files/download?path=" + a, "",
                      "Range: bytes=-5\r\n");
  EXPECT_EQ(tail.body, "fghij");
  auto bad = request(port, "GET", "/files/download?path=" + a, "",
                     "Range: bytes=50-60\r\n");
  EXPECT_EQ(bad.status, 416);
  EXPECT_NE(bad.body.find("\"code\""), std::string::npos);
  auto missing = request(port, "GET", "/files/download?path=" + dir + "/none");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("FILE_NOT_FOUND"), std::string::npos);
  auto info = request(port, "GET", "/files/info?path=" + a);
  EXPECT_NE(info.body.find("\"mode\":644"), std::string::npos) << info.body;
}

TEST_F(ExecdHttp, UploadPairingErrors) {
  auto ct = std::string{"Content-Type: multipart/form-data; boundary=B\r\n"};
  auto only_meta = "--B\r\nContent-Disposition: form-data; name=\"metadata\"\r\n"
                   "\r\n{\"path\":\"" + dir + "/m\"}\r\n--B--\r\n";
  auto r = request(port, "POST", "/files/upload", only_meta, ct);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("INVALID_FILE_CONTENT"), std::string::npos) << r.body;
  auto only_file = "--B\r\nContent-Disposition: form-data; name=\"file\"; "
                   "filename=\"f\"\r\n\r\ndata\r\n--B--\r\n";
  r = request(port, "POST", "/files/upload", only_file, ct);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("INVALID_FILE_METADATA"), std::string::npos);
  // File before its metadata is spooled and placed.
  auto reversed = std::string{"--B\r\nContent-Disposition: form-data; "
                              "name=\"file\"; filename=\"f\"\r\n\r\nlate\r\n"}
                  + "--B\r\nContent-Disposition: form-data; "
                    "name=\"metadata\"\r\n\r\n{\"path\":\""
                  + dir + "/late.txt\"}\r\n--B--\r\n";
  r = request(port, "POST", "/files/upload", reversed, ct);
  EXPECT_EQ(r.status, 200) << r.body;
  std::string got;
  EXPECT_TRUE(read_file(dir + "/late.txt", got));
  EXPECT_EQ(got, "late");
}

TEST_F(ExecdHttp, ChunkedUploadBody) {
  int fd = connect_to(port);
  auto body = multipart_body("zz", {{R"({"path":")" + dir + R"(/c.txt"})",
                                     "chunked-content"}});
  std::string req = "POST /files/upload HTTP/1.1\r\nHost: x\r\n"
                    "Content-Type: multipart/form-data; boundary=zz\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n";
  for (size_t i = 0; i < body.size(); i += 17) {
    auto piece = body.substr(i, 17);
    char size[16];
    std::snprintf(size, sizeof(size), "%zx\r\n", piece.size());
    req += size + piece + "\r\n";
  }
  req += "0\r\n\r\n";
  send_all(fd, req);
  std::string buf;
  auto r = read_response(fd, buf);
  EXPECT_EQ(r.status, 200) << r.body;
  ::close(fd);
  std::string got;
  EXPECT_TRUE(read_file(dir + "/c.txt", got));
  EXPECT_EQ(got, "chunked-content");
}

TEST_F(ExecdHttp, FileEndpointsEmptySuccesses) {
  auto r = request(port, "POST", "/directories",
                   R"({")" + dir + R"(/d1/d2":{"mode":755}})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), "0");
  EXPECT_TRUE(std::filesystem::is_directory(dir + "/d1/d2"));
  std::ofstream{dir + "/d1/f.txt"} << "hello hello";
  r = request(port, "POST", "/files/replace?verbose=true",
              R"({")" + dir + R"(/d1/f.txt":{"old":"hello","new":"bye"}})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({")" + dir + R"(/d1/f.txt":{"replacedCount":2}})");
  r = request(port, "POST", "/files/replace",
              R"({")" + dir + R"(/d1/f.txt":{"old":"bye","new":"x"}})");
  EXPECT_EQ(r.header("content-length"), "0");
  r = request(port, "POST", "/files/permissions",
              R"({")" + dir + R"(/d1/f.txt":{"mode":600}})");
  EXPECT_EQ(r.status, 200);
  r = request(port, "GET", "/files/search?path=" + dir + "&pattern=*.txt");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"mode\":600"), std::string::npos) << r.body;
  r = request(port, "POST", "/files/mv",
              R"([{"src":")" + dir + R"(/d1/f.txt","dest":")" + dir
                + R"(/moved/f.txt"}])");
  EXPECT_EQ(r.status, 200);
  r = request(port, "GET", "/directories/list?path=" + dir + "&depth=2");
  EXPECT_NE(r.body.find("/moved/f.txt"), std::string::npos) << r.body;
  r = request(port, "DELETE", "/files?path=" + dir + "/moved/f.txt&path="
                                + dir + "/never-existed");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), "0");
  r = request(port, "DELETE", "/directories?path=" + dir + "/d1");
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(std::filesystem::exists(dir + "/d1"));
  r = request(port, "GET", "/files/info?path=" + dir + "/gone");
  EXPECT_EQ(r.status, 404);
}

TEST_F(ExecdHttp, SessionsOverHttp) {
  auto r = request(port, "POST", "/session", "");
  EXPECT_EQ(r.status, 200);
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  std::string id = doc["session_id"].GetString();
  r = request(port, "POST", "/session/" + id + "/run",
              R"({"command":"export A=1; cd )" + dir + R"("})");
  EXPECT_EQ(r.status, 200);
  r = request(port, "POST", "/session/" + id + "/run",
              R"({"command":"echo $A; pwd; exit 3"})");
  auto evs = events(r.body);
  EXPECT_STREQ(evs[0]["text"].GetString(), id.c_str());
  EXPECT_NE(r.body.find(R"("text":"1")"), std::string::npos);
  EXPECT_NE(r.body.find(R"("text":")" + dir + "\""), std::string::npos);
  EXPECT_NE(r.body.find(R"("evalue":"3")"), std::string::npos);
  EXPECT_EQ(request(port, "POST", "/session/nope/run", R"({"command":"x"})")
              .status,
            500);
  r = request(port, "DELETE", "/session/" + id);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), "0");
  EXPECT_EQ(request(port, "DELETE", "/session/" + id).status, 404);
}

TEST_F(ExecdHttp, CodeWithoutLanguageRunsShell) {
  auto r = request(port, "POST", "/code", R"({"code":"echo from-code"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"("text":"from-code")"), std::string::npos);
  r = request(port, "POST", "/code",
              R"({"code":"1+1","context":{"language":"python"}})");
  EXPECT_EQ(r.status, 501);
  EXPECT_NE(r.body.find("NOT_SUPPORTED"), std::string::npos);
  r = request(port, "GET", "/code/contexts");
  EXPECT_EQ(r.body, "[]");
}

TEST_F(ExecdHttp, AccessToken) {
  start_server("s3cret");
  // The health ping stays open; everything else needs the token.
  auto r = request(port, "GET", "/ping");
  EXPECT_EQ(r.status, 200);
  r = request(port, "POST", "/command", R"({"command":"echo hi"})");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, R"({"error":"Unauthorized: invalid or missing header X-EXECD-ACCESS-TOKEN"})");
  r = request(port, "GET", "/proxy/1/x");
  EXPECT_EQ(r.status, 401);
  r = request(port, "GET", "/files/info?path=%2F", "",
              "X-EXECD-ACCESS-TOKEN: wrong\r\n");
  EXPECT_EQ(r.status, 401);
  r = request(port, "GET", "/files/info?path=%2F", "",
              "X-EXECD-ACCESS-TOKEN: s3crex\r\n");
  EXPECT_EQ(r.status, 401);
  r = request(port, "GET", "/files/info?path=%2F", "",
              "X-EXECD-ACCESS-TOKEN: s3cret\r\n");
  EXPECT_EQ(r.status, 200);
  r = request(port, "GET", "/proxy/" + std::to_string(port) + "/ping", "",
              "x-execd-access-token: s3cret\r\n");
  EXPECT_EQ(r.status, 200);
}

TEST_F(ExecdHttp, ExpectContinue) {
  int fd = connect_to(port);
  std::string body = R"({"command":"echo cont"})";
  send_all(fd, "POST /command HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
               "Content-Length: "
                 + std::to_string(body.size()) + "\r\n\r\n");
  std::string buf;
  while (buf.find("\r\n\r\n") == std::string::npos)
    ASSERT_TRUE(fill(fd, buf));
  EXPECT_EQ(buf.rfind("HTTP/1.1 100 Continue\r\n\r\n", 0), 0u) << buf;
  buf.erase(0, buf.find("\r\n\r\n") + 4);
  send_all(fd, body);
  auto r = read_response(fd, buf);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"cont\""), std::string::npos);
  ::close(fd);
}
