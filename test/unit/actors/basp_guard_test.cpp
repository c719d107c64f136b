// The BASP guard of the cluster port: what a hostile peer (authenticated or
// not) may send before CAF's BASP broker allocates anything for it. Frames
// are built with CAF's own serializer where they are honest, by hand where
// they are not.

#include "actors/basp_guard.hpp"

#include <caf/actor_system.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/io/basp/message_type.hpp>
#include <caf/make_message.hpp>

#include <gtest/gtest.h>

#include "actors/interfaces.hpp"
#include "actors/node.hpp"
#include "actors/system_config.hpp"

using namespace osb;
using caf::io::basp::message_type;

namespace {

class BaspGuard : public testing::Test {
protected:
  BaspGuard() : sys(cfg), policy(basp_policy::make(sys, 1 << 20)) {
    // nop
  }

  std::vector<char> header(message_type op, uint32_t payload_len,
                           uint64_t operation_data = 0,
                           caf::actor_id src = 0, caf::actor_id dst = 0) {
    caf::io::basp::header hdr{op, 0, payload_len, operation_data, src, dst};
    std::vector<char> buf;
    caf::binary_serializer sink{sys, buf};
    EXPECT_FALSE(sink(hdr));
    return buf;
  }

  /// Writes `xs` with CAF's serializer, as a node would.
  template <class... Ts>
  std::vector<char> payload(Ts&&... xs) {
    std::vector<char> buf;
    caf::binary_serializer sink{sys, buf};
    EXPECT_FALSE(sink(xs...));
    return buf;
  }

  /// A guard of an accepted connection past the client handshake.
  basp_guard handshaken() {
    basp_guard g{sys, policy, true};
    auto hs = payload(sys.node());
    EXPECT_EQ(g.on_header(header(message_type::client_handshake,
                                 static_cast<uint32_t>(hs.size()))),
              "");
    EXPECT_EQ(g.on_payload(hs), "");
    return g;
  }

  /// Checks a direct message with payload `p` on a handshaken connection.
  std::string direct(const std::vector<char>& p) {
    auto g = handshaken();
    auto why = g.on_header(header(message_type::direct_message,
                                  static_cast<uint32_t>(p.size()), 0, 1, 2));
    if (!why.empty())
      return why;
    return g.on_payload(p);
  }

  system_config cfg;
  caf::actor_system sys;
  std::shared_ptr<const basp_policy> policy;
};

} // namespace

TEST_F(BaspGuard, HeaderAnnouncingMoreThanTheBoundIsRefused) {
  basp_guard g{sys, policy, true};
  // 838860800 bytes: one of the three headers that grew a node to 2.5 GB.
  auto why = g.on_header(header(message_type::client_handshake, 838860800));
  EXPECT_EQ(why, "client handshake of 838860800 bytes exceeds the bound of "
                 "1048576 bytes");
  basp_guard ok{sys, policy, true};
  EXPECT_EQ(ok.on_header(header(message_type::client_handshake, 1 << 20)), "");
  EXPECT_TRUE(ok.awaiting_payload());
}

TEST_F(BaspGuard, TheHandshakeComesFirst) {
  basp_guard accepted{sys, policy, true};
  EXPECT_EQ(accepted.on_header(
              header(message_type::direct_message, 10, 0, 1, 2)),
            "direct message before the client handshake");
  basp_guard connected{sys, policy, false};
  EXPECT_EQ(connected.on_header(header(message_type::client_handshake, 10)),
            "client handshake before the server handshake");
  basp_guard garbage{sys, policy, true};
  EXPECT_EQ(garbage.on_header(std::vector<char>(32, '\x7f')),
            "malformed BASP header");
}

TEST_F(BaspGuard, MessagesOfTheClusterProtocolPass) {
  node_info info{"n1", cluster_protocol_version, "10.0.0.1:7000", 0, "inc"};
  sandbox_view v;
  v.id = "sbx";
  v.metadata = {{"team", "infra"}};
  std::vector<caf::strong_actor_ptr> stages;
  EXPECT_EQ(direct(payload(stages, caf::make_message(atom::join_v, info,
                                                     sandbox_views{v, v}))),
            "");
  // Errors travel as replies.
  EXPECT_EQ(direct(payload(stages, caf::make_message(caf::make_error(
                                     caf::sec::request_timeout)))),
            "");
}

TEST_F(BaspGuard, LengthPrefixLargerThanTheMessageIsRefused) {
  // A vector of strings announcing 2^32 - 1 elements in a 30-byte message;
  // CAF would reserve nothing for strings but resizes byte vectors to the
  // prefix before reading them.
  auto p = payload(std::vector<caf::strong_actor_ptr>{}, uint16_t{0},
                   std::string{"@<>+@strvec"});
  for (auto b : {0xff, 0xff, 0xff, 0xff, 0x0f})
    p.push_back(static_cast<char>(b));
  EXPECT_EQ(direct(p), "direct message: a length prefix of 4294967295 "
                       "exceeds the 0 bytes left in the message");
}

TEST_F(BaspGuard, TypesTheClusterDoesNotUseAreRefused) {
  for (auto type : {"@charbuf", "@config_value", "@group", "@message"}) {
    auto p = payload(std::vector<caf::strong_actor_ptr>{}, uint16_t{0},
                     std::string{"@<>+@str+"} + type);
    EXPECT_EQ(direct(p), std::string{"direct message: a message carries the "
                                     "type '"}
                           + type + "', which the cluster protocol does not "
                                    "use")
      << type;
  }
}

TEST_F(BaspGuard, DeepNestingIsRefused) {
  // Errors carry a message as context, which may carry an error...
  auto err = caf::make_error(caf::sec::runtime_error, std::string{"x"});
  for (int i = 0; i < 40; ++i)
    err = caf::error{1, caf::atom("osb"), caf::make_message(err)};
  EXPECT_EQ(direct(payload(std::vector<caf::strong_actor_ptr>{},
                           caf::make_message(err))),
            "direct message: the message nests deeper than 32 levels");
}

TEST_F(BaspGuard, PolicyAdmitsOurTypesButNoStreams) {
  EXPECT_EQ(policy->types.count("osb::sandbox_view"), 1u);
  EXPECT_EQ(policy->types.count("std::vector<osb::sandbox_view>"), 1u);
  EXPECT_EQ(policy->types.count("osb::node_actor"), 1u);
  EXPECT_EQ(policy->types.count("stream<osb::sandbox_view>"), 0u);
  EXPECT_EQ(policy->types.count("@charbuf"), 0u);
}
