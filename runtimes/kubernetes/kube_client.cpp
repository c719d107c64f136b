// The asynchronous Kubernetes API client: one I/O thread, a keep-alive pool
// for requests, a connection of its own per watch, token buckets in front
// of both. The only file of runtimes/kubernetes/ with Beast types.

#include "base/json.hpp"
#include "base/log.hpp"
#include "runtimes/kubernetes/kube_internal.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>

namespace osb::runtimes::kubernetes {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

constexpr const char* component = "kubernetes";
/// Token files rotate (bound service account tokens: about hourly).
constexpr auto token_reread = std::chrono::seconds(60);
/// A list of 10,000 pods is ~20 MiB.
constexpr uint64_t body_limit = 512ull * 1024 * 1024;
constexpr size_t max_idle_connections = 16;
/// A 429 with Retry-After is sent again up to this many times (client-go:
/// 10), waiting at most this long each time.
constexpr int max_throttle_retries = 5;
constexpr auto max_retry_after = std::chrono::seconds(10);
/// One line of a watch (one object) beyond this is refused.
constexpr size_t max_event_bytes = 64 * 1024 * 1024;
/// A watch whose path sets no timeoutSeconds ends on our side after this.
constexpr auto default_watch_limit = std::chrono::minutes(30);

/// A connection: TLS over TCP, or TCP alone (the TLS layer then unused).
struct connection {
  connection(net::io_context& ioc, ssl::context& ctx) : stream(ioc, ctx) {
    // nop
  }

  beast::tcp_stream& tcp() {
    return beast::get_lowest_layer(stream);
  }

