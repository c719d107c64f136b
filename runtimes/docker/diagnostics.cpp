#include "runtimes/docker/diagnostics.hpp"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace osb::runtimes::docker {

namespace {

constexpr std::string_view zero_time = "0001-01-01T00:00:00Z";

const char* py_bool(bool x) {
  return x ? "True" : "False";
}

std::string or_na(const std::string& x) {
  return x.empty() ? std::string{"N/A"} : x;
}

std::string join(const std::vector<std::string>& lines) {
  std::string result;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0)
      result += '\n';
    result += lines[i];
  }
  return result;
}

std::string strip(std::string_view x) {
  auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
           || c == '\v';
  };
  while (!x.empty() && space(x.front()))
    x.remove_prefix(1);
  while (!x.empty() && space(x.back()))
    x.remove_suffix(1);
  return std::string{x};
}

} // namespace

bool is_sensitive_key(std::string_view key) {
  std::string upper{key};
  for (auto& c : upper)
    if (c >= 'a' && c <= 'z')
      c = static_cast<char>(c - 'a' + 'A');
  for (auto word : {"SECRET", "TOKEN", "PASSWORD", "KEY"})
    if (upper.find(word) != std::string::npos)
      return true;
  return false;
}

std::string render_inspect(const container_details& d) {
  std::vector<std::string> lines;
  lines.push_back("Container ID:   " + d.id.substr(0, 12));
  lines.push_back("Name:           " + d.name);
  lines.push_back("Image:          " + or_na(d.image));
  lines.push_back("Status:         "
                  + (d.status.empty() ? std::string{"unknown"} : d.status));
  lines.push_back(std::string{"Running:        "} + py_bool(d.running));
  lines.push_back(std::string{"Paused:         "} + py_bool(d.paused));
  lines.push_back(std::string{"OOMKilled:      "} + py_bool(d.oom_killed));
  lines.push_back("Exit Code:      " + std::to_string(d.exit_code));
  lines.push_back("Started At:     " + or_na(d.started_at));
  lines.push_back("Finished At:    " + or_na(d.finished_at));
  if (!d.error.empty())
    lines.push_back("Error:          " + d.error);
  lines.emplace_back();
  lines.emplace_back("Resources:");
  if (d.nano_cpus != 0) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "  CPU:          %.2f cores",
                  static_cast<double>(d.nano_cpus) / 1e9);
    lines.emplace_back(buf);
  }
  if (d.memory_bytes != 0)
    lines.push_back("  Memory:       "
                    + std::to_string(d.memory_bytes / (1024 * 1024)) + " MiB");
  if (d.pids_limit != 0)
    lines.push_back("  PIDs Limit:   " + std::to_string(d.pids_limit));
  lines.emplace_back();
  lines.emplace_back("Network:");
  for (auto& [net, ip] : d.networks)
    lines.push_back("  " + net + ": " + ip);
  if (!d.ports.empty()) {
    lines.emplace_back();
    lines.emplace_back("Ports:");
    for (auto& [port, bindings] : d.ports) {
      if (bindings.empty())
        lines.push_back("  " + port + " (not bound)");
      for (auto& b : bindings)
        lines.push_back("  " + port + " -> " + b);
    }
  }
  if (!d.labels.empty()) {
    lines.emplace_back();
    lines.emplace_back("Labels:");
    // std::map iterates sorted, like sorted(labels.items()).
    for (auto& [k, v] : d.labels)
      lines.push_back("  " + k + "=" + (is_sensitive_key(k) ? "***" : v));
  }
  if (!d.env.empty()) {
    lines.emplace_back();
    lines.emplace_back("Environment:");
    for (auto& entry : d.env) {
      auto key = entry.substr(0, entry.find('='));
      if (is_sensitive_key(key))
        lines.push_back("  " + key + "=***");
      else
        lines.push_back("  " + entry);
    }
  }
  return join(lines);
}

std::string render_events(const container_details& d, int limit) {
  std::vector<std::string> lines;
  lines.push_back("Container:  " + d.id.substr(0, 12) + " (" + d.name + ")");
  lines.push_back("Status:     "
                  + (d.status.empty() ? std::string{"unknown"} : d.status));
  lines.push_back("Created:    " + or_na(d.created));
  if (!d.started_at.empty() && d.started_at != zero_time)
    lines.push_back("Started:    " + d.started_at);
  if (!d.finished_at.empty() && d.finished_at != zero_time)
    lines.push_back("Finished:   " + d.finished_at);
  if (d.oom_killed)
    lines.emplace_back(
      "Event:      OOMKilled - container was killed due to out-of-memory");
  if (d.exit_code != 0)
    lines.push_back("Event:      Exited with code "
                    + std::to_string(d.exit_code));
  if (!d.error.empty())
    lines.push_back("Event:      Error - " + d.error);
  if (!d.health_status.empty()) {
    lines.push_back("Health:     " + d.health_status);
    auto n = static_cast<size_t>(std::max(limit, 0));
    auto first = d.health_log.size() > n ? d.health_log.size() - n : 0;
    for (auto i = first; i < d.health_log.size(); ++i) {
      auto& h = d.health_log[i];
      lines.push_back("  [" + h.start + "] exit="
                      + std::to_string(h.exit_code) + " "
                      + strip(h.output).substr(0, 200));
    }
  }
  if (lines.size() <= 3)
    lines.emplace_back("(no notable events)");
  return join(lines);
}

std::string render_logs(std::string text) {
  return text.empty() ? std::string{"(no logs)"} : text;
}

std::string render_summary(std::string_view sandbox_id, int tail,
                           const std::optional<std::string>& inspect,
                           const std::optional<std::string>& events,
                           const std::optional<std::string>& logs) {
  std::vector<std::string> lines;
  auto banner = std::string(72, '=');
  auto rule = std::string(40, '-');
  lines.push_back(banner);
  lines.emplace_back("SANDBOX DIAGNOSTICS SUMMARY");
  lines.push_back("Sandbox ID: " + std::string{sandbox_id});
  lines.push_back(banner);
  auto section = [&](std::string title, const std::optional<std::string>& x,
                     const char* what) {
    lines.emplace_back();
    lines.push_back(rule);
    lines.push_back(std::move(title));
    lines.push_back(rule);
    lines.push_back(x ? *x
                      : "[error] Failed to collect " + std::string{what}
                          + " diagnostics.");
  };
  section("INSPECT", inspect, "inspect");
  section("EVENTS", events, "event");
  section("LOGS (last " + std::to_string(tail) + " lines)", logs, "log");
  return join(lines) + "\n";
}

int64_t parse_since_seconds(std::string_view since) {
  // fullmatch(r"(\d+)\s*([smhd])", since.strip().lower())
  auto x = strip(since);
  size_t i = 0;
  int64_t value = 0;
  bool digits = false;
  while (i < x.size() && x[i] >= '0' && x[i] <= '9') {
    if (value < (int64_t{1} << 40))
      value = value * 10 + (x[i] - '0');
    digits = true;
    ++i;
  }
  while (i < x.size()
         && (x[i] == ' ' || x[i] == '\t' || x[i] == '\n' || x[i] == '\r'
             || x[i] == '\f' || x[i] == '\v'))
    ++i;
  if (!digits || i + 1 != x.size())
    return 600;
  switch (x[i] | 0x20) {
    case 's':
      return value;
    case 'm':
      return value * 60;
    case 'h':
      return value * 3600;
    case 'd':
      return value * 86400;
    default:
      return 600;
  }
}

} // namespace osb::runtimes::docker
