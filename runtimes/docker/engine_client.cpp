#include "runtimes/docker/engine_client.hpp"

#include "core/server_metrics.hpp"
#include "runtimes/docker/operation_name.hpp"

namespace osb::runtimes::docker::detail {

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
  if (metrics::enabled()) {
    // Every Engine API call is timed by its operation (never by an id);
    // long ones (pulls) show while they last.
    static auto& in_flight = metrics::global().gauges(
      "opensandbox_runtime_requests_in_flight",
      "Runtime (Docker) operations under way, by operation.", {"operation"});
    auto op = docker_operation(opts.method, opts.target);
    auto& h = ops_metrics().runtime_duration.with({op});
    auto& g = in_flight.with({op});
    g.inc();
    done = [&h, &g, start = std::chrono::steady_clock::now(),
            done = std::move(done)](expected<response> r) {
      g.dec();
      h.observe(metrics::seconds(std::chrono::steady_clock::now() - start));
      done(std::move(r));
    };
  }
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

} // namespace osb::runtimes::docker::detail
