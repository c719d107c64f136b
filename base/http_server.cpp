// The synchronous server's Boost.Beast translation unit: the listener, the
// connection loop, the response writer and the body reader.

#include "base/http_server.hpp"

#include "base/http_framing.hpp"
#include "base/http_socket.hpp"
#include "base/log.hpp"
#include "base/strings.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

namespace osb::base {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

/// An unread request body up to this size is skipped to keep the connection.
constexpr size_t max_skip_body = 4 * 1024 * 1024;

constexpr std::string_view continue_100 = "HTTP/1.1 100 Continue\r\n\r\n";

std::string to_string(beast::string_view x) {
  return std::string{x.data(), x.size()};
}

/// Reads a request body through the parser (buffer_body: no copy of the
/// whole body). Sends `100 Continue` before the first read if asked.
class beast_body_reader final : public body_reader {
public:
  beast_body_reader(timed_socket& s, beast::flat_buffer& buf,
                    request_parser& p, bool expect_continue)
    : s_(s), buf_(buf), p_(p), expect_continue_(expect_continue) {
    // nop
  }

  long read(char* out, size_t n) override {
    if (p_.is_done())
      return 0;
    if (expect_continue_) {
      expect_continue_ = false;
      error_code ec;
      asio::write(s_,
                  asio::const_buffer{continue_100.data(), continue_100.size()},
                  ec);
      if (ec) {
        failed_ = true;
        return -1;
      }
    }
    for (;;) {
      p_.get().body().data = out;
      p_.get().body().size = n;
      error_code ec;
      bhttp::read_some(s_, buf_, p_, ec);
      if (ec == bhttp::error::need_buffer)
        ec = {};
      if (ec) {
        failed_ = true;
        return -1;
      }
      auto got = n - p_.get().body().size;
      if (got > 0 || p_.is_done())
        return static_cast<long>(got);
    }
  }

  bool done() const override {
    return p_.is_done();
  }

  /// Whether a read failed (the client is gone or too slow).
  bool failed() const {
    return failed_;
  }

  /// Whether the client still waits for `100 Continue` before it sends the
  /// body.
  bool awaiting_continue() const {
    return expect_continue_;
  }

private:
  timed_socket& s_;
  beast::flat_buffer& buf_;
  request_parser& p_;
  bool expect_continue_;
  bool failed_ = false;
};

/// Writes the response to one request; also the raw connection below it,
/// for relays.
class beast_writer final : public response_writer, public raw_connection {
public:
  /// `body`: the request's body reader, if any; when its client still waits
  /// for `100 Continue`, the response closes the connection (the client
  /// sends no body, so there is none to skip, and a late interim response
  /// would be taken for the next one).
  beast_writer(timed_socket& s, beast::flat_buffer& buf, request_parser& p,
               bool keep_alive, bool head,
               const beast_body_reader* body = nullptr)
    : s_(s),
      buf_(buf),
      p_(p),
      body_(body),
      keep_alive_(keep_alive),
      head_(head) {
    // nop
  }

  bool send(int status, std::string_view content_type, std::string_view body,
            const header_list& extra) override {
    if (started_)
      return false;
    started_ = true;
    finished_ = true;
    status_ = status;
    check_continue();
    bhttp::response<bhttp::string_body> res;
    res.result(static_cast<unsigned>(status));
    res.version(11);
    if (!content_type.empty())
      res.set(bhttp::field::content_type,
              beast::string_view{content_type.data(), content_type.size()});
    for (auto& [k, v] : extra)
      res.set(k, v);
    res.body().assign(body.data(), body.size());
    res.keep_alive(keep_alive_);
    res.prepare_payload();
    error_code ec;
    if (head_) {
      bhttp::response_serializer<bhttp::string_body> sr{res};
      bhttp::write_header(s_, sr, ec);
    } else {
      bhttp::write(s_, res, ec);
    }
    failed_ = static_cast<bool>(ec);
    return !failed_;
  }

