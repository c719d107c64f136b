#include "execd/routes.hpp"

#include "base/json.hpp"
#include "execd/files.hpp"
#include "execd/json.hpp"
#include "execd/log.hpp"
#include "execd/multipart.hpp"
#include "execd/util.hpp"

#include <rapidjson/document.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

namespace osb::execd {

// -- http_request ---------------------------------------------------------------

std::string http_request::header(std::string_view lower_name) const {
  for (auto& [k, v] : headers)
    if (k == lower_name)
      return v;
  return {};
}

std::vector<std::string> http_request::query_all(std::string_view key) const {
  std::vector<std::string> out;
  for (auto& [k, v] : parse_query(query))
    if (k == key)
      out.push_back(v);
  return out;
}

std::optional<std::string>
http_request::query_get(std::string_view key) const {
  for (auto& [k, v] : parse_query(query))
    if (k == key)
      return v;
  return std::nullopt;
}

void http_request::set_target(std::string t) {
  target = std::move(t);
  auto q = target.find('?');
  path = target.substr(0, q);
  query = q == std::string::npos ? std::string{} : target.substr(q + 1);
}

// -- helpers ------------------------------------------------------------------

void send_error(response_writer& w, int status, std::string_view code,
                std::string_view message) {
  json_writer j;
  j.begin_object();
  j.key("code").string(code);
  j.key("message").string(message);
  j.end_object();
  w.send(status, "application/json", j.str());
}

bool stream_sink::write(std::string_view bytes) {
  if (!ok_)
    return false;
  if (!w_.started())
    ok_ = w_.begin(200, "text/event-stream", std::nullopt,
                   {{"Cache-Control", "no-cache"},
                    {"X-Accel-Buffering", "no"}});
  if (ok_)
    ok_ = w_.write(bytes);
  return ok_;
}

namespace {

using json_value = rapidjson::Value;

/// Limit for JSON request bodies.
constexpr size_t max_json_body = 32 * 1024 * 1024;

/// Command timeouts (ms) beyond a year are refused: a deadline of
/// `now + timeout` must not overflow the clock.
constexpr int64_t max_timeout_ms = 365LL * 24 * 3600 * 1000;
constexpr const char* bad_timeout
  = "timeout must be between 0 and 31536000000 ms";

constexpr std::string_view bad_body
  = "error parsing request, MAYBE invalid body format";

void send_ok(response_writer& w) {
  w.send(200, "", "");
}

void send_json(response_writer& w, const std::string& body) {
  w.send(200, "application/json", body);
}

void send_op_error(response_writer& w, const op_error& e) {
  send_error(w, e.status, e.code, e.message);
}

/// Streams `len` bytes of `fd` from `offset` into a started response in
/// 64 KiB pieces (memory stays flat for any size), then closes `fd` and
/// finishes the response. Stops early when the client goes away.
void send_file_range(response_writer& w, int fd, uint64_t offset,
                     uint64_t len) {
  std::vector<char> buf(64 * 1024);
  auto off = static_cast<off_t>(offset);
  while (len > 0) {
    auto n = ::pread(fd, buf.data(), std::min<uint64_t>(len, buf.size()), off);
    if (n <= 0)
      break;
    if (!w.write({buf.data(), static_cast<size_t>(n)}))
      break;
    off += n;
    len -= static_cast<uint64_t>(n);
  }
  ::close(fd);
  w.finish();
}

/// Reads the whole body; false (after answering) if it is too large or the
/// connection failed.
bool read_body(body_reader& body, response_writer& w, std::string& out) {
  char buf[65536];
  for (;;) {
    auto n = body.read(buf, sizeof(buf));
    if (n == 0)
      return true;
    if (n < 0) {
      send_error(w, 400, "INVALID_REQUEST_BODY", "cannot read request body");
      return false;
    }
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_json_body) {
      send_error(w, 413, "INVALID_REQUEST_BODY", "request body too large");
      return false;
    }
  }
}

/// Reads and parses a JSON body; answers 400 and returns false on failure.
/// An empty body parses as `empty_as` when given.
bool read_json(body_reader& body, response_writer& w,
               rapidjson::Document& doc, const char* empty_as = nullptr) {
  std::string text;
  if (!read_body(body, w, text))
    return false;
  auto blank = text.find_first_not_of(" \t\r\n") == std::string::npos;
  if (blank && empty_as != nullptr)
    text = empty_as;
  switch (base::parse_json<rapidjson::kParseStopWhenDoneFlag>(doc, text)) {
    case base::json_status::ok:
      return true;
    case base::json_status::too_deep:
      send_error(w, 400, "INVALID_REQUEST_BODY",
                 "request body nests deeper than "
                   + std::to_string(base::json_max_depth) + " levels");
      return false;
    case base::json_status::invalid:
      break;
  }
  send_error(w, 400, "INVALID_REQUEST_BODY", bad_body);
  return false;
}

/// Reads an optional string member; null counts as "". False if the member
/// has another type.
bool get_string(const json_value& obj, const char* key, std::string& out) {
  out.clear();
  if (!obj.IsObject())
    return false;
  auto i = obj.FindMember(key);
  if (i == obj.MemberEnd() || i->value.IsNull())
    return true;
  if (!i->value.IsString())
    return false;
  out.assign(i->value.GetString(), i->value.GetStringLength());
  return true;
}

/// Reads an optional integer member (a numeric string is accepted too).
bool get_int(const json_value& obj, const char* key,
             std::optional<int64_t>& out) {
  out.reset();
  if (!obj.IsObject())
    return false;
  auto i = obj.FindMember(key);
  if (i == obj.MemberEnd() || i->value.IsNull())
    return true;
  // Values outside int64 are refused, never wrapped: a uid of 2^32 must
  // not become root, a huge timeout not a negative one.
  auto& v = i->value;
  if (v.IsInt64()) {
    out = v.GetInt64();
    return true;
  }
  if (v.IsUint64())
    return false; // above INT64_MAX
  if (v.IsDouble()) {
    auto d = v.GetDouble();
    // [-2^63, 2^63): the cast below is defined only in range.
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)
        || d != static_cast<double>(static_cast<int64_t>(d)))
      return false;
    out = static_cast<int64_t>(d);
    return true;
  }
  if (v.IsString()) {
    std::string_view s{v.GetString(), v.GetStringLength()};
    bool neg = !s.empty() && s[0] == '-';
    auto n = parse_u64(neg ? s.substr(1) : s);
    if (!n || *n > static_cast<uint64_t>(INT64_MAX))
      return false;
    out = neg ? -static_cast<int64_t>(*n) : static_cast<int64_t>(*n);
    return true;
  }
  return false;
}

