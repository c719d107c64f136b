#pragma once

// The request model of the HTTP servers and its header and query helpers,
// free of Beast types (so that request handling is testable without
// sockets and cheap to include).

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace osb::base {

/// Header fields as (name, value) pairs, in arrival order.
using header_list = std::vector<std::pair<std::string, std::string>>;

/// An HTTP request head.
struct http_request {
  std::string method;
  /// Raw target: path + "?" + query.
  std::string target;
  /// Target before '?', not decoded.
  std::string path;
  /// Target after '?', not decoded.
  std::string query;
  /// Header fields, names lower-cased.
  header_list headers;
  /// The peer's address (numeric).
  std::string remote_addr;

  /// The first header named `lower_name`, or "".
  const std::string& header(std::string_view lower_name) const;

  /// All decoded values of query parameter `key`.
  std::vector<std::string> query_all(std::string_view key) const;

  /// The first decoded value of query parameter `key`.
  std::optional<std::string> query_get(std::string_view key) const;

  /// Sets target, path and query from a raw target.
  void set_target(std::string t);
};

/// Splits a query string into decoded key/value pairs, in order (`+` is a
/// space, `%xx` escapes decoded, empty items skipped).
std::vector<std::pair<std::string, std::string>>
parse_query(std::string_view query);

/// Whether the comma-separated field value `list` has an element equal to
/// `token` (ASCII case-insensitive), e.g. `Connection: keep-alive, Upgrade`.
bool has_token(std::string_view list, std::string_view token);

} // namespace osb::base
