// The only Beast server translation unit: the listener and session classes
// live here (structure of Beast's http_server_async / advanced_server) so that
// no header outside this file pulls in Boost.

#include "http/server.hpp"

#include "core/log.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
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

/// Upper bound for writing one response.
constexpr auto write_timeout = std::chrono::seconds(60);

/// Upper bound for the request line plus header fields.
constexpr uint32_t header_limit = 64 * 1024;

/// How long, and how many bytes, a closing connection keeps reading.
constexpr auto linger_timeout = std::chrono::seconds(2);
constexpr size_t linger_limit = 64 * 1024 * 1024;

/// Pause before accepting again after an accept error (e.g. EMFILE), so that
/// a persistent error does not spin a thread.
constexpr auto accept_retry_delay = std::chrono::milliseconds(50);

class session;

/// State shared by the listener, every session and every outstanding
/// responder. Sessions hold it by shared_ptr, so the io_context (and with it
/// the socket services) outlives every socket, even when a responder kept by
/// the application outlives the server.
struct shared_state {
  shared_state(server_options o, handler h)
    : opts(std::move(o)), app(std::move(h)) {
    // nop
  }

  server_options opts;
  handler app;
  asio::io_context ioc;
  /// Open connections (for limit_concurrency).
  std::atomic<int64_t> num_open{0};
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
  for (auto c : value)
    out += (c == '\r' || c == '\n') ? ' ' : c;
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

/// Handles an HTTP connection: reads one request at a time, hands it to the
/// application and writes its response before reading the next one. Pipelined
/// requests simply wait in `buffer_` until then, which keeps responses in
/// request order without a queue.
class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket&& socket, std::shared_ptr<shared_state> state,
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
    // We need to be executing within the strand to perform async operations
    // on the I/O objects in this session.
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&session::do_read,
                                             shared_from_this()));
  }

  /// Closes the socket; pending operations complete with operation_aborted.
  /// Only called by stop() after the I/O threads have been joined.
  void close_now() {
    stream_.close();
  }

  /// Completes the current request; callable from any thread.
  void post_response(response res) {
    std::shared_lock<std::shared_mutex> guard{state_->stop_mtx};
    if (state_->stopped)
      return;
    // dispatch, not post: when the application answers on the strand itself
    // (an error or a synchronous backend) this writes without a thread hop;
    // from any other thread it queues onto the strand.
    asio::dispatch(stream_.get_executor(),
                   [self = shared_from_this(), res = std::move(res)]() mutable {
                     self->send(std::move(res));
                   });
  }

private:
  void do_read() {
    // A fresh parser per request: the body limit and header state must not
    // carry over from the previous message.
    parser_.emplace();
    parser_->body_limit(state_->opts.body_limit);
    parser_->header_limit(header_limit);
    stream_.expires_after(std::chrono::seconds(
      std::max<int64_t>(state_->opts.keep_alive_s, 1)));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&session::on_header,
                                                       shared_from_this()));
  }

  void on_header(error_code ec, size_t) {
    if (ec)
      return on_read(ec, 0);
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
    req.body = std::move(msg.body());
    req.remote_addr = remote_addr_;
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

  /// Serializes and writes `res`; runs on the strand.
  void send(response&& res) {
    if (!awaiting_)
      return; // the request already got its answer
    awaiting_ = false;
    res_ = std::move(res);
    bool close = !keep_alive_;
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

  /// Declared first: destroyed last, after the socket.
  std::shared_ptr<shared_state> state_;
  beast::tcp_stream stream_;
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
  std::list<std::weak_ptr<session>>::iterator self_pos_;
};

/// Accepts incoming connections and launches the sessions.
class listener : public std::enable_shared_from_this<listener> {
public:
  listener(std::shared_ptr<shared_state> state)
    : state_(std::move(state)),
      acceptor_(state_->ioc),
      retry_(state_->ioc) {
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
    // The new connection gets its own strand.
    acceptor_.async_accept(asio::make_strand(state_->ioc),
                           beast::bind_front_handler(&listener::on_accept,
                                                     shared_from_this()));
  }

  void on_accept(error_code ec, tcp::socket socket) {
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
    bool reject = limit > 0 && num_open > limit;
    std::make_shared<session>(std::move(socket), state_, reject)->run();
    do_accept();
  }

  std::shared_ptr<shared_state> state_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
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

  void start_threads(int n) {
    threads_.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i)
      threads_.emplace_back([st = state_] { st->ioc.run(); });
  }

  void stop() override {
    if (done_)
      return;
    done_ = true;
    {
      std::unique_lock<std::shared_mutex> guard{state_->stop_mtx};
      state_->stopped = true;
    }
    state_->ioc.stop();
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
    for (;;) {
      state_->ioc.restart();
      if (state_->ioc.poll() == 0)
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

expected<std::unique_ptr<server>> server::start(server_options opts,
                                                handler h) {
  auto threads = std::max(opts.threads, 1);
  auto host = opts.host.empty() ? std::string{"0.0.0.0"} : opts.host;
  auto port = opts.port;
  auto backlog = opts.backlog;
  auto state = std::make_shared<shared_state>(std::move(opts), std::move(h));
  error_code ec;
  tcp::endpoint ep;
  auto addr = asio::ip::make_address(host, ec);
  if (!ec) {
    ep = tcp::endpoint{addr, port};
  } else {
    // Not a literal address: resolve the name once, at startup.
    tcp::resolver resolver{state->ioc};
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
  srv->start_threads(threads);
  return std::unique_ptr<server>{std::move(srv)};
}

} // namespace osb::http
