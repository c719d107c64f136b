#include "runtimes/docker/docker_api.hpp"

#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include <cstdlib>

using namespace osb;
using namespace osb::runtimes;
using namespace osb::runtimes::docker;

namespace {

rapidjson::Document parse(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  EXPECT_FALSE(doc.HasParseError()) << json;
  return doc;
}

} // namespace

TEST(DockerApi, ParseHost) {
  auto unix_sock = parse_host("unix:///var/run/docker.sock");
  EXPECT_EQ(unix_sock.kind, host_address::kind_t::unix_socket);
  EXPECT_EQ(unix_sock.path, "/var/run/docker.sock");
  auto tcp = parse_host("tcp://10.0.0.1:2376");
  EXPECT_EQ(tcp.kind, host_address::kind_t::tcp);
  EXPECT_EQ(tcp.host, "10.0.0.1");
  EXPECT_EQ(tcp.port, "2376");
  auto v6 = parse_host("tcp://[::1]:1234");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, "1234");
  EXPECT_EQ(parse_host("tcp://docker").port, "2375");
  auto ssh = parse_host("ssh://me@host");
  EXPECT_EQ(ssh.kind, host_address::kind_t::unsupported);
  EXPECT_NE(ssh.error.find("not supported yet"), std::string::npos);
}

TEST(DockerApi, ParseHostFallsBackToEnvironment) {
  setenv("DOCKER_HOST", "tcp://example:99", 1);
  auto x = parse_host("");
  EXPECT_EQ(x.kind, host_address::kind_t::tcp);
  EXPECT_EQ(x.host, "example");
  unsetenv("DOCKER_HOST");
  auto y = parse_host("");
  EXPECT_EQ(y.kind, host_address::kind_t::unix_socket);
  EXPECT_EQ(y.path, "/var/run/docker.sock");
  EXPECT_EQ(y.display, "unix:///var/run/docker.sock");
}

TEST(DockerApi, ParseImageRef) {
  auto check = [](std::string_view ref, std::string repo, std::string tag) {
    auto x = parse_image_ref(ref);
    EXPECT_EQ(x.repository, repo) << ref;
    EXPECT_EQ(x.tag, tag) << ref;
  };
  check("ubuntu", "ubuntu", "latest");
  check("ubuntu:22.04", "ubuntu", "22.04");
  check("library/ubuntu:22.04", "library/ubuntu", "22.04");
  check("localhost:5000/foo", "localhost:5000/foo", "latest");
  check("localhost:5000/foo/bar:1.2", "localhost:5000/foo/bar", "1.2");
  check("ghcr.io/a/b@sha256:abc", "ghcr.io/a/b", "sha256:abc");
  check("reg:443/a/b:v1@sha256:def", "reg:443/a/b", "sha256:def");
}

TEST(DockerApi, PullTarget) {
  EXPECT_EQ(pull_target(parse_image_ref("localhost:5000/foo:1"), ""),
            "/v1.41/images/create?fromImage=localhost%3A5000%2Ffoo&tag=1");
  EXPECT_EQ(pull_target(parse_image_ref("a"), "linux/arm64"),
            "/v1.41/images/create?fromImage=a&tag=latest"
            "&platform=linux%2Farm64");
}

TEST(DockerApi, RegistryAuthIsBase64UrlJson) {
  // {"username":"u","password":"p"}
  EXPECT_EQ(registry_auth("u", "p"),
            "eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InAifQ==");
}

TEST(DockerApi, PullStreamError) {
  EXPECT_EQ(pull_stream_error(""), std::nullopt);
  EXPECT_EQ(pull_stream_error("{\"status\":\"Pulling\"}\n"
                              "{\"status\":\"Done\"}\n"),
            std::nullopt);
  auto err = pull_stream_error(
    "{\"status\":\"Pulling\"}\r\n"
    "{\"errorDetail\":{\"message\":\"manifest unknown\"},"
    "\"error\":\"manifest unknown (short)\"}\r\n");
  ASSERT_TRUE(err);
  EXPECT_EQ(*err, "manifest unknown");
  EXPECT_EQ(pull_stream_error("{\"a\":1}{\"error\":\"x\"}"), "x");
}

TEST(DockerApi, CreateTarget) {
  container_spec spec;
  spec.name = "sandbox-1";
  EXPECT_EQ(create_target(spec), "/v1.41/containers/create?name=sandbox-1");
  spec.platform = "linux/amd64";
  EXPECT_EQ(create_target(spec), "/v1.41/containers/create?name=sandbox-1"
                                 "&platform=linux%2Famd64");
}

