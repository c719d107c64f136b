#include "net/egress/dns_proxy.hpp"

#include "base/log.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace osb::egress {

namespace asio = boost::asio;
using udp = asio::ip::udp;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

// Replies larger than this arrive truncated to the client (TC set), which
// then asks again over TCP. Keeps the per-query buffer small.
constexpr size_t udp_buffer_size = 4096;

constexpr auto tcp_idle_timeout = std::chrono::seconds{10};

asio::ip::address to_asio(const ip_address& x) {
  if (x.v6) {
    asio::ip::address_v6::bytes_type b;
    std::memcpy(b.data(), x.bytes, 16);
    return asio::ip::address_v6{b};
  }
  asio::ip::address_v4::bytes_type b;
  std::memcpy(b.data(), x.bytes, 4);
  return asio::ip::address_v4{b};
}

} // namespace

dns_verdict classify_query(const uint8_t* data, size_t size,
                           const decide_fn& decide) {
  dns_verdict v;
  auto h = dns::parse_header(data, size);
  if (!h || h->is_response())
    return v; // drop: runts and stray responses get nothing
  if (h->opcode() != 0) {
    v.kind = dns_verdict::reply;
    v.answer = dns::make_reply(data, size, 4); // NOTIMP
    return v;
  }
  auto q = dns::parse_question(data, size);
  // One question only: a second one could smuggle a name past the policy.
  if (!q || h->qdcount != 1) {
    v.kind = dns_verdict::reply;
    v.answer = dns::make_reply(data, size, dns::rcode_formerr);
    return v;
  }
  v.name = std::move(q->name);
  v.qtype = q->qtype;
  if (!decide(v.name)) {
    v.kind = dns_verdict::reply;
    v.answer = dns::make_reply(data, size, dns::rcode_nxdomain);
    return v;
  }
  v.kind = dns_verdict::forward;
  return v;
}

bool answers(const uint8_t* query, size_t query_size, const uint8_t* response,
             size_t response_size) {
  auto qh = dns::parse_header(query, query_size);
  auto rh = dns::parse_header(response, response_size);
  if (!qh || !rh || qh->id != rh->id || !rh->is_response())
    return false;
  auto q = dns::parse_question(query, query_size);
  auto r = dns::parse_question(response, response_size);
  // Some servers omit the question in error replies: accept that, but never
  // a different question.
  if (!r)
    return rh->qdcount == 0;
  return q && q->name == r->name && q->qtype == r->qtype
         && q->qclass == r->qclass;
}

struct dns_proxy::impl : std::enable_shared_from_this<impl> {
  impl(asio::io_context& io, options opts, decide_fn decide, learn_fn learn)
    : io(io),
      opts(std::move(opts)),
      decide(std::move(decide)),
      learn(std::move(learn)) {
  }

  using reply_fn = std::function<void(std::vector<uint8_t>)>;

  void mark(int fd) {
    if (opts.mark == 0)
      return;
    if (::setsockopt(fd, SOL_SOCKET, SO_MARK, &opts.mark, sizeof(opts.mark))
          != 0
        && !mark_warned) {
      mark_warned = true;
      OSB_WARN("egress", "", "",
               "cannot set SO_MARK on upstream sockets: "
                 << std::strerror(errno));
    }
  }

  std::chrono::milliseconds per_attempt() const {
    auto n = std::max<size_t>(1, opts.upstreams.size());
    return std::max(std::chrono::milliseconds{1000},
                    opts.timeout / static_cast<int>(n));
  }

  /// Hands a final upstream answer to the client, learning its addresses.
  void deliver(const std::string& name, const uint8_t* data, size_t size,
               const reply_fn& reply) {
    auto h = dns::parse_header(data, size);
    if (h && h->rcode() == dns::rcode_noerror && learn) {
      if (auto xs = dns::extract_addresses(data, size); xs && !xs->empty())
        learn(name, *xs);
    }
    reply(std::vector<uint8_t>(data, data + size));
  }

  void serve(const uint8_t* data, size_t size, bool over_tcp,
             const reply_fn& reply, const std::function<void()>& drop);

