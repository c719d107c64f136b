#include "execd/log.hpp"

#include "execd/util.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <mutex>

namespace osb::execd::log {

namespace {

std::mutex mtx;
int fd = STDERR_FILENO;

} // namespace

void init(const std::string& path) {
  std::lock_guard<std::mutex> guard{mtx};
  if (path.empty())
    return;
  make_dirs(dirname_of(path), 0755);
  auto x = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (x >= 0)
    fd = x;
}

void write(std::string_view level, std::string_view msg) {
  std::string line = rfc3339(wall_clock());
  line += ' ';
  line += level;
  line += ' ';
  line += msg;
  line += '\n';
  std::lock_guard<std::mutex> guard{mtx};
  // Best effort: a full disk must not stop the daemon.
  auto n = ::write(fd, line.data(), line.size());
  (void) n;
}

} // namespace osb::execd::log
