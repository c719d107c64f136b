// Request decoders against hostile input: nesting depth and integer ranges.

#include "http/codec_request.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace osb::codec {
namespace {

using ::testing::HasSubstr;

constexpr const char* too_deep_body
  = R"({"code":"GENERAL::UNKNOWN_ERROR","message":"There was an error )"
    R"(parsing the body: JSON nested deeper than 128 levels"})";

template <class T>
rejection rejected(const decoded<T>& r) {
  if (!std::holds_alternative<rejection>(r)) {
    ADD_FAILURE() << "expected a rejection";
    return {};
  }
  return std::get<rejection>(r);
}

std::string nested(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

node_config cfg() {
  node_config c;
  c.docker.network_mode = "bridge";
  return c;
}

} // namespace

TEST(CodecLimits, DeepJsonIsRefusedLikeFastApiOnEveryBody) {
  // 100,000 levels crashed the server (stack overflow in RapidJSON).
  auto deep = nested(100000);
  auto in_member = R"({"image":{"uri":"x"},"entrypoint":["sh"],"metadata":)"
                   + deep + "}";
  for (const auto& body : {deep, in_member}) {
    auto c = rejected(decode_create(body, cfg()));
    EXPECT_EQ(c.status, 400);
    EXPECT_EQ(c.body, too_deep_body);
    auto p = rejected(decode_patch(body));
    EXPECT_EQ(p.status, 400);
    EXPECT_EQ(p.body, too_deep_body);
    auto r = rejected(decode_renew(body));
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.body, too_deep_body);
    auto s = rejected(decode_snapshot_request(body));
    EXPECT_EQ(s.status, 400);
  }
  // Objects count as well as arrays.
  std::string objects;
  for (int i = 0; i < 200; ++i)
    objects += R"({"a":)";
  objects += "1" + std::string(200, '}');
  EXPECT_EQ(rejected(decode_patch(objects)).status, 400);
}

TEST(CodecLimits, NestingUpToTheLimitIsOrdinaryValidation) {
  // 128 levels parse; the schema then rejects the value with a 422.
  auto body = R"({"a":)" + nested(127) + "}";
  auto r = rejected(decode_patch(body));
  EXPECT_EQ(r.status, 422);
  EXPECT_THAT(r.body, HasSubstr("string_type"));
}

TEST(CodecLimits, HugeIntegersAreRangeErrorsNotWraps) {
  // A page number beyond int64 is Pydantic's valid int past the end.
  auto q = decode_list_query("page=99999999999999999999999");
  ASSERT_TRUE(std::holds_alternative<list_query>(q));
  EXPECT_GT(std::get<list_query>(q).page, 1);
  auto r = rejected(decode_list_query("pageSize=4294967297"));
  EXPECT_EQ(r.status, 422);
  EXPECT_THAT(r.body, HasSubstr("less_than_equal"));
  r = rejected(decode_list_query("pageSize=-4294967295"));
  EXPECT_THAT(r.body, HasSubstr("greater_than_equal"));
  r = rejected(decode_create(
    R"({"image":{"uri":"x"},"entrypoint":["sh"],"resourceLimits":{},)"
    R"("timeout":18446744073709551616})",
    cfg()));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("too large"));
  r = rejected(decode_renew(R"({"expiresAt":1e300})"));
  EXPECT_EQ(r.status, 422);
}

} // namespace osb::codec

namespace osb::codec {

TEST(CodecLimits, NumbersRapidJsonMisconvertsAreExact) {
  // Regressions (fuzz_codec): RapidJSON 1.1's full-precision conversion
  // read `-0e-99` as -1.6e32 seconds, and segfaulted on `0.` followed by
  // 400 zeros and a digit (the server died on any JSON body with it).
  auto many_zeros = "0." + std::string(400, '0') + "25563";
  for (auto body :
       {std::string{R"({"expiresAt":-0e-99})"}, std::string{R"({"expiresAt":0e-30})"},
        std::string{R"({"expiresAt":0.000000000000000000000000000000})"},
        R"({"expiresAt":)" + many_zeros + "}"}) {
    auto r = decode_renew(body);
    ASSERT_TRUE(std::holds_alternative<int64_t>(r)) << body;
    EXPECT_EQ(std::get<int64_t>(r), 0) << body;
  }
  auto p = decode_patch(R"({"a":)" + many_zeros + "}");
  ASSERT_TRUE(std::holds_alternative<rejection>(p));
  EXPECT_EQ(std::get<rejection>(p).status, 422);
  EXPECT_THAT(std::get<rejection>(p).body, HasSubstr("string_type"));
}

} // namespace osb::codec
