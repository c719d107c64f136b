// Sandbox ids, request ids (core/ids).

#include "core/ids.hpp"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace osb::codec {
namespace {

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

TEST(Ids, UuidIsVersion4WithHyphens) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = make_uuid();
    ASSERT_EQ(id.size(), 36u);
    EXPECT_EQ(id[8], '-');
    EXPECT_EQ(id[13], '-');
    EXPECT_EQ(id[18], '-');
    EXPECT_EQ(id[23], '-');
    EXPECT_EQ(id[14], '4');
    EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a'
                || id[19] == 'b');
    for (size_t j = 0; j < id.size(); ++j) {
      if (j != 8 && j != 13 && j != 18 && j != 23) {
        EXPECT_TRUE(is_hex(id[j])) << id;
      }
    }
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Ids, RequestIdIs32LowercaseHex) {
  auto id = make_request_id();
  ASSERT_EQ(id.size(), 32u);
  for (auto c : id)
    EXPECT_TRUE(is_hex(c)) << id;
  EXPECT_NE(make_request_id(), id);
}

} // namespace
} // namespace osb::codec
