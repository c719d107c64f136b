#include "base/http_framing.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

using namespace osb::base;

namespace {

/// A field list shaped like Beast's (name_string(), value()).
struct field {
  std::string name;
  std::string val;
  std::string_view name_string() const {
    return name;
  }
  std::string_view value() const {
    return val;
  }
};

using fields = std::vector<field>;

int request_status(const fields& xs, unsigned version = 11) {
  return check_request_framing(xs, version).status;
}

} // namespace

TEST(HttpFraming, PlainMessagesPass) {
  EXPECT_EQ(request_status({}), 0);
  EXPECT_EQ(request_status({{"Content-Length", "5"}}), 0);
  EXPECT_EQ(request_status({{"Transfer-Encoding", "chunked"}}), 0);
  EXPECT_EQ(request_status({{"transfer-encoding", " Chunked "}}), 0);
  // Identical duplicates are one length (RFC 9110 §8.6).
  EXPECT_EQ(request_status({{"Content-Length", "5"}, {"Content-Length", "5"}}),
            0);
  EXPECT_EQ(request_status({{"Content-Length", "5, 5"}}), 0);
  EXPECT_EQ(request_status({{"Content-Length", "0"}}, 10), 0);
}

TEST(HttpFraming, ChunkedMustBeTheFinalCoding) {
  auto v = check_request_framing(
    fields{{"Transfer-Encoding", "chunked, identity"}}, 11);
  EXPECT_EQ(v.status, 400);
  EXPECT_EQ(v.reason, "chunked is not the final transfer coding");
  EXPECT_EQ(request_status({{"Transfer-Encoding", "xchunked"}}), 400);
  EXPECT_EQ(request_status({{"Transfer-Encoding", "gzip"}}), 400);
  EXPECT_EQ(request_status({{"Transfer-Encoding", ""}}), 400);
  EXPECT_EQ(request_status({{"Transfer-Encoding", "chunked;x=1"}}), 400);
  // Several fields form one list.
  EXPECT_EQ(request_status({{"Transfer-Encoding", "chunked"},
                            {"Transfer-Encoding", "identity"}}),
            400);
}

TEST(HttpFraming, ChunkedTwiceIs400AndOtherCodingsAre501) {
  EXPECT_EQ(request_status({{"Transfer-Encoding", "chunked, chunked"}}), 400);
  EXPECT_EQ(request_status({{"Transfer-Encoding", "chunked"},
                            {"Transfer-Encoding", "chunked"}}),
            400);
  EXPECT_EQ(request_status({{"Transfer-Encoding", "gzip, chunked"}}), 501);
}

TEST(HttpFraming, TransferEncodingWithContentLengthIs400) {
  EXPECT_EQ(request_status({{"Transfer-Encoding", "chunked"},
                            {"Content-Length", "3"}}),
            400);
  EXPECT_EQ(request_status({{"Content-Length", "3"},
                            {"Transfer-Encoding", "xchunked"}}),
            400);
}

TEST(HttpFraming, TransferEncodingInHttp10Is400) {
  EXPECT_EQ(request_status({{"Transfer-Encoding", "chunked"}}, 10), 400);
}

TEST(HttpFraming, BadOrDifferingContentLengthIs400) {
  EXPECT_EQ(request_status({{"Content-Length", "3"}, {"Content-Length", "4"}}),
            400);
  EXPECT_EQ(request_status({{"Content-Length", "3, 4"}}), 400);
  EXPECT_EQ(request_status({{"Content-Length", "-1"}}), 400);
  EXPECT_EQ(request_status({{"Content-Length", "+3"}}), 400);
  EXPECT_EQ(request_status({{"Content-Length", ""}}), 400);
  EXPECT_EQ(request_status({{"Content-Length", "99999999999999999999"}}), 400);
}

TEST(HttpFraming, ResponsesFailAs502) {
  EXPECT_EQ(check_response_framing(fields{}, 11).status, 0);
  EXPECT_EQ(check_response_framing(fields{{"Transfer-Encoding", "chunked"}}, 11)
              .status,
            0);
  EXPECT_EQ(check_response_framing(fields{{"Transfer-Encoding", "gzip"}}, 11)
              .status,
            502);
  auto v = check_response_framing(fields{{"Transfer-Encoding", "chunked"}}, 10);
  EXPECT_EQ(v.status, 502);
  EXPECT_EQ(v.reason, "Transfer-Encoding in an HTTP/1.0 response");
}
