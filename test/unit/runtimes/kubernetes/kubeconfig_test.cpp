// Unit tests of the Kubernetes client's pure parts: kubeconfig parsing
// (YAML and JSON, inline data and files, errors), the in-cluster
// configuration, the server URL, query escaping and the token bucket.

#include "runtimes/kubernetes/kube_internal.hpp"

#include "core/base64.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

using namespace osb;
using namespace osb::runtimes::kubernetes;
using namespace std::chrono_literals;

namespace fs = std::filesystem;

namespace {

/// A scratch directory, removed at the end of the test.
struct scratch {
  scratch() {
    std::random_device rd;
    root = fs::temp_directory_path()
           / ("osb-kubeconfig-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(root);
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  std::string write(const std::string& name, const std::string& text) {
    auto p = root / name;
    std::ofstream{p} << text;
    return p.string();
  }
  fs::path root;
};

std::string b64(const std::string& x) {
  // Standard alphabet, as kubeconfigs carry it.
  auto s = base64url_encode(x);
  for (auto& c : s)
    c = c == '-' ? '+' : c == '_' ? '/' : c;
  return s;
}

const std::string two_contexts = R"(apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority-data: )" + b64("CA PEM")
                                 + R"(
- name: dev
  cluster:
    server: http://127.0.0.1:8080/
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    client-certificate-data: )" + b64("CERT PEM")
                                 + R"(
    client-key-data: )" + b64("KEY PEM")
                                 + R"(
- name: dev-user
  user:
    token: abc.def
contexts:
- name: prod
  context:
    cluster: prod
    user: admin
    namespace: sandboxes
- name: dev
  context:
    cluster: dev
    user: dev-user
current-context: prod
)";

} // namespace

TEST(Kubeconfig, CurrentContextWithInlineData) {
  auto ep = parse_kubeconfig(two_contexts, "/x/config", "");
  ASSERT_TRUE(ep) << ep.error().message;
  EXPECT_EQ(ep->server, "https://10.0.0.1:6443");
  EXPECT_EQ(ep->ca_pem, "CA PEM");
  EXPECT_EQ(ep->client_cert_pem, "CERT PEM");
  EXPECT_EQ(ep->client_key_pem, "KEY PEM");
  EXPECT_TRUE(ep->token.empty());
  EXPECT_FALSE(ep->insecure_skip_tls_verify);
  EXPECT_EQ(ep->default_namespace, "sandboxes");
}

TEST(Kubeconfig, NamedContextWithTokenAndInsecure) {
  auto ep = parse_kubeconfig(two_contexts, "/x/config", "dev");
  ASSERT_TRUE(ep) << ep.error().message;
  EXPECT_EQ(ep->server, "http://127.0.0.1:8080"); // trailing slash dropped
  EXPECT_TRUE(ep->insecure_skip_tls_verify);
  EXPECT_EQ(ep->token, "abc.def");
  EXPECT_TRUE(ep->ca_pem.empty());
  EXPECT_TRUE(ep->client_cert_pem.empty());
  EXPECT_TRUE(ep->default_namespace.empty());
}

TEST(Kubeconfig, FilePathsAreRelativeToTheKubeconfig) {
  scratch dir;
  dir.write("ca.crt", "CA FILE");
  fs::create_directories(dir.root / "pki");
  dir.write("pki/client.crt", "CERT FILE");
  auto key = dir.write("client.key", "KEY FILE");
  dir.write("token", "tok-from-file\n");
  auto path = dir.write("config", R"(clusters:
- name: c
  cluster: {server: "https://k8s.example:443", certificate-authority: ca.crt}
users:
- name: u
  user:
    client-certificate: pki/client.crt
    client-key: )" + key + R"(
    tokenFile: token
contexts:
- {name: ctx, context: {cluster: c, user: u, namespace: ns1}}
current-context: ctx
)");
  auto ep = load_kubeconfig(path);
  ASSERT_TRUE(ep) << ep.error().message;
  EXPECT_EQ(ep->ca_pem, "CA FILE");
  EXPECT_EQ(ep->client_cert_pem, "CERT FILE");
  EXPECT_EQ(ep->client_key_pem, "KEY FILE");
  EXPECT_EQ(ep->token, "tok-from-file");
  EXPECT_EQ(ep->token_file, (dir.root / "token").string());
  EXPECT_EQ(ep->default_namespace, "ns1");
}