TEST(DockerApi, CreateBodyOmitsEmptyFields) {
  container_spec spec;
  spec.image = "busybox";
  auto doc = parse(create_body(spec));
  EXPECT_STREQ(doc["Image"].GetString(), "busybox");
  EXPECT_FALSE(doc.HasMember("Entrypoint"));
  EXPECT_FALSE(doc.HasMember("Cmd"));
  EXPECT_FALSE(doc.HasMember("Env"));
  EXPECT_FALSE(doc.HasMember("Labels"));
  EXPECT_FALSE(doc.HasMember("ExposedPorts"));
  ASSERT_TRUE(doc["HostConfig"].IsObject());
  EXPECT_EQ(doc["HostConfig"].MemberCount(), 0u);
}

TEST(DockerApi, CreateBodyFull) {
  container_spec spec;
  spec.image = "busybox";
  spec.entrypoint = {"/bin/sh", "-c"};
  spec.cmd = {"sleep 10"};
  spec.env = {"A=1", "B="};
  spec.labels = {{"opensandbox.io/id", "x"}};
  spec.network_mode = "bridge";
  spec.exposed_ports = {8080};
  spec.ports = {{44772, 40001, "0.0.0.0"}};
  spec.nano_cpus = 500000000;
  spec.memory_bytes = 64 << 20;
  spec.pids_limit = 128;
  spec.gpu_count = -1;
  spec.cap_drop = {"NET_RAW"};
  spec.cap_add = {"NET_ADMIN"};
  spec.security_opt = {"no-new-privileges:true"};
  spec.binds = {"/a:/b:ro"};
  auto doc = parse(create_body(spec));
  EXPECT_EQ(doc["Entrypoint"].Size(), 2u);
  EXPECT_STREQ(doc["Cmd"][0].GetString(), "sleep 10");
  EXPECT_STREQ(doc["Env"][1].GetString(), "B=");
  EXPECT_STREQ(doc["Labels"]["opensandbox.io/id"].GetString(), "x");
  EXPECT_TRUE(doc["ExposedPorts"].HasMember("44772/tcp"));
  EXPECT_TRUE(doc["ExposedPorts"].HasMember("8080/tcp"));
  auto& hc = doc["HostConfig"];
  EXPECT_STREQ(hc["NetworkMode"].GetString(), "bridge");
  auto& pb = hc["PortBindings"]["44772/tcp"][0];
  EXPECT_STREQ(pb["HostIp"].GetString(), "0.0.0.0");
  EXPECT_STREQ(pb["HostPort"].GetString(), "40001");
  EXPECT_EQ(hc["NanoCpus"].GetInt64(), 500000000);
  EXPECT_EQ(hc["Memory"].GetInt64(), 64 << 20);
  EXPECT_EQ(hc["PidsLimit"].GetInt64(), 128);
  EXPECT_STREQ(hc["CapDrop"][0].GetString(), "NET_RAW");
  EXPECT_STREQ(hc["CapAdd"][0].GetString(), "NET_ADMIN");
  EXPECT_STREQ(hc["SecurityOpt"][0].GetString(), "no-new-privileges:true");
  EXPECT_STREQ(hc["Binds"][0].GetString(), "/a:/b:ro");
  auto& dr = hc["DeviceRequests"][0];
  EXPECT_STREQ(dr["Driver"].GetString(), "");
  EXPECT_EQ(dr["Count"].GetInt64(), -1);
  EXPECT_STREQ(dr["Capabilities"][0][0].GetString(), "gpu");
}

TEST(DockerApi, ListTarget) {
  EXPECT_EQ(list_target({}), "/v1.41/containers/json?all=1");
  // {"label":["a=1","b"]}
  EXPECT_EQ(list_target({{"a", "1"}, {"b", ""}}),
            "/v1.41/containers/json?all=1&filters="
            "%7B%22label%22%3A%5B%22a%3D1%22%2C%22b%22%5D%7D");
}

TEST(DockerApi, ContainerTarget) {
  EXPECT_EQ(container_target("abc", "/start"),
            "/v1.41/containers/abc/start");
  EXPECT_EQ(container_target("a/b", "?force=true"),
            "/v1.41/containers/a%2Fb?force=true");
}