  beast::ssl_stream<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
};

using connection_ptr = std::shared_ptr<connection>;

bool is_read(http::verb v) {
  return v == http::verb::get || v == http::verb::head;
}

/// timeoutSeconds=N of a watch path, or nullopt.
std::optional<long> timeout_seconds(const std::string& path) {
  auto at = path.find("timeoutSeconds=");
  if (at == std::string::npos)
    return std::nullopt;
  char* end = nullptr;
  auto n = std::strtol(path.c_str() + at + 15, &end, 10);
  if (end == path.c_str() + at + 15 || n <= 0)
    return std::nullopt;
  return n;
}

std::string ssl_error_text() {
  auto code = ERR_get_error();
  if (code == 0)
    return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

class exchange;

/// The I/O context and its thread, shared with the thread itself so that
/// the client may be released on its own I/O thread.
struct io_runner {
  net::io_context ioc{1};
  net::executor_work_guard<net::io_context::executor_type> work
    = net::make_work_guard(ioc);
  std::thread thread;
};

class client_impl : public kube_client,
                    public std::enable_shared_from_this<client_impl> {
public:
  client_impl(kube_endpoint ep, server_url url, rate_limits limits)
    : ep_(std::move(ep)),
      url_(std::move(url)),
      tls_ctx_(ssl::context::tls_client),
      read_bucket_(limits.read_qps, limits.read_burst, clock_type::now()),
      write_bucket_(limits.write_qps, limits.write_burst, clock_type::now()),
      runner_(std::make_shared<io_runner>()) {
    host_header_ = url_.host.find(':') != std::string::npos
                     ? "[" + url_.host + "]:" + url_.port
                     : url_.host + ":" + url_.port;
    token_ = ep_.token;
    token_read_ = clock_type::now();
  }

  ~client_impl() override {
    runner_->work.reset();
    runner_->ioc.stop();
    if (runner_->thread.joinable()) {
      // Released by a callback: the thread ends by itself once run()
      // returns (it owns the runner).
      if (runner_->thread.get_id() == std::this_thread::get_id())
        runner_->thread.detach();
      else
        runner_->thread.join();
    }
  }

  /// Loads CA, client certificate and key; an `invalid` failure naming what
  /// is wrong.
  expected<unit> init_tls() {
    auto fail = [&](const std::string& what) {
      return failure{failure_kind::invalid, "API server " + ep_.server + ": "
                                              + what + ": "
                                              + ssl_error_text()};
    };
    tls_ctx_.set_options(ssl::context::default_workarounds
                         | ssl::context::no_sslv2 | ssl::context::no_sslv3
                         | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    if (!ep_.ca_pem.empty()) {
      tls_ctx_.add_certificate_authority(net::buffer(ep_.ca_pem), ec);
      if (ec)
        return fail("the certificate authority is not valid PEM");
    } else {
      tls_ctx_.set_default_verify_paths(ec);
    }
    if (!ep_.client_cert_pem.empty()) {
      tls_ctx_.use_certificate_chain(net::buffer(ep_.client_cert_pem), ec);
      if (ec)
        return fail("the client certificate is not valid PEM");
      tls_ctx_.use_private_key(net::buffer(ep_.client_key_pem),
                               ssl::context::pem, ec);
      if (ec)
        return fail("the client key is not valid PEM or does not match");
    }
    tls_ctx_.set_verify_mode(ep_.insecure_skip_tls_verify
                               ? ssl::verify_none
                               : ssl::verify_peer);
    return unit{};
  }

  void launch() {
    runner_->thread = std::thread{[r = runner_] {
      for (;;) {
        try {
          r->ioc.run();
          return;
        } catch (const std::exception& e) {
          // A throwing callback must not take the client down.
          OSB_ERROR(component, "", "",
                    "callback threw an exception: " << e.what());
        } catch (...) {
          OSB_ERROR(component, "", "", "callback threw an unknown exception");
        }
      }
    }};
  }

  void request(std::string method, std::string path, std::string body,
               std::function<void(kube_response)> cb,
               std::string content_type) override;

  std::shared_ptr<watch_handle>
  watch(std::string path, std::function<void(watch_event)> on_event,
        std::function<void(kube_response)> on_end) override;

  std::shared_ptr<watch_handle>
  open_watch(std::string path, std::function<void()> on_open,
             std::function<void(watch_event)> on_event,
             std::function<void(kube_response)> on_end) override;

  void shutdown() override {
    if (stopped_.exchange(true))
      return;
    net::post(runner_->ioc, [self = shared_from_this()] { self->abort_all(); });
  }

  std::string server() const override {
    return ep_.server;
  }

  void after(std::chrono::milliseconds delay,
             std::function<void()> fn) override {
    net::post(runner_->ioc, [self = shared_from_this(), delay,
                             fn = std::move(fn)]() mutable {
      if (self->stopped_)
        return;
      auto timer = std::make_shared<net::steady_timer>(self->runner_->ioc);
      self->timers_.insert(timer);
      timer->expires_after(delay);
      timer->async_wait([self, timer, fn = std::move(fn)](
                          boost::system::error_code ec) {
        self->timers_.erase(timer);
        if (!ec && !self->stopped_)
          fn();
      });
    });
  }

  // -- for exchanges (I/O thread only) -------------------------------------

  net::io_context& ioc() {
    return runner_->ioc;
  }

  ssl::context& tls_context() {
    return tls_ctx_;
  }

  const kube_endpoint& endpoint() const {
    return ep_;
  }

  const server_url& url() const {
    return url_;
  }

  const std::string& host_header() const {
    return host_header_;
  }

  bool stopped() const {
    return stopped_;
  }

  /// The bearer token, re-read from its file now and then.
  const std::string& token() {
    if (!ep_.token_file.empty()
        && clock_type::now() - token_read_ > token_reread) {
      token_read_ = clock_type::now();
      std::ifstream in{ep_.token_file};
      std::ostringstream os;
      if (in && (os << in.rdbuf())) {
        auto fresh = std::string{trim_token(os.str())};
        if (!fresh.empty())
          token_ = std::move(fresh);
      } else {
        OSB_WARN(component, "", "",
                 "cannot re-read token file " << ep_.token_file
                                              << "; keeps the old token");
      }
    }
    return token_;
  }

  /// How long a request of `method` waits for the rate limiter.
  clock_type::duration reserve(http::verb method) {
    auto& bucket = is_read(method) ? read_bucket_ : write_bucket_;
    return bucket.reserve(clock_type::now());
  }

  uint64_t track(std::weak_ptr<exchange> x) {
    auto id = next_id_++;
    ops_.emplace(id, std::move(x));
    return id;
  }

  void untrack(uint64_t id) {
    ops_.erase(id);
  }

  connection_ptr take_idle() {
    if (idle_.empty())
      return nullptr;
    // LIFO: the most recently used connection is the least likely stale.
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    return conn;
  }

  void give_back(connection_ptr conn) {
    if (!stopped_ && idle_.size() < max_idle_connections) {
      conn->tcp().expires_never();
      idle_.push_back(std::move(conn));
    } else {
      conn->tcp().close();
    }
  }

private:
  void abort_all();

  kube_endpoint ep_;
  server_url url_;
  ssl::context tls_ctx_;
  std::string host_header_;
  std::string token_;
  clock_type::time_point token_read_;
  token_bucket read_bucket_;
  token_bucket write_bucket_;
  std::shared_ptr<io_runner> runner_;
  std::atomic<bool> stopped_{false};

  // I/O thread only.
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::weak_ptr<exchange>> ops_;
  std::vector<connection_ptr> idle_;
  std::set<std::shared_ptr<net::steady_timer>> timers_;
};

using client_ptr = std::shared_ptr<client_impl>;

// -- one request or watch ------------------------------------------------------

/// A request (answer read whole, connection pooled) or a watch (its own
/// connection, the body read line by line). Runs on the I/O thread;
/// completes exactly once.
class exchange : public std::enable_shared_from_this<exchange> {
public:
  exchange(client_ptr client, http::verb method, std::string path,
           std::string body, std::string content_type,
           std::function<void(kube_response)> done)
    : client_(std::move(client)),
      method_(method),
      timer_(client_->ioc()),
      resolver_(client_->ioc()),
      done_(std::move(done)) {
    req_.method(method);
    req_.target(client_->url().prefix + path);
    req_.version(11);
    req_.set(http::field::host, client_->host_header());
    req_.set(http::field::user_agent, "opensandbox-server");
    req_.set(http::field::accept, "application/json");
    if (!body.empty() || method == http::verb::post
        || method == http::verb::put || method == http::verb::patch) {
      req_.set(http::field::content_type,
               content_type.empty() ? "application/json" : content_type);
      req_.body() = std::move(body);
    }
    req_.keep_alive(true);
  }

  /// Makes this a watch: `on_event` per line of the stream, `on_open`
  /// (if any) when the server accepted it.
  void make_watch(std::function<void(watch_event)> on_event,
                  std::function<void()> on_open) {
    on_event_ = std::move(on_event);
    on_open_ = std::move(on_open);
    auto t = timeout_seconds(std::string{req_.target()});
    watch_limit_ = t ? std::chrono::seconds(*t + 30)
                     : std::chrono::duration_cast<std::chrono::seconds>(
                       default_watch_limit);
  }

  void start() {
    if (client_->stopped())
      return complete(0, "Kubernetes API client is shut down");
    id_ = client_->track(weak_from_this());
    // Set the token at send time: a queued request gets the fresh one.
    auto delay = client_->reserve(method_);
    if (delay <= clock_type::duration::zero())
      return send();
    timer_.expires_after(delay);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->finished_)
        return;
      self->send();
    });
  }

