#include "core/time.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>

namespace osb::codec {

namespace {

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  auto era = (y >= 0 ? y : y - 399) / 400;
  auto yoe = static_cast<unsigned>(y - era * 400);
  auto doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  auto doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  auto era = (z >= 0 ? z : z - 146096) / 146097;
  auto doe = static_cast<unsigned>(z - era * 146097);
  auto yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  auto doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  auto mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

bool is_leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned days_in_month(int64_t y, unsigned m) {
  static constexpr unsigned days[] = {31, 28, 31, 30, 31, 30,
                                      31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/// Python's datetime range: 0001-01-01 .. 9999-12-31T23:59:59.999999.
constexpr int64_t min_us = -62135596800LL * 1000000;
constexpr int64_t max_us = 253402300799LL * 1000000 + 999999;

/// Reads exactly `n` digits at `pos`.
bool digits(std::string_view s, size_t& pos, size_t n, unsigned& out) {
  if (pos + n > s.size())
    return false;
  out = 0;
  for (size_t i = 0; i < n; ++i) {
    auto c = s[pos + i];
    if (c < '0' || c > '9')
      return false;
    out = out * 10 + static_cast<unsigned>(c - '0');
  }
  pos += n;
  return true;
}

} // namespace

bool unix_seconds_to_us(long double seconds, int64_t& us, std::string& err) {
  if (std::fabs(seconds) > 2e10L)
    seconds /= 1000;
  auto x = std::floor(seconds * 1000000.0L + 0.5L);
  if (x < static_cast<long double>(min_us)
      || x > static_cast<long double>(max_us)) {
    err = "timestamp value is outside the supported range";
    return false;
  }
  us = static_cast<int64_t>(x);
  return true;
}

/// A speedate-like parser.
bool parse_time(std::string_view s, int64_t& us, std::string& err) {
  // Numbers (and numeric strings) are Unix timestamps.
  {
    auto t = s;
    if (!t.empty() && (t[0] == '-' || t[0] == '+'))
      t.remove_prefix(1);
    auto dot = t.find('.');
    auto whole = t.substr(0, dot);
    auto frac = dot == std::string_view::npos ? std::string_view{}
                                              : t.substr(dot + 1);
    auto all_digits = [](std::string_view x) {
      return x.find_first_not_of("0123456789") == std::string_view::npos;
    };
    if (!whole.empty() && all_digits(whole) && all_digits(frac)
        && (dot == std::string_view::npos || !frac.empty())) {
      if (whole.size() > 20) {
        err = "timestamp value is outside the supported range";
        return false;
      }
      long double v = 0;
      for (auto c : whole)
        v = v * 10 + (c - '0');
      long double scale = 0.1L;
      for (auto c : frac.substr(0, 9)) {
        v += (c - '0') * scale;
        scale /= 10;
      }
      if (s[0] == '-')
        v = -v;
      return unix_seconds_to_us(v, us, err);
    }
  }
  if (s.size() < 10) {
    err = "input is too short";
    return false;
  }
  size_t pos = 0;
  unsigned year = 0;
  unsigned month = 0;
  unsigned day = 0;
  if (!digits(s, pos, 4, year)) {
    err = "invalid character in year";
    return false;
  }
  if (s[pos++] != '-') {
    err = "invalid date separator, expected `-`";
    return false;
  }
  if (!digits(s, pos, 2, month)) {
    err = "invalid character in month";
    return false;
  }
  if (s[pos++] != '-') {
    err = "invalid date separator, expected `-`";
    return false;
  }
  if (!digits(s, pos, 2, day)) {
    err = "invalid character in day";
    return false;
  }
  if (month < 1 || month > 12) {
    err = "month value is outside expected range of 1-12";
    return false;
  }
  if (year < 1) {
    err = "year value is outside expected range";
    return false;
  }
  if (day < 1 || day > days_in_month(year, month)) {
    err = "day value is outside expected range";
    return false;
  }
  int64_t micros = days_from_civil(year, month, day) * 86400LL * 1000000;
  if (pos == s.size()) {
    us = micros;
    return true;
  }
  auto sep = s[pos++];
  if (sep != 'T' && sep != 't' && sep != ' ' && sep != '_') {
    err = "invalid datetime separator, expected `T`, `t`, `_` or space";
    return false;
  }
  unsigned hour = 0;
  unsigned minute = 0;
  unsigned second = 0;
  if (!digits(s, pos, 2, hour)) {
    err = "invalid character in hour";
    return false;
  }
  if (hour > 23) {
    err = "hour value is outside expected range of 0-23";
    return false;
  }
  if (pos >= s.size() || s[pos++] != ':') {
    err = "invalid time separator, expected `:`";
    return false;
  }
  if (!digits(s, pos, 2, minute)) {
    err = "invalid character in minute";
    return false;
  }
  if (minute > 59) {
    err = "minute value is outside expected range of 0-59";
    return false;
  }
  int64_t frac_us = 0;
  if (pos < s.size() && s[pos] == ':') {
    ++pos;
    if (!digits(s, pos, 2, second)) {
      err = "invalid character in second";
      return false;
    }
    if (second > 59) {
      err = "second value is outside expected range of 0-59";
      return false;
    }
    if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
      ++pos;
      size_t n = 0;
      int64_t scale = 100000;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        if (n < 6) {
          frac_us += (s[pos] - '0') * scale;
          scale /= 10;
        }
        ++n;
        ++pos;
      }
      if (n == 0) {
        err = "invalid character in second fraction";
        return false;
      }
      if (n > 9) {
        err = "second fraction value is more than 9 digits long";
        return false;
      }
    }
  }
  micros += ((hour * 60LL + minute) * 60 + second) * 1000000 + frac_us;
  if (pos < s.size()) {
    auto c = s[pos];
    if (c == 'Z' || c == 'z') {
      ++pos;
    } else if (c == '+' || c == '-') {
      ++pos;
      unsigned oh = 0;
      unsigned om = 0;
      if (!digits(s, pos, 2, oh)) {
        err = "invalid timezone hour";
        return false;
      }
      if (pos < s.size() && s[pos] == ':')
        ++pos;
      if (pos < s.size() && !digits(s, pos, 2, om)) {
        err = "invalid timezone minute";
        return false;
      }
      if (oh > 23 || om > 59) {
        err = "timezone offset must be less than 24 hours";
        return false;
      }
      auto offset = (oh * 60LL + om) * 60 * 1000000;
      micros += c == '+' ? -offset : offset;
    } else {
      err = "invalid timezone sign";
      return false;
    }
  }
  if (pos != s.size()) {
    err = "unexpected extra characters at the end of the input";
    return false;
  }
  us = micros;
  return true;
}

int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch())
    .count();
}

std::string format_time(int64_t us) {
  auto secs = us / 1000000;
  auto frac = us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    --secs;
  }
  auto days = secs / 86400;
  auto sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    --days;
  }
  int64_t y = 0;
  unsigned m = 0;
  unsigned d = 0;
  civil_from_days(days, y, m, d);
  char buf[64];
  auto n = std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02uT%02d:%02d:%02d",
                         static_cast<long long>(y), m, d,
                         static_cast<int>(sod / 3600),
                         static_cast<int>(sod / 60 % 60),
                         static_cast<int>(sod % 60));
  std::string r(buf, static_cast<size_t>(n));
  if (frac != 0) {
    std::snprintf(buf, sizeof(buf), ".%06d", static_cast<int>(frac));
    r += buf;
  }
  r += 'Z';
  return r;
}

bool parse_time(std::string_view str, int64_t& us) {
  std::string err;
  return parse_time(str, us, err);
}

} // namespace osb::codec