  bool begin(int status, std::string_view content_type,
             std::optional<uint64_t> length,
             const header_list& extra) override {
    if (started_)
      return false;
    started_ = true;
    status_ = status;
    check_continue();
    bhttp::response<bhttp::empty_body> res;
    res.result(static_cast<unsigned>(status));
    res.version(11);
    if (!content_type.empty())
      res.set(bhttp::field::content_type,
              beast::string_view{content_type.data(), content_type.size()});
    for (auto& [k, v] : extra)
      res.set(k, v);
    if (length) {
      res.content_length(*length);
    } else {
      res.chunked(true);
      chunked_ = true;
    }
    res.keep_alive(keep_alive_);
    if (keep_alive_ && chunked_)
      res.set(bhttp::field::connection, "keep-alive");
    bhttp::response_serializer<bhttp::empty_body> sr{res};
    error_code ec;
    bhttp::write_header(s_, sr, ec);
    failed_ = static_cast<bool>(ec);
    return !failed_;
  }

  bool write(std::string_view data) override {
    if (!started_ || finished_ || failed_)
      return false;
    if (data.empty() || head_)
      return true;
    error_code ec;
    asio::const_buffer b{data.data(), data.size()};
    if (chunked_)
      asio::write(s_, bhttp::make_chunk(b), ec);
    else
      asio::write(s_, b, ec);
    failed_ = static_cast<bool>(ec);
    return !failed_;
  }

  bool finish() override {
    if (finished_)
      return !failed_;
    finished_ = true;
    if (chunked_ && !failed_ && !head_) {
      error_code ec;
      asio::write(s_, bhttp::make_chunk_last(), ec);
      failed_ = static_cast<bool>(ec);
    }
    return !failed_;
  }

  bool started() const override {
    return started_;
  }

  int status() const override {
    return status_;
  }

  void close_connection() override {
    if (!started_)
      keep_alive_ = false;
  }

  raw_connection* raw() override {
    return this;
  }

  timed_socket& client() override {
    return s_;
  }

  beast::flat_buffer& buffer() override {
    return buf_;
  }

  request_parser& parser() override {
    return p_;
  }

  void relayed(int status, bool keep_alive) override {
    started_ = true;
    finished_ = true;
    status_ = status;
    keep_alive_ = keep_alive;
  }

  bool failed() const {
    return failed_;
  }

  bool keep_alive() const {
    return keep_alive_;
  }

private:
  void check_continue() {
    if (body_ != nullptr && body_->awaiting_continue() && !p_.is_done())
      keep_alive_ = false;
  }

  timed_socket& s_;
  beast::flat_buffer& buf_;
  request_parser& p_;
  const beast_body_reader* body_;
  bool keep_alive_;
  bool head_;
  bool started_ = false;
  bool finished_ = false;
  bool chunked_ = false;
  bool failed_ = false;
  int status_ = 0;
};

struct server_state {
  sync_server_options opts;
  http_handler handler;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  uint16_t port = 0;
  std::atomic<bool> stopping{false};
  std::mutex mtx;
  std::condition_variable cv;
  std::set<int> conns;
  std::thread accept_thread;
};

class connection {
public:
  connection(std::shared_ptr<server_state> srv, tcp::socket sock)
    : srv_(std::move(srv)), sock_(std::move(sock)), ts_(sock_) {
    error_code ec;
    auto ep = sock_.remote_endpoint(ec);
    if (!ec)
      peer_ = ep.address().to_string();
  }

