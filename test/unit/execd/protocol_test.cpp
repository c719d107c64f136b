// The wire pieces below /code and /pty: digests, ZMTP framing, Jupyter
// message signing, kernelspecs, the new stream events and WebSocket frames.

#include "execd/code.hpp"
#include "execd/digest.hpp"
#include "execd/kernel.hpp"
#include "execd/pty.hpp"
#include "execd/stream.hpp"
#include "execd/websocket.hpp"
#include "execd/zmtp.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

namespace osb::execd {

TEST(ExecdDigest, KnownVectors) {
  sha256 s;
  s.update("abc");
  auto d = s.finish();
  EXPECT_EQ(to_hex(d.data(), d.size()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Fed in pieces across the 64-byte block boundary.
  std::string msg(1000, 'a');
  sha256 whole, pieces;
  whole.update(msg);
  for (size_t i = 0; i < msg.size(); i += 7)
    pieces.update(std::string_view{msg}.substr(i, 7));
  EXPECT_EQ(whole.finish(), pieces.finish());
  // RFC 4231 test case 2.
  EXPECT_EQ(hmac_sha256{"Jefe"}.hex("what do ya want ", "for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  auto h = sha1("abc");
  EXPECT_EQ(to_hex(h.data(), h.size()),
            "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(base64_encode("ab"), "YWI=");
  EXPECT_EQ(base64_encode("abc"), "YWJj");
  EXPECT_EQ(base64_encode("a"), "YQ==");
  // RFC 6455 §1.3.
  EXPECT_EQ(ws::accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(ExecdZmtp, FramesRoundTripInAnyPieces) {
  std::string wire;
  std::string big(300, 'b');
  zmtp_append_frame(wire, "a", true);
  zmtp_append_frame(wire, big, false);
  zmtp_append_frame(wire, "\x05READY", false, true);
  EXPECT_EQ(wire.substr(0, 3), std::string("\x01\x01" "a", 3));
  // 300 bytes need the long form: flags 0x02 and 8 length bytes.
  EXPECT_EQ(static_cast<uint8_t>(wire[3]), 0x02);
  zmtp_parser p;
  std::vector<std::string> parts;
  for (char c : wire) {
    p.feed(std::string_view{&c, 1});
    auto r = p.next(parts);
    if (r == zmtp_parser::result::message) {
      ASSERT_EQ(parts.size(), 2u);
      EXPECT_EQ(parts[0], "a");
      EXPECT_EQ(parts[1], big);
    } else if (r == zmtp_parser::result::command) {
      EXPECT_EQ(parts[0], "\x05READY");
    } else {
      ASSERT_EQ(r, zmtp_parser::result::incomplete);
    }
  }
  EXPECT_EQ(p.buffered(), 0u);
}

TEST(ExecdZmtp, OversizedAndMalformedFramesFail) {
  zmtp_parser small{16};
  std::string wire;
  zmtp_append_frame(wire, std::string(17, 'x'), false);
  small.feed(wire);
  std::vector<std::string> parts;
  EXPECT_EQ(small.next(parts), zmtp_parser::result::error);
  zmtp_parser bad;
  bad.feed(std::string("\x40\x01x", 3)); // reserved flag bits
  EXPECT_EQ(bad.next(parts), zmtp_parser::result::error);
}

TEST(ExecdZmtp, GreetingAndReady) {
  auto g = zmtp_greeting();
  ASSERT_EQ(g.size(), 64u);
  EXPECT_EQ(static_cast<uint8_t>(g[0]), 0xff);
  EXPECT_EQ(g[9], 0x7f);
  EXPECT_EQ(g[10], 3);
  EXPECT_EQ(g.substr(12, 4), "NULL");
  auto r = zmtp_ready("DEALER");
  zmtp_parser p;
  p.feed(r);
  std::vector<std::string> parts;
  ASSERT_EQ(p.next(parts), zmtp_parser::result::command);
  EXPECT_EQ(parts[0], std::string("\x05READY\x0bSocket-Type\0\0\0\x06" "DEALER",
                                  6 + 12 + 4 + 6));
}

TEST(ExecdKernelCodec, SignsAndVerifies) {
  kernel_codec a{"secret", "s1"};
  auto frames = a.encode("execute_request", "m1", R"({"code":"1+1"})");
  ASSERT_EQ(frames.size(), 6u);
  EXPECT_EQ(frames[0], "<IDS|MSG>");
  EXPECT_EQ(frames[1], hmac_sha256{"secret"}.hex(frames[2], frames[3],
                                                 frames[4], frames[5]));
  // A reply as a kernel sends it: routing identity, then the message.
  std::vector<std::string> reply{"ident", "<IDS|MSG>"};
  std::string h
    = R"({"msg_id":"r1","msg_type":"execute_reply","session":"k","username":"k","date":"","version":"5.3"})";
  std::string parent = frames[2];
  std::string content = R"({"status":"ok","execution_count":3})";
  reply.push_back(hmac_sha256{"secret"}.hex(h, parent, "{}", content));
  for (auto& x : {h, parent, std::string{"{}"}, content})
    reply.push_back(x);
  kernel_message m;
  std::string err;
  auto copy = reply;
  ASSERT_TRUE(a.decode(copy, m, &err)) << err;
  EXPECT_EQ(m.msg_type, "execute_reply");
  EXPECT_EQ(m.msg_id, "r1");
  EXPECT_EQ(m.parent_id, "m1");
  EXPECT_EQ(m.content["execution_count"].GetInt(), 3);
  reply[2][0] = reply[2][0] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(a.decode(reply, m, &err));
  EXPECT_NE(err.find("signature"), std::string::npos);
  std::vector<std::string> short_msg{"<IDS|MSG>", "sig"};
  EXPECT_FALSE(a.decode(short_msg, m, &err));
}

TEST(ExecdKernelCodec, DecodingManyMessagesKeepsMemoryFlat) {
  // A run decodes every message into the same kernel_message: what one
  // message took must be released by the next (100 MB of output once grew
  // execd to 103 MiB).
  kernel_codec codec{"k", "s"};
  std::string h = R"({"msg_id":"x","msg_type":"stream"})";
  std::string content
    = R"({"name":"stdout","text":")" + std::string(64 * 1024, 'x') + "\"}";
  kernel_message m;
  std::string err;
  for (int i = 0; i < 100; ++i) {
    std::vector<std::string> parts{
      "<IDS|MSG>", hmac_sha256{"k"}.hex(h, "{}", "{}", content), h, "{}",
      "{}", content};
    ASSERT_TRUE(codec.decode(parts, m, &err)) << err;
  }
  EXPECT_LT(m.content.GetAllocator().Capacity(), 1024u * 1024u);
}

TEST(ExecdKernelSpec, ParseAndPick) {
  auto s = parse_kernel_spec(
    R"({"argv":["python3","-m","ipykernel_launcher","-f","{connection_file}"],)"
    R"("display_name":"Python 3","language":"Python","env":{"A":"1"},)"
    R"("interrupt_mode":"message"})",
    "python3", "/k/python3");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->language, "python");
  EXPECT_EQ(s->argv.size(), 5u);
  EXPECT_TRUE(s->interrupt_by_message);
  EXPECT_EQ(s->env.size(), 1u);
  EXPECT_FALSE(parse_kernel_spec(R"({"language":"x"})", "n", "/d"));
  EXPECT_FALSE(parse_kernel_spec(R"({"argv":[],"language":"x"})", "n", "/d"));
  EXPECT_FALSE(parse_kernel_spec("not json", "n", "/d"));
  std::vector<kernel_spec> specs(3);
  specs[0].name = "jslab";
  specs[0].language = "javascript";
  specs[1].name = "tslab";
  specs[1].language = "typescript";
  specs[2].name = "bash";
  specs[2].language = "bash";
  EXPECT_EQ(pick_kernel_spec(specs, "typescript")->name, "tslab");
  EXPECT_EQ(pick_kernel_spec(specs, "bash")->name, "bash");
  EXPECT_FALSE(pick_kernel_spec(specs, "python"));
}

TEST(ExecdKernelSpec, SearchPath) {
  env_list env{"JUPYTER_PATH=/a:/b/", "HOME=/root"};
  auto dirs = kernel_spec_dirs(env);
  ASSERT_GE(dirs.size(), 5u);
  EXPECT_EQ(dirs[0], "/a/kernels");
  EXPECT_EQ(dirs[1], "/b/kernels");
  EXPECT_EQ(dirs[2], "/root/.local/share/jupyter/kernels");
  EXPECT_EQ(dirs.back(), "/usr/share/jupyter/kernels");
}

TEST(ExecdStream, CodeEventsAreByteExact) {
  EXPECT_EQ(encode_count(3, 7),
            "{\"type\":\"execution_count\",\"execution_count\":3,"
            "\"timestamp\":7}\n\n");
  EXPECT_EQ(encode_status("error", 7),
            "{\"type\":\"status\",\"text\":\"error\",\"timestamp\":7}\n\n");
  EXPECT_EQ(encode_result(R"({"text":"4"})", 7),
            "{\"type\":\"result\",\"timestamp\":7,\"results\":{\"text\":\"4\"}}"
            "\n\n");
  rapidjson::Document d;
  d.Parse(
    R"({"text/plain":"4","image/png":"AAA","application/json":{"a":[1,2]}})");
  EXPECT_EQ(encode_mime_bundle(d),
            R"({"application/json":{"a":[1,2]},"image/png":"AAA","text":"4"})");
  rapidjson::Document empty;
  empty.Parse("[]");
  EXPECT_EQ(encode_mime_bundle(empty), "{}");
}

TEST(ExecdWebSocket, FramesBothWays) {
  std::string wire;
  ws::append_frame(wire, ws::op_text, "hello", true);
  std::string big(70000, 'z');
  ws::append_frame(wire, ws::op_binary, big, true);
  ws::frame_parser server{true, 1 << 20};
  server.feed(wire);
  ws::frame f;
  ASSERT_EQ(server.next(f), ws::frame_parser::result::frame);
  EXPECT_EQ(f.opcode, ws::op_text);
  EXPECT_EQ(f.payload, "hello");
  ASSERT_EQ(server.next(f), ws::frame_parser::result::frame);
  EXPECT_EQ(f.payload, big);
  // Server frames are unmasked; a server refuses them from a client.
  std::string unmasked;
  ws::append_frame(unmasked, ws::op_text, "x");
  ws::frame_parser strict{true, 1 << 20};
  strict.feed(unmasked);
  EXPECT_EQ(strict.next(f), ws::frame_parser::result::error);
  ws::frame_parser client{false, 1 << 20};
  client.feed(unmasked);
  ASSERT_EQ(client.next(f), ws::frame_parser::result::frame);
  EXPECT_EQ(f.payload, "x");
  ws::frame_parser tiny{true, 10};
  std::string eleven;
  ws::append_frame(eleven, ws::op_binary, std::string(11, 'a'), true);
  tiny.feed(eleven);
  EXPECT_EQ(tiny.next(f), ws::frame_parser::result::too_big);
  EXPECT_EQ(ws::close_payload(4001, "TAKEN_OVER"),
            std::string("\x0f\xa1TAKEN_OVER", 12));
}

TEST(ExecdPty, ReplayBufferKeepsTheLastBytesWithOffsets) {
  replay_buffer r{8};
  r.append("abcd");
  r.append("efghij");
  EXPECT_EQ(r.end(), 10u);
  uint64_t from = 0;
  EXPECT_EQ(r.since(0, &from), "cdefghij");
  EXPECT_EQ(from, 2u);
  EXPECT_EQ(r.since(7, &from), "hij");
  EXPECT_EQ(from, 7u);
  EXPECT_EQ(r.since(99, &from), "");
  EXPECT_EQ(from, 10u);
  r.append(std::string(20, 'x'));
  EXPECT_EQ(r.since(0, &from), std::string(8, 'x'));
  EXPECT_EQ(from, 22u);
}

} // namespace osb::execd
