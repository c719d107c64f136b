#include "core/model.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace osb {
namespace {

sandbox_view box(std::string id, int64_t created, sandbox_state st,
                 string_map md = {}) {
  sandbox_view x;
  x.id = std::move(id);
  x.created_us = created;
  x.state = st;
  x.metadata = std::move(md);
  return x;
}

TEST(SandboxState, RoundTripsWireNames) {
  for (auto name : {"Pending", "Running", "Pausing", "Paused", "Resuming",
                    "Stopping", "Terminated", "Failed", "Unknown"}) {
    sandbox_state s;
    ASSERT_TRUE(from_string(name, s)) << name;
    EXPECT_STREQ(to_string(s), name);
  }
}

TEST(SandboxState, ParsesCaseInsensitively) {
  sandbox_state s;
  ASSERT_TRUE(from_string("running", s));
  EXPECT_EQ(s, sandbox_state::running);
  ASSERT_TRUE(from_string("PAUSED", s));
  EXPECT_EQ(s, sandbox_state::paused);
}

TEST(SandboxState, RejectsUnknownAndEmptyNames) {
  sandbox_state s;
  EXPECT_FALSE(from_string("", s));
  EXPECT_FALSE(from_string("run", s));
  EXPECT_FALSE(from_string("Runningx", s));
}

TEST(Matches, FiltersByStateWithOrSemantics) {
  list_query q;
  q.states = {sandbox_state::running, sandbox_state::paused};
  EXPECT_TRUE(matches(box("a", 1, sandbox_state::running), q));
  EXPECT_TRUE(matches(box("a", 1, sandbox_state::paused), q));
  EXPECT_FALSE(matches(box("a", 1, sandbox_state::failed), q));
}

TEST(Matches, FiltersByMetadataWithAndSemantics) {
  list_query q;
  q.metadata = {{"team", "infra"}, {"project", "alpha"}};
  EXPECT_TRUE(matches(box("a", 1, sandbox_state::running,
                          {{"team", "infra"}, {"project", "alpha"},
                           {"x", "y"}}),
                      q));
  EXPECT_FALSE(
    matches(box("a", 1, sandbox_state::running, {{"team", "infra"}}), q));
  EXPECT_FALSE(matches(box("a", 1, sandbox_state::running,
                           {{"team", "infra"}, {"project", "beta"}}),
                       q));
}

TEST(Matches, MatchNothingRejectsEverything) {
  list_query q;
  q.match_nothing = true;
  EXPECT_FALSE(matches(box("a", 1, sandbox_state::running), q));
}

TEST(Paginate, SortsByCreatedDescThenIdDesc) {
  std::vector<sandbox_view> xs = {box("a", 1, sandbox_state::running),
                                  box("c", 3, sandbox_state::running),
                                  box("b", 3, sandbox_state::running),
                                  box("d", 2, sandbox_state::running)};
  list_query q;
  auto page = paginate(xs, q);
  ASSERT_EQ(page.items.size(), 4u);
  EXPECT_EQ(page.items[0].id, "c");
  EXPECT_EQ(page.items[1].id, "b");
  EXPECT_EQ(page.items[2].id, "d");
  EXPECT_EQ(page.items[3].id, "a");
  EXPECT_EQ(page.total_items, 4);
}

TEST(Paginate, ReturnsRequestedPage) {
  std::vector<sandbox_view> xs;
  for (int i = 0; i < 45; ++i)
    xs.push_back(box("id" + std::to_string(100 + i), i,
                     sandbox_state::running));
  list_query q;
  q.page = 3;
  q.page_size = 20;
  auto page = paginate(xs, q);
  EXPECT_EQ(page.page, 3);
  EXPECT_EQ(page.page_size, 20);
  EXPECT_EQ(page.total_items, 45);
  ASSERT_EQ(page.items.size(), 5u);
  EXPECT_EQ(page.items.front().created_us, 4);
  EXPECT_EQ(page.items.back().created_us, 0);
}

TEST(Paginate, PagePastTheEndIsEmpty) {
  std::vector<sandbox_view> xs = {box("a", 1, sandbox_state::running)};
  list_query q;
  q.page = 7;
  auto page = paginate(xs, q);
  EXPECT_TRUE(page.items.empty());
  EXPECT_EQ(page.page, 7);
  EXPECT_EQ(page.total_items, 1);
}

// The statuses of these kinds (400, 404, 409) are asserted where they are
// decided, at the HTTP boundary: test/unit/http/status_test.cpp.
TEST(ErrorTable, MapsCodes) {
  auto e = make_api_error(ec::invalid_metadata_label, "m");
  EXPECT_EQ(e.kind, ec::invalid_metadata_label);
  EXPECT_EQ(e.code, "SANDBOX::INVALID_METADATA_LABEL");
  EXPECT_EQ(e.message, "m");
  EXPECT_EQ(wire_code(ec::reserved_metadata_key),
            std::string{"INVALID_METADATA_LABEL"});
  EXPECT_EQ(wire_code(ec::sandbox_not_found),
            std::string{"DOCKER::SANDBOX_NOT_FOUND"});
  EXPECT_EQ(wire_code(ec::expiration_not_renewable),
            std::string{"DOCKER::INVALID_EXPIRATION"});
  EXPECT_EQ(wire_code(ec::internal), std::string{"GENERAL::UNKNOWN_ERROR"});
}

} // namespace
} // namespace osb
