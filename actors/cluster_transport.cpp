#include "actors/cluster_transport.hpp"

#include <caf/actor_system.hpp>
#include <caf/detail/socket_guard.hpp>
#include <caf/function_view.hpp>
#include <caf/io/basp_broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor_impl.hpp>
#include <caf/io/network/default_multiplexer.hpp>
#include <caf/io/network/doorman_impl.hpp>
#include <caf/io/network/native_socket.hpp>
#include <caf/io/network/stream_impl.hpp>
#include <caf/io/scribe.hpp>
#include <caf/openssl/session.hpp>
#include <caf/policy/tcp.hpp>
#include <caf/sec.hpp>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <memory>

#include "actors/basp_guard.hpp"
#include "actors/error.hpp"
#include "base/log.hpp"

namespace osb {

namespace {

namespace net = caf::io::network;
using native_socket = net::native_socket;
using default_mpx = net::default_multiplexer;

constexpr const char* component = "cluster";

/// Reads a payload in pieces of at most this size, so that memory grows
/// with the bytes a peer actually sent, not with what it announced.
constexpr size_t read_chunk = 64 * 1024;

/// CAF's TLS read/write policy (libcaf_openssl keeps its own private): the
/// session verifies the peer's certificate in SSL_accept / SSL_connect.
///
/// Every call starts with an empty OpenSSL error queue. CAF 0.17's session
/// leaves a failed connection's errors on the (per-thread) queue, and
/// SSL_get_error() then reports the next "would block" of any other
/// connection of the I/O thread as a failure: one peer failing its TLS
/// handshake would cut the links to the good ones.
class tls_policy {
public:
  explicit tls_policy(caf::openssl::session_ptr session)
    : session_(std::move(session)) {
    // nop
  }

  net::rw_state read_some(size_t& result, native_socket fd, void* buf,
                          size_t len) {
    ERR_clear_error();
    return session_->read_some(result, fd, buf, len);
  }

  net::rw_state write_some(size_t& result, native_socket fd, const void* buf,
                           size_t len) {
    ERR_clear_error();
    return session_->write_some(result, fd, buf, len);
  }

  bool must_read_more(native_socket fd, size_t threshold) {
    return session_->must_read_more(fd, threshold);
  }

private:
  caf::openssl::session_ptr session_;
};

/// A connection of the cluster port: CAF's scribe (a stream with a TCP or
/// TLS policy) that assembles each BASP frame itself and hands it to the
/// broker only after its basp_guard accepted it.
template <class Policy>
class guarded_scribe : public caf::io::scribe {
public:
  template <class... Ts>
  guarded_scribe(default_mpx& mpx, native_socket fd,
                 std::shared_ptr<const basp_policy> policy, bool accepted,
                 bool tls, Ts&&... xs)
    : caf::io::scribe(net::conn_hdl_from_socket(fd)),
      stream_(mpx, fd, std::forward<Ts>(xs)...),
      guard_(mpx.system(), std::move(policy), accepted),
      accepted_(accepted),
      tls_(tls) {
    // nop
  }

  ~guarded_scribe() override {
    // The peer never got as far as BASP: with TLS its handshake failed
    // (most likely a certificate not of the cluster's CA, or none).
    if (num_frames_ == 0 && refusal_.empty())
      OSB_WARN(component, "", "",
               "cluster port: the connection "
                 << (accepted_ ? "from " : "to ") << addr() << ":" << port()
                 << " closed before a BASP handshake"
                 << (tls_ ? " (TLS handshake failed or not a cluster node; "
                            "peers need a certificate of the cluster's CA)"
                          : " (not a cluster node?)"));
  }

  void configure_read(caf::io::receive_policy::config cfg) override {
    // BASP asks for exactly one header or one payload at a time; the guard
    // has checked the payload's length before the broker asks for it.
    want_ = cfg.second;
    exactly_ = cfg.first == caf::io::receive_policy_flag::exactly;
    auto limit = std::max<size_t>(guard_.max_payload(),
                                  caf::io::basp::header_size);
    if (want_ > limit) {
      if (refusal_.empty())
        refusal_ = "a read of " + std::to_string(want_)
                   + " bytes exceeds the bound of " + std::to_string(limit)
                   + " bytes";
      want_ = caf::io::basp::header_size;
    }
    stream_.configure_read({cfg.first, std::min(want_, read_chunk)});
    if (!launched_)
      launch();
  }

