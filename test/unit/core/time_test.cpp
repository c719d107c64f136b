// Timestamps: RFC 3339 formatting and Pydantic-style parsing (core/time).

#include "core/time.hpp"

#include <gtest/gtest.h>

namespace osb::codec {
namespace {

TEST(FormatTime, WholeSecondsHaveNoFraction) {
  EXPECT_EQ(format_time(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_time(1781260200LL * 1000000), "2026-06-12T10:30:00Z");
}

TEST(FormatTime, MicrosecondsUseSixDigits) {
  EXPECT_EQ(format_time(1781260200LL * 1000000 + 123456),
            "2026-06-12T10:30:00.123456Z");
  EXPECT_EQ(format_time(1781260200LL * 1000000 + 1),
            "2026-06-12T10:30:00.000001Z");
}

TEST(FormatTime, HandlesLeapDaysAndPreEpoch) {
  EXPECT_EQ(format_time(951782400LL * 1000000), "2000-02-29T00:00:00Z");
  EXPECT_EQ(format_time(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(format_time(253402300799LL * 1000000), "9999-12-31T23:59:59Z");
}

int64_t parsed(std::string_view x) {
  int64_t us = -42;
  EXPECT_TRUE(parse_time(x, us)) << x;
  return us;
}

TEST(ParseTime, Rfc3339WithZulu) {
  EXPECT_EQ(parsed("2026-06-12T10:30:00Z"), 1781260200LL * 1000000);
  EXPECT_EQ(parsed("2026-06-12t10:30:00z"), 1781260200LL * 1000000);
  EXPECT_EQ(parsed("2026-06-12T10:30:00.123456Z"),
            1781260200LL * 1000000 + 123456);
}

TEST(ParseTime, OffsetsAreConvertedToUtc) {
  EXPECT_EQ(parsed("2026-06-12T12:30:00+02:00"), 1781260200LL * 1000000);
  EXPECT_EQ(parsed("2026-06-12T05:00:00-05:30"), 1781260200LL * 1000000);
  EXPECT_EQ(parsed("2026-06-12T12:30:00+0200"), 1781260200LL * 1000000);
}

TEST(ParseTime, NaiveMeansUtc) {
  EXPECT_EQ(parsed("2026-06-12T10:30:00"), 1781260200LL * 1000000);
  EXPECT_EQ(parsed("2026-06-12 10:30:00"), 1781260200LL * 1000000);
  EXPECT_EQ(parsed("2026-06-12T10:30"), 1781260200LL * 1000000);
  EXPECT_EQ(parsed("2026-06-12"), 1781222400LL * 1000000);
}

TEST(ParseTime, FractionsAreTruncatedToMicroseconds) {
  EXPECT_EQ(parsed("2026-06-12T10:30:00.123456789Z"),
            1781260200LL * 1000000 + 123456);
  EXPECT_EQ(parsed("2026-06-12T10:30:00.5Z"), 1781260200LL * 1000000 + 500000);
  int64_t us = 0;
  EXPECT_FALSE(parse_time("2026-06-12T10:30:00.1234567891Z", us));
}

TEST(ParseTime, NumbersAreUnixSeconds) {
  EXPECT_EQ(parsed("1781260200"), 1781260200LL * 1000000);
  EXPECT_EQ(parsed("1781260200.25"), 1781260200LL * 1000000 + 250000);
  // Pydantic reads values beyond 2e10 as milliseconds.
  EXPECT_EQ(parsed("1781260200000"), 1781260200LL * 1000000);
}

TEST(ParseTime, RejectsGarbage) {
  int64_t us = 0;
  for (auto x : {"", "tomorrow", "2026-13-01T00:00:00Z", "2026-02-30",
                 "2026-06-12T24:00:00Z", "2026-06-12T10:60:00Z",
                 "2026-06-12T10:30:00Zjunk", "2026/06/12", "2026-06-12X10:30",
                 "0000-01-01"})
    EXPECT_FALSE(parse_time(x, us)) << x;
}

TEST(ParseTime, RoundTripsFormatTime) {
  for (int64_t us : {0LL, 1LL, 1781260200123456LL, 951782400000000LL}) {
    int64_t back = 0;
    ASSERT_TRUE(parse_time(format_time(us), back));
    EXPECT_EQ(back, us);
  }
}

TEST(Time, NowIsPlausible) {
  auto now = now_us();
  EXPECT_GT(now, 1700000000LL * 1000000);
  EXPECT_LT(now, 4102444800LL * 1000000);
}

} // namespace
} // namespace osb::codec