bool get_bool(const json_value& obj, const char* key, bool& out) {
  out = false;
  auto i = obj.FindMember(key);
  if (i == obj.MemberEnd() || i->value.IsNull())
    return true;
  if (!i->value.IsBool())
    return false;
  out = i->value.GetBool();
  return true;
}

/// Resolves a path for the file APIs against execd's environment.
bool resolve(const std::string& raw, response_writer& w, std::string& out) {
  std::string err;
  auto p = resolve_path(raw, current_env(), &err);
  if (!p) {
    send_error(w, 400, "INVALID_REQUEST_BODY", err);
    return false;
  }
  out = std::move(*p);
  return true;
}

bool is_directory(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

/// Splits "/a/b/c" into {"a","b","c"} (segments decoded).
std::vector<std::string> segments(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    auto j = path.find('/', i);
    auto seg = path.substr(i, j == std::string_view::npos ? j : j - i);
    out.push_back(url_decode(seg, false));
    if (j == std::string_view::npos)
      break;
    i = j;
  }
  return out;
}

/// Permission maps: {"<path>": {"owner", "group", "mode"}}.
struct permission_item {
  std::string raw_path;
  std::string owner;
  std::string group;
  int64_t mode = 0;
};

bool parse_permissions(const rapidjson::Document& doc, response_writer& w,
                       std::vector<permission_item>& out) {
  if (!doc.IsObject()) {
    send_error(w, 400, "INVALID_REQUEST_BODY", bad_body);
    return false;
  }
  for (auto& m : doc.GetObject()) {
    permission_item item;
    item.raw_path.assign(m.name.GetString(), m.name.GetStringLength());
    std::optional<int64_t> mode;
    if (!m.value.IsObject() && !m.value.IsNull()) {
      send_error(w, 400, "INVALID_REQUEST_BODY", bad_body);
      return false;
    }
    if (m.value.IsObject()
        && (!get_string(m.value, "owner", item.owner)
            || !get_string(m.value, "group", item.group)
            || !get_int(m.value, "mode", mode))) {
      send_error(w, 400, "INVALID_REQUEST_BODY", bad_body);
      return false;
    }
    item.mode = mode.value_or(0);
    out.push_back(std::move(item));
  }
  return true;
}

} // namespace

// -- router -------------------------------------------------------------------

router::router(command_manager& commands, session_manager& sessions,
               metrics_sampler& metrics)
  : commands_(commands), sessions_(sessions), metrics_(metrics) {
  // nop
}