  asio::io_context& io;
  options opts;
  decide_fn decide;
  learn_fn learn;
  counters stats;
  size_t inflight = 0;
  size_t tcp_clients = 0;
  bool mark_warned = false;
};

namespace {

using impl_ptr = std::shared_ptr<dns_proxy::impl>;
using reply_fn = std::function<void(std::vector<uint8_t>)>;

void start_tcp_exchange(impl_ptr proxy, std::vector<uint8_t> query,
                        std::string name, reply_fn reply);

// One query forwarded over UDP, trying the upstreams in order. For TCP
// clients a truncated answer is fetched again over TCP (UDP first because
// some resolvers, e.g. cloud VM resolvers, do not speak TCP at all).
class udp_exchange : public std::enable_shared_from_this<udp_exchange> {
public:
  udp_exchange(impl_ptr proxy, std::vector<uint8_t> query, std::string name,
               reply_fn reply, bool client_tcp)
    : proxy_(std::move(proxy)),
      query_(std::move(query)),
      name_(std::move(name)),
      reply_(std::move(reply)),
      socket_(proxy_->io),
      timer_(proxy_->io),
      client_tcp_(client_tcp) {
  }

  void start() {
    ++proxy_->inflight;
    attempt();
  }

private:
  void attempt() {
    auto& ups = proxy_->opts.upstreams;
    while (index_ < ups.size()) {
      auto& u = ups[index_];
      error_code ec;
      socket_.close(ec);
      socket_.open(u.address.v6 ? udp::v6() : udp::v4(), ec);
      if (!ec) {
        proxy_->mark(socket_.native_handle());
        socket_.connect({to_asio(u.address), u.port}, ec);
      }
      if (!ec)
        socket_.send(asio::buffer(query_), 0, ec);
      if (ec) {
        ++index_;
        continue;
      }
      auto gen = ++generation_;
      timer_.expires_after(proxy_->per_attempt());
      timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
        if (!ec && gen == self->generation_ && !self->done_) {
          error_code ignored;
          self->socket_.cancel(ignored);
        }
      });
      receive(gen);
      return;
    }
    ++proxy_->stats.failed;
    finish(dns::make_reply(query_.data(), query_.size(),
                           dns::rcode_servfail));
  }

  void receive(uint64_t gen) {
    buf_.resize(udp_buffer_size + 1);
    socket_.async_receive(
      asio::buffer(buf_), [self = shared_from_this(), gen](error_code ec,
                                                           size_t n) {
        if (self->done_ || gen != self->generation_)
          return;
        if (ec) {
          // Timeout (cancelled), ICMP unreachable (refused): next upstream.
          self->next();
          return;
        }
        auto data = self->buf_.data();
        if (!answers(self->query_.data(), self->query_.size(), data, n)) {
          self->receive(gen); // stray or spoofed: keep waiting
          return;
        }
        auto rcode = dns::parse_header(data, n)->rcode();
        if (rcode != dns::rcode_noerror && rcode != dns::rcode_nxdomain) {
          self->next();
          return;
        }
        auto truncated = n > udp_buffer_size
                         || dns::parse_header(data, n)->truncated();
        if (truncated && self->client_tcp_) {
          self->done_ = true;
          self->cleanup();
          start_tcp_exchange(self->proxy_, std::move(self->query_),
                             std::move(self->name_), std::move(self->reply_));
          return;
        }
        if (n > udp_buffer_size) {
          self->finish(dns::make_truncated(data, n));
          return;
        }
        self->done_ = true;
        auto reply = self->reply_;
        self->cleanup();
        self->proxy_->deliver(self->name_, data, n, reply);
      });
  }

  void next() {
    ++generation_;
    ++index_;
    error_code ignored;
    timer_.cancel(ignored);
    attempt();
  }

  void cleanup() {
    error_code ignored;
    timer_.cancel(ignored);
    socket_.close(ignored);
    --proxy_->inflight;
  }

  void finish(std::vector<uint8_t> answer) {
    done_ = true;
    cleanup();
    reply_(std::move(answer));
  }

  impl_ptr proxy_;
  std::vector<uint8_t> query_;
  std::string name_;
  reply_fn reply_;
  udp::socket socket_;
  asio::steady_timer timer_;
  std::vector<uint8_t> buf_;
  size_t index_ = 0;
  uint64_t generation_ = 0;
  bool done_ = false;
  bool client_tcp_;
};

