#include "net/egress/policy.hpp"

#include <gtest/gtest.h>

using namespace osb::egress;

namespace {

policy parse(std::string_view json) {
  std::string error;
  auto p = parse_policy(json, &error);
  EXPECT_TRUE(p) << error;
  return p ? *p : policy{};
}

rule make(std::string_view act, std::string_view target) {
  auto r = make_rule(act, target, nullptr);
  EXPECT_TRUE(r);
  return *r;
}

} // namespace

TEST(egress_policy, exact_match) {
  auto p = parse(R"({"defaultAction":"deny","egress":[
    {"action":"allow","target":"pypi.org"}]})");
  EXPECT_EQ(p.evaluate("pypi.org"), action::allow);
  EXPECT_EQ(p.evaluate("files.pypi.org"), action::deny);
  EXPECT_EQ(p.evaluate("pypi.org.evil.com"), action::deny);
  EXPECT_EQ(p.evaluate("xpypi.org"), action::deny);
  EXPECT_EQ(p.evaluate("org"), action::deny);
}

TEST(egress_policy, wildcard_matches_strict_subdomains_only) {
  auto p = parse(R"({"defaultAction":"deny","egress":[
    {"action":"allow","target":"*.example.com"}]})");
  EXPECT_EQ(p.evaluate("a.example.com"), action::allow);
  EXPECT_EQ(p.evaluate("a.b.example.com"), action::allow);
  EXPECT_EQ(p.evaluate("example.com"), action::deny);
  EXPECT_EQ(p.evaluate("badexample.com"), action::deny);
  EXPECT_EQ(p.evaluate(".example.com"), action::deny);
  EXPECT_EQ(p.evaluate("example.com.evil"), action::deny);
}

TEST(egress_policy, case_insensitive_and_trailing_dot) {
  auto p = parse(R"({"defaultAction":"deny","egress":[
    {"action":"allow","target":" PyPI.Org. "},
    {"action":"allow","target":"*.GitHub.COM"}]})");
  EXPECT_EQ(p.evaluate("pypi.org"), action::allow);
  EXPECT_EQ(p.evaluate("PYPI.ORG."), action::allow);
  EXPECT_EQ(p.evaluate("API.github.com."), action::allow);
  // The target is shown as given (trimmed), the match ignores case.
  EXPECT_EQ(p.egress[0].target, "PyPI.Org.");
  EXPECT_EQ(p.egress[0].pattern, "pypi.org");
}

TEST(egress_policy, first_match_wins) {
  auto p = parse(R"({"defaultAction":"allow","egress":[
    {"action":"allow","target":"ok.example.com"},
    {"action":"deny","target":"*.example.com"},
    {"action":"allow","target":"bad.example.com"}]})");
  EXPECT_EQ(p.evaluate("ok.example.com"), action::allow);
  EXPECT_EQ(p.evaluate("bad.example.com"), action::deny);
  EXPECT_EQ(p.evaluate("other.example.com"), action::deny);
  EXPECT_EQ(p.evaluate("example.com"), action::allow);
  EXPECT_EQ(p.evaluate("elsewhere.org"), action::allow);
}

TEST(egress_policy, default_action) {
  EXPECT_EQ(parse(R"({"egress":[]})").default_action, action::deny);
  EXPECT_EQ(parse(R"({"defaultAction":"ALLOW"})").default_action,
            action::allow);
  EXPECT_EQ(parse(R"({"defaultAction":" deny "})").default_action,
            action::deny);
  // Unknown defaults fail closed instead of stopping the sidecar.
  EXPECT_EQ(parse(R"({"defaultAction":"block"})").default_action,
            action::deny);
  EXPECT_EQ(parse(R"({"defaultAction":null,"egress":null})").default_action,
            action::deny);
}

