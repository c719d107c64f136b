#include "execd/files.hpp"
#include "execd/json.hpp"
#include "execd/multipart.hpp"
#include "execd/users.hpp"
#include "execd/util.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace osb::execd;

namespace {

class ExecdFiles : public ::testing::Test {
protected:
  void SetUp() override {
    dir = "/tmp/execd-files-test-" + random_hex(4);
    make_dirs(dir);
  }

  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  void write(const std::string& rel, const std::string& text) {
    make_dirs(dirname_of(dir + "/" + rel));
    std::ofstream{dir + "/" + rel} << text;
  }

  std::string read(const std::string& rel) {
    std::string out;
    read_file(dir + "/" + rel, out);
    return out;
  }

  mode_t mode_of(const std::string& rel) {
    struct stat st{};
    ::lstat((dir + "/" + rel).c_str(), &st);
    return st.st_mode & 07777;
  }

  std::string dir;
};

std::vector<std::string> base_names(const std::vector<file_info>& xs) {
  std::vector<std::string> out;
  for (auto& x : xs)
    out.push_back(basename_of(x.path));
  return out;
}

} // namespace

TEST(ExecdFileModes, DigitsRoundTrip) {
  EXPECT_EQ(mode_digits(0755), 755);
  EXPECT_EQ(mode_digits(0644), 644);
  EXPECT_EQ(mode_digits(0600), 600);
  EXPECT_EQ(mode_digits(S_IFREG | 0640), 640);
  EXPECT_EQ(mode_digits(04755), 4755);
  EXPECT_EQ(mode_digits(0), 0);
  EXPECT_EQ(parse_mode_digits(755), mode_t{0755});
  EXPECT_EQ(parse_mode_digits(644), mode_t{0644});
  EXPECT_EQ(parse_mode_digits(7), mode_t{07});
  EXPECT_FALSE(parse_mode_digits(789));
  EXPECT_FALSE(parse_mode_digits(-1));
  EXPECT_FALSE(parse_mode_digits(17777));
}

TEST_F(ExecdFiles, InfoFields) {
  write("f.txt", "hello");
  ::chmod((dir + "/f.txt").c_str(), 0640);
  file_info info;
  ASSERT_FALSE(stat_path(dir + "/f.txt", info));
  EXPECT_EQ(info.path, dir + "/f.txt");
  EXPECT_EQ(info.type, "file");
  EXPECT_EQ(info.size, 5);
  EXPECT_EQ(info.mode, 640);
  EXPECT_EQ(info.owner, users::user_name(::getuid()));
  EXPECT_EQ(info.group, users::group_name(::getgid()));
  json_writer w;
  write_file_info(w, info);
  auto json = w.str();
  for (auto key : {"\"path\":", "\"type\":\"file\"", "\"size\":5",
                   "\"modified_at\":\"", "\"created_at\":\"", "\"owner\":",
                   "\"group\":", "\"mode\":640"})
    EXPECT_NE(json.find(key), std::string::npos) << key << " in " << json;
  // RFC 3339 in UTC.
  auto t = rfc3339(info.modified_at);
  EXPECT_EQ(t.size() >= 20, true);
  EXPECT_EQ(t[4], '-');
  EXPECT_EQ(t[10], 'T');
  EXPECT_EQ(t.back(), 'Z');
  ASSERT_FALSE(stat_path(dir, info));
  EXPECT_EQ(info.type, "directory");
  ::symlink("f.txt", (dir + "/link").c_str());
  ASSERT_FALSE(stat_path(dir + "/link", info));
  EXPECT_EQ(info.type, "symlink");
  auto e = stat_path(dir + "/missing", info);
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(e.code, "FILE_NOT_FOUND");
}

TEST(ExecdTime, Rfc3339) {
  EXPECT_EQ(rfc3339(timespec{0, 0}), "1970-01-01T00:00:00Z");
  EXPECT_EQ(rfc3339(timespec{1763303445, 123456789}),
            "2025-11-16T14:30:45.123456789Z");
  EXPECT_EQ(rfc3339(timespec{1763303445, 500000000}),
            "2025-11-16T14:30:45.5Z");
}

TEST_F(ExecdFiles, MoveCreatesParentAndRefusesExistingDest) {
  write("src.txt", "x");
  EXPECT_FALSE(move_path(dir + "/src.txt", dir + "/sub/dir/dst.txt"));
  EXPECT_EQ(read("sub/dir/dst.txt"), "x");
  EXPECT_FALSE(std::filesystem::exists(dir + "/src.txt"));
  write("other.txt", "y");
  auto e = move_path(dir + "/other.txt", dir + "/sub/dir/dst.txt");
  EXPECT_EQ(e.status, 500);
  EXPECT_EQ(move_path(dir + "/missing", dir + "/z").status, 404);
}

