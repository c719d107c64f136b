// The SQLite store: what a node persists about its sandboxes and snapshots
// survives a reopen field for field, rows are per node, and a store that
// cannot be opened says why.

#include "store/sqlite_store.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/ids.hpp"

using namespace osb;

namespace {

class SqliteStore : public testing::Test {
protected:
  SqliteStore() {
    dir = std::filesystem::temp_directory_path()
          / ("osb-store-" + codec::make_uuid());
    path = (dir / "nested" / "store.db").string();
  }

  ~SqliteStore() override {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  std::unique_ptr<store::sqlite_store> open() {
    auto s = store::sqlite_store::open(path);
    EXPECT_TRUE(s.has_value()) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }

  static store::sandbox_row row(std::string id, std::string node) {
    store::sandbox_row r;
    r.id = std::move(id);
    r.node = std::move(node);
    r.spec_json = R"({"image":"busybox"})";
    r.metadata_json = R"({"team":"a"})";
    r.phase = "provisioned";
    r.reason = "CONTAINER_RUNNING";
    r.message = "running";
    r.created_us = 1'700'000'000'000'001;
    r.expires_us = 1'700'000'600'000'002;
    r.last_transition_us = 1'700'000'000'500'003;
    r.execd_port = 40001;
    r.http_port = 40002;
    r.egress_port = 40003;
    r.egress_token = "egress-secret";
    r.access_token = "access-secret";
    r.runtime_host = "default";
    return r;
  }

  std::filesystem::path dir;
  std::string path;
};

} // namespace

TEST_F(SqliteStore, RowsSurviveAReopenFieldForField) {
  auto in = row("a", "n1");
  {
    auto s = open();
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->put(in).has_value());
  }
  auto s = open();
  ASSERT_TRUE(s);
  auto rows = s->load("n1");
  ASSERT_TRUE(rows.has_value()) << rows.error().message;
  ASSERT_EQ(rows->size(), 1u);
  auto& out = rows->front();
  EXPECT_EQ(out.id, in.id);
  EXPECT_EQ(out.node, in.node);
  EXPECT_EQ(out.spec_json, in.spec_json);
  EXPECT_EQ(out.metadata_json, in.metadata_json);
  EXPECT_EQ(out.phase, in.phase);
  EXPECT_EQ(out.reason, in.reason);
  EXPECT_EQ(out.message, in.message);
  EXPECT_EQ(out.created_us, in.created_us);
  EXPECT_EQ(out.expires_us, in.expires_us);
  EXPECT_EQ(out.last_transition_us, in.last_transition_us);
  EXPECT_EQ(out.execd_port, in.execd_port);
  EXPECT_EQ(out.http_port, in.http_port);
  EXPECT_EQ(out.egress_port, in.egress_port);
  EXPECT_EQ(out.egress_token, in.egress_token);
  EXPECT_EQ(out.access_token, in.access_token);
  EXPECT_EQ(out.runtime_host, in.runtime_host);
}

TEST_F(SqliteStore, PutReplacesTheRowAndRemoveDropsIt) {
  auto s = open();
  ASSERT_TRUE(s);
  auto r = row("a", "n1");
  ASSERT_TRUE(s->put(r).has_value());
  r.phase = "deleting";
  r.expires_us += 1000;
  ASSERT_TRUE(s->put(r).has_value());
  auto rows = s->load("n1");
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().phase, "deleting");
  EXPECT_EQ(rows->front().expires_us, r.expires_us);
  ASSERT_TRUE(s->remove("a").has_value());
  // Removing what is gone is not an error (a retried deletion).
  ASSERT_TRUE(s->remove("a").has_value());
  rows = s->load("n1");
  ASSERT_TRUE(rows.has_value());
  EXPECT_TRUE(rows->empty());
}

TEST_F(SqliteStore, EachNodeLoadsOnlyItsOwnRows) {
  auto s = open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->put(row("a", "n1")).has_value());
  ASSERT_TRUE(s->put(row("b", "n2")).has_value());
  ASSERT_TRUE(s->put(row("c", "n1")).has_value());
  auto n1 = s->load("n1");
  auto n2 = s->load("n2");
  auto n3 = s->load("n3");
  ASSERT_TRUE(n1 && n2 && n3);
  EXPECT_EQ(n1->size(), 2u);
  ASSERT_EQ(n2->size(), 1u);
  EXPECT_EQ(n2->front().id, "b");
  EXPECT_TRUE(n3->empty());
}

TEST_F(SqliteStore, SnapshotsSurviveAReopenAndAreRemoved) {
  snapshot_view x;
  x.id = "snap-1";
  x.sandbox_id = "a";
  x.name = "before-upgrade";
  x.state = "Ready";
  x.reason = "SNAPSHOT_READY";
  x.message = "ready";
  x.created_us = 11;
  x.last_transition_us = 12;
  x.image = "opensandbox-snapshots:snap-1";
  x.node = "n1";
  x.runtime_host = "default";
  {
    auto s = open();
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->put_snapshot(x).has_value());
  }
  auto s = open();
  ASSERT_TRUE(s);
  auto xs = s->load_snapshots("n1");
  ASSERT_TRUE(xs.has_value()) << xs.error().message;
  ASSERT_EQ(xs->size(), 1u);
  auto& y = xs->front();
  EXPECT_EQ(y.id, x.id);
  EXPECT_EQ(y.sandbox_id, x.sandbox_id);
  EXPECT_EQ(y.name, x.name);
  EXPECT_EQ(y.state, x.state);
  EXPECT_EQ(y.reason, x.reason);
  EXPECT_EQ(y.message, x.message);
  EXPECT_EQ(y.created_us, x.created_us);
  EXPECT_EQ(y.last_transition_us, x.last_transition_us);
  EXPECT_EQ(y.image, x.image);
  EXPECT_EQ(y.runtime_host, x.runtime_host);
  EXPECT_TRUE(s->load_snapshots("n2")->empty());
  ASSERT_TRUE(s->remove_snapshot("snap-1").has_value());
  EXPECT_TRUE(s->load_snapshots("n1")->empty());
}

TEST_F(SqliteStore, AFileThatIsNoDatabaseIsRefusedWithTheReason) {
  std::filesystem::create_directories(dir / "nested");
  {
    std::ofstream out{path};
    out << std::string(8192, 'x');
  }
  auto s = store::sqlite_store::open(path);
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().message.find(path), std::string::npos)
    << s.error().message;
}

TEST_F(SqliteStore, AStoreUnderADirectoryThatCannotExistIsRefused) {
  // A regular file where the store's directory should be.
  std::filesystem::create_directories(dir);
  {
    std::ofstream out{(dir / "nested").string()};
    out << "not a directory";
  }
  auto s = store::sqlite_store::open(path);
  ASSERT_FALSE(s.has_value());
  EXPECT_FALSE(s.error().message.empty());
}
