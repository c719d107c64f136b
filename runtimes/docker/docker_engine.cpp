#include "runtimes/docker/docker_engine.hpp"

#include "core/log.hpp"
#include "runtimes/docker/docker_api.hpp"
#include "runtimes/docker/ssh_tunnel.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <atomic>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace osb::runtimes::docker {

namespace detail {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

using docker::host_address;

/// One socket type for unix and TCP daemons keeps a single instantiation of
/// the Beast machinery in this TU.
using protocol = net::generic::stream_protocol;
using stream_type = beast::basic_stream<protocol>;

constexpr size_t max_idle_connections = 32;
constexpr uint64_t body_limit = 64 * 1024 * 1024;
constexpr const char* component = "docker";

/// A daemon answer: status and complete body.
struct response {
  unsigned status = 0;
  std::string body;
};

using response_handler = std::function<void(expected<response>)>;

/// What to send.
struct request_options {
  http::verb method = http::verb::get;
  std::string target;
  std::string body; ///< empty for none
  std::string content_type = "application/json";
  std::string registry_auth;
  /// Long-running streamed answer (image pull): the timeout bounds the
  /// silence between reads instead of the whole call.
  bool streaming = false;
  /// Sees each part of the body as it arrives (streaming calls only).
  std::function<void(std::string_view)> on_body;
};

/// A pooled keep-alive connection. Each has its own strand; every operation
/// on it runs there.
struct connection {
  explicit connection(net::io_context& ioc) : stream(net::make_strand(ioc)) {
    // nop
  }

  stream_type stream;
  beast::flat_buffer buffer;
};

using connection_ptr = std::shared_ptr<connection>;

/// An asynchronous call in flight; completes exactly once.
template <class T>
class pending;

/// Adds what we were doing to a transport failure. "Unreachable" already
/// says everything and reads the same for every call.
failure with_context(std::string_view what, const failure& f) {
  if (f.kind == failure_kind::unavailable)
    return f;
  return failure{f.kind, std::string{what} + ": " + f.message};
}

class docker_client : public std::enable_shared_from_this<docker_client> {
public:
  docker_client(host_address addr, std::chrono::seconds timeout, int threads)
    : ioc_(std::max(threads, 1)),
      work_(net::make_work_guard(ioc_)),
      addr_(std::move(addr)),
      timeout_(timeout),
      num_threads_(std::max(threads, 1)) {
    host_header_ = addr_.kind == host_address::kind_t::tcp
                     ? addr_.host + ":" + addr_.port
                     : std::string{"docker"};
  }

  ~docker_client() {
    // Only reached after shutdown: either joined or the last (detached) I/O
    // thread releases us.
    idle_.clear();
  }

  /// Spawns the I/O threads; each keeps the client alive while it runs.
  void launch() {
    for (int i = 0; i < num_threads_; ++i)
      threads_.emplace_back([self = shared_from_this()] { self->run(); });
  }

  void shutdown() {
    std::map<uint64_t, std::function<void(failure)>> inflight;
    {
      std::lock_guard guard{mtx_};
      if (stopped_)
        return;
      stopped_ = true;
      inflight.swap(inflight_);
    }
    work_.reset();
    ioc_.stop();
    auto self = std::this_thread::get_id();
    for (auto& t : threads_) {
      if (!t.joinable())
        continue;
      // Shutting down from a callback: we cannot join ourselves; the thread
      // returns from run() once the callback is done.
      if (t.get_id() == self)
        t.detach();
      else
        t.join();
    }
    {
      std::lock_guard guard{mtx_};
      idle_.clear();
    }
    for (auto& [id, fail] : inflight)
      fail(stopped_failure());
  }

  const host_address& address() const {
    return addr_;
  }

  std::chrono::seconds timeout() const {
    return timeout_;
  }

  const std::string& host_header() const {
    return host_header_;
  }

  net::io_context& ioc() {
    return ioc_;
  }

  // -- bookkeeping of pending calls ----------------------------------------

  /// Registers a call so that shutdown can fail it. Returns null (after
  /// failing `cb` synchronously) when already shut down.
  template <class T>
  std::shared_ptr<pending<T>> track(callback<T> cb);

  void untrack(uint64_t id) {
    std::lock_guard guard{mtx_};
    inflight_.erase(id);
  }

