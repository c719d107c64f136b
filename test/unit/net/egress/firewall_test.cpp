#include "net/egress/config.hpp"
#include "net/egress/firewall.hpp"

#include <gtest/gtest.h>

#include <map>

using namespace osb::egress;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

policy parse(std::string_view json) {
  std::string error;
  auto p = parse_policy(json, &error);
  EXPECT_TRUE(p) << error;
  return *p;
}

dns::answer_address addr(const char* ip, uint32_t ttl) {
  return {*parse_ip(ip), ttl};
}

// Records what the tracker pushes to the kernel.
struct fake_sink {
  std::set<std::string> in_kernel;
  int calls = 0;
  bool fail = false;

  learned_addresses::sink_fn fn() {
    return [this](bool add, bool, const std::vector<ip_address>& xs) {
      ++calls;
      if (fail)
        return false;
      for (auto& x : xs)
        if (add)
          in_kernel.insert(to_string(x));
        else
          in_kernel.erase(to_string(x));
      return true;
    };
  }
};

} // namespace

TEST(egress_firewall, dns_mode_only_redirects) {
  ruleset_options opts;
  opts.mode = enforcement::dns;
  opts.mark = 0xabc;
  auto s = render_ruleset(opts, policy{}, true);
  EXPECT_TRUE(contains(s, "delete table inet opensandbox\n"));
  EXPECT_TRUE(contains(s, "dns_redirect meta mark 0x00000abc return\n"));
  EXPECT_TRUE(contains(s, "udp dport 53 redirect to :53\n"));
  EXPECT_TRUE(contains(s, "tcp dport 53 redirect to :53\n"));
  EXPECT_FALSE(contains(s, "egress"));
  EXPECT_FALSE(contains(s, "set "));
}

TEST(egress_firewall, nft_mode_default_deny) {
  ruleset_options opts;
  opts.mode = enforcement::dns_nft;
  opts.mark = 7;
  opts.dns_port = 5353;
  opts.upstreams = {*parse_upstream("10.0.0.2"), *parse_upstream("[fd00::1]:54")};
  auto p = parse(R"({"defaultAction":"deny","egress":[
    {"action":"allow","target":"pypi.org"},
    {"action":"allow","target":"192.168.1.7/16"},
    {"action":"allow","target":"1.1.1.1"},
    {"action":"deny","target":"9.9.9.9"},
    {"action":"deny","target":"2001:db8::/48"}]})");
  auto s = render_ruleset(opts, p, false);
  EXPECT_FALSE(contains(s, "delete table"));
  EXPECT_TRUE(contains(s, "redirect to :5353\n"));
  EXPECT_TRUE(contains(s, "policy drop;"));
  EXPECT_TRUE(contains(s, "add element inet opensandbox allow_v4 { 1.1.1.1, "
                          "192.168.0.0/16 }\n"));
  EXPECT_TRUE(contains(s, "add element inet opensandbox deny_v4 { 9.9.9.9 }\n"));
  EXPECT_TRUE(contains(s, "add element inet opensandbox deny_v6 "
                          "{ 2001:db8::/48 }\n"));
  EXPECT_TRUE(contains(s, "meta mark 0x00000007 ip daddr 10.0.0.2 udp dport "
                          "53 accept\n"));
  EXPECT_TRUE(contains(s, "meta mark 0x00000007 ip6 daddr fd00::1 tcp dport "
                          "54 accept\n"));
  EXPECT_TRUE(contains(s, "egress ct state established,related accept\n"));
  EXPECT_TRUE(contains(s, "egress ip daddr @dyn_allow_v4 accept\n"));
  // Learned sets are declared, never flushed: they survive policy changes.
  EXPECT_TRUE(contains(s, "add set inet opensandbox dyn_allow_v4"));
  EXPECT_FALSE(contains(s, "flush set inet opensandbox dyn_allow"));
  // Deny sets are checked before any allow set.
  EXPECT_LT(s.find("@deny_v4 drop"), s.find("@dyn_allow_v4 accept"));
  EXPECT_LT(s.find("@deny_v4 drop"), s.find("@allow_v4 accept"));
  EXPECT_LT(s.find("dport 853 drop"), s.find("@allow_v4 accept"));
}

