// The node ledger: one process per store file (an exclusive lock the kernel
// releases with the process) and the incarnations the store recorded.

#include "store/node_ledger.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "core/ids.hpp"

using namespace osb;

namespace {

class NodeLedger : public testing::Test {
protected:
  NodeLedger() {
    dir = std::filesystem::temp_directory_path()
          / ("osb-ledger-" + codec::make_uuid());
    path = (dir / "sub" / "store.db").string();
  }

  ~NodeLedger() override {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  std::filesystem::path dir;
  std::string path;
};

} // namespace

TEST_F(NodeLedger, RecordsEveryIncarnationOfTheNode) {
  {
    auto a = store::node_ledger::open(path, "n1", "inc-a");
    ASSERT_TRUE(a.has_value()) << a.error().message;
    EXPECT_EQ((*a)->incarnations(), std::vector<std::string>{"inc-a"});
  }
  // Another node's incarnations in the same file are not this node's.
  {
    auto other = store::node_ledger::open(path, "n2", "inc-x");
    ASSERT_TRUE(other.has_value()) << other.error().message;
    EXPECT_EQ((*other)->incarnations(), std::vector<std::string>{"inc-x"});
  }
  auto b = store::node_ledger::open(path, "n1", "inc-b");
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ((*b)->incarnations(),
            (std::vector<std::string>{"inc-a", "inc-b"}));
}

TEST_F(NodeLedger, TwoHoldersOfOneStoreAreRefused) {
  auto first = store::node_ledger::open(path, "n1", "inc-a");
  ASSERT_TRUE(first.has_value()) << first.error().message;
  auto second = store::node_ledger::open(path, "n1", "inc-b");
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().kind, failure_kind::conflict);
  EXPECT_NE(second.error().message.find("in use by another process (pid "
                                        + std::to_string(::getpid()) + ")"),
            std::string::npos)
    << second.error().message;
  // The refused one recorded nothing; the lock goes with its holder.
  first->reset();
  auto third = store::node_ledger::open(path, "n1", "inc-c");
  ASSERT_TRUE(third.has_value()) << third.error().message;
  EXPECT_EQ((*third)->incarnations(),
            (std::vector<std::string>{"inc-a", "inc-c"}));
}
