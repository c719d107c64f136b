#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace osb::execd {

/// The headers of one multipart part that matter here.
struct part_headers {
  std::string name;
  std::string filename;
  std::string content_type;
};

/// Extracts the boundary parameter of a `multipart/form-data` Content-Type;
/// "" if absent.
std::string multipart_boundary(std::string_view content_type);

/// An incremental multipart/form-data parser: bytes go in as they arrive
/// from the socket, part data comes out through callbacks without ever
/// holding a whole part in memory.
class multipart_parser {
public:
  /// Each callback returns false to abort parsing.
  struct callbacks {
    std::function<bool(const part_headers&)> on_begin;
    std::function<bool(std::string_view)> on_data;
    std::function<bool()> on_end;
  };

  multipart_parser(std::string boundary, callbacks cbs);

  /// Consumes more input. Returns false on malformed input or an aborting
  /// callback (see error()).
  bool feed(std::string_view data);

  /// Whether the closing delimiter was seen.
  bool done() const {
    return state_ == state::done;
  }

  /// Why feed() failed.
  const std::string& error() const {
    return error_;
  }

private:
  enum class state { preamble, after_delimiter, headers, body, done, failed };

  bool fail(std::string msg);
  bool parse_headers(std::string_view block);

  std::string delimiter_; // "\r\n--" + boundary
  callbacks cbs_;
  std::string buf_;
  state state_ = state::preamble;
  std::string error_;
};

} // namespace osb::execd
