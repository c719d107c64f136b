// execd routes: /command (run, interrupt, status, background logs).

#include "execd/routes.hpp"

#include "execd/route_util.hpp"
#include "execd/util.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace osb::execd {

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
  // One dispatcher for DELETE /command and DELETE /code, as in Go: a code
  // context first, then commands, then bash sessions.
  switch (code_.interrupt(*id)) {
    case code_manager::interrupt_result::done:
      return send_ok(w);
    case code_manager::interrupt_result::not_running:
      return send_error(w, 409, "NOT_RUNNING",
                        "context " + *id + " is not running any code");
    case code_manager::interrupt_result::unknown:
      break;
  }
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
  if (segments(req.path).front() == "code")
    return send_error(w, 404, "CONTEXT_NOT_FOUND",
                      "context " + *id + " not found");
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

} // namespace osb::execd
