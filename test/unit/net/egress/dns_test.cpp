#include "net/egress/dns_message.hpp"
#include "net/egress/dns_proxy.hpp"

#include <gtest/gtest.h>

#include <random>

using namespace osb::egress;

namespace {

std::vector<uint8_t> answer_for(const std::vector<uint8_t>& query,
                                std::vector<std::string> ips, uint32_t ttl) {
  std::vector<ip_address> xs;
  for (auto& ip : ips)
    xs.push_back(*parse_ip(ip));
  return dns::make_answer(query.data(), query.size(), xs, ttl);
}

bool allow_all(const std::string&) {
  return true;
}

} // namespace

TEST(egress_dns, parse_question) {
  auto q = dns::make_query(0x1234, "WWW.Example.COM", dns::type_aaaa);
  auto h = dns::parse_header(q.data(), q.size());
  ASSERT_TRUE(h);
  EXPECT_EQ(h->id, 0x1234);
  EXPECT_FALSE(h->is_response());
  EXPECT_EQ(h->qdcount, 1);
  auto question = dns::parse_question(q.data(), q.size());
  ASSERT_TRUE(question);
  EXPECT_EQ(question->name, "www.example.com");
  EXPECT_EQ(question->qtype, dns::type_aaaa);
  EXPECT_EQ(question->qclass, 1);
  EXPECT_EQ(question->end, q.size());
}

TEST(egress_dns, root_and_escaped_names) {
  auto root = dns::make_query(1, "", dns::type_a);
  auto q = dns::parse_question(root.data(), root.size());
  ASSERT_TRUE(q);
  EXPECT_EQ(q->name, "");
  // A label containing a dot must not read as two labels.
  std::vector<uint8_t> msg = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  for (uint8_t c : std::string{"\x0a" "a.pypi.org" "\x03" "com"})
    msg.push_back(c);
  msg.insert(msg.end(), {0, 0, 1, 0, 1});
  q = dns::parse_question(msg.data(), msg.size());
  ASSERT_TRUE(q);
  EXPECT_EQ(q->name, "a\\046pypi\\046org.com");
}

TEST(egress_dns, nxdomain_echoes_the_question) {
  auto q = dns::make_query(0xbeef, "denied.test", dns::type_a);
  auto r = dns::make_reply(q.data(), q.size(), dns::rcode_nxdomain);
  auto h = dns::parse_header(r.data(), r.size());
  ASSERT_TRUE(h);
  EXPECT_EQ(h->id, 0xbeef);
  EXPECT_TRUE(h->is_response());
  EXPECT_EQ(h->rcode(), dns::rcode_nxdomain);
  EXPECT_EQ(h->flags & 0x0100, 0x0100); // RD copied
  EXPECT_EQ(h->flags & 0x0080, 0x0080); // RA set
  EXPECT_EQ(h->qdcount, 1);
  EXPECT_EQ(h->ancount, 0);
  EXPECT_EQ(h->arcount, 0);
  auto rq = dns::parse_question(r.data(), r.size());
  ASSERT_TRUE(rq);
  EXPECT_EQ(rq->name, "denied.test");
  EXPECT_EQ(rq->qtype, dns::type_a);
  EXPECT_EQ(r.size(), q.size());
  EXPECT_TRUE(answers(q.data(), q.size(), r.data(), r.size()));
}

TEST(egress_dns, reply_drops_edns_and_extra_sections) {
  auto q = dns::make_query(7, "x.test", dns::type_a);
  q[11] = 1; // pretend an OPT record follows
  q.insert(q.end(), {0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0});
  auto r = dns::make_reply(q.data(), q.size(), dns::rcode_nxdomain);
  EXPECT_EQ(dns::parse_header(r.data(), r.size())->arcount, 0);
  EXPECT_EQ(r.size(), dns::parse_question(q.data(), q.size())->end);
}

TEST(egress_dns, extract_a_and_aaaa_with_ttls) {
  auto q = dns::make_query(9, "allowed.test", dns::type_a);
  auto r = answer_for(q, {"172.17.0.1", "10.0.0.2", "2001:db8::1"}, 300);
  auto xs = dns::extract_addresses(r.data(), r.size());
  ASSERT_TRUE(xs);
  ASSERT_EQ(xs->size(), 2u); // AAAA skipped for an A question
  EXPECT_EQ(to_string((*xs)[0].address), "172.17.0.1");
  EXPECT_EQ((*xs)[0].ttl, 300u);
  EXPECT_EQ(to_string((*xs)[1].address), "10.0.0.2");
  auto q6 = dns::make_query(9, "allowed.test", dns::type_aaaa);
  auto r6 = answer_for(q6, {"172.17.0.1", "2001:db8::1"}, 0x80000001);
  xs = dns::extract_addresses(r6.data(), r6.size());
  ASSERT_TRUE(xs);
  ASSERT_EQ(xs->size(), 1u);
  EXPECT_TRUE((*xs)[0].address.v6);
  EXPECT_EQ(to_string((*xs)[0].address), "2001:db8::1");
  EXPECT_EQ((*xs)[0].ttl, 0u); // top bit set: treated as 0
}

