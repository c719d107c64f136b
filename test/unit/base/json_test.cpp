#include "base/json.hpp"

#include <gtest/gtest.h>

#include <cmath>
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
  json_error at;
  EXPECT_EQ(parse_json(doc, text, json_max_depth, &at), json_status::too_deep);
  EXPECT_EQ(at.offset, json_max_depth);
  EXPECT_TRUE(doc.IsNull());
  text = nested(1000000, '{', '}');
  EXPECT_EQ(parse_json(doc, text), json_status::too_deep);
}

TEST(JsonParse, ValidAndInvalid) {
  rapidjson::Document doc;
  EXPECT_EQ(parse_json(doc, R"({"a":[1,2]})"), json_status::ok);
  EXPECT_EQ(doc["a"].Size(), 2u);
  json_error error;
  EXPECT_EQ(parse_json(doc, "{\"a\":", json_max_depth, &error),
            json_status::invalid);
  EXPECT_TRUE(doc.HasParseError());
  EXPECT_EQ(error.code, rapidjson::kParseErrorValueInvalid);
  EXPECT_EQ(error.offset, 5u);
  // Flags pass through.
  EXPECT_EQ(parse_json<rapidjson::kParseStopWhenDoneFlag>(doc, "[1] tail"),
            json_status::ok);
}

TEST(JsonParse, ZeroWithAnExponentIsZeroInFullPrecision) {
  // Regression (fuzz_codec): RapidJSON 1.1 gave 9.6e-240 for `0e-30` and
  // -1.6e32 for `-0e-99` (clz of a zero significand).
  rapidjson::Document doc;
  std::string text = R"([0e-30, -0e-99, 0.000e300, 0E+5, 1e-30, 10e-30, )"
                     R"("0e-30", -0.0e-7, 0.000000000000000000000000000000,)"
                     R"( -0.00000000000000000000000000000000000000001])";
  ASSERT_EQ(parse_json<rapidjson::kParseFullPrecisionFlag>(doc, text),
            json_status::ok);
  EXPECT_EQ(doc[0].GetDouble(), 0.0);
  EXPECT_EQ(doc[1].GetDouble(), 0.0);
  EXPECT_TRUE(std::signbit(doc[1].GetDouble()));
  EXPECT_EQ(doc[2].GetDouble(), 0.0);
  EXPECT_EQ(doc[3].GetDouble(), 0.0);
  EXPECT_DOUBLE_EQ(doc[4].GetDouble(), 1e-30);
  EXPECT_DOUBLE_EQ(doc[5].GetDouble(), 1e-29);
  EXPECT_STREQ(doc[6].GetString(), "0e-30");
  EXPECT_EQ(doc[7].GetDouble(), 0.0);
  // Thirty zeros after the point: also beyond the fast path.
  EXPECT_EQ(doc[8].GetDouble(), 0.0);
  EXPECT_TRUE(doc[8].IsDouble());
  EXPECT_DOUBLE_EQ(doc[9].GetDouble(), -1e-41);
}

TEST(JsonParse, ErrorsAreRapidJsonsOwn) {
  rapidjson::Document plain;
  rapidjson::Document fixed;
  for (std::string text : {"[0e-30 x]", "0e-30e5", "[0e-30,", "{\"a\":0e-9}}",
                           "[0.0000000000000000000000000x]", "-0e-5-",
                           "0e0e-52", "[-0.0e0E5]", "0.00e", "[0.000e+]"}) {
    plain.Parse(text.c_str(), text.size());
    json_error error;
    EXPECT_EQ(parse_json<rapidjson::kParseFullPrecisionFlag>(
                fixed, text, json_max_depth, &error),
              json_status::invalid)
      << text;
    EXPECT_EQ(error.offset, plain.GetErrorOffset()) << text;
    EXPECT_EQ(error.code, plain.GetParseError()) << text;
  }
}

TEST(JsonParse, ZeroWithAnExponentStaysADouble) {
  rapidjson::Document doc;
  ASSERT_EQ(parse_json<rapidjson::kParseFullPrecisionFlag>(doc, "[0e5,0]"),
            json_status::ok);
  EXPECT_TRUE(doc[0].IsDouble());
  EXPECT_TRUE(doc[1].IsInt());
}

TEST(JsonParse, FullPrecisionNumbersNeverReachRapidJsonsStrtod) {
  // Regression (fuzz_codec): RapidJSON 1.1 segfaulted on these (its power
  // table indexed out of bounds) or returned -4.3e301 for 1e-331.
  for (int zeros : {320, 330, 400, 5000}) {
    auto text = "0." + std::string(static_cast<size_t>(zeros), '0') + "25563";
    rapidjson::Document doc;
    ASSERT_EQ(parse_json<rapidjson::kParseFullPrecisionFlag>(doc, text),
              json_status::ok)
      << zeros;
    EXPECT_EQ(doc.GetDouble(), std::strtod(text.c_str(), nullptr)) << zeros;
  }
  rapidjson::Document doc;
  ASSERT_EQ(parse_json<rapidjson::kParseFullPrecisionFlag>(
              doc, R"([1, -1, 18446744073709551615, -9223372036854775808,)"
                   R"( 18446744073709551616, 0.1, 1.7976931348623157e308,)"
                   R"( 2.4e-324, 5e-324])"),
            json_status::ok);
  EXPECT_TRUE(doc[0].IsUint64());
  EXPECT_EQ(doc[1].GetInt64(), -1);
  EXPECT_EQ(doc[2].GetUint64(), 18446744073709551615ULL);
  EXPECT_EQ(doc[3].GetInt64(), INT64_MIN);
  EXPECT_TRUE(doc[4].IsDouble());
  EXPECT_EQ(doc[5].GetDouble(), 0.1);
  EXPECT_EQ(doc[6].GetDouble(), 1.7976931348623157e308);
  EXPECT_EQ(doc[7].GetDouble(), 0.0);
  EXPECT_EQ(doc[8].GetDouble(), 5e-324);
  // NaN and infinities with kParseNanAndInfFlag.
  ASSERT_EQ(parse_json<rapidjson::kParseFullPrecisionFlag
                       | rapidjson::kParseNanAndInfFlag>(
              doc, "[NaN, -Infinity, Inf]"),
            json_status::ok);
  EXPECT_TRUE(std::isnan(doc[0].GetDouble()));
  EXPECT_TRUE(std::isinf(doc[1].GetDouble()) && doc[1].GetDouble() < 0);
  EXPECT_TRUE(std::isinf(doc[2].GetDouble()));
}