  /// Ends the exchange at once with status 0 and `why`.
  void abort(const std::string& why) {
    if (finished_)
      return;
    timer_.cancel();
    resolver_.cancel();
    if (conn_)
      conn_->tcp().close();
    complete(0, why);
  }

private:
  std::chrono::milliseconds connect_timeout() const {
    return client_->endpoint().connect_timeout;
  }

  /// "30s", or "1500ms" when not whole seconds.
  static std::string millis(std::chrono::milliseconds x) {
    return x.count() % 1000 == 0 ? std::to_string(x.count() / 1000) + "s"
                                 : std::to_string(x.count()) + "ms";
  }

  bool watching() const {
    return static_cast<bool>(on_event_);
  }

  bool tls() const {
    return client_->url().tls;
  }

  /// Runs `f` with the stream to use: TLS, or the plain TCP layer.
  template <class F>
  void on_stream(F&& f) {
    if (tls())
      f(conn_->stream);
    else
      f(conn_->tcp());
  }

  void send() {
    deadline_ = clock_type::now() + client_->endpoint().request_timeout;
    if (auto& token = client_->token(); !token.empty())
      req_.set(http::field::authorization, "Bearer " + token);
    req_.prepare_payload();
    if (!watching()) {
      if (auto conn = client_->take_idle()) {
        conn_ = std::move(conn);
        reused_ = true;
        return do_write();
      }
    }
    open();
  }

