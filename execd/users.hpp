#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace osb::execd {

/// One line of /etc/passwd.
struct passwd_entry {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home;
};

/// One line of /etc/group.
struct group_entry {
  std::string name;
  gid_t gid = 0;
  std::vector<std::string> members;
};

/// Parses /etc/passwd text; malformed lines are skipped.
std::vector<passwd_entry> parse_passwd(std::string_view text);

/// Parses /etc/group text; malformed lines are skipped.
std::vector<group_entry> parse_group(std::string_view text);

/// User and group names read straight from /etc/passwd and /etc/group.
/// (getpwuid & co. would go through NSS, which does not work in a static
/// binary.) The files are re-read when their mtime changes. Thread-safe.
namespace users {

/// Name of `uid`, or its decimal form when unknown.
std::string user_name(uid_t uid);

/// Name of `gid`, or its decimal form when unknown.
std::string group_name(gid_t gid);

/// The uid of a user name (a decimal string is taken as a uid).
std::optional<uid_t> uid_of(std::string_view name);

/// The gid of a group name (a decimal string is taken as a gid).
std::optional<gid_t> gid_of(std::string_view name);

/// The passwd entry of `uid`.
std::optional<passwd_entry> by_uid(uid_t uid);

/// The supplementary groups listing `user` as a member.
std::vector<gid_t> groups_of(std::string_view user);

/// Reads the databases below `root` instead of "/" (for tests).
void set_root(std::string root);

} // namespace users

} // namespace osb::execd
