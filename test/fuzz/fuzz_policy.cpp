// libFuzzer harness: the egress policy documents (startup policy, PATCH
// rules, DELETE targets) and the name matching they drive.

#include "net/egress/policy.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace eg = osb::egress;
  if (size == 0)
    return 0;
  std::string_view in{reinterpret_cast<const char*>(data) + 1, size - 1};
  std::string err;
  switch (data[0] % 4) {
    case 0:
      if (auto p = eg::parse_policy(in, &err)) {
        (void) eg::mode_of(*p);
        (void) p->evaluate("example.com");
        (void) p->evaluate("a.b.example.com.");
        // What GET renders, PUT must accept again.
        auto json = eg::to_json(*p);
        if (!eg::parse_policy(json, &err))
          std::abort();
      }
      break;
    case 1:
      (void) eg::parse_rules(in, &err);
      break;
    case 2:
      (void) eg::parse_targets(in, &err);
      break;
    default: {
      // "action\ntarget\nname": rule building and matching.
      auto nl = in.find('\n');
      auto act = in.substr(0, nl);
      auto rest = nl == std::string_view::npos ? std::string_view{}
                                               : in.substr(nl + 1);
      auto nl2 = rest.find('\n');
      auto target = rest.substr(0, nl2);
      auto name = nl2 == std::string_view::npos ? std::string_view{}
                                                : rest.substr(nl2 + 1);
      if (auto r = eg::make_rule(act, target, &err))
        (void) r->matches(eg::normalize_name(name));
      if (auto ip = eg::parse_ip(target))
        (void) eg::to_string(*ip);
      break;
    }
  }
  return 0;
}