  static failure stopped_failure() {
    return failure{failure_kind::unavailable, "Docker runtime is shut down"};
  }

  // -- connection pool -----------------------------------------------------

  connection_ptr take_idle() {
    std::lock_guard guard{mtx_};
    if (idle_.empty())
      return nullptr;
    // LIFO: the most recently used connection is the least likely to be
    // stale.
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    return conn;
  }

  void give_back(connection_ptr conn) {
    std::lock_guard guard{mtx_};
    if (!stopped_ && idle_.size() < max_idle_connections)
      idle_.push_back(std::move(conn));
  }

  // -- HTTP ----------------------------------------------------------------

  /// Sends one request on a pooled or fresh connection; `done` runs once on
  /// an I/O thread.
  void request(request_options opts, response_handler done);

  // -- operations ----------------------------------------------------------

  void ping(callback<unit> cb);
  void create(const container_spec& spec, callback<std::string> cb);
  void unit_call(http::verb method, std::string target, std::string what,
                 std::vector<unsigned> ok, callback<unit> cb,
                 std::shared_ptr<const std::string> body,
                 std::string content_type);
  void unit_call(http::verb method, std::string target, std::string what,
                 std::vector<unsigned> ok, callback<unit> cb);
  void inspect(const std::string& id, callback<container_info> cb);
  void list(const std::map<std::string, std::string>& labels,
            callback<std::vector<container_info>> cb);

  /// A call answering with a body that `parse` turns into a T.
  /// @param ok the success status; 404 maps to `not_found`.
  template <class T, class Parse>
  void value_call(http::verb method, std::string target, std::string body,
                  std::string what, unsigned ok, Parse parse,
                  callback<T> cb) {
    auto p = track(std::move(cb));
    if (!p)
      return;
    net::post(ioc_, [this, p, method, target = std::move(target),
                     body = std::move(body), what = std::move(what), ok,
                     parse]() mutable {
      request_options opts;
      opts.method = method;
      opts.target = std::move(target);
      opts.body = std::move(body);
      request(std::move(opts), [p, what, ok, parse](expected<response> r) {
        if (!r)
          return p->finish(with_context(what, r.error()));
        if (r->status != ok)
          return p->finish(docker::http_failure(what, r->status, r->body));
        expected<T> x = parse(r->body);
        if (!x)
          return p->finish(with_context(what, x.error()));
        p->finish(std::move(x));
      });
    });
  }

private:
  void run() {
    for (;;) {
      try {
        ioc_.run();
        return;
      } catch (const std::exception& e) {
        // A throwing callback must not take the runtime down.
        OSB_ERROR(component, "", "",
                  "callback threw an exception: " << e.what());
      } catch (...) {
        OSB_ERROR(component, "", "", "callback threw an unknown exception");
      }
    }
  }

  void do_create(std::shared_ptr<container_spec> spec,
                 std::shared_ptr<pending<std::string>> p, bool pulled);
  void do_pull(std::shared_ptr<container_spec> spec,
               std::shared_ptr<pending<std::string>> p);

  net::io_context ioc_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  host_address addr_;
  std::chrono::seconds timeout_;
  int num_threads_;
  std::string host_header_;
  std::vector<std::thread> threads_;

  std::mutex mtx_;
  bool stopped_ = false;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::function<void(failure)>> inflight_;
  std::vector<connection_ptr> idle_;
};

template <class T>
class pending {
public:
  pending(docker_client& client, uint64_t id, callback<T> cb)
    : client_(client), id_(id), cb_(std::move(cb)) {
    // nop
  }

