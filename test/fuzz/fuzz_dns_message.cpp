// libFuzzer harness: the egress sidecar's DNS message parsing (queries
// from the sandbox, responses from the upstream resolver).

#include "net/egress/dns_message.hpp"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace dns = osb::egress::dns;
  (void) dns::parse_header(data, size);
  if (auto q = dns::parse_question(data, size)) {
    (void) q;
  }
  size_t offset = 12;
  std::string name;
  if (size > 12)
    (void) dns::read_name(data, size, offset, &name);
  for (uint8_t rcode : {0, 3, 5}) {
    auto reply = dns::make_reply(data, size, rcode);
    // A reply is never longer than what it answers plus a header.
    if (reply.size() > size + 12)
      std::abort();
  }
  (void) dns::make_truncated(data, size);
  (void) dns::extract_addresses(data, size);
  osb::egress::ip_address a;
  (void) dns::make_answer(data, size, {a}, 60);
  return 0;
}
