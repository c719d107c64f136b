#include "net/egress/api.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

using namespace osb::egress;

namespace {

// Records commits; can be told to fail.
class fake_store : public policy_store {
public:
  const policy& current() const override {
    return current_;
  }

  std::optional<std::string> commit(policy next) override {
    ++commits;
    if (fail)
      return std::string{"failed to apply nftables policy: boom"};
    current_ = std::move(next);
    return std::nullopt;
  }

  policy current_;
  int commits = 0;
  bool fail = false;
};

struct egress_policy_api : ::testing::Test {
  egress_policy_api() : api(make_options(), store) {
    store.current_ = *parse_policy(R"({"defaultAction":"deny","egress":[
      {"action":"allow","target":"pypi.org"}]})",
                                   nullptr);
  }

  static policy_api::options make_options() {
    policy_api::options opts;
    opts.token = "secret-token";
    opts.mode = enforcement::dns_nft;
    opts.max_rules = 3;
    return opts;
  }

  api_response call(std::string method, std::string target,
                    std::string body = {},
                    std::optional<std::string> auth = "secret-token") {
    api_request req;
    req.method = std::move(method);
    req.target = std::move(target);
    req.body = std::move(body);
    req.auth = std::move(auth);
    return api.handle(req);
  }

  static rapidjson::Document json(const api_response& res) {
    EXPECT_EQ(res.content_type, "application/json");
    EXPECT_FALSE(res.body.empty());
    EXPECT_EQ(res.body.back(), '\n');
    rapidjson::Document doc;
    doc.Parse(res.body.c_str());
    EXPECT_FALSE(doc.HasParseError()) << res.body;
    return doc;
  }

  fake_store store;
  policy_api api;
};

} // namespace

TEST_F(egress_policy_api, auth) {
  auto res = call("GET", "/policy", {}, std::nullopt);
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(res.body, "unauthorized\n");
  EXPECT_EQ(res.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(call("GET", "/policy", {}, "wrong").status, 401);
  EXPECT_EQ(call("GET", "/policy", {}, "secret-token-").status, 401);
  EXPECT_EQ(call("GET", "/policy", {}, "").status, 401);
  EXPECT_EQ(call("PATCH", "/policy", R"([{"action":"allow","target":"x"}])",
                 std::nullopt)
              .status,
            401);
  EXPECT_EQ(store.commits, 0);
  EXPECT_EQ(call("GET", "/policy").status, 200);
  // Health is unauthenticated.
  res = call("GET", "/healthz", {}, std::nullopt);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "ok");
}

TEST(egress_api, no_token_means_no_auth) {
  fake_store store;
  policy_api api{{}, store};
  api_request req;
  req.method = "GET";
  req.target = "/policy";
  EXPECT_EQ(api.handle(req).status, 200);
  EXPECT_TRUE(api.authorized(std::nullopt));
}

TEST_F(egress_policy_api, get_shape) {
  auto res = call("GET", "/policy?x=1");
  ASSERT_EQ(res.status, 200);
  auto doc = json(res);
  EXPECT_STREQ(doc["status"].GetString(), "ok");
  EXPECT_STREQ(doc["mode"].GetString(), "enforcing");
  EXPECT_STREQ(doc["enforcementMode"].GetString(), "dns+nft");
  ASSERT_TRUE(doc["policy"].IsObject());
  EXPECT_STREQ(doc["policy"]["defaultAction"].GetString(), "deny");
  ASSERT_TRUE(doc["policy"]["egress"].IsArray());
  EXPECT_STREQ(doc["policy"]["egress"][0]["target"].GetString(), "pypi.org");
  EXPECT_FALSE(doc.HasMember("reason"));
  // Deny-all shows an empty array, never null.
  store.current_ = policy{};
  doc = json(call("GET", "/policy"));
  ASSERT_TRUE(doc["policy"]["egress"].IsArray());
  EXPECT_EQ(doc["policy"]["egress"].Size(), 0u);
  EXPECT_STREQ(doc["mode"].GetString(), "deny_all");
}

TEST_F(egress_policy_api, post_replaces) {
  auto res = call("POST", "/policy",
                  R"({"defaultAction":"allow","egress":[
                    {"action":"deny","target":"bad.com"}]})");
  ASSERT_EQ(res.status, 200);
  auto doc = json(res);
  EXPECT_STREQ(doc["status"].GetString(), "ok");
  EXPECT_STREQ(doc["mode"].GetString(), "enforcing");
  EXPECT_STREQ(doc["enforcementMode"].GetString(), "dns+nft");
  EXPECT_FALSE(doc.HasMember("policy"));
  EXPECT_EQ(store.current_.default_action, action::allow);
  ASSERT_EQ(store.current_.egress.size(), 1u);
  // PUT is the same.
  EXPECT_EQ(call("PUT", "/policy", R"({"defaultAction":"allow"})").status, 200);
  EXPECT_STREQ(json(call("GET", "/policy"))["mode"].GetString(), "allow_all");
}

TEST_F(egress_policy_api, post_empty_resets_to_deny_all) {
  auto res = call("POST", "/policy", "  \n");
  ASSERT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "{\"status\":\"ok\",\"mode\":\"deny_all\",\"reason\":"
                      "\"policy reset to default deny-all\"}\n");
  EXPECT_TRUE(store.current_.egress.empty());
  EXPECT_EQ(store.current_.default_action, action::deny);
  // null and {} parse to deny-all too, with the normal reply.
  res = call("POST", "/policy", "null");
  EXPECT_STREQ(json(res)["mode"].GetString(), "deny_all");
}

