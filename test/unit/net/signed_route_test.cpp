#include "net/signed_route.hpp"

#include <gtest/gtest.h>

using namespace osb;
using namespace osb::net;

TEST(SignedRoute, Base36FollowsOsep0011) {
  EXPECT_EQ(to_base36(0), "0");
  EXPECT_EQ(to_base36(35), "z");
  EXPECT_EQ(to_base36(2000000000), "x2qxvk");
  EXPECT_EQ(to_base36(UINT64_MAX), "3w5e11264sgsf");
  EXPECT_EQ(parse_base36("x2qxvk"), 2000000000u);
  EXPECT_EQ(parse_base36("3w5e11264sgsf"), UINT64_MAX);
  EXPECT_EQ(parse_base36("0"), 0u);
  for (auto bad : {"", "0x", "X2QXVK", "x2q-vk", "3w5e11264sgsg",
                   "10000000000000"})
    EXPECT_FALSE(parse_base36(bad).has_value()) << bad;
}

TEST(SignedRoute, SignatureMatchesTheReferenceAlgorithm) {
  // python3: sha256(BE32(len(s)) + s + BE32(len(c)) + c)[:8] + key id, with
  // s = b"secret-key", c = b"v1\nshort\nmy-sandbox\n8080\nx2qxvk\n".
  EXPECT_EQ(sign_route("secret-key", 'a', "my-sandbox", 8080, "x2qxvk"),
            "44615e95a");
}

TEST(SignedRoute, TokensSplitFromTheRight) {
  auto t = parse_route_token("a-b-c-8080-x2qxvk-44615e95a");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->sandbox_id, "a-b-c");
  EXPECT_EQ(t->port, 8080);
  EXPECT_EQ(t->expires_s, 2000000000u);
  EXPECT_EQ(t->signature, "44615e95a");
  for (auto bad : {"8080-x2qxvk-44615e95a", "a-08080-x2qxvk-44615e95a",
                   "a-65536-x2qxvk-44615e95a", "a-80-x2qxvk-44615e95",
                   "a-80-X2QXVK-44615e95a", "a-80-x2qxvk-4461Ge95a",
                   "a-80-x2qxvk-44615e95A", "a-80-x2qxvk"})
    EXPECT_FALSE(parse_route_token(bad).has_value()) << bad;
}

TEST(SignedRoute, MintedTokensVerifyUntilTheyExpire) {
  node_config::ingress_section::secure_access_section keys;
  keys.active_key = 'k';
  keys.keys = {{'j', "old"}, {'k', "new"}};
  auto token = mint_route_token(keys, "sbx-1", 44772, 2000);
  auto t = parse_route_token(token);
  ASSERT_TRUE(t) << token;
  EXPECT_EQ(t->signature.back(), 'k');
  EXPECT_EQ(verify_route_token(*t, keys, 1999), route_check::ok);
  EXPECT_EQ(verify_route_token(*t, keys, 2000), route_check::ok);
  EXPECT_EQ(verify_route_token(*t, keys, 2001), route_check::expired);
  // Another port, sandbox or expiry under the same signature fails.
  for (auto changed : {"sbx-1-8080-" + t->expires_b36 + "-" + t->signature,
                       "sbx-2-44772-" + t->expires_b36 + "-" + t->signature,
                       "sbx-1-44772-" + to_base36(3000) + "-" + t->signature})
    EXPECT_EQ(verify_route_token(*parse_route_token(changed), keys, 0),
              route_check::bad_signature)
      << changed;
  // A removed key no longer verifies.
  keys.keys = {{'j', "old"}};
  EXPECT_EQ(verify_route_token(*t, keys, 0), route_check::bad_signature);
}