  bool consume(caf::execution_unit* ctx, const void* buf,
               size_t num_bytes) override {
    if (detached())
      return false;
    if (!refusal_.empty())
      return refuse(ctx);
    auto first = static_cast<const char*>(buf);
    frame_.insert(frame_.end(), first, first + num_bytes);
    if (exactly_ && frame_.size() < want_) {
      auto left = want_ - frame_.size();
      stream_.configure_read(
        caf::io::receive_policy::exactly(std::min(left, read_chunk)));
      return true;
    }
    auto why = guard_.awaiting_payload() ? guard_.on_payload(frame_)
                                         : guard_.on_header(frame_);
    if (!why.empty()) {
      refusal_ = std::move(why);
      return refuse(ctx);
    }
    ++num_frames_;
    // scribe::consume hands rd_buf() (the frame) to the broker.
    auto result = caf::io::scribe::consume(ctx, frame_.data(), frame_.size());
    frame_.clear();
    if (frame_.capacity() > read_chunk)
      std::vector<char>{}.swap(frame_);
    return result;
  }

  void ack_writes(bool enable) override {
    stream_.ack_writes(enable);
  }

  std::vector<char>& wr_buf() override {
    return stream_.wr_buf();
  }

  std::vector<char>& rd_buf() override {
    return frame_;
  }

  void graceful_shutdown() override {
    stream_.graceful_shutdown();
    detach(&stream_.backend(), false);
  }

  void flush() override {
    stream_.flush(this);
  }

  std::string addr() const override {
    auto x = net::remote_addr_of_fd(stream_.fd());
    return x ? *x : std::string{};
  }

  uint16_t port() const override {
    auto x = net::remote_port_of_fd(stream_.fd());
    return x ? *x : 0;
  }

  void add_to_loop() override {
    stream_.activate(this);
  }

  void remove_from_loop() override {
    stream_.passivate();
  }

private:
  void launch() {
    launched_ = true;
    stream_.start(this);
    // A TLS session needs the socket to be writable to drive its
    // handshake (as CAF's OpenSSL scribe does).
    if (tls_)
      stream_.force_empty_write(this);
  }

  /// Closes the connection as a failed one: the broker cleans up the peer
  /// (node down for its proxies) and the socket goes with this scribe.
  bool refuse(caf::execution_unit* ctx) {
    OSB_WARN(component, "", "",
             "cluster port closes the connection "
               << (accepted_ ? "from " : "to ") << addr() << ":" << port()
               << ": " << refusal_);
    io_failure(ctx, net::operation::read);
    return false;
  }

  net::stream_impl<Policy> stream_;
  basp_guard guard_;
  bool accepted_;
  bool tls_;
  bool launched_ = false;
  bool exactly_ = true;
  size_t want_ = caf::io::basp::header_size;
  /// The frame being assembled (header or payload).
  std::vector<char> frame_;
  /// Why the connection closes; empty while it is fine.
  std::string refusal_;
  /// Frames handed to the broker.
  size_t num_frames_ = 0;
};

/// Makes the scribe of a connected socket; closes the socket on failure.
caf::expected<caf::io::scribe_ptr>
make_scribe(default_mpx& mpx, native_socket fd,
            std::shared_ptr<const basp_policy> policy, bool accepted,
            bool tls) {
  caf::detail::socket_guard guard{fd};
  net::nonblocking(fd, true);
  net::keepalive(fd, true);
  caf::io::scribe_ptr result;
  if (tls) {
    ERR_clear_error(); // see tls_policy
    auto session = caf::openssl::make_session(mpx.system(), fd, accepted);
    if (!session)
      return caf::make_error(caf::sec::cannot_connect_to_node,
                             "TLS session setup failed");
    result = caf::make_counted<guarded_scribe<tls_policy>>(
      mpx, fd, std::move(policy), accepted, true, std::move(session));
  } else {
    result = caf::make_counted<guarded_scribe<caf::policy::tcp>>(
      mpx, fd, std::move(policy), accepted, false);
  }
  guard.release();
  return result;
}

/// The cluster port's acceptor: CAF's, with our scribes.
class guarded_doorman : public net::doorman_impl {
public:
  guarded_doorman(default_mpx& mpx, native_socket fd,
                  std::shared_ptr<const basp_policy> policy, bool tls)
    : net::doorman_impl(mpx, fd), policy_(std::move(policy)), tls_(tls) {
    // nop
  }

  bool new_connection() override {
    if (detached())
      return false;
    auto& mpx = acceptor_.backend();
    auto scribe = make_scribe(mpx, acceptor_.accepted_socket(), policy_,
                              true, tls_);
    if (!scribe) {
      // Same words as a scribe that closes later: whether a bad TLS
      // handshake fails here or after the accept is a matter of timing.
      OSB_WARN(component, "", "",
               "cluster port: a connection closed before a BASP handshake ("
                 << mpx.system().render(scribe.error())
                 << (tls_ ? "; TLS handshake failed or not a cluster node; "
                            "peers need a certificate of the cluster's CA"
                          : "")
                 << ")");
      return false;
    }
    auto hdl = (*scribe)->hdl();
    parent()->add_scribe(std::move(*scribe));
    return doorman::new_connection(&mpx, hdl);
  }

private:
  std::shared_ptr<const basp_policy> policy_;
  bool tls_;
};

/// CAF's middleman actor with our connections.
class transport_actor : public caf::io::middleman_actor_impl {
public:
  transport_actor(caf::actor_config& cfg, caf::actor broker,
                  std::shared_ptr<const basp_policy> policy, bool tls)
    : caf::io::middleman_actor_impl(cfg, std::move(broker)),
      policy_(std::move(policy)),
      tls_(tls) {
    // nop
  }

