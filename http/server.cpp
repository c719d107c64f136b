// The only Beast server translation unit: the listener and session classes
// live here (structure of Beast's http_server_async / advanced_server) so that
// no header outside this file pulls in Boost.

#include "http/server.hpp"

#include "base/http_framing.hpp"
#include "base/log.hpp"
#include "net/proxy.hpp"

#include <sys/resource.h>
#include <sys/socket.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <limits>
#include <list>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string_view>
#include <thread>

namespace osb::http {

namespace {

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

/// Pause before accepting again after an accept error (e.g. EMFILE), so that
/// a persistent error does not spin a thread.
constexpr auto accept_retry_delay = std::chrono::milliseconds(50);

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
std::string_view http_date() {
  thread_local std::time_t cached_at = 0;
  thread_local char buf[40];
  thread_local size_t len = 0;
  auto now = std::time(nullptr);
  if (now != cached_at) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    len = std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_at = now;
  }
  return {buf, len};
}

bool iequals(std::string_view a, std::string_view b) {
  return beast::iequals(a, b);
}

/// Appends `value` with CR/LF replaced, so that no handler-provided value can
/// split the header block.
void append_value(std::string& out, std::string_view value) {
  auto from = out.size();
  out.append(value.data(), value.size());
  for (auto i = from; i < out.size(); ++i)
    if (out[i] == '\r' || out[i] == '\n')
      out[i] = ' ';
}

/// Returns whether a status never carries a body (RFC 9110 §6.4.1).
bool bodyless_status(int status) {
  return status < 200 || status == 204 || status == 304;
}

response plain_response(int status, std::string body) {
  response res;
  res.status = status;
  res.body = std::move(body);
  res.content_type = "text/plain; charset=utf-8";
  return res;
}

/// Returns the path of a request target (before `?`).
std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

/// Buffers of one relayed piece: a head (possibly empty), and a body piece,
/// chunk-framed when `chunked`; with `last`, the terminating chunk too.
/// Unused slots stay empty, which gather writes skip.
using piece_buffers = std::array<asio::const_buffer, 4>;

piece_buffers frame_piece(std::string_view head, char (&size_line)[24],
                          const char* data, size_t n, bool chunked,
                          bool last) {
  static constexpr std::string_view crlf = "\r\n";
  static constexpr std::string_view crlf_last = "\r\n0\r\n\r\n";
  static constexpr std::string_view last_chunk = "0\r\n\r\n";
  piece_buffers bufs{};
  bufs[0] = asio::buffer(head.data(), head.size());
  if (!chunked) {
    bufs[2] = asio::buffer(data, n);
    return bufs;
  }
  if (n > 0) {
    auto len = std::snprintf(size_line, sizeof(size_line), "%zx\r\n", n);
    bufs[1] = asio::buffer(size_line, static_cast<size_t>(len));
    bufs[2] = asio::buffer(data, n);
    bufs[3] = last ? asio::buffer(crlf_last.data(), crlf_last.size())
                   : asio::buffer(crlf.data(), crlf.size());
  } else if (last) {
    bufs[3] = asio::buffer(last_chunk.data(), last_chunk.size());
  }
  return bufs;
}

/// Parses body bytes that already sit in `in` into `out` without touching
/// the socket, so that a small message travels in one write with its head.
/// Returns the number of body bytes in `out`.
template <class Parser>
size_t pull_buffered(Parser& p, beast::flat_buffer& in, char* out, size_t cap,
                     error_code& ec) {
  auto& body = p.get().body();
  body.data = out;
  body.size = cap;
  body.more = true;
  while (!p.is_done() && in.size() > 0 && body.size > 0) {
    auto used = p.put(in.data(), ec);
    in.consume(used);
    if (ec == bhttp::error::need_buffer || ec == bhttp::error::need_more) {
      ec = {};
      break;
    }
    if (ec || used == 0)
      break;
  }
  return cap - body.size;
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
          bool reject)
    : state_(std::move(state)), stream_(std::move(socket)), reject_(reject) {
    error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec)
      remote_addr_ = ep.address().to_string();
    stream_.socket().set_option(tcp::no_delay(true), ec);
  }

  ~session() {
    --state_->num_open;
    if (registered_) {
      std::lock_guard<std::mutex> guard{state_->sessions_mtx};
      state_->sessions.erase(self_pos_);
    }
  }

  /// Starts the session.
  void run() {
    {
      std::lock_guard<std::mutex> guard{state_->sessions_mtx};
      self_pos_ = state_->sessions.insert(state_->sessions.end(),
                                          weak_from_this());
      registered_ = true;
    }
    // Start on the connection's I/O thread (the acceptor may run on
    // another one).
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&session::do_read,
                                             shared_from_this()));
  }

  /// Since when the connection waits for its current request (steady clock
  /// ticks); meaningful while phase() is `waiting`.
  int64_t waiting_since() const {
    return waiting_since_.load(std::memory_order_relaxed);
  }

  conn_phase phase() const {
    return phase_.load(std::memory_order_acquire);
  }

  /// Claims a waiting connection for eviction (from any thread) and queues
  /// its close on its I/O thread. False if it stopped waiting meanwhile:
  /// the race with a request that just completed is decided here, once.
  bool evict() {
    auto expected = conn_phase::waiting;
    if (!phase_.compare_exchange_strong(expected, conn_phase::evicted,
                                        std::memory_order_acq_rel))
      return false;
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      // Pending reads complete with operation_aborted and end the session.
      error_code ec;
      self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      self->stream_.close();
    });
    return true;
  }

  /// Closes the socket; pending operations complete with operation_aborted.
  /// Only called by stop() after the I/O threads have been joined.
  void close_now() {
    stream_.close();
    if (upstream_)
      upstream_->close();
    tunnel_timer_.cancel();
  }

  /// Completes the current request; callable from any thread.
  void post_response(response res) {
    std::shared_lock<std::shared_mutex> guard{state_->stop_mtx};
    if (state_->stopped)
      return;
    // dispatch, not post: when the application answers on the connection's
    // I/O thread itself (an error, a cache hit, a synchronous backend) this
    // writes without a queue hop; from any other thread it queues onto that
    // thread's io_context.
    asio::dispatch(stream_.get_executor(),
                   [self = shared_from_this(), res = std::move(res)]() mutable {
                     self->send(std::move(res));
                   });
  }

