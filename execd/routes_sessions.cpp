// execd routes: /session (bash sessions).

#include "execd/routes.hpp"

#include "execd/json.hpp"
#include "execd/route_util.hpp"

namespace osb::execd {

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

} // namespace osb::execd
