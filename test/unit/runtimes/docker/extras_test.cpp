// Unit tests of the Docker API helpers for volumes, logs, details, the
// daemon's platform and pull progress (runtimes/docker/docker_api).

#include "runtimes/docker/docker_api.hpp"

#include <gtest/gtest.h>

using namespace osb;
using namespace osb::runtimes;
using namespace osb::runtimes::docker;

namespace {

/// One frame of Docker's multiplexed stream.
std::string frame(char stream, std::string_view payload) {
  std::string x(8, '\0');
  x[0] = stream;
  auto n = static_cast<uint32_t>(payload.size());
  x[4] = static_cast<char>(n >> 24);
  x[5] = static_cast<char>(n >> 16);
  x[6] = static_cast<char>(n >> 8);
  x[7] = static_cast<char>(n);
  return x + std::string{payload};
}

} // namespace

TEST(DockerLogs, DemultiplexesFramesInOrder) {
  auto body = frame(1, "2026-01-01T00:00:00Z hello\n")
              + frame(2, "2026-01-01T00:00:01Z oops\n")
              + frame(1, std::string(70000, 'x'));
  auto text = demux_logs(body);
  EXPECT_EQ(text.substr(0, 53), "2026-01-01T00:00:00Z hello\n"
                                "2026-01-01T00:00:01Z oops\n");
  EXPECT_EQ(text.size(), 53u + 70000u);
  // A truncated last frame keeps what arrived; an empty body is empty.
  EXPECT_EQ(demux_logs(frame(1, "abc").substr(0, 10)), "ab");
  EXPECT_EQ(demux_logs(""), "");
  // TTY containers have no frames.
  EXPECT_EQ(demux_logs("plain output\n"), "plain output\n");
}

TEST(DockerLogs, Target) {
  log_query q;
  q.tail = 25;
  q.since_s = 1700000000;
  EXPECT_EQ(logs_target("sandbox-x", q),
            "/v1.41/containers/sandbox-x/logs?stdout=1&stderr=1&timestamps=1"
            "&tail=25&since=1700000000");
  q.tail = 0;
  q.since_s = 0;
  q.timestamps = false;
  EXPECT_EQ(logs_target("c", q),
            "/v1.41/containers/c/logs?stdout=1&stderr=1&timestamps=0&tail=all");
}

TEST(DockerDetails, ParsesWhatDiagnosticsPrint) {
  auto d = parse_details(R"({
    "Id": "abcdef1234567890", "Name": "/sandbox-1",
    "Created": "2026-01-01T00:00:00.5Z",
    "Config": {"Image": "busybox:latest", "Labels": {"b": "2", "a": "1"},
               "Env": ["PATH=/bin", "API_TOKEN=s3cr3t"]},
    "State": {"Status": "exited", "Running": false, "Paused": false,
              "OOMKilled": true, "ExitCode": 137, "Error": "killed",
              "StartedAt": "2026-01-01T00:00:01Z",
              "FinishedAt": "2026-01-01T00:00:02Z",
              "Health": {"Status": "unhealthy",
                         "Log": [{"Start": "t1", "ExitCode": 1, "Output": "bad\n"}]}},
    "HostConfig": {"NanoCpus": 2000000000, "Memory": 536870912,
                   "PidsLimit": 4096},
    "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}},
                        "Ports": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                                  "81/tcp": null}}})");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->id, "abcdef1234567890");
  EXPECT_EQ(d->name, "sandbox-1");
  EXPECT_EQ(d->image, "busybox:latest");
  EXPECT_EQ(d->status, "exited");
  EXPECT_TRUE(d->oom_killed);
  EXPECT_EQ(d->exit_code, 137);
  EXPECT_EQ(d->error, "killed");
  EXPECT_EQ(d->created, "2026-01-01T00:00:00.5Z");
  EXPECT_EQ(d->nano_cpus, 2000000000);
  EXPECT_EQ(d->memory_bytes, 536870912);
  EXPECT_EQ(d->pids_limit, 4096);
  ASSERT_EQ(d->networks.size(), 1u);
  EXPECT_EQ(d->networks[0].second, "172.17.0.2");
  ASSERT_EQ(d->ports.size(), 2u);
  EXPECT_EQ(d->ports[0].second.at(0), "127.0.0.1:8080");
  EXPECT_TRUE(d->ports[1].second.empty());
  EXPECT_EQ(d->env.size(), 2u);
  EXPECT_EQ(d->health_status, "unhealthy");
  ASSERT_EQ(d->health_log.size(), 1u);
  EXPECT_EQ(d->health_log[0].exit_code, 1);
  EXPECT_FALSE(parse_details("[]"));
  EXPECT_FALSE(parse_details("{}"));
}