TEST_F(ExecdFiles, DeleteFilesAndDirectories) {
  write("a.txt", "x");
  EXPECT_FALSE(remove_file(dir + "/a.txt"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/a.txt"));
  EXPECT_FALSE(remove_file(dir + "/a.txt")); // missing = success
  make_dirs(dir + "/d/e");
  EXPECT_EQ(remove_file(dir + "/d").status, 500);
  write("d/e/f.txt", "x");
  EXPECT_FALSE(remove_tree(dir + "/d"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/d"));
  EXPECT_FALSE(remove_tree(dir + "/d"));
}

TEST_F(ExecdFiles, MakeDirectoryWithMode) {
  EXPECT_FALSE(make_directory(dir + "/x/y", 755, "", ""));
  EXPECT_EQ(mode_of("x/y"), mode_t{0755});
  // Mode 644 on a directory is honoured, as in Go.
  EXPECT_FALSE(make_directory(dir + "/z", 644, "", ""));
  EXPECT_EQ(mode_of("z"), mode_t{0644});
  EXPECT_EQ(make_directory(dir + "/w", 798, "", "").status, 400);
}

TEST_F(ExecdFiles, PermissionsModeAndOwner) {
  write("p.txt", "x");
  EXPECT_FALSE(apply_permissions(dir + "/p.txt", 600, "", ""));
  EXPECT_EQ(mode_of("p.txt"), mode_t{0600});
  auto me = users::user_name(::getuid());
  auto my_group = users::group_name(::getgid());
  EXPECT_FALSE(apply_permissions(dir + "/p.txt", 0, me, my_group));
  EXPECT_EQ(mode_of("p.txt"), mode_t{0600});
  EXPECT_EQ(apply_permissions(dir + "/missing", 644, "", "").status, 404);
  if (::getuid() == 0 && users::uid_of("nobody")) {
    EXPECT_FALSE(apply_permissions(dir + "/p.txt", 644, "nobody", ""));
    file_info info;
    stat_path(dir + "/p.txt", info);
    EXPECT_EQ(info.owner, "nobody");
    EXPECT_EQ(info.mode, 644);
  }
}

TEST_F(ExecdFiles, SearchMatchesBaseNamesRecursively) {
  write("a.txt", "");
  write("b.log", "");
  write("sub/c.txt", "");
  write("sub/deeper/d.TXT", "");
  std::vector<file_info> found;
  ASSERT_FALSE(search_files(dir, "*.txt", found));
  EXPECT_EQ(base_names(found), (std::vector<std::string>{"a.txt", "c.txt"}));
  found.clear();
  ASSERT_FALSE(search_files(dir, "**", found));
  EXPECT_EQ(found.size(), 4u); // directories are skipped
  found.clear();
  ASSERT_FALSE(search_files(dir, "*.{log,TXT}", found));
  EXPECT_EQ(base_names(found), (std::vector<std::string>{"b.log", "d.TXT"}));
  EXPECT_EQ(search_files(dir + "/missing", "*", found).status, 404);
}

TEST_F(ExecdFiles, ListDirectoryDepthAndOrder) {
  write("b/inner.txt", "");
  write("a.txt", "");
  write("c.txt", "");
  ::symlink("b", (dir + "/link").c_str());
  std::vector<file_info> out;
  ASSERT_FALSE(list_directory(dir, 1, out));
  EXPECT_EQ(base_names(out),
            (std::vector<std::string>{"a.txt", "b", "c.txt", "link"}));
  out.clear();
  ASSERT_FALSE(list_directory(dir, 2, out));
  EXPECT_EQ(base_names(out), (std::vector<std::string>{"a.txt", "b",
                                                       "inner.txt", "c.txt",
                                                       "link"}));
  EXPECT_EQ(out.back().type, "symlink");
  out.clear();
  ASSERT_FALSE(list_directory(dir, 0, out));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(list_directory(dir + "/link", 1, out).status, 400);
  EXPECT_EQ(list_directory(dir + "/a.txt", 1, out).status, 400);
  EXPECT_EQ(list_directory(dir + "/nope", 1, out).status, 404);
}

TEST_F(ExecdFiles, ReplaceCountsAndKeepsMode) {
  write("r.txt", "foo bar foo baz foo");
  ::chmod((dir + "/r.txt").c_str(), 0640);
  size_t n = 0;
  ASSERT_FALSE(replace_in_file(dir + "/r.txt", "foo", "qux", &n));
  EXPECT_EQ(n, 3u);
  EXPECT_EQ(read("r.txt"), "qux bar qux baz qux");
  EXPECT_EQ(mode_of("r.txt"), mode_t{0640});
  ASSERT_FALSE(replace_in_file(dir + "/r.txt", "absent", "x", &n));
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(replace_in_file(dir + "/r.txt", "", "x", &n).status, 400);
  EXPECT_EQ(replace_in_file(dir + "/missing", "a", "b", &n).status, 404);
}

TEST(ExecdGlob, Patterns) {
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("**", "anything"));
  EXPECT_TRUE(glob_match("*.txt", "a.txt"));
  EXPECT_FALSE(glob_match("*.txt", "a.txt.bak"));
  EXPECT_TRUE(glob_match("file?.md", "file1.md"));
  EXPECT_FALSE(glob_match("file?.md", "file10.md"));
  EXPECT_TRUE(glob_match("[abc]*", "beta"));
  EXPECT_FALSE(glob_match("[!abc]*", "beta"));
  EXPECT_TRUE(glob_match("[a-c]x", "cx"));
  EXPECT_TRUE(glob_match("{foo,bar}.go", "bar.go"));
  EXPECT_FALSE(glob_match("{foo,bar}.go", "baz.go"));
  EXPECT_TRUE(glob_match("\\*lit", "*lit"));
  EXPECT_FALSE(glob_match("\\*lit", "xlit"));
  EXPECT_TRUE(glob_match("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(glob_match("a*b*c", "aXXbYY"));
}

TEST(ExecdRange, Parsing) {
  byte_range r;
  EXPECT_EQ(parse_range("", 100, r), range_parse::none);
  EXPECT_EQ(parse_range("items=0-1", 100, r), range_parse::none);
  ASSERT_EQ(parse_range("bytes=0-9", 100, r), range_parse::ok);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.last, 9u);
  ASSERT_EQ(parse_range("bytes=90-", 100, r), range_parse::ok);
  EXPECT_EQ(r.first, 90u);
  EXPECT_EQ(r.last, 99u);
  ASSERT_EQ(parse_range("bytes=-10", 100, r), range_parse::ok);
  EXPECT_EQ(r.first, 90u);
  EXPECT_EQ(r.last, 99u);
  ASSERT_EQ(parse_range("bytes=-500", 100, r), range_parse::ok);
  EXPECT_EQ(r.first, 0u);
  ASSERT_EQ(parse_range("bytes=50-500", 100, r), range_parse::ok);
  EXPECT_EQ(r.last, 99u);
  ASSERT_EQ(parse_range("bytes=1-2, 5-6", 100, r), range_parse::ok);
  EXPECT_EQ(r.first, 1u);
  EXPECT_EQ(r.last, 2u);
  EXPECT_EQ(parse_range("bytes=100-", 100, r), range_parse::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=5-2", 100, r), range_parse::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=x-2", 100, r), range_parse::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=0-0", 0, r), range_parse::unsatisfiable);
}

TEST(ExecdDownload, ContentDisposition) {
  EXPECT_EQ(content_disposition("a.txt"), "attachment; filename=\"a.txt\"");
  EXPECT_EQ(content_disposition("\xc3\xa9t\xc3\xa9.txt"),
            "attachment; filename=\"__t__.txt\"; "
            "filename*=UTF-8''%C3%A9t%C3%A9.txt");
}

TEST(ExecdUsers, ParsePasswdAndGroup) {
  auto pw = parse_passwd("root:x:0:0:root:/root:/bin/bash\n"
                         "# comment\n"
                         "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
                         "broken\n");
  ASSERT_EQ(pw.size(), 2u);
  EXPECT_EQ(pw[1].name, "nobody");
  EXPECT_EQ(pw[1].uid, 65534u);
  EXPECT_EQ(pw[1].home, "/nonexistent");
  auto gr = parse_group("root:x:0:\nnogroup:x:65534:\nusers:x:100:a,b\n");
  ASSERT_EQ(gr.size(), 3u);
  EXPECT_EQ(gr[1].name, "nogroup");
  EXPECT_EQ(gr[2].members, (std::vector<std::string>{"a", "b"}));
}

TEST(ExecdUsers, LookupsFromRoot) {
  auto root = "/tmp/execd-users-test-" + random_hex(4);
  make_dirs(root + "/etc");
  std::ofstream{root + "/etc/passwd"} << "alice:x:1000:1001::/home/alice:\n";
  std::ofstream{root + "/etc/group"} << "staff:x:1001:alice\nother:x:7:alice\n";
  users::set_root(root);
  EXPECT_EQ(users::user_name(1000), "alice");
  EXPECT_EQ(users::user_name(4242), "4242");
  EXPECT_EQ(users::group_name(1001), "staff");
  EXPECT_EQ(users::uid_of("alice"), uid_t{1000});
  EXPECT_EQ(users::uid_of("123"), uid_t{123});
  EXPECT_FALSE(users::uid_of("bob"));
  EXPECT_EQ(users::gid_of("staff"), gid_t{1001});
  EXPECT_EQ(users::groups_of("alice"), (std::vector<gid_t>{1001, 7}));
  users::set_root("");
  std::filesystem::remove_all(root);
}

TEST(ExecdMultipart, SeveralPairsAcrossArbitraryChunks) {
  std::string body = "preamble\r\n"
                     "--XyZ\r\n"
                     "Content-Disposition: form-data; name=\"metadata\"; "
                     "filename=\"metadata\"\r\n"
                     "Content-Type: application/json\r\n\r\n"
                     "{\"path\":\"/a\"}\r\n"
                     "--XyZ\r\n"
                     "Content-Disposition: form-data; name=\"file\"; "
                     "filename=\"a.bin\"\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n"
                     "line1\r\n--Xy not a boundary\r\nend\r\n"
                     "--XyZ\r\n"
                     "Content-Disposition: form-data; name=\"metadata\"\r\n\r\n"
                     "{\"path\":\"/b\"}\r\n"
                     "--XyZ\r\n"
                     "Content-Disposition: form-data; name=\"file\"; "
                     "filename=\"b\"\r\n\r\n"
                     "\r\n\r\n"
                     "--XyZ--\r\nepilogue";
  for (size_t step : {1u, 2u, 3u, 7u, 64u, 100000u}) {
    std::vector<std::pair<part_headers, std::string>> parts;
    int ended = 0;
    multipart_parser p{"XyZ",
                       {[&](const part_headers& h) {
                          parts.emplace_back(h, "");
                          return true;
                        },
                        [&](std::string_view x) {
                          parts.back().second.append(x.data(), x.size());
                          return true;
                        },
                        [&] {
                          ++ended;
                          return true;
                        }}};
    for (size_t i = 0; i < body.size(); i += step)
      ASSERT_TRUE(p.feed(std::string_view{body}.substr(i, step)))
        << p.error();
    ASSERT_TRUE(p.done()) << "step " << step;
    ASSERT_EQ(parts.size(), 4u);
    EXPECT_EQ(ended, 4);
    EXPECT_EQ(parts[0].first.name, "metadata");
    EXPECT_EQ(parts[0].first.filename, "metadata");
    EXPECT_EQ(parts[0].first.content_type, "application/json");
    EXPECT_EQ(parts[0].second, "{\"path\":\"/a\"}");
    EXPECT_EQ(parts[1].first.name, "file");
    EXPECT_EQ(parts[1].first.filename, "a.bin");
    EXPECT_EQ(parts[1].second, "line1\r\n--Xy not a boundary\r\nend");
    EXPECT_EQ(parts[2].first.name, "metadata");
    EXPECT_EQ(parts[2].first.filename, "");
    EXPECT_EQ(parts[3].second, "\r\n");
  }
}

TEST(ExecdMultipart, BoundaryFromContentType) {
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(multipart_boundary(
              "multipart/form-data; charset=utf-8; boundary=\"a b\""),
            "a b");
  EXPECT_EQ(multipart_boundary("application/json"), "");
}

TEST(ExecdMultipart, MalformedDelimiterFails) {
  multipart_parser p{"B", {}};
  EXPECT_FALSE(p.feed("--Bxx\r\n"));
  EXPECT_FALSE(p.error().empty());
}

TEST(ExecdPaths, ResolveExpandsVariablesAndHome) {
  env_list env{"HOME=/home/u", "DIR=/data"};
  std::string err;
  EXPECT_EQ(resolve_path("$DIR/x", env, &err), "/data/x");
  EXPECT_EQ(resolve_path("${DIR}/y/../z/", env, &err), "/data/z");
  EXPECT_EQ(resolve_path("~/f", env, &err), "/home/u/f");
  EXPECT_EQ(resolve_path("/a//b/./c", env, &err), "/a/b/c");
  EXPECT_FALSE(resolve_path("$UNDEFINED_XYZ/a", env, &err));
  EXPECT_NE(err.find("UNDEFINED_XYZ"), std::string::npos);
  auto rel = resolve_path("rel", env, &err);
  ASSERT_TRUE(rel);
  EXPECT_EQ((*rel)[0], '/');
}
