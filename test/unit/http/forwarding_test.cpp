// The streaming server proxy end to end (http/forwarding.cpp,
// http/tunnel.cpp): the real API handler over the real server against a
// local test upstream (no Docker, no actors).

#include "http/api.hpp"
#include "http/server.hpp"

#include "test/unit/http/lookup_backend.hpp"
#include "test/unit/http/proxy_backend.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

using namespace osb;
using namespace osb::http;
using osb::test::lookup_backend;
using osb::test::stream_client;
using osb::test::test_backend;

namespace {

// -- the streaming server end to end ---------------------------------------------

/// The real API handler over the real server, host network mode (the
/// proxied port is the port in the URL), with a test upstream.
class ProxyServer : public testing::Test {
protected:
  ProxyServer() {
    cfg = std::make_shared<node_config>();
    cfg->server.host = "127.0.0.1";
    cfg->server.port = 1; // not a port the tests proxy to
    cfg->docker.network_mode = "host";
    backend = std::make_shared<lookup_backend>();
    sandbox_view x;
    x.id = "sbx-1";
    backend->sandboxes[x.id] = x;
    server_options opts;
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.threads = 2;
    // Far below the bodies streamed here: proxied bodies have no limit.
    opts.body_limit = 1024 * 1024;
    auto srv = server::start(opts, make_api_handler(cfg, backend));
    EXPECT_TRUE(srv.has_value());
    if (srv.has_value())
      server_ = std::move(*srv);
  }

  uint16_t port() const {
    return server_ ? server_->port() : 0;
  }

  std::string proxy_target(const std::string& rest) const {
    return "/sandboxes/sbx-1/proxy/" + std::to_string(upstream.port()) + rest;
  }

  static std::string get(const std::string& target,
                         const std::string& extra = {}) {
    return "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra
           + "\r\n";
  }