private:
  /// Marks the connection as waiting for a request (evictable). False if it
  /// was evicted (then its close is already queued).
  bool start_waiting() {
    waiting_since_.store(
      std::chrono::steady_clock::now().time_since_epoch().count(),
      std::memory_order_relaxed);
    auto expected = conn_phase::busy;
    return phase_.compare_exchange_strong(expected, conn_phase::waiting,
                                          std::memory_order_acq_rel)
           || expected == conn_phase::waiting;
  }

  /// Takes a complete request off the eviction candidates. False if the
  /// connection was evicted first: the request is dropped with it.
  bool claim() {
    auto expected = conn_phase::waiting;
    return phase_.compare_exchange_strong(expected, conn_phase::busy,
                                          std::memory_order_acq_rel)
           || expected == conn_phase::busy;
  }

  std::chrono::seconds header_timeout() const {
    return std::chrono::seconds(
      std::max<int64_t>(state_->opts.header_timeout_s, 1));
  }

  void do_read() {
    streamed_ = false;
    sparser_.reset();
    if (!start_waiting())
      return;
    // Between requests the keep-alive timeout applies until the next
    // request's first byte; from then on (and on a new connection from the
    // start) its header must arrive within the header timeout.
    if (served_ && buffer_.size() == 0) {
      stream_.expires_after(std::chrono::seconds(
        std::max<int64_t>(state_->opts.keep_alive_s, 1)));
      stream_.async_read_some(buffer_.prepare(4096),
                              beast::bind_front_handler(&session::on_idle_read,
                                                        shared_from_this()));
      return;
    }
    read_header();
  }

  void on_idle_read(error_code ec, size_t n) {
    if (ec)
      return do_close();
    buffer_.commit(n);
    read_header();
  }

  void read_header() {
    // A fresh parser per request: the body limit and header state must not
    // carry over from the previous message.
    parser_.emplace();
    // No limit yet: Beast would check a Content-Length against it as soon as
    // the header is complete, before we know whether the request is streamed
    // (unlimited); on_header() applies it to buffered requests.
    parser_->body_limit(boost::none);
    parser_->header_limit(header_limit);
    stream_.expires_after(header_timeout());
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&session::on_header,
                                                       shared_from_this()));
  }

  /// Answers a request whose framing RFC 9112 forbids, and closes: its body
  /// length is unknown, so nothing after its header can be trusted.
  void reject_framing(const base::framing_verdict& v) {
    OSB_DEBUG("http", "", "", "request from " << remote_addr_
                                              << " rejected: " << v.reason);
    keep_alive_ = false;
    head_request_ = false;
    version_ = 11;
    if (v.status == 501)
      return reply_now(plain_response(501, "Not Implemented"));
    reply_now(plain_response(400, "Invalid HTTP request received."));
  }

  void on_header(error_code ec, size_t) {
    if (ec)
      return on_read(ec, 0);
    if (phase() == conn_phase::evicted)
      return;
    if (auto v = base::check_request_framing(parser_->get(),
                                             parser_->get().version());
        !v) {
      if (!claim())
        return;
      return reject_framing(v);
    }
    // A buffered body gets its own window (the connection stays evictable
    // until it is complete).
    stream_.expires_after(std::chrono::seconds(std::max<int64_t>(
      {state_->opts.keep_alive_s, state_->opts.header_timeout_s, 1})));
    if (state_->opts.streamed
        && state_->opts.streamed(path_of(parser_->get().target())))
      return on_stream_header();
    // Buffered request: a declared length over the limit fails now, a
    // chunked body as soon as it crosses it.
    if (auto len = parser_->content_length();
        len && *len > state_->opts.body_limit)
      return on_read(bhttp::error::body_limit, 0);
    parser_->body_limit(state_->opts.body_limit);
    if (parser_->is_done())
      return on_read(ec, 0);
    // Clients that wait for `100 Continue` (curl for larger bodies) would
    // otherwise stall for a second before sending the body.
    auto expect = parser_->get()[bhttp::field::expect];
    if (iequals(expect, "100-continue")) {
      static constexpr std::string_view continue_msg
        = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_,
                        asio::buffer(continue_msg.data(), continue_msg.size()),
                        beast::bind_front_handler(&session::on_continue,
                                                  shared_from_this()));
      return;
    }
    read_body();
  }

  void on_continue(error_code ec, size_t) {
    if (ec)
      return do_close();
    read_body();
  }

  void read_body() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&session::on_read,
                                                shared_from_this()));
  }

  void on_read(error_code ec, size_t) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout
        || ec == asio::error::operation_aborted)
      return do_close();
    if (!claim())
      return;
    if (ec) {
      keep_alive_ = false;
      head_request_ = false;
      version_ = 11;
      if (ec == bhttp::error::body_limit)
        return reply_now(plain_response(413, "Request Entity Too Large"));
      if (ec == bhttp::error::header_limit)
        return reply_now(
          plain_response(431, "Request Header Fields Too Large"));
      if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method)
                             .category()
          && ec != bhttp::error::partial_message)
        return reply_now(
          plain_response(400, "Invalid HTTP request received."));
      OSB_DEBUG("http", "", "", "connection from " << remote_addr_
                                                   << " failed: "
                                                   << ec.message());
      return do_close();
    }
    auto msg = parser_->release();
    deliver(msg, std::move(msg.body()));
  }

  /// Streamed request (the server proxy): hands the header to the
  /// application; the body stays in the socket until it decides.
  void on_stream_header() {
    if (!claim())
      return;
    // Same header, other body type: no body octet has been parsed yet.
    sparser_.emplace(std::move(*parser_));
    sparser_->body_limit(boost::none);
    streamed_ = true;
    auto& msg = sparser_->get();
    expect_continue_ = iequals(msg[bhttp::field::expect], "100-continue");
    deliver(msg, {});
  }

  /// Converts the header of `msg` into a `request` and calls the
  /// application.
  template <class Message>
  void deliver(Message& msg, std::string body) {
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    head_request_ = msg.method() == bhttp::verb::head;
    if (reject_) {
      // uvicorn answers requests beyond limit_concurrency with a plain 503.
      keep_alive_ = false;
      return reply_now(plain_response(503, "Service Unavailable"));
    }
    request req;
    req.method = std::string{msg.method_string()};
    req.target = std::string{msg.target()};
    auto qpos = req.target.find('?');
    if (qpos == std::string::npos) {
      req.path = req.target;
    } else {
      req.path = req.target.substr(0, qpos);
      req.query = req.target.substr(qpos + 1);
    }
    size_t num_fields = 0;
    for (auto it = msg.begin(); it != msg.end(); ++it)
      ++num_fields;
    req.headers.reserve(num_fields);
    for (const auto& field : msg) {
      auto name = field.name_string();
      std::string lower(name.size(), '\0');
      for (size_t i = 0; i < name.size(); ++i)
        lower[i] = static_cast<char>(
          std::tolower(static_cast<unsigned char>(name[i])));
      req.headers.emplace_back(std::move(lower), std::string{field.value()});
    }
    req.body = std::move(body);
    req.remote_addr = remote_addr_;
    req.streamed = streamed_;
    awaiting_ = true;
    // The application may take arbitrarily long (a create pulls an image);
    // no timer runs while it works.
    stream_.expires_never();
    responder done = [self = shared_from_this()](response res) mutable {
      // Exactly once: later calls find `self` empty.
      if (auto s = std::move(self))
        s->post_response(std::move(res));
    };
    try {
      state_->app(std::move(req), std::move(done));
    } catch (const std::exception& e) {
      OSB_ERROR("http", "", "", "request handler threw: " << e.what());
      send(plain_response(500, "Internal Server Error"));
    } catch (...) {
      OSB_ERROR("http", "", "", "request handler threw");
      send(plain_response(500, "Internal Server Error"));
    }
  }

  /// Writes a response generated by the server itself (no application).
  void reply_now(response res) {
    awaiting_ = true;
    send(std::move(res));
  }

  /// Serializes and writes `res`; runs on the connection's I/O thread.
  void send(response&& res) {
    if (!awaiting_)
      return; // the request already got its answer
    if (res.forward) {
      if (streamed_) {
        awaiting_ = false;
        return start_forward(std::move(res.forward));
      }
      // Only a streamed request still has its body in the socket.
      auto fwd = std::move(res.forward);
      res = error_response(*fwd, forward_error::other,
                           "the request was not streamed");
    }
    awaiting_ = false;
    res_ = std::move(res);
    // An unread body would be parsed as the next request.
    bool close = !keep_alive_ || (streamed_ && !sparser_->is_done());
    bool bodyless = bodyless_status(res_.status);
    if (bodyless)
      res_.body.clear();
    auto& out = head_;
    out.clear();
    out += "HTTP/1.1 ";
    out += std::to_string(res_.status);
    out += ' ';
    auto reason = bhttp::obsolete_reason(
      bhttp::int_to_status(static_cast<unsigned>(res_.status)));
    out.append(reason.data(), reason.size());
    out += "\r\nServer: opensandbox\r\nDate: ";
    out += http_date();
    out += "\r\n";
    if (!res_.body.empty() && !res_.content_type.empty()) {
      out += "Content-Type: ";
      append_value(out, res_.content_type);
      out += "\r\n";
    }
    if (!bodyless) {
      out += "Content-Length: ";
      out += std::to_string(res_.body.size());
      out += "\r\n";
    }
    for (const auto& [name, value] : res_.headers) {
      // Framing is ours; a handler cannot override it.
      if (iequals(name, "content-length") || iequals(name, "transfer-encoding")
          || iequals(name, "server") || iequals(name, "date"))
        continue;
      if (iequals(name, "connection")) {
        if (iequals(value, "close"))
          close = true;
        continue;
      }
      append_value(out, name);
      out += ": ";
      append_value(out, value);
      out += "\r\n";
    }
    if (close)
      out += "Connection: close\r\n";
    else if (version_ < 11)
      out += "Connection: keep-alive\r\n";
    out += "\r\n";
    stream_.expires_after(write_timeout);
    auto on_done = beast::bind_front_handler(&session::on_write,
                                             shared_from_this(), close);
    // HEAD gets the headers of the GET answer, without the body.
    if (res_.body.empty() || head_request_) {
      asio::async_write(stream_, asio::buffer(head_), std::move(on_done));
    } else {
      std::array<asio::const_buffer, 2> bufs{asio::buffer(head_),
                                             asio::buffer(res_.body)};
      asio::async_write(stream_, bufs, std::move(on_done));
    }
  }

  void on_write(bool close, error_code ec, size_t) {
    if (ec)
      return do_close();
    if (close) {
      // This means we should close the connection, usually because the
      // response indicated the "Connection: close" semantic.
      return do_linger();
    }
    res_.body.clear();
    res_.headers.clear();
    served_ = true;
    do_read();
  }

  /// Half-closes, then discards what the client still sends (the rest of
  /// a rejected body, pipelined requests) until it closes or a deadline
  /// passes. Closing with unread data would make the kernel send a RST,
  /// which can destroy the response before the client has read it.
  void do_linger() {
    do_close();
    stream_.expires_after(linger_timeout);
    linger_left_ = linger_limit;
    do_drain();
  }

  void do_drain() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(16 * 1024),
                            beast::bind_front_handler(&session::on_drain,
                                                      shared_from_this()));
  }

  void on_drain(error_code ec, size_t n) {
    if (ec || n >= linger_left_)
      return; // EOF, timeout or enough: the socket closes with the session
    linger_left_ -= n;
    do_drain();
  }

  void do_close() {
    // Send a TCP shutdown; the socket closes when the last reference to the
    // session goes away, which is right after this returns.
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }


  // -- server proxy: forwarding a streamed request ---------------------------

  /// Builds the answer for a forward that failed before its response started.
  static response error_response(forward_spec& fwd, forward_error kind,
                                 const std::string& detail) {
    if (fwd.on_error) {
      try {
        return fwd.on_error(kind, detail);
      } catch (...) {
        // fall through to the generic answer
      }
    }
    return plain_response(kind == forward_error::connect ? 502 : 500,
                          "Bad Gateway");
  }

  void start_forward(std::shared_ptr<forward_spec> fwd) {
    fwd_ = std::move(fwd);
    response_started_ = false;
    upstream_write_failed_ = false;
    retried_ = false;
    if (!up_buf_) {
      up_buf_ = std::make_unique<char[]>(relay_buffer_size);
      down_buf_ = std::make_unique<char[]>(relay_buffer_size);
    }
    if (upstream_ && upstream_port_ == fwd_->port
        && upstream_host_ == fwd_->host && upstream_usable()) {
      upstream_reused_ = true;
      return on_upstream_ready();
    }
    do_connect();
  }

  void do_connect() {
    close_upstream();
    error_code ec;
    auto addr = asio::ip::make_address(fwd_->host, ec);
    if (ec)
      return fail_forward(forward_error::connect,
                          "invalid address " + fwd_->host);
    upstream_reused_ = false;
    upstream_.emplace(stream_.get_executor());
    if (fwd_->bind_source) {
      auto& sock = upstream_->socket();
      sock.open(addr.is_v4() ? tcp::v4() : tcp::v6(), ec);
      if (!ec)
        sock.bind(tcp::endpoint{addr, 0}, ec);
      if (ec)
        return fail_forward(forward_error::connect,
                            fwd_->host + " is no longer an address of this "
                                         "machine (docker.proxy_host): "
                              + ec.message());
    }
    upstream_->expires_after(upstream_connect_timeout);
    upstream_->async_connect(tcp::endpoint{addr, fwd_->port},
                             beast::bind_front_handler(
                               &session::on_connect, shared_from_this()));
  }

  void on_connect(error_code ec) {
    if (ec) {
      if (ec == beast::error::timeout)
        return fail_forward(forward_error::connect, "connect timed out");
      return fail_forward(forward_error::connect, ec.message());
    }
    upstream_->socket().set_option(tcp::no_delay(true), ec);
    upstream_host_ = fwd_->host;
    upstream_port_ = fwd_->port;
    on_upstream_ready();
  }

  /// Whether a kept upstream connection is still usable: no EOF, reset or
  /// stray bytes since its last response (a peek that never blocks). A
  /// request without body on a connection used within the last second skips
  /// the peek (one syscall of five): should the connection be dead after
  /// all, it is retried once on a fresh one.
  bool upstream_usable() {
    if (upstream_buffer_.size() > 0)
      return false;
    if (bodyless_request()
        && std::chrono::steady_clock::now() - upstream_used_at_
             < std::chrono::seconds(1))
      return true;
    char c;
    auto n = ::recv(upstream_->socket().native_handle(), &c, 1,
                    MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  /// Whether the request has no body at all (then a failure on a reused
  /// connection before any response byte is retried on a fresh one).
  bool bodyless_request() {
    if (sparser_->chunked())
      return false;
    auto len = sparser_->content_length();
    return !len || *len == 0;
  }

  void on_upstream_ready() {
    // The client waits for this before it sends a body; send it only now
    // that the upstream is there (an error answer makes the body moot).
    if (expect_continue_ && !sparser_->is_done()) {
      expect_continue_ = false;
      static constexpr std::string_view continue_msg
        = "HTTP/1.1 100 Continue\r\n\r\n";
      stream_.expires_after(client_idle_timeout);
      asio::async_write(stream_,
                        asio::buffer(continue_msg.data(), continue_msg.size()),
                        beast::bind_front_handler(
                          &session::on_forward_continue, shared_from_this()));
      return;
    }
    do_write_request_head();
  }

  void on_forward_continue(error_code ec, size_t) {
    if (ec) {
      close_upstream();
      return do_close();
    }
    do_write_request_head();
  }

  /// Sends the request line, the header fields and whatever part of the
  /// body already arrived with the header, in one write.
  void do_write_request_head() {
    auto& msg = sparser_->get();
    auto& out = up_head_;
    out.clear();
    out.append(msg.method_string().data(), msg.method_string().size());
    out += ' ';
    append_value(out, fwd_->target);
    out += " HTTP/1.1\r\nHost: ";
    if (fwd_->host.find(':') != std::string::npos) {
      out += '[';
      out += fwd_->host;
      out += ']';
    } else {
      out += fwd_->host;
    }
    out += ':';
    out += std::to_string(fwd_->port);
    out += "\r\n";
    for (const auto& [name, value] : fwd_->headers) {
      append_value(out, name);
      out += ": ";
      append_value(out, value);
      out += "\r\n";
    }
    up_chunked_ = sparser_->chunked();
    if (up_chunked_) {
      out += "Transfer-Encoding: chunked\r\n";
    } else if (auto len = sparser_->content_length()) {
      out += "Content-Length: ";
      out += std::to_string(*len);
      out += "\r\n";
    }
    out += "\r\n";
    error_code ec;
    auto n = pull_buffered(*sparser_, buffer_, up_buf_.get(),
                           relay_buffer_size, ec);
    if (ec)
      return on_request_body(ec, 0);
    write_upstream(up_head_, n);
  }

  /// Writes `head` and `n` body bytes of `up_buf_` upstream.
  void write_upstream(std::string_view head, size_t n) {
    auto last = sparser_->is_done();
    auto bufs = frame_piece(head, up_size_line_, up_buf_.get(), n,
                            up_chunked_, last);
    upstream_->expires_after(client_idle_timeout);
    asio::async_write(*upstream_, bufs,
                      beast::bind_front_handler(&session::on_upstream_write,
                                                shared_from_this()));
  }

  void on_upstream_write(error_code ec, size_t) {
    if (ec) {
      if (upstream_reused_ && !retried_ && bodyless_request())
        return retry_fresh();
      // The upstream may have answered early (e.g. a 413 or 401 before
      // reading the body): look for its response all the same. The rest of
      // the client's body stays unread, so that connection closes after.
      upstream_write_failed_ = true;
      return do_read_response_header();
    }
    if (sparser_->is_done())
      return do_read_response_header();
    do_read_request_body();
  }

  void do_read_request_body() {
    auto& body = sparser_->get().body();
    body.data = up_buf_.get();
    body.size = relay_buffer_size;
    stream_.expires_after(client_idle_timeout);
    bhttp::async_read_some(stream_, buffer_, *sparser_,
                           beast::bind_front_handler(&session::on_request_body,
                                                     shared_from_this()));
  }

  void on_request_body(error_code ec, size_t) {
    if (ec == bhttp::error::need_buffer)
      ec = {};
    if (ec) {
      // The client vanished or sent a broken body: the upstream got a
      // truncated request, so neither connection can be reused.
      OSB_DEBUG("http", fwd_->request_id, fwd_->sandbox_id,
                "proxy: client body failed: " << ec.message());
      close_upstream();
      fwd_.reset();
      return do_close();
    }
    auto n = relay_buffer_size - sparser_->get().body().size;
    if (n == 0 && !sparser_->is_done())
      return do_read_request_body();
    write_upstream({}, n);
  }

  /// Reconnects once after a kept connection turned out to be dead.
  void retry_fresh() {
    retried_ = true;
    do_connect();
  }

  void do_read_response_header() {
    rparser_.emplace();
    rparser_->body_limit(boost::none);
    rparser_->header_limit(header_limit);
    // A HEAD response announces a body it does not carry.
    if (head_request_)
      rparser_->skip(true);
    upstream_->expires_after(upstream_idle_timeout);
    bhttp::async_read_header(*upstream_, upstream_buffer_, *rparser_,
                             beast::bind_front_handler(
                               &session::on_response_header,
                               shared_from_this()));
  }

  void on_response_header(error_code ec, size_t) {
    if (ec) {
      if (upstream_reused_ && !retried_ && bodyless_request()
          && !upstream_write_failed_
          && (ec == bhttp::error::end_of_stream
              || ec == asio::error::connection_reset))
        return retry_fresh();
      if (ec == beast::error::timeout)
        return fail_forward(forward_error::other,
                            "timed out waiting for the response");
      return fail_forward(forward_error::other, ec.message());
    }
    // The response is re-framed towards the client: a length we cannot
    // know, or codings we would have to drop, make it unusable.
    if (auto v = base::check_response_framing(rparser_->get(),
                                              rparser_->get().version());
        !v) {
      upstream_write_failed_ = true; // never reuse this connection
      return fail_forward(forward_error::other,
                          "invalid response framing: "
                            + std::string{v.reason});
    }
    auto status = rparser_->get().result_int();
    if (status == 101) {
      if (fwd_->upgrade)
        return do_write_tunnel_head();
      return fail_forward(forward_error::other,
                          "unexpected 101 Switching Protocols");
    }
    // Interim responses (100, 103) are not relayed; the final one follows.
    if (status < 200)
      return do_read_response_header();
    do_write_response_head();
  }

  /// Relays the status line and the filtered header fields, with our own
  /// framing, plus whatever part of the body is already buffered.
  void do_write_response_head() {
    auto& msg = rparser_->get();
    auto status = msg.result_int();
    auto connection = msg[bhttp::field::connection];
    auto& out = head_;
    out.clear();
    out += "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    auto reason = msg.reason();
    if (reason.empty())
      reason = bhttp::obsolete_reason(bhttp::int_to_status(status));
    append_value(out, reason);
    out += "\r\n";
    bool has_date = false;
    for (const auto& field : msg) {
      auto name = field.name_string();
      if (net::drop_response_header(name, connection))
        continue;
      bool replaced = false;
      for (const auto& extra : fwd_->response_headers)
        replaced = replaced || iequals(extra.first, name);
      if (replaced)
        continue;
      has_date = has_date || iequals(name, "date");
      append_value(out, name);
      out += ": ";
      append_value(out, field.value());
      out += "\r\n";
    }
    for (const auto& [name, value] : fwd_->response_headers) {
      append_value(out, name);
      out += ": ";
      append_value(out, value);
      out += "\r\n";
    }
    if (!has_date) {
      out += "Date: ";
      out += http_date();
      out += "\r\n";
    }
    close_after_ = !keep_alive_ || !sparser_->is_done()
                   || upstream_write_failed_;
    down_chunked_ = false;
    if (head_request_) {
      // Same header fields as a GET, without the body.
      auto len = msg[bhttp::field::content_length];
      if (!len.empty()) {
        out += "Content-Length: ";
        append_value(out, len);
        out += "\r\n";
      }
    } else if (bodyless_status(status)) {
      // no body, no framing
    } else if (auto len = rparser_->content_length()) {
      out += "Content-Length: ";
      out += std::to_string(*len);
      out += "\r\n";
    } else if (version_ >= 11) {
      // Chunked or read-until-close upstream: chunked towards the client
      // keeps its connection alive and flushes every piece as it arrives.
      out += "Transfer-Encoding: chunked\r\n";
      down_chunked_ = true;
    } else {
      close_after_ = true; // an HTTP/1.0 client reads until close
    }
    if (close_after_)
      out += "Connection: close\r\n";
    else if (version_ < 11)
      out += "Connection: keep-alive\r\n";
    out += "\r\n";
    error_code ec;
    auto n = pull_buffered(*rparser_, upstream_buffer_, down_buf_.get(),
                           relay_buffer_size, ec);
    if (ec)
      return fail_forward(forward_error::other, ec.message());
    response_started_ = true;
    write_client(head_, n);
  }

  /// Writes `head` and `n` body bytes of `down_buf_` to the client.
  void write_client(std::string_view head, size_t n) {
    auto bufs = frame_piece(head, down_size_line_, down_buf_.get(), n,
                            down_chunked_, rparser_->is_done());
    stream_.expires_after(client_idle_timeout);
    asio::async_write(stream_, bufs,
                      beast::bind_front_handler(&session::on_client_write,
                                                shared_from_this()));
  }

  void on_client_write(error_code ec, size_t) {
    if (ec) {
      OSB_DEBUG("http", fwd_->request_id, fwd_->sandbox_id,
                "proxy: client went away: " << ec.message());
      close_upstream();
      fwd_.reset();
      return do_close();
    }
    if (rparser_->is_done())
      return finish_forward();
    // Bytes that came with the previous read need no socket call.
    error_code pec;
    auto n = pull_buffered(*rparser_, upstream_buffer_, down_buf_.get(),
                           relay_buffer_size, pec);
    if (pec)
      return on_response_body(pec, 0);
    if (n > 0 || rparser_->is_done())
      return write_client({}, n);
    do_read_response_body();
  }

  void do_read_response_body() {
    auto& body = rparser_->get().body();
    body.data = down_buf_.get();
    body.size = relay_buffer_size;
    upstream_->expires_after(upstream_idle_timeout);
    bhttp::async_read_some(*upstream_, upstream_buffer_, *rparser_,
                           beast::bind_front_handler(
                             &session::on_response_body, shared_from_this()));
  }

  void on_response_body(error_code ec, size_t) {
    if (ec == bhttp::error::need_buffer)
      ec = {};
    if (ec == asio::error::operation_aborted) {
      // The server stops.
      close_upstream();
      fwd_.reset();
      return do_close();
    }
    if (ec) {
      // The head is out: all we can do is cut the stream, which the client
      // sees as a truncated body.
      OSB_WARN("http", fwd_->request_id, fwd_->sandbox_id,
               "proxy: upstream " << fwd_->host << ':' << fwd_->port
                                  << " failed mid-response: "
                                  << (ec == beast::error::timeout
                                        ? std::string{"idle timeout"}
                                        : ec.message()));
      close_upstream();
      fwd_.reset();
      return do_close();
    }
    auto n = relay_buffer_size - rparser_->get().body().size;
    if (n == 0 && !rparser_->is_done())
      return do_read_response_body();
    write_client({}, n);
  }

  /// The response is complete: keep both connections for the next request
  /// when both sides allow it.
  void finish_forward() {
    bool reuse = rparser_->keep_alive() && !rparser_->need_eof()
                 && !upstream_write_failed_ && sparser_->is_done();
    rparser_.reset();
    fwd_.reset();
    if (reuse)
      upstream_used_at_ = std::chrono::steady_clock::now();
    else
      close_upstream();
    if (close_after_)
      return do_linger();
    served_ = true;
    do_read();
  }

  /// Answers a forward that failed before its response started.
  void fail_forward(forward_error kind, const std::string& detail) {
    close_upstream();
    if (!fwd_ || response_started_)
      return do_close();
    auto fwd = std::move(fwd_);
    auto res = error_response(*fwd, kind, detail);
    awaiting_ = true;
    send(std::move(res));
  }

  void close_upstream() {
    if (!upstream_)
      return;
    error_code ec;
    upstream_->socket().shutdown(tcp::socket::shutdown_both, ec);
    upstream_->close();
    upstream_.reset();
    upstream_buffer_.clear();
    upstream_port_ = 0;
  }

  // -- server proxy: WebSocket tunnel ------------------------------------------

  /// Relays the upstream's 101 as is; the handshake fields (`Upgrade`,
  /// `Sec-WebSocket-Accept`, subprotocol, extensions) are end to end here.
  void do_write_tunnel_head() {
    auto& msg = rparser_->get();
    auto& out = head_;
    out.clear();
    out += "HTTP/1.1 101 Switching Protocols\r\n";
    for (const auto& field : msg) {
      append_value(out, field.name_string());
      out += ": ";
      append_value(out, field.value());
      out += "\r\n";
    }
    out += "\r\n";
    stream_.expires_after(client_idle_timeout);
    asio::async_write(stream_, asio::buffer(head_),
                      beast::bind_front_handler(&session::on_tunnel_head,
                                                shared_from_this()));
  }

  void on_tunnel_head(error_code ec, size_t) {
    if (ec) {
      close_upstream();
      return do_close();
    }
    OSB_DEBUG("http", fwd_->request_id, fwd_->sandbox_id,
              "proxy: websocket tunnel to " << fwd_->host << ':'
                                            << fwd_->port << " open");
    // From here on raw bytes flow both ways on the sockets themselves (one
    // read and one write may be pending on each), with one idle timer.
    stream_.expires_never();
    upstream_->expires_never();
    tunnel_open_ = 2;
    last_activity_ = std::chrono::steady_clock::now();
    arm_tunnel_timer(tunnel_idle_timeout);
    // Bytes that arrived behind the handshakes go first.
    tunnel_flush(true);
    tunnel_flush(false);
  }

  socket_type& tunnel_source(bool up) {
    return up ? stream_.socket() : upstream_->socket();
  }

  socket_type& tunnel_sink(bool up) {
    return up ? upstream_->socket() : stream_.socket();
  }

  void tunnel_flush(bool up) {
    auto& pending = up ? buffer_ : upstream_buffer_;
    if (pending.size() == 0)
      return do_tunnel_read(up);
    asio::async_write(tunnel_sink(up), pending.data(),
                      [self = shared_from_this(), up](error_code ec, size_t) {
                        auto& pending
                          = up ? self->buffer_ : self->upstream_buffer_;
                        pending.clear();
                        self->on_tunnel_write(up, ec, 0);
                      });
  }

  void do_tunnel_read(bool up) {
    if (tunnel_closed_)
      return;
    auto* buf = up ? up_buf_.get() : down_buf_.get();
    tunnel_source(up).async_read_some(
      asio::buffer(buf, relay_buffer_size),
      beast::bind_front_handler(&session::on_tunnel_read, shared_from_this(),
                                up));
  }

  void on_tunnel_read(bool up, error_code ec, size_t n) {
    if (tunnel_closed_)
      return;
    if (ec == asio::error::eof) {
      // Half-close: pass the EOF on, keep relaying the other way.
      error_code sec;
      tunnel_sink(up).shutdown(tcp::socket::shutdown_send, sec);
      if (--tunnel_open_ == 0)
        close_tunnel();
      return;
    }
    if (ec)
      return close_tunnel();
    last_activity_ = std::chrono::steady_clock::now();
    auto* buf = up ? up_buf_.get() : down_buf_.get();
    asio::async_write(tunnel_sink(up), asio::buffer(buf, n),
                      beast::bind_front_handler(&session::on_tunnel_write,
                                                shared_from_this(), up));
  }

  void on_tunnel_write(bool up, error_code ec, size_t) {
    if (tunnel_closed_)
      return;
    if (ec)
      return close_tunnel();
    do_tunnel_read(up);
  }

  void arm_tunnel_timer(std::chrono::steady_clock::duration after) {
    tunnel_timer_.expires_after(after);
    tunnel_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->tunnel_closed_)
        return;
      auto idle = std::chrono::steady_clock::now() - self->last_activity_;
      if (idle >= tunnel_idle_timeout) {
        OSB_DEBUG("http", "", "", "proxy: websocket tunnel idle, closing");
        return self->close_tunnel();
      }
      self->arm_tunnel_timer(tunnel_idle_timeout - idle);
    });
  }

  void close_tunnel() {
    if (tunnel_closed_)
      return;
    tunnel_closed_ = true;
    tunnel_timer_.cancel();
    // Close, but keep the socket objects: the other direction's operations
    // may still be queued and complete with operation_aborted.
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
    if (upstream_) {
      upstream_->socket().shutdown(tcp::socket::shutdown_both, ec);
      upstream_->socket().close(ec);
    }
  }

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

