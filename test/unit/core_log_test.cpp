// File logging: lines go to the file, rotate by size like Python's
// RotatingFileHandler, and access lines go to their own file.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/ids.hpp"
#include "core/log.hpp"

namespace fs = std::filesystem;
using namespace osb;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in{p};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace

TEST(Log, FilesRotateBySizeAndKeepTheBackupCount) {
  auto dir = fs::temp_directory_path() / ("osb-log-" + codec::make_uuid());
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
