#include "base/json.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace osb::base;

namespace {

std::string nested(size_t depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

} // namespace

TEST(JsonDepth, AcceptsUpToTheLimit) {
  EXPECT_EQ(json_too_deep(nested(json_max_depth)), std::string_view::npos);
  EXPECT_EQ(json_too_deep(nested(3), 3), std::string_view::npos);
  EXPECT_EQ(json_too_deep(R"({"a":[{"b":[1,2]}],"c":{}})", 4),
            std::string_view::npos);
}

TEST(JsonDepth, RefusesOneLevelMoreAtItsBracket) {
  EXPECT_EQ(json_too_deep(nested(json_max_depth + 1)), json_max_depth);
  EXPECT_EQ(json_too_deep(R"({"a":[{"b":[1]}]})", 3), 11u);
}

TEST(JsonDepth, BracketsInStringsDoNotCount) {
  EXPECT_EQ(json_too_deep(R"(["[[[[", "{{{{\"[[[["])", 1),
            std::string_view::npos);
  // An escaped backslash ends the escape: the quote after it closes.
  EXPECT_EQ(json_too_deep(R"(["\\", [[]]])", 2), 8u);
}

TEST(JsonDepth, SiblingsDoNotAddUp) {
  std::string text = "[";
  for (int i = 0; i < 1000; ++i)
    text += "[1],";
  text += "[]]";
  EXPECT_EQ(json_too_deep(text, 2), std::string_view::npos);
}

TEST(JsonParse, DeepDocumentIsRefusedWithoutParsing) {
  // Deep enough to overflow the stack if RapidJSON ever saw it.
  auto text = nested(1000000);
  rapidjson::Document doc;
  size_t at = 0;
  EXPECT_EQ(parse_json(doc, text, json_max_depth, &at), json_status::too_deep);
  EXPECT_EQ(at, json_max_depth);
  EXPECT_TRUE(doc.IsNull());
  text = nested(1000000, '{', '}');
  EXPECT_EQ(parse_json(doc, text), json_status::too_deep);
}

TEST(JsonParse, ValidAndInvalid) {
  rapidjson::Document doc;
  EXPECT_EQ(parse_json(doc, R"({"a":[1,2]})"), json_status::ok);
  EXPECT_EQ(doc["a"].Size(), 2u);
  EXPECT_EQ(parse_json(doc, "{\"a\":"), json_status::invalid);
  EXPECT_TRUE(doc.HasParseError());
  // Flags pass through.
  EXPECT_EQ(parse_json<rapidjson::kParseStopWhenDoneFlag>(doc, "[1] tail"),
            json_status::ok);
}
