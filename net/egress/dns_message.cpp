#include "net/egress/dns_message.hpp"

#include <cstring>

namespace osb::egress::dns {

namespace {

uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

uint32_t get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8)
         | uint32_t{p[3]};
}

void put16(std::vector<uint8_t>& out, uint16_t x) {
  out.push_back(static_cast<uint8_t>(x >> 8));
  out.push_back(static_cast<uint8_t>(x & 0xff));
}

void put32(std::vector<uint8_t>& out, uint32_t x) {
  put16(out, static_cast<uint16_t>(x >> 16));
  put16(out, static_cast<uint16_t>(x & 0xffff));
}

void set16(uint8_t* p, uint16_t x) {
  p[0] = static_cast<uint8_t>(x >> 8);
  p[1] = static_cast<uint8_t>(x & 0xff);
}

void append_label_byte(std::string& out, uint8_t c) {
  if (c >= 'A' && c <= 'Z')
    c = static_cast<uint8_t>(c - 'A' + 'a');
  bool plain = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'
               || c == '_' || c == '*';
  if (plain) {
    out.push_back(static_cast<char>(c));
    return;
  }
  out.push_back('\\');
  out.push_back(static_cast<char>('0' + c / 100));
  out.push_back(static_cast<char>('0' + c / 10 % 10));
  out.push_back(static_cast<char>('0' + c % 10));
}

} // namespace

std::optional<header> parse_header(const uint8_t* data, size_t size) {
  if (data == nullptr || size < header_size)
    return std::nullopt;
  header h;
  h.id = get16(data);
  h.flags = get16(data + 2);
  h.qdcount = get16(data + 4);
  h.ancount = get16(data + 6);
  h.nscount = get16(data + 8);
  h.arcount = get16(data + 10);
  return h;
}

bool read_name(const uint8_t* data, size_t size, size_t& offset,
               std::string* out) {
  size_t pos = offset;
  size_t wire_length = 1; // the root label
  bool jumped = false;
  // Pointers must go strictly backwards: no loops, bounded work.
  size_t limit = offset;
  if (out)
    out->clear();
  for (;;) {
    if (pos >= size)
      return false;
    uint8_t len = data[pos];
    if ((len & 0xc0) == 0xc0) {
      if (pos + 1 >= size)
        return false;
      size_t target = static_cast<size_t>(((len & 0x3f) << 8) | data[pos + 1]);
      if (target >= limit)
        return false;
      if (!jumped)
        offset = pos + 2;
      jumped = true;
      limit = target;
      pos = target;
      continue;
    }
    if ((len & 0xc0) != 0)
      return false; // extended label types are obsolete
    if (len == 0) {
      if (!jumped)
        offset = pos + 1;
      return true;
    }
    wire_length += len + 1u;
    if (wire_length > 255 || pos + 1 + len > size)
      return false;
    if (out) {
      if (!out->empty())
        out->push_back('.');
      for (size_t i = 0; i < len; ++i)
        append_label_byte(*out, data[pos + 1 + i]);
    }
    pos += 1 + len;
  }
}

std::optional<question> parse_question(const uint8_t* data, size_t size) {
  auto h = parse_header(data, size);
  if (!h || h->qdcount == 0)
    return std::nullopt;
  question q;
  size_t offset = header_size;
  if (!read_name(data, size, offset, &q.name))
    return std::nullopt;
  if (offset + 4 > size)
    return std::nullopt;
  q.qtype = get16(data + offset);
  q.qclass = get16(data + offset + 2);
  q.end = offset + 4;
  return q;
}

std::vector<uint8_t> make_reply(const uint8_t* query, size_t size,
                                uint8_t rcode) {
  auto h = parse_header(query, size);
  if (!h)
    return {};
  auto q = parse_question(query, size);
  std::vector<uint8_t> out(query, query + header_size);
  // QR=1, keep opcode and RD, RA=1, new rcode.
  auto flags = static_cast<uint16_t>(0x8000 | (h->flags & 0x7900) | 0x0080
                                     | (rcode & 0x0f));
  set16(out.data() + 2, flags);
  set16(out.data() + 4, q ? 1 : 0);
  set16(out.data() + 6, 0);
  set16(out.data() + 8, 0);
  set16(out.data() + 10, 0);
  if (q)
    out.insert(out.end(), query + header_size, query + q->end);
  return out;
}

