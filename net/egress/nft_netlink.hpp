#pragma once

#include "net/egress/policy.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace osb::egress {

/// Adds and removes elements of nftables sets over netlink, without running
/// the nft binary: the DNS proxy inserts the addresses of an allowed answer
/// before it replies, so this is on the query path (tens of microseconds
/// instead of milliseconds for a fork/exec of nft).
class nft_netlink {
public:
  nft_netlink() = default;
  nft_netlink(const nft_netlink&) = delete;
  nft_netlink& operator=(const nft_netlink&) = delete;
  ~nft_netlink();

  /// Opens the NETLINK_NETFILTER socket; false (with `error`) on failure.
  bool open(std::string* error);

  /// Adds `addresses` (all of one family) to set `set` of the inet table
  /// `table` in one transaction. Existing elements are not an error.
  bool add(std::string_view table, std::string_view set,
           const std::vector<ip_address>& addresses, std::string* error);

  /// Removes `addresses` from the set in one transaction; when that fails
  /// (an element already gone), removes them one by one, ignoring ENOENT.
  bool remove(std::string_view table, std::string_view set,
              const std::vector<ip_address>& addresses, std::string* error);

  /// Builds the batch message for tests: BATCH_BEGIN, one NEWSETELEM or
  /// DELSETELEM, BATCH_END, with sequence numbers starting at `seq`.
  static std::vector<uint8_t>
  build_batch(bool add, std::string_view table, std::string_view set,
              const std::vector<ip_address>& addresses, uint32_t seq);

private:
  bool transact(bool add, std::string_view table, std::string_view set,
                const std::vector<ip_address>& addresses, int* err_no,
                std::string* error);

  int fd_ = -1;
  uint32_t seq_ = 1;
};

} // namespace osb::egress