TEST(Kubeconfig, JsonIsAccepted) {
  auto ep = parse_kubeconfig(
    R"({"clusters":[{"name":"c","cluster":{"server":"http://h:1"}}],
        "users":[{"name":"u","user":{"token":"t"}}],
        "contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}],
        "current-context":"x"})",
    "/k.json", "");
  ASSERT_TRUE(ep) << ep.error().message;
  EXPECT_EQ(ep->server, "http://h:1");
  EXPECT_EQ(ep->token, "t");
}

TEST(Kubeconfig, ErrorsNameTheFileAndTheProblem) {
  auto err = [](const std::string& text, const std::string& ctx = {}) {
    auto ep = parse_kubeconfig(text, "/etc/kc", ctx);
    EXPECT_FALSE(ep);
    if (!ep)
      EXPECT_EQ(ep.error().kind, failure_kind::invalid);
    return ep ? std::string{} : ep.error().message;
  };
  EXPECT_EQ(err(two_contexts, "nope"),
            "kubeconfig /etc/kc: context 'nope' not found");
  EXPECT_EQ(err("clusters: []\n"),
            "kubeconfig /etc/kc: no current-context and no context given");
  EXPECT_EQ(err("- a\n- b\n").rfind("kubeconfig /etc/kc: not a kubeconfig", 0),
            0u);
  EXPECT_EQ(err("a: [\n").rfind("kubeconfig /etc/kc: not valid YAML", 0), 0u);
  auto bad_b64 = two_contexts;
  bad_b64.replace(bad_b64.find(b64("CA PEM")), b64("CA PEM").size(),
                  "abc*def");
  EXPECT_EQ(err(bad_b64), "kubeconfig /etc/kc: cluster 'prod': "
                          "certificate-authority-data is not valid base64");
  auto ctx = [](const std::string& cluster_part, const std::string& user_part) {
    return "clusters:\n- name: c\n  cluster:\n" + cluster_part
           + "users:\n- name: u\n  user:\n" + user_part
           + "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
             "current-context: x\n";
  };
  EXPECT_EQ(err(ctx("    insecure-skip-tls-verify: true\n", "    token: t\n")),
            "kubeconfig /etc/kc: cluster 'c' has no server");
  EXPECT_EQ(err(ctx("    server: ftp://x\n", "    token: t\n")),
            "kubeconfig /etc/kc: cluster 'c': server 'ftp://x' is not an "
            "http:// or https:// URL");
  EXPECT_NE(err(ctx("    server: https://x\n",
                    "    exec:\n      command: aws\n"))
              .find("exec credential plugins are not supported"),
            std::string::npos);
  EXPECT_NE(err(ctx("    server: https://x\n",
                    "    auth-provider:\n      name: gcp\n"))
              .find("auth-provider plugins are not supported"),
            std::string::npos);
  EXPECT_NE(err(ctx("    server: https://x\n",
                    "    client-certificate-data: " + b64("c") + "\n"))
              .find("needs its key"),
            std::string::npos);
  EXPECT_EQ(err(ctx("    server: https://x\n",
                    "    client-key: /nonexistent/key\n")),
            "kubeconfig /etc/kc: user 'u': cannot read client-key "
            "/nonexistent/key");
  EXPECT_EQ(err("clusters: []\ncontexts:\n- name: x\n  context: {cluster: "
                "gone}\ncurrent-context: x\n"),
            "kubeconfig /etc/kc: cluster 'gone' of context 'x' not found");
  EXPECT_EQ(err(R"(clusters: [{name: c, cluster: {server: "http://h"}}]
contexts: [{name: x, context: {cluster: c, user: who}}]
current-context: x
)"),
            "kubeconfig /etc/kc: user 'who' of context 'x' not found");
}

TEST(Kubeconfig, MissingFile) {
  auto ep = load_kubeconfig("/nonexistent/kubeconfig");
  ASSERT_FALSE(ep);
  EXPECT_EQ(ep.error().kind, failure_kind::invalid);
  EXPECT_EQ(ep.error().message,
            "kubeconfig /nonexistent/kubeconfig: file not found");
}

