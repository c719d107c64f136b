#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/strings.hpp"

namespace osb::execd {

/// An environment as `KEY=VALUE` strings (the `envp` layout).
using env_list = std::vector<std::string>;

/// Returns CLOCK_REALTIME.
timespec wall_clock();

/// Returns the current Unix time in milliseconds.
int64_t now_ms();

/// Formats `t` as RFC 3339 in UTC with nanoseconds, trailing zeros trimmed
/// (Go's RFC3339Nano), e.g. `2025-11-16T14:30:45.5Z`.
std::string rfc3339(const timespec& t);

/// Returns `n` random bytes as lowercase hex (2n characters).
std::string random_hex(size_t n);

/// Returns a random (version 4) UUID with dashes.
std::string new_uuid();

/// Returns a snapshot of this process' environment.
env_list current_env();

/// Looks up `key` in `env`.
std::optional<std::string> env_get(const env_list& env, std::string_view key);

/// Sets `key` in `env`, replacing an existing entry.
void env_set(env_list& env, std::string_view key, std::string_view value);

/// Expands `$VAR` and `${VAR}` with `lookup`. Returns nullopt (and sets
/// `*undefined` to the name) when a referenced variable is undefined and
/// `strict` is set; otherwise undefined variables expand to "".
std::optional<std::string>
expand_vars(std::string_view x,
            const std::function<std::optional<std::string>(const std::string&)>&
              lookup,
            bool strict, std::string* undefined = nullptr);

/// Resolves a path from an API request: `$VAR`/`${VAR}` from `env` (an
/// undefined variable is an error), a leading `~` becomes `$HOME`, and the
/// result is made absolute against the working directory and normalized.
/// Returns nullopt and sets `*err` on failure.
std::optional<std::string> resolve_path(std::string_view path,
                                        const env_list& env, std::string* err);

/// Normalizes an absolute path lexically ("/a/./b/../c/" -> "/a/c").
using osb::normalize_path;

/// Returns the directory part of `path` ("/a/b" -> "/a", "/a" -> "/").
std::string dirname_of(std::string_view path);

/// Returns the last component of `path`.
std::string basename_of(std::string_view path);

/// Quotes `x` for a POSIX shell with single quotes.
std::string shell_quote(std::string_view x);

/// Reads a whole (small) file. Returns false on error.
bool read_file(const std::string& path, std::string& out);

/// Creates `path` and its parents (`mkdir -p`). Returns 0 or an errno.
int make_dirs(const std::string& path, unsigned mode = 0755);

/// Returns `$TMPDIR/.opensandbox-execd` (or `/tmp/...`), created if needed.
std::string work_dir();

/// Parses a non-negative decimal integer; nullopt on junk or overflow.
std::optional<uint64_t> parse_u64(std::string_view x);

/// Returns `strerror(err)` as a string.
std::string errno_text(int err);

} // namespace osb::execd
