// The store's pool table (store/sqlite_store.hpp): records and tombstones
// survive reopening; the sandbox row keeps its pool.

#include "store/sqlite_store.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/ids.hpp"

using namespace osb;

namespace {

class StorePools : public testing::Test {
protected:
  StorePools() {
    dir = std::filesystem::temp_directory_path()
          / ("osb-pools-" + codec::make_uuid());
    std::filesystem::create_directories(dir);
    path = (dir / "store.db").string();
  }

  ~StorePools() override {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  std::filesystem::path dir;
  std::string path;
};

pool_record record(const std::string& name, int64_t generation) {
  pool_record r;
  r.name = name;
  r.tmpl.image = "opensandbox/busybox:latest";
  r.tmpl.entrypoint = {"sleep", "3600"};
  r.capacity.buffer_max = 2;
  r.capacity.pool_max = 4;
  r.generation = generation;
  r.origin = "n1";
  return r;
}

} // namespace

TEST_F(StorePools, RecordsAndTombstonesSurviveReopening) {
  {
    auto db = store::sqlite_store::open(path);
    ASSERT_TRUE(db.has_value()) << db.error().message;
    ASSERT_TRUE((*db)->put_pool(record("a", 1)));
    ASSERT_TRUE((*db)->put_pool(record("b", 1)));
    auto b2 = record("b", 2);
    b2.deleted = true;
    ASSERT_TRUE((*db)->put_pool(b2));
    auto a2 = record("a", 2);
    a2.capacity.pool_max = 9;
    ASSERT_TRUE((*db)->put_pool(a2));
  }
  auto db = store::sqlite_store::open(path);
  ASSERT_TRUE(db.has_value());
  auto xs = (*db)->load_pools();
  ASSERT_TRUE(xs.has_value());
  ASSERT_EQ(xs->size(), 2u);
  for (auto& x : *xs) {
    EXPECT_EQ(x.generation, 2) << x.name;
    if (x.name == "a") {
      EXPECT_FALSE(x.deleted);
      EXPECT_EQ(x.capacity.pool_max, 9);
      EXPECT_EQ(x.tmpl.entrypoint,
                (std::vector<std::string>{"sleep", "3600"}));
    } else {
      EXPECT_TRUE(x.deleted);
    }
  }
}

TEST_F(StorePools, SandboxRowKeepsItsPool) {
  auto db = store::sqlite_store::open(path);
  ASSERT_TRUE(db.has_value());
  store::sandbox_row row;
  row.id = "s1";
  row.node = "n1";
  row.spec_json = "{}";
  row.metadata_json = "{}";
  row.phase = "provisioned";
  row.pool = "a";
  ASSERT_TRUE((*db)->put(row));
  auto rows = (*db)->load("n1");
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().pool, "a");
}