  void open() {
    reused_ = false;
    conn_ = std::make_shared<connection>(client_->ioc(),
                                         client_->tls_context());
    // The stream's timeout does not cover name resolution.
    timer_.expires_after(connect_timeout());
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec)
        self->resolver_.cancel();
    });
    resolver_.async_resolve(
      client_->url().host, client_->url().port,
      [self = shared_from_this()](beast::error_code ec,
                                  tcp::resolver::results_type results) {
        self->timer_.cancel();
        self->on_resolve(ec, std::move(results));
      });
  }

  void on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
    if (finished_)
      return;
    if (ec == net::error::operation_aborted)
      return fail_connect("cannot resolve " + client_->url().host
                          + ": timed out");
    if (ec)
      return fail_connect("cannot resolve " + client_->url().host + ": "
                          + ec.message());
    conn_->tcp().expires_after(connect_timeout());
    conn_->tcp().async_connect(
      results, [self = shared_from_this()](beast::error_code ec,
                                           const tcp::endpoint&) {
        self->on_connect(ec);
      });
  }

  void on_connect(beast::error_code ec) {
    if (finished_)
      return;
    if (ec)
      return fail_connect(ec == beast::error::timeout
                            ? "connect timed out after "
                                + millis(connect_timeout())
                            : ec.message());
    beast::error_code ignored;
    conn_->tcp().socket().set_option(tcp::no_delay{true}, ignored);
    if (!tls())
      return do_write();
    auto& host = client_->url().host;
    boost::system::error_code addr_ec;
    net::ip::make_address(host, addr_ec);
    // SNI takes host names only, never addresses (RFC 6066).
    if (addr_ec
        && !SSL_set_tlsext_host_name(conn_->stream.native_handle(),
                                     host.c_str()))
      return fail_connect("cannot set TLS server name: " + ssl_error_text());
    if (!client_->endpoint().insecure_skip_tls_verify)
      conn_->stream.set_verify_callback(ssl::host_name_verification(host));
    conn_->tcp().expires_after(connect_timeout());
    conn_->stream.async_handshake(
      ssl::stream_base::client,
      [self = shared_from_this()](beast::error_code ec) {
        if (self->finished_)
          return;
        if (ec)
          return self->fail(
            "TLS handshake with API server " + self->client_->server()
            + " failed: "
            + (ec == beast::error::timeout ? std::string{"timed out"}
                                           : ec.message()));
        self->do_write();
      });
  }

  void arm() {
    if (watching() && parser_ && parser_->is_header_done())
      conn_->tcp().expires_at(watch_deadline_);
    else
      conn_->tcp().expires_at(deadline_);
  }

  void do_write() {
    arm();
    on_stream([this](auto& s) {
      http::async_write(s, req_,
                        [self = shared_from_this()](beast::error_code ec,
                                                    size_t) {
                          self->on_write(ec);
                        });
    });
  }

  void on_write(beast::error_code ec) {
    if (finished_)
      return;
    if (ec)
      return fail_io(ec);
    parser_.emplace();
    parser_->body_limit(body_limit);
    // A HEAD answer announces a body it does not carry.
    if (method_ == http::verb::head)
      parser_->skip(true);
    if (watching()) {
      // A watch streams for as long as timeoutSeconds; its chunks pass
      // through and are never stored, so the total is unbounded.
      parser_->body_limit(boost::none);
      // The parser keeps a reference: the callback lives in a member.
      chunk_cb_ = [this](std::uint64_t, beast::string_view body,
                         beast::error_code&) -> std::size_t {
        on_stream_data(std::string_view{body.data(), body.size()});
        return body.size();
      };
      parser_->on_chunk_body(chunk_cb_);
    }
    do_read();
  }

  void do_read() {
    arm();
    on_stream([this](auto& s) {
      http::async_read_some(s, conn_->buffer, *parser_,
                            [self = shared_from_this()](beast::error_code ec,
                                                        size_t) {
                              self->on_read(ec);
                            });
    });
  }

  void on_read(beast::error_code ec) {
    if (finished_)
      return;
    if (ec)
      return fail_io(ec);
    if (watching() && parser_->is_header_done() && !watch_started_) {
      watch_started_ = true;
      watch_deadline_ = clock_type::now() + watch_limit_;
      if (on_open_ && parser_->get().result_int() == 200) {
        auto on_open = std::move(on_open_);
        on_open();
        if (finished_)
          return; // cancelled from the callback
      }
    }
    if (!parser_->is_done())
      return do_read();
    auto status = parser_->get().result_int();
    auto keep_alive = parser_->keep_alive();
    auto body = std::move(parser_->get().body());
    if (watching()) {
      // A watch answered without chunks (an error Status, or a short
      // stream): the body is what the chunks would have carried.
      conn_->tcp().close();
      if (status == 200) {
        on_stream_data(body);
        if (finished_)
          return;
        on_stream_data("\n");
        if (finished_)
          return;
        return complete(200, {});
      }
      return complete(status, error_body_.empty() ? body : error_body_);
    }
    auto retry_after = status == 429 ? parse_retry_after(parser_->get())
                                     : std::nullopt;
    auto conn = std::move(conn_);
    if (keep_alive && conn->buffer.size() == 0)
      client_->give_back(std::move(conn));
    else
      conn->tcp().close();
    // The server refused to take the request now and said when to come
    // back: as client-go, wait and send it again (the server did nothing).
    if (retry_after && throttled_ < max_throttle_retries
        && !client_->stopped()) {
      ++throttled_;
      OSB_DEBUG(component, "", "",
                "API server throttles " << req_.target() << "; retries in "
                                        << retry_after->count() << "s");
      parser_.reset();
      timer_.expires_after(*retry_after);
      timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec || self->finished_)
          return;
        self->send();
      });
      return;
    }
    complete(status, std::move(body));
  }

  /// Retry-After in seconds (1..max_retry_after), or nullopt.
  static std::optional<std::chrono::seconds>
  parse_retry_after(const http::response<http::string_body>& res) {
    auto it = res.find(http::field::retry_after);
    if (it == res.end())
      return std::nullopt;
    auto text = std::string{it->value()};
    char* end = nullptr;
    auto n = std::strtol(text.c_str(), &end, 10);
    if (end == text.c_str() || *end != '\0' || n < 0)
      return std::nullopt;
    return std::chrono::seconds{
      std::clamp<long>(n, 1, max_retry_after.count())};
  }

  /// Bytes of a watch's body: whole lines become events.
  void on_stream_data(std::string_view data) {
    if (finished_)
      return;
    if (parser_->get().result_int() != 200) {
      // A refusal's Status is small; keep its beginning.
      if (error_body_.size() < max_event_bytes)
        error_body_.append(data);
      return;
    }
    pending_.append(data);
    size_t start = 0;
    for (;;) {
      auto nl = pending_.find('\n', start);
      if (nl == std::string::npos)
        break;
      auto line = std::string_view{pending_}.substr(start, nl - start);
      start = nl + 1;
      if (line.find_first_not_of(" \r\t") == std::string_view::npos)
        continue;
      if (!deliver(line)) {
        conn_->tcp().close();
        return complete(0, "API server " + client_->server()
                             + " sent an invalid watch event");
      }
      if (finished_)
        return; // cancelled from the handler
    }
    pending_.erase(0, start);
    if (pending_.size() > max_event_bytes) {
      conn_->tcp().close();
      complete(0, "API server " + client_->server()
                    + " sent a watch event over "
                    + std::to_string(max_event_bytes >> 20) + " MiB");
    }
  }

  /// Parses one line {"type": ..., "object": {...}} and hands it on.
  bool deliver(std::string_view line) {
    rapidjson::Document doc;
    if (base::parse_json(doc, line) != base::json_status::ok
        || !doc.IsObject())
      return false;
    auto type = doc.FindMember("type");
    auto object = doc.FindMember("object");
    if (type == doc.MemberEnd() || !type->value.IsString()
        || object == doc.MemberEnd())
      return false;
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> writer{out};
    object->value.Accept(writer);
    on_event_(watch_event{type->value.GetString(),
                          std::string{out.GetString(), out.GetSize()}});
    return true;
  }

  void fail_connect(const std::string& why) {
    if (conn_)
      conn_->tcp().close();
    complete(0, "API server " + client_->server() + " unreachable: " + why);
  }

  void fail(const std::string& why) {
    if (conn_)
      conn_->tcp().close();
    complete(0, why);
  }

  void fail_io(beast::error_code ec) {
    auto answered = parser_ && parser_->got_some();
    conn_->tcp().close();
    if (ec == beast::error::timeout) {
      if (watching() && watch_started_)
        return complete(0, "watch on API server " + client_->server()
                             + " outlived its timeoutSeconds; closed");
      return complete(0, "no answer from API server " + client_->server()
                           + " within "
                           + millis(client_->endpoint().request_timeout));
    }
    // The server closes idle keep-alive connections; we notice only when
    // reusing one. Nothing was answered, so the request goes out again.
    if (reused_ && !retried_ && !answered) {
      retried_ = true;
      parser_.reset();
      OSB_DEBUG(component, "", "",
                "retries " << req_.target() << " on a fresh connection after "
                           << ec.message());
      return open();
    }
    if (watching() && watch_started_)
      return complete(0, "watch on API server " + client_->server()
                           + " broken: " + ec.message());
    complete(0, "connection to API server " + client_->server()
                  + " failed: " + ec.message());
  }

  void complete(unsigned status, std::string body) {
    if (finished_)
      return;
    finished_ = true;
    timer_.cancel();
    if (id_ != 0)
      client_->untrack(id_);
    auto done = std::move(done_);
    done(kube_response{status, std::move(body)});
  }

  client_ptr client_;
  http::verb method_;
  http::request<http::string_body> req_;
  std::optional<http::response_parser<http::string_body>> parser_;
  net::steady_timer timer_;
  tcp::resolver resolver_;
  connection_ptr conn_;
  std::function<void(kube_response)> done_;
  std::function<void(watch_event)> on_event_;
  std::function<void()> on_open_;
  std::function<std::size_t(std::uint64_t, beast::string_view,
                            beast::error_code&)>
    chunk_cb_;
  clock_type::time_point deadline_;
  clock_type::time_point watch_deadline_;
  std::chrono::seconds watch_limit_{0};
  std::string pending_;    ///< a watch's partial line
  std::string error_body_; ///< a refused watch's chunked body
  uint64_t id_ = 0;
  bool reused_ = false;
  bool retried_ = false;
  int throttled_ = 0; ///< 429s waited out
  bool watch_started_ = false;
  bool finished_ = false;
};

