#pragma once

// Internal to the HTTP server (http/*.cpp, never included elsewhere): the
// Beast types, limits and state of a connection. The server follows the
// structure of Beast's http_server_async / advanced_server examples:
//   listener.cpp    accepts, spreads connections over the I/O threads,
//                   enforces limit_concurrency by eviction;
//   session.cpp     reads requests (limits, timeouts, RFC 9112 framing),
//                   hands them to the application, writes its responses;
//   forwarding.cpp  forwards a streamed request upstream and its response
//                   back (the server proxy, 100-continue, kept upstreams);
//   tunnel.cpp      relays bytes both ways after a WebSocket handshake;
//   server.cpp      starts the threads and stops everything.
// One `session` object carries a connection through all of them.

#include "http/server.hpp"

#include "base/http_framing.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace osb::http::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = beast::error_code;

/// The executor of a connection: its I/O thread's io_context, by its
/// concrete type (no type-erased any_io_executor in every operation).
using executor_type = asio::io_context::executor_type;
using socket_type = tcp::socket::rebind_executor<executor_type>::other;
using stream_type
  = beast::basic_stream<tcp, executor_type, beast::unlimited_rate_policy>;
using timer_type = asio::basic_waitable_timer<
  std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>,
  executor_type>;

/// Upper bound for writing one response.
constexpr auto write_timeout = std::chrono::seconds(60);

/// Upper bound for the request line plus header fields.
constexpr uint32_t header_limit = 64 * 1024;

/// How long, and how many bytes, a closing connection keeps reading.
constexpr auto linger_timeout = std::chrono::seconds(2);
constexpr size_t linger_limit = 64 * 1024 * 1024;

/// Server proxy: upper bound for connecting to an upstream.
constexpr auto upstream_connect_timeout = std::chrono::seconds(10);

/// Server proxy: how long an upstream may stay silent while its response is
/// due or streaming. The original cuts at 180 s, which kills quiet SSE
/// streams (§9.21); bounded all the same, so that a hung upstream frees its
/// connection eventually.
constexpr auto upstream_idle_timeout = std::chrono::hours(1);

/// Server proxy: how long a client may stay silent while its body streams,
/// and how long one relayed piece may take to reach it.
constexpr auto client_idle_timeout = std::chrono::minutes(5);

/// Server proxy: a WebSocket tunnel without traffic either way closes after
/// this.
constexpr auto tunnel_idle_timeout = std::chrono::hours(1);

/// Server proxy: size of each relay buffer (one per direction and proxied
/// connection); bounds the memory of a stream whatever its length.
constexpr size_t relay_buffer_size = 64 * 1024;

class session;

/// State shared by the listener, every session and every outstanding
/// responder. Sessions hold it by shared_ptr, so the io_contexts (and with
/// them the socket services) outlive every socket, even when a responder
/// kept by the application outlives the server.
///
/// One io_context per I/O thread, each run by exactly that thread; a
/// connection lives on one of them (round robin at accept). So a
/// connection's handlers never run concurrently without a strand, and the
/// threads share no scheduler queue: no lock hand-offs or thread wake-ups
/// between them (measured: a strand per connection on one shared
/// io_context cost the server proxy ~10 % of its CPU time per request).
struct shared_state {
  shared_state(server_options o, handler h, int threads)
    : opts(std::move(o)), app(std::move(h)) {
    for (int i = 0; i < threads; ++i) {
      // Concurrency hint 1: one thread runs it (posts from other threads
      // stay safe).
      iocs.push_back(std::make_unique<asio::io_context>(1));
      guards.push_back(asio::make_work_guard(*iocs.back()));
    }
  }

  server_options opts;
  handler app;
  std::vector<std::unique_ptr<asio::io_context>> iocs;
  /// Keep run() going while a context has no connection.
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>>
    guards;
  /// Open connections (for limit_concurrency).
  std::atomic<int64_t> num_open{0};
  /// Connections closed to make room for new ones (for tests and logs).
  std::atomic<int64_t> num_evicted{0};
  /// Guards `stopped`: a responder that saw `stopped == false` finishes its
  /// post before stop() drains the io_context, so no handler stays queued.
  std::shared_mutex stop_mtx;
  bool stopped = false;
  /// Live sessions, so that stop() can close them.
  std::mutex sessions_mtx;
  std::list<std::weak_ptr<session>> sessions;
};

/// Returns the cached `Date` value of the current second (per thread).
std::string_view http_date();

inline bool iequals(std::string_view a, std::string_view b) {
  return beast::iequals(a, b);
}

/// Appends `value` with CR/LF replaced, so that no handler-provided value can
/// split the header block.
inline void append_value(std::string& out, std::string_view value) {
  auto from = out.size();
  out.append(value.data(), value.size());
  for (auto i = from; i < out.size(); ++i)
    if (out[i] == '\r' || out[i] == '\n')
      out[i] = ' ';
}

