// The shared string helpers (base/strings.hpp).

#include "base/strings.hpp"

#include <gtest/gtest.h>

using namespace osb;

TEST(Strings, TrimStripsAsciiWhitespaceOnly) {
  EXPECT_EQ(trim(" \t\r\n\f\vx y\v\f\n\r\t "), "x y");
  EXPECT_EQ(trim(""), "");
  EXPECT_EQ(trim(" \t "), "");
  // Not whitespace to Python's str.strip() on bytes: NUL and non-ASCII.
  EXPECT_EQ(trim(std::string_view{"\0x\0", 3}), std::string_view("\0x\0", 3));
  EXPECT_EQ(trim("\xa0x\xa0"), "\xa0x\xa0");
}

TEST(Strings, TrimOwsStripsSpacesAndTabsOnly) {
  EXPECT_EQ(trim_ows(" \t x \t "), "x");
  EXPECT_EQ(trim_ows("\r\nx\r\n"), "\r\nx\r\n");
  EXPECT_EQ(trim_ows("  "), "");
}

TEST(Strings, LowerAndIequalsAreAscii) {
  EXPECT_EQ(lower("Content-TYPE: X"), "content-type: x");
  EXPECT_EQ(lower("\xc3\x84"), "\xc3\x84"); // no locale, no UTF-8
  EXPECT_EQ(lower_char('Q'), 'q');
  EXPECT_EQ(lower_char('['), '[');
  EXPECT_TRUE(iequals("Keep-Alive", "keep-alive"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("keep-alive", "keep-alive "));
  EXPECT_FALSE(iequals("a", "b"));
  // '[' and '{' differ from 'A' and 'a' by 0x20 too, but are no letters.
  EXPECT_FALSE(iequals("[", "{"));
}

TEST(Strings, HexDigits) {
  EXPECT_EQ(hex_digit('0'), 0);
  EXPECT_EQ(hex_digit('9'), 9);
  EXPECT_EQ(hex_digit('a'), 10);
  EXPECT_EQ(hex_digit('F'), 15);
  EXPECT_EQ(hex_digit('g'), -1);
  EXPECT_EQ(hex_digit('/'), -1);
}

TEST(Strings, PercentDecoding) {
  EXPECT_EQ(percent_decode("a%2Fb%20c"), "a/b c");
  EXPECT_EQ(percent_decode("%e2%82%AC"), "\xe2\x82\xac");
  // Invalid escapes stay verbatim.
  EXPECT_EQ(percent_decode("100%"), "100%");
  EXPECT_EQ(percent_decode("%4"), "%4");
  EXPECT_EQ(percent_decode("%zz%4g"), "%zz%4g");
  // `+` is a space only in query syntax.
  EXPECT_EQ(percent_decode("a+b"), "a+b");
  EXPECT_EQ(percent_decode("a+b%2B", true), "a b+");
  EXPECT_EQ(percent_decode(std::string_view{"%00", 3}),
            std::string(1, '\0'));
}

TEST(Strings, NormalizePathNeverLeavesTheRoot) {
  EXPECT_EQ(normalize_path("/a/./b/../c/"), "/a/c");
  EXPECT_EQ(normalize_path("/../../etc//passwd"), "/etc/passwd");
  EXPECT_EQ(normalize_path(""), "/");
  EXPECT_EQ(normalize_path("/"), "/");
  EXPECT_EQ(normalize_path("a/b"), "/a/b");
  EXPECT_EQ(normalize_path("/a/b/.."), "/a");
  EXPECT_EQ(normalize_path("/..."), "/...");
}