/// Accepts incoming connections and launches the sessions.
class listener : public std::enable_shared_from_this<listener> {
public:
  listener(std::shared_ptr<shared_state> state)
    : state_(std::move(state)),
      acceptor_(*state_->iocs.front()),
      retry_(*state_->iocs.front()) {
    // nop
  }

  /// Opens, binds and listens; returns an error text on failure.
  std::string open(const tcp::endpoint& ep, int backlog) {
    error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (ec)
      return "open: " + ec.message();
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (ec)
      return "set_option: " + ec.message();
    acceptor_.bind(ep, ec);
    if (ec)
      return "bind: " + ec.message();
    acceptor_.listen(backlog > 0 ? backlog : asio::socket_base::max_listen_connections,
                     ec);
    if (ec)
      return "listen: " + ec.message();
    return {};
  }

  uint16_t port() const {
    error_code ec;
    auto ep = acceptor_.local_endpoint(ec);
    return ec ? 0 : ep.port();
  }

  void run() {
    do_accept();
  }

  /// Stops accepting; only called by stop() after the I/O threads joined.
  void close() {
    error_code ec;
    acceptor_.close(ec);
    retry_.cancel();
  }

private:
  void do_accept() {
    // The new connection lives on the next I/O thread's io_context.
    auto& ioc = *state_->iocs[next_++ % state_->iocs.size()];
    acceptor_.async_accept(ioc.get_executor(),
                           beast::bind_front_handler(&listener::on_accept,
                                                     shared_from_this()));
  }

