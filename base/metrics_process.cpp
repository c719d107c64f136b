// The standard `process_*` families (as the Prometheus client libraries
// name them), read from /proc at render time.

#include "base/metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace osb::metrics {

namespace {

std::string read_file(const char* path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The fields of /proc/self/stat after the command name (field 3 onward).
std::vector<std::string> stat_fields() {
  auto text = read_file("/proc/self/stat");
  std::vector<std::string> out;
  // The command name may hold spaces and parentheses: skip to the last ')'.
  auto close = text.rfind(')');
  if (close == std::string::npos)
    return out;
  std::istringstream in{text.substr(close + 1)};
  std::string x;
  while (in >> x)
    out.push_back(x);
  return out;
}

/// Seconds since the epoch at boot (`btime` of /proc/stat).
double boot_time() {
  std::istringstream in{read_file("/proc/stat")};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("btime ", 0) == 0)
      return std::stod(line.substr(6));
  return 0;
}

size_t open_fds() {
  size_t n = 0;
  if (auto dir = opendir("/proc/self/fd")) {
    while (auto entry = readdir(dir))
      if (entry->d_name[0] != '.')
        ++n;
    closedir(dir);
    // The directory stream's own descriptor.
    if (n > 0)
      --n;
  }
  return n;
}

void gauge_line(std::string& out, const char* name, const char* help,
                double value) {
  write_header(out, name, help, "gauge");
  out += name;
  out += ' ';
  out += format_value(value);
  out += '\n';
}

} // namespace

void render_process(std::string& out) {
  auto ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  auto page = static_cast<double>(sysconf(_SC_PAGESIZE));
  auto f = stat_fields();
  // Fields after ')': state is [0]; utime = field 14 → [11], stime [12],
  // starttime field 22 → [19], vsize [20], rss (pages) [21].
  if (f.size() > 21 && ticks > 0) {
    auto cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;
    write_header(out, "process_cpu_seconds_total",
                 "Total user and system CPU time spent in seconds.",
                 "counter");
    out += "process_cpu_seconds_total " + format_value(cpu) + "\n";
    gauge_line(out, "process_virtual_memory_bytes",
               "Virtual memory size in bytes.", std::stod(f[20]));
    gauge_line(out, "process_resident_memory_bytes",
               "Resident memory size in bytes.", std::stod(f[21]) * page);
    gauge_line(out, "process_start_time_seconds",
               "Start time of the process since unix epoch in seconds.",
               boot_time() + std::stod(f[19]) / ticks);
  }
  gauge_line(out, "process_open_fds", "Number of open file descriptors.",
             static_cast<double>(open_fds()));
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0)
    gauge_line(out, "process_max_fds",
               "Maximum number of open file descriptors.",
               lim.rlim_cur == RLIM_INFINITY
                 ? -1.0
                 : static_cast<double>(lim.rlim_cur));
}

} // namespace osb::metrics
