#include "net/egress/log.hpp"

#include <cstdio>
#include <ctime>
#include <string>
#include <sys/time.h>

namespace osb::egress::log {

namespace {

bool debug_flag = false;

} // namespace

void set_debug(bool enabled) {
  debug_flag = enabled;
}

bool debug_enabled() {
  return debug_flag;
}

void write(std::string_view level, std::string_view msg) {
  timeval tv{};
  ::gettimeofday(&tv, nullptr);
  tm parts{};
  ::gmtime_r(&tv.tv_sec, &parts);
  char stamp[64];
  std::snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                parts.tm_hour, parts.tm_min, parts.tm_sec,
                static_cast<long>(tv.tv_usec / 1000));
  std::string line;
  line.reserve(msg.size() + 48);
  line += stamp;
  line += ' ';
  line += level;
  line += ' ';
  line += msg;
  line += '\n';
  // One write per line: lines from different threads never interleave.
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

} // namespace osb::egress::log