// One query forwarded over TCP (for TCP clients whose answer did not fit).
class tcp_exchange : public std::enable_shared_from_this<tcp_exchange> {
public:
  tcp_exchange(impl_ptr proxy, std::vector<uint8_t> query, std::string name,
               reply_fn reply)
    : proxy_(std::move(proxy)),
      query_(std::move(query)),
      name_(std::move(name)),
      reply_(std::move(reply)),
      socket_(proxy_->io),
      timer_(proxy_->io) {
    framed_.reserve(query_.size() + 2);
    framed_.push_back(static_cast<uint8_t>(query_.size() >> 8));
    framed_.push_back(static_cast<uint8_t>(query_.size() & 0xff));
    framed_.insert(framed_.end(), query_.begin(), query_.end());
  }

  void start() {
    ++proxy_->inflight;
    attempt();
  }

private:
  void attempt() {
    auto& ups = proxy_->opts.upstreams;
    while (index_ < ups.size()) {
      auto& u = ups[index_];
      error_code ec;
      socket_.close(ec);
      socket_.open(u.address.v6 ? tcp::v6() : tcp::v4(), ec);
      if (ec) {
        ++index_;
        continue;
      }
      proxy_->mark(socket_.native_handle());
      auto gen = ++generation_;
      timer_.expires_after(proxy_->per_attempt());
      timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
        if (!ec && gen == self->generation_ && !self->done_) {
          error_code ignored;
          self->socket_.close(ignored);
        }
      });
      socket_.async_connect(
        {to_asio(u.address), u.port},
        [self = shared_from_this(), gen](error_code ec) {
          if (self->done_ || gen != self->generation_)
            return;
          if (ec)
            return self->next();
          asio::async_write(self->socket_, asio::buffer(self->framed_),
                            [self, gen](error_code ec, size_t) {
                              if (self->done_ || gen != self->generation_)
                                return;
                              if (ec)
                                return self->next();
                              self->read_length(gen);
                            });
        });
      return;
    }
    ++proxy_->stats.failed;
    finish(dns::make_reply(query_.data(), query_.size(),
                           dns::rcode_servfail));
  }

  void read_length(uint64_t gen) {
    asio::async_read(socket_, asio::buffer(len_),
                     [self = shared_from_this(), gen](error_code ec, size_t) {
                       if (self->done_ || gen != self->generation_)
                         return;
                       if (ec)
                         return self->next();
                       size_t n = (size_t{self->len_[0]} << 8) | self->len_[1];
                       self->buf_.resize(n);
                       self->read_body(gen);
                     });
  }

  void read_body(uint64_t gen) {
    asio::async_read(socket_, asio::buffer(buf_),
                     [self = shared_from_this(), gen](error_code ec, size_t) {
                       if (self->done_ || gen != self->generation_)
                         return;
                       if (ec)
                         return self->next();
                       self->on_response();
                     });
  }

  void on_response() {
    auto data = buf_.data();
    auto n = buf_.size();
    if (!answers(query_.data(), query_.size(), data, n))
      return next();
    auto rcode = dns::parse_header(data, n)->rcode();
    if (rcode != dns::rcode_noerror && rcode != dns::rcode_nxdomain)
      return next();
    done_ = true;
    auto reply = reply_;
    cleanup();
    proxy_->deliver(name_, data, n, reply);
  }

  void next() {
    ++generation_;
    ++index_;
    error_code ignored;
    timer_.cancel(ignored);
    attempt();
  }

  void cleanup() {
    error_code ignored;
    timer_.cancel(ignored);
    socket_.close(ignored);
    --proxy_->inflight;
  }

  void finish(std::vector<uint8_t> answer) {
    done_ = true;
    cleanup();
    reply_(std::move(answer));
  }

  impl_ptr proxy_;
  std::vector<uint8_t> query_;
  std::vector<uint8_t> framed_;
  std::string name_;
  reply_fn reply_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  std::array<uint8_t, 2> len_{};
  std::vector<uint8_t> buf_;
  size_t index_ = 0;
  uint64_t generation_ = 0;
  bool done_ = false;
};

