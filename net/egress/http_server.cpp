#include "net/egress/http_server.hpp"

#include "base/log.hpp"
#include "base/strings.hpp"

#include <charconv>

namespace osb::egress {

namespace {

constexpr size_t body_limit = 1 << 20;

/// Sends an API response; plain-text errors are not to be sniffed.
void send(base::response_writer& w, const api_response& res) {
  base::header_list extra;
  if (res.content_type.rfind("text/plain", 0) == 0 && res.status >= 400)
    extra.emplace_back("X-Content-Type-Options", "nosniff");
  if (!res.allow.empty())
    extra.emplace_back("Allow", res.allow);
  w.send(res.status, res.content_type, res.body, extra);
}

/// The server's own answers (malformed requests, ambiguous framing) as
/// Go's net/http words them: the reason as a plain-text error.
void error_response(base::response_writer& w, int status,
                    std::string_view reason) {
  send(w, text_error(status, reason.empty() ? "Bad Request" : reason));
}

/// Answers a body over the limit and closes the connection.
void too_large(base::response_writer& w) {
  w.close_connection();
  send(w, text_error(400, "failed to read body: http: request body too "
                          "large"));
}

} // namespace

http_server::http_server(policy_api& api, std::mutex& state_mutex)
  : api_(api), state_mutex_(state_mutex) {
  // nop
}

http_server::~http_server() {
  stop();
}

bool http_server::start(const std::string& host, uint16_t port,
                        std::string* error) {
  base::sync_server_options opts;
  opts.host = host;
  opts.port = port;
  opts.idle_timeout = std::chrono::seconds{30};
  opts.header_timeout = std::chrono::seconds{5};
  opts.deadline_covers_body = true;
  opts.header_limit = 8 * 1024;
  opts.max_connections = 128;
  opts.log_component = "egress";
  opts.log_requests = false;
  opts.error_response = error_response;
  srv_ = base::sync_server::start(
    std::move(opts),
    [this](const base::http_request& req, base::body_reader& body,
           base::response_writer& w) { handle(req, body, w); },
    error);
  return srv_ != nullptr;
}

uint16_t http_server::port() const {
  return srv_ ? srv_->port() : 0;
}

void http_server::stop() {
  if (srv_)
    srv_->stop();
}

void http_server::handle(const base::http_request& req,
                         base::body_reader& body, base::response_writer& w) {
  api_request r;
  r.method = req.method;
  r.target = req.target;
  for (auto& [name, value] : req.headers) {
    if (iequals(name, auth_header)) {
      r.auth = value;
      break;
    }
  }
  // Refused from the announced length, before any of the body is read.
  auto& length = req.header("content-length");
  uint64_t announced = 0;
  if (!length.empty()
      && std::from_chars(length.data(), length.data() + length.size(),
                         announced)
             .ec
           == std::errc{}
      && announced > body_limit)
    return too_large(w);
  char buf[16 * 1024];
  for (;;) {
    auto n = body.read(buf, sizeof(buf));
    if (n < 0)
      return; // gone or too slow: the connection closes without an answer
    if (n == 0)
      break;
    r.body.append(buf, static_cast<size_t>(n));
    if (r.body.size() > body_limit)
      return too_large(w);
  }
  api_response res;
  {
    std::lock_guard<std::mutex> guard{state_mutex_};
    try {
      res = api_.handle(r);
    } catch (const std::exception& e) {
      OSB_ERROR("egress", "", "", "request failed: " << e.what());
      res = text_error(500, "internal error");
    }
  }
  send(w, res);
}

} // namespace osb::egress
