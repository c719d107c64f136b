// Claims of pool members in execd (execd/claim.hpp): the body, and the gate
// between the daemon and PID 1 (first claim, repeat, conflict, no waiter,
// daemon gone).

#include "execd/claim.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace osb::execd {
namespace {

TEST(ExecdClaim, ParsesEntrypointAndEnv) {
  std::string err;
  auto c = parse_claim(R"({"entrypoint":["sh","-c","x"],"env":{"A":"1"}})",
                       &err);
  ASSERT_TRUE(c) << err;
  EXPECT_EQ(c->entrypoint, (std::vector<std::string>{"sh", "-c", "x"}));
  EXPECT_EQ(c->env.at("A"), "1");
  c = parse_claim("{}", &err);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->entrypoint.empty());
  for (auto bad : {"[]", "nope", R"({"entrypoint":"sh"})",
                   R"({"entrypoint":[1]})", R"({"env":{"A":1}})",
                   R"({"env":{"A=B":"1"}})", R"({"env":[]})"})
    EXPECT_FALSE(parse_claim(bad, &err)) << bad;
}

TEST(ExecdClaim, ANonMemberRefusesClaims) {
  claim_gate gate;
  std::string err;
  EXPECT_EQ(gate.deliver("{}", &err), 404);
}

TEST(ExecdClaim, FirstClaimReachesTheWaiterRepeatsAreFineOthersConflict) {
  claim_gate gate;
  ASSERT_TRUE(gate.open());
  std::string err;
  std::string body = R"({"entrypoint":["run"],"env":{"OSB_CLAIM_TEST":"v"}})";
  EXPECT_EQ(gate.deliver("not json", &err), 400);
  EXPECT_EQ(gate.deliver(body, &err), 200) << err;
  // The daemon's own environment (what its commands start from) has it.
  ASSERT_NE(std::getenv("OSB_CLAIM_TEST"), nullptr);
  EXPECT_STREQ(std::getenv("OSB_CLAIM_TEST"), "v");
  EXPECT_EQ(gate.deliver(body, &err), 200);
  EXPECT_EQ(gate.deliver(R"({"entrypoint":["other"]})", &err), 409);
  // PID 1's side (here the same process): the claim is in the pipe.
  auto c = gate.wait();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->entrypoint, (std::vector<std::string>{"run"}));
  EXPECT_EQ(c->env.at("OSB_CLAIM_TEST"), "v");
  ::unsetenv("OSB_CLAIM_TEST");
}

TEST(ExecdClaim, WaiterSeesTheDaemonGo) {
  claim_gate gate;
  ASSERT_TRUE(gate.open());
  // wait() closes the write end: with no daemon holding it, EOF.
  EXPECT_FALSE(gate.wait());
}

} // namespace
} // namespace osb::execd