void start_tcp_exchange(impl_ptr proxy, std::vector<uint8_t> query,
                        std::string name, reply_fn reply) {
  std::make_shared<tcp_exchange>(std::move(proxy), std::move(query),
                                 std::move(name), std::move(reply))
    ->start();
}

class udp_listener : public std::enable_shared_from_this<udp_listener> {
public:
  udp_listener(impl_ptr proxy, udp::socket socket)
    : proxy_(std::move(proxy)), socket_(std::move(socket)) {
    buf_.resize(udp_buffer_size + 1);
  }

  void start() {
    socket_.async_receive_from(
      asio::buffer(buf_), peer_,
      [self = shared_from_this()](error_code ec, size_t n) {
        if (ec == asio::error::operation_aborted)
          return;
        if (!ec && n <= udp_buffer_size) {
          auto client = self->peer_;
          std::weak_ptr<udp_listener> weak = self;
          auto reply = [weak, client](std::vector<uint8_t> msg) {
            auto l = weak.lock();
            if (!l || msg.empty())
              return;
            auto data = std::make_shared<std::vector<uint8_t>>(std::move(msg));
            l->socket_.async_send_to(asio::buffer(*data), client,
                                     [data](error_code, size_t) {});
          };
          self->proxy_->serve(self->buf_.data(), n, false, reply, [] {});
        }
        self->start();
      });
  }

private:
  impl_ptr proxy_;
  udp::socket socket_;
  udp::endpoint peer_;
  std::vector<uint8_t> buf_;
};

class tcp_client : public std::enable_shared_from_this<tcp_client> {
public:
  tcp_client(impl_ptr proxy, tcp::socket socket)
    : proxy_(std::move(proxy)),
      socket_(std::move(socket)),
      idle_(proxy_->io) {
    ++proxy_->tcp_clients;
  }

  ~tcp_client() {
    --proxy_->tcp_clients;
  }

  void start() {
    read_length();
  }

private:
  void arm_idle() {
    idle_.expires_after(tcp_idle_timeout);
    idle_.async_wait([weak = weak_from_this()](error_code ec) {
      if (auto self = weak.lock(); self && !ec) {
        error_code ignored;
        self->socket_.close(ignored);
      }
    });
  }

  void read_length() {
    arm_idle();
    asio::async_read(socket_, asio::buffer(len_),
                     [self = shared_from_this()](error_code ec, size_t) {
                       if (ec)
                         return self->close();
                       size_t n = (size_t{self->len_[0]} << 8) | self->len_[1];
                       if (n == 0)
                         return self->close();
                       self->msg_.resize(n);
                       asio::async_read(self->socket_,
                                        asio::buffer(self->msg_),
                                        [self](error_code ec, size_t) {
                                          if (ec)
                                            return self->close();
                                          self->handle();
                                        });
                     });
  }

  void handle() {
    error_code ignored;
    idle_.cancel(ignored);
    auto reply = [self = shared_from_this()](std::vector<uint8_t> msg) {
      self->write(std::move(msg));
    };
    proxy_->serve(msg_.data(), msg_.size(), true, reply,
                  [self = shared_from_this()] { self->close(); });
  }

  void write(std::vector<uint8_t> msg) {
    if (msg.empty() || msg.size() > 65535)
      return close();
    auto framed = std::make_shared<std::vector<uint8_t>>();
    framed->reserve(msg.size() + 2);
    framed->push_back(static_cast<uint8_t>(msg.size() >> 8));
    framed->push_back(static_cast<uint8_t>(msg.size() & 0xff));
    framed->insert(framed->end(), msg.begin(), msg.end());
    asio::async_write(socket_, asio::buffer(*framed),
                      [self = shared_from_this(), framed](error_code ec,
                                                          size_t) {
                        if (ec)
                          return self->close();
                        self->read_length();
                      });
  }

