// libFuzzer harness: the lifecycle API's request decoders (http/codec_*), the
// depth-limited JSON parse under them (base/json.hpp) and the store's JSON
// readers. The first byte picks the decoder, the rest is its input.

#include "base/json.hpp"
#include "core/config.hpp"
#include "core/spec_json.hpp"
#include "core/time.hpp"
#include "http/codec_request.hpp"

#include <rapidjson/document.h>
#include <rapidjson/reader.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

/// Measures the deepest nesting RapidJSON's iterative parser sees (no
/// recursion, so any depth is safe here).
struct depth_handler
  : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, depth_handler> {
  size_t depth = 0;
  size_t max_depth = 0;
  bool Default() {
    return true;
  }
  bool StartObject() {
    max_depth = std::max(max_depth, ++depth);
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    --depth;
    return true;
  }
  bool StartArray() {
    max_depth = std::max(max_depth, ++depth);
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    --depth;
    return true;
  }
};

/// The scan must never let through what the parser nests deeper than the
/// limit (the property that keeps the recursive parser safe).
void check_depth_scan(std::string_view text) {
  constexpr size_t limit = 8; // small, so the fuzzer crosses it easily
  if (osb::base::json_too_deep(text, limit) != std::string_view::npos)
    return;
  depth_handler h;
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms{text.data(), text.size()};
  reader.Parse<rapidjson::kParseIterativeFlag
               | rapidjson::kParseNanAndInfFlag>(ms, h);
  if (h.max_depth > limit)
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  static const osb::node_config cfg = [] {
    osb::node_config c;
    c.docker.network_mode = "bridge";
    return c;
  }();
  auto sel = data[0];
  std::string_view in{reinterpret_cast<const char*>(data) + 1, size - 1};
  switch (sel % 10) {
    case 0:
      (void) osb::codec::decode_create(in, cfg);
      break;
    case 1:
      (void) osb::codec::decode_renew(in);
      break;
    case 2:
      (void) osb::codec::decode_patch(in);
      break;
    case 3:
      (void) osb::codec::decode_list_query(in);
      break;
    case 4:
      (void) osb::codec::decode_snapshot_query(in);
      break;
    case 5:
      (void) osb::codec::decode_snapshot_request(in);
      break;
    case 6: {
      osb::sandbox_spec spec;
      if (osb::codec::spec_from_json(in, spec)) {
        // What the store reads back must round-trip.
        osb::sandbox_spec again;
        if (!osb::codec::spec_from_json(osb::codec::spec_to_json(spec), again))
          std::abort();
      }
      break;
    }
    case 7: {
      osb::string_map m;
      (void) osb::codec::map_from_json(in, m);
      break;
    }
    case 8: {
      int64_t us = 0;
      if (osb::codec::parse_time(in, us))
        (void) osb::codec::format_time(us);
      (void) osb::codec::url_decode(in);
      break;
    }
    default:
      check_depth_scan(in);
      break;
  }
  return 0;
}
