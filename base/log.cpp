#include "base/log.hpp"

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

namespace osb::log {

namespace {

std::atomic<int> threshold{static_cast<int>(level::info)};
std::mutex out_mtx;

/// A log file rotated by size. Guarded by `out_mtx`.
struct rotating_file {
  std::string path;
  int64_t max_bytes = 0;
  int64_t backups = 0;
  std::FILE* fp = nullptr;
  int64_t size = 0;

  std::string open() {
    std::error_code err;
    auto parent = std::filesystem::path{path}.parent_path();
    if (!parent.empty())
      std::filesystem::create_directories(parent, err);
    // "e": O_CLOEXEC, so that children (execd's commands) do not inherit it.
    fp = std::fopen(path.c_str(), "ae");
    if (fp == nullptr)
      return "cannot open log file " + path;
    size = static_cast<int64_t>(std::filesystem::file_size(path, err));
    return {};
  }

  void rotate() {
    std::fclose(fp);
    std::error_code err;
    if (backups > 0) {
      for (auto i = backups - 1; i >= 1; --i) {
        auto from = path + "." + std::to_string(i);
        if (std::filesystem::exists(from, err))
          std::filesystem::rename(from, path + "." + std::to_string(i + 1),
                                  err);
      }
      std::filesystem::rename(path, path + ".1", err);
      fp = std::fopen(path.c_str(), "ae");
    } else {
      fp = std::fopen(path.c_str(), "we");
    }
    size = 0;
  }

  void write(const char* line, size_t len) {
    if (fp == nullptr)
      return;
    // max_bytes 0: never rotated (execd's single log file).
    if (max_bytes > 0 && size > 0
        && size + static_cast<int64_t>(len) > max_bytes)
      rotate();
    if (fp == nullptr)
      return;
    std::fwrite(line, 1, len, fp);
    std::fflush(fp);
    size += static_cast<int64_t>(len);
  }
};

rotating_file* main_file = nullptr;
rotating_file* access_file = nullptr;
std::atomic<bool> access_on{false};

/// `2026-06-12T10:30:00.123Z` into `buf` (at least 32 bytes).
void timestamp(char* buf) {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto secs = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  auto n = std::strftime(buf, 24, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, 8, ".%03dZ", static_cast<int>(ms));
}

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
  set_level(lvl);
}

void set_level(level x) {
  threshold = static_cast<int>(x);
}

bool enabled(level x) {
  return static_cast<int>(x) >= threshold.load(std::memory_order_relaxed);
}

void write(level x, std::string_view component, std::string_view request_id,
           std::string_view sandbox_id, std::string_view msg) {
  char ts[32];
  timestamp(ts);
  auto rid = request_id.empty() ? std::string_view{"-"} : request_id;
  auto sid = sandbox_id.empty() ? std::string_view{"-"} : sandbox_id;
  std::string line;
  line.reserve(64 + rid.size() + sid.size() + component.size() + msg.size());
  line.append(name(x)).append(" ").append(ts).append(" [");
  line.append(rid).append("] [").append(sid).append("] ");
  line.append(component).append(": ").append(msg).append("\n");
  std::lock_guard<std::mutex> guard{out_mtx};
  if (main_file != nullptr)
    main_file->write(line.data(), line.size());
  else
    std::fwrite(line.data(), 1, line.size(), stderr);
}

std::string to_files(const std::string& path, const std::string& access_path,
                     int64_t max_bytes, int64_t backups) {
  auto main = std::make_unique<rotating_file>();
  main->path = path;
  main->max_bytes = max_bytes;
  main->backups = backups;
  if (auto err = main->open(); !err.empty())
    return err;
  auto acc = std::make_unique<rotating_file>();
  acc->path = access_path;
  acc->max_bytes = max_bytes;
  acc->backups = backups;
  if (auto err = acc->open(); !err.empty()) {
    std::fclose(main->fp);
    return err;
  }
  std::lock_guard<std::mutex> guard{out_mtx};
  // Set once at start; never freed (lines may be written until exit).
  main_file = main.release();
  access_file = acc.release();
  access_on = true;
  return {};
}

std::string to_file(const std::string& path) {
  auto main = std::make_unique<rotating_file>();
  main->path = path;
  if (auto err = main->open(); !err.empty())
    return err;
  std::lock_guard<std::mutex> guard{out_mtx};
  // Set once at start; never freed (lines may be written until exit).
  main_file = main.release();
  return {};
}

bool access_enabled() {
  return access_on.load(std::memory_order_relaxed);
}

void access(std::string_view request_id, std::string_view method,
            std::string_view path, int status, double ms) {
  if (!access_enabled())
    return;
  char ts[32];
  timestamp(ts);
  char tail[48];
  std::snprintf(tail, sizeof(tail), "\" %d %.1fms\n", status, ms);
  std::string line;
  line.reserve(64 + request_id.size() + method.size() + path.size());
  line.append(ts).append(" [").append(request_id).append("] \"");
  line.append(method).append(" ").append(path).append(tail);
  std::lock_guard<std::mutex> guard{out_mtx};
  if (access_file != nullptr)
    access_file->write(line.data(), line.size());
}

} // namespace osb::log
