#include "core/config.hpp"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace osb {
namespace {

using ::testing::HasSubstr;

node_config parse_ok(const std::string& text) {
  auto r = parse_config(text, "config.toml");
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
  return r ? *r : node_config{};
}

std::string parse_err(const std::string& text) {
  auto r = parse_config(text, "config.toml");
  EXPECT_FALSE(r.has_value());
  return r ? std::string{} : r.error().message;
}

const std::string kube = "[runtime]\ntype = \"kubernetes\"\n\n[kubernetes]\n";

TEST(ConfigKubernetes, DefaultsFollowTheOriginal) {
  auto cfg = parse_ok("[runtime]\ntype = \"kubernetes\"\n");
  EXPECT_EQ(cfg.runtime.type, "kubernetes");
  auto& k = cfg.kubernetes;
  EXPECT_EQ(k.kubeconfig_path, "");
  EXPECT_EQ(k.namespace_name, "");
  EXPECT_EQ(k.workload_provider, "pod");
  EXPECT_EQ(k.image_pull_policy, "IfNotPresent");
  EXPECT_EQ(k.read_qps, 0);
  EXPECT_EQ(k.write_burst, 0);
  EXPECT_EQ(k.informer_resync_seconds, 300);
  EXPECT_EQ(k.informer_watch_timeout_seconds, 60);
  EXPECT_EQ(k.sandbox_create_timeout_seconds, 60);
  EXPECT_TRUE(k.execd_init_limits.empty());
}

TEST(ConfigKubernetes, ReadsEveryKeyOfTheSeed) {
  auto cfg = parse_ok(kube
                      + "kubeconfig_path = \"/etc/kube/config\"\n"
                        "namespace = \"sandboxes\"\n"
                        "service_account = \"sandbox-sa\"\n"
                        "workload_provider = \"pod\"\n"
                        "image_pull_policy = \"Always\"\n"
                        "read_qps = 50\nread_burst = 100\n"
                        "write_qps = 2.5\nwrite_burst = 5\n"
                        "informer_enabled = true\n"
                        "informer_resync_seconds = 120\n"
                        "informer_watch_timeout_seconds = 30\n"
                        "sandbox_create_timeout_seconds = 90\n"
                        "sandbox_create_poll_interval_seconds = 0.5\n"
                        "execd_init_resources = { limits = { cpu = \"100m\", "
                        "memory = \"128Mi\" }, requests = { cpu = \"50m\" } }\n");
  auto& k = cfg.kubernetes;
  EXPECT_EQ(k.kubeconfig_path, "/etc/kube/config");
  EXPECT_EQ(k.namespace_name, "sandboxes");
  EXPECT_EQ(k.service_account, "sandbox-sa");
  EXPECT_EQ(k.image_pull_policy, "Always");
  EXPECT_EQ(k.read_qps, 50);
  EXPECT_EQ(k.read_burst, 100);
  EXPECT_EQ(k.write_qps, 2.5);
  EXPECT_EQ(k.write_burst, 5);
  EXPECT_EQ(k.informer_resync_seconds, 120);
  EXPECT_EQ(k.informer_watch_timeout_seconds, 30);
  EXPECT_EQ(k.sandbox_create_timeout_seconds, 90);
  EXPECT_EQ(k.execd_init_limits.at("cpu"), "100m");
  EXPECT_EQ(k.execd_init_limits.at("memory"), "128Mi");
  EXPECT_EQ(k.execd_init_requests.at("cpu"), "50m");
}

TEST(ConfigKubernetes, TheSeedsBatchSandboxProviderIsRefusedByName) {
  EXPECT_EQ(parse_err(kube + "workload_provider = \"batchsandbox\"\n"),
            "config.toml:5:21: kubernetes.workload_provider 'batchsandbox' "
            "needs the original's own controller and CRDs, which this "
            "server does not use: it supports 'pod' (plain Pods, any "
            "cluster) and 'agent-sandbox' (kubernetes-sigs/agent-sandbox)");
  EXPECT_THAT(parse_err(kube + "workload_provider = \"deployment\"\n"),
              HasSubstr("kubernetes.workload_provider must be 'pod' or "
                        "'agent-sandbox' (got 'deployment')"));
  EXPECT_EQ(parse_err(kube + "batchsandbox_template_file = \"/t.yaml\"\n"),
            "config.toml:5:30: kubernetes.batchsandbox_template_file is not "
            "supported: this server runs sandboxes as plain Pods or "
            "agent-sandbox Sandbox objects (kubernetes.workload_provider), "
            "not BatchSandbox resources");
}

TEST(ConfigKubernetes, AgentSandboxReadsTheSeedsKeysThatApply) {
  auto cfg = parse_ok(kube + "workload_provider = \"agent-sandbox\"\n");
  EXPECT_EQ(cfg.kubernetes.workload_provider, "agent-sandbox");
  EXPECT_EQ(cfg.agent_sandbox.shutdown_policy, "Delete");
  EXPECT_TRUE(cfg.agent_sandbox.ingress_enabled);
  // [agent_sandbox] before [kubernetes] (TOML keeps no order) is checked
  // after both are read.
  cfg = parse_ok("[runtime]\ntype = \"kubernetes\"\n\n[agent_sandbox]\n"
                 "shutdown_policy = \"Retain\"\ningress_enabled = false\n\n"
                 "[kubernetes]\nworkload_provider = \"agent-sandbox\"\n");
  EXPECT_EQ(cfg.agent_sandbox.shutdown_policy, "Retain");
  EXPECT_FALSE(cfg.agent_sandbox.ingress_enabled);
  auto agent = kube + "workload_provider = \"agent-sandbox\"\n\n"
                      "[agent_sandbox]\n";
  EXPECT_THAT(parse_err(agent + "shutdown_policy = \"Keep\"\n"),
              HasSubstr("agent_sandbox.shutdown_policy must be one of"));
  EXPECT_EQ(parse_err(agent + "template_file = \"/t.yaml\"\n"),
            "config.toml:8:17: agent_sandbox.template_file is not "
            "supported: the Sandbox objects are made from the request and "
            "[kubernetes] alone (no template is merged in)");
  EXPECT_EQ(parse_err(agent + "replicas = 2\n"),
            "config.toml:8:1: unknown key 'agent_sandbox.replicas'");
  EXPECT_EQ(parse_err("[runtime]\ntype = \"kubernetes\"\n\n[agent_sandbox]\n"
                      "shutdown_policy = \"Delete\"\n"),
            "config.toml:4:2: [agent_sandbox] applies only with "
            "kubernetes.workload_provider = 'agent-sandbox' (it is 'pod')");
}

TEST(ConfigKubernetes, UnknownAndBadKeysFailWithTheirPosition) {
  EXPECT_EQ(parse_err(kube + "namespace = \"a\"\nnamesapce = \"b\"\n"),
            "config.toml:6:1: unknown key 'kubernetes.namesapce'");
  EXPECT_THAT(parse_err(kube + "namespace = \"Not_A_Label\"\n"),
              HasSubstr("config.toml:5:13: kubernetes.namespace must be a "
                        "DNS-1123 label"));
  EXPECT_THAT(parse_err(kube + "image_pull_policy = \"always\"\n"),
              HasSubstr("kubernetes.image_pull_policy must be one of "
                        "'Always', 'IfNotPresent', 'Never'"));
  EXPECT_THAT(parse_err(kube + "read_qps = -1\n"),
              HasSubstr("config.toml:5:12: kubernetes.read_qps must be >= 0"));
  EXPECT_THAT(parse_err(kube + "write_qps = \"fast\"\n"),
              HasSubstr("kubernetes.write_qps must be a number"));
  EXPECT_THAT(parse_err(kube + "sandbox_create_timeout_seconds = 0\n"),
              HasSubstr("must be between 1 and 86400"));
  EXPECT_THAT(parse_err(kube + "sandbox_create_poll_interval_seconds = 0\n"),
              HasSubstr("must be > 0"));
  EXPECT_THAT(parse_err(kube + "informer_enabled = false\n"),
              HasSubstr("config.toml:5:20: kubernetes.informer_enabled = "
                        "false is not supported"));
  EXPECT_THAT(parse_err(kube + "snapshot_create_timeout_seconds = 900\n"),
              HasSubstr("snapshots are not available"));
  EXPECT_THAT(parse_err(kube + "execd_init_resources = { limit = {} }\n"),
              HasSubstr("unknown key 'kubernetes.execd_init_resources.limit'"));
  EXPECT_THAT(parse_err(kube + "execd_init_resources = { limits = { cpu = 1 } "
                               "}\n"),
              HasSubstr("kubernetes.execd_init_resources.limits.cpu must be a "
                        "string"));
}

TEST(ConfigKubernetes, TheSectionNeedsTheKubernetesRuntime) {
  EXPECT_EQ(parse_err("[kubernetes]\nnamespace = \"x\"\n"),
            "config.toml:1:2: [kubernetes] must be omitted when runtime.type "
            "= 'docker'");
  // The section may come before [runtime]: the runtime is read first.
  auto cfg = parse_ok("[kubernetes]\nnamespace = \"x\"\n\n[runtime]\n"
                      "type = \"kubernetes\"\n");
  EXPECT_EQ(cfg.kubernetes.namespace_name, "x");
}

TEST(ConfigKubernetes, FirecrackerNeedsTheKubernetesRuntime) {
  auto cfg = parse_ok("[runtime]\ntype = \"kubernetes\"\n\n[secure_runtime]\n"
                      "type = \"firecracker\"\nk8s_runtime_class = \"kata-fc\"\n");
  EXPECT_EQ(cfg.secure_runtime.k8s_runtime_class, "kata-fc");
  EXPECT_THAT(parse_err("[secure_runtime]\ntype = \"firecracker\"\n"
                        "k8s_runtime_class = \"kata-fc\"\n"),
              HasSubstr("only compatible with runtime.type='kubernetes'"));
}

} // namespace
} // namespace osb
