// The cluster port against hostile peers, with real server processes on
// 127.0.0.1: TLS with mutual certificates (a peer without a certificate of
// the cluster's CA cannot join, on either side of the handshake), plain TCP
// only when configured, BASP headers announcing huge messages, a second
// process under a member's name, and a node restarted alone.

#include <gtest/gtest.h>

#include <thread>

#include "cluster_support.hpp"

using namespace std::chrono_literals;
using namespace osb::test;

namespace {

/// The `since` of member `name` as `n` shows it ("" if absent).
std::string since_of(server_process& n, const std::string& name) {
  auto doc = n.call("GET", "/v1/cluster/nodes").json();
  if (doc.IsObject() && doc.HasMember("nodes"))
    for (auto& m : doc["nodes"].GetArray())
      if (m["name"].GetString() == name && m.HasMember("since"))
        return m["since"].GetString();
  return {};
}

/// The incarnation `n` runs as.
std::string incarnation_of(server_process& n) {
  auto doc = n.call("GET", "/v1/cluster/nodes").json();
  if (doc.IsObject() && doc.HasMember("nodes"))
    for (auto& m : doc["nodes"].GetArray())
      if (std::string{m["state"].GetString()} == "self")
        return m["incarnation"].GetString();
  return {};
}

std::string create(server_process& n) {
  auto r = n.call("POST", "/v1/sandboxes",
                  R"({"image":{"uri":"opensandbox/busybox:latest"},)"
                  R"("entrypoint":["sleep","3600"],"resourceLimits":{}})");
  EXPECT_EQ(r.status, 202) << r.body;
  auto doc = r.json();
  return doc.IsObject() && doc.HasMember("id") ? doc["id"].GetString() : "";
}

size_t count(const std::string& text, const std::string& what) {
  size_t result = 0;
  for (auto i = text.find(what); i != std::string::npos;
       i = text.find(what, i + 1))
    ++result;
  return result;
}

} // namespace

TEST(ClusterTls, PeersNeedACertificateOfTheClustersCa) {
  auto& certs = test_certs::get();
  ASSERT_TRUE(certs.ok);
  auto run = random_suffix();
  auto p1 = free_port();
  auto p2 = free_port();
  // Stand-ins for peers that n1 dials: one with a certificate of another
  // CA (n1 must refuse it), one with a good one (the control).
  tls_server rogue{certs.dir + "/ca.pem", certs.other + "/rogue.pem",
                   certs.other + "/rogue.key"};
  tls_server honest{certs.dir + "/ca.pem", certs.dir + "/n3.pem",
                    certs.dir + "/n3.key"};
  server_process n1("", "it-" + run + "-n1",
                    listen_keys(p1, {p1, rogue.port, honest.port})
                      + tls_keys("n1"));
  server_process n2("", "it-" + run + "-n2",
                    listen_keys(p2, {p1}) + tls_keys("n2"));
  ASSERT_TRUE(n1.start()) << n1.read_log();
  ASSERT_TRUE(n2.start()) << n2.read_log();
  ASSERT_TRUE(eventually([&] { return has_member(n2, n1.node(), "up"); }, 10s))
    << n2.read_log();
  auto since = since_of(n2, n1.node());
  // Accept side: no certificate, or one of another CA, gets no BASP byte;
  // a good one gets the server handshake.
  for (auto [cert, key] :
       {std::pair<std::string, std::string>{"", ""},
        {certs.other + "/rogue.pem", certs.other + "/rogue.key"}}) {
    tls_client c{p1, certs.dir + "/ca.pem", cert, key};
    bool closed = false;
    EXPECT_EQ(c.receive(3s, closed), 0u) << cert;
    EXPECT_TRUE(closed) << cert;
  }
  {
    tls_client c{p1, certs.dir + "/ca.pem", certs.dir + "/n4.pem",
                 certs.dir + "/n4.key"};
    ASSERT_TRUE(c.connected);
    bool closed = false;
    EXPECT_GE(c.receive(1s, closed), 32u); // the BASP server handshake
  }
  // Connect side: n1 refuses the rogue's certificate with an alert and
  // talks BASP to the honest one.
  EXPECT_TRUE(eventually([&] { return rogue.failed > 0; }, 10s));
  EXPECT_EQ(rogue.succeeded, 0);
  EXPECT_NE(rogue.last_error().find("unknown ca"), std::string::npos)
    << rogue.last_error();
  EXPECT_TRUE(eventually([&] { return honest.bytes > 0; }, 10s));
  // A real node without a certificate (plain TCP) does not join either.
  server_process plain("", "it-" + run + "-plain",
                       listen_keys(free_port(), {p1}) + "plaintext = true\n");
  ASSERT_TRUE(plain.start()) << plain.read_log();
  std::this_thread::sleep_for(3s);
  auto members = n1.call("GET", "/v1/cluster/nodes");
  EXPECT_EQ(members.body.find(plain.node()), std::string::npos)
    << members.body;
  EXPECT_FALSE(has_member(plain, n1.node(), "up"));
  EXPECT_NE(n1.read_log().find("closed before a BASP handshake"),
            std::string::npos);
  // None of the refused handshakes cut the link between n1 and n2 (CAF
  // 0.17 left their OpenSSL errors to fail the next read of any link).
  EXPECT_TRUE(has_member(n2, n1.node(), "up"));
  EXPECT_EQ(since_of(n2, n1.node()), since);
  EXPECT_EQ(count(n2.read_log(), "lost peer"), 0u) << n2.read_log();
}