TEST(DockerDaemon, ReportsANormalizedPlatform) {
  auto i = parse_info(R"({"OSType":"linux","Architecture":"x86_64",
                          "ServerVersion":"20.10.24"})");
  ASSERT_TRUE(i);
  EXPECT_EQ(i->os, "linux");
  EXPECT_EQ(i->arch, "amd64");
  EXPECT_EQ(i->version, "20.10.24");
  EXPECT_EQ(normalize_arch("aarch64"), "arm64");
  EXPECT_EQ(normalize_arch("arm64/v8"), "arm64");
  EXPECT_EQ(normalize_arch("s390x"), "s390x");
  EXPECT_FALSE(parse_info("nope"));
}

TEST(DockerVolumes, TargetsAndBodies) {
  EXPECT_EQ(volume_target("cache"), "/v1.41/volumes/cache");
  EXPECT_EQ(volume_list_target({}), "/v1.41/volumes");
  EXPECT_EQ(volume_list_target({{"opensandbox.io/volume-for", "x"}}),
            "/v1.41/volumes?filters=%7B%22label%22%3A%5B%22opensandbox.io%2F"
            "volume-for%3Dx%22%5D%7D");
  EXPECT_EQ(volume_create_body("cache", {{"k", "v"}}),
            R"({"Name":"cache","Driver":"local","Labels":{"k":"v"}})");
}

TEST(DockerVolumes, ParsesInspectAndList) {
  auto v = parse_volume(R"({"Name":"cache","Driver":"local",
    "Mountpoint":"/var/lib/docker/volumes/cache/_data",
    "Labels":{"opensandbox.io/volume-managed-by":"server"},"Scope":"local"})");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->name, "cache");
  EXPECT_EQ(v->driver, "local");
  EXPECT_EQ(v->mountpoint, "/var/lib/docker/volumes/cache/_data");
  EXPECT_EQ(v->labels.at("opensandbox.io/volume-managed-by"), "server");
  auto none = parse_volume(R"({"Name":"x","Labels":null})");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->labels.empty());
  auto xs = parse_volume_list(R"({"Volumes":[{"Name":"a"},{"Name":"b"}],
                                  "Warnings":null})");
  ASSERT_TRUE(xs);
  EXPECT_EQ(xs->size(), 2u);
  auto empty = parse_volume_list(R"({"Volumes":null,"Warnings":null})");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  EXPECT_FALSE(parse_volume("[]"));
}

TEST(DockerPull, TracksProgressAcrossLayers) {
  pull_tracker t;
  EXPECT_EQ(t.describe("busybox"), "Pulling image busybox.");
  t.feed(R"({"status":"Pulling from library/busybox","id":"latest"})"
         "\n"
         R"({"status":"Pulling fs layer","progressDetail":{},"id":"l1"})"
         "\n"
         R"({"status":"Already exists","progressDetail":{},"id":"l0"})"
         "\n");
  EXPECT_EQ(t.describe("busybox"), "Pulling image busybox.");
  // Lines may be split anywhere.
  std::string line1
    = R"({"status":"Downloading","progressDetail":{"current":5000000,"total":20000000},"id":"l1"})"
      "\n";
  t.feed(line1.substr(0, 30));
  t.feed(line1.substr(30));
  t.feed(R"({"status":"Downloading","progressDetail":{"current":0,"total":9100000},"id":"l2"})"
         "\n");
  EXPECT_EQ(t.current(), 5000000u);
  EXPECT_EQ(t.total(), 29100000u);
  EXPECT_EQ(t.describe("busybox"), "Pulling image busybox: 17% (5.0/29.1 MB)");
  t.feed(R"({"status":"Download complete","progressDetail":{},"id":"l1"})"
         "\n"
         R"({"status":"Download complete","progressDetail":{},"id":"l2"})"
         "\n"
         R"({"status":"Extracting","progressDetail":{"current":1,"total":20000000},"id":"l1"})"
         "\n");
  EXPECT_EQ(t.describe("busybox"), "Pulling image busybox: extracting (29.1 MB)");
  EXPECT_FALSE(t.error());
  t.feed(R"({"errorDetail":{"message":"unauthorized"},"error":"unauthorized"})"
         "\n");
  ASSERT_TRUE(t.error());
  EXPECT_EQ(*t.error(), "unauthorized");
}
