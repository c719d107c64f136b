#include "execd/files.hpp"

#include "base/strings.hpp"
#include "execd/json.hpp"
#include "execd/users.hpp"
#include "execd/util.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

namespace osb::execd {

op_error op_error::from_errno(int err, const std::string& what) {
  if (err == ENOENT)
    return not_found(what + ": " + errno_text(err));
  return runtime(what + ": " + errno_text(err));
}

int mode_digits(mode_t mode) {
  auto m = static_cast<unsigned>(mode & 07777);
  int out = 0;
  int scale = 1;
  while (m > 0) {
    out += static_cast<int>(m & 7) * scale;
    scale *= 10;
    m >>= 3;
  }
  return out;
}

std::optional<mode_t> parse_mode_digits(int64_t digits) {
  if (digits < 0 || digits > 7777)
    return std::nullopt;
  mode_t out = 0;
  mode_t scale = 1;
  while (digits > 0) {
    auto d = digits % 10;
    if (d > 7)
      return std::nullopt;
    out += static_cast<mode_t>(d) * scale;
    scale *= 8;
    digits /= 10;
  }
  return out;
}

namespace {

void fill_info(const std::string& path, const struct stat& st,
               file_info& out) {
  out.path = path;
  if (S_ISREG(st.st_mode))
    out.type = "file";
  else if (S_ISDIR(st.st_mode))
    out.type = "directory";
  else if (S_ISLNK(st.st_mode))
    out.type = "symlink";
  else
    out.type = "other";
  out.size = static_cast<int64_t>(st.st_size);
  out.modified_at = st.st_mtim;
  out.created_at = st.st_ctim;
  out.owner = users::user_name(st.st_uid);
  out.group = users::group_name(st.st_gid);
  out.mode = mode_digits(st.st_mode);
}

std::string join(const std::string& dir, const std::string& name) {
  if (!dir.empty() && dir.back() == '/')
    return dir + name;
  return dir + "/" + name;
}

/// Reads the names in `dir`, sorted; false if it cannot be opened.
bool read_names(const std::string& dir, std::vector<std::string>& out) {
  auto d = ::opendir(dir.c_str());
  if (d == nullptr)
    return false;
  while (auto e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..")
      out.push_back(std::move(name));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return true;
}

} // namespace

op_error stat_path(const std::string& path, file_info& out) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0)
    return op_error::from_errno(errno, path);
  fill_info(path, st, out);
  return {};
}

void write_file_info(json_writer& w, const file_info& x) {
  w.begin_object();
  w.key("path").string(x.path);
  w.key("type").string(x.type);
  w.key("size").integer(x.size);
  w.key("modified_at").string(rfc3339(x.modified_at));
  w.key("created_at").string(rfc3339(x.created_at));
  w.key("owner").string(x.owner);
  w.key("group").string(x.group);
  w.key("mode").integer(x.mode);
  w.end_object();
}

op_error remove_file(const std::string& path) {
  if (::unlink(path.c_str()) == 0 || errno == ENOENT)
    return {};
  if (errno == EISDIR)
    return op_error::runtime(path + " is a directory");
  return op_error::runtime(path + ": " + errno_text(errno));
}

op_error remove_tree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory)
    return op_error::runtime(path + ": " + ec.message());
  return {};
}

op_error move_path(const std::string& src, const std::string& dest) {
  struct stat st{};
  if (::lstat(src.c_str(), &st) != 0)
    return op_error::from_errno(errno, src);
  if (::lstat(dest.c_str(), &st) == 0)
    return op_error::runtime("destination " + dest + " already exists");
  if (auto e = make_dirs(dirname_of(dest), 0755); e != 0)
    return op_error::runtime("cannot create parent of " + dest + ": "
                             + errno_text(e));
  if (::rename(src.c_str(), dest.c_str()) == 0)
    return {};
  if (errno != EXDEV)
    return op_error::from_errno(errno, "rename " + src);
  // Across file systems: copy, then delete the source.
  std::error_code ec;
  std::filesystem::copy(src, dest,
                        std::filesystem::copy_options::recursive
                          | std::filesystem::copy_options::copy_symlinks,
                        ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove_all(dest, ignored);
    return op_error::runtime("copy " + src + ": " + ec.message());
  }
  std::filesystem::remove_all(src, ec);
  return {};
}

op_error apply_permissions(const std::string& path, int64_t digits,
                           const std::string& owner, const std::string& group) {
  if (digits != 0) {
    auto mode = parse_mode_digits(digits);
    if (!mode)
      return op_error::bad_request("invalid mode " + std::to_string(digits));
    if (::chmod(path.c_str(), *mode) != 0)
      return op_error::from_errno(errno, "chmod " + path);
  }
  auto uid = users::uid_of(owner);
  auto gid = users::gid_of(group);
  if (!uid && !gid) {
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0 && st.st_uid == ::getuid()
        && st.st_gid == ::getgid())
      return {};
    if (::chown(path.c_str(), ::getuid(), ::getgid()) != 0 && errno != EPERM)
      return op_error::from_errno(errno, "chown " + path);
    return {};
  }
  if (::chown(path.c_str(), uid ? *uid : static_cast<uid_t>(-1),
              gid ? *gid : static_cast<gid_t>(-1))
      != 0)
    return op_error::from_errno(errno, "chown " + path);
  return {};
}