  const char* name() const override {
    return "cluster_transport";
  }

protected:
  caf::expected<caf::io::scribe_ptr> connect(const std::string& host,
                                             uint16_t port) override {
    auto fd = net::new_tcp_connection(host, port);
    if (!fd)
      return std::move(fd.error());
    return make_scribe(mpx(), *fd, policy_, false, tls_);
  }

  caf::expected<caf::io::doorman_ptr> open(uint16_t port, const char* addr,
                                           bool reuse) override {
    auto fd = net::new_tcp_acceptor_impl(port, addr, reuse);
    if (!fd)
      return std::move(fd.error());
    return caf::make_counted<guarded_doorman>(mpx(), *fd, policy_, tls_);
  }

private:
  default_mpx& mpx() {
    return static_cast<default_mpx&>(system().middleman().backend());
  }

  std::shared_ptr<const basp_policy> policy_;
  bool tls_;
};

/// The OpenSSL error queue as text.
std::string ssl_errors() {
  std::string result;
  while (auto e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!result.empty())
      result += "; ";
    result += buf;
  }
  return result.empty() ? "unknown OpenSSL error" : result;
}

} // namespace

caf::io::middleman_actor spawn_transport(caf::actor_system& sys,
                                         transport_options opts) {
  auto broker = sys.middleman().named_broker<caf::io::basp_broker>(
    caf::atom("BASP"));
  auto policy = basp_policy::make(sys, opts.max_message_bytes);
  return sys.spawn<transport_actor, caf::detached + caf::hidden>(
    std::move(broker), std::move(policy), opts.tls);
}

caf::expected<uint16_t> publish_node(caf::actor_system& sys,
                                     const caf::io::middleman_actor& mm,
                                     const node_actor& node,
                                     const std::string& host, uint16_t port) {
  auto f = caf::make_function_view(mm);
  return f(caf::publish_atom_v, port,
           caf::actor_cast<caf::strong_actor_ptr>(node),
           sys.message_types(node), host, true);
}

caf::expected<node_actor> connect_node(caf::actor_system& sys,
                                       const caf::io::middleman_actor& mm,
                                       const std::string& host, uint16_t port,
                                       caf::timespan timeout) {
  auto f = caf::make_function_view(mm, caf::duration{timeout});
  auto res = f(caf::connect_atom_v, host, port);
  if (!res)
    return std::move(res.error());
  auto& ptr = std::get<1>(*res);
  if (!ptr)
    return caf::make_error(caf::sec::no_actor_published_at_port, port);
  auto expected = sys.message_types(caf::detail::type_list<node_actor>{});
  if (!sys.assignable(std::get<2>(*res), expected))
    return caf::make_error(caf::sec::unexpected_actor_messaging_interface);
  return caf::actor_cast<node_actor>(std::move(ptr));
}

std::string check_tls_files(const std::string& ca_file,
                            const std::string& cert_file,
                            const std::string& key_file) {
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx{
    SSL_CTX_new(TLS_method()), SSL_CTX_free};
  if (!ctx)
    return "cannot create a TLS context: " + ssl_errors();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1)
    return "cannot load the certificate " + cert_file + ": " + ssl_errors();
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(),
                                  SSL_FILETYPE_PEM)
      != 1)
    return "cannot load the private key " + key_file
           + " (of the certificate " + cert_file + "?): " + ssl_errors();
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return "the private key " + key_file + " does not match the certificate "
           + cert_file;
  if (SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1)
    return "cannot load the CA certificate " + ca_file + ": " + ssl_errors();
  // The node's own certificate must chain to the CA, for both roles: a
  // node is the TLS server of the peers it accepts and the client of the
  // peers it connects to.
  auto cert = SSL_CTX_get0_certificate(ctx.get());
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx.get(), &chain);
  for (auto purpose : {"ssl_server", "ssl_client"}) {
    std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> check{
      X509_STORE_CTX_new(), X509_STORE_CTX_free};
    if (!check
        || X509_STORE_CTX_init(check.get(),
                               SSL_CTX_get_cert_store(ctx.get()), cert, chain)
             != 1)
      return "cannot check the certificate " + cert_file + ": "
             + ssl_errors();
    X509_STORE_CTX_set_default(check.get(), purpose);
    if (X509_verify_cert(check.get()) != 1)
      return "the certificate " + cert_file + " is not valid for the CA "
             + ca_file + " (as " + purpose + "): "
             + X509_verify_cert_error_string(
               X509_STORE_CTX_get_error(check.get()));
  }
  return {};
}

} // namespace osb
