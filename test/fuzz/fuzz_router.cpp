// libFuzzer harness: the lifecycle API's router (http/router), the path
// helpers of base/strings.hpp and the server proxy's path parsing
// (net/proxy). Input: method byte, then the raw path.

#include "base/strings.hpp"
#include "http/router.hpp"
#include "net/proxy.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  static constexpr std::string_view methods[]
    = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"};
  auto method = methods[data[0] % 8];
  std::string_view path{reinterpret_cast<const char*>(data) + 1, size - 1};
  auto r = osb::http::match_route(method, path);
  (void) osb::http::to_string(r.id);
  auto decoded = osb::http::decode_path(path);
  (void) osb::http::auth_exempt(decoded);
  auto norm = osb::normalize_path(path);
  // A normalised path is absolute and normalising it again changes nothing.
  if (norm.empty() || norm.front() != '/' || osb::normalize_path(norm) != norm)
    std::abort();
  (void) osb::percent_decode(path, true);
  (void) osb::percent_decode(path, false);
  (void) osb::trim(path);
  (void) osb::lower(path);
  if (auto pp = osb::net::parse_proxy_path(path)) {
    if (!osb::net::is_proxy_path(path))
      std::abort();
    if (auto rest = osb::net::normalize_proxy_rest(pp->rest)) {
      // No dot segment survives normalisation.
      if (rest->find("/../") != std::string::npos
          || rest->find("/./") != std::string::npos)
        std::abort();
    }
  }
  return 0;
}