std::vector<uint8_t> make_truncated(const uint8_t* response, size_t size) {
  auto h = parse_header(response, size);
  if (!h)
    return {};
  auto q = parse_question(response, size);
  std::vector<uint8_t> out(response, response + header_size);
  set16(out.data() + 2, static_cast<uint16_t>(h->flags | 0x0200));
  set16(out.data() + 4, q ? 1 : 0);
  set16(out.data() + 6, 0);
  set16(out.data() + 8, 0);
  set16(out.data() + 10, 0);
  if (q)
    out.insert(out.end(), response + header_size, response + q->end);
  return out;
}

std::optional<std::vector<answer_address>>
extract_addresses(const uint8_t* data, size_t size) {
  auto h = parse_header(data, size);
  if (!h)
    return std::nullopt;
  size_t offset = header_size;
  for (uint16_t i = 0; i < h->qdcount; ++i) {
    if (!read_name(data, size, offset, nullptr) || offset + 4 > size)
      return std::nullopt;
    offset += 4;
  }
  std::vector<answer_address> result;
  for (uint16_t i = 0; i < h->ancount; ++i) {
    if (!read_name(data, size, offset, nullptr) || offset + 10 > size)
      return std::nullopt;
    auto type = get16(data + offset);
    auto cls = get16(data + offset + 2);
    auto ttl = get32(data + offset + 4);
    auto rdlength = get16(data + offset + 8);
    offset += 10;
    if (offset + rdlength > size)
      return std::nullopt;
    if (cls == 1 && ((type == type_a && rdlength == 4)
                     || (type == type_aaaa && rdlength == 16))) {
      answer_address a;
      a.address.v6 = type == type_aaaa;
      std::memcpy(a.address.bytes, data + offset, rdlength);
      // RFC 2181: a TTL with the top bit set is to be treated as zero.
      a.ttl = (ttl & 0x80000000u) != 0 ? 0 : ttl;
      result.push_back(a);
    }
    offset += rdlength;
  }
  return result;
}

std::vector<uint8_t> make_query(uint16_t id, const std::string& name,
                                uint16_t qtype) {
  std::vector<uint8_t> out;
  put16(out, id);
  put16(out, 0x0100); // RD
  put16(out, 1);
  put16(out, 0);
  put16(out, 0);
  put16(out, 0);
  size_t start = 0;
  while (start < name.size()) {
    auto dot = name.find('.', start);
    if (dot == std::string::npos)
      dot = name.size();
    auto len = std::min<size_t>(dot - start, 63);
    out.push_back(static_cast<uint8_t>(len));
    out.insert(out.end(), name.begin() + static_cast<ptrdiff_t>(start),
               name.begin() + static_cast<ptrdiff_t>(start + len));
    start = dot + 1;
  }
  out.push_back(0);
  put16(out, qtype);
  put16(out, 1);
  return out;
}

std::vector<uint8_t> make_answer(const uint8_t* query, size_t size,
                                 const std::vector<ip_address>& addresses,
                                 uint32_t ttl) {
  auto out = make_reply(query, size, rcode_noerror);
  auto q = parse_question(query, size);
  if (!q)
    return out;
  uint16_t count = 0;
  for (auto& a : addresses) {
    auto type = a.v6 ? type_aaaa : type_a;
    if (q->qtype != type)
      continue;
    put16(out, 0xc000 | header_size); // pointer to the question name
    put16(out, type);
    put16(out, 1);
    put32(out, ttl);
    put16(out, static_cast<uint16_t>(a.size()));
    out.insert(out.end(), a.bytes, a.bytes + a.size());
    ++count;
  }
  set16(out.data() + 6, count);
  return out;
}

} // namespace osb::egress::dns