TEST(ClusterTls, PlainTcpOnlyWhenConfigured) {
  auto& certs = test_certs::get();
  ASSERT_TRUE(certs.ok);
  auto run = random_suffix();
  // A cluster port without TLS keys and without plaintext = true: no start.
  server_process bare("", "it-" + run + "-bare",
                      listen_keys(free_port(), {}));
  bare.spawn();
  EXPECT_EQ(bare.wait_exit(10s), 2);
  EXPECT_NE(bare.read_log().find("cluster.listen needs TLS between the "
                                 "nodes"),
            std::string::npos)
    << bare.read_log();
  // Unusable TLS files stop the start too (not the first connection).
  server_process wrong("", "it-" + run + "-wrong",
                       listen_keys(free_port(), {}) + "tls_ca_file = \""
                         + certs.dir + "/ca.pem\"\ntls_cert_file = \""
                         + certs.dir + "/n1.pem\"\ntls_key_file = \""
                         + certs.dir + "/n2.key\"\n");
  wrong.spawn();
  EXPECT_EQ(wrong.wait_exit(10s), 2);
  EXPECT_NE(wrong.read_log().find("key values mismatch"),
            std::string::npos)
    << wrong.read_log();
  server_process foreign("", "it-" + run + "-foreign",
                         listen_keys(free_port(), {})
                           + tls_keys("rogue", certs.other, certs.dir));
  foreign.spawn();
  EXPECT_EQ(foreign.wait_exit(10s), 2);
  EXPECT_NE(foreign.read_log().find("is not valid for the CA"),
            std::string::npos)
    << foreign.read_log();
  // Asked for, plain TCP works, with a warning.
  auto p1 = free_port();
  server_process a("", "it-" + run + "-a",
                   listen_keys(p1, {}) + "plaintext = true\n");
  server_process b("", "it-" + run + "-b",
                   listen_keys(free_port(), {p1}) + "plaintext = true\n");
  ASSERT_TRUE(a.start()) << a.read_log();
  ASSERT_TRUE(b.start()) << b.read_log();
  EXPECT_TRUE(eventually([&] { return has_member(a, b.node(), "up"); }, 10s));
  EXPECT_NE(a.read_log().find("speaks plain TCP without authentication"),
            std::string::npos);
}