  void run() {
    auto& opts = srv_->opts;
    for (bool first = true;; first = false) {
      request_parser p;
      p.header_limit(opts.header_limit);
      p.body_limit(boost::none);
      error_code ec;
      // Between requests the idle timeout applies until the next request's
      // first byte; from then on (and on a new connection from the start)
      // its header must arrive within the header timeout.
      if (!first && buf_.size() == 0) {
        ts_.timeout_ms = static_cast<int>(opts.idle_timeout.count() * 1000);
        if (!ts_.wait_readable(ec))
          break;
      }
      ts_.timeout_ms = -1;
      ts_.deadline = std::chrono::steady_clock::now() + opts.header_timeout;
      bhttp::read_header(ts_, buf_, p, ec);
      if (ec) {
        // Beast's parser errors are malformed requests; socket errors and
        // timeouts just close.
        if (ec.category()
              == bhttp::make_error_code(bhttp::error::end_of_stream).category()
            && ec != bhttp::error::end_of_stream
            && ec != bhttp::error::partial_message) {
          ts_.deadline.reset();
          reject(p, 400, {});
        }
        break;
      }
      // RFC 9112 §6.3: a body whose length is in doubt ends the connection.
      if (auto v = check_request_framing(p.get(), p.get().version()); !v) {
        OSB_WARN(opts.log_component, "", "",
                 "request from " << peer_ << " rejected: " << v.reason);
        ts_.deadline.reset();
        reject(p, v.status, v.reason);
        break;
      }
      if (!opts.deadline_covers_body) {
        ts_.deadline.reset();
        ts_.timeout_ms = static_cast<int>(opts.body_timeout.count());
      }
      http_request req;
      auto& msg = p.get();
      req.method = to_string(msg.method_string());
      req.set_target(to_string(msg.target()));
      for (auto& f : msg)
        req.headers.emplace_back(lower(to_string(f.name_string())),
                                 to_string(f.value()));
      req.remote_addr = peer_;
      auto start = std::chrono::steady_clock::now();
      int status = 0;
      bool keep_alive = dispatch(p, req, status);
      ts_.deadline.reset();
      if (opts.log_requests) {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now() - start)
                    .count();
        OSB_INFO(opts.log_component, "", "",
                 req.method << ' ' << req.target << ' ' << status << ' '
                            << us / 1000 << '.' << (us % 1000) / 100
                            << "ms");
      }
      if (!keep_alive)
        break;
    }
    error_code ec;
    sock_.shutdown(tcp::socket::shutdown_send, ec);
  }

  int fd() {
    return sock_.native_handle();
  }

private:
  /// Answers with one of the server's own errors, then closes.
  void reject(request_parser& p, int status, std::string_view reason) {
    beast_writer w{ts_, buf_, p, false, false};
    error_response(w, status, reason);
    if (!w.failed())
      linger();
  }

  void error_response(response_writer& w, int status,
                      std::string_view reason) {
    if (srv_->opts.error_response)
      srv_->opts.error_response(w, status, reason);
    else
      plain_error_response(w, status, reason);
  }

  /// Half-closes, then discards what the client still sends (a rejected
  /// body, a pipelined request) for a moment: closing with unread data
  /// would send a RST, which can destroy the response before the client
  /// has read it.
  void linger() {
    error_code ec;
    sock_.shutdown(tcp::socket::shutdown_send, ec);
    ts_.timeout_ms = 1000;
    ts_.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    std::vector<char> sink(16 * 1024);
    size_t left = 4 * 1024 * 1024;
    buf_.clear();
    while (left > 0) {
      auto n = ts_.read_some(asio::buffer(sink), ec);
      if (ec || n == 0)
        break;
      left -= std::min(left, n);
    }
    ts_.deadline.reset();
  }

  /// Handles one request; returns whether the connection may serve another.
  bool dispatch(request_parser& p, const http_request& req, int& status) {
    bool expect_continue
      = has_token(req.header("expect"), "100-continue") && !p.is_done();
    beast_body_reader body{ts_, buf_, p, expect_continue};
    beast_writer w{ts_, buf_, p, p.get().keep_alive(), req.method == "HEAD",
                   &body};
    try {
      srv_->handler(req, body, w);
    } catch (const std::exception& e) {
      OSB_ERROR(srv_->opts.log_component, "", "",
                "handler failed: " << e.what());
      if (w.started()) {
        status = w.status();
        return false;
      }
      error_response(w, 500, "internal error");
    }
    if (!w.started()) {
      // Stopped at a failed body read: nobody to answer.
      if (body.failed())
        return false;
      error_response(w, 500, "no response");
    }
    w.finish();
    status = w.status();
    if (w.failed())
      return false;
    if (!w.keep_alive()) {
      linger();
      return false;
    }
    if (!p.is_done()) {
      // Skip an unread body so the connection can be reused.
      std::vector<char> sink(64 * 1024);
      size_t skipped = 0;
      while (!p.is_done() && skipped < max_skip_body) {
        auto n = body.read(sink.data(), sink.size());
        if (n <= 0)
          break;
        skipped += static_cast<size_t>(n);
      }
      if (!p.is_done())
        return false;
    }
    return true;
  }

