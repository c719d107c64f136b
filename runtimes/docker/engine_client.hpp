#pragma once

// The Engine API client behind docker_engine: an I/O context run by its own
// threads, a pool of keep-alive connections and one call per operation.
// Internal to runtimes/docker/ (the only header with Beast types there).

#include "base/log.hpp"
#include "runtimes/docker/docker_api.hpp"
#include "runtimes/docker/engine.hpp"

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
/// the Beast machinery (in engine_client.cpp).
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
inline failure with_context(std::string_view what, const failure& f) {
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

} // namespace detail

} // namespace osb::runtimes::docker
