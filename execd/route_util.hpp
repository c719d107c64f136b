#pragma once

// What execd's route handlers (execd/routes_*.cpp) share: reading and
// decoding request bodies (the JSON depth limit, typed members with range
// checks), path resolution and the small answers.

#include "execd/files.hpp"
#include "execd/routes.hpp"

#include <rapidjson/document.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace osb::execd {

/// Limit for JSON request bodies.
inline constexpr size_t max_json_body = 32 * 1024 * 1024;

/// Command timeouts (ms) beyond a year are refused: a deadline of
/// `now + timeout` must not overflow the clock.
inline constexpr int64_t max_timeout_ms = 365LL * 24 * 3600 * 1000;
inline constexpr const char* bad_timeout
  = "timeout must be between 0 and 31536000000 ms";

/// The message of a body that does not decode.
inline constexpr std::string_view bad_body
  = "error parsing request, MAYBE invalid body format";

/// Sends an empty 200.
void send_ok(response_writer& w);

/// Sends a 200 `application/json` body.
void send_json(response_writer& w, const std::string& body);

/// Sends the error envelope of a failed file operation.
void send_op_error(response_writer& w, const op_error& e);

/// Streams `len` bytes of `fd` from `offset` into a started response in
/// 64 KiB pieces (memory stays flat for any size), then closes `fd` and
/// finishes the response. Stops early when the client goes away.
void send_file_range(response_writer& w, int fd, uint64_t offset,
                     uint64_t len);

/// Reads the whole body; false (after answering) if it is too large or the
/// connection failed.
bool read_body(body_reader& body, response_writer& w, std::string& out);

/// Reads and parses a JSON body; answers 400 and returns false on failure.
/// An empty body parses as `empty_as` when given.
bool read_json(body_reader& body, response_writer& w,
               rapidjson::Document& doc, const char* empty_as = nullptr);

/// Reads an optional string member; null counts as "". False if the member
/// has another type.
bool get_string(const rapidjson::Value& obj, const char* key,
                std::string& out);

/// Reads an optional integer member (a numeric string is accepted too);
/// false for another type or a value outside int64.
bool get_int(const rapidjson::Value& obj, const char* key,
             std::optional<int64_t>& out);

/// Reads an optional boolean member.
bool get_bool(const rapidjson::Value& obj, const char* key, bool& out);

/// Resolves a path for the file APIs against execd's environment; answers
/// 400 and returns false on failure.
bool resolve(const std::string& raw, response_writer& w, std::string& out);

/// Whether `path` is a directory (following symlinks).
bool is_directory(const std::string& path);

/// Splits "/a/b/c" into {"a","b","c"} (segments decoded).
std::vector<std::string> segments(std::string_view path);

/// One entry of a permission map: {"<path>": {"owner", "group", "mode"}}.
struct permission_item {
  std::string raw_path;
  std::string owner;
  std::string group;
  int64_t mode = 0;
};

/// Decodes a permission map (chmod/chown and mkdir requests); answers 400
/// and returns false on failure.
bool parse_permissions(const rapidjson::Document& doc, response_writer& w,
                       std::vector<permission_item>& out);

} // namespace osb::execd
