// The quickstart configuration (deploy/quickstart.toml) serves the whole
// API out of the box: the server runs it unchanged except for its port, its
// store and a node name of this test, and a sandbox with a networkPolicy
// runs behind its egress sidecar (whose image deploy/setup.sh builds).

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "server_process.hpp"

using namespace std::chrono_literals;
using osb::test::random_suffix;
using osb::test::server_process;

TEST(Quickstart, ConfigServesNetworkPolicyOutOfTheBox) {
  std::ifstream in{std::string{OSB_SOURCE_DIR} + "/deploy/quickstart.toml"};
  ASSERT_TRUE(in) << "deploy/quickstart.toml is missing";
  std::stringstream ss;
  ss << in.rdbuf();
  server_process srv{{}, "it-qs-" + random_suffix()};
  // Only what must differ per test run changes.
  auto toml = std::regex_replace(ss.str(), std::regex{R"(\nport = \d+)"},
                                 "\nport = " + std::to_string(srv.port()));
  toml = std::regex_replace(toml, std::regex{R"(\npath = "[^"]*")"},
                            "\npath = \"" + srv.store_path() + "\"");
  ASSERT_EQ(toml.find("[cluster]"), std::string::npos)
    << "the test adds its own [cluster] section";
  toml += "\n[cluster]\nnode_name = \"" + srv.node() + "\"\n";
  srv.use_config(toml);
  ASSERT_TRUE(srv.start()) << srv.read_log();
  auto r = srv.call("POST", "/v1/sandboxes",
                    R"({"image":{"uri":"opensandbox/busybox:latest"},)"
                    R"("entrypoint":["sleep","3600"],"timeout":600,)"
                    R"("resourceLimits":{"cpu":"500m","memory":"256Mi"},)"
                    R"("networkPolicy":{"defaultAction":"deny","egress":)"
                    R"([{"action":"allow","target":"example.com"}]}})");
  ASSERT_EQ(r.status, 202) << r.body;
  std::string id = r.json()["id"].GetString();
  EXPECT_EQ(srv.wait_state(id, "Running", 60s), "Running") << srv.read_log();
  // The policy API of the sidecar answers through its endpoint.
  auto ep = srv.call("GET", "/v1/sandboxes/" + id + "/endpoints/18080");
  ASSERT_EQ(ep.status, 200) << ep.body;
  auto doc = ep.json();
  ASSERT_TRUE(doc.HasMember("headers")) << ep.body;
  ASSERT_TRUE(doc["headers"].HasMember("OPENSANDBOX-EGRESS-AUTH")) << ep.body;
  // Every header of the endpoint goes along, as the SDKs send them.
  std::map<std::string, std::string> hdrs;
  for (auto& m : doc["headers"].GetObject())
    hdrs[m.name.GetString()] = m.value.GetString();
  // "host:port[/prefix]": the sidecar's port, or execd's proxy to it.
  std::string endpoint = doc["endpoint"].GetString();
  auto colon = endpoint.find(':');
  auto slash = endpoint.find('/');
  ASSERT_NE(colon, std::string::npos) << endpoint;
  auto prefix = slash == std::string::npos ? "" : endpoint.substr(slash);
  auto policy = osb::test::http_call(
    static_cast<uint16_t>(std::stoi(endpoint.substr(colon + 1))), "GET",
    prefix + "/policy", {}, hdrs);
  EXPECT_EQ(policy.status, 200) << policy.body;
  EXPECT_NE(policy.body.find("example.com"), std::string::npos) << policy.body;
  EXPECT_EQ(srv.call("DELETE", "/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(srv.wait_containers(0), 0);
}