  void close() {
    error_code ignored;
    idle_.cancel(ignored);
    socket_.close(ignored);
  }

  impl_ptr proxy_;
  tcp::socket socket_;
  asio::steady_timer idle_;
  std::array<uint8_t, 2> len_{};
  std::vector<uint8_t> msg_;
};

void accept_loop(impl_ptr proxy, std::shared_ptr<tcp::acceptor> acceptor) {
  acceptor->async_accept([proxy, acceptor](error_code ec, tcp::socket s) {
    if (ec == asio::error::operation_aborted)
      return;
    if (!ec) {
      if (proxy->tcp_clients >= proxy->opts.max_tcp_clients) {
        error_code ignored;
        s.close(ignored);
      } else {
        std::make_shared<tcp_client>(proxy, std::move(s))->start();
      }
    }
    accept_loop(proxy, acceptor);
  });
}

} // namespace

void dns_proxy::impl::serve(const uint8_t* data, size_t size, bool over_tcp,
                            const reply_fn& reply,
                            const std::function<void()>& drop) {
  ++stats.queries;
  auto v = classify_query(data, size, decide);
  switch (v.kind) {
    case dns_verdict::drop:
      drop();
      return;
    case dns_verdict::reply:
      if (dns::parse_header(v.answer.data(), v.answer.size())->rcode()
          == dns::rcode_nxdomain) {
        ++stats.denied;
        OSB_DEBUG("egress", "", "", "denied " << v.name);
      }
      reply(std::move(v.answer));
      return;
    case dns_verdict::forward:
      break;
  }
  if (inflight >= opts.max_inflight || opts.upstreams.empty()) {
    ++stats.failed;
    reply(dns::make_reply(data, size, dns::rcode_servfail));
    return;
  }
  ++stats.forwarded;
  std::vector<uint8_t> query(data, data + size);
  auto self = shared_from_this();
  std::make_shared<udp_exchange>(self, std::move(query), std::move(v.name),
                                 reply, over_tcp)
    ->start();
}

dns_proxy::dns_proxy(asio::io_context& io, options opts, decide_fn decide,
                     learn_fn learn)
  : impl_(std::make_shared<impl>(io, std::move(opts), std::move(decide),
                                 std::move(learn))) {
}

dns_proxy::~dns_proxy() = default;

const dns_proxy::counters& dns_proxy::stats() const {
  return impl_->stats;
}

bool dns_proxy::start(std::string* error) {
  auto bind_pair = [&](const asio::ip::address& addr,
                       std::string* err) -> bool {
    error_code ec;
    udp::socket us{impl_->io};
    us.open(addr.is_v6() ? udp::v6() : udp::v4(), ec);
    if (!ec && addr.is_v6())
      us.set_option(asio::ip::v6_only{true}, ec);
    if (!ec)
      us.bind({addr, impl_->opts.port}, ec);
    auto acceptor = std::make_shared<tcp::acceptor>(impl_->io);
    if (!ec)
      acceptor->open(addr.is_v6() ? tcp::v6() : tcp::v4(), ec);
    if (!ec)
      acceptor->set_option(tcp::acceptor::reuse_address{true}, ec);
    if (!ec && addr.is_v6())
      acceptor->set_option(asio::ip::v6_only{true}, ec);
    if (!ec)
      acceptor->bind({addr, impl_->opts.port}, ec);
    if (!ec)
      acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      if (err)
        *err = "cannot listen on " + addr.to_string() + ":"
               + std::to_string(impl_->opts.port) + ": " + ec.message();
      return false;
    }
    std::make_shared<udp_listener>(impl_, std::move(us))->start();
    accept_loop(impl_, acceptor);
    return true;
  };
  if (!bind_pair(asio::ip::make_address("127.0.0.1"), error))
    return false;
  std::string ignored;
  if (!bind_pair(asio::ip::make_address("::1"), &ignored))
    OSB_DEBUG("egress", "", "", "DNS proxy not on ::1 (" << ignored << ")");
  return true;
}

} // namespace osb::egress