TEST(egress_policy, empty_documents_are_deny_all) {
  for (auto text : {"", "  ", "null", "{}"}) {
    auto p = parse(text);
    EXPECT_EQ(p.default_action, action::deny) << text;
    EXPECT_TRUE(p.egress.empty()) << text;
    EXPECT_EQ(mode_of(p), "deny_all");
  }
}

TEST(egress_policy, rule_validation) {
  std::string error;
  EXPECT_FALSE(parse_policy(R"({"egress":[{"action":"maybe","target":"a"}]})",
                            &error));
  EXPECT_NE(error.find("unsupported action"), std::string::npos) << error;
  EXPECT_FALSE(parse_policy(R"({"egress":[{"action":"allow","target":" "}]})",
                            &error));
  EXPECT_NE(error.find("cannot be empty"), std::string::npos) << error;
  EXPECT_FALSE(parse_policy(R"({"egress":[{"action":"allow"}]})", &error));
  EXPECT_FALSE(parse_policy(R"({"egress":"pypi.org"})", &error));
  EXPECT_FALSE(parse_policy(R"({"egress":[1]})", &error));
  EXPECT_FALSE(parse_policy(R"({"egress":[{"action":1,"target":"a"}]})",
                            &error));
  EXPECT_FALSE(parse_policy(R"([])", &error));
  EXPECT_FALSE(parse_policy(R"({"egress":[]} trailing)", &error));
  EXPECT_FALSE(parse_policy(R"({"egress":[)", &error));
  // A missing action means deny; keys match case-insensitively; unknown
  // keys are ignored.
  auto p = parse(R"({"DefaultAction":"allow","Egress":[{"target":"a.com",
    "comment":"x"}],"extra":1})");
  EXPECT_EQ(p.default_action, action::allow);
  ASSERT_EQ(p.egress.size(), 1u);
  EXPECT_EQ(p.egress[0].act, action::deny);
}

TEST(egress_policy, ip_and_cidr_targets) {
  auto p = parse(R"({"egress":[
    {"action":"allow","target":"10.1.2.3"},
    {"action":"allow","target":"10.1.2.3/8"},
    {"action":"deny","target":"2001:db8::1/32"},
    {"action":"allow","target":"10.0.0.0/33"}]})");
  ASSERT_EQ(p.egress.size(), 4u);
  EXPECT_EQ(p.egress[0].kind, target_kind::ip);
  EXPECT_EQ(p.egress[0].pattern, "10.1.2.3");
  EXPECT_EQ(p.egress[1].kind, target_kind::cidr);
  EXPECT_EQ(p.egress[1].pattern, "10.0.0.0/8");
  EXPECT_EQ(p.egress[2].kind, target_kind::cidr);
  EXPECT_EQ(p.egress[2].pattern, "2001:db8::/32");
  EXPECT_TRUE(p.egress[2].address.v6);
  // Not a valid prefix: treated as a (never matching) domain.
  EXPECT_EQ(p.egress[3].kind, target_kind::domain);
  // IP rules never match names.
  EXPECT_EQ(p.evaluate("10.1.2.3"), action::deny);
}

TEST(egress_policy, mode) {
  EXPECT_EQ(mode_of(parse(R"({"defaultAction":"allow"})")), "allow_all");
  EXPECT_EQ(mode_of(parse(R"({"defaultAction":"deny"})")), "deny_all");
  EXPECT_EQ(mode_of(parse(R"({"egress":[{"action":"allow","target":"a"}]})")),
            "enforcing");
}

TEST(egress_policy, json_round_trip_never_null) {
  EXPECT_EQ(to_json(policy{}), R"({"egress":[],"defaultAction":"deny"})");
  auto p = parse(R"({"defaultAction":"allow","egress":[
    {"action":"DENY","target":"Bad.com"}]})");
  EXPECT_EQ(to_json(p),
            R"({"egress":[{"action":"deny","target":"Bad.com"}],)"
            R"("defaultAction":"allow"})");
  auto again = parse(to_json(p));
  EXPECT_EQ(to_json(again), to_json(p));
}