op_error make_directory(const std::string& path, int64_t digits,
                        const std::string& owner, const std::string& group) {
  if (auto e = make_dirs(path, 0755); e != 0)
    return op_error::runtime("mkdir " + path + ": " + errno_text(e));
  return apply_permissions(path, digits, owner, group);
}

namespace {

void walk(const std::string& dir, const std::string& pattern,
          std::vector<file_info>& out) {
  std::vector<std::string> names;
  if (!read_names(dir, names))
    return;
  for (auto& name : names) {
    auto path = join(dir, name);
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0)
      continue;
    if (S_ISDIR(st.st_mode)) {
      walk(path, pattern, out);
      continue;
    }
    if (glob_match(pattern, name)) {
      file_info info;
      fill_info(path, st, info);
      out.push_back(std::move(info));
    }
  }
}

void list_into(const std::string& dir, int depth, std::vector<file_info>& out) {
  std::vector<std::string> names;
  if (depth <= 0 || !read_names(dir, names))
    return;
  for (auto& name : names) {
    auto path = join(dir, name);
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0)
      continue;
    file_info info;
    fill_info(path, st, info);
    out.push_back(std::move(info));
    if (S_ISDIR(st.st_mode))
      list_into(path, depth - 1, out);
  }
}

} // namespace

op_error search_files(const std::string& root, const std::string& pattern,
                      std::vector<file_info>& out) {
  struct stat st{};
  if (::lstat(root.c_str(), &st) != 0)
    return op_error::from_errno(errno, root);
  auto pat = pattern.empty() ? std::string{"**"} : pattern;
  if (!S_ISDIR(st.st_mode)) {
    if (glob_match(pat, basename_of(root))) {
      file_info info;
      fill_info(root, st, info);
      out.push_back(std::move(info));
    }
    return {};
  }
  walk(root, pat, out);
  return {};
}

op_error list_directory(const std::string& root, int depth,
                        std::vector<file_info>& out) {
  struct stat st{};
  if (::lstat(root.c_str(), &st) != 0)
    return op_error::from_errno(errno, root);
  if (S_ISLNK(st.st_mode))
    return op_error::bad_request(root + " is a symbolic link");
  if (!S_ISDIR(st.st_mode))
    return op_error::bad_request(root + " is not a directory");
  list_into(root, depth, out);
  return {};
}

op_error replace_in_file(const std::string& path, const std::string& from,
                         const std::string& to, size_t* count) {
  if (from.empty())
    return op_error::bad_request("old content must not be empty");
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0)
    return op_error::from_errno(errno, path);
  if (S_ISDIR(st.st_mode))
    return op_error::bad_request(path + " is a directory");
  std::string text;
  if (!read_file(path, text))
    return op_error::from_errno(errno, path);
  std::string result;
  result.reserve(text.size());
  size_t n = 0;
  size_t pos = 0;
  for (;;) {
    auto hit = text.find(from, pos);
    if (hit == std::string::npos)
      break;
    result.append(text, pos, hit - pos);
    result += to;
    pos = hit + from.size();
    ++n;
  }
  result.append(text, pos, std::string::npos);
  // Always rewrite (as Go's os.WriteFile does): the mode stays, mtime moves.
  auto fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0)
    return op_error::from_errno(errno, path);
  size_t off = 0;
  while (off < result.size()) {
    auto w = ::write(fd, result.data() + off, result.size() - off);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      auto e = errno;
      ::close(fd);
      return op_error::from_errno(e, path);
    }
    off += static_cast<size_t>(w);
  }
  ::close(fd);
  if (count != nullptr)
    *count = n;
  return {};
}

// -- glob ---------------------------------------------------------------------

