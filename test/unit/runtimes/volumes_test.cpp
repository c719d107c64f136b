// Unit tests of the host-side volume checks (runtimes/volumes) and of the
// Docker runtime's named volumes and binds (runtimes/docker/volumes).

#include "runtimes/volumes.hpp"

#include "runtimes/docker/labels.hpp"
#include "runtimes/docker/volumes.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

using namespace osb;
using namespace osb::runtimes;
using namespace osb::runtimes::docker;

namespace fs = std::filesystem;

namespace {

/// A scratch directory, removed at the end of the test.
struct scratch {
  scratch() {
    std::random_device rd;
    root = fs::temp_directory_path()
           / ("osb-volumes-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(root / "allowed");
    fs::create_directories(root / "outside");
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  std::string allowed() const {
    return (root / "allowed").string();
  }
  fs::path root;
};

volume_mount host(std::string path, std::string sub_path = {}) {
  volume_mount v;
  v.name = "work";
  v.mount_path = "/mnt/work";
  v.backend = volume_mount::backend_kind::host;
  v.host_path = std::move(path);
  v.sub_path = std::move(sub_path);
  return v;
}

volume_mount pvc(std::string claim, std::string sub_path = {}) {
  volume_mount v;
  v.name = "data";
  v.mount_path = "/data";
  v.backend = volume_mount::backend_kind::pvc;
  v.claim_name = std::move(claim);
  v.sub_path = std::move(sub_path);
  return v;
}

template <class T>
const volume_error& error_of(const volume_result<T>& r) {
  static volume_error none{ec::none, "no error"};
  auto e = std::get_if<volume_error>(&r);
  return e ? *e : none;
}

} // namespace

TEST(Volumes, ParsesTheStoredShape) {
  auto r = parse_volumes(
    R"([{"name":"w","host":{"path":"/data/x"},"mountPath":"/w","readOnly":true,"subPath":"a/b"},)"
    R"({"name":"c","pvc":{"claimName":"cache","createIfNotExists":false,)"
    R"("deleteOnSandboxTermination":true},"mountPath":"/c","readOnly":false}])");
  auto xs = std::get<std::vector<volume_mount>>(r);
  ASSERT_EQ(xs.size(), 2u);
  EXPECT_EQ(xs[0].backend, volume_mount::backend_kind::host);
  EXPECT_EQ(xs[0].host_path, "/data/x");
  EXPECT_TRUE(xs[0].read_only);
  EXPECT_EQ(xs[0].sub_path, "a/b");
  EXPECT_EQ(xs[1].backend, volume_mount::backend_kind::pvc);
  EXPECT_EQ(xs[1].claim_name, "cache");
  EXPECT_FALSE(xs[1].create_if_not_exists);
  EXPECT_TRUE(xs[1].delete_on_termination);
  EXPECT_TRUE(has_named_volumes(xs));
  EXPECT_TRUE(has_volumes_to_delete(xs));
  EXPECT_TRUE(std::get<std::vector<volume_mount>>(parse_volumes("")).empty());
  EXPECT_EQ(error_of(parse_volumes("{")).code, ec::internal);
}

TEST(Volumes, NormalizesPaths) {
  EXPECT_EQ(normalize_path("/a/./b//c/"), "/a/b/c");
  EXPECT_EQ(normalize_path("/a/b/../c"), "/a/c");
  EXPECT_EQ(normalize_path("/../.."), "/");
  EXPECT_EQ(normalize_path("/"), "/");
}

TEST(Volumes, BindsCarryTheMode) {
  auto v = host("/data/x");
  EXPECT_EQ(make_bind("/data/x", v), "/data/x:/mnt/work:rw");
  v.read_only = true;
  EXPECT_EQ(make_bind("/data/x", v), "/data/x:/mnt/work:ro");
}

TEST(Volumes, HostPathIsCreatedWithItsSubPath) {
  scratch s;
  auto r = prepare_host_path(host(s.allowed() + "/u1", "a/b"), {s.allowed()});
  ASSERT_TRUE(std::holds_alternative<std::string>(r)) << error_of(r).message;
  EXPECT_EQ(std::get<std::string>(r), s.allowed() + "/u1/a/b");
  EXPECT_TRUE(fs::is_directory(s.allowed() + "/u1/a/b"));
  // A trailing slash on the allowlist entry is fine.
  r = prepare_host_path(host(s.allowed()), {s.allowed() + "/"});
  EXPECT_TRUE(std::holds_alternative<std::string>(r)) << error_of(r).message;
}

TEST(Volumes, RemoteDockerHostsGetLexicalChecksOnly) {
  // This server cannot see a remote host's files: nothing is created or
  // resolved here; the allowlist still applies to the path as written.
  scratch s;
  auto r = prepare_host_path(host(s.allowed() + "/r1", "x"), {s.allowed()},
                             false);
  ASSERT_TRUE(std::holds_alternative<std::string>(r)) << error_of(r).message;
  EXPECT_EQ(std::get<std::string>(r), s.allowed() + "/r1/x");
  EXPECT_FALSE(fs::exists(s.allowed() + "/r1"));
  r = prepare_host_path(host("/etc"), {s.allowed()}, false);
  EXPECT_EQ(error_of(r).code, ec::volume_host_path_not_allowed);
  r = prepare_host_path(host(s.allowed(), "../../etc"), {s.allowed()}, false);
  EXPECT_EQ(error_of(r).code, ec::volume_host_path_not_allowed);
}

TEST(Volumes, ExistingFileIsBoundAsIs) {
  scratch s;
  std::ofstream{s.allowed() + "/disk.iso"} << "iso";
  auto r = prepare_host_path(host(s.allowed() + "/disk.iso"), {s.allowed()});
  ASSERT_TRUE(std::holds_alternative<std::string>(r)) << error_of(r).message;
  EXPECT_EQ(std::get<std::string>(r), s.allowed() + "/disk.iso");
  EXPECT_TRUE(fs::is_regular_file(s.allowed() + "/disk.iso"));
}

TEST(Volumes, SymlinkOutOfTheAllowlistIsRefused) {
  scratch s;
  fs::create_directory_symlink(s.root / "outside", s.root / "allowed/escape");
  auto r = prepare_host_path(host(s.allowed() + "/escape"), {s.allowed()});
  auto& e = error_of(r);
  EXPECT_EQ(e.code, ec::volume_host_path_not_allowed);
  EXPECT_NE(e.message.find("Volume 'work'"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("symlink"), std::string::npos) << e.message;
  // Also when the symlink is reached through subPath, and for paths below
  // it that do not exist yet (nothing is created outside).
  r = prepare_host_path(host(s.allowed(), "escape/new"), {s.allowed()});
  EXPECT_EQ(error_of(r).code, ec::volume_host_path_not_allowed);
  EXPECT_FALSE(fs::exists(s.root / "outside/new"));
  // A symlink that stays inside is fine.
  fs::create_directories(s.root / "allowed/real");
  fs::create_directory_symlink(s.root / "allowed/real",
                               s.root / "allowed/inside");
  r = prepare_host_path(host(s.allowed() + "/inside"), {s.allowed()});
  ASSERT_TRUE(std::holds_alternative<std::string>(r)) << error_of(r).message;
  EXPECT_EQ(std::get<std::string>(r), s.allowed() + "/real");
}

TEST(Volumes, SubPathIsCheckedAgainstTheAllowlist) {
  scratch s;
  // subPath is relative and has no "..": only a prefix that is the host
  // path itself can be left, e.g. by listing just one subdirectory.
  auto r = prepare_host_path(host(s.allowed(), "x"), {s.allowed() + "/y"});
  EXPECT_EQ(error_of(r).code, ec::volume_host_path_not_allowed);
}

TEST(Volumes, UncreatableDirectoryIsAServerError) {
  scratch s;
  std::ofstream{s.allowed() + "/file"} << "x";
  auto r = prepare_host_path(host(s.allowed() + "/file", "sub"),
                             {s.allowed()});
  auto& e = error_of(r);
  EXPECT_EQ(e.code, ec::volume_host_path_create_failed);
  EXPECT_NE(e.message.find("Volume 'work'"), std::string::npos);
}

TEST(Volumes, PrecheckRefusesOssfsAndBadHostPaths) {
  volume_mount o;
  o.name = "oss";
  o.backend = volume_mount::backend_kind::ossfs;
  auto e = precheck_volumes({o}, {});
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, ec::volume_unsupported_backend);
  EXPECT_NE(e->message.find("Volume 'oss'"), std::string::npos);
  scratch s;
  fs::create_directory_symlink("/etc", s.root / "allowed/etc");
  e = precheck_volumes({pvc("cache"), host(s.allowed() + "/etc")},
                       {s.allowed()});
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, ec::volume_host_path_not_allowed);
  EXPECT_FALSE(precheck_volumes({pvc("cache"), host(s.allowed() + "/ok")},
                                {s.allowed()}));
}

TEST(Volumes, NamedVolumeSources) {
  volume_info info{"cache", "local", "/var/lib/docker/volumes/cache/_data",
                   {}};
  EXPECT_EQ(std::get<std::string>(named_volume_source(pvc("cache"), info)),
            "cache");
  EXPECT_EQ(std::get<std::string>(
              named_volume_source(pvc("cache", "datasets/train"), info)),
            "/var/lib/docker/volumes/cache/_data/datasets/train");
  info.driver = "nfs";
  auto r = named_volume_source(pvc("cache", "x"), info);
  EXPECT_EQ(error_of(r).code, ec::volume_pvc_subpath_unsupported_driver);
  EXPECT_NE(error_of(r).message.find("Volume 'data'"), std::string::npos);
  // Without subPath any driver works.
  EXPECT_EQ(std::get<std::string>(named_volume_source(pvc("cache"), info)),
            "cache");
}

TEST(Volumes, NamedVolumeSubPathMayNotEscapeThroughASymlink) {
  scratch s;
  auto mp = s.root / "allowed";
  fs::create_directory_symlink(s.root / "outside", mp / "link");
  volume_info info{"cache", "local", mp.string(), {}};
  auto r = named_volume_source(pvc("cache", "link/x"), info);
  EXPECT_EQ(error_of(r).code, ec::volume_invalid_sub_path);
  EXPECT_NE(error_of(r).message.find("symlink"), std::string::npos);
}

TEST(Volumes, ManagedLabelsRecordOwnerAndRemoval) {
  auto v = pvc("cache");
  v.delete_on_termination = true;
  volume_info info{"cache", "local", "/x", managed_volume_labels(v, "sbx-1")};
  EXPECT_EQ(info.labels.at(volume_managed_label), "server");
  EXPECT_TRUE(created_for(info, "sbx-1"));
  EXPECT_FALSE(created_for(info, "sbx-2"));
  EXPECT_TRUE(delete_with_sandbox(info));
  v.delete_on_termination = false;
  info.labels = managed_volume_labels(v, "sbx-1");
  EXPECT_FALSE(delete_with_sandbox(info));
  info.labels.erase(volume_managed_label);
  EXPECT_FALSE(created_for(info, "sbx-1"));
}
