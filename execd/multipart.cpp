#include "execd/multipart.hpp"

#include "base/strings.hpp"
#include "execd/util.hpp"

namespace osb::execd {

namespace {

/// Limit for the header block of one part.
constexpr size_t max_header_bytes = 16 * 1024;

/// Returns parameter `key` of a header value like `form-data; name="x"`.
std::string header_param(std::string_view value, std::string_view key) {
  size_t i = 0;
  while (i < value.size()) {
    // Find the next ';' outside quotes.
    bool quoted = false;
    size_t j = i;
    for (; j < value.size(); ++j) {
      if (value[j] == '"')
        quoted = !quoted;
      else if (value[j] == '\\' && quoted)
        ++j;
      else if (value[j] == ';' && !quoted)
        break;
    }
    auto item = trim_ows(value.substr(i, j - i));
    i = j + 1;
    auto eq = item.find('=');
    if (eq == std::string_view::npos)
      continue;
    if (lower(trim_ows(item.substr(0, eq))) != key)
      continue;
    auto v = trim_ows(item.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
      std::string out;
      for (size_t k = 1; k + 1 < v.size(); ++k) {
        if (v[k] == '\\' && k + 2 < v.size())
          ++k;
        out += v[k];
      }
      return out;
    }
    return std::string{v};
  }
  return {};
}

} // namespace

std::string multipart_boundary(std::string_view content_type) {
  auto semi = content_type.find(';');
  if (semi == std::string_view::npos)
    return {};
  return header_param(content_type.substr(semi + 1), "boundary");
}

multipart_parser::multipart_parser(std::string boundary, callbacks cbs)
  : delimiter_("\r\n--" + boundary), cbs_(std::move(cbs)) {
  // The first delimiter may start the body without a preceding CRLF.
  buf_ = "\r\n";
}

bool multipart_parser::fail(std::string msg) {
  state_ = state::failed;
  error_ = std::move(msg);
  return false;
}

bool multipart_parser::parse_headers(std::string_view block) {
  part_headers h;
  while (!block.empty()) {
    auto eol = block.find("\r\n");
    auto line = block.substr(0, eol);
    block = eol == std::string_view::npos ? std::string_view{}
                                          : block.substr(eol + 2);
    auto colon = line.find(':');
    if (colon == std::string_view::npos)
      continue;
    auto name = lower(trim_ows(line.substr(0, colon)));
    auto value = trim_ows(line.substr(colon + 1));
    if (name == "content-disposition") {
      h.name = header_param(value, "name");
      h.filename = header_param(value, "filename");
    } else if (name == "content-type") {
      h.content_type = std::string{value};
    }
  }
  if (cbs_.on_begin && !cbs_.on_begin(h))
    return fail("aborted");
  return true;
}

bool multipart_parser::feed(std::string_view data) {
  if (state_ == state::failed)
    return false;
  if (state_ == state::done)
    return true; // epilogue is ignored
  buf_.append(data.data(), data.size());
  size_t pos = 0;
  bool progress = true;
  while (progress) {
    progress = false;
    std::string_view rest{buf_.data() + pos, buf_.size() - pos};
    switch (state_) {
      case state::preamble: {
        auto hit = rest.find(delimiter_);
        if (hit == std::string_view::npos) {
          // Keep a tail that may be the start of the delimiter.
          if (rest.size() > delimiter_.size())
            pos += rest.size() - delimiter_.size();
          break;
        }
        pos += hit + delimiter_.size();
        state_ = state::after_delimiter;
        progress = true;
        break;
      }
      case state::after_delimiter: {
        if (rest.size() < 2)
          break;
        if (rest.substr(0, 2) == "--") {
          state_ = state::done;
          buf_.clear();
          return true;
        }
        // Transport padding (spaces/tabs) may precede the CRLF.
        size_t i = 0;
        while (i < rest.size() && (rest[i] == ' ' || rest[i] == '\t'))
          ++i;
        if (rest.size() - i < 2)
          break;
        if (rest.substr(i, 2) != "\r\n")
          return fail("malformed multipart delimiter");
        pos += i + 2;
        state_ = state::headers;
        progress = true;
        break;
      }
      case state::headers: {
        // An empty header block ends right away with CRLF.
        if (rest.substr(0, 2) == "\r\n") {
          pos += 2;
          if (!parse_headers({}))
            return false;
          state_ = state::body;
          progress = true;
          break;
        }
        auto end = rest.find("\r\n\r\n");
        if (end == std::string_view::npos) {
          if (rest.size() > max_header_bytes)
            return fail("multipart part headers too large");
          break;
        }
        if (!parse_headers(rest.substr(0, end)))
          return false;
        pos += end + 4;
        state_ = state::body;
        progress = true;
        break;
      }
      case state::body: {
        auto hit = rest.find(delimiter_);
        if (hit == std::string_view::npos) {
          // Emit all but a possible delimiter prefix at the end.
          if (rest.size() >= delimiter_.size()) {
            auto n = rest.size() - (delimiter_.size() - 1);
            if (cbs_.on_data && !cbs_.on_data(rest.substr(0, n)))
              return fail("aborted");
            pos += n;
          }
          break;
        }
        if (hit > 0 && cbs_.on_data && !cbs_.on_data(rest.substr(0, hit)))
          return fail("aborted");
        if (cbs_.on_end && !cbs_.on_end())
          return fail("aborted");
        pos += hit + delimiter_.size();
        state_ = state::after_delimiter;
        progress = true;
        break;
      }
      case state::done:
      case state::failed:
        break;
    }
  }
  buf_.erase(0, pos);
  return true;
}

} // namespace osb::execd
