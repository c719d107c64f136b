#include "core/validation.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace osb::validation {
namespace {

using ::testing::HasSubstr;

std::optional<api_error> meta(std::string k, std::string v = "x") {
  return check_metadata({{std::move(k), std::move(v)}});
}

TEST(MetadataKeys, AcceptsNamesAndPrefixedNames) {
  EXPECT_FALSE(meta("team"));
  EXPECT_FALSE(meta("a"));
  EXPECT_FALSE(meta("app.kubernetes.io/name"));
  EXPECT_FALSE(meta("example.com/My_Key-1.x"));
  EXPECT_FALSE(meta("opensandbox.io.evil/key"));
  EXPECT_FALSE(meta(std::string(63, 'k')));
  EXPECT_FALSE(check_metadata({}));
}

TEST(MetadataKeys, ReservedPrefixUsesNamespacedCode) {
  for (auto key : {"opensandbox.io/expires-at", "opensandbox.io/manual-cleanup",
                   "opensandbox.io/anything"}) {
    auto e = meta(key);
    ASSERT_TRUE(e) << key;
    // Its HTTP status (400) is http/status.cpp's: test/unit/http/status_test.
    EXPECT_EQ(e->kind, ec::invalid_metadata_label);
    EXPECT_EQ(e->code, "SANDBOX::INVALID_METADATA_LABEL");
    EXPECT_EQ(e->message,
              "Metadata key '" + std::string{key}
                + "' uses the reserved prefix 'opensandbox.io/'. Keys under "
                  "this prefix are managed by the system and cannot be set "
                  "via metadata.");
  }
}

TEST(MetadataKeys, RejectsMalformedKeys) {
  for (auto key : {std::string{""}, std::string{"/name"},
                   std::string{"prefix/"}, std::string{"-team"},
                   std::string{"team-"}, std::string{"te am"},
                   std::string{"Example.com/name"}, std::string{"ex_ample/name"},
                   std::string{"a..b/name"}, std::string{".a/name"},
                   std::string(64, 'k'), std::string{"a/b/c"}}) {
    auto e = meta(key);
    ASSERT_TRUE(e) << "'" << key << "'";
    EXPECT_EQ(e->code, "SANDBOX::INVALID_METADATA_LABEL");
    EXPECT_THAT(e->message, HasSubstr("Metadata key '" + key + "' is invalid"));
  }
}

TEST(MetadataKeys, PrefixLengthLimitIs253) {
  auto label = std::string(63, 'a');
  auto prefix = label + "." + label + "." + label + "." + std::string(61, 'b');
  ASSERT_EQ(prefix.size(), 253u);
  EXPECT_FALSE(meta(prefix + "/" + std::string(63, 'n')));
  EXPECT_TRUE(meta(prefix + "b/name"));
}

TEST(MetadataValues, AcceptsLabelValues) {
  EXPECT_FALSE(meta("k", ""));
  EXPECT_FALSE(meta("k", "v"));
  EXPECT_FALSE(meta("k", "Value_1.2-3"));
  EXPECT_FALSE(meta("k", std::string(63, 'v')));
}

TEST(MetadataValues, RejectsInvalidValues) {
  for (auto value : {std::string(64, 'v'), std::string{"-v"},
                     std::string{"v-"}, std::string{"a b"},
                     std::string{"a/b"}, std::string{"ü"}}) {
    auto e = meta("k", value);
    ASSERT_TRUE(e) << value;
    EXPECT_EQ(e->code, "SANDBOX::INVALID_METADATA_LABEL");
    EXPECT_THAT(e->message,
                HasSubstr("Metadata value '" + value + "' is invalid"));
  }
}

TEST(PatchKeys, ReservedPrefixUsesPlainCode) {
  auto e = check_patch_key("opensandbox.io/id");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, ec::reserved_metadata_key);
  EXPECT_EQ(e->code, "INVALID_METADATA_LABEL");
  EXPECT_EQ(e->message,
            "Metadata key 'opensandbox.io/id' is reserved (opensandbox.io/ "
            "prefix).");
  EXPECT_FALSE(check_patch_key("team"));
  EXPECT_FALSE(check_patch_key("opensandbox.io.x/id"));
}

TEST(ParseMemory, BinaryAndDecimalUnits) {
  EXPECT_EQ(parse_memory("512Mi"), 536870912);
  EXPECT_EQ(parse_memory("1G"), 1000000000);
  EXPECT_EQ(parse_memory("2gi"), 2147483648);
  EXPECT_EQ(parse_memory("1024"), 1024);
  EXPECT_EQ(parse_memory("100b"), 100);
  EXPECT_EQ(parse_memory("3k"), 3000);
  EXPECT_EQ(parse_memory("3KB"), 3000);
  EXPECT_EQ(parse_memory("2m"), 2000000);
  EXPECT_EQ(parse_memory("2MB"), 2000000);
  EXPECT_EQ(parse_memory("1gb"), 1000000000);
  EXPECT_EQ(parse_memory("1t"), 1000000000000);
  EXPECT_EQ(parse_memory("1TB"), 1000000000000);
  EXPECT_EQ(parse_memory("1Ki"), 1024);
  EXPECT_EQ(parse_memory("1Ti"), 1099511627776);
  EXPECT_EQ(parse_memory("0"), 0);
}

TEST(ParseMemory, AllowsSurroundingSpaces) {
  EXPECT_EQ(parse_memory("  512Mi "), 536870912);
  EXPECT_EQ(parse_memory("512 Mi"), 536870912);
}

TEST(ParseMemory, AcceptsDecimalsAndFloors) {
  EXPECT_EQ(parse_memory("1.5Gi"), 1610612736);
  EXPECT_EQ(parse_memory("0.5k"), 500);
  EXPECT_EQ(parse_memory("1.0001"), 1);
  EXPECT_EQ(parse_memory("0.3Ki"), 307);
}

TEST(ParseMemory, RejectsGarbage) {
  for (auto x : {"", " ", "Mi", "abc", "1Pi", "1Ei", "-1Gi", "1.2.3G", "1 G i",
                 "1x", "99999999999Ti", "."})
    EXPECT_FALSE(parse_memory(x)) << x;
}

TEST(ParseCpu, CoresAndMillicores) {
  EXPECT_EQ(parse_cpu("500m"), 500000000);
  EXPECT_EQ(parse_cpu("2"), 2000000000);
  EXPECT_EQ(parse_cpu("0.5"), 500000000);
  EXPECT_EQ(parse_cpu("1.25"), 1250000000);
  EXPECT_EQ(parse_cpu("250.5m"), 250500000);
  EXPECT_EQ(parse_cpu(" 1 "), 1000000000);
  EXPECT_EQ(parse_cpu(".5"), 500000000);
}

TEST(ParseCpu, RejectsNonPositiveAndGarbage) {
  for (auto x : {"", "0", "0m", "0.0", "-1", "abc", "500M", "1e3", "m", "1 core"})
    EXPECT_FALSE(parse_cpu(x)) << x;
}

TEST(ParseGpu, AllAndCounts) {
  EXPECT_EQ(parse_gpu("all"), -1);
  EXPECT_EQ(parse_gpu("ALL"), -1);
  EXPECT_EQ(parse_gpu(" All "), -1);
  EXPECT_EQ(parse_gpu("1"), 1);
  EXPECT_EQ(parse_gpu("4"), 4);
}

TEST(ParseGpu, RejectsZeroNegativeAndGarbage) {
  for (auto x : {"", "0", "-1", "1.5", "many", "alll"})
    EXPECT_FALSE(parse_gpu(x)) << x;
}

} // namespace
} // namespace osb::validation
