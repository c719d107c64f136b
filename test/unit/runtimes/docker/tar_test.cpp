#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "runtimes/docker/tar.hpp"

using osb::runtimes::docker::make_tar;

TEST(Tar, SystemTarExtractsFilesWithModes) {
  auto tar = make_tar({{"opt", 0755, true, {}},
                       {"opt/opensandbox", 0755, true, {}},
                       {"opt/opensandbox/execd", 0755, false, "#!/bin/sh\n"}});
  EXPECT_EQ(tar.size() % 512, 0u);
  auto dir = std::filesystem::temp_directory_path() / "osb-tar-test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    std::ofstream out{dir / "a.tar", std::ios::binary};
    out << tar;
  }
  auto cmd = "tar -xf " + (dir / "a.tar").string() + " -C " + dir.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto file = dir / "opt/opensandbox/execd";
  ASSERT_TRUE(std::filesystem::exists(file));
  auto perms = std::filesystem::status(file).permissions();
  EXPECT_NE(perms & std::filesystem::perms::owner_exec,
            std::filesystem::perms::none);
  std::ifstream in{file};
  std::string content((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(content, "#!/bin/sh\n");
  std::filesystem::remove_all(dir);
}