  std::shared_ptr<node_config> cfg;
  std::shared_ptr<lookup_backend> backend;
  test_backend upstream;
  std::unique_ptr<server> server_;
};

TEST_F(ProxyServer, ForwardsAndKeepsConnectionsAlive) {
  stream_client c{port()};
  ASSERT_TRUE(c.connected());
  c.send(get(proxy_target("/headers?x=1"),
             "Authorization: Bearer secret\r\nCookie: a=b\r\n"
             "X-Trace: t1\r\nX-Request-ID: rid-1\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r.complete);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["x-backend"], "yes");
  EXPECT_EQ(r.headers["x-request-id"], "rid-1");
  EXPECT_EQ(r.headers["server"], "test-backend");
  EXPECT_NE(r.body.find("GET /headers?x=1\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("x-trace: t1\n"), std::string::npos);
  EXPECT_NE(r.body.find("x-request-id: rid-1\n"), std::string::npos);
  EXPECT_NE(r.body.find("x-forwarded-for: 127.0.0.1\n"), std::string::npos);
  EXPECT_NE(r.body.find("x-forwarded-host: localhost\n"), std::string::npos);
  EXPECT_NE(r.body.find("host: 127.0.0.1:" + std::to_string(upstream.port())),
            std::string::npos);
  EXPECT_EQ(r.body.find("authorization"), std::string::npos);
  EXPECT_EQ(r.body.find("cookie"), std::string::npos);
  // Same client connection, same upstream connection.
  for (int i = 0; i < 3; ++i) {
    c.send(get(proxy_target("/status/201")));
    r = c.read_response();
    EXPECT_EQ(r.status, 201);
    EXPECT_EQ(r.body, "status 201");
  }
  EXPECT_EQ(upstream.connections(), 1);
  // A plain API request on the same connection still works.
  c.send(get("/health"));
  r = c.read_response();
  EXPECT_EQ(r.status, 200);
}

TEST_F(ProxyServer, StreamsBodiesBothWays) {
  // Upload with Content-Length, then chunked, then a download.
  std::string body(5 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < body.size(); ++i)
    body[i] = test::pattern_byte(i * 3);
  test::fnv1a h;
  h.add(body.data(), body.size());
  auto expected = "bytes=" + std::to_string(body.size()) + " hash=" + h.hex();
  stream_client c{port()};
  c.send("POST " + proxy_target("/upload")
         + " HTTP/1.1\r\nHost: x\r\nContent-Length: "
         + std::to_string(body.size()) + "\r\n\r\n");
  c.send(body);
  auto r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, expected);
  std::string chunked;
  for (size_t off = 0; off < body.size(); off += 100000) {
    auto n = std::min<size_t>(100000, body.size() - off);
    char size[20];
    std::snprintf(size, sizeof(size), "%zx\r\n", n);
    chunked += size;
    chunked.append(body, off, n);
    chunked += "\r\n";
  }
  chunked += "0\r\n\r\n";
  c.send("PUT " + proxy_target("/upload")
         + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  c.send(chunked);
  r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, expected);
  c.send(get(proxy_target("/download?n=3000001")));
  r = c.read_response();
  ASSERT_EQ(r.body.size(), 3000001u);
  EXPECT_EQ(r.headers["content-length"], "3000001");
  bool same = true;
  for (size_t i = 0; i < r.body.size() && same; ++i)
    same = r.body[i] == test::pattern_byte(i);
  EXPECT_TRUE(same);
  // Buffered API requests keep the limit.
  stream_client d{port()};
  d.send("POST /v1/sandboxes HTTP/1.1\r\nHost: x\r\nContent-Length: "
         + std::to_string(2 * 1024 * 1024) + "\r\n\r\n");
  r = d.read_response();
  EXPECT_EQ(r.status, 413);
  stream_client e{port()};
  e.send("POST /v1/sandboxes HTTP/1.1\r\nHost: x\r\n"
         "Transfer-Encoding: chunked\r\n\r\n");
  std::string big_chunk(600 * 1024, 'x');
  e.send("96000\r\n" + big_chunk + "\r\n");
  e.send("96000\r\n" + big_chunk + "\r\n");
  r = e.read_response();
  EXPECT_EQ(r.status, 413);
}

TEST_F(ProxyServer, StaleUpstreamConnectionsAreReplaced) {
  stream_client c{port()};
  for (int i = 0; i < 3; ++i) {
    // The upstream drops the kept connection right after answering; the
    // next request (without body: retried; with body: peeked) still works.
    c.send(get(proxy_target("/then-close")));
    auto r = c.read_response();
    ASSERT_EQ(r.status, 200) << i;
    EXPECT_EQ(r.body, "closing");
    c.send(get(proxy_target("/status/200")));
    r = c.read_response();
    EXPECT_EQ(r.status, 200) << i;
    c.send(get(proxy_target("/then-close")));
    r = c.read_response();
    ASSERT_EQ(r.status, 200) << i;
    // The request with a body relies on the peek, which sees the close
    // once the upstream has closed.
    ASSERT_TRUE(upstream.wait_all_closed(std::chrono::seconds(5))) << i;
    c.send("POST " + proxy_target("/upload")
           + " HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    r = c.read_response();
    EXPECT_EQ(r.status, 200) << i;
    EXPECT_EQ(r.body.substr(0, 8), "bytes=3 ");
  }
}

TEST_F(ProxyServer, ExpectContinue) {
  stream_client c{port()};
  c.send("POST " + proxy_target("/upload")
         + " HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
           "Content-Length: 5\r\n\r\n");
  ASSERT_TRUE(c.read_until("HTTP/1.1 100 Continue\r\n\r\n"));
  c.buf.erase(0, c.buf.find("\r\n\r\n") + 4);
  c.send("hello");
  auto r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.substr(0, 8), "bytes=5 ");
}

TEST_F(ProxyServer, ChunkedAndEofDelimitedResponses) {
  stream_client c{port()};
  c.send(get(proxy_target("/chunked")));
  auto r = c.read_response();
  EXPECT_EQ(r.headers["transfer-encoding"], "chunked");
  EXPECT_EQ(r.body, "alphabetagamma");
  // An HTTP/1.0 upstream ends its body with EOF; the client gets chunks and
  // keeps its connection.
  c.send(get(proxy_target("/eof")));
  r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["transfer-encoding"], "chunked");
  EXPECT_EQ(r.body, "until-eof");
  c.send(get(proxy_target("/gzip")));
  r = c.read_response();
  EXPECT_EQ(r.headers["content-encoding"], "gzip");
  EXPECT_EQ(r.body, std::string("\x1f\x8b\x08\x00", 4));
  c.send(get(proxy_target("/hop")));
  r = c.read_response();
  EXPECT_EQ(r.body, "hop");
  EXPECT_EQ(r.headers.count("x-hop"), 0u);
  EXPECT_EQ(r.headers.count("keep-alive"), 0u);
  EXPECT_EQ(r.headers.count("trailer"), 0u);
  EXPECT_EQ(r.headers["x-kept"], "yes");
  c.send(get(proxy_target("/status/503")));
  r = c.read_response();
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "status 503");
}

TEST_F(ProxyServer, HeadRequests) {
  stream_client c{port()};
  c.send("HEAD " + proxy_target("/download?n=12345")
         + " HTTP/1.1\r\nHost: x\r\n\r\n");
  auto r = c.read_response(true);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-length"], "12345");
  c.send(get(proxy_target("/status/200")));
  r = c.read_response();
  EXPECT_EQ(r.body, "status 200");
}

TEST_F(ProxyServer, ServerSentEventsArriveAsSent) {
  stream_client c{port()};
  auto start = std::chrono::steady_clock::now();
  c.send(get(proxy_target("/sse?n=4&ms=300")));
  std::vector<double> at;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(c.read_until("data: " + std::to_string(i) + "\n\n"));
    at.push_back(std::chrono::duration<double, std::milli>(
                   std::chrono::steady_clock::now() - start)
                   .count());
  }
  EXPECT_NE(c.buf.find("text/event-stream"), std::string::npos);
  // The first event is there long before the upstream finishes (~1200 ms).
  EXPECT_LT(at[0], 250.0);
  EXPECT_GT(at[3] - at[0], 700.0);
}

TEST_F(ProxyServer, WebSocketTunnel) {
  stream_client c{port()};
  c.send(get(proxy_target("/ws"),
             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n"));
  auto r = c.read_response();
  ASSERT_EQ(r.status, 101);
  EXPECT_EQ(r.headers["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(r.headers["x-backend"], "ws");
  c.send(test::ws_frame(1, "hello through the proxy"));
  int op = 0;
  std::string payload;
  ASSERT_TRUE(test::ws_read_message(c, op, payload));
  EXPECT_EQ(op, 1);
  EXPECT_EQ(payload, "hello through the proxy");
  std::string big(200000, 'b');
  big[1234] = 'x';
  c.send(test::ws_frame(2, big));
  ASSERT_TRUE(test::ws_read_message(c, op, payload));
  EXPECT_EQ(op, 2);
  EXPECT_EQ(payload.size(), big.size());
  EXPECT_TRUE(payload == big);
  c.send(test::ws_frame(8, std::string("\x03\xe8", 2)));
  ASSERT_TRUE(test::ws_read_message(c, op, payload));
  EXPECT_EQ(op, 8);
  EXPECT_EQ(payload.substr(0, 2), std::string("\x03\xe8", 2));
}

TEST(ProxyServerAddress, AnAddressNoLongerLocalIsRefused) {
  // A forward bound to an address this machine no longer has (as after a
  // DHCP change) fails at once instead of leaving the machine.
  auto spec = std::make_shared<forward_spec>();
  spec->host = "192.0.2.7";
  spec->port = 9;
  spec->target = "/";
  spec->bind_source = true;
  spec->on_error = [](forward_error, const std::string& detail) {
    response res;
    res.status = 502;
    res.body = detail;
    return res;
  };
  server_options opts;
  opts.host = "127.0.0.1";
  opts.port = 0;
  auto srv = server::start(opts, [spec](request&&, responder respond) {
    response res;
    res.forward = spec;
    respond(std::move(res));
  });
  ASSERT_TRUE(srv.has_value());
  stream_client c{(*srv)->port()};
  c.send("GET /sandboxes/sbx-1/proxy/9/ HTTP/1.1\r\nHost: x\r\n\r\n");
  auto r = c.read_response();
  EXPECT_EQ(r.status, 502);
  EXPECT_NE(r.body.find("is no longer an address of this machine"),
            std::string::npos)
    << r.status << " " << r.body;
}

TEST_F(ProxyServer, Errors) {
  stream_client c{port()};
  // Nobody listens on a stopped upstream's port.
  test_backend gone;
  auto gone_port = gone.port();
  gone.stop();
  c.send(get("/sandboxes/sbx-1/proxy/" + std::to_string(gone_port) + "/x"));
  auto r = c.read_response();
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(r.body, R"({"code":"GENERAL::UNKNOWN_ERROR","message":"Could not )"
                    R"(connect to the backend sandbox 127.0.0.1:)"
                      + std::to_string(gone_port)
                      + R"(: Connection refused"})");
  EXPECT_FALSE(r.headers["x-request-id"].empty());
  // Unknown sandbox; the connection stays usable.
  c.send(get("/sandboxes/nope/proxy/" + std::to_string(upstream.port())
             + "/x"));
  r = c.read_response();
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("DOCKER::SANDBOX_NOT_FOUND"), std::string::npos);
  c.send(get(proxy_target("/a/%2e%2e/%2e%2e/x")));
  r = c.read_response();
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(upstream.requests(), 0);
  // An error answer to a request whose body was not read closes the
  // connection (the body would be taken for the next request).
  stream_client d{port()};
  d.send("POST /sandboxes/nope/proxy/1/x HTTP/1.1\r\nHost: x\r\n"
         "Content-Length: 100000\r\n\r\n");
  r = d.read_response();
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.headers["connection"], "close");
}

} // namespace