TEST(egress_dns, extract_skips_cname_and_other_records) {
  auto q = dns::make_query(3, "www.test", dns::type_a);
  auto r = dns::make_reply(q.data(), q.size(), dns::rcode_noerror);
  // CNAME www.test -> c.test (c + pointer to "test" at offset 16).
  r.insert(r.end(), {0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, 'c', 0xc0,
                     16});
  // A c.test 1.2.3.4 (name via pointer to the CNAME target).
  auto target = static_cast<uint8_t>(r.size() - 4);
  r.insert(r.end(), {0xc0, target, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 1, 2, 3,
                     4});
  r[7] = 2;
  auto xs = dns::extract_addresses(r.data(), r.size());
  ASSERT_TRUE(xs);
  ASSERT_EQ(xs->size(), 1u);
  EXPECT_EQ(to_string((*xs)[0].address), "1.2.3.4");
  EXPECT_EQ((*xs)[0].ttl, 30u);
}

TEST(egress_dns, malformed_messages) {
  std::vector<uint8_t> runt = {1, 2, 3};
  EXPECT_FALSE(dns::parse_header(runt.data(), runt.size()));
  EXPECT_TRUE(dns::make_reply(runt.data(), runt.size(), 3).empty());
  EXPECT_FALSE(dns::parse_header(nullptr, 0));
  // Truncated question.
  auto q = dns::make_query(1, "example.com", dns::type_a);
  for (size_t n = 0; n < q.size(); ++n) {
    EXPECT_FALSE(dns::parse_question(q.data(), n)) << n;
    EXPECT_FALSE(dns::extract_addresses(q.data(), n) && n < 12) << n;
  }
  // Pointer loop and forward pointers.
  std::vector<uint8_t> loop = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12,
                               0, 1, 0, 1};
  EXPECT_FALSE(dns::parse_question(loop.data(), loop.size()));
  std::vector<uint8_t> fwd = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 14,
                              0, 0, 1, 0, 1};
  EXPECT_FALSE(dns::parse_question(fwd.data(), fwd.size()));
  // Over-long name (> 255 bytes).
  std::string longname;
  for (int i = 0; i < 5; ++i)
    longname += std::string(60, 'a') + ".";
  longname += "com";
  auto lq = dns::make_query(1, longname, dns::type_a);
  EXPECT_FALSE(dns::parse_question(lq.data(), lq.size()));
  // Answer count larger than the records present.
  auto r = answer_for(dns::make_query(2, "a.test", dns::type_a), {"1.1.1.1"},
                      5);
  r[7] = 3;
  EXPECT_FALSE(dns::extract_addresses(r.data(), r.size()));
  // rdlength beyond the end.
  r[7] = 1;
  r[r.size() - 5] = 0xff;
  EXPECT_FALSE(dns::extract_addresses(r.data(), r.size()));
  // A record with a wrong rdlength is skipped, not misread.
  auto odd = answer_for(dns::make_query(2, "a.test", dns::type_a), {"1.1.1.1"},
                        5);
  odd[odd.size() - 5] = 3;
  odd.pop_back();
  auto xs = dns::extract_addresses(odd.data(), odd.size());
  ASSERT_TRUE(xs);
  EXPECT_TRUE(xs->empty());
}

TEST(egress_dns, truncated_copy) {
  auto q = dns::make_query(5, "big.test", dns::type_a);
  auto r = answer_for(q, {"1.1.1.1", "2.2.2.2"}, 10);
  auto t = dns::make_truncated(r.data(), r.size());
  auto h = dns::parse_header(t.data(), t.size());
  ASSERT_TRUE(h);
  EXPECT_TRUE(h->truncated());
  EXPECT_EQ(h->ancount, 0);
  EXPECT_EQ(t.size(), q.size());
}

