#pragma once

#include "base/http_io.hpp"
#include "execd/code.hpp"
#include "execd/commands.hpp"
#include "execd/metrics.hpp"
#include "execd/pty.hpp"
#include "execd/sessions.hpp"

namespace osb::execd {

// execd speaks the request model of the shared server (base/http_io.hpp).
using base::body_reader;
using base::header_list;
using base::http_handler;
using base::http_request;
using base::response_writer;

/// The execd API (everything but `/proxy`, which needs the raw connection
/// and lives in the server's front, execd/server.cpp). Stateless apart from
/// the services it uses. The handlers live with their concern:
/// execd/routes_{commands,sessions,files,upload,metrics,code,pty}.cpp.
class router {
public:
  router(command_manager& commands, session_manager& sessions,
         metrics_sampler& metrics, code_manager& code, pty_manager& ptys);

  /// Dispatches one request.
  void operator()(const http_request& req, body_reader& body,
                  response_writer& w);

private:
  void run_command(const http_request& req, body_reader& body,
                   response_writer& w);
  void interrupt(const http_request& req, response_writer& w);
  void command_status(const std::string& id, response_writer& w);
  void command_logs(const http_request& req, const std::string& id,
                    response_writer& w);
  void create_session(body_reader& body, response_writer& w);
  void run_in_session(const std::string& id, body_reader& body,
                      response_writer& w);
  void delete_session(const std::string& id, response_writer& w);
  void files_info(const http_request& req, response_writer& w);
  void files_delete(const http_request& req, response_writer& w);
  void files_permissions(body_reader& body, response_writer& w);
  void files_move(body_reader& body, response_writer& w);
  void files_search(const http_request& req, response_writer& w);
  void files_replace(const http_request& req, body_reader& body,
                     response_writer& w);
  void files_upload(const http_request& req, body_reader& body,
                    response_writer& w);
  void files_download(const http_request& req, response_writer& w);
  void directories_list(const http_request& req, response_writer& w);
  void directories_create(body_reader& body, response_writer& w);
  void directories_delete(const http_request& req, response_writer& w);
  void metrics(response_writer& w);
  void metrics_watch(response_writer& w);
  void run_code(body_reader& body, response_writer& w);
  void create_context(body_reader& body, response_writer& w);
  void list_contexts(const http_request& req, response_writer& w);
  void delete_contexts(const http_request& req, response_writer& w);
  void get_context(const std::string& id, response_writer& w);
  void delete_context(const std::string& id, response_writer& w);
  void create_pty(body_reader& body, response_writer& w);
  void pty_status(const std::string& id, response_writer& w);
  void delete_pty(const std::string& id, response_writer& w);
  void attach_pty(const http_request& req, const std::string& id,
                  response_writer& w);

  command_manager& commands_;
  session_manager& sessions_;
  metrics_sampler& metrics_;
  code_manager& code_;
  pty_manager& ptys_;
};

/// Sends the error envelope `{"code": ..., "message": ...}`.
void send_error(response_writer& w, int status, std::string_view code,
                std::string_view message);

/// An event_sink that commits a 200 `text/event-stream` response on the
/// first event, so that failures before it can still be JSON errors.
class stream_sink : public event_sink {
public:
  explicit stream_sink(response_writer& w) : w_(w) {
    // nop
  }

  bool write(std::string_view bytes) override;

private:
  response_writer& w_;
  bool ok_ = true;
};

} // namespace osb::execd
