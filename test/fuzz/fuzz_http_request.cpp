// libFuzzer harness: the HTTP/1.1 request parser as our three servers
// configure Beast's (fresh parser per request, 64 KiB header limit, body
// limit, pipelined requests from one buffer), plus the RFC 9112 framing
// checks of base/http_framing.hpp; and the server proxy's upstream response
// parser with its framing check.

#include "base/http_framing.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace bhttp = boost::beast::http;

namespace {

/// Feeds `in` to fresh request parsers, one message after the other, in
/// pieces of `step` bytes (as the socket would deliver them).
void parse_requests(std::string_view in, size_t step) {
  size_t cur = 0;
  while (cur < in.size()) {
    bhttp::request_parser<bhttp::string_body> p;
    p.header_limit(64 * 1024);
    p.body_limit(1 << 20);
    boost::beast::error_code ec;
    size_t end = cur;
    bool checked = false;
    auto framing_ok = [&] {
      checked = true;
      auto v = osb::base::check_request_framing(p.get(), p.get().version());
      if (!v && v.status != 400 && v.status != 501)
        std::abort();
      return static_cast<bool>(v); // else: answered, connection closed
    };
    while (!p.is_done()) {
      if (end == in.size())
        return; // the message needs more than there is
      end = std::min(in.size(), end + step);
      while (cur < end && !p.is_done()) {
        ec = {};
        auto used = p.put(boost::asio::buffer(in.data() + cur, end - cur), ec);
        cur += used;
        if (ec == bhttp::error::need_more)
          break;
        if (ec)
          return; // our servers answer 400 (or 413/431) and close
        if (used == 0)
          break;
      }
      if (!checked && p.is_header_done() && !framing_ok())
        return;
    }
    if (!checked && !framing_ok())
      return;
    // A message our servers accept is chunked or has one length.
    if (p.get().has_content_length() && p.chunked())
      std::abort();
  }
}

void parse_response(std::string_view in) {
  bhttp::response_parser<bhttp::string_body> p;
  p.header_limit(64 * 1024);
  p.body_limit(1 << 20);
  boost::beast::error_code ec;
  auto used = p.put(boost::asio::buffer(in.data(), in.size()), ec);
  if (ec || !p.is_header_done())
    return;
  auto v = osb::base::check_response_framing(p.get(), p.get().version());
  if (v) {
    if (p.chunked() && p.get().has_content_length())
      std::abort();
  } else if (v.status != 502) {
    std::abort();
  }
  in.remove_prefix(used);
  if (!p.is_done())
    (void) p.put(boost::asio::buffer(in.data(), in.size()), ec);
  if (!ec)
    (void) p.put_eof(ec);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  std::string_view in{reinterpret_cast<const char*>(data) + 1, size - 1};
  if (data[0] & 0x80)
    parse_response(in);
  else
    parse_requests(in, 1 + (data[0] & 0x3f) * 17);
  return 0;
}