TEST_F(egress_policy_api, post_invalid) {
  auto res = call("POST", "/policy", R"({"egress":[{"action":"x","target":"a"}]})");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(res.body.rfind("invalid policy: ", 0), 0u) << res.body;
  EXPECT_EQ(res.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(call("POST", "/policy", "{not json").status, 400);
  EXPECT_EQ(store.commits, 0);
  EXPECT_EQ(store.current_.egress.size(), 1u);
}

TEST_F(egress_policy_api, rule_limit) {
  auto res = call("POST", "/policy", R"({"egress":[
    {"action":"allow","target":"a"},{"action":"allow","target":"b"},
    {"action":"allow","target":"c"},{"action":"allow","target":"d"}]})");
  EXPECT_EQ(res.status, 413);
  EXPECT_EQ(res.body, "egress rule total count 4 exceeds limit 3\n");
  res = call("PATCH", "/policy", R"([
    {"action":"allow","target":"a"},{"action":"allow","target":"b"},
    {"action":"allow","target":"c"}])");
  EXPECT_EQ(res.status, 413);
  EXPECT_EQ(store.commits, 0);
}

TEST_F(egress_policy_api, patch_merges) {
  auto res = call("PATCH", "/policy", R"([
    {"action":"allow","target":"www.github.com"},
    {"action":"deny","target":"pypi.org"}])");
  ASSERT_EQ(res.status, 200);
  auto doc = json(res);
  EXPECT_STREQ(doc["mode"].GetString(), "enforcing");
  EXPECT_STREQ(doc["enforcementMode"].GetString(), "dns+nft");
  auto& p = store.current_;
  ASSERT_EQ(p.egress.size(), 2u);
  EXPECT_EQ(p.evaluate("pypi.org"), action::deny);
  EXPECT_EQ(p.evaluate("www.github.com"), action::allow);
  EXPECT_EQ(p.default_action, action::deny);
}

TEST_F(egress_policy_api, patch_errors) {
  EXPECT_EQ(call("PATCH", "/policy", "").body, "empty body\n");
  auto res = call("PATCH", "/policy", "[]");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(res.body, "invalid patch rules: empty array\n");
  res = call("PATCH", "/policy", R"({"action":"allow","target":"a"})");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(res.body.rfind("invalid patch rules: ", 0), 0u);
  res = call("PATCH", "/policy", R"([{"action":"allow","target":""}])");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(store.commits, 0);
}

TEST_F(egress_policy_api, delete_removes_targets) {
  call("PATCH", "/policy", R"([{"action":"allow","target":"*.b.com"}])");
  auto res = call("DELETE", "/policy", R"(["PYPI.ORG","unknown.org"])");
  ASSERT_EQ(res.status, 200);
  auto doc = json(res);
  EXPECT_FALSE(doc.HasMember("reason"));
  ASSERT_EQ(store.current_.egress.size(), 1u);
  EXPECT_EQ(store.current_.egress[0].target, "*.b.com");
  res = call("DELETE", "/policy", R"(["nothing.here"])");
  ASSERT_EQ(res.status, 200);
  doc = json(res);
  EXPECT_STREQ(doc["reason"].GetString(), "no matching targets found");
  EXPECT_STREQ(doc["status"].GetString(), "ok");
  EXPECT_STREQ(doc["enforcementMode"].GetString(), "dns+nft");
  res = call("DELETE", "/policy", R"(["*.b.com"])");
  EXPECT_STREQ(json(res)["mode"].GetString(), "deny_all");
}

TEST_F(egress_policy_api, delete_errors) {
  EXPECT_EQ(call("DELETE", "/policy", "").body, "empty body\n");
  EXPECT_EQ(call("DELETE", "/policy", "[]").body,
            "invalid delete targets: empty array\n");
  auto res = call("DELETE", "/policy", R"([1,2])");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(res.body.rfind("invalid delete targets: ", 0), 0u);
}

TEST_F(egress_policy_api, commit_failure_is_500_and_keeps_policy) {
  store.fail = true;
  auto res = call("POST", "/policy", R"({"defaultAction":"allow"})");
  EXPECT_EQ(res.status, 500);
  EXPECT_EQ(res.body, "failed to apply nftables policy: boom\n");
  EXPECT_EQ(store.current_.default_action, action::deny);
  EXPECT_EQ(call("PATCH", "/policy", R"([{"action":"allow","target":"a"}])")
              .status,
            500);
}

TEST_F(egress_policy_api, other_routes) {
  auto res = call("HEAD", "/policy");
  EXPECT_EQ(res.status, 405);
  EXPECT_EQ(res.allow, "GET, POST, PUT, PATCH, DELETE");
  EXPECT_EQ(call("GET", "/nope").status, 404);
  EXPECT_EQ(call("GET", "/policy/").status, 404);
  EXPECT_EQ(call("GET", "/credential-vault", {}, std::nullopt).status, 401);
  EXPECT_EQ(call("GET", "/credential-vault").status, 404);
  EXPECT_EQ(call("POST", "/credential-vault", "{}").status, 412);
  EXPECT_EQ(call("GET", "/credential-vault/_active").status, 403);
}
