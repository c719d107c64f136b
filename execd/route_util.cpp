#include "execd/route_util.hpp"

#include "base/json.hpp"
#include "execd/json.hpp"
#include "execd/util.hpp"

#include <sys/stat.h>
#include <unistd.h>

namespace osb::execd {

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

void send_ok(response_writer& w) {
  w.send(200, "", "");
}

void send_json(response_writer& w, const std::string& body) {
  w.send(200, "application/json", body);
}

void send_op_error(response_writer& w, const op_error& e) {
  send_error(w, e.status, e.code, e.message);
}

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

bool read_json(body_reader& body, response_writer& w,
               rapidjson::Document& doc, const char* empty_as) {
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

bool get_string(const rapidjson::Value& obj, const char* key,
                std::string& out) {
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

bool get_int(const rapidjson::Value& obj, const char* key,
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

bool get_bool(const rapidjson::Value& obj, const char* key, bool& out) {
  out = false;
  auto i = obj.FindMember(key);
  if (i == obj.MemberEnd() || i->value.IsNull())
    return true;
  if (!i->value.IsBool())
    return false;
  out = i->value.GetBool();
  return true;
}

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
    out.push_back(percent_decode(seg));
    if (j == std::string_view::npos)
      break;
    i = j;
  }
  return out;
}

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

} // namespace osb::execd