  void on_accept(error_code ec, socket_type socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open())
      return;
    if (ec) {
      OSB_WARN("http", "", "", "accept failed: " << ec.message());
      retry_.expires_after(accept_retry_delay);
      retry_.async_wait([self = shared_from_this()](error_code ec) {
        if (!ec)
          self->do_accept();
      });
      return;
    }
    auto num_open = ++state_->num_open;
    auto limit = state_->opts.limit_concurrency;
    // At the limit, idle sockets must not lock everybody out: the
    // connection waiting longest for a request makes room. Only when all
    // are busy does the newcomer get uvicorn's 503.
    bool reject = limit > 0 && num_open > limit && !evict_one();
    std::make_shared<session>(std::move(socket), state_, reject)->run();
    do_accept();
  }

  /// Evicts the connection that has waited longest without sending a
  /// complete request; false if no connection waits.
  bool evict_one() {
    for (int attempt = 0; attempt < 3; ++attempt) {
      std::shared_ptr<session> victim;
      // A session whose last owner let go during the scan must not be
      // destroyed under the lock (its destructor takes it): the scan keeps
      // every session it touched alive until the lock is released.
      std::vector<std::shared_ptr<session>> touched;
      {
        std::lock_guard<std::mutex> guard{state_->sessions_mtx};
        touched.reserve(state_->sessions.size());
        auto oldest = std::numeric_limits<int64_t>::max();
        for (auto& weak : state_->sessions) {
          auto s = weak.lock();
          if (!s)
            continue;
          touched.push_back(s);
          if (s->phase() != conn_phase::waiting)
            continue;
          if (auto t = s->waiting_since(); t < oldest) {
            oldest = t;
            victim = s;
          }
        }
      }
      if (!victim)
        return false;
      // It may have completed a request meanwhile: then try the next one.
      if (victim->evict()) {
        ++state_->num_evicted;
        OSB_DEBUG("http", "", "", "connection limit reached: closing an "
                                  "idle connection");
        return true;
      }
    }
    return false;
  }

  std::shared_ptr<shared_state> state_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  /// Round robin over the io_contexts (only touched by the accept chain).
  size_t next_ = 0;
};

