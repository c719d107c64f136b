// execd routes: /pty (terminal sessions) and their WebSocket.

#include "execd/routes.hpp"

#include "execd/json.hpp"
#include "execd/route_util.hpp"
#include "execd/util.hpp"
#include "execd/websocket.hpp"

namespace osb::execd {

void router::create_pty(body_reader& body, response_writer& w) {
  rapidjson::Document doc;
  if (!read_json(body, w, doc, "{}"))
    return;
  pty_options o;
  std::string cwd;
  std::optional<int64_t> cols;
  std::optional<int64_t> rows;
  if (!doc.IsObject() || !get_string(doc, "cwd", cwd)
      || !get_string(doc, "command", o.command) || !get_int(doc, "cols", cols)
      || !get_int(doc, "rows", rows))
    return send_error(w, 400, "INVALID_REQUEST_BODY", bad_body);
  if ((cols && (*cols < 1 || *cols > 10000))
      || (rows && (*rows < 1 || *rows > 10000)))
    return send_error(w, 400, "INVALID_REQUEST_BODY",
                      "cols and rows must be between 1 and 10000");
  if (cols)
    o.cols = static_cast<uint16_t>(*cols);
  if (rows)
    o.rows = static_cast<uint16_t>(*rows);
  if (!cwd.empty()) {
    std::string err;
    auto p = resolve_path(cwd, command_env({}), &err);
    if (!p)
      return send_error(w, 400, "INVALID_REQUEST_BODY", err);
    if (!is_directory(*p))
      return send_error(w, 400, "INVALID_REQUEST_BODY",
                        "working directory " + *p
                          + " does not exist or is not a directory");
    o.cwd = *p;
  }
  auto id = ptys_.create(o);
  if (id.empty())
    return send_error(w, 429, "TOO_MANY_SESSIONS",
                      "too many terminal sessions; delete some first");
  json_writer out;
  out.begin_object().key("session_id").string(id).end_object();
  w.send(201, "application/json", out.str());
}

void router::pty_status(const std::string& id, response_writer& w) {
  auto s = ptys_.find(id);
  if (!s)
    return send_error(w, 404, "SESSION_NOT_FOUND",
                      "pty session " + id + " not found");
  json_writer out;
  out.begin_object()
    .key("session_id")
    .string(id)
    .key("running")
    .boolean(s->running())
    .key("output_offset")
    .integer(static_cast<int64_t>(s->output_offset()))
    .end_object();
  send_json(w, out.take());
}

void router::delete_pty(const std::string& id, response_writer& w) {
  if (!ptys_.remove(id))
    return send_error(w, 404, "SESSION_NOT_FOUND",
                      "pty session " + id + " not found");
  send_ok(w);
}

void router::attach_pty(const http_request& req, const std::string& id,
                        response_writer& w) {
  auto s = ptys_.find(id);
  if (!s)
    return send_error(w, 404, "SESSION_NOT_FOUND",
                      "pty session " + id + " not found");
  bool takeover = req.query_get("takeover").value_or("") == "1";
  if (s->attached() && !takeover)
    return send_error(w, 409, "ALREADY_CONNECTED",
                      "another client is attached to pty session " + id
                        + " (add takeover=1 to take it over)");
  std::optional<uint64_t> since;
  if (auto x = req.query_get("since"); x && !x->empty()) {
    auto v = parse_u64(*x);
    if (!v)
      return send_error(w, 400, "INVALID_REQUEST", "invalid since " + *x);
    since = *v;
  }
  bool pipe_mode = req.query_get("pty").value_or("") == "0";
  auto ws = ws::upgrade(req, w);
  if (!ws)
    return;
  s->serve(ws, pipe_mode, since);
}

} // namespace osb::execd
