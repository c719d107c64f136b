// The request model of the HTTP servers and its header and query helpers
// (base/http_request.hpp).

#include "base/http_request.hpp"

#include <gtest/gtest.h>

using namespace osb;

TEST(HttpRequest, TargetSplitsIntoPathAndQuery) {
  base::http_request req;
  req.set_target("/files/info?path=%2Fetc&path=a+b&flag&=x&&depth=2");
  EXPECT_EQ(req.path, "/files/info");
  EXPECT_EQ(req.query, "path=%2Fetc&path=a+b&flag&=x&&depth=2");
  EXPECT_EQ(req.query_all("path"),
            (std::vector<std::string>{"/etc", "a b"}));
  EXPECT_EQ(req.query_get("depth"), "2");
  EXPECT_EQ(req.query_get("flag"), "");
  EXPECT_EQ(req.query_get(""), "x");
  EXPECT_EQ(req.query_get("missing"), std::nullopt);
  req.set_target("/ping");
  EXPECT_EQ(req.path, "/ping");
  EXPECT_EQ(req.query, "");
  req.set_target("/?");
  EXPECT_EQ(req.path, "/");
  EXPECT_EQ(req.query, "");
}

TEST(HttpRequest, HeaderFindsTheFirstOfAName) {
  base::http_request req;
  req.headers = {{"x-a", "1"}, {"x-b", "2"}, {"x-a", "3"}};
  EXPECT_EQ(req.header("x-a"), "1");
  EXPECT_EQ(req.header("x-b"), "2");
  EXPECT_EQ(req.header("x-c"), "");
}

TEST(HttpRequest, QueryPairsKeepTheirOrder) {
  auto q = base::parse_query("b=2&a=1&b=%33&c");
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[0], (std::pair<std::string, std::string>{"b", "2"}));
  EXPECT_EQ(q[1], (std::pair<std::string, std::string>{"a", "1"}));
  EXPECT_EQ(q[2], (std::pair<std::string, std::string>{"b", "3"}));
  EXPECT_EQ(q[3], (std::pair<std::string, std::string>{"c", ""}));
  EXPECT_TRUE(base::parse_query("").empty());
}

TEST(HttpRequest, HasTokenMatchesListElements) {
  EXPECT_TRUE(base::has_token("100-continue", "100-continue"));
  EXPECT_TRUE(base::has_token("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(base::has_token("keep-alive,\tUPGRADE ,x", "upgrade"));
  EXPECT_TRUE(base::has_token(",, upgrade", "upgrade"));
  EXPECT_FALSE(base::has_token("upgrade-insecure", "upgrade"));
  EXPECT_FALSE(base::has_token("", "upgrade"));
  EXPECT_FALSE(base::has_token("keep-alive", "upgrade"));
}