class server_impl final : public server {
public:
  server_impl(std::shared_ptr<shared_state> state,
              std::shared_ptr<listener> lst)
    : state_(std::move(state)), listener_(std::move(lst)) {
    port_ = listener_->port();
  }

  ~server_impl() override {
    stop();
  }

  uint16_t port() const override {
    return port_;
  }

  void start_threads() {
    threads_.reserve(state_->iocs.size());
    for (auto& ioc : state_->iocs)
      threads_.emplace_back([st = state_, ctx = ioc.get()] { ctx->run(); });
  }

  void stop() override {
    if (done_)
      return;
    done_ = true;
    {
      std::unique_lock<std::shared_mutex> guard{state_->stop_mtx};
      state_->stopped = true;
    }
    for (auto& ioc : state_->iocs)
      ioc->stop();
    for (auto& t : threads_)
      t.join();
    threads_.clear();
    // Single-threaded from here on: close the acceptor and every socket, then
    // run the aborted operations to completion so that no handler (and thus
    // no session) stays queued in the io_context.
    listener_->close();
    std::vector<std::shared_ptr<session>> live;
    {
      std::lock_guard<std::mutex> guard{state_->sessions_mtx};
      for (auto& weak : state_->sessions)
        if (auto s = weak.lock())
          live.push_back(std::move(s));
    }
    for (auto& s : live)
      s->close_now();
    live.clear();
    state_->guards.clear();
    for (;;) {
      size_t ran = 0;
      for (auto& ioc : state_->iocs) {
        ioc->restart();
        ran += ioc->poll();
      }
      if (ran == 0)
        break;
    }
    listener_.reset();
  }

private:
  std::shared_ptr<shared_state> state_;
  std::shared_ptr<listener> listener_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  bool done_ = false;
};

} // namespace