class watch_impl : public watch_handle {
public:
  watch_impl(client_ptr client, std::weak_ptr<exchange> x)
    : client_(std::move(client)), x_(std::move(x)) {
    // nop
  }

  void cancel() override {
    net::post(client_->ioc(), [x = x_] {
      if (auto p = x.lock())
        p->abort("cancelled");
    });
  }

private:
  client_ptr client_;
  std::weak_ptr<exchange> x_;
};

void client_impl::abort_all() {
  auto ops = ops_;
  for (auto& [id, weak] : ops)
    if (auto x = weak.lock())
      x->abort("Kubernetes API client is shut down");
  for (auto& conn : idle_)
    conn->tcp().close();
  idle_.clear();
  for (auto& timer : timers_)
    timer->cancel();
}

void client_impl::request(std::string method, std::string path,
                          std::string body,
                          std::function<void(kube_response)> cb,
                          std::string content_type) {
  auto verb = http::string_to_verb(method);
  auto x = std::make_shared<exchange>(shared_from_this(), verb,
                                      std::move(path), std::move(body),
                                      std::move(content_type), std::move(cb));
  net::post(runner_->ioc, [x, bad = verb == http::verb::unknown, method] {
    if (bad)
      return x->abort("unknown HTTP method " + method);
    x->start();
  });
}