TEST(egress_policy, patch_merges_incoming_first) {
  auto base = parse(R"({"defaultAction":"deny","egress":[
    {"action":"allow","target":"pypi.org"},
    {"action":"allow","target":"keep.org"}]})");
  std::string error;
  auto incoming = parse_rules(R"([
    {"action":"allow","target":"www.github.com"},
    {"action":"deny","target":"PYPI.org"},
    {"action":"allow","target":"www.github.com"},
    {"action":"deny","target":"www.GitHub.com"}])",
                              &error);
  ASSERT_TRUE(incoming) << error;
  auto merged = patch_policy(base, *incoming);
  EXPECT_EQ(merged.default_action, action::deny);
  ASSERT_EQ(merged.egress.size(), 3u);
  EXPECT_EQ(merged.egress[0].target, "www.github.com");
  EXPECT_EQ(merged.egress[0].act, action::allow);
  EXPECT_EQ(merged.egress[1].target, "PYPI.org");
  EXPECT_EQ(merged.egress[1].act, action::deny);
  EXPECT_EQ(merged.egress[2].target, "keep.org");
  EXPECT_EQ(merged.evaluate("pypi.org"), action::deny);
  EXPECT_EQ(merged.evaluate("www.github.com"), action::allow);
}

TEST(egress_policy, remove_targets) {
  auto p = parse(R"({"egress":[
    {"action":"allow","target":"a.com"},
    {"action":"allow","target":"*.B.com"},
    {"action":"deny","target":"c.com"}]})");
  EXPECT_EQ(remove_targets(p, {"nope.com"}), 0u);
  EXPECT_EQ(remove_targets(p, {" A.COM ", "*.b.com", "zzz"}), 2u);
  ASSERT_EQ(p.egress.size(), 1u);
  EXPECT_EQ(p.egress[0].target, "c.com");
}

TEST(egress_policy, parse_rule_and_target_arrays) {
  std::string error;
  EXPECT_FALSE(parse_rules(R"({"action":"allow"})", &error));
  EXPECT_FALSE(parse_rules(R"([{"action":"allow","target":""}])", &error));
  auto empty = parse_rules("[]", &error);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  auto targets = parse_targets(R"(["a.com","*.b.com"])", &error);
  ASSERT_TRUE(targets);
  EXPECT_EQ(targets->size(), 2u);
  EXPECT_FALSE(parse_targets(R"(["a.com",1])", &error));
  EXPECT_FALSE(parse_targets(R"("a.com")", &error));
}

TEST(egress_policy, always_rules_come_first) {
  auto user = parse(R"({"defaultAction":"deny","egress":[
    {"action":"allow","target":"*.corp.com"},
    {"action":"deny","target":"metrics.io"}]})");
  auto deny = parse_always_rules("# comment\n\n secret.corp.com # x\n",
                                 action::deny);
  auto allow = parse_always_rules("metrics.io\n", action::allow);
  ASSERT_EQ(deny.size(), 1u);
  auto eff = effective_policy(user, deny, allow);
  EXPECT_EQ(eff.evaluate("secret.corp.com"), action::deny);
  EXPECT_EQ(eff.evaluate("www.corp.com"), action::allow);
  EXPECT_EQ(eff.evaluate("metrics.io"), action::allow);
  EXPECT_EQ(eff.egress.size(), 4u);
}

TEST(egress_policy, ip_parsing) {
  EXPECT_TRUE(parse_ip("1.2.3.4"));
  EXPECT_TRUE(parse_ip("::1"));
  EXPECT_FALSE(parse_ip("1.2.3"));
  EXPECT_FALSE(parse_ip("example.com"));
  EXPECT_FALSE(parse_ip(""));
  EXPECT_EQ(to_string(*parse_ip("2001:DB8::1")), "2001:db8::1");
  EXPECT_LT(*parse_ip("9.9.9.9"), *parse_ip("::1"));
}
