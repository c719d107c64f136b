// libFuzzer harness: execd's incremental multipart/form-data parser, fed in
// pieces whose sizes come from the input, and the boundary extraction.
// Input: boundary length byte, boundary, split seed byte, body.

#include "execd/multipart.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2)
    return 0;
  std::string_view in{reinterpret_cast<const char*>(data), size};
  size_t blen = static_cast<uint8_t>(in[0]) % 71;
  in.remove_prefix(1);
  if (in.size() < blen + 1)
    return 0;
  auto boundary_text = in.substr(0, blen);
  in.remove_prefix(blen);
  size_t step = 1 + static_cast<uint8_t>(in[0]) % 64;
  in.remove_prefix(1);
  (void) osb::execd::multipart_boundary(
    std::string{"multipart/form-data; boundary="} + std::string{boundary_text});
  (void) osb::execd::multipart_boundary(in.substr(0, 200));
  if (boundary_text.empty())
    return 0;
  bool in_part = false;
  osb::execd::multipart_parser::callbacks cbs;
  cbs.on_begin = [&](const osb::execd::part_headers&) {
    if (in_part)
      std::abort(); // begin without end
    in_part = true;
    return true;
  };
  cbs.on_data = [&](std::string_view) {
    if (!in_part)
      std::abort(); // data outside a part
    return true;
  };
  cbs.on_end = [&] {
    if (!in_part)
      std::abort();
    in_part = false;
    return true;
  };
  osb::execd::multipart_parser p{std::string{boundary_text}, cbs};
  while (!in.empty()) {
    auto n = std::min(step, in.size());
    if (!p.feed(in.substr(0, n)))
      break;
    in.remove_prefix(n);
    step = step * 7 % 61 + 1;
  }
  return 0;
}
