// The JSON the store keeps of specs and metadata (core/spec_json).

#include "core/spec_json.hpp"

#include <string>

#include <gtest/gtest.h>

namespace osb::codec {
namespace {

TEST(SpecJson, RoundTripsEveryField) {
  sandbox_spec s;
  s.image = "python:3.11";
  s.image_username = "u";
  s.image_password = "p\"w";
  s.snapshot_id = "snap";
  s.entrypoint = {"a", "b c"};
  s.env = {{"A", "1"}, {"B", ""}};
  s.metadata = {{"team", "x"}};
  s.resource_limits = {{"cpu", "1"}};
  s.platform_os = "linux";
  s.platform_arch = "amd64";
  s.timeout_s = 3600;
  s.extensions = {{"k", "v"}};
  s.network_policy_json = R"({"egress":[]})";
  s.volumes_json = R"([{"name":"a"}])";
  sandbox_spec back;
  ASSERT_TRUE(spec_from_json(spec_to_json(s), back));
  EXPECT_EQ(back.image, s.image);
  EXPECT_EQ(back.image_username, s.image_username);
  EXPECT_EQ(back.image_password, s.image_password);
  EXPECT_EQ(back.snapshot_id, s.snapshot_id);
  EXPECT_EQ(back.entrypoint, s.entrypoint);
  EXPECT_EQ(back.env, s.env);
  EXPECT_EQ(back.metadata, s.metadata);
  EXPECT_EQ(back.resource_limits, s.resource_limits);
  EXPECT_EQ(back.platform_os, s.platform_os);
  EXPECT_EQ(back.platform_arch, s.platform_arch);
  EXPECT_EQ(back.timeout_s, s.timeout_s);
  EXPECT_EQ(back.extensions, s.extensions);
  EXPECT_EQ(back.network_policy_json, s.network_policy_json);
  EXPECT_EQ(back.volumes_json, s.volumes_json);
}

TEST(SpecJson, RejectsGarbage) {
  sandbox_spec s;
  EXPECT_FALSE(spec_from_json("not json", s));
  EXPECT_FALSE(spec_from_json("[]", s));
  EXPECT_FALSE(spec_from_json(R"({"entrypoint":"x"})", s));
  EXPECT_FALSE(spec_from_json(R"({"env":{"a":1}})", s));
  EXPECT_TRUE(spec_from_json("{}", s));
}

TEST(MapJson, RoundTrips) {
  string_map m = {{"a", "1"}, {"b/c", "ü"}};
  string_map back;
  ASSERT_TRUE(map_from_json(map_to_json(m), back));
  EXPECT_EQ(back, m);
  EXPECT_EQ(map_to_json({}), "{}");
  EXPECT_FALSE(map_from_json(R"({"a":1})", back));
  EXPECT_FALSE(map_from_json("[]", back));
}

/// JSON nested `depth` levels deep.
std::string nested(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

} // namespace

TEST(CodecLimits, StoreReadersRefuseDeepJson) {
  sandbox_spec spec;
  EXPECT_FALSE(spec_from_json(R"({"env":)" + nested(100000) + "}", spec));
  string_map m;
  EXPECT_FALSE(map_from_json(nested(100000), m));
}

} // namespace osb::codec
