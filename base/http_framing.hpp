#pragma once

// RFC 9112 §6 message framing checks that Boost.Beast's parser leaves to
// us, shared by the three HTTP servers (server, execd, egress sidecar) and
// the server proxy's upstream responses. Header-only and free of Beast
// types (the message is a template parameter), so that every binary,
// including the static ones, uses the same rules.
//
// Beast takes `Transfer-Encoding: chunked, identity` for a message without
// body (so its chunked body would be parsed as the next request) and
// `Transfer-Encoding: xchunked` followed by a Content-Length for a
// Content-Length message: both are request smuggling vectors. RFC 9112
// §6.3 wants 400 and a closed connection instead.

#include <cstdint>
#include <string_view>

namespace osb::base {

/// Verdict of check_request_framing() / check_response_framing().
struct framing_verdict {
  /// 0 = acceptable; else the status to answer with (400 or 501), after
  /// which the connection must close.
  int status = 0;
  /// Why, for the log and the response body; empty when acceptable.
  std::string_view reason;

  explicit operator bool() const noexcept {
    return status == 0;
  }
};

namespace detail {

inline bool ieq(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]);
    auto y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z')
      x = static_cast<unsigned char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z')
      y = static_cast<unsigned char>(y - 'A' + 'a');
    if (x != y)
      return false;
  }
  return true;
}

inline std::string_view trim_ows(std::string_view x) noexcept {
  while (!x.empty() && (x.front() == ' ' || x.front() == '\t'))
    x.remove_prefix(1);
  while (!x.empty() && (x.back() == ' ' || x.back() == '\t'))
    x.remove_suffix(1);
  return x;
}

/// Calls `f(element)` for each non-empty element of a comma-separated
/// field value (RFC 9110 §5.6.1: empty elements are ignored).
template <class F>
void for_each_element(std::string_view value, F&& f) {
  while (true) {
    auto comma = value.find(',');
    auto item = trim_ows(value.substr(0, comma));
    if (!item.empty())
      f(item);
    if (comma == std::string_view::npos)
      return;
    value.remove_prefix(comma + 1);
  }
}

/// Parses 1*DIGIT into `out`; false on anything else or above 2^63.
inline bool parse_length(std::string_view x, uint64_t& out) noexcept {
  if (x.empty() || x.size() > 19)
    return false;
  uint64_t v = 0;
  for (auto c : x) {
    if (c < '0' || c > '9')
      return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  out = v;
  return true;
}

/// What the framing fields of a message say.
struct framing_fields {
  bool has_te = false;
  size_t num_codings = 0;
  size_t num_chunked = 0;
  bool chunked_last = false;
  bool has_cl = false;
  bool bad_cl = false;
  bool differing_cl = false;
  uint64_t cl = 0;
};

template <class Fields>
framing_fields scan_framing(const Fields& fields) {
  framing_fields r;
  for (const auto& field : fields) {
    auto name = field.name_string();
    std::string_view n{name.data(), name.size()};
    auto v = field.value();
    std::string_view value{v.data(), v.size()};
    if (ieq(n, "transfer-encoding")) {
      r.has_te = true;
      // Codings of several fields form one list, in order (RFC 9110 §5.3).
      for_each_element(value, [&](std::string_view coding) {
        ++r.num_codings;
        r.chunked_last = ieq(coding, "chunked");
        if (r.chunked_last)
          ++r.num_chunked;
      });
    } else if (ieq(n, "content-length")) {
      bool any = false;
      for_each_element(value, [&](std::string_view x) {
        any = true;
        uint64_t len = 0;
        if (!parse_length(x, len)) {
          r.bad_cl = true;
        } else if (r.has_cl && len != r.cl) {
          r.differing_cl = true;
        } else {
          r.cl = len;
          r.has_cl = true;
        }
      });
      if (!any)
        r.bad_cl = true;
    }
  }
  return r;
}

} // namespace detail

/// Checks the framing of a request header (`Fields`: anything iterable
/// whose elements have `name_string()` and `value()`, e.g. a Beast
/// message). RFC 9112 §6.1 and §6.3:
/// - Transfer-Encoding in an HTTP/1.0 request, Transfer-Encoding together
///   with Content-Length, a coding list whose final coding is not
///   `chunked`, `chunked` twice → 400;
/// - other codings before a final `chunked` (which we do not decode) → 501;
/// - an invalid Content-Length or several that differ → 400.
template <class Fields>
framing_verdict check_request_framing(const Fields& fields,
                                      unsigned version) {
  auto f = detail::scan_framing(fields);
  if (f.bad_cl)
    return {400, "invalid Content-Length"};
  if (f.differing_cl)
    return {400, "differing Content-Length values"};
  if (!f.has_te)
    return {};
  if (version < 11)
    return {400, "Transfer-Encoding in an HTTP/1.0 request"};
  if (f.has_cl)
    return {400, "both Transfer-Encoding and Content-Length"};
  if (!f.chunked_last)
    return {400, "chunked is not the final transfer coding"};
  if (f.num_chunked > 1)
    return {400, "chunked applied more than once"};
  if (f.num_codings > 1)
    return {501, "unsupported transfer coding"};
  return {};
}

/// Checks the framing of a response that a proxy relays with its own
/// framing (so it can only pass on bodies whose length it knows and whose
/// codings it removes): the same rules as for requests, except that a
/// response may be delimited by closing (no Transfer-Encoding, no
/// Content-Length). Any failure is a bad upstream (502).
template <class Fields>
framing_verdict check_response_framing(const Fields& fields,
                                       unsigned version) {
  auto v = check_request_framing(fields, version);
  if (!v) {
    v.status = 502;
    if (v.reason == "Transfer-Encoding in an HTTP/1.0 request")
      v.reason = "Transfer-Encoding in an HTTP/1.0 response";
  }
  return v;
}

} // namespace osb::base
