// The HTTP server's acceptor: connections, their spread over the I/O
// threads, and the connection limit (see listener.hpp).

#include "http/listener.hpp"

#include "base/log.hpp"

#include <limits>
#include <vector>

namespace osb::http::detail {

namespace {

/// Pause before accepting again after an accept error (e.g. EMFILE), so that
/// a persistent error does not spin a thread.
constexpr auto accept_retry_delay = std::chrono::milliseconds(50);

} // namespace

listener::listener(std::shared_ptr<shared_state> state)
  : state_(std::move(state)),
    acceptor_(*state_->iocs.front()),
    retry_(*state_->iocs.front()) {
  // nop
}

std::string listener::open(const tcp::endpoint& ep, int backlog) {
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
  acceptor_.listen(backlog > 0 ? backlog
                               : asio::socket_base::max_listen_connections,
                   ec);
  if (ec)
    return "listen: " + ec.message();
  return {};
}

uint16_t listener::port() const {
  error_code ec;
  auto ep = acceptor_.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void listener::run() {
  do_accept();
}

void listener::close() {
  error_code ec;
  acceptor_.close(ec);
  retry_.cancel();
}

void listener::do_accept() {
  // The new connection lives on the next I/O thread's io_context.
  auto& ioc = *state_->iocs[next_++ % state_->iocs.size()];
  acceptor_.async_accept(ioc.get_executor(),
                         beast::bind_front_handler(&listener::on_accept,
                                                   shared_from_this()));
}

void listener::on_accept(error_code ec, socket_type socket) {
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

bool listener::evict_one() {
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::shared_ptr<session> victim;
    // Every session locked here is released after the lock: the last
    // reference to a session may be ours, and its destructor takes the lock.
    std::vector<std::shared_ptr<session>> live;
    {
      std::lock_guard<std::mutex> guard{state_->sessions_mtx};
      auto oldest = std::numeric_limits<int64_t>::max();
      for (auto& weak : state_->sessions) {
        auto s = weak.lock();
        if (!s)
          continue;
        if (s->phase() == conn_phase::waiting) {
          if (auto t = s->waiting_since(); t < oldest) {
            oldest = t;
            victim = s;
          }
        }
        live.push_back(std::move(s));
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

} // namespace osb::http::detail
