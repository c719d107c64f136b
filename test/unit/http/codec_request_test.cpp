// Decoders of renew, metadata patch and list queries (http/codec_request).

#include "http/codec_request.hpp"

#include "test/unit/http/codec_checks.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace osb::codec {
namespace {

using ::testing::HasSubstr;

// -- renew ---------------------------------------------------------------------

TEST(DecodeRenew, ParsesTimestamps) {
  auto r = decode_renew(R"({"expiresAt":"2026-06-12T12:30:00+02:00"})");
  ASSERT_TRUE(std::holds_alternative<int64_t>(r));
  EXPECT_EQ(std::get<int64_t>(r), 1781260200LL * 1000000);
  r = decode_renew(R"({"expiresAt":1781260200})");
  EXPECT_EQ(std::get<int64_t>(r), 1781260200LL * 1000000);
  r = decode_renew(R"({"expiresAt":1781260200.5})");
  EXPECT_EQ(std::get<int64_t>(r), 1781260200LL * 1000000 + 500000);
  r = decode_renew(R"({"expiresAt":"2026-06-12T10:30:00.123456789"})");
  EXPECT_EQ(std::get<int64_t>(r), 1781260200LL * 1000000 + 123456);
}

TEST(DecodeRenew, RejectsMissingOrBadValues) {
  auto d = first_detail(std::get<rejection>(decode_renew("{}")));
  EXPECT_EQ(d.type, "missing");
  EXPECT_EQ(d.loc, R"(["body","expiresAt"])");
  d = first_detail(std::get<rejection>(decode_renew(R"({"expiresAt":"soon"})")));
  EXPECT_EQ(d.type, "datetime_from_date_parsing");
  EXPECT_EQ(d.loc, R"(["body","expiresAt"])");
  EXPECT_THAT(d.msg, HasSubstr("Input should be a valid datetime or date, "));
  d = first_detail(std::get<rejection>(decode_renew(R"({"expiresAt":true})")));
  EXPECT_EQ(d.type, "datetime_type");
  d = first_detail(std::get<rejection>(decode_renew("not json")));
  EXPECT_EQ(d.type, "json_invalid");
  d = first_detail(std::get<rejection>(decode_renew("")));
  EXPECT_EQ(d.type, "missing");
}

// -- patch ---------------------------------------------------------------------

TEST(DecodePatch, SplitsSetAndRemove) {
  auto r = decode_patch(R"({"a":"1","b":null,"c":""})");
  ASSERT_TRUE(std::holds_alternative<metadata_patch>(r));
  auto& p = std::get<metadata_patch>(r);
  EXPECT_EQ(p.set, (string_map{{"a", "1"}, {"c", ""}}));
  EXPECT_EQ(p.remove, std::vector<std::string>{"b"});
  auto empty = std::get<metadata_patch>(decode_patch("{}"));
  EXPECT_TRUE(empty.set.empty());
  EXPECT_TRUE(empty.remove.empty());
}

TEST(DecodePatch, LastDuplicateWins) {
  auto p = std::get<metadata_patch>(decode_patch(R"({"a":"1","a":null})"));
  EXPECT_TRUE(p.set.empty());
  EXPECT_EQ(p.remove, std::vector<std::string>{"a"});
}

TEST(DecodePatch, NonStringValuesAre422) {
  auto d = first_detail(std::get<rejection>(decode_patch(R"({"a":1})")));
  EXPECT_EQ(d.type, "string_type");
  EXPECT_EQ(d.loc, R"(["body","a"])");
  d = first_detail(std::get<rejection>(decode_patch("[]")));
  EXPECT_EQ(d.type, "dict_type");
  EXPECT_EQ(d.loc, R"(["body"])");
}

TEST(DecodePatch, ReservedKeyIsRejectedEvenForNull) {
  for (auto b : {R"({"opensandbox.io/id":"x"})", R"({"opensandbox.io/id":null})"})
    expect_envelope(std::get<rejection>(decode_patch(b)), 400,
                    "INVALID_METADATA_LABEL",
                    "Metadata key 'opensandbox.io/id' is reserved "
                    "(opensandbox.io/ prefix).");
}

TEST(DecodePatch, LabelRulesApplyOnlyToValues) {
  auto r = decode_patch(R"({"bad key":"x"})");
  ASSERT_TRUE(std::holds_alternative<rejection>(r));
  EXPECT_THAT(std::get<rejection>(r).body,
              HasSubstr("SANDBOX::INVALID_METADATA_LABEL"));
  auto p = std::get<metadata_patch>(decode_patch(R"({"bad key":null})"));
  EXPECT_EQ(p.remove, std::vector<std::string>{"bad key"});
}

// -- list query ----------------------------------------------------------------

list_query query_ok(std::string_view qs) {
  auto r = decode_list_query(qs);
  if (auto rej = std::get_if<rejection>(&r)) {
    ADD_FAILURE() << rej->body;
    return {};
  }
  return std::get<list_query>(r);
}

TEST(DecodeListQuery, Defaults) {
  auto q = query_ok("");
  EXPECT_EQ(q.page, 1);
  EXPECT_EQ(q.page_size, 20);
  EXPECT_TRUE(q.states.empty());
  EXPECT_FALSE(q.match_nothing);
  EXPECT_TRUE(q.metadata.empty());
}

TEST(DecodeListQuery, LeadingQuestionMarkIsIgnored) {
  EXPECT_EQ(query_ok("?page=2").page, 2);
}

TEST(DecodeListQuery, StatesAreCaseInsensitiveAndRepeatable) {
  auto q = query_ok("state=running&state=Paused&foo=bar");
  EXPECT_EQ(q.states,
            (std::vector<sandbox_state>{sandbox_state::running,
                                        sandbox_state::paused}));
  EXPECT_FALSE(q.match_nothing);
}

TEST(DecodeListQuery, EmptyOrUnknownStateMatchesNothing) {
  EXPECT_TRUE(query_ok("state=").match_nothing);
  EXPECT_TRUE(query_ok("state=bogus").match_nothing);
  auto q = query_ok("state=bogus&state=running");
  EXPECT_FALSE(q.match_nothing);
  EXPECT_EQ(q.states, std::vector<sandbox_state>{sandbox_state::running});
}

TEST(DecodeListQuery, MetadataIsDecodedTwice) {
  auto q = query_ok("metadata=team%3Dinfra%26project%3Dalpha");
  EXPECT_EQ(q.metadata, (string_map{{"team", "infra"}, {"project", "alpha"}}));
  q = query_ok("metadata=note%3D%26name%3Da%252Bb%2Bc");
  EXPECT_EQ(q.metadata, (string_map{{"note", ""}, {"name", "a+b c"}}));
  EXPECT_TRUE(query_ok("metadata=").metadata.empty());
}

TEST(DecodeListQuery, MalformedMetadataIs400) {
  expect_envelope(
    std::get<rejection>(decode_list_query("metadata=team%3Dinfra%26broken")),
    400, "INVALID_METADATA_FORMAT",
    "Invalid metadata format: bad query field: 'broken'");
  expect_envelope(
    std::get<rejection>(decode_list_query("metadata=a%3D1%26")), 400,
    "INVALID_METADATA_FORMAT", "Invalid metadata format: bad query field: ''");
}

TEST(DecodeListQuery, PageBounds) {
  auto q = query_ok("page=3&pageSize=200");
  EXPECT_EQ(q.page, 3);
  EXPECT_EQ(q.page_size, 200);
  auto r = std::get<rejection>(decode_list_query("page=0"));
  EXPECT_EQ(r.body,
            R"({"detail":[{"type":"greater_than_equal","loc":["query","page"],)"
            R"("msg":"Input should be greater than or equal to 1","input":"0",)"
            R"("ctx":{"ge":1}}]})");
  auto d = first_detail(std::get<rejection>(decode_list_query("pageSize=201")));
  EXPECT_EQ(d.type, "less_than_equal");
  EXPECT_EQ(d.msg, "Input should be less than or equal to 200");
  EXPECT_EQ(d.ctx, R"({"le":200})");
  d = first_detail(std::get<rejection>(decode_list_query("pageSize=0")));
  EXPECT_EQ(d.type, "greater_than_equal");
  d = first_detail(std::get<rejection>(decode_list_query("page=abc")));
  EXPECT_EQ(d.type, "int_parsing");
  EXPECT_EQ(d.input, R"("abc")");
  d = first_detail(std::get<rejection>(decode_list_query("page=0&pageSize=0")));
  EXPECT_EQ(d.count, 2u);
}

TEST(DecodeListQuery, ValidationErrorsPrecedeMetadataErrors) {
  auto r = std::get<rejection>(decode_list_query("metadata=broken&page=0"));
  EXPECT_EQ(r.status, 422);
}

TEST(UrlDecode, DecodesPercentAndPlus) {
  EXPECT_EQ(url_decode("a%3Db%26c"), "a=b&c");
  EXPECT_EQ(url_decode("a+b"), "a b");
  EXPECT_EQ(url_decode("%2B"), "+");
  EXPECT_EQ(url_decode("%e2%82%ac"), "\xe2\x82\xac");
  EXPECT_EQ(url_decode("100%"), "100%");
  EXPECT_EQ(url_decode("%zz"), "%zz");
  EXPECT_EQ(url_decode("%4"), "%4");
}

} // namespace
} // namespace osb::codec
