// execd routes: /code (contexts and runs on Jupyter kernels; a shell
// command without a language) and /code/context(s).

#include "execd/routes.hpp"

#include "execd/json.hpp"
#include "execd/route_util.hpp"
#include "execd/util.hpp"

namespace osb::execd {

namespace {

std::string context_json(const code_context_info& c) {
  json_writer w;
  w.begin_object().key("id").string(c.id).key("language").string(c.language);
  if (!c.cwd.empty())
    w.key("cwd").string(c.cwd);
  w.end_object();
  return w.take();
}

void send_code_error(response_writer& w, const code_error& e) {
  send_error(w, e.status, e.code, e.message);
}

/// Languages that name execd's other runners, not kernels (Go's list).
bool is_runner_language(const std::string& lang) {
  return lang == "command" || lang == "background-command" || lang == "sql";
}

} // namespace

void router::create_context(body_reader& body, response_writer& w) {
  rapidjson::Document doc;
  if (!read_json(body, w, doc))
    return;
  std::string language;
  std::string cwd;
  if (!doc.IsObject() || !get_string(doc, "language", language)
      || !get_string(doc, "cwd", cwd))
    return send_error(w, 400, "INVALID_REQUEST_BODY", bad_body);
  if (language.empty())
    return send_error(w, 400, "INVALID_REQUEST_BODY",
                      "language must not be empty");
  std::string dir;
  if (!cwd.empty()) {
    std::string err;
    auto p = resolve_path(cwd, command_env({}), &err);
    if (!p)
      return send_error(w, 400, "INVALID_REQUEST_BODY", err);
    if (auto e = make_dirs(*p, 0755); e != 0)
      return send_error(w, 500, "RUNTIME_ERROR",
                        "cannot create " + *p + ": " + errno_text(e));
    dir = *p;
  }
  code_context_info info;
  if (auto e = code_.create(language, dir, info); !e.ok())
    return send_code_error(w, e);
  info.cwd = cwd;
  send_json(w, context_json(info));
}

void router::list_contexts(const http_request& req, response_writer& w) {
  auto lang = req.query_get("language").value_or("");
  if (is_runner_language(lang))
    return send_error(w, 400, "INVALID_REQUEST_BODY",
                      "language " + lang + " has no code contexts");
  json_writer out;
  out.begin_array();
  for (auto& c : code_.list(lang))
    out.begin_object()
      .key("id")
      .string(c.id)
      .key("language")
      .string(c.language)
      .end_object();
  out.end_array();
  send_json(w, out.take());
}

void router::delete_contexts(const http_request& req, response_writer& w) {
  auto lang = req.query_get("language");
  if (!lang || lang->empty())
    return send_error(w, 400, "MISSING_QUERY",
                      "missing query parameter language");
  code_.remove_language(*lang);
  send_ok(w);
}

void router::get_context(const std::string& id, response_writer& w) {
  auto c = code_.get(id);
  if (!c)
    return send_error(w, 404, "CONTEXT_NOT_FOUND",
                      "context " + id + " not found");
  send_json(w, context_json(*c));
}

void router::delete_context(const std::string& id, response_writer& w) {
  if (!code_.remove(id))
    return send_error(w, 404, "CONTEXT_NOT_FOUND",
                      "context " + id + " not found");
  send_ok(w);
}

void router::run_code(body_reader& body, response_writer& w) {
  rapidjson::Document doc;
  if (!read_json(body, w, doc))
    return;
  std::string code;
  if (!doc.IsObject() || !get_string(doc, "code", code))
    return send_error(w, 400, "INVALID_REQUEST_BODY", bad_body);
  if (code.empty())
    return send_error(w, 400, "INVALID_REQUEST_BODY", "code must not be empty");
  std::string language;
  std::string context_id;
  if (auto i = doc.FindMember("context");
      i != doc.MemberEnd() && !i->value.IsNull()) {
    if (!i->value.IsObject() || !get_string(i->value, "language", language)
        || !get_string(i->value, "id", context_id))
      return send_error(w, 400, "INVALID_REQUEST_BODY", bad_body);
  }
  if (language.empty() && context_id.empty()) {
    // No language: a plain foreground shell command (contract §0.25).
    command_request cr;
    cr.command = std::move(code);
    stream_sink sink{w};
    auto err = commands_.run(cr, sink);
    if (!err.empty() && !w.started())
      return send_error(w, 500, "RUNTIME_ERROR", err);
    if (w.started())
      w.finish();
    return;
  }
  if (context_id.empty() && is_runner_language(language))
    return send_error(w, 400, "INVALID_REQUEST_BODY",
                      "language " + language + " is not run by a kernel");
  stream_sink sink{w};
  auto e = code_.run(context_id, language, code, sink);
  if (!e.ok() && !w.started())
    return send_code_error(w, e);
  if (w.started())
    w.finish();
}

} // namespace osb::execd