  /// Delivers the result unless someone (shutdown) was first.
  void finish(expected<T> x) {
    if (done_.exchange(true))
      return;
    client_.untrack(id_);
    auto cb = std::move(cb_);
    cb(std::move(x));
  }

private:
  docker_client& client_;
  uint64_t id_;
  callback<T> cb_;
  std::atomic<bool> done_{false};
};

template <class T>
std::shared_ptr<pending<T>> docker_client::track(callback<T> cb) {
  std::unique_lock guard{mtx_};
  if (stopped_) {
    guard.unlock();
    // No I/O thread is left to run it on.
    cb(stopped_failure());
    return nullptr;
  }
  auto id = next_id_++;
  auto p = std::make_shared<pending<T>>(*this, id, std::move(cb));
  inflight_.emplace(id, [p](failure f) { p->finish(std::move(f)); });
  return p;
}

// -- one HTTP exchange --------------------------------------------------------

/// Writes a request and reads the answer on one connection, retrying once on
/// a fresh connection when a pooled one turns out to be stale.
class exchange : public std::enable_shared_from_this<exchange> {
public:
  exchange(docker_client& client, request_options opts, response_handler done)
    : client_(client),
      opts_(std::move(opts)),
      done_(std::move(done)),
      deadline_(std::chrono::steady_clock::now() + client.timeout()) {
    req_.method(opts_.method);
    req_.target(opts_.target);
    req_.version(11);
    req_.set(http::field::host, client_.host_header());
    req_.set(http::field::user_agent, "opensandbox-server");
    if (!opts_.body.empty()) {
      req_.set(http::field::content_type, opts_.content_type);
      req_.body() = opts_.body;
    }
    if (!opts_.registry_auth.empty())
      req_.set("X-Registry-Auth", opts_.registry_auth);
    req_.keep_alive(true);
    req_.prepare_payload();
  }

  void run() {
    if (auto conn = client_.take_idle()) {
      conn_ = std::move(conn);
      reused_ = true;
      net::post(conn_->stream.get_executor(),
                beast::bind_front_handler(&exchange::do_write,
                                          shared_from_this()));
      return;
    }
    open();
  }

private:
  void open() {
    reused_ = false;
    conn_ = std::make_shared<connection>(client_.ioc());
    net::post(conn_->stream.get_executor(),
              beast::bind_front_handler(&exchange::do_connect,
                                        shared_from_this()));
  }

  /// Set the timeout for the next operation on the stream.
  void arm() {
    if (opts_.streaming)
      conn_->stream.expires_after(client_.timeout());
    else
      conn_->stream.expires_at(deadline_);
  }

  void do_connect() {
    arm();
    auto& addr = client_.address();
    if (addr.kind == host_address::kind_t::unix_socket) {
      protocol::endpoint ep{net::local::stream_protocol::endpoint{addr.path}};
      conn_->stream.async_connect(
        ep, beast::bind_front_handler(&exchange::on_connect,
                                      shared_from_this()));
      return;
    }
    resolver_.emplace(conn_->stream.get_executor());
    // The stream's timeout does not cover name resolution.
    resolve_timer_.emplace(conn_->stream.get_executor());
    resolve_timer_->expires_at(opts_.streaming
                                 ? std::chrono::steady_clock::now()
                                     + client_.timeout()
                                 : deadline_);
    resolve_timer_->async_wait(
      [self = shared_from_this()](beast::error_code ec) {
        if (ec)
          return; // Canceled: resolution finished in time.
        self->resolve_timed_out_ = true;
        self->resolver_->cancel();
      });
    resolver_->async_resolve(addr.host, addr.port,
                             beast::bind_front_handler(&exchange::on_resolve,
                                                       shared_from_this()));
  }

  void on_resolve(beast::error_code ec,
                  net::ip::tcp::resolver::results_type results) {
    resolve_timer_->cancel();
    if (resolve_timed_out_)
      return fail_connect(beast::error::timeout);
    if (ec)
      return fail_connect(ec);
    std::vector<protocol::endpoint> eps;
    for (auto& entry : results)
      eps.emplace_back(entry.endpoint());
    arm();
    conn_->stream.async_connect(
      eps, [self = shared_from_this()](beast::error_code ec,
                                       const protocol::endpoint&) {
        self->on_connect(ec);
      });
  }

  void on_connect(beast::error_code ec) {
    if (ec)
      return fail_connect(ec);
    if (client_.address().kind == host_address::kind_t::tcp) {
      beast::error_code ignored;
      conn_->stream.socket().set_option(net::ip::tcp::no_delay{true},
                                        ignored);
    }
    do_write();
  }

  void do_write() {
    arm();
    http::async_write(conn_->stream, req_,
                      beast::bind_front_handler(&exchange::on_write,
                                                shared_from_this()));
  }

