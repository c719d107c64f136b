#include "http/router.hpp"

#include "base/strings.hpp"

#include <initializer_list>
#include <string>
#include <unordered_map>

namespace osb::http {

namespace {

/// One row of the route table. `pattern` lists the segments below the mount
/// point; `{name}` is a path parameter matching one non-empty segment (its
/// name shows in metrics labels: route_label()).
struct entry {
  std::string_view pattern;
  std::string_view method;
  route_id id;
  /// Mounted at `/` only (not under `/v1`).
  bool root_only = false;
  /// Also matches `<pattern>/<anything>` (the proxy's `{full_path:path}`).
  bool tail = false;
};

// Registration order mirrors the original: lifecycle, diagnostics, pools,
// proxy. Rows with the same pattern form one "path" for 405 purposes.
constexpr entry table[] = {
  {"health", "GET", route_id::health, true},
  {"sandboxes", "POST", route_id::create_sandbox},
  {"sandboxes", "GET", route_id::list_sandboxes},
  {"sandboxes/{sandboxId}", "GET", route_id::get_sandbox},
  {"sandboxes/{sandboxId}", "DELETE", route_id::delete_sandbox},
  {"sandboxes/{sandboxId}/metadata", "PATCH", route_id::patch_metadata},
  {"sandboxes/{sandboxId}/pause", "POST", route_id::pause_sandbox},
  {"sandboxes/{sandboxId}/resume", "POST", route_id::resume_sandbox},
  {"sandboxes/{sandboxId}/renew-expiration", "POST",
   route_id::renew_expiration},
  {"sandboxes/{sandboxId}/endpoints/{port}", "GET", route_id::get_endpoint},
  {"sandboxes/{sandboxId}/snapshots", "POST", route_id::create_snapshot},
  {"snapshots", "GET", route_id::list_snapshots},
  {"snapshots/{snapshotId}", "GET", route_id::get_snapshot},
  {"snapshots/{snapshotId}", "DELETE", route_id::delete_snapshot},
  {"sandboxes/{sandboxId}/diagnostics/logs", "GET", route_id::diagnostics_logs},
  {"sandboxes/{sandboxId}/diagnostics/events", "GET",
   route_id::diagnostics_events},
  {"sandboxes/{sandboxId}/diagnostics/inspect", "GET",
   route_id::diagnostics_inspect},
  {"sandboxes/{sandboxId}/diagnostics/summary", "GET",
   route_id::diagnostics_summary},
  {"pools", "POST", route_id::create_pool},
  {"pools", "GET", route_id::list_pools},
  {"pools/{poolName}", "GET", route_id::get_pool},
  {"pools/{poolName}", "PUT", route_id::update_pool},
  {"pools/{poolName}", "DELETE", route_id::delete_pool},
  {"sandboxes/{sandboxId}/proxy/{port}", "GET", route_id::proxy, false, true},
  {"sandboxes/{sandboxId}/proxy/{port}", "POST", route_id::proxy, false, true},
  {"sandboxes/{sandboxId}/proxy/{port}", "PUT", route_id::proxy, false, true},
  {"sandboxes/{sandboxId}/proxy/{port}", "DELETE",
   route_id::proxy, false, true},
  {"sandboxes/{sandboxId}/proxy/{port}", "PATCH", route_id::proxy, false, true},
  // Not in the original (405 there): forwarded too, so that HEAD requests
  // and non-preflight OPTIONS reach the sandbox's server.
  {"sandboxes/{sandboxId}/proxy/{port}", "HEAD", route_id::proxy, false, true},
  {"sandboxes/{sandboxId}/proxy/{port}", "OPTIONS",
   route_id::proxy, false, true},
  // The route shape of the original design documents (ARCHITECTURE.md).
  {"route/{sandboxId}/{port}", "GET", route_id::proxy, false, true},
  {"route/{sandboxId}/{port}", "POST", route_id::proxy, false, true},
  {"route/{sandboxId}/{port}", "PUT", route_id::proxy, false, true},
  {"route/{sandboxId}/{port}", "DELETE", route_id::proxy, false, true},
  {"route/{sandboxId}/{port}", "PATCH", route_id::proxy, false, true},
  {"route/{sandboxId}/{port}", "HEAD", route_id::proxy, false, true},
  {"route/{sandboxId}/{port}", "OPTIONS", route_id::proxy, false, true},
  // Signed URLs (ours): the token names sandbox and port.
  {"signed/{token}", "GET", route_id::signed_proxy, false, true},
  {"signed/{token}", "POST", route_id::signed_proxy, false, true},
  {"signed/{token}", "PUT", route_id::signed_proxy, false, true},
  {"signed/{token}", "DELETE", route_id::signed_proxy, false, true},
  {"signed/{token}", "PATCH", route_id::signed_proxy, false, true},
  {"signed/{token}", "HEAD", route_id::signed_proxy, false, true},
  {"signed/{token}", "OPTIONS", route_id::signed_proxy, false, true},
  {"metrics/events", "POST", route_id::metrics_events},
  {"cluster/nodes", "GET", route_id::cluster_nodes},
  {"metrics", "GET", route_id::metrics, true},
  {"ready", "GET", route_id::ready, true},
};

/// Whether a pattern segment is a path parameter (`{name}`).
bool is_param(std::string_view seg) {
  return seg.size() >= 2 && seg.front() == '{' && seg.back() == '}';
}

/// Whether the first parameter of a pattern is a sandbox id.
bool sandbox_scoped(std::string_view pattern) {
  return pattern.substr(0, 10) == "sandboxes/"
         || pattern.substr(0, 6) == "route/";
}

/// Captured path parameters of one match.
struct captures {
  std::string_view params[2];
  std::string_view rest;
};

/// Matches `path` (starting with `/`) against the segments of `pattern`.
bool match_pattern(std::string_view pattern, bool tail, std::string_view path,
                   captures& out) {
  if (path.empty() || path[0] != '/')
    return false;
  size_t pos = 1;
  size_t num_params = 0;
  size_t pat_pos = 0;
  for (;;) {
    auto pat_end = pattern.find('/', pat_pos);
    auto seg_pat = pattern.substr(pat_pos, pat_end == std::string_view::npos
                                             ? std::string_view::npos
                                             : pat_end - pat_pos);
    auto end = path.find('/', pos);
    if (end == std::string_view::npos)
      end = path.size();
    auto seg = path.substr(pos, end - pos);
    if (is_param(seg_pat)) {
      if (seg.empty() || num_params == 2)
        return false;
      out.params[num_params++] = seg;
    } else if (seg != seg_pat) {
      return false;
    }
    pos = end;
    if (pat_end == std::string_view::npos)
      break;
    pat_pos = pat_end + 1;
    if (pos == path.size())
      return false;
    ++pos; // skip '/'
  }
  if (pos == path.size()) {
    out.rest = {};
    return true;
  }
  if (!tail)
    return false;
  out.rest = path.substr(pos + 1);
  return true;
}

/// Outcome of matching against the whole table.
enum class match_kind { none, partial, full };

match_kind match_table(std::string_view method, std::string_view path,
                       route& result) {
  bool v1 = false;
  std::string_view sub = path;
  if (sub.size() > 3 && sub.substr(0, 4) == "/v1/") {
    v1 = true;
    sub.remove_prefix(3);
  }
  auto kind = match_kind::none;
  const entry* first_partial = nullptr;
  std::string allow;
  captures caps;
  for (const auto& row : table) {
    if (v1 && row.root_only)
      continue;
    captures tmp;
    if (!match_pattern(row.pattern, row.tail, sub, tmp))
      continue;
    if (row.method == method) {
      result.id = row.id;
      result.v1 = v1;
      result.sandbox_id.clear();
      result.param.clear();
      // Parameters map to sandbox_id/param by position: routes under
      // /sandboxes and /route carry the sandbox id first.
      if (sandbox_scoped(row.pattern)) {
        result.sandbox_id = std::string{tmp.params[0]};
        result.param = std::string{tmp.params[1]};
      } else {
        result.param = std::string{tmp.params[0]};
      }
      result.rest = std::string{tmp.rest};
      return match_kind::full;
    }
    // Like Starlette, the first partial match decides the 405; its `Allow`
    // lists every method registered for that same path.
    if (first_partial == nullptr) {
      first_partial = &row;
      caps = tmp;
    }
    if (row.pattern != first_partial->pattern)
      continue;
    if (!allow.empty())
      allow += ", ";
    allow += row.method;
    kind = match_kind::partial;
  }
  if (kind == match_kind::partial) {
    result.id = route_id::method_not_allowed;
    result.v1 = v1;
    if (sandbox_scoped(first_partial->pattern))
      result.sandbox_id = std::string{caps.params[0]};
    result.allow = std::move(allow);
  }
  return kind;
}


bool starts_with(std::string_view str, std::string_view prefix) {
  return str.substr(0, prefix.size()) == prefix;
}

} // namespace

const char* to_string(route_id x) {
  switch (x) {
    case route_id::not_found:
      return "not_found";
    case route_id::method_not_allowed:
      return "method_not_allowed";
    case route_id::redirect_slash:
      return "redirect_slash";
    case route_id::health:
      return "health";
    case route_id::create_sandbox:
      return "create_sandbox";
    case route_id::list_sandboxes:
      return "list_sandboxes";
    case route_id::get_sandbox:
      return "get_sandbox";
    case route_id::delete_sandbox:
      return "delete_sandbox";
    case route_id::patch_metadata:
      return "patch_metadata";
    case route_id::pause_sandbox:
      return "pause_sandbox";
    case route_id::resume_sandbox:
      return "resume_sandbox";
    case route_id::renew_expiration:
      return "renew_expiration";
    case route_id::get_endpoint:
      return "get_endpoint";
    case route_id::create_snapshot:
      return "create_snapshot";
    case route_id::list_snapshots:
      return "list_snapshots";
    case route_id::get_snapshot:
      return "get_snapshot";
    case route_id::delete_snapshot:
      return "delete_snapshot";
    case route_id::proxy:
      return "proxy";
    case route_id::diagnostics_logs:
      return "diagnostics_logs";
    case route_id::diagnostics_events:
      return "diagnostics_events";
    case route_id::diagnostics_inspect:
      return "diagnostics_inspect";
    case route_id::diagnostics_summary:
      return "diagnostics_summary";
    case route_id::create_pool:
      return "create_pool";
    case route_id::list_pools:
      return "list_pools";
    case route_id::get_pool:
      return "get_pool";
    case route_id::update_pool:
      return "update_pool";
    case route_id::delete_pool:
      return "delete_pool";
    case route_id::signed_proxy:
      return "signed_proxy";
    case route_id::metrics_events:
      return "metrics_events";
    case route_id::cluster_nodes:
      return "cluster_nodes";
    case route_id::metrics:
      return "metrics";
    case route_id::ready:
      return "ready";
  }
  return "unknown";
}

const char* route_label(route_id x) {
  // Built once: the first row of each route names it (its other rows are
  // more methods or another spelling of the same route).
  static const auto labels = [] {
    std::unordered_map<uint8_t, std::string> result;
    for (const auto& row : table)
      result.emplace(static_cast<uint8_t>(row.id),
                     "/" + std::string{row.pattern});
    return result;
  }();
  auto i = labels.find(static_cast<uint8_t>(x));
  return i == labels.end() ? "other" : i->second.c_str();
}

std::string decode_path(std::string_view raw) {
  return percent_decode(raw);
}

route match_route(std::string_view method, std::string_view raw_path) {
  route result;
  auto path = decode_path(raw_path);
  if (match_table(method, path, result) != match_kind::none)
    return result;
  // Starlette's redirect_slashes: if only the other spelling of the path
  // exists (with any method), redirect there with 307.
  if (path != "/" && !path.empty()) {
    std::string alt;
    std::string alt_raw{raw_path};
    if (path.back() == '/') {
      alt = path;
      while (!alt.empty() && alt.back() == '/')
        alt.pop_back();
      while (!alt_raw.empty() && alt_raw.back() == '/')
        alt_raw.pop_back();
    } else {
      alt = path + '/';
      alt_raw += '/';
    }
    route tmp;
    if (!alt.empty() && match_table(method, alt, tmp) != match_kind::none) {
      result = route{};
      result.id = route_id::redirect_slash;
      result.v1 = tmp.v1;
      result.rest = std::move(alt_raw);
      return result;
    }
  }
  return result;
}

bool auth_exempt(std::string_view path) {
  for (auto prefix : {"/health", "/docs", "/redoc", "/openapi.json"})
    if (starts_with(path, prefix))
      return true;
  if (path.find("..") != std::string_view::npos)
    return false;
  // ^(/v1)?/sandboxes/[^/]+/proxy/\d+(/|$) or ^(/v1)?/route/[^/]+/\d+(/|$)
  auto p = path;
  if (starts_with(p, "/v1/"))
    p.remove_prefix(3);
  if (starts_with(p, "/signed/"))
    return p.size() > 8 && p[8] != '/';
  bool route_shape = starts_with(p, "/route/");
  if (route_shape)
    p.remove_prefix(7);
  else if (starts_with(p, "/sandboxes/"))
    p.remove_prefix(11);
  else
    return false;
  auto slash = p.find('/');
  if (slash == 0 || slash == std::string_view::npos)
    return false;
  p.remove_prefix(slash);
  if (route_shape) {
    p.remove_prefix(1);
  } else {
    if (!starts_with(p, "/proxy/"))
      return false;
    p.remove_prefix(7);
  }
  size_t num_digits = 0;
  while (num_digits < p.size() && p[num_digits] >= '0' && p[num_digits] <= '9')
    ++num_digits;
  if (num_digits == 0)
    return false;
  return num_digits == p.size() || p[num_digits] == '/';
}

} // namespace osb::http