void router::operator()(const http_request& req, body_reader& body,
                        response_writer& w) {
  auto seg = segments(req.path);
  auto& m = req.method;
  auto n = seg.size();
  auto is = [&](std::initializer_list<const char*> parts) {
    if (parts.size() != n)
      return false;
    size_t i = 0;
    for (auto p : parts)
      if (seg[i++] != p)
        return false;
    return true;
  };
  auto not_allowed = [&] {
    send_error(w, 405, "METHOD_NOT_ALLOWED",
               "method " + m + " not allowed for " + req.path);
  };
  if (n == 0) {
    send_error(w, 404, "NOT_FOUND", "no route for " + req.path);
    return;
  }
  const auto& head = seg[0];
  if (is({"ping"})) {
    if (m == "GET" || m == "HEAD")
      return send_ok(w);
    return not_allowed();
  }
  if (head == "command") {
    if (n == 1) {
      if (m == "POST")
        return run_command(req, body, w);
      if (m == "DELETE")
        return interrupt(req, w);
      return not_allowed();
    }
    if (n == 3 && seg[1] == "status") {
      if (m == "GET")
        return command_status(seg[2], w);
      return not_allowed();
    }
    if (n == 3 && seg[2] == "logs") {
      if (m == "GET")
        return command_logs(req, seg[1], w);
      return not_allowed();
    }
  } else if (head == "session") {
    if (n == 1) {
      if (m == "POST")
        return create_session(body, w);
      return not_allowed();
    }
    if (n == 3 && seg[2] == "run") {
      if (m == "POST")
        return run_in_session(seg[1], body, w);
      return not_allowed();
    }
    if (n == 2) {
      if (m == "DELETE")
        return delete_session(seg[1], w);
      return not_allowed();
    }
  } else if (head == "files") {
    if (n == 1) {
      if (m == "DELETE")
        return files_delete(req, w);
      return not_allowed();
    }
    if (n == 2) {
      const auto& op = seg[1];
      if (op == "info" && m == "GET")
        return files_info(req, w);
      if (op == "permissions" && m == "POST")
        return files_permissions(body, w);
      if (op == "mv" && m == "POST")
        return files_move(body, w);
      if (op == "search" && m == "GET")
        return files_search(req, w);
      if (op == "replace" && m == "POST")
        return files_replace(req, body, w);
      if (op == "upload" && m == "POST")
        return files_upload(req, body, w);
      if (op == "download" && (m == "GET" || m == "HEAD"))
        return files_download(req, w);
      if (op == "info" || op == "permissions" || op == "mv" || op == "search"
          || op == "replace" || op == "upload" || op == "download")
        return not_allowed();
    }
  } else if (head == "directories") {
    if (n == 1) {
      if (m == "POST")
        return directories_create(body, w);
      if (m == "DELETE")
        return directories_delete(req, w);
      return not_allowed();
    }
    if (n == 2 && seg[1] == "list") {
      if (m == "GET")
        return directories_list(req, w);
      return not_allowed();
    }
  } else if (head == "metrics") {
    if (n == 1) {
      if (m == "GET")
        return metrics(w);
      return not_allowed();
    }
    if (n == 2 && seg[1] == "watch") {
      if (m == "GET")
        return metrics_watch(w);
      return not_allowed();
    }
  } else if (head == "code") {
    if (n == 1) {
      if (m == "POST")
        return run_code(body, w);
      if (m == "DELETE")
        return interrupt(req, w);
      return not_allowed();
    }
    if (n == 2 && seg[1] == "context") {
      if (m == "POST")
        return send_error(w, 501, "NOT_SUPPORTED",
                          "code interpreting (Jupyter) is not supported by "
                          "this execd");
      return not_allowed();
    }
    if (n == 2 && seg[1] == "contexts") {
      if (m == "GET")
        return send_json(w, "[]");
      if (m == "DELETE") {
        auto lang = req.query_get("language");
        if (!lang || lang->empty())
          return send_error(w, 400, "MISSING_QUERY",
                            "missing query parameter language");
        return send_ok(w);
      }
      return not_allowed();
    }
    if (n == 3 && seg[1] == "contexts") {
      if (m == "GET" || m == "DELETE")
        return send_error(w, 404, "CONTEXT_NOT_FOUND",
                          "context " + seg[2] + " not found");
      return not_allowed();
    }
  } else if (head == "pty") {
    return send_error(w, 501, "NOT_SUPPORTED",
                      "PTY sessions are not supported by this execd");
  }
  send_error(w, 404, "NOT_FOUND", "no route for " + req.path);
}

// -- commands -----------------------------------------------------------------

