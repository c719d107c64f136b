#include "execd/users.hpp"

#include "execd/util.hpp"

#include <sys/stat.h>

#include <mutex>

namespace osb::execd {

namespace {

std::vector<std::string_view> split(std::string_view x, char sep) {
  std::vector<std::string_view> out;
  size_t i = 0;
  for (;;) {
    auto j = x.find(sep, i);
    out.push_back(x.substr(i, j == std::string_view::npos ? j : j - i));
    if (j == std::string_view::npos)
      return out;
    i = j + 1;
  }
}

template <class F>
void for_each_line(std::string_view text, F f) {
  for (auto line : split(text, '\n')) {
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (line.empty() || line[0] == '#')
      continue;
    f(line);
  }
}

} // namespace

std::vector<passwd_entry> parse_passwd(std::string_view text) {
  std::vector<passwd_entry> out;
  for_each_line(text, [&](std::string_view line) {
    auto f = split(line, ':');
    if (f.size() < 4 || f[0].empty())
      return;
    auto uid = parse_u64(f[2]);
    auto gid = parse_u64(f[3]);
    if (!uid || !gid)
      return;
    passwd_entry e;
    e.name = std::string{f[0]};
    e.uid = static_cast<uid_t>(*uid);
    e.gid = static_cast<gid_t>(*gid);
    if (f.size() > 5)
      e.home = std::string{f[5]};
    out.push_back(std::move(e));
  });
  return out;
}

std::vector<group_entry> parse_group(std::string_view text) {
  std::vector<group_entry> out;
  for_each_line(text, [&](std::string_view line) {
    auto f = split(line, ':');
    if (f.size() < 3 || f[0].empty())
      return;
    auto gid = parse_u64(f[2]);
    if (!gid)
      return;
    group_entry e;
    e.name = std::string{f[0]};
    e.gid = static_cast<gid_t>(*gid);
    if (f.size() > 3 && !f[3].empty())
      for (auto m : split(f[3], ','))
        if (!m.empty())
          e.members.emplace_back(m);
    out.push_back(std::move(e));
  });
  return out;
}

namespace users {

namespace {

struct db {
  std::mutex mtx;
  std::string root;
  timespec passwd_mtime{-1, 0};
  timespec group_mtime{-1, 0};
  std::vector<passwd_entry> passwd;
  std::vector<group_entry> group;
};

db& instance() {
  static db x;
  return x;
}

bool same(const timespec& a, const timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/// Re-reads changed files; call with the lock held.
void refresh(db& d) {
  auto load = [&](const char* name, timespec& mtime, auto parse, auto& dst) {
    auto path = d.root + name;
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) {
      dst.clear();
      mtime = timespec{-1, 0};
      return;
    }
    if (same(st.st_mtim, mtime))
      return;
    std::string text;
    if (read_file(path, text)) {
      dst = parse(text);
      mtime = st.st_mtim;
    }
  };
  load("/etc/passwd", d.passwd_mtime, parse_passwd, d.passwd);
  load("/etc/group", d.group_mtime, parse_group, d.group);
}

} // namespace

std::string user_name(uid_t uid) {
  auto& d = instance();
  std::lock_guard<std::mutex> guard{d.mtx};
  refresh(d);
  for (auto& e : d.passwd)
    if (e.uid == uid)
      return e.name;
  return std::to_string(uid);
}

std::string group_name(gid_t gid) {
  auto& d = instance();
  std::lock_guard<std::mutex> guard{d.mtx};
  refresh(d);
  for (auto& e : d.group)
    if (e.gid == gid)
      return e.name;
  return std::to_string(gid);
}

std::optional<uid_t> uid_of(std::string_view name) {
  if (name.empty())
    return std::nullopt;
  auto& d = instance();
  std::lock_guard<std::mutex> guard{d.mtx};
  refresh(d);
  for (auto& e : d.passwd)
    if (e.name == name)
      return e.uid;
  if (auto n = parse_u64(name); n && *n < 0xFFFFFFFFu)
    return static_cast<uid_t>(*n);
  return std::nullopt;
}

std::optional<gid_t> gid_of(std::string_view name) {
  if (name.empty())
    return std::nullopt;
  auto& d = instance();
  std::lock_guard<std::mutex> guard{d.mtx};
  refresh(d);
  for (auto& e : d.group)
    if (e.name == name)
      return e.gid;
  if (auto n = parse_u64(name); n && *n < 0xFFFFFFFFu)
    return static_cast<gid_t>(*n);
  return std::nullopt;
}

std::optional<passwd_entry> by_uid(uid_t uid) {
  auto& d = instance();
  std::lock_guard<std::mutex> guard{d.mtx};
  refresh(d);
  for (auto& e : d.passwd)
    if (e.uid == uid)
      return e;
  return std::nullopt;
}

std::vector<gid_t> groups_of(std::string_view user) {
  std::vector<gid_t> out;
  auto& d = instance();
  std::lock_guard<std::mutex> guard{d.mtx};
  refresh(d);
  for (auto& e : d.group)
    for (auto& m : e.members)
      if (m == user)
        out.push_back(e.gid);
  return out;
}

void set_root(std::string root) {
  auto& d = instance();
  std::lock_guard<std::mutex> guard{d.mtx};
  d.root = std::move(root);
  d.passwd_mtime = timespec{-1, 0};
  d.group_mtime = timespec{-1, 0};
  d.passwd.clear();
  d.group.clear();
}

} // namespace users

} // namespace osb::execd
