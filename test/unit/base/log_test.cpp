// The one logger: its line format and levels; file logging, where lines
// go to the file, rotate by size like Python's RotatingFileHandler (the
// server) or never (execd), and access lines go to their own file.

#include "base/log.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

namespace fs = std::filesystem;
using namespace osb;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in{p};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A fresh directory name under the temp directory.
fs::path scratch_dir() {
  std::random_device rd;
  return fs::temp_directory_path()
         / ("osb-log-" + std::to_string(::getpid()) + "-"
            + std::to_string(rd()));
}

/// The lines of `text`.
std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

} // namespace

TEST(Log, LineFormatNamesLevelTimeIdsAndComponent) {
  auto dir = scratch_dir();
  auto path = dir / "x.log";
  ASSERT_EQ(log::to_file(path.string()), "");
  log::set_level(log::level::debug);
  OSB_INFO("gateway", "rid-1", "sbx-1", "created " << 2 << " things");
  OSB_WARN("execd", "", "", "no ids");
  OSB_ERROR("egress", "r", "", "only a request id");
  OSB_DEBUG("http", "", "s", "only a sandbox id");
  auto got = lines(slurp(path));
  ASSERT_EQ(got.size(), 4u) << slurp(path);
  auto time = std::string{R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"};
  EXPECT_TRUE(std::regex_match(
    got[0], std::regex{"INFO " + time + R"( \[rid-1\] \[sbx-1\] gateway: )"
                       + "created 2 things"}))
    << got[0];
  EXPECT_TRUE(std::regex_match(
    got[1], std::regex{"WARNING " + time + R"( \[-\] \[-\] execd: no ids)"}))
    << got[1];
  EXPECT_TRUE(std::regex_match(
    got[2], std::regex{"ERROR " + time
                       + R"( \[r\] \[-\] egress: only a request id)"}))
    << got[2];
  EXPECT_TRUE(std::regex_match(
    got[3], std::regex{"DEBUG " + time
                       + R"( \[-\] \[s\] http: only a sandbox id)"}))
    << got[3];
  fs::remove_all(dir);
}

TEST(Log, LevelsFilterAndSkipTheMessageExpression) {
  auto dir = scratch_dir();
  auto path = dir / "x.log";
  ASSERT_EQ(log::to_file(path.string()), "");
  int evaluated = 0;
  auto count = [&] { return ++evaluated; };
  log::set_level("warn");
  EXPECT_FALSE(log::enabled(log::level::info));
  EXPECT_TRUE(log::enabled(log::level::warning));
  OSB_INFO("t", "", "", "info " << count());
  OSB_WARN("t", "", "", "warning " << count());
  EXPECT_EQ(evaluated, 1);
  log::set_level("ERROR");
  OSB_WARN("t", "", "", "warning " << count());
  log::set_level("Debug");
  OSB_DEBUG("t", "", "", "debug " << count());
  log::set_level("no such level"); // INFO
  EXPECT_TRUE(log::enabled(log::level::info));
  EXPECT_FALSE(log::enabled(log::level::debug));
  EXPECT_EQ(evaluated, 2);
  auto got = lines(slurp(path));
  ASSERT_EQ(got.size(), 2u) << slurp(path);
  EXPECT_NE(got[0].find("t: warning 1"), std::string::npos) << got[0];
  EXPECT_NE(got[1].find("t: debug 2"), std::string::npos) << got[1];
  fs::remove_all(dir);
}

TEST(Log, SingleFileAppendsNeverRotatesAndIsCloseOnExec) {
  auto dir = scratch_dir();
  auto path = dir / "nested" / "execd.log";
  fs::create_directories(path.parent_path());
  std::ofstream{path} << "earlier line\n";
  ASSERT_EQ(log::to_file(path.string()), "");
  log::set_level(log::level::info);
  for (int i = 0; i < 2000; ++i)
    OSB_INFO("execd", "", "", "line number " << i);
  auto got = lines(slurp(path));
  ASSERT_EQ(got.size(), 2001u);
  EXPECT_EQ(got.front(), "earlier line");
  EXPECT_NE(got.back().find("execd: line number 1999"), std::string::npos);
  EXPECT_FALSE(fs::exists(path.string() + ".1"));
  // Processes the program starts (execd's commands) must not inherit it.
  int found = 0;
  for (auto& entry : fs::directory_iterator{"/proc/self/fd"}) {
    std::error_code ec;
    auto target = fs::read_symlink(entry.path(), ec);
    if (ec || target != path)
      continue;
    auto fd = std::stoi(entry.path().filename().string());
    ++found;
    EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  }
  EXPECT_EQ(found, 1);
  fs::remove_all(dir);
}

TEST(Log, UnwritableSingleFileIsAnError) {
  EXPECT_FALSE(log::to_file("/proc/osb-no/execd.log").empty());
}

TEST(Log, FilesRotateBySizeAndKeepTheBackupCount) {
  auto dir = scratch_dir();
  auto path = dir / "nested" / "server.log";
  auto access = dir / "access.log";
  ASSERT_EQ(log::to_files(path.string(), access.string(), 300, 2), "");
  EXPECT_TRUE(log::access_enabled());
  for (int i = 0; i < 20; ++i)
    OSB_INFO("test", "rid-" + std::to_string(i), "sbx", "line number " << i);
  log::access("rid-a", "GET", "/v1/sandboxes", 200, 1.25);
  // The newest lines are in the file, older ones in .1 and .2, no .3.
  auto current = slurp(path);
  EXPECT_NE(current.find("[rid-19] [sbx] test: line number 19"),
            std::string::npos)
    << current;
  EXPECT_LE(current.size(), 300u);
  EXPECT_TRUE(fs::exists(path.string() + ".1"));
  EXPECT_TRUE(fs::exists(path.string() + ".2"));
  EXPECT_FALSE(fs::exists(path.string() + ".3"));
  EXPECT_EQ(slurp(path.string() + ".1").find("line number 19"),
            std::string::npos);
  auto acc = slurp(access);
  EXPECT_NE(acc.find("[rid-a] \"GET /v1/sandboxes\" 200 1.2ms"),
            std::string::npos)
    << acc;
  fs::remove_all(dir);
}

TEST(Log, UnwritableFileIsAnError) {
  auto err = log::to_files("/proc/osb-no/server.log", "/proc/osb-no/a.log",
                           100, 1);
  EXPECT_FALSE(err.empty());
}