TEST(Kubeconfig, InClusterFromEnvironmentAndFiles) {
  scratch dir;
  dir.write("token", "sa-token\n");
  dir.write("ca.crt", "SA CA");
  dir.write("namespace", "team-a");
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  auto none = load_in_cluster(dir.root.string());
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("KUBERNETES_SERVICE_HOST"),
            std::string::npos);
  ::setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto ep = load_in_cluster(dir.root.string());
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(ep) << ep.error().message;
  EXPECT_EQ(ep->server, "https://[fd00::1]:443");
  EXPECT_EQ(ep->token, "sa-token");
  EXPECT_EQ(ep->token_file, (dir.root / "token").string());
  EXPECT_EQ(ep->ca_pem, "SA CA");
  EXPECT_EQ(ep->default_namespace, "team-a");
}

TEST(KubeServerUrl, PartsAndDefaults) {
  auto a = parse_server_url("https://10.0.0.1:6443");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->tls);
  EXPECT_EQ(a->host, "10.0.0.1");
  EXPECT_EQ(a->port, "6443");
  EXPECT_EQ(a->prefix, "");
  auto b = parse_server_url("http://k8s.local/k8s/clusters/c-1/");
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->tls);
  EXPECT_EQ(b->port, "80");
  EXPECT_EQ(b->prefix, "/k8s/clusters/c-1");
  auto c = parse_server_url("https://[::1]");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, "443");
  EXPECT_FALSE(parse_server_url("10.0.0.1:6443"));
  EXPECT_FALSE(parse_server_url("https://:6443"));
  EXPECT_FALSE(parse_server_url("https://h:99999"));
  EXPECT_FALSE(parse_server_url("https://h:x"));
}

TEST(KubeQueryEscape, ReservedCharactersAreEncoded) {
  EXPECT_EQ(query_escape("app=a,tier in (x, y)"),
            "app%3Da%2Ctier%20in%20%28x%2C%20y%29");
  EXPECT_EQ(query_escape("a-b_c.d~e"), "a-b_c.d~e");
}

TEST(KubeTokenBucket, BurstThenSpacedByQps) {
  auto t0 = token_bucket::clock::time_point{};
  token_bucket b{10, 3, t0};
  // Three at once from the burst, then 100 ms apart (reservations queue).
  EXPECT_EQ(b.reserve(t0), 0ms);
  EXPECT_EQ(b.reserve(t0), 0ms);
  EXPECT_EQ(b.reserve(t0), 0ms);
  auto d4 = std::chrono::duration_cast<std::chrono::milliseconds>(b.reserve(t0));
  auto d5 = std::chrono::duration_cast<std::chrono::milliseconds>(b.reserve(t0));
  EXPECT_NEAR(d4.count(), 100, 1);
  EXPECT_NEAR(d5.count(), 200, 1);
}

TEST(KubeTokenBucket, TwentyAtQps10Burst1TakeNineteenTenths) {
  auto t0 = token_bucket::clock::time_point{};
  token_bucket b{10, 1, t0};
  token_bucket::clock::duration last{};
  for (int i = 0; i < 20; ++i)
    last = b.reserve(t0);
  EXPECT_NEAR(std::chrono::duration<double>(last).count(), 1.9, 1e-6);
}

TEST(KubeTokenBucket, RefillIsCappedAtBurst) {
  auto t0 = token_bucket::clock::time_point{};
  token_bucket b{5, 2, t0};
  EXPECT_EQ(b.reserve(t0), 0ms);
  EXPECT_EQ(b.reserve(t0), 0ms);
  EXPECT_GT(b.reserve(t0), 0ms); // 200 ms ahead
  // An hour idle refills two tokens, not 18,000.
  auto later = t0 + 1h;
  EXPECT_EQ(b.reserve(later), 0ms);
  EXPECT_EQ(b.reserve(later), 0ms);
  EXPECT_GT(b.reserve(later), 0ms);
}

TEST(KubeTokenBucket, ZeroQpsIsUnlimited) {
  auto t0 = token_bucket::clock::time_point{};
  token_bucket b{0, 0, t0};
  EXPECT_TRUE(b.unlimited());
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(b.reserve(t0), 0ms);
  // A burst of 0 with a rate still lets one through (client-go needs >= 1).
  token_bucket one{1, 0, t0};
  EXPECT_EQ(one.reserve(t0), 0ms);
  EXPECT_GT(one.reserve(t0), 0ms);
}