TEST(ClusterAttack, OversizedHeadersNeitherGrowANodeNorCutItsLinks) {
  auto& certs = test_certs::get();
  ASSERT_TRUE(certs.ok);
  auto run = random_suffix();
  auto p1 = free_port();
  auto p2 = free_port();
  server_process n1("", "it-" + run + "-n1",
                    listen_keys(p1, {p1}) + tls_keys("n1"));
  server_process n2("", "it-" + run + "-n2",
                    listen_keys(p2, {p1}) + tls_keys("n2"));
  ASSERT_TRUE(n1.start()) << n1.read_log();
  ASSERT_TRUE(n2.start()) << n2.read_log();
  ASSERT_TRUE(eventually([&] { return has_member(n2, n1.node(), "up"); }, 10s));
  auto id = create(n1);
  ASSERT_EQ(n1.wait_state(id, "Running"), "Running");
  auto since = since_of(n2, n1.node());
  auto peak = proc_kb(n1.pid(), "VmHWM");
  ASSERT_GT(peak, 0);
  // 838860800 bytes each: three of these grew a node to 2.5 GB before.
  auto huge = basp_header(838860800);
  // Without a certificate the header never gets past TLS.
  for (int i = 0; i < 3; ++i) {
    int fd = tcp_connect(p1);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::send(fd, huge.data(), huge.size(), MSG_NOSIGNAL), 32);
    bool closed = false;
    EXPECT_EQ(drain_fd(fd, nullptr, 3s, closed), 0u);
    EXPECT_TRUE(closed);
    ::close(fd);
  }
  // A peer that did authenticate is cut off at the header.
  for (int i = 0; i < 3; ++i) {
    tls_client c{p1, certs.dir + "/ca.pem", certs.dir + "/n3.pem",
                 certs.dir + "/n3.key"};
    ASSERT_TRUE(c.connected);
    ASSERT_TRUE(c.send(huge));
    bool closed = false;
    c.receive(3s, closed);
    EXPECT_TRUE(closed);
  }
  // Under the bound (64 MiB), a header alone allocates nothing: the
  // payload is read as it comes.
  std::vector<std::unique_ptr<tls_client>> slow;
  for (int i = 0; i < 3; ++i) {
    slow.push_back(std::make_unique<tls_client>(
      p1, certs.dir + "/ca.pem", certs.dir + "/n3.pem",
      certs.dir + "/n3.key"));
    ASSERT_TRUE(slow.back()->send(basp_header(60u << 20)));
  }
  std::this_thread::sleep_for(1s);
  auto grown_mb = (proc_kb(n1.pid(), "VmHWM") - peak) / 1024;
  EXPECT_LT(grown_mb, 64) << "peak RSS grew by " << grown_mb << " MB";
  slow.clear();
  auto log = n1.read_log();
  EXPECT_EQ(count(log, "client handshake of 838860800 bytes exceeds the "
                       "bound of 67108864 bytes"),
            3u)
    << log;
  // The links never dropped and still carry requests.
  EXPECT_TRUE(has_member(n2, n1.node(), "up"));
  EXPECT_EQ(since_of(n2, n1.node()), since);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(n2.call("GET", "/v1/sandboxes/" + id).status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_EQ(n2.call("DELETE", "/v1/sandboxes/" + id).status, 204);
}

TEST(ClusterAttack, PlainTcpPortRefusesOversizedHeadersToo) {
  auto run = random_suffix();
  auto p1 = free_port();
  server_process n1("", "it-" + run + "-n1",
                    listen_keys(p1, {}) + "plaintext = true\n");
  server_process n2("", "it-" + run + "-n2",
                    listen_keys(free_port(), {p1}) + "plaintext = true\n");
  ASSERT_TRUE(n1.start()) << n1.read_log();
  ASSERT_TRUE(n2.start()) << n2.read_log();
  ASSERT_TRUE(eventually([&] { return has_member(n2, n1.node(), "up"); }, 10s));
  auto since = since_of(n2, n1.node());
  auto peak = proc_kb(n1.pid(), "VmHWM");
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) {
    int fd = tcp_connect(p1);
    ASSERT_GE(fd, 0);
    auto h = basp_header(838860800);
    ASSERT_EQ(::send(fd, h.data(), h.size(), MSG_NOSIGNAL), 32);
    fds.push_back(fd);
  }
  for (auto fd : fds) {
    bool closed = false;
    drain_fd(fd, nullptr, 3s, closed);
    EXPECT_TRUE(closed);
    ::close(fd);
  }
  EXPECT_LT((proc_kb(n1.pid(), "VmHWM") - peak) / 1024, 64);
  EXPECT_EQ(count(n1.read_log(), "exceeds the bound"), 3u);
  EXPECT_TRUE(has_member(n2, n1.node(), "up"));
  EXPECT_EQ(since_of(n2, n1.node()), since);
}