/// Returns whether a status never carries a body (RFC 9110 §6.4.1).
inline bool bodyless_status(int status) {
  return status < 200 || status == 204 || status == 304;
}

/// A plain-text response generated by the server itself.
inline response plain_response(int status, std::string body) {
  response res;
  res.status = status;
  res.body = std::move(body);
  res.content_type = "text/plain; charset=utf-8";
  return res;
}

/// Where a connection is, as seen by eviction (limit_concurrency).
enum class conn_phase : int {
  /// Not waiting for a request: with the application, writing, relaying a
  /// proxied stream or a WebSocket tunnel, closing. Never evicted.
  busy,
  /// Waiting for a complete request (header, or a buffered body): may be
  /// closed to make room for a new connection.
  waiting,
  /// Chosen for eviction; its close is queued on its I/O thread.
  evicted,
};

/// Handles an HTTP connection: reads one request at a time, hands it to the
/// application and writes its response before reading the next one. Pipelined
/// requests simply wait in `buffer_` until then, which keeps responses in
/// request order without a queue.
class session : public std::enable_shared_from_this<session> {
public:
  session(socket_type&& socket, std::shared_ptr<shared_state> state,
          bool reject);

  ~session();

  /// Starts the session.
  void run();

  /// Since when the connection waits for its current request (steady clock
  /// ticks); meaningful while phase() is `waiting`.
  int64_t waiting_since() const {
    return waiting_since_.load(std::memory_order_relaxed);
  }

  /// Where the connection is, as seen by eviction.
  conn_phase phase() const {
    return phase_.load(std::memory_order_acquire);
  }

  /// Claims a waiting connection for eviction (from any thread) and queues
  /// its close on its I/O thread. False if it stopped waiting meanwhile:
  /// the race with a request that just completed is decided here, once.
  bool evict();

  /// Closes the socket; pending operations complete with operation_aborted.
  /// Only called by stop() after the I/O threads have been joined.
  void close_now();

  /// Completes the current request; callable from any thread.
  void post_response(response res);

private:
  /// Marks the connection as waiting for a request (evictable). False if it
  /// was evicted (then its close is already queued).
  bool start_waiting();

  /// Takes a complete request off the eviction candidates. False if the
  /// connection was evicted first: the request is dropped with it.
  bool claim();

  // Reading: do_read → [on_idle_read →] read_header → on_header →
  // [on_continue → read_body →] on_read → deliver; a streamed request:
  // on_header → on_stream_header → deliver. Writing: send → on_write.
  std::chrono::seconds header_timeout() const;
  void do_read();
  void on_idle_read(error_code ec, size_t n);
  void read_header();

  /// Answers a request whose framing RFC 9112 forbids, and closes: its body
  /// length is unknown, so nothing after its header can be trusted.
  void reject_framing(const base::framing_verdict& v);

  void on_header(error_code ec, size_t);
  void on_continue(error_code ec, size_t);
  void read_body();
  void on_read(error_code ec, size_t);

  /// Streamed request (the server proxy): hands the header to the
  /// application; the body stays in the socket until it decides.
  void on_stream_header();

  /// Converts the header of `msg` into a `request` and calls the
  /// application.
  template <class Message>
  void deliver(Message& msg, std::string body);

  /// Writes a response generated by the server itself (no application).
  void reply_now(response res);

  /// Serializes and writes `res`; runs on the connection's I/O thread.
  void send(response&& res);

  void on_write(bool close, error_code ec, size_t);

  /// Half-closes, then discards what the client still sends (the rest of
  /// a rejected body, pipelined requests) until it closes or a deadline
  /// passes. Closing with unread data would make the kernel send a RST,
  /// which can destroy the response before the client has read it.
  void do_linger();

  void do_drain();
  void on_drain(error_code ec, size_t n);
  void do_close();

  // -- server proxy: forwarding a streamed request ---------------------------

  /// Builds the answer for a forward that failed before its response started.
  static response error_response(forward_spec& fwd, forward_error kind,
                                 const std::string& detail);

  // Forwarding: start_forward → [do_connect → on_connect →]
  // on_upstream_ready → [100 Continue →] do_write_request_head → body up
  // (on_upstream_write, do_read_request_body, on_request_body) →
  // do_read_response_header → on_response_header → do_write_response_head
  // → body down (on_client_write, do_read_response_body, on_response_body)
  // → finish_forward or fail_forward.
  void start_forward(std::shared_ptr<forward_spec> fwd);
  void do_connect();
  void on_connect(error_code ec);

  /// Whether a kept upstream connection is still usable: no EOF, reset or
  /// stray bytes since its last response (a peek that never blocks). A
  /// request without body on a connection used within the last second skips
  /// the peek (one syscall of five): should the connection be dead after
  /// all, it is retried once on a fresh one.
  bool upstream_usable();

  /// Whether the request has no body at all (then a failure on a reused
  /// connection before any response byte is retried on a fresh one).
  bool bodyless_request();

  void on_upstream_ready();
  void on_forward_continue(error_code ec, size_t);

