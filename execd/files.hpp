#pragma once

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace osb::execd {

class json_writer;

/// The outcome of a file operation: status 0 = success, otherwise the HTTP
/// status plus the error envelope's code and message.
struct op_error {
  int status = 0;
  std::string code;
  std::string message;

  /// True for a failure.
  explicit operator bool() const {
    return status != 0;
  }

  /// Common errors: 404 FILE_NOT_FOUND, 400 INVALID_REQUEST_BODY, 500
  /// RUNTIME_ERROR.
  static op_error not_found(std::string msg) {
    return {404, "FILE_NOT_FOUND", std::move(msg)};
  }
  static op_error bad_request(std::string msg) {
    return {400, "INVALID_REQUEST_BODY", std::move(msg)};
  }
  static op_error runtime(std::string msg) {
    return {500, "RUNTIME_ERROR", std::move(msg)};
  }
  /// Maps an errno of a failed syscall on `path`.
  static op_error from_errno(int err, const std::string& what);
};

/// The `FileInfo` object of the API.
struct file_info {
  std::string path;
  /// "file", "directory", "symlink" or "other".
  std::string type;
  int64_t size = 0;
  timespec modified_at{};
  timespec created_at{};
  std::string owner;
  std::string group;
  /// The permission bits written as octal digits read as decimal: 0755 -> 755.
  int mode = 0;
};

/// 0755 -> 755 (permission bits only, including setuid/setgid/sticky).
int mode_digits(mode_t mode);

/// 755 -> 0755; nullopt if a digit is 8 or 9 or the value is too large.
std::optional<mode_t> parse_mode_digits(int64_t digits);

/// lstat()s `path` into `out` (no symlink following).
op_error stat_path(const std::string& path, file_info& out);

/// Writes `x` as a FileInfo JSON object.
void write_file_info(json_writer& w, const file_info& x);

/// Removes a file (not a directory); a missing path is a success.
op_error remove_file(const std::string& path);

/// Removes a directory tree (`rm -rf`); a missing path is a success.
op_error remove_tree(const std::string& path);

/// Moves `src` to `dest`: creates dest's parent, refuses an existing dest,
/// copies and deletes across file systems.
op_error move_path(const std::string& src, const std::string& dest);

/// chmod (when `mode_digits` != 0) and chown by names. Unknown names are
/// ignored; if neither resolves, chowns to execd's own uid/gid (Go's
/// behaviour).
op_error apply_permissions(const std::string& path, int64_t mode_digits,
                           const std::string& owner, const std::string& group);

/// `mkdir -p` followed by apply_permissions.
op_error make_directory(const std::string& path, int64_t mode_digits,
                        const std::string& owner, const std::string& group);

/// Walks `root` (not following symlinks) and collects every non-directory
/// whose base name matches `pattern`.
op_error search_files(const std::string& root, const std::string& pattern,
                      std::vector<file_info>& out);

/// Lists `root` down to `depth` levels, entries sorted by name, children
/// right after their parent, symlinks not descended.
op_error list_directory(const std::string& root, int depth,
                        std::vector<file_info>& out);

/// Replaces every occurrence of `from` by `to`; keeps the file's mode.
op_error replace_in_file(const std::string& path, const std::string& from,
                         const std::string& to, size_t* count);

/// Glob matching as in doublestar/filepath.Match on a single name: `*`,
/// `**`, `?`, `[abc]`, `[a-z]`, `[!x]`/`[^x]`, `{a,b}` and `\` escapes.
bool glob_match(std::string_view pattern, std::string_view name);

/// A byte range [first, last] (inclusive) of a file.
struct byte_range {
  uint64_t first = 0;
  uint64_t last = 0;
};

/// Outcome of parse_range.
enum class range_parse { none, ok, unsatisfiable };

/// Parses a `Range` header (first range only) for a file of `size` bytes.
/// Returns none for an absent or ignorable header (serve the whole file),
/// unsatisfiable for a range outside the file or a malformed range.
range_parse parse_range(std::string_view header, uint64_t size,
                        byte_range& out);

/// `attachment; filename="<name>"` plus RFC 5987 `filename*` for non-ASCII
/// names.
std::string content_disposition(const std::string& name);

/// Opens `path` for writing (parents created, truncated, 0777 & ~umask).
/// Returns the descriptor or -1 with `*err` set.
int open_for_upload(const std::string& path, op_error* err);

} // namespace osb::execd
