// execd routes: /files (info, delete, permissions, move, search, replace,
// download) and /directories. Uploads: execd/routes_upload.cpp.

#include "execd/routes.hpp"

#include "execd/json.hpp"
#include "execd/route_util.hpp"
#include "execd/util.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace osb::execd {

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
  auto verbose = lower(req.query_get("verbose").value_or(""));
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

} // namespace osb::execd