  void on_write(beast::error_code ec, size_t) {
    if (ec)
      return fail_io(ec);
    // Construct a new parser for each message.
    parser_.emplace();
    parser_->body_limit(body_limit);
    do_read();
  }

  void do_read() {
    arm();
    http::async_read_some(conn_->stream, conn_->buffer, *parser_,
                          beast::bind_front_handler(&exchange::on_read,
                                                    shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec)
      return fail_io(ec);
    if (opts_.on_body) {
      auto& body = parser_->get().body();
      if (body.size() > body_seen_) {
        opts_.on_body(std::string_view{body}.substr(body_seen_));
        body_seen_ = body.size();
      }
    }
    if (!parser_->is_done())
      return do_read();
    auto keep_alive = parser_->keep_alive();
    auto msg = parser_->release();
    auto conn = std::move(conn_);
    if (keep_alive && conn->buffer.size() == 0) {
      conn->stream.expires_never();
      client_.give_back(std::move(conn));
    } else {
      conn->stream.close();
    }
    complete(response{msg.result_int(), std::move(msg.body())});
  }

  void fail_connect(beast::error_code ec) {
    conn_->stream.close();
    if (ec == beast::error::timeout)
      return complete(timed_out());
    complete(failure{failure_kind::unavailable,
                     "Docker daemon is unreachable at "
                       + client_.address().display + ": " + ec.message()});
  }

  void fail_io(beast::error_code ec) {
    auto answered = parser_ && parser_->got_some();
    conn_->stream.close();
    if (ec == beast::error::timeout)
      return complete(timed_out());
    // The daemon closes idle keep-alive connections (e.g. on restart); we
    // only notice when reusing one. Nothing was answered, so the request
    // can go out again on a fresh connection.
    if (reused_ && !retried_ && !answered) {
      retried_ = true;
      parser_.reset();
      OSB_DEBUG(component, "", "",
                "retries " << opts_.target << " on a fresh connection after "
                           << ec.message());
      return open();
    }
    complete(failure{failure_kind::unavailable,
                     "connection to Docker daemon at "
                       + client_.address().display
                       + " failed: " + ec.message()});
  }

  failure timed_out() const {
    return failure{failure_kind::timeout,
                   "no answer from Docker daemon within "
                     + std::to_string(client_.timeout().count()) + "s"};
  }

  void complete(expected<response> x) {
    auto done = std::move(done_);
    done(std::move(x));
  }

  docker_client& client_;
  request_options opts_;
  response_handler done_;
  std::chrono::steady_clock::time_point deadline_;
  http::request<http::string_body> req_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::optional<net::ip::tcp::resolver> resolver_;
  std::optional<net::steady_timer> resolve_timer_;
  bool resolve_timed_out_ = false;
  connection_ptr conn_;
  bool reused_ = false;
  bool retried_ = false;
  /// Body bytes already passed to `on_body`.
  size_t body_seen_ = 0;
};

void docker_client::request(request_options opts, response_handler done) {
  if (addr_.kind == host_address::kind_t::unsupported) {
    net::post(ioc_, [done = std::move(done), msg = addr_.error] {
      done(failure{failure_kind::unavailable, msg});
    });
    return;
  }
  std::make_shared<exchange>(*this, std::move(opts), std::move(done))->run();
}

// -- operations ---------------------------------------------------------------

void docker_client::ping(callback<unit> cb) {
  unit_call(http::verb::get, std::string{docker::api_prefix} + "/_ping",
            "ping", {200}, std::move(cb));
}

void docker_client::unit_call(http::verb method, std::string target,
                              std::string what, std::vector<unsigned> ok,
                              callback<unit> cb) {
  unit_call(method, std::move(target), std::move(what), std::move(ok),
            std::move(cb), nullptr, {});
}

void docker_client::unit_call(http::verb method, std::string target,
                              std::string what, std::vector<unsigned> ok,
                              callback<unit> cb,
                              std::shared_ptr<const std::string> body,
                              std::string content_type) {
  auto p = track(std::move(cb));
  if (!p)
    return;
  net::post(ioc_, [this, p, method, target = std::move(target),
                   what = std::move(what), ok = std::move(ok), body,
                   content_type = std::move(content_type)]() mutable {
    request_options opts;
    opts.method = method;
    opts.target = std::move(target);
    if (body) {
      opts.body = *body;
      opts.content_type = std::move(content_type);
    }
    request(std::move(opts), [p, what = std::move(what),
                              ok = std::move(ok)](expected<response> r) {
      if (!r)
        return p->finish(with_context(what, r.error()));
      for (auto status : ok)
        if (r->status == status)
          return p->finish(unit{});
      p->finish(docker::http_failure(what, r->status, r->body));
    });
  });
}

void docker_client::create(const container_spec& spec,
                           callback<std::string> cb) {
  auto p = track(std::move(cb));
  if (!p)
    return;
  auto s = std::make_shared<container_spec>(spec);
  net::post(ioc_, [this, s, p] { do_create(s, p, false); });
}

void docker_client::do_create(std::shared_ptr<container_spec> spec,
                              std::shared_ptr<pending<std::string>> p,
                              bool pulled) {
  request_options opts;
  opts.method = http::verb::post;
  opts.target = docker::create_target(*spec);
  opts.body = docker::create_body(*spec);
  request(std::move(opts), [this, spec, p, pulled](expected<response> r) {
    constexpr std::string_view what = "create container";
    if (!r)
      return p->finish(with_context(what, r.error()));
    if (r->status == 201) {
      if (auto id = docker::parse_created_id(r->body))
        return p->finish(std::move(*id));
      return p->finish(failure{failure_kind::failed,
                               "create container: answer without Id"});
    }
    // A 404 also means a missing network; only a missing image is pulled.
    if (r->status == 404 && !pulled
        && docker::error_message(r->status, r->body).find("No such image")
             != std::string::npos)
      return do_pull(spec, p);
    p->finish(docker::http_failure(what, r->status, r->body));
  });
}

void docker_client::do_pull(std::shared_ptr<container_spec> spec,
                            std::shared_ptr<pending<std::string>> p) {
  auto ref = docker::parse_image_ref(spec->image);
  OSB_INFO(component, "", "",
           "pulls image " << ref.repository << ":" << ref.tag);
  request_options opts;
  opts.method = http::verb::post;
  opts.target = docker::pull_target(ref, spec->platform);
  if (!spec->registry_username.empty() || !spec->registry_password.empty())
    opts.registry_auth = docker::registry_auth(spec->registry_username,
                                               spec->registry_password);
  opts.streaming = true;
  if (spec->on_pull_progress) {
    // Throttled: a pull writes a line per layer every few hundred KB.
    struct progress_state {
      docker::pull_tracker tracker;
      std::chrono::steady_clock::time_point last{};
    };
    auto ps = std::make_shared<progress_state>();
    spec->on_pull_progress("Pulling image " + spec->image + ".");
    opts.on_body = [spec, ps](std::string_view chunk) {
      ps->tracker.feed(chunk);
      auto now = std::chrono::steady_clock::now();
      if (now - ps->last < std::chrono::milliseconds(250))
        return;
      ps->last = now;
      spec->on_pull_progress(ps->tracker.describe(spec->image));
    };
  }
  request(std::move(opts), [this, spec, p](expected<response> r) {
    auto fail = [&](failure_kind kind, const std::string& msg) {
      p->finish(
        failure{kind, "Failed to pull image " + spec->image + ": " + msg});
    };
    if (!r)
      return fail(r.error().kind, r.error().message);
    if (r->status != 200)
      return fail(failure_kind::failed,
                  docker::error_message(r->status, r->body));
    // The status line says 200 before the pull even began; errors arrive
    // in the stream.
    if (auto err = docker::pull_stream_error(r->body))
      return fail(failure_kind::failed, *err);
    do_create(spec, p, true);
  });
}

void docker_client::inspect(const std::string& id,
                            callback<container_info> cb) {
  auto p = track(std::move(cb));
  if (!p)
    return;
  net::post(ioc_, [this, p, target = docker::container_target(id, "/json")] {
    request_options opts;
    opts.target = target;
    request(std::move(opts), [p](expected<response> r) {
      constexpr std::string_view what = "inspect container";
      if (!r)
        return p->finish(with_context(what, r.error()));
      if (r->status != 200)
        return p->finish(docker::http_failure(what, r->status, r->body));
      auto info = docker::parse_inspect(r->body);
      if (!info)
        return p->finish(with_context(what, info.error()));
      p->finish(std::move(info));
    });
  });
}

void docker_client::list(const std::map<std::string, std::string>& labels,
                         callback<std::vector<container_info>> cb) {
  auto p = track(std::move(cb));
  if (!p)
    return;
  net::post(ioc_, [this, p, target = docker::list_target(labels)] {
    request_options opts;
    opts.target = target;
    request(std::move(opts), [p](expected<response> r) {
      constexpr std::string_view what = "list containers";
      if (!r)
        return p->finish(with_context(what, r.error()));
      if (r->status != 200)
        return p->finish(docker::http_failure(what, r->status, r->body));
      auto xs = docker::parse_list(r->body);
      if (!xs)
        return p->finish(with_context(what, xs.error()));
      p->finish(std::move(xs));
    });
  });
}

} // namespace detail

// -- docker_engine -----------------------------------------------------------

docker_engine::docker_engine(const std::string& docker_host,
                               std::chrono::seconds api_timeout,
                               int io_threads) {
  auto host = docker_host;
  if (host.empty())
    if (auto env = std::getenv("DOCKER_HOST"); env != nullptr)
      host = env;
  docker::host_address addr;
  if (host.rfind("ssh://", 0) == 0) {
    std::string destination, port, socket;
    if (docker::parse_ssh_url(host, destination, port, socket)) {
      tunnel_ = std::make_unique<docker::ssh_tunnel>(host);
      addr = docker::parse_host("unix://" + tunnel_->socket_path());
    } else {
      addr.kind = docker::host_address::kind_t::unsupported;
      addr.error = "Docker host " + host + " is not a valid ssh:// address";
    }
    addr.display = host;
  } else {
    addr = docker::parse_host(host);
  }
  impl_ = std::make_shared<detail::docker_client>(std::move(addr),
                                                  api_timeout, io_threads);
  impl_->launch();
}

docker_engine::~docker_engine() {
  shutdown();
}

void docker_engine::ping(callback<unit> cb) {
  impl_->ping(std::move(cb));
}

void docker_engine::create(const container_spec& spec,
                            callback<std::string> cb) {
  impl_->create(spec, std::move(cb));
}

void docker_engine::start(const std::string& id, callback<unit> cb) {
  // 304: already running.
  impl_->unit_call(detail::http::verb::post,
                   docker::container_target(id, "/start"),
                   "start container", {204, 304}, std::move(cb));
}

void docker_engine::pause(const std::string& id, callback<unit> cb) {
  impl_->unit_call(detail::http::verb::post,
                   docker::container_target(id, "/pause"),
                   "pause container", {204}, std::move(cb));
}

void docker_engine::unpause(const std::string& id, callback<unit> cb) {
  impl_->unit_call(detail::http::verb::post,
                   docker::container_target(id, "/unpause"),
                   "unpause container", {204}, std::move(cb));
}

void docker_engine::remove(const std::string& id, callback<unit> cb) {
  // 404: already gone, which is what the caller wants.
  impl_->unit_call(detail::http::verb::delete_,
                   docker::container_target(id, "?force=true"),
                   "remove container", {200, 204, 404}, std::move(cb));
}

void docker_engine::put_archive(const std::string& id,
                                 const std::string& path,
                                 std::shared_ptr<const std::string> tar,
                                 callback<unit> cb) {
  impl_->unit_call(detail::http::verb::put,
                   docker::container_target(id, "/archive?path="
                                                  + docker::url_encode(path)),
                   "upload archive", {200}, std::move(cb), std::move(tar),
                   "application/x-tar");
}

void docker_engine::inspect(const std::string& id,
                             callback<container_info> cb) {
  impl_->inspect(id, std::move(cb));
}

void docker_engine::list(const std::map<std::string, std::string>& labels,
                          callback<std::vector<container_info>> cb) {
  impl_->list(labels, std::move(cb));
}

void docker_engine::info(callback<daemon_info> cb) {
  impl_->value_call<daemon_info>(
    detail::http::verb::get, std::string{docker::api_prefix} + "/info", {},
    "daemon info", 200, [](std::string_view b) { return docker::parse_info(b); },
    std::move(cb));
}

void docker_engine::details(const std::string& id,
                             callback<container_details> cb) {
  impl_->value_call<container_details>(
    detail::http::verb::get, docker::container_target(id, "/json"), {},
    "inspect container", 200,
    [](std::string_view b) { return docker::parse_details(b); },
    std::move(cb));
}

void docker_engine::logs(const std::string& id, const log_query& q,
                          callback<std::string> cb) {
  impl_->value_call<std::string>(
    detail::http::verb::get, docker::logs_target(id, q), {},
    "container logs", 200,
    [](std::string_view b) -> expected<std::string> {
      return docker::demux_logs(b);
    },
    std::move(cb));
}

void docker_engine::inspect_volume(const std::string& name,
                                    callback<volume_info> cb) {
  impl_->value_call<volume_info>(
    detail::http::verb::get, docker::volume_target(name), {},
    "inspect volume " + name, 200,
    [](std::string_view b) { return docker::parse_volume(b); },
    std::move(cb));
}

void docker_engine::create_volume(
  const std::string& name, const std::map<std::string, std::string>& labels,
  callback<volume_info> cb) {
  impl_->value_call<volume_info>(
    detail::http::verb::post,
    std::string{docker::api_prefix} + "/volumes/create",
    docker::volume_create_body(name, labels), "create volume " + name, 201,
    [](std::string_view b) { return docker::parse_volume(b); },
    std::move(cb));
}

void docker_engine::remove_volume(const std::string& name,
                                   callback<unit> cb) {
  // 404: already gone; 409 (in use) stays a conflict for the caller.
  impl_->unit_call(detail::http::verb::delete_, docker::volume_target(name),
                   "remove volume " + name, {204, 404}, std::move(cb));
}

void docker_engine::list_volumes(
  const std::map<std::string, std::string>& labels,
  callback<std::vector<volume_info>> cb) {
  impl_->value_call<std::vector<volume_info>>(
    detail::http::verb::get, docker::volume_list_target(labels), {},
    "list volumes", 200,
    [](std::string_view b) { return docker::parse_volume_list(b); },
    std::move(cb));
}

void docker_engine::commit(const std::string& id, const std::string& repo,
                            const std::string& tag, callback<std::string> cb) {
  impl_->value_call<std::string>(
    detail::http::verb::post, docker::commit_target(id, repo, tag), "{}",
    "commit container", 201,
    [](std::string_view b) -> expected<std::string> {
      if (auto x = docker::parse_created_id(b))
        return std::move(*x);
      return failure{failure_kind::failed, "answer without Id"};
    },
    std::move(cb));
}

void docker_engine::image_exists(const std::string& ref, callback<bool> cb) {
  auto p = std::make_shared<callback<bool>>(std::move(cb));
  impl_->value_call<bool>(
    detail::http::verb::get, docker::image_target(ref, "/json"), {},
    "inspect image " + ref, 200,
    [](std::string_view) -> expected<bool> { return true; },
    [p](expected<bool> x) {
      if (!x && x.error().kind == failure_kind::not_found)
        return (*p)(false);
      (*p)(std::move(x));
    });
}

void docker_engine::remove_image(const std::string& ref, callback<unit> cb) {
  // 404: already gone; 409 (used by a container) stays a conflict.
  impl_->unit_call(detail::http::verb::delete_, docker::image_target(ref, ""),
                   "remove image " + ref, {200, 404}, std::move(cb));
}

void docker_engine::list_images(
  const std::string& repository,
  const std::map<std::string, std::string>& labels,
  callback<std::vector<std::string>> cb) {
  impl_->value_call<std::vector<std::string>>(
    detail::http::verb::get, docker::image_list_target(repository, labels), {},
    "list images", 200,
    [](std::string_view b) { return docker::parse_image_tags(b); },
    std::move(cb));
}

void docker_engine::shutdown() {
  impl_->shutdown();
  tunnel_.reset();
}

const std::string& docker_engine::host() const {
  return impl_->address().display;
}

engine_ptr make_docker_engine(const std::string& docker_host,
                                             std::chrono::seconds api_timeout,
                                             int io_threads) {
  return std::make_shared<docker_engine>(docker_host, api_timeout,
                                          io_threads);
}

} // namespace osb::runtimes::docker