TEST(ClusterNames, SecondProcessUnderAMembersNameIsRefusedAndRemovesNothing) {
  auto& certs = test_certs::get();
  ASSERT_TRUE(certs.ok);
  auto run = random_suffix();
  auto p1 = free_port();
  auto p2 = free_port();
  auto name = "it-" + run + "-n1";
  server_process n1("", name, listen_keys(p1, {p1}) + tls_keys("n1"));
  server_process n2("", "it-" + run + "-n2",
                    listen_keys(p2, {p1}) + tls_keys("n2"));
  ASSERT_TRUE(n1.start()) << n1.read_log();
  ASSERT_TRUE(n2.start()) << n2.read_log();
  ASSERT_TRUE(eventually([&] { return has_member(n2, name, "up"); }, 10s));
  std::vector<std::string> ids{create(n1), create(n1)};
  for (auto& id : ids)
    ASSERT_EQ(n1.wait_state(id, "Running"), "Running");
  ASSERT_EQ(n1.num_containers(), 2);
  auto real = incarnation_of(n1);
  ASSERT_FALSE(real.empty());
  // The same name, a fresh store, a valid certificate of the cluster. (At
  // the end of the test it removes what is labelled with its name: by
  // then the sandboxes are deleted.)
  server_process impostor("", name,
                          listen_keys(free_port(), {p2}) + tls_keys("n3"),
                          "impostor");
  ASSERT_TRUE(impostor.start()) << impostor.read_log();
  EXPECT_TRUE(eventually(
    [&] {
      return impostor.read_log().find("is taken by a live member of the "
                                      "cluster")
             != std::string::npos;
    },
    10s))
    << impostor.read_log();
  // Its recovery saw the real node's containers and kept them.
  auto log = impostor.read_log();
  EXPECT_NE(log.find("kept 2 of other processes"), std::string::npos) << log;
  EXPECT_EQ(count(log, "supervisor keeps container"), 2u);
  EXPECT_EQ(n1.num_containers(), 2);
  auto members = n2.call("GET", "/v1/cluster/nodes").body;
  EXPECT_NE(members.find(real), std::string::npos) << members;
  for (auto& id : ids)
    EXPECT_EQ(n2.wait_state(id, "Running"), "Running");
  impostor.kill(SIGKILL);
  // Two processes never share one store.
  server_process twin("", name + "-twin");
  twin.use_config("[server]\nhost = \"127.0.0.1\"\nport = "
                  + std::to_string(free_port())
                  + "\napi_key = \"k\"\n[store]\npath = \"" + n1.store_path()
                  + "\"\n[cluster]\nnode_name = \"" + name + "\"\n");
  twin.spawn();
  EXPECT_EQ(twin.wait_exit(10s), 1);
  EXPECT_NE(twin.read_log().find("is in use by another process (pid "
                                 + std::to_string(n1.pid()) + ")"),
            std::string::npos)
    << twin.read_log();
  for (auto& id : ids)
    EXPECT_EQ(n2.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(n1.wait_containers(0), 0);
}

TEST(ClusterRestart, NodeAloneAnswers503UntilItJoinsOrGivesUp) {
  auto& certs = test_certs::get();
  ASSERT_TRUE(certs.ok);
  auto run = random_suffix();
  auto p1 = free_port();
  auto p2 = free_port();
  auto keys = [&](uint16_t self, const std::string& cert) {
    return listen_keys(self, {p1, p2}) + tls_keys(cert)
           + "seed_timeout_seconds = 3\n";
  };
  server_process n1("", "it-" + run + "-n1", keys(p1, "n1"));
  server_process n2("", "it-" + run + "-n2", keys(p2, "n2"));
  ASSERT_TRUE(n2.start()) << n2.read_log();
  ASSERT_TRUE(n1.start()) << n1.read_log();
  ASSERT_TRUE(eventually([&] { return has_member(n1, n2.node(), "up"); }, 10s));
  auto id = create(n2);
  ASSERT_EQ(n2.wait_state(id, "Running"), "Running");
  ASSERT_EQ(n2.num_containers(), 1);
  // Both go; n1 comes back alone.
  n2.kill(SIGKILL);
  n1.kill(SIGKILL);
  ASSERT_TRUE(n1.start()) << n1.read_log();
  auto started = std::chrono::steady_clock::now();
  auto get = n1.call("GET", "/v1/sandboxes/" + id);
  EXPECT_EQ(get.status, 503) << get.body;
  EXPECT_NE(get.body.find("cluster membership not complete"),
            std::string::npos)
    << get.body;
  EXPECT_NE(get.body.find("127.0.0.1:" + std::to_string(p2)),
            std::string::npos)
    << get.body;
  EXPECT_EQ(n1.call("DELETE", "/v1/sandboxes/" + id).status, 503);
  auto list = n1.call("GET", "/v1/sandboxes");
  EXPECT_EQ(list.status, 200);
  EXPECT_EQ(list.headers["opensandbox-list-partial"], "true");
  auto doc = list.json();
  EXPECT_TRUE(doc["partial"].GetBool());
  ASSERT_EQ(doc["missingPeers"].Size(), 1u);
  EXPECT_EQ(doc["missingPeers"][0].GetString(),
            "127.0.0.1:" + std::to_string(p2));
  // It gives up after cluster.seed_timeout_seconds: then it is a 404.
  EXPECT_TRUE(eventually(
    [&] { return n1.call("GET", "/v1/sandboxes/" + id).status == 404; }, 10s));
  auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_GE(waited, 2s);
  EXPECT_LT(waited, 6s);
  EXPECT_EQ(n1.call("GET", "/v1/sandboxes").headers.count(
              "opensandbox-list-partial"),
            0u);
  // Its peer returns: it joins and the sandbox is there again.
  ASSERT_TRUE(n2.start()) << n2.read_log();
  EXPECT_EQ(n1.wait_state(id, "Running"), "Running");
  EXPECT_EQ(n1.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(n2.wait_containers(0), 0);
}
