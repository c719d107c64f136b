// The HTTP server's life: binds, starts the I/O threads, and stops
// everything (acceptor, connections, queued handlers) so that nothing
// outlives stop(). The listener and the connections are in listener.cpp
// and session.cpp (see session.hpp for the whole structure).

#include "http/server.hpp"

#include "base/log.hpp"
#include "http/listener.hpp"
#include "http/session.hpp"
#include "net/proxy.hpp"

#include <boost/asio/post.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <thread>

namespace osb::http {

namespace {

using namespace detail;

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

  server_stats stats() const override {
    server_stats result;
    result.open = state_->num_open.load();
    result.evicted = state_->num_evicted.load();
    // Counted outside the lock: the last reference to a session may be
    // ours, and its destructor takes the lock.
    std::vector<std::shared_ptr<session>> live;
    {
      std::lock_guard<std::mutex> guard{state_->sessions_mtx};
      for (auto& weak : state_->sessions)
        if (auto s = weak.lock())
          live.push_back(std::move(s));
    }
    for (auto& s : live)
      if (s->phase() == conn_phase::waiting)
        ++result.waiting;
    return result;
  }

  void start_threads() {
    threads_.reserve(state_->iocs.size());
    for (auto& ioc : state_->iocs)
      threads_.emplace_back([st = state_, ctx = ioc.get()] { ctx->run(); });
  }

  void stop_accepting() override {
    // The accept chain runs on the first io_context: close it there.
    asio::post(*state_->iocs.front(), [lst = listener_] { lst->close(); });
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

server_options::server_options() : streamed(&net::is_proxy_path) {
  // nop
}

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
