#include "core/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace osb::log {

namespace {

std::atomic<int> threshold{static_cast<int>(level::info)};
std::mutex out_mtx;

const char* name(level x) {
  switch (x) {
    case level::debug:
      return "DEBUG";
    case level::info:
      return "INFO";
    case level::warning:
      return "WARNING";
    default:
      return "ERROR";
  }
}

} // namespace

void set_level(std::string_view x) {
  std::string up;
  for (auto c : x)
    up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto lvl = level::info;
  if (up == "DEBUG" || up == "TRACE")
    lvl = level::debug;
  else if (up == "WARNING" || up == "WARN")
    lvl = level::warning;
  else if (up == "ERROR" || up == "CRITICAL")
    lvl = level::error;
  threshold = static_cast<int>(lvl);
}

bool enabled(level x) {
  return static_cast<int>(x) >= threshold.load(std::memory_order_relaxed);
}

void write(level x, std::string_view component, std::string_view request_id,
           std::string_view sandbox_id, std::string_view msg) {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto secs = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[32];
  std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  auto rid = request_id.empty() ? std::string_view{"-"} : request_id;
  auto sid = sandbox_id.empty() ? std::string_view{"-"} : sandbox_id;
  std::lock_guard<std::mutex> guard{out_mtx};
  std::fprintf(stderr, "%s %s.%03dZ [%.*s] [%.*s] %.*s: %.*s\n", name(x), ts,
               static_cast<int>(ms), static_cast<int>(rid.size()), rid.data(),
               static_cast<int>(sid.size()), sid.data(),
               static_cast<int>(component.size()), component.data(),
               static_cast<int>(msg.size()), msg.data());
}

} // namespace osb::log
