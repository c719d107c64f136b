#include "execd/claim.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>

#include <rapidjson/document.h>

#include "execd/json.hpp"
#include "execd/route_util.hpp"
#include "execd/routes.hpp"

namespace osb::execd {

namespace {

std::mutex claim_mutex;

bool write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    auto n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

} // namespace

std::optional<claim_message> parse_claim(std::string_view body,
                                         std::string* err) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    *err = "the claim must be a JSON object";
    return std::nullopt;
  }
  claim_message c;
  if (auto i = doc.FindMember("entrypoint");
      i != doc.MemberEnd() && !i->value.IsNull()) {
    if (!i->value.IsArray()) {
      *err = "entrypoint must be a list of strings";
      return std::nullopt;
    }
    for (auto& x : i->value.GetArray()) {
      if (!x.IsString()) {
        *err = "entrypoint must be a list of strings";
        return std::nullopt;
      }
      c.entrypoint.emplace_back(x.GetString(), x.GetStringLength());
    }
  }
  if (auto i = doc.FindMember("env"); i != doc.MemberEnd() && !i->value.IsNull()) {
    if (!i->value.IsObject()) {
      *err = "env must be an object of strings";
      return std::nullopt;
    }
    for (auto& m : i->value.GetObject()) {
      std::string k{m.name.GetString(), m.name.GetStringLength()};
      if (!m.value.IsString() || k.empty() || k.find('=') != std::string::npos) {
        *err = "env must be an object of strings with names without '='";
        return std::nullopt;
      }
      c.env[k] = std::string{m.value.GetString(), m.value.GetStringLength()};
    }
  }
  return c;
}

bool claim_gate::open() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return false;
  read_fd_ = fds[0];
  write_fd_ = fds[1];
  awaiting_ = true;
  return true;
}

void claim_gate::daemon_side() {
  if (read_fd_ >= 0)
    ::close(read_fd_);
  read_fd_ = -1;
}

std::optional<claim_message> claim_gate::wait() {
  if (write_fd_ >= 0)
    ::close(write_fd_);
  write_fd_ = -1;
  std::string data;
  char buf[4096];
  for (;;) {
    auto n = ::read(read_fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    data.append(buf, static_cast<size_t>(n));
    // One claim per pipe, terminated by a newline (JSON has none).
    if (auto nl = data.find('\n'); nl != std::string::npos) {
      data.resize(nl);
      std::string err;
      return parse_claim(data, &err);
    }
  }
  return std::nullopt;
}

int claim_gate::deliver(std::string_view body, std::string* err) {
  std::lock_guard<std::mutex> guard{claim_mutex};
  if (!awaiting_) {
    *err = "this sandbox does not wait for a claim";
    return 404;
  }
  auto c = parse_claim(body, err);
  if (!c)
    return 400;
  if (!delivered_.empty()) {
    if (delivered_ == body)
      return 200;
    *err = "this sandbox was claimed with another claim already";
    return 409;
  }
  // Commands run from now on see the claim's environment (the daemon's
  // own environment is what they start from).
  for (auto& [k, v] : c->env)
    ::setenv(k.c_str(), v.c_str(), 1);
  if (!write_all(write_fd_, std::string{body} + '\n')) {
    *err = "the sandbox's entrypoint process is gone";
    return 500;
  }
  delivered_ = std::string{body};
  return 200;
}

claim_gate::~claim_gate() {
  for (auto fd : {read_fd_, write_fd_})
    if (fd >= 0)
      ::close(fd);
}

claim_gate& the_claim_gate() {
  static claim_gate gate;
  return gate;
}

void handle_claim(body_reader& body, response_writer& w) {
  std::string text;
  if (!read_body(body, w, text))
    return;
  std::string err;
  auto status = the_claim_gate().deliver(text, &err);
  if (status == 200)
    return send_ok(w);
  send_error(w, status, status == 409 ? "CONFLICT"
                        : status == 404 ? "NOT_FOUND"
                        : status == 400 ? "INVALID_REQUEST_BODY"
                                        : "RUNTIME_ERROR",
             err);
}

} // namespace osb::execd
