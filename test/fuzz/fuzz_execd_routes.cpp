// libFuzzer harness: execd's request handling (execd/routes): target and
// query parsing, path segments, the JSON body decoders with their depth
// limit and integer range checks, the Range header, and the router's
// dispatch for every request that does not act on the system.
//
// The router runs commands and writes, moves and deletes files: a fuzzer
// must never reach those handlers. This harness therefore calls the
// handlers' decoders (execd/route_util.hpp) directly (the parts of those
// handlers that see outside input), and dispatches through the router only
// requests that the allow-list below proves harmless, decided on the very
// segments() the router uses.

#include "base/http_request.hpp"
#include "base/strings.hpp"
#include "execd/files.hpp"
#include "execd/route_util.hpp"
#include "execd/routes.hpp"
#include "execd/util.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {

using namespace osb::execd;

class string_body final : public body_reader {
public:
  explicit string_body(std::string_view x) : data_(x) {
  }

  long read(char* buf, size_t n) override {
    n = std::min(n, data_.size());
    std::memcpy(buf, data_.data(), n);
    data_.remove_prefix(n);
    return static_cast<long>(n);
  }

private:
  std::string_view data_;
};

class null_writer final : public response_writer {
public:
  bool send(int s, std::string_view, std::string_view,
            const header_list&) override {
    if (started_)
      std::abort(); // two responses to one request
    started_ = true;
    status_ = s;
    return true;
  }
  bool begin(int s, std::string_view, std::optional<uint64_t>,
             const header_list&) override {
    if (started_)
      std::abort();
    started_ = true;
    status_ = s;
    return true;
  }
  bool write(std::string_view) override {
    return started_;
  }
  bool finish() override {
    return started_;
  }
  bool started() const override {
    return started_;
  }
  int status() const override {
    return status_;
  }

private:
  bool started_ = false;
  int status_ = 0;
};

/// Whether the router may handle `method` on `seg` without acting on the
/// system (running, writing, deleting, walking or streaming files).
bool harmless(const std::string& m, const std::vector<std::string>& seg) {
  auto n = seg.size();
  if (n == 0)
    return true;
  const auto& head = seg[0];
  if (head == "command")
    return (n == 1 && m != "POST") || n == 2 || n > 3
           || (n == 3 && m == "GET"); // status/logs of unknown ids
  if (head == "session")
    return (n == 1 && m != "POST") || (n == 2) // delete of unknown ids
           || (n == 3 && (seg[2] != "run" || m != "POST")) || n > 3;
  if (head == "files") {
    if (n == 1)
      return m != "DELETE";
    if (n != 2)
      return true;
    const auto& op = seg[1];
    if (op == "info")
      return true; // stat only
    bool acts = (op == "permissions" && m == "POST")
                || (op == "mv" && m == "POST")
                || (op == "search" && m == "GET")
                || (op == "replace" && m == "POST")
                || (op == "upload" && m == "POST")
                || (op == "download" && (m == "GET" || m == "HEAD"));
    return !acts;
  }
  if (head == "directories")
    return (n == 1 && m != "POST" && m != "DELETE")
           || (n == 2 && (seg[1] != "list" || m != "GET")) || n > 2;
  if (head == "metrics")
    return n != 2 || seg[1] != "watch" || m != "GET";
  if (head == "code")
    return n != 1 || m != "POST";
  return true;
}

void decode_bodies(std::string_view body) {
  // What run_command, run_in_session, create_session, files_move and the
  // permission/mkdir handlers read before acting.
  string_body b{body};
  null_writer w;
  rapidjson::Document doc;
  if (!read_json(b, w, doc, "{}")) {
    if (!w.started() || w.status() < 400 || w.status() >= 500)
      std::abort(); // a refused body gets a 4xx
    return;
  }
  std::string s;
  std::optional<int64_t> i;
  bool flag = false;
  for (auto key : {"command", "cwd", "src", "dest", "owner", "group", "path"})
    (void) get_string(doc, key, s);
  for (auto key : {"timeout", "uid", "gid", "mode"})
    (void) get_int(doc, key, i);
  if (doc.IsObject())
    (void) get_bool(doc, "background", flag);
  null_writer w2;
  std::vector<permission_item> items;
  if (parse_permissions(doc, w2, items))
    for (auto& item : items)
      (void) parse_mode_digits(item.mode);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  // The managers keep logs under a scratch directory; no request that
  // reaches them here creates anything.
  static command_manager commands{"/tmp/osb-fuzz-execd/commands"};
  static session_manager sessions{"/tmp/osb-fuzz-execd/sessions"};
  static metrics_sampler metrics;
  static code_manager code{[] {
    code_options o;
    o.dir = "/tmp/fuzz-execd-kernels";
    o.spec_dirs = {"/nonexistent/kernels"};
    return o;
  }()};
  static pty_manager ptys;
  static router r{commands, sessions, metrics, code, ptys};
  std::string_view in{reinterpret_cast<const char*>(data) + 1, size - 1};
  switch (data[0] % 4) {
    case 0: {
      // "METHOD target\nbody"
      static constexpr const char* methods[]
        = {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"};
      auto nl = in.find('\n');
      http_request req;
      req.method = methods[static_cast<uint8_t>(in.empty() ? 0 : in[0]) % 6];
      req.set_target(std::string{in.substr(0, nl)});
      auto body = nl == std::string_view::npos ? std::string_view{}
                                               : in.substr(nl + 1);
      (void) req.query_all("path");
      (void) req.query_get("depth");
      if (!harmless(req.method, segments(req.path)))
        return 0;
      string_body b{body};
      null_writer w;
      r(req, b, w);
      if (!w.started())
        std::abort(); // every request gets an answer
      break;
    }
    case 1:
      decode_bodies(in);
      break;
    case 2: {
      byte_range out;
      for (uint64_t file_size : {0ULL, 1ULL, 1000ULL, ~0ULL})
        if (parse_range(in, file_size, out) == range_parse::ok
            && (out.first > out.last || out.last >= file_size))
          std::abort();
      break;
    }
    default: {
      (void) parse_u64(in);
      (void) osb::percent_decode(in, true);
      (void) osb::percent_decode(in, false);
      (void) osb::base::parse_query(in);
      break;
    }
  }
  return 0;
}