void router::run_command(const http_request&, body_reader& body,
                         response_writer& w) {
  rapidjson::Document doc;
  if (!read_json(body, w, doc))
    return;
  command_request cr;
  std::string cwd;
  std::optional<int64_t> timeout;
  std::optional<int64_t> uid;
  std::optional<int64_t> gid;
  if (!doc.IsObject() || !get_string(doc, "command", cr.command)
      || !get_string(doc, "cwd", cwd) || !get_bool(doc, "background",
                                                   cr.background)
      || !get_int(doc, "timeout", timeout) || !get_int(doc, "uid", uid)
      || !get_int(doc, "gid", gid))
    return send_error(w, 400, "INVALID_REQUEST_BODY", bad_body);
  if (cr.command.empty())
    return send_error(w, 400, "INVALID_REQUEST_BODY",
                      "command must not be empty");
  if (timeout && (*timeout < 0 || *timeout > max_timeout_ms))
    return send_error(w, 400, "INVALID_REQUEST_BODY", bad_timeout);
  // (uid_t)-1 means "unchanged" to setresuid: not a valid id.
  if ((uid && (*uid < 0 || *uid >= 0xFFFFFFFFLL))
      || (gid && (*gid < 0 || *gid >= 0xFFFFFFFFLL)))
    return send_error(w, 400, "INVALID_REQUEST_BODY", "invalid uid or gid");
  if (gid && !uid)
    return send_error(w, 400, "INVALID_REQUEST_BODY", "gid requires uid");
  if (auto i = doc.FindMember("envs");
      i != doc.MemberEnd() && !i->value.IsNull()) {
    if (!i->value.IsObject())
      return send_error(w, 400, "INVALID_REQUEST_BODY", bad_body);
    for (auto& kv : i->value.GetObject()) {
      if (!kv.value.IsString() && !kv.value.IsNull())
        return send_error(w, 400, "INVALID_REQUEST_BODY", bad_body);
      cr.envs[kv.name.GetString()]
        = kv.value.IsString() ? kv.value.GetString() : "";
    }
  }
  cr.timeout_ms = timeout.value_or(0);
  if (uid)
    cr.uid = static_cast<uint32_t>(*uid);
  if (gid)
    cr.gid = static_cast<uint32_t>(*gid);
  if (!cwd.empty()) {
    std::string err;
    auto p = resolve_path(cwd, command_env(cr.envs), &err);
    if (!p)
      return send_error(w, 500, "RUNTIME_ERROR", err);
    if (!is_directory(*p))
      return send_error(w, 400, "INVALID_REQUEST_BODY",
                        "working directory " + *p
                          + " does not exist or is not a directory");
    cr.cwd = *p;
  }
  stream_sink sink{w};
  auto err = commands_.run(cr, sink);
  if (!err.empty() && !w.started())
    return send_error(w, 500, "RUNTIME_ERROR", err);
  if (w.started())
    w.finish();
}

void router::interrupt(const http_request& req, response_writer& w) {
  auto id = req.query_get("id");
  if (!id || id->empty())
    return send_error(w, 400, "MISSING_QUERY", "missing query parameter id");
  switch (commands_.interrupt(*id)) {
    case command_manager::interrupt_result::done:
      return send_ok(w);
    case command_manager::interrupt_result::not_running:
      return send_error(w, 500, "RUNTIME_ERROR",
                        "command " + *id + " is not running");
    case command_manager::interrupt_result::unknown:
      break;
  }
  if (sessions_.remove(*id))
    return send_ok(w);
  send_error(w, 500, "RUNTIME_ERROR", "no such session: " + *id);
}

void router::command_status(const std::string& id, response_writer& w) {
  auto rec = commands_.find(id);
  if (!rec)
    return send_error(w, 404, "INVALID_REQUEST_BODY",
                      "command " + id + " not found");
  send_json(w, rec->status_json());
}

