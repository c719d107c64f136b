#include "net/egress/nft_netlink.hpp"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace osb::egress {

namespace {

// A tiny netlink message builder: attributes are appended in place and
// nests are patched with their final length when closed.
class message_builder {
public:
  size_t begin_message(uint16_t type, uint16_t flags, uint32_t seq,
                       uint8_t family, uint16_t res_id) {
    auto start = buf_.size();
    nlmsghdr nh{};
    nh.nlmsg_type = type;
    nh.nlmsg_flags = flags;
    nh.nlmsg_seq = seq;
    append(&nh, sizeof(nh));
    nfgenmsg gen{};
    gen.nfgen_family = family;
    gen.version = NFNETLINK_V0;
    gen.res_id = htons(res_id);
    append(&gen, sizeof(gen));
    return start;
  }

  void end_message(size_t start) {
    auto len = static_cast<uint32_t>(buf_.size() - start);
    std::memcpy(buf_.data() + start, &len, sizeof(len));
  }

  void attr(uint16_t type, const void* data, size_t size) {
    nlattr a{};
    a.nla_type = type;
    a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + size);
    append(&a, sizeof(a));
    append(data, size);
    pad();
  }

  void attr_string(uint16_t type, std::string_view x) {
    std::string z{x};
    attr(type, z.c_str(), z.size() + 1);
  }

  size_t begin_nest(uint16_t type) {
    auto start = buf_.size();
    nlattr a{};
    a.nla_type = static_cast<uint16_t>(type | NLA_F_NESTED);
    append(&a, sizeof(a));
    return start;
  }

  void end_nest(size_t start) {
    auto len = static_cast<uint16_t>(buf_.size() - start);
    std::memcpy(buf_.data() + start, &len, sizeof(len));
  }

  std::vector<uint8_t> take() {
    return std::move(buf_);
  }

private:
  void append(const void* data, size_t size) {
    auto p = static_cast<const uint8_t*>(data);
    buf_.insert(buf_.end(), p, p + size);
  }

  void pad() {
    while (buf_.size() % NLA_ALIGNTO != 0)
      buf_.push_back(0);
  }

  std::vector<uint8_t> buf_;
};

} // namespace

nft_netlink::~nft_netlink() {
  if (fd_ >= 0)
    ::close(fd_);
}

bool nft_netlink::open(std::string* error) {
  fd_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd_ < 0) {
    if (error)
      *error = std::string{"netlink socket: "} + std::strerror(errno);
    return false;
  }
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
    if (error)
      *error = std::string{"netlink bind: "} + std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  // Never block the proxy for long if the kernel does not answer.
  timeval tv{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return true;
}

std::vector<uint8_t>
nft_netlink::build_batch(bool add, std::string_view table, std::string_view set,
                         const std::vector<ip_address>& addresses,
                         uint32_t seq) {
  message_builder b;
  auto m = b.begin_message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, AF_UNSPEC,
                           NFNL_SUBSYS_NFTABLES);
  b.end_message(m);
  auto type = static_cast<uint16_t>(
    (NFNL_SUBSYS_NFTABLES << 8) | (add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM));
  uint16_t flags = NLM_F_REQUEST | NLM_F_ACK;
  if (add)
    flags |= NLM_F_CREATE;
  m = b.begin_message(type, flags, seq + 1, NFPROTO_INET, 0);
  b.attr_string(NFTA_SET_ELEM_LIST_TABLE, table);
  b.attr_string(NFTA_SET_ELEM_LIST_SET, set);
  auto elements = b.begin_nest(NFTA_SET_ELEM_LIST_ELEMENTS);
  for (auto& a : addresses) {
    auto elem = b.begin_nest(NFTA_LIST_ELEM);
    auto key = b.begin_nest(NFTA_SET_ELEM_KEY);
    b.attr(NFTA_DATA_VALUE, a.bytes, a.size());
    b.end_nest(key);
    b.end_nest(elem);
  }
  b.end_nest(elements);
  b.end_message(m);
  m = b.begin_message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq + 2, AF_UNSPEC,
                      NFNL_SUBSYS_NFTABLES);
  b.end_message(m);
  return b.take();
}

bool nft_netlink::transact(bool add, std::string_view table,
                           std::string_view set,
                           const std::vector<ip_address>& addresses,
                           int* err_no, std::string* error) {
  *err_no = 0;
  if (fd_ < 0) {
    if (error)
      *error = "netlink socket not open";
    *err_no = EBADF;
    return false;
  }
  if (addresses.empty())
    return true;
  auto seq = seq_;
  seq_ += 3;
  auto msg = build_batch(add, table, set, addresses, seq);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_, msg.data(), msg.size(), 0,
               reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel))
      < 0) {
    *err_no = errno;
    if (error)
      *error = std::string{"netlink send: "} + std::strerror(errno);
    return false;
  }
  // Wait for the ACK (or error) of the element message.
  alignas(nlmsghdr) uint8_t buf[8192];
  for (;;) {
    auto n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      *err_no = errno;
      if (error)
        *error = std::string{"netlink recv: "} + std::strerror(errno);
      return false;
    }
    auto len = static_cast<size_t>(n);
    for (auto nh = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(nh, len);
         nh = NLMSG_NEXT(nh, len)) {
      if (nh->nlmsg_type != NLMSG_ERROR || nh->nlmsg_seq < seq
          || nh->nlmsg_seq > seq + 2)
        continue;
      auto err = reinterpret_cast<nlmsgerr*>(NLMSG_DATA(nh));
      if (err->error == 0 && nh->nlmsg_seq == seq + 1)
        return true;
      if (err->error != 0) {
        *err_no = -err->error;
        if (error)
          *error = std::string{"nftables set "} + std::string{set} + ": "
                   + std::strerror(-err->error);
        return false;
      }
    }
  }
}

bool nft_netlink::add(std::string_view table, std::string_view set,
                      const std::vector<ip_address>& addresses,
                      std::string* error) {
  int err_no = 0;
  return transact(true, table, set, addresses, &err_no, error);
}

bool nft_netlink::remove(std::string_view table, std::string_view set,
                         const std::vector<ip_address>& addresses,
                         std::string* error) {
  int err_no = 0;
  if (transact(false, table, set, addresses, &err_no, error))
    return true;
  if (err_no != ENOENT || addresses.size() == 1)
    return err_no == ENOENT;
  bool ok = true;
  for (auto& a : addresses)
    if (!transact(false, table, set, {a}, &err_no, error) && err_no != ENOENT)
      ok = false;
  return ok;
}

} // namespace osb::egress
