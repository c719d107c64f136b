// libFuzzer harness: the TOML configuration (core/config) as the server
// loads it from a file.

#include "core/config.hpp"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text{reinterpret_cast<const char*>(data), size};
  (void) osb::parse_config(text, "fuzz.toml");
  return 0;
}
