#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "runtimes/docker/engine.hpp"

/// The plain-text diagnostics reports of `/sandboxes/{id}/diagnostics/...`
/// (reference/server-behavior.md §1.14), rendered from what the runtime
/// reports. Same layout as the original (Python's `True`/`False` included),
/// so that people and scripts reading them see what they know; secrets are
/// masked in environment *and* labels (the original printed the egress auth
/// token label in clear, §9 bug 18).
namespace osb::runtimes::docker {

/// True for names of secrets: the upper-cased key contains SECRET, TOKEN,
/// PASSWORD or KEY.
bool is_sensitive_key(std::string_view key);

/// `inspect`: identity, state, resources, networks, ports, labels, env.
std::string render_inspect(const container_details& d);

/// `events`: a synthetic history from the inspect data (Docker keeps no
/// per-container event log), with the last `limit` health-check entries.
std::string render_events(const container_details& d, int limit);

/// `logs`: the text as is, "(no logs)" when empty.
std::string render_logs(std::string text);

/// `summary`: banner, then INSPECT, EVENTS and `LOGS (last N lines)`
/// sections; a section that could not be collected (nullopt) reads
/// "[error] Failed to collect <what> diagnostics." without details.
std::string render_summary(std::string_view sandbox_id, int tail,
                           const std::optional<std::string>& inspect,
                           const std::optional<std::string>& events,
                           const std::optional<std::string>& logs);

/// Seconds in a duration like "10m", "1 h", "30s", "2d"; anything else
/// means 10 minutes (600), as in the original.
int64_t parse_since_seconds(std::string_view since);

} // namespace osb::runtimes::docker