TEST(egress_firewall, nft_mode_default_allow) {
  ruleset_options opts;
  opts.mode = enforcement::dns_nft;
  auto s = render_ruleset(opts, parse(R"({"defaultAction":"allow"})"), true);
  EXPECT_TRUE(contains(s, "policy accept; }\nflush chain inet opensandbox "
                          "egress"));
  EXPECT_FALSE(contains(s, "add element"));
}

TEST(egress_firewall, upstream_parsing) {
  EXPECT_EQ(to_string(*parse_upstream("1.2.3.4")), "1.2.3.4:53");
  EXPECT_EQ(to_string(*parse_upstream("1.2.3.4:5353")), "1.2.3.4:5353");
  EXPECT_EQ(to_string(*parse_upstream("::1")), "[::1]:53");
  EXPECT_EQ(to_string(*parse_upstream("[::1]:54")), "[::1]:54");
  EXPECT_FALSE(parse_upstream("dns.google"));
  EXPECT_FALSE(parse_upstream("1.2.3.4:0"));
  EXPECT_FALSE(parse_upstream("1.2.3.4:70000"));
  EXPECT_FALSE(parse_upstream("[::1"));
  EXPECT_FALSE(parse_upstream(""));
}

TEST(egress_firewall, learn_adds_once_and_extends) {
  fake_sink sink;
  learned_addresses learned{sink.fn()};
  auto t0 = learned_addresses::clock::now();
  learned.learn("a.test", {addr("1.1.1.1", 10), addr("2001:db8::1", 10)}, t0);
  EXPECT_EQ(sink.calls, 2); // one per family
  EXPECT_EQ(sink.in_kernel.size(), 2u);
  // Known address: no kernel call, later expiry.
  learned.learn("b.test", {addr("1.1.1.1", 300)}, t0 + 30s);
  EXPECT_EQ(sink.calls, 2);
  // Minimum hold is 60 s (ttl 10 + 60 = 70 s for the v6 one).
  EXPECT_EQ(learned.expire(t0 + 69s), 0u);
  EXPECT_EQ(learned.expire(t0 + 71s), 1u); // the v6 address
  EXPECT_EQ(sink.in_kernel.count("2001:db8::1"), 0u);
  // 1.1.1.1 was extended to t0 + 30 s + 360 s (ttl 300 + 60).
  EXPECT_EQ(learned.expire(t0 + 389s), 0u);
  EXPECT_EQ(learned.expire(t0 + 391s), 1u);
  EXPECT_TRUE(sink.in_kernel.empty());
}

TEST(egress_firewall, learn_clamps_hold_time) {
  fake_sink sink;
  learned_addresses learned{sink.fn()};
  auto t0 = learned_addresses::clock::now();
  learned.learn("a.test", {addr("1.1.1.1", 86400)}, t0);
  EXPECT_EQ(learned.expire(t0 + 359s), 0u);
  EXPECT_EQ(learned.expire(t0 + 361s), 1u);
}

TEST(egress_firewall, revoke_keeps_addresses_of_allowed_names) {
  fake_sink sink;
  learned_addresses learned{sink.fn()};
  auto now = learned_addresses::clock::now();
  learned.learn("allowed.test", {addr("10.0.0.1", 60)}, now);
  learned.learn("shared.test", {addr("10.0.0.1", 60)}, now);
  learned.learn("other.test", {addr("10.0.0.2", 60)}, now);
  auto p = parse(R"({"defaultAction":"deny","egress":[
    {"action":"allow","target":"shared.test"}]})");
  EXPECT_EQ(learned.revoke(p), 1u);
  EXPECT_TRUE(learned.contains(*parse_ip("10.0.0.1")));
  EXPECT_FALSE(learned.contains(*parse_ip("10.0.0.2")));
  EXPECT_EQ(sink.in_kernel, (std::set<std::string>{"10.0.0.1"}));
  EXPECT_EQ(learned.revoke(policy{}), 1u);
  EXPECT_TRUE(sink.in_kernel.empty());
}

