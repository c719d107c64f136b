// A connection of the HTTP server: reads one request at a time (header
// and body limits, header and keep-alive timeouts, RFC 9112 framing),
// hands it to the application and writes its response; a streamed
// request goes on in forwarding.cpp instead. See session.hpp.

#include "http/session.hpp"

#include "base/log.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>
#include <exception>

namespace osb::http::detail {

namespace {

/// Returns the path of a request target (before `?`).
std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

} // namespace

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

session::session(socket_type&& socket, std::shared_ptr<shared_state> state,
                 bool reject)
  : state_(std::move(state)), stream_(std::move(socket)), reject_(reject) {
  error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  if (!ec)
    remote_addr_ = ep.address().to_string();
  stream_.socket().set_option(tcp::no_delay(true), ec);
}

session::~session() {
  --state_->num_open;
  if (registered_) {
    std::lock_guard<std::mutex> guard{state_->sessions_mtx};
    state_->sessions.erase(self_pos_);
  }
}

void session::run() {
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

bool session::evict() {
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

void session::close_now() {
  stream_.close();
  if (upstream_)
    upstream_->close();
  tunnel_timer_.cancel();
}

void session::post_response(response res) {
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

bool session::start_waiting() {
  waiting_since_.store(
    std::chrono::steady_clock::now().time_since_epoch().count(),
    std::memory_order_relaxed);
  auto expected = conn_phase::busy;
  return phase_.compare_exchange_strong(expected, conn_phase::waiting,
                                        std::memory_order_acq_rel)
         || expected == conn_phase::waiting;
}

bool session::claim() {
  auto expected = conn_phase::waiting;
  return phase_.compare_exchange_strong(expected, conn_phase::busy,
                                        std::memory_order_acq_rel)
         || expected == conn_phase::busy;
}

std::chrono::seconds session::header_timeout() const {
  return std::chrono::seconds(
    std::max<int64_t>(state_->opts.header_timeout_s, 1));
}

void session::do_read() {
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

void session::on_idle_read(error_code ec, size_t n) {
  if (ec)
    return do_close();
  buffer_.commit(n);
  read_header();
}

void session::read_header() {
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

void session::reject_framing(const base::framing_verdict& v) {
  OSB_DEBUG("http", "", "", "request from " << remote_addr_
                                            << " rejected: " << v.reason);
  keep_alive_ = false;
  head_request_ = false;
  version_ = 11;
  if (v.status == 501)
    return reply_now(plain_response(501, "Not Implemented"));
  reply_now(plain_response(400, "Invalid HTTP request received."));
}

void session::on_header(error_code ec, size_t) {
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

void session::on_continue(error_code ec, size_t) {
  if (ec)
    return do_close();
  read_body();
}

void session::read_body() {
  bhttp::async_read(stream_, buffer_, *parser_,
                    beast::bind_front_handler(&session::on_read,
                                              shared_from_this()));
}

void session::on_read(error_code ec, size_t) {
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

void session::on_stream_header() {
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

template <class Message>
void session::deliver(Message& msg, std::string body) {
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

void session::reply_now(response res) {
  awaiting_ = true;
  send(std::move(res));
}

void session::send(response&& res) {
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

void session::on_write(bool close, error_code ec, size_t) {
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

void session::do_linger() {
  do_close();
  stream_.expires_after(linger_timeout);
  linger_left_ = linger_limit;
  do_drain();
}

void session::do_drain() {
  buffer_.clear();
  stream_.async_read_some(buffer_.prepare(16 * 1024),
                          beast::bind_front_handler(&session::on_drain,
                                                    shared_from_this()));
}

void session::on_drain(error_code ec, size_t n) {
  if (ec || n >= linger_left_)
    return; // EOF, timeout or enough: the socket closes with the session
  linger_left_ -= n;
  do_drain();
}

void session::do_close() {
  // Send a TCP shutdown; the socket closes when the last reference to the
  // session goes away, which is right after this returns.
  error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
}

} // namespace osb::http::detail