void router::command_logs(const http_request& req, const std::string& id,
                          response_writer& w) {
  auto rec = commands_.find(id);
  if (!rec || !rec->background)
    return send_error(w, 400, "INVALID_REQUEST_BODY",
                      "no background command " + id);
  uint64_t cursor = 0;
  if (auto c = req.query_get("cursor"); c && !c->empty()) {
    auto v = parse_u64(*c);
    if (!v)
      return send_error(w, 400, "INVALID_REQUEST_BODY",
                        "invalid cursor " + *c);
    cursor = *v;
  }
  auto fd = ::open(rec->log_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return send_error(w, 500, "RUNTIME_ERROR",
                      "cannot open log: " + errno_text(errno));
  struct stat st{};
  ::fstat(fd, &st);
  auto size = static_cast<uint64_t>(st.st_size);
  cursor = std::min(cursor, size);
  auto len = size - cursor;
  header_list extra{{"EXECD-COMMANDS-TAIL-CURSOR", std::to_string(size)}};
  constexpr auto ct = "text/plain; charset=utf-8";
  if (len == 0) {
    ::close(fd);
    w.send(200, ct, "", extra);
    return;
  }
  if (!w.begin(200, ct, len, extra)) {
    ::close(fd);
    return;
  }
  send_file_range(w, fd, cursor, len);
}

// -- sessions -----------------------------------------------------------------

void router::create_session(body_reader& body, response_writer& w) {
  rapidjson::Document doc;
  if (!read_json(body, w, doc, "{}"))
    return;
  std::string cwd;
  if (!doc.IsObject() || !get_string(doc, "cwd", cwd))
    return send_error(w, 400, "INVALID_REQUEST_BODY", bad_body);
  std::string dir;
  if (!cwd.empty() && !resolve(cwd, w, dir))
    return;
  std::string err;
  auto id = sessions_.create(dir, &err);
  if (id.empty())
    return send_error(w, 500, "RUNTIME_ERROR", err);
  json_writer j;
  j.begin_object().key("session_id").string(id).end_object();
  send_json(w, j.str());
}

void router::run_in_session(const std::string& id, body_reader& body,
                            response_writer& w) {
  rapidjson::Document doc;
  if (!read_json(body, w, doc))
    return;
  session_run_request sr;
  std::string cwd;
  std::optional<int64_t> timeout;
  if (!doc.IsObject() || !get_string(doc, "command", sr.command)
      || !get_string(doc, "cwd", cwd) || !get_int(doc, "timeout", timeout))
    return send_error(w, 400, "INVALID_REQUEST_BODY", bad_body);
  if (sr.command.empty())
    return send_error(w, 400, "INVALID_REQUEST_BODY",
                      "command must not be empty");
  if (timeout && (*timeout < 0 || *timeout > max_timeout_ms))
    return send_error(w, 400, "INVALID_REQUEST_BODY", bad_timeout);
  sr.timeout_ms = timeout.value_or(0);
  if (!cwd.empty()) {
    if (!resolve(cwd, w, sr.cwd))
      return;
    if (!is_directory(sr.cwd))
      return send_error(w, 400, "INVALID_REQUEST_BODY",
                        "working directory " + sr.cwd
                          + " does not exist or is not a directory");
  }
  stream_sink sink{w};
  if (sessions_.run(id, sr, sink) == session_manager::run_result::unknown)
    return send_error(w, 500, "RUNTIME_ERROR", "session " + id + " not found");
  if (w.started())
    w.finish();
}

void router::delete_session(const std::string& id, response_writer& w) {
  if (!sessions_.remove(id))
    return send_error(w, 404, "CONTEXT_NOT_FOUND",
                      "session " + id + " not found");
  send_ok(w);
}

// -- files --------------------------------------------------------------------

void router::files_info(const http_request& req, response_writer& w) {
  json_writer j;
  j.begin_object();
  for (auto& raw : req.query_all("path")) {
    std::string path;
    if (!resolve(raw, w, path))
      return;
    file_info info;
    if (auto e = stat_path(path, info))
      return send_op_error(w, e);
    j.key(raw);
    write_file_info(j, info);
  }
  j.end_object();
  send_json(w, j.str());
}

void router::files_delete(const http_request& req, response_writer& w) {
  for (auto& raw : req.query_all("path")) {
    std::string path;
    if (!resolve(raw, w, path))
      return;
    if (auto e = remove_file(path))
      return send_op_error(w, e);
  }
  send_ok(w);
}

namespace {

/// Applies `op` to every `{path: {mode, owner, group}}` entry of the body,
/// stopping at the first failure (the shared shape of chmod/chown and
/// mkdir requests).
void for_each_permission_item(
  body_reader& body, response_writer& w,
  op_error (*op)(const std::string&, int64_t, const std::string&,
                 const std::string&)) {
  rapidjson::Document doc;
  if (!read_json(body, w, doc))
    return;
  std::vector<permission_item> items;
  if (!parse_permissions(doc, w, items))
    return;
  for (auto& item : items) {
    std::string path;
    if (!resolve(item.raw_path, w, path))
      return;
    if (auto e = op(path, item.mode, item.owner, item.group))
      return send_op_error(w, e);
  }
  send_ok(w);
}

} // namespace

void router::files_permissions(body_reader& body, response_writer& w) {
  for_each_permission_item(body, w, apply_permissions);
}

void router::files_move(body_reader& body, response_writer& w) {
  rapidjson::Document doc;
  if (!read_json(body, w, doc))
    return;
  if (!doc.IsArray())
    return send_error(w, 400, "INVALID_REQUEST_BODY", bad_body);
  for (auto& item : doc.GetArray()) {
    std::string src;
    std::string dest;
    if (!item.IsObject() || !get_string(item, "src", src)
        || !get_string(item, "dest", dest) || src.empty() || dest.empty())
      return send_error(w, 400, "INVALID_REQUEST_BODY",
                        "each item needs src and dest");
    std::string s;
    std::string d;
    if (!resolve(src, w, s) || !resolve(dest, w, d))
      return;
    if (auto e = move_path(s, d))
      return send_op_error(w, e);
  }
  send_ok(w);
}

void router::files_search(const http_request& req, response_writer& w) {
  auto raw = req.query_get("path");
  if (!raw || raw->empty())
    return send_error(w, 400, "MISSING_QUERY",
                      "missing query parameter path");
  std::string root;
  if (!resolve(*raw, w, root))
    return;
  auto pattern = req.query_get("pattern").value_or("**");
  std::vector<file_info> found;
  if (auto e = search_files(root, pattern, found))
    return send_op_error(w, e);
  json_writer j;
  j.begin_array();
  for (auto& f : found)
    write_file_info(j, f);
  j.end_array();
  send_json(w, j.str());
}

void router::files_replace(const http_request& req, body_reader& body,
                           response_writer& w) {
  rapidjson::Document doc;
  if (!read_json(body, w, doc))
    return;
  if (!doc.IsObject())
    return send_error(w, 400, "INVALID_REQUEST_BODY", bad_body);
  auto verbose = ascii_lower(req.query_get("verbose").value_or(""));
  bool want_counts = verbose == "true" || verbose == "1";
  json_writer j;
  j.begin_object();
  for (auto& m : doc.GetObject()) {
    std::string raw{m.name.GetString(), m.name.GetStringLength()};
    std::string from;
    std::string to;
    if (!m.value.IsObject() || !get_string(m.value, "old", from)
        || !get_string(m.value, "new", to))
      return send_error(w, 400, "INVALID_REQUEST_BODY", bad_body);
    std::string path;
    if (!resolve(raw, w, path))
      return;
    size_t count = 0;
    if (auto e = replace_in_file(path, from, to, &count))
      return send_op_error(w, e);
    j.key(raw).begin_object();
    j.key("replacedCount").integer(static_cast<int64_t>(count));
    j.end_object();
  }
  j.end_object();
  if (want_counts)
    return send_json(w, j.str());
  send_ok(w);
}

namespace {

/// Upload state: metadata and file parts are paired by index. A file part
/// whose metadata is already known streams straight to its target; one that
/// comes first is spooled and moved into place when its metadata arrives.
struct upload_state {
  struct meta {
    std::string path;
    std::string owner;
    std::string group;
    int64_t mode = 0;
  };

  std::vector<meta> metas;
  size_t files = 0;
  /// Spooled files waiting for metadata: index -> temp path.
  std::vector<std::pair<size_t, std::string>> spooled;
  enum class part { none, metadata, file } current = part::none;
  std::string meta_text;
  int fd = -1;
  std::string fd_path;
  size_t fd_index = 0;
  bool fd_spooled = false;
  op_error error;

  ~upload_state() {
    if (fd >= 0)
      ::close(fd);
    for (auto& [i, p] : spooled)
      ::unlink(p.c_str());
  }

  bool fail(op_error e) {
    if (!error)
      error = std::move(e);
    return false;
  }

  /// chmod/chown like Go: retried once after 20 ms.
  bool finish_target(const meta& m) {
    if (m.mode == 0 && m.owner.empty() && m.group.empty())
      return true;
    auto e = apply_permissions(m.path, m.mode, m.owner, m.group);
    if (e) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      e = apply_permissions(m.path, m.mode, m.owner, m.group);
    }
    return e ? fail(e) : true;
  }

  bool place_spooled(size_t index) {
    for (auto i = spooled.begin(); i != spooled.end(); ++i) {
      if (i->first != index)
        continue;
      auto& m = metas[index];
      if (make_dirs(dirname_of(m.path), 0755) != 0)
        return fail(op_error::runtime("cannot create parent of " + m.path));
      auto src = i->second;
      spooled.erase(i);
      if (auto e = move_path_over(src, m.path))
        return fail(e);
      return finish_target(m);
    }
    return true;
  }

  static op_error move_path_over(const std::string& src,
                                 const std::string& dest) {
    if (::rename(src.c_str(), dest.c_str()) == 0)
      return {};
    ::unlink(dest.c_str());
    return move_path(src, dest);
  }

  bool begin(const part_headers& h) {
    if (h.name == "metadata") {
      current = part::metadata;
      meta_text.clear();
      return true;
    }
    if (h.name != "file") {
      current = part::none;
      return true;
    }
    current = part::file;
    fd_index = files++;
    if (fd_index < metas.size()) {
      fd_spooled = false;
      fd_path = metas[fd_index].path;
      op_error e;
      fd = open_for_upload(fd_path, &e);
      return fd >= 0 ? true : fail(e);
    }
    fd_spooled = true;
    fd_path = work_dir() + "/upload-" + random_hex(8);
    fd = ::open(fd_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                0777);
    if (fd < 0)
      return fail(op_error::runtime("cannot spool upload: "
                                    + errno_text(errno)));
    return true;
  }

  bool data(std::string_view x) {
    if (current == part::metadata) {
      meta_text.append(x.data(), x.size());
      if (meta_text.size() > 1024 * 1024)
        return fail({400, "INVALID_FILE_METADATA", "metadata too large"});
      return true;
    }
    if (current != part::file)
      return true;
    while (!x.empty()) {
      auto n = ::write(fd, x.data(), x.size());
      if (n < 0) {
        if (errno == EINTR)
          continue;
        return fail(op_error::runtime("write " + fd_path + ": "
                                      + errno_text(errno)));
      }
      x.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  bool end() {
    if (current == part::metadata) {
      current = part::none;
      rapidjson::Document doc;
      auto parsed = base::parse_json<rapidjson::kParseStopWhenDoneFlag>(
        doc, meta_text);
      meta m;
      std::optional<int64_t> mode;
      std::string raw;
      if (parsed != base::json_status::ok || !doc.IsObject()
          || !get_string(doc, "path", raw) || !get_string(doc, "owner", m.owner)
          || !get_string(doc, "group", m.group) || !get_int(doc, "mode", mode))
        return fail({400, "INVALID_FILE_METADATA",
                     "invalid file metadata: " + meta_text});
      if (raw.empty())
        return fail({400, "INVALID_FILE_METADATA", "metadata path is empty"});
      std::string err;
      auto p = resolve_path(raw, current_env(), &err);
      if (!p)
        return fail({400, "INVALID_FILE_METADATA", err});
      m.path = *p;
      m.mode = mode.value_or(0);
      metas.push_back(std::move(m));
      return place_spooled(metas.size() - 1);
    }
    if (current == part::file) {
      current = part::none;
      ::fsync(fd);
      ::close(fd);
      fd = -1;
      if (fd_spooled) {
        spooled.emplace_back(fd_index, fd_path);
        return true;
      }
      return finish_target(metas[fd_index]);
    }
    return true;
  }
};

} // namespace

void router::files_upload(const http_request& req, body_reader& body,
                          response_writer& w) {
  auto boundary = multipart_boundary(req.header("content-type"));
  if (boundary.empty())
    return send_error(w, 400, "INVALID_REQUEST_BODY",
                      "expected multipart/form-data with a boundary");
  upload_state st;
  multipart_parser parser{
    boundary,
    {[&](const part_headers& h) { return st.begin(h); },
     [&](std::string_view x) { return st.data(x); }, [&] { return st.end(); }}};
  std::vector<char> buf(64 * 1024);
  for (;;) {
    auto n = body.read(buf.data(), buf.size());
    if (n < 0)
      return send_error(w, 400, "INVALID_REQUEST_BODY",
                        "cannot read request body");
    if (n == 0)
      break;
    if (!parser.feed({buf.data(), static_cast<size_t>(n)})) {
      if (st.error)
        return send_op_error(w, st.error);
      return send_error(w, 400, "INVALID_REQUEST_BODY", parser.error());
    }
  }
  if (!parser.done())
    return send_error(w, 400, "INVALID_REQUEST_BODY",
                      "truncated multipart body");
  if (st.metas.empty())
    return send_error(w, 400, "INVALID_FILE_METADATA",
                      "no metadata part in upload");
  if (st.files == 0)
    return send_error(w, 400, "INVALID_FILE_CONTENT", "no file part in upload");
  if (st.files != st.metas.size())
    return send_error(w, 400, "INVALID_FILE",
                      "metadata and file parts do not pair up");
  send_ok(w);
}

void router::files_download(const http_request& req, response_writer& w) {
  auto raw = req.query_get("path");
  if (!raw || raw->empty())
    return send_error(w, 400, "MISSING_QUERY",
                      "missing query parameter path");
  std::string path;
  if (!resolve(*raw, w, path))
    return;
  auto fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return send_op_error(w, op_error::from_errno(errno, path));
  struct stat st{};
  ::fstat(fd, &st);
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return send_error(w, 400, "INVALID_REQUEST_BODY",
                      path + " is a directory");
  }
  auto size = static_cast<uint64_t>(st.st_size);
  byte_range range;
  header_list extra{{"Content-Disposition",
                     content_disposition(basename_of(path))},
                    {"Accept-Ranges", "bytes"}};
  int status = 200;
  uint64_t first = 0;
  uint64_t len = size;
  switch (parse_range(req.header("range"), size, range)) {
    case range_parse::none:
      break;
    case range_parse::unsatisfiable:
      ::close(fd);
      extra = {{"Content-Range", "bytes */" + std::to_string(size)}};
      w.send(416, "application/json",
             R"({"code":"INVALID_REQUEST_BODY","message":"requested range not satisfiable"})",
             extra);
      return;
    case range_parse::ok:
      status = 206;
      first = range.first;
      len = range.last - range.first + 1;
      extra.emplace_back("Content-Range",
                         "bytes " + std::to_string(range.first) + "-"
                           + std::to_string(range.last) + "/"
                           + std::to_string(size));
      break;
  }
  if (!w.begin(status, "application/octet-stream", len, extra)
      || req.method == "HEAD") {
    ::close(fd);
    if (w.started())
      w.finish();
    return;
  }
  send_file_range(w, fd, first, len);
}

void router::directories_list(const http_request& req, response_writer& w) {
  auto raw = req.query_get("path");
  if (!raw || raw->empty())
    return send_error(w, 400, "MISSING_QUERY",
                      "missing query parameter path");
  int depth = 1;
  if (auto d = req.query_get("depth"); d && !d->empty()) {
    auto v = parse_u64(*d);
    if (!v || *v > 1000000)
      return send_error(w, 400, "INVALID_REQUEST_BODY",
                        "invalid depth " + *d);
    depth = static_cast<int>(*v);
  }
  std::string root;
  if (!resolve(*raw, w, root))
    return;
  std::vector<file_info> entries;
  if (auto e = list_directory(root, depth, entries))
    return send_op_error(w, e);
  json_writer j;
  j.begin_array();
  for (auto& f : entries)
    write_file_info(j, f);
  j.end_array();
  send_json(w, j.str());
}

void router::directories_create(body_reader& body, response_writer& w) {
  for_each_permission_item(body, w, make_directory);
}

void router::directories_delete(const http_request& req, response_writer& w) {
  for (auto& raw : req.query_all("path")) {
    std::string path;
    if (!resolve(raw, w, path))
      return;
    if (auto e = remove_tree(path))
      return send_op_error(w, e);
  }
  send_ok(w);
}

// -- metrics ------------------------------------------------------------------

void router::metrics(response_writer& w) {
  send_json(w, metrics_.sample().to_json());
}

void router::metrics_watch(response_writer& w) {
  if (!w.begin(200, "text/event-stream", std::nullopt,
               {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}}))
    return;
  for (;;) {
    auto line = metrics_.sample().to_json() + "\n";
    if (!w.write(line))
      return;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

// -- code ---------------------------------------------------------------------

void router::run_code(body_reader& body, response_writer& w) {
  rapidjson::Document doc;
  if (!read_json(body, w, doc))
    return;
  command_request cr;
  if (!doc.IsObject() || !get_string(doc, "code", cr.command))
    return send_error(w, 400, "INVALID_REQUEST_BODY", bad_body);
  if (cr.command.empty())
    return send_error(w, 400, "INVALID_REQUEST_BODY", "code must not be empty");
  std::string language;
  std::string context_id;
  if (auto i = doc.FindMember("context");
      i != doc.MemberEnd() && i->value.IsObject()) {
    if (!get_string(i->value, "language", language)
        || !get_string(i->value, "id", context_id))
      return send_error(w, 400, "INVALID_REQUEST_BODY", bad_body);
  }
  if (!language.empty() || !context_id.empty())
    return send_error(w, 501, "NOT_SUPPORTED",
                      "code interpreting (Jupyter) is not supported by this "
                      "execd; omit context.language to run a shell command");
  // No language: a plain foreground shell command (contract §0.25).
  stream_sink sink{w};
  auto err = commands_.run(cr, sink);
  if (!err.empty() && !w.started())
    return send_error(w, 500, "RUNTIME_ERROR", err);
  if (w.started())
    w.finish();
}

} // namespace osb::execd