TEST(DockerApi, ParseRfc3339) {
  EXPECT_EQ(parse_rfc3339_us("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339_us("0001-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339_us("2024-01-02T03:04:05Z"), 1704164645000000);
  EXPECT_EQ(parse_rfc3339_us("2024-01-02T03:04:05.123456789Z"),
            1704164645123456);
  EXPECT_EQ(parse_rfc3339_us("2024-01-02T03:04:05.5Z"), 1704164645500000);
  EXPECT_EQ(parse_rfc3339_us("2024-01-02T04:04:05+01:00"), 1704164645000000);
  EXPECT_EQ(parse_rfc3339_us("2024-01-02T02:04:05.000001-01:00"),
            1704164645000001);
  EXPECT_EQ(parse_rfc3339_us(""), 0);
  EXPECT_EQ(parse_rfc3339_us("garbage"), 0);
  EXPECT_EQ(parse_rfc3339_us("2024-01-02T03:04:05"), 0);
}

TEST(DockerApi, ParseExitCode) {
  EXPECT_EQ(parse_exit_code("Exited (137) 5 minutes ago"), 137);
  EXPECT_EQ(parse_exit_code("Exited (0) 1 second ago"), 0);
  EXPECT_EQ(parse_exit_code("Up 2 hours"), 0);
  EXPECT_EQ(parse_exit_code("Exited (oops"), 0);
}

TEST(DockerApi, ParseInspect) {
  auto info = parse_inspect(R"({
    "Id": "abc123",
    "Created": "2024-01-02T03:04:05.123456789Z",
    "Name": "/sandbox-1",
    "State": {"Status": "exited", "ExitCode": 3,
              "FinishedAt": "2024-01-02T03:04:06Z"},
    "Config": {"Labels": {"opensandbox.io/id": "1", "k": "v"}},
    "NetworkSettings": {"IPAddress": "",
      "Networks": {"none": {"IPAddress": ""},
                   "bridge": {"IPAddress": "172.17.0.2"}}}
  })");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->id, "abc123");
  EXPECT_EQ(info->name, "sandbox-1");
  EXPECT_EQ(info->status, "exited");
  EXPECT_EQ(info->exit_code, 3);
  EXPECT_EQ(info->created_us, 1704164645123456);
  EXPECT_EQ(info->finished_us, 1704164646000000);
  EXPECT_EQ(info->labels.at("k"), "v");
  EXPECT_EQ(info->ip, "172.17.0.2");
  auto fallback = parse_inspect(R"({"Id":"x","Config":{"Labels":null},
    "State":{"FinishedAt":"0001-01-01T00:00:00Z"},
    "NetworkSettings":{"IPAddress":"10.0.0.9","Networks":{}}})");
  ASSERT_TRUE(fallback);
  EXPECT_EQ(fallback->ip, "10.0.0.9");
  EXPECT_EQ(fallback->finished_us, 0);
  EXPECT_TRUE(fallback->labels.empty());
  EXPECT_FALSE(parse_inspect("not json"));
}

TEST(DockerApi, ParseList) {
  auto xs = parse_list(R"([
    {"Id":"a","Names":["/one"],"Labels":{"x":"1"},"State":"exited",
     "Status":"Exited (137) 5 minutes ago","Created":1704164645,
     "NetworkSettings":{"Networks":{"bridge":{"IPAddress":""}}}},
    {"Id":"b","Names":[],"Labels":null,"State":"running","Status":"Up 1s",
     "Created":1704164646,
     "NetworkSettings":{"Networks":{"bridge":{"IPAddress":"172.17.0.3"}}}}
  ])");
  ASSERT_TRUE(xs);
  ASSERT_EQ(xs->size(), 2u);
  auto& a = (*xs)[0];
  EXPECT_EQ(a.id, "a");
  EXPECT_EQ(a.name, "one");
  EXPECT_EQ(a.labels.at("x"), "1");
  EXPECT_EQ(a.status, "exited");
  EXPECT_EQ(a.exit_code, 137);
  EXPECT_EQ(a.created_us, 1704164645000000);
  EXPECT_EQ(a.finished_us, 0);
  auto& b = (*xs)[1];
  EXPECT_EQ(b.name, "");
  EXPECT_EQ(b.ip, "172.17.0.3");
  EXPECT_FALSE(parse_list("{}"));
}

TEST(DockerApi, ErrorMapping) {
  EXPECT_EQ(kind_of_status(404), failure_kind::not_found);
  EXPECT_EQ(kind_of_status(409), failure_kind::conflict);
  EXPECT_EQ(kind_of_status(400), failure_kind::invalid);
  EXPECT_EQ(kind_of_status(500), failure_kind::failed);
  EXPECT_EQ(error_message(404, R"({"message":"No such container: x"})"),
            "No such container: x");
  EXPECT_EQ(error_message(502, "bad gateway\n"), "HTTP 502: bad gateway");
  EXPECT_EQ(error_message(500, ""), "HTTP 500");
  auto f = http_failure("start container", 409,
                        R"({"message":"container is paused"})");
  EXPECT_EQ(f.kind, failure_kind::conflict);
  EXPECT_EQ(f.message, "start container: container is paused");
}