  std::shared_ptr<server_state> srv_;
  tcp::socket sock_;
  timed_socket ts_;
  beast::flat_buffer buf_;
  std::string peer_;
};

void accept_loop(std::shared_ptr<server_state> st) {
  while (!st->stopping) {
    pollfd pfd{st->acceptor.native_handle(), POLLIN, 0};
    auto rc = ::poll(&pfd, 1, 200);
    if (rc <= 0)
      continue;
    tcp::socket sock{st->ioc};
    error_code ec;
    st->acceptor.accept(sock, ec);
    if (ec) {
      if (!st->stopping)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    int fd = sock.native_handle();
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    sock.set_option(tcp::no_delay{true}, ec);
    {
      std::lock_guard<std::mutex> guard{st->mtx};
      if (st->conns.size() >= st->opts.max_connections) {
        OSB_WARN(st->opts.log_component, "", "",
                 "too many connections, refusing one");
        continue;
      }
      st->conns.insert(fd);
    }
    std::thread{[st, s = std::move(sock)]() mutable {
      auto c = std::make_unique<connection>(st, std::move(s));
      auto fd = c->fd();
      c->run();
      {
        // Close under the lock, so stop() never shuts down a recycled
        // descriptor.
        std::lock_guard<std::mutex> guard{st->mtx};
        st->conns.erase(fd);
        c.reset();
      }
      st->cv.notify_all();
    }}.detach();
  }
}

class server_impl final : public sync_server {
public:
  explicit server_impl(std::shared_ptr<server_state> st) : st_(std::move(st)) {
    // nop
  }

  ~server_impl() override {
    stop();
  }

  uint16_t port() const override {
    return st_->port;
  }

  void stop() override {
    if (st_->stopping.exchange(true))
      return;
    if (st_->accept_thread.joinable())
      st_->accept_thread.join();
    error_code ec;
    st_->acceptor.close(ec);
    std::unique_lock<std::mutex> guard{st_->mtx};
    for (auto fd : st_->conns)
      ::shutdown(fd, SHUT_RDWR);
    st_->cv.wait_for(guard, std::chrono::seconds(10),
                     [&] { return st_->conns.empty(); });
  }

private:
  std::shared_ptr<server_state> st_;
};

} // namespace

void plain_error_response(response_writer& w, int status, std::string_view) {
  auto text = status == 501   ? "Not Implemented"
              : status >= 500 ? "Internal Server Error"
                              : "Bad Request";
  w.send(status, "text/plain; charset=utf-8", text, {});
}

std::unique_ptr<sync_server> sync_server::start(sync_server_options opts,
                                                http_handler handler,
                                                std::string* err) {
  auto st = std::make_shared<server_state>();
  st->opts = std::move(opts);
  st->handler = std::move(handler);
  error_code ec;
  auto addr = asio::ip::make_address(st->opts.host, ec);
  if (ec) {
    if (err != nullptr)
      *err = "invalid listen address " + st->opts.host;
    return nullptr;
  }
  tcp::endpoint ep{addr, st->opts.port};
  st->acceptor.open(ep.protocol(), ec);
  if (!ec) {
    ::fcntl(st->acceptor.native_handle(), F_SETFD, FD_CLOEXEC);
    st->acceptor.set_option(asio::socket_base::reuse_address{true}, ec);
    st->acceptor.bind(ep, ec);
  }
  if (!ec)
    st->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    if (err != nullptr)
      *err = "cannot listen on " + st->opts.host + ":"
             + std::to_string(st->opts.port) + ": " + ec.message();
    return nullptr;
  }
  st->port = st->acceptor.local_endpoint().port();
  st->accept_thread = std::thread{accept_loop, st};
  return std::make_unique<server_impl>(st);
}

} // namespace osb::base