namespace {

/// Matches a bracket expression starting at p[pi] == '['. Sets `next` past
/// the closing bracket; returns nullopt if the expression is unterminated.
std::optional<bool> match_class(std::string_view p, size_t pi, char c,
                                size_t& next) {
  size_t i = pi + 1;
  bool negate = false;
  if (i < p.size() && (p[i] == '!' || p[i] == '^')) {
    negate = true;
    ++i;
  }
  bool matched = false;
  bool first = true;
  while (i < p.size() && (p[i] != ']' || first)) {
    first = false;
    char lo = p[i];
    if (lo == '\\' && i + 1 < p.size())
      lo = p[++i];
    ++i;
    char hi = lo;
    if (i + 1 < p.size() && p[i] == '-' && p[i + 1] != ']') {
      hi = p[i + 1];
      if (hi == '\\' && i + 2 < p.size()) {
        hi = p[i + 2];
        ++i;
      }
      i += 2;
    }
    if (c >= lo && c <= hi)
      matched = true;
  }
  if (i >= p.size())
    return std::nullopt;
  next = i + 1;
  return matched != negate;
}

bool match_simple(std::string_view p, std::string_view s) {
  size_t pi = 0;
  size_t si = 0;
  size_t star_p = std::string_view::npos;
  size_t star_s = 0;
  while (si < s.size()) {
    if (pi < p.size()) {
      char c = p[pi];
      if (c == '*') {
        while (pi < p.size() && p[pi] == '*')
          ++pi;
        star_p = pi;
        star_s = si;
        continue;
      }
      if (c == '?') {
        ++pi;
        ++si;
        continue;
      }
      if (c == '[') {
        size_t next = 0;
        auto m = match_class(p, pi, s[si], next);
        if (m && *m) {
          pi = next;
          ++si;
          continue;
        }
        if (!m && s[si] == '[') {
          ++pi;
          ++si;
          continue;
        }
      } else if (c == '\\' && pi + 1 < p.size()) {
        if (p[pi + 1] == s[si]) {
          pi += 2;
          ++si;
          continue;
        }
      } else if (c == s[si]) {
        ++pi;
        ++si;
        continue;
      }
    }
    if (star_p == std::string_view::npos)
      return false;
    pi = star_p;
    si = ++star_s;
  }
  while (pi < p.size() && p[pi] == '*')
    ++pi;
  return pi == p.size();
}

} // namespace

bool glob_match(std::string_view pattern, std::string_view name) {
  // Expand the first top-level {a,b} group, then recurse.
  int depth = 0;
  size_t open = std::string_view::npos;
  std::vector<size_t> commas;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\') {
      ++i;
      continue;
    }
    if (c == '{') {
      if (depth == 0)
        open = i;
      ++depth;
    } else if (c == ',' && depth == 1) {
      commas.push_back(i);
    } else if (c == '}' && depth > 0) {
      if (--depth == 0) {
        auto prefix = pattern.substr(0, open);
        auto suffix = pattern.substr(i + 1);
        size_t start = open + 1;
        commas.push_back(i);
        for (auto end : commas) {
          std::string alt{prefix};
          alt += pattern.substr(start, end - start);
          alt += suffix;
          if (glob_match(alt, name))
            return true;
          start = end + 1;
        }
        return false;
      }
    }
  }
  return match_simple(pattern, name);
}

// -- download helpers ---------------------------------------------------------

range_parse parse_range(std::string_view header, uint64_t size,
                        byte_range& out) {
  header = trim_ows(header);
  if (header.empty())
    return range_parse::none;
  if (header.substr(0, 6) != "bytes=")
    return range_parse::none;
  auto spec = header.substr(6);
  spec = trim_ows(spec.substr(0, spec.find(',')));
  auto dash = spec.find('-');
  if (dash == std::string_view::npos)
    return range_parse::unsatisfiable;
  auto a = trim_ows(spec.substr(0, dash));
  auto b = trim_ows(spec.substr(dash + 1));
  if (a.empty()) {
    auto n = parse_u64(b);
    if (!n || *n == 0 || size == 0)
      return range_parse::unsatisfiable;
    out.first = *n >= size ? 0 : size - *n;
    out.last = size - 1;
    return range_parse::ok;
  }
  auto first = parse_u64(a);
  if (!first || *first >= size)
    return range_parse::unsatisfiable;
  out.first = *first;
  if (b.empty()) {
    out.last = size - 1;
    return range_parse::ok;
  }
  auto last = parse_u64(b);
  if (!last || *last < *first)
    return range_parse::unsatisfiable;
  out.last = std::min(*last, size - 1);
  return range_parse::ok;
}

std::string content_disposition(const std::string& name) {
  bool plain = true;
  for (auto c : name) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\')
      plain = false;
  }
  if (plain)
    return "attachment; filename=\"" + name + "\"";
  std::string fallback;
  std::string encoded;
  static constexpr char hex[] = "0123456789ABCDEF";
  for (auto c : name) {
    auto u = static_cast<unsigned char>(c);
    fallback += (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') ? '_' : c;
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z')
        || (u >= '0' && u <= '9') || c == '.' || c == '-' || c == '_'
        || c == '~') {
      encoded += c;
    } else {
      encoded += '%';
      encoded += hex[u >> 4];
      encoded += hex[u & 15];
    }
  }
  return "attachment; filename=\"" + fallback + "\"; filename*=UTF-8''"
         + encoded;
}

int open_for_upload(const std::string& path, op_error* err) {
  if (auto e = make_dirs(dirname_of(path), 0755); e != 0) {
    if (err != nullptr)
      *err = op_error::runtime("cannot create parent of " + path + ": "
                               + errno_text(e));
    return -1;
  }
  auto fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                   0777);
  if (fd < 0 && err != nullptr)
    *err = op_error::runtime("open " + path + ": " + errno_text(errno));
  return fd;
}

} // namespace osb::execd
