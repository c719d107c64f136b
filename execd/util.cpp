#include "execd/util.hpp"

#include "base/strings.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

extern char** environ;

namespace osb::execd {

timespec wall_clock() {
  timespec t{};
  ::clock_gettime(CLOCK_REALTIME, &t);
  return t;
}

int64_t now_ms() {
  auto t = wall_clock();
  return static_cast<int64_t>(t.tv_sec) * 1000 + t.tv_nsec / 1000000;
}

std::string rfc3339(const timespec& t) {
  tm parts{};
  time_t secs = t.tv_sec;
  ::gmtime_r(&secs, &parts);
  char buf[64];
  auto n = std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d",
                         parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                         parts.tm_hour, parts.tm_min, parts.tm_sec);
  std::string out(buf, static_cast<size_t>(n));
  if (t.tv_nsec > 0) {
    char frac[32];
    std::snprintf(frac, sizeof(frac), "%09ld", static_cast<long>(t.tv_nsec));
    std::string f = frac;
    while (!f.empty() && f.back() == '0')
      f.pop_back();
    out += '.';
    out += f;
  }
  out += 'Z';
  return out;
}

std::string random_hex(size_t n) {
  std::string bytes(n, '\0');
  size_t got = 0;
  while (got < n) {
    auto r = ::getrandom(bytes.data() + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      // No getrandom (very old kernel): a seeded PRNG is good enough for ids.
      static thread_local std::mt19937_64 gen{std::random_device{}()};
      for (; got < n; ++got)
        bytes[got] = static_cast<char>(gen());
      break;
    }
    got += static_cast<size_t>(r);
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (auto c : bytes) {
    auto u = static_cast<unsigned char>(c);
    out += digits[u >> 4];
    out += digits[u & 15];
  }
  return out;
}

std::string new_uuid() {
  auto h = random_hex(16);
  h[12] = '4';
  static constexpr char variant[] = "89ab";
  h[16] = variant[std::strtoul(h.substr(16, 1).c_str(), nullptr, 16) & 3];
  return h.substr(0, 8) + '-' + h.substr(8, 4) + '-' + h.substr(12, 4) + '-'
         + h.substr(16, 4) + '-' + h.substr(20);
}

env_list current_env() {
  env_list out;
  for (auto p = environ; p != nullptr && *p != nullptr; ++p)
    out.emplace_back(*p);
  return out;
}

std::optional<std::string> env_get(const env_list& env, std::string_view key) {
  for (auto& kv : env)
    if (kv.size() > key.size() && kv[key.size()] == '='
        && std::string_view{kv}.substr(0, key.size()) == key)
      return kv.substr(key.size() + 1);
  return std::nullopt;
}

void env_set(env_list& env, std::string_view key, std::string_view value) {
  std::string entry{key};
  entry += '=';
  entry += value;
  for (auto& kv : env) {
    if (kv.size() > key.size() && kv[key.size()] == '='
        && std::string_view{kv}.substr(0, key.size()) == key) {
      kv = std::move(entry);
      return;
    }
  }
  env.push_back(std::move(entry));
}

namespace {

bool is_name_char(char c, bool first) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
         || (!first && c >= '0' && c <= '9');
}

} // namespace

std::optional<std::string> expand_vars(
  std::string_view x,
  const std::function<std::optional<std::string>(const std::string&)>& lookup,
  bool strict, std::string* undefined) {
  std::string out;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] != '$' || i + 1 >= x.size()) {
      out += x[i];
      continue;
    }
    std::string name;
    size_t end = i + 1;
    if (x[i + 1] == '{') {
      auto close = x.find('}', i + 2);
      if (close == std::string_view::npos) {
        out += x[i];
        continue;
      }
      name = std::string{x.substr(i + 2, close - i - 2)};
      end = close + 1;
    } else {
      while (end < x.size() && is_name_char(x[end], end == i + 1))
        ++end;
      name = std::string{x.substr(i + 1, end - i - 1)};
      if (name.empty()) {
        out += x[i];
        continue;
      }
    }
    auto value = lookup(name);
    if (!value) {
      if (strict) {
        if (undefined != nullptr)
          *undefined = name;
        return std::nullopt;
      }
    } else {
      out += *value;
    }
    i = end - 1;
  }
  return out;
}

std::optional<std::string> resolve_path(std::string_view path,
                                        const env_list& env,
                                        std::string* err) {
  std::string undefined;
  auto lookup = [&](const std::string& name) { return env_get(env, name); };
  auto expanded = expand_vars(path, lookup, true, &undefined);
  if (!expanded) {
    if (err != nullptr)
      *err = "environment variable " + undefined + " is not defined";
    return std::nullopt;
  }
  std::string p = expanded.value_or(std::string{});
  if (!p.empty() && p[0] == '~' && (p.size() == 1 || p[1] == '/')) {
    auto home = env_get(env, "HOME");
    p = (home ? *home : std::string{"/root"}) + p.substr(1);
  }
  if (p.empty() || p[0] != '/') {
    char buf[4096];
    std::string cwd = ::getcwd(buf, sizeof(buf)) != nullptr ? buf : "/";
    p = cwd + "/" + p;
  }
  return normalize_path(p);
}

std::string dirname_of(std::string_view path) {
  auto norm = normalize_path(path);
  auto slash = norm.rfind('/');
  if (slash == 0 || slash == std::string::npos)
    return "/";
  return norm.substr(0, slash);
}

std::string basename_of(std::string_view path) {
  while (path.size() > 1 && path.back() == '/')
    path.remove_suffix(1);
  auto slash = path.rfind('/');
  if (slash == std::string_view::npos)
    return std::string{path};
  if (path.size() == 1)
    return "/";
  return std::string{path.substr(slash + 1)};
}

std::string shell_quote(std::string_view x) {
  std::string out = "'";
  for (auto c : x) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  out += '\'';
  return out;
}

bool read_file(const std::string& path, std::string& out) {
  auto fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  out.clear();
  char buf[8192];
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      ::close(fd);
      return false;
    }
    if (n == 0)
      break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

int make_dirs(const std::string& path, unsigned mode) {
  auto norm = normalize_path(path);
  struct stat st{};
  if (::stat(norm.c_str(), &st) == 0)
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
  size_t pos = 1;
  for (;;) {
    auto slash = norm.find('/', pos);
    auto prefix = norm.substr(0, slash);
    if (::mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST)
      return errno;
    if (slash == std::string::npos)
      break;
    pos = slash + 1;
  }
  if (::stat(norm.c_str(), &st) != 0)
    return errno;
  return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

std::string work_dir() {
  static const std::string dir = [] {
    auto tmp = std::getenv("TMPDIR");
    std::string base = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
    auto d = normalize_path(base + "/.opensandbox-execd");
    make_dirs(d, 0755);
    return d;
  }();
  return dir;
}

std::optional<uint64_t> parse_u64(std::string_view x) {
  if (x.empty() || x.size() > 19)
    return std::nullopt;
  uint64_t v = 0;
  for (auto c : x) {
    if (c < '0' || c > '9')
      return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::string errno_text(int err) {
  char buf[256];
  // GNU strerror_r returns the message pointer.
  return ::strerror_r(err, buf, sizeof(buf));
}

} // namespace osb::execd
