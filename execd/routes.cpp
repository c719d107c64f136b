// execd's API routing: which handler serves a method and path.

#include "execd/routes.hpp"

#include "execd/claim.hpp"
#include "execd/route_util.hpp"

namespace osb::execd {

router::router(command_manager& commands, session_manager& sessions,
               metrics_sampler& metrics, code_manager& code,
               pty_manager& ptys)
  : commands_(commands),
    sessions_(sessions),
    metrics_(metrics),
    code_(code),
    ptys_(ptys) {
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
  if (is({"bootstrap", "claim"})) {
    if (m == "POST")
      return handle_claim(body, w);
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
        return create_context(body, w);
      return not_allowed();
    }
    if (n == 2 && seg[1] == "contexts") {
      if (m == "GET")
        return list_contexts(req, w);
      if (m == "DELETE")
        return delete_contexts(req, w);
      return not_allowed();
    }
    if (n == 3 && seg[1] == "contexts") {
      if (m == "GET")
        return get_context(seg[2], w);
      if (m == "DELETE")
        return delete_context(seg[2], w);
      return not_allowed();
    }
  } else if (head == "pty") {
    if (n == 1) {
      if (m == "POST")
        return create_pty(body, w);
      return not_allowed();
    }
    if (n == 2) {
      if (m == "GET")
        return pty_status(seg[1], w);
      if (m == "DELETE")
        return delete_pty(seg[1], w);
      return not_allowed();
    }
    if (n == 3 && seg[2] == "ws") {
      if (m == "GET")
        return attach_pty(req, seg[1], w);
      return not_allowed();
    }
  }
  send_error(w, 404, "NOT_FOUND", "no route for " + req.path);
}

} // namespace osb::execd