std::shared_ptr<watch_handle>
client_impl::watch(std::string path, std::function<void(watch_event)> on_event,
                   std::function<void(kube_response)> on_end) {
  return open_watch(std::move(path), nullptr, std::move(on_event),
                    std::move(on_end));
}

std::shared_ptr<watch_handle>
client_impl::open_watch(std::string path, std::function<void()> on_open,
                        std::function<void(watch_event)> on_event,
                        std::function<void(kube_response)> on_end) {
  auto x = std::make_shared<exchange>(shared_from_this(), http::verb::get,
                                      std::move(path), std::string{},
                                      std::string{}, std::move(on_end));
  x->make_watch(std::move(on_event), std::move(on_open));
  net::post(runner_->ioc, [x] { x->start(); });
  return std::make_shared<watch_impl>(shared_from_this(), x);
}

} // namespace

expected<kube_client_ptr> make_kube_client(kube_endpoint endpoint,
                                           rate_limits limits) {
  auto url = parse_server_url(endpoint.server);
  if (!url)
    return failure{failure_kind::invalid,
                   "API server: " + url.error().message};
  while (!endpoint.server.empty() && endpoint.server.back() == '/')
    endpoint.server.pop_back();
  auto client = std::make_shared<client_impl>(std::move(endpoint),
                                              std::move(*url), limits);
  if (auto ok = client->init_tls(); !ok)
    return ok.error();
  client->launch();
  return kube_client_ptr{client};
}

} // namespace osb::runtimes::kubernetes