TEST(egress_dns, classify) {
  auto deny_denied = [](const std::string& name) { return name != "denied.test"; };
  auto q = dns::make_query(1, "Denied.Test.", dns::type_a);
  auto v = classify_query(q.data(), q.size(), deny_denied);
  EXPECT_EQ(v.kind, dns_verdict::reply);
  EXPECT_EQ(dns::parse_header(v.answer.data(), v.answer.size())->rcode(),
            dns::rcode_nxdomain);
  q = dns::make_query(1, "allowed.test", 16 /* TXT */);
  v = classify_query(q.data(), q.size(), deny_denied);
  EXPECT_EQ(v.kind, dns_verdict::forward);
  EXPECT_EQ(v.name, "allowed.test");
  // Responses are dropped.
  auto r = dns::make_reply(q.data(), q.size(), 0);
  EXPECT_EQ(classify_query(r.data(), r.size(), allow_all).kind,
            dns_verdict::drop);
  // Two questions: FORMERR, never forwarded.
  auto two = q;
  two[5] = 2;
  v = classify_query(two.data(), two.size(), allow_all);
  EXPECT_EQ(v.kind, dns_verdict::reply);
  EXPECT_EQ(dns::parse_header(v.answer.data(), v.answer.size())->rcode(),
            dns::rcode_formerr);
  // No question.
  auto none = q;
  none[5] = 0;
  v = classify_query(none.data(), 12, allow_all);
  EXPECT_EQ(v.kind, dns_verdict::reply);
  // Other opcodes (UPDATE = 5): NOTIMP.
  auto update = q;
  update[2] = static_cast<uint8_t>(5 << 3);
  v = classify_query(update.data(), update.size(), allow_all);
  EXPECT_EQ(dns::parse_header(v.answer.data(), v.answer.size())->rcode(), 4);
}

TEST(egress_dns, answers_requires_same_id_and_question) {
  auto q = dns::make_query(10, "a.test", dns::type_a);
  auto r = answer_for(q, {"1.1.1.1"}, 1);
  EXPECT_TRUE(answers(q.data(), q.size(), r.data(), r.size()));
  auto other_id = r;
  other_id[1] = 11;
  EXPECT_FALSE(answers(q.data(), q.size(), other_id.data(), other_id.size()));
  auto other = answer_for(dns::make_query(10, "b.test", dns::type_a),
                          {"1.1.1.1"}, 1);
  EXPECT_FALSE(answers(q.data(), q.size(), other.data(), other.size()));
  auto upper = dns::make_query(10, "A.TEST", dns::type_a);
  auto ur = answer_for(upper, {"1.1.1.1"}, 1);
  EXPECT_TRUE(answers(q.data(), q.size(), ur.data(), ur.size()));
  EXPECT_FALSE(answers(q.data(), q.size(), q.data(), q.size())); // not QR
}

// Random bytes and random mutations of valid messages: nothing may crash or
// read out of bounds (run under ASan/valgrind to make the latter visible).
TEST(egress_dns, fuzz_parser) {
  std::mt19937 rng{12345};
  auto q = dns::make_query(77, "www.allowed.example.com", dns::type_a);
  auto base = answer_for(q, {"1.2.3.4", "5.6.7.8"}, 60);
  size_t parsed = 0;
  for (int i = 0; i < 200000; ++i) {
    std::vector<uint8_t> msg;
    if (i % 2 == 0) {
      msg.resize(rng() % 600);
      for (auto& b : msg)
        b = static_cast<uint8_t>(rng());
      if (msg.size() > 12 && i % 4 == 0) {
        msg[4] = 0;
        msg[5] = 1; // one question, more likely to get deep
        msg[6] = 0;
        msg[7] = static_cast<uint8_t>(rng() % 4);
      }
    } else {
      msg = base;
      for (int k = 0, n = 1 + static_cast<int>(rng() % 4); k < n; ++k)
        msg[rng() % msg.size()] = static_cast<uint8_t>(rng());
      if (rng() % 3 == 0)
        msg.resize(rng() % msg.size());
    }
    auto data = msg.empty() ? nullptr : msg.data();
    if (dns::parse_question(data, msg.size()))
      ++parsed;
    dns::extract_addresses(data, msg.size());
    dns::make_reply(data, msg.size(), dns::rcode_nxdomain);
    dns::make_truncated(data, msg.size());
    auto v = classify_query(data, msg.size(), allow_all);
    if (v.kind == dns_verdict::reply)
      EXPECT_GE(v.answer.size(), dns::header_size);
    answers(q.data(), q.size(), data, msg.size());
  }
  EXPECT_GT(parsed, 1000u);
}
