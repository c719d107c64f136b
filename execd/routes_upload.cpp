// execd route: POST /files/upload (streaming multipart).

#include "execd/routes.hpp"

#include "base/json.hpp"
#include "execd/multipart.hpp"
#include "execd/route_util.hpp"
#include "execd/util.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

namespace osb::execd {

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

} // namespace osb::execd