TEST(egress_firewall, sink_failure_is_retried) {
  fake_sink sink;
  learned_addresses learned{sink.fn()};
  auto now = learned_addresses::clock::now();
  sink.fail = true;
  learned.learn("a.test", {addr("1.1.1.1", 60)}, now);
  EXPECT_EQ(learned.size(), 0u);
  sink.fail = false;
  learned.learn("a.test", {addr("1.1.1.1", 60)}, now);
  EXPECT_EQ(learned.size(), 1u);
  EXPECT_EQ(sink.in_kernel.size(), 1u);
  // A failed removal keeps the entry for the next sweep.
  sink.fail = true;
  EXPECT_EQ(learned.expire(now + 1h), 0u);
  sink.fail = false;
  EXPECT_EQ(learned.expire(now + 1h), 1u);
}

TEST(egress_firewall, duplicates_in_one_answer) {
  fake_sink sink;
  learned_addresses learned{sink.fn()};
  learned.learn("a.test", {addr("1.1.1.1", 60), addr("1.1.1.1", 60)},
                learned_addresses::clock::now());
  EXPECT_EQ(learned.size(), 1u);
}

TEST(egress_config, env_and_resolv_conf) {
  std::map<std::string, std::string> env = {
    {"OPENSANDBOX_EGRESS_RULES", R"({"defaultAction":"deny"})"},
    {"OPENSANDBOX_EGRESS_MODE", "DNS+NFT"},
    {"OPENSANDBOX_EGRESS_TOKEN", "tok"},
    {"OPENSANDBOX_EGRESS_HTTP_ADDR", ":9000"},
    {"OPENSANDBOX_EGRESS_MAX_RULES", "0"},
    {"OPENSANDBOX_EGRESS_MARK", "0x10"},
  };
  auto getenv = [&](const char* key) -> const char* {
    auto it = env.find(key);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto cfg = load_config(getenv, "# x\nnameserver 127.0.0.1\nnameserver "
                                 "10.0.0.53\nnameserver fe80::1%eth0\n"
                                 "nameserver 127.0.0.11\nsearch x\n");
  EXPECT_TRUE(cfg.warnings.empty());
  EXPECT_EQ(cfg.mode, enforcement::dns_nft);
  EXPECT_EQ(cfg.token, "tok");
  EXPECT_EQ(cfg.http_host, "0.0.0.0");
  EXPECT_EQ(cfg.http_port, 9000);
  EXPECT_EQ(cfg.max_rules, 0u);
  EXPECT_EQ(cfg.mark, 0x10u);
  // Non-loopback first; the proxy's own address is never an upstream.
  ASSERT_EQ(cfg.upstreams.size(), 3u);
  EXPECT_EQ(to_string(cfg.upstreams[0]), "10.0.0.53:53");
  EXPECT_EQ(to_string(cfg.upstreams[1]), "[fe80::1]:53");
  EXPECT_EQ(to_string(cfg.upstreams[2]), "127.0.0.11:53");
  // The env override wins over resolv.conf.
  env["OPENSANDBOX_EGRESS_UPSTREAM_DNS"] = "172.17.0.1:5300, bad, 8.8.4.4";
  env["OPENSANDBOX_EGRESS_MODE"] = "weird";
  env.erase("OPENSANDBOX_EGRESS_MARK");
  cfg = load_config(getenv, "nameserver 10.0.0.53\n");
  ASSERT_EQ(cfg.upstreams.size(), 2u);
  EXPECT_EQ(to_string(cfg.upstreams[0]), "172.17.0.1:5300");
  EXPECT_EQ(cfg.mode, enforcement::dns);
  EXPECT_EQ(cfg.warnings.size(), 2u);
  EXPECT_GT(cfg.mark, 1u); // random
  // Nothing at all: 8.8.8.8.
  env.clear();
  cfg = load_config(getenv, "");
  ASSERT_EQ(cfg.upstreams.size(), 1u);
  EXPECT_EQ(to_string(cfg.upstreams[0]), "8.8.8.8:53");
  EXPECT_EQ(cfg.http_port, 18080);
  EXPECT_EQ(cfg.dns_port, 53);
}
