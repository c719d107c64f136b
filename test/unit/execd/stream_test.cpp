#include "execd/json.hpp"
#include "execd/stream.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace osb::execd;

namespace {

std::vector<std::string> split_all(std::string_view data,
                                   std::vector<size_t> cuts = {}) {
  std::vector<std::string> out;
  line_splitter s;
  auto emit = [&](std::string_view x) { out.emplace_back(x); };
  size_t prev = 0;
  for (auto c : cuts) {
    s.feed(data.substr(prev, c - prev), emit);
    prev = c;
  }
  s.feed(data.substr(prev), emit);
  s.finish(emit);
  return out;
}

using lines = std::vector<std::string>;

} // namespace

TEST(ExecdStream, InitEventIsByteExact) {
  EXPECT_EQ(encode_init("abc123", 1700000000000),
            "{\"type\":\"init\",\"text\":\"abc123\",\"timestamp\":"
            "1700000000000}\n\n");
}

TEST(ExecdStream, PingEventIsByteExact) {
  EXPECT_EQ(encode_ping(5),
            "{\"type\":\"ping\",\"text\":\"pong\",\"timestamp\":5}\n\n");
}

TEST(ExecdStream, OutputEventEscapes) {
  EXPECT_EQ(encode_output("stdout", "a\"b\\c\td", 7),
            "{\"type\":\"stdout\",\"text\":\"a\\\"b\\\\c\\td\",\"timestamp\":7}"
            "\n\n");
  EXPECT_EQ(encode_output("stderr", "\n", 1),
            "{\"type\":\"stderr\",\"text\":\"\\n\",\"timestamp\":1}\n\n");
}

TEST(ExecdStream, CompleteEventOmitsZeroExecutionTime) {
  EXPECT_EQ(encode_complete(42, 9),
            "{\"type\":\"execution_complete\",\"execution_time\":42,"
            "\"timestamp\":9}\n\n");
  EXPECT_EQ(encode_complete(0, 9),
            "{\"type\":\"execution_complete\",\"timestamp\":9}\n\n");
}

TEST(ExecdStream, ErrorEventIsByteExact) {
  EXPECT_EQ(encode_error("CommandExecError", "7", {"exit status 7"}, 3),
            "{\"type\":\"error\",\"timestamp\":3,\"error\":{\"ename\":"
            "\"CommandExecError\",\"evalue\":\"7\",\"traceback\":[\"exit "
            "status 7\"]}}\n\n");
}

TEST(ExecdStream, EventWithAllFields) {
  stream_event ev;
  ev.type = "result";
  ev.text = "x";
  ev.execution_count = 3;
  ev.execution_time = 10;
  ev.timestamp = 11;
  std::string out;
  encode_event(out, ev);
  EXPECT_EQ(out, "{\"type\":\"result\",\"text\":\"x\",\"execution_count\":3,"
                 "\"execution_time\":10,\"timestamp\":11}\n\n");
}

TEST(ExecdStream, JsonStringSanitizesInvalidUtf8) {
  std::string out;
  append_json_string(out, std::string{"ok\xff\xc3\xa9\x01"});
  EXPECT_EQ(out, "\"ok\\ufffd\xc3\xa9\\u0001\"");
  out.clear();
  append_json_string(out, "\xe2\x80\xa8");
  EXPECT_EQ(out, "\"\\u2028\"");
  out.clear();
  // Truncated multi-byte sequence at the end.
  append_json_string(out, "a\xe2\x82");
  EXPECT_EQ(out, "\"a\\ufffd\\ufffd\"");
}

TEST(ExecdStream, JsonWriterNesting) {
  json_writer w;
  w.begin_object();
  w.key("a").integer(1);
  w.key("b").begin_array().string("x").boolean(true).null().end_array();
  w.key("c").number(4.0);
  w.key("d").number(45.5);
  w.key("e").begin_object().end_object();
  w.end_object();
  EXPECT_EQ(w.str(),
            "{\"a\":1,\"b\":[\"x\",true,null],\"c\":4,\"d\":45.5,\"e\":{}}");
}

TEST(ExecdLineSplitter, NewlineTerminated) {
  EXPECT_EQ(split_all("a\nb\n"), (lines{"a", "b"}));
}

TEST(ExecdLineSplitter, CarriageReturnLineFeedCountsOnce) {
  EXPECT_EQ(split_all("a\r\nb\r\n"), (lines{"a", "b"}));
}

TEST(ExecdLineSplitter, BareCarriageReturnTerminates) {
  EXPECT_EQ(split_all("10%\r20%\rdone\n"), (lines{"10%", "20%", "done"}));
}

TEST(ExecdLineSplitter, BlankLinesBecomeNewline) {
  EXPECT_EQ(split_all("a\n\nb\n"), (lines{"a", "\n", "b"}));
  EXPECT_EQ(split_all("\n"), (lines{"\n"}));
  EXPECT_EQ(split_all("\r\n\r\n"), (lines{"\n", "\n"}));
}

TEST(ExecdLineSplitter, PartialLastLineIsFlushed) {
  EXPECT_EQ(split_all("a\nbc"), (lines{"a", "bc"}));
  EXPECT_EQ(split_all("no newline"), (lines{"no newline"}));
  EXPECT_EQ(split_all(""), (lines{}));
}

TEST(ExecdLineSplitter, LinesSpanningChunks) {
  EXPECT_EQ(split_all("hello world\nx\n", {3, 7}),
            (lines{"hello world", "x"}));
}

TEST(ExecdLineSplitter, CrLfSplitAcrossChunks) {
  // "\r" ends one chunk, "\n" starts the next: still one terminator.
  EXPECT_EQ(split_all("a\r\nb\n", {2}), (lines{"a", "b"}));
  EXPECT_EQ(split_all("a\r\r\nb", {2}), (lines{"a", "\n", "b"}));
}

TEST(ExecdLineSplitter, LongLinesAreCut) {
  line_splitter s{4};
  std::vector<std::string> out;
  auto emit = [&](std::string_view x) { out.emplace_back(x); };
  s.feed("ab", emit);
  s.feed("cdefghij\nk", emit);
  s.finish(emit);
  EXPECT_EQ(out, (lines{"abcd", "efgh", "ij", "k"}));
}