  /// Sends the request line, the header fields and whatever part of the
  /// body already arrived with the header, in one write.
  void do_write_request_head();

  /// Writes `head` and `n` body bytes of `up_buf_` upstream.
  void write_upstream(std::string_view head, size_t n);

  void on_upstream_write(error_code ec, size_t);
  void do_read_request_body();
  void on_request_body(error_code ec, size_t);

  /// Reconnects once after a kept connection turned out to be dead.
  void retry_fresh();

  void do_read_response_header();
  void on_response_header(error_code ec, size_t);

  /// Relays the status line and the filtered header fields, with our own
  /// framing, plus whatever part of the body is already buffered.
  void do_write_response_head();

  /// Writes `head` and `n` body bytes of `down_buf_` to the client.
  void write_client(std::string_view head, size_t n);

  void on_client_write(error_code ec, size_t);
  void do_read_response_body();
  void on_response_body(error_code ec, size_t);

  /// The response is complete: keep both connections for the next request
  /// when both sides allow it.
  void finish_forward();

  /// Answers a forward that failed before its response started.
  void fail_forward(forward_error kind, const std::string& detail);

  void close_upstream();

  // -- server proxy: WebSocket tunnel -----------------------------------------

  /// Relays the upstream's 101 as is; the handshake fields (`Upgrade`,
  /// `Sec-WebSocket-Accept`, subprotocol, extensions) are end to end here.
  void do_write_tunnel_head();

  void on_tunnel_head(error_code ec, size_t);
  socket_type& tunnel_source(bool up);
  socket_type& tunnel_sink(bool up);
  void tunnel_flush(bool up);
  void do_tunnel_read(bool up);
  void on_tunnel_read(bool up, error_code ec, size_t n);
  void on_tunnel_write(bool up, error_code ec, size_t);
  void arm_tunnel_timer(std::chrono::steady_clock::duration after);
  void close_tunnel();

  /// Declared first: destroyed last, after the socket.
  std::shared_ptr<shared_state> state_;
  stream_type stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  /// The serialized status line and header fields of `res_`; reused.
  std::string head_;
  /// The response being written.
  response res_;
  std::string remote_addr_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool head_request_ = false;
  /// A request is with the application and has no answer yet.
  bool awaiting_ = false;
  /// Over limit_concurrency: every request gets a 503.
  bool reject_ = false;
  bool registered_ = false;
  /// Bytes still to discard while lingering.
  size_t linger_left_ = 0;
  /// At least one response went out (then the keep-alive timeout applies
  /// before the next request's first byte).
  bool served_ = false;
  /// See conn_phase; written by this connection's I/O thread, and by
  /// evict() from the accepting thread.
  std::atomic<conn_phase> phase_{conn_phase::busy};
  std::atomic<int64_t> waiting_since_{0};
  std::list<std::weak_ptr<session>>::iterator self_pos_;

  // Server proxy state; see start_forward().
  /// The parser of a streamed request: its body is read while forwarding.
  std::optional<bhttp::request_parser<bhttp::buffer_body>> sparser_;
  /// The current request is streamed (its body may still be in the socket).
  bool streamed_ = false;
  /// The client sent `Expect: 100-continue` and got no 100 yet.
  bool expect_continue_ = false;
  /// The forward in progress.
  std::shared_ptr<forward_spec> fwd_;
  /// Upstream connection, kept between requests to the same address.
  std::optional<stream_type> upstream_;
  std::string upstream_host_;
  uint16_t upstream_port_ = 0;
  /// The upstream connection served an earlier request.
  bool upstream_reused_ = false;
  /// When the kept upstream connection finished its last response.
  std::chrono::steady_clock::time_point upstream_used_at_;
  /// A dead kept connection was replaced once for this request.
  bool retried_ = false;
  /// Writing the request upstream failed; the response may still come.
  bool upstream_write_failed_ = false;
  /// The response head reached the client: errors can only cut the stream.
  bool response_started_ = false;
  /// The client connection closes after the current response.
  bool close_after_ = false;
  beast::flat_buffer upstream_buffer_;
  std::optional<bhttp::response_parser<bhttp::buffer_body>> rparser_;
  /// Relay buffers: client → upstream and upstream → client.
  std::unique_ptr<char[]> up_buf_;
  std::unique_ptr<char[]> down_buf_;
  /// The serialized request head sent upstream.
  std::string up_head_;
  /// Chunk size lines, one per direction.
  char up_size_line_[24] = {};
  char down_size_line_[24] = {};
  /// The request body is chunk-framed upstream.
  bool up_chunked_ = false;
  /// The response body is chunk-framed to the client.
  bool down_chunked_ = false;
  /// WebSocket tunnel: directions still open, idle timer, closed flag.
  int tunnel_open_ = 0;
  bool tunnel_closed_ = false;
  std::chrono::steady_clock::time_point last_activity_;
  timer_type tunnel_timer_{stream_.get_executor()};
};

} // namespace osb::http::detail