server_options::server_options() : streamed(&net::is_proxy_path) {
  // nop
}

namespace {

/// Raises the soft limit on open files to the hard limit: every connection
/// up to limit_concurrency takes a descriptor, a proxied one two, and the
/// usual soft limit of 1024 would turn accept() into EMFILE first.
void raise_nofile_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
    return;
  auto want = rl.rlim_max;
  // An "unlimited" hard limit still has the kernel's nr_open as ceiling.
  if (want == RLIM_INFINITY || want > (1u << 20))
    want = 1u << 20;
  if (want <= rl.rlim_cur)
    return;
  rl.rlim_cur = want;
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0)
    OSB_WARN("http", "", "", "cannot raise the open files limit to "
                               << want);
}

} // namespace

expected<std::unique_ptr<server>> server::start(server_options opts,
                                                handler h) {
  raise_nofile_limit();
  auto threads = std::max(opts.threads, 1);
  auto host = opts.host.empty() ? std::string{"0.0.0.0"} : opts.host;
  auto port = opts.port;
  auto backlog = opts.backlog;
  auto state = std::make_shared<shared_state>(std::move(opts), std::move(h),
                                              threads);
  error_code ec;
  tcp::endpoint ep;
  auto addr = asio::ip::make_address(host, ec);
  if (!ec) {
    ep = tcp::endpoint{addr, port};
  } else {
    // Not a literal address: resolve the name once, at startup.
    tcp::resolver resolver{*state->iocs.front()};
    auto results = resolver.resolve(host, std::to_string(port),
                                    tcp::resolver::passive, ec);
    if (ec || results.empty())
      return failure{failure_kind::invalid,
                     "cannot resolve listen address " + host + ": "
                       + (ec ? ec.message() : std::string{"no results"})};
    ep = results.begin()->endpoint();
  }
  auto lst = std::make_shared<listener>(state);
  auto err = lst->open(ep, backlog);
  if (!err.empty())
    return failure{failure_kind::failed, std::move(err)};
  auto srv = std::make_unique<server_impl>(state, lst);
  lst->run();
  srv->start_threads();
  return std::unique_ptr<server>{std::move(srv)};
}

} // namespace osb::http
