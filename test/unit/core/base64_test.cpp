#include "core/base64.hpp"

#include <gtest/gtest.h>

using osb::base64_decode;
using osb::base64url_encode;

TEST(Base64, EncodesUrlSafeWithPadding) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg==");
  EXPECT_EQ(base64url_encode("fo"), "Zm8=");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8=");
}

TEST(Base64, DecodesBothAlphabetsPaddedOrNot) {
  EXPECT_EQ(base64_decode("Zm9v"), "foo");
  EXPECT_EQ(base64_decode("Zm8="), "fo");
  EXPECT_EQ(base64_decode("Zm8"), "fo");
  EXPECT_EQ(base64_decode("Zg"), "f");
  EXPECT_EQ(base64_decode("-_8="), "\xfb\xff");
  EXPECT_EQ(base64_decode("+/8="), "\xfb\xff");
  EXPECT_EQ(base64_decode(""), "");
  for (auto bad : {"Z", "Zm9v!", "Zm 9v", "ab=c"})
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
}
