// Unit tests of the plain-text diagnostics reports (runtimes/diagnostics).

#include "runtimes/docker/diagnostics.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

using namespace osb::runtimes;
using namespace osb::runtimes::docker;
using testing::HasSubstr;
using testing::Not;

namespace {

container_details sample() {
  container_details d;
  d.id = "abcdef1234567890";
  d.name = "sandbox-1";
  d.image = "busybox:latest";
  d.status = "running";
  d.running = true;
  d.created = "2026-01-01T00:00:00Z";
  d.started_at = "2026-01-01T00:00:01Z";
  d.finished_at = "0001-01-01T00:00:00Z";
  d.nano_cpus = 2'000'000'000;
  d.memory_bytes = 512 * 1024 * 1024;
  d.pids_limit = 4096;
  d.networks = {{"bridge", "172.17.0.2"}};
  d.ports = {{"80/tcp", {"127.0.0.1:8080"}}, {"81/tcp", {}}};
  d.labels = {{"opensandbox.io/id", "1"},
              {"opensandbox.io/egress-auth-token", "tok-secret"},
              {"team", "infra"}};
  d.env = {"PATH=/bin", "API_TOKEN=s3cr3t", "FLAG"};
  return d;
}

} // namespace

TEST(Diagnostics, InspectLayout) {
  auto text = render_inspect(sample());
  EXPECT_EQ(text.substr(0, text.find("\n\nResources:")),
            "Container ID:   abcdef123456\n"
            "Name:           sandbox-1\n"
            "Image:          busybox:latest\n"
            "Status:         running\n"
            "Running:        True\n"
            "Paused:         False\n"
            "OOMKilled:      False\n"
            "Exit Code:      0\n"
            "Started At:     2026-01-01T00:00:01Z\n"
            "Finished At:    0001-01-01T00:00:00Z");
  EXPECT_THAT(text, HasSubstr("  CPU:          2.00 cores\n"
                              "  Memory:       512 MiB\n"
                              "  PIDs Limit:   4096\n"));
  EXPECT_THAT(text, HasSubstr("Network:\n  bridge: 172.17.0.2\n"));
  EXPECT_THAT(text, HasSubstr("Ports:\n  80/tcp -> 127.0.0.1:8080\n"
                              "  81/tcp (not bound)\n"));
  // Sorted labels; the egress token is masked (the original leaked it).
  EXPECT_THAT(text, HasSubstr("Labels:\n"
                              "  opensandbox.io/egress-auth-token=***\n"
                              "  opensandbox.io/id=1\n"
                              "  team=infra\n"));
  EXPECT_THAT(text, Not(HasSubstr("tok-secret")));
  EXPECT_THAT(text, HasSubstr("Environment:\n  PATH=/bin\n  API_TOKEN=***\n"
                              "  FLAG"));
  EXPECT_THAT(text, Not(HasSubstr("s3cr3t")));
  EXPECT_EQ(text.back(), 'G'); // no trailing newline
}

TEST(Diagnostics, InspectOmitsEmptySections) {
  container_details d;
  d.id = "abc";
  d.name = "x";
  d.error = "boom";
  auto text = render_inspect(d);
  EXPECT_THAT(text, HasSubstr("Image:          N/A\n"));
  EXPECT_THAT(text, HasSubstr("Status:         unknown\n"));
  EXPECT_THAT(text, HasSubstr("Error:          boom\n"));
  EXPECT_THAT(text, HasSubstr("\n\nResources:\n\nNetwork:"));
  EXPECT_THAT(text, Not(HasSubstr("Ports:")));
  EXPECT_THAT(text, Not(HasSubstr("Labels:")));
}

TEST(Diagnostics, Masking) {
  EXPECT_TRUE(is_sensitive_key("db_password"));
  EXPECT_TRUE(is_sensitive_key("OPENSANDBOX_EGRESS_TOKEN"));
  EXPECT_TRUE(is_sensitive_key("ssh-key"));
  EXPECT_FALSE(is_sensitive_key("PATH"));
}

TEST(Diagnostics, EventsFromInspectData) {
  auto d = sample();
  EXPECT_EQ(render_events(d, 50), "Container:  abcdef123456 (sandbox-1)\n"
                                  "Status:     running\n"
                                  "Created:    2026-01-01T00:00:00Z\n"
                                  "Started:    2026-01-01T00:00:01Z");
  d.started_at = "0001-01-01T00:00:00Z";
  EXPECT_EQ(render_events(d, 50), "Container:  abcdef123456 (sandbox-1)\n"
                                  "Status:     running\n"
                                  "Created:    2026-01-01T00:00:00Z\n"
                                  "(no notable events)");
  d.status = "exited";
  d.oom_killed = true;
  d.exit_code = 137;
  d.error = "killed";
  d.finished_at = "2026-01-01T00:00:09Z";
  d.health_status = "unhealthy";
  for (int i = 0; i < 5; ++i)
    d.health_log.push_back({"t" + std::to_string(i), 1,
                            "  out" + std::to_string(i) + "\n"});
  auto text = render_events(d, 2);
  EXPECT_THAT(text, HasSubstr("Finished:   2026-01-01T00:00:09Z\n"));
  EXPECT_THAT(text, HasSubstr("Event:      OOMKilled - container was killed "
                              "due to out-of-memory\n"
                              "Event:      Exited with code 137\n"
                              "Event:      Error - killed\n"
                              "Health:     unhealthy\n"
                              "  [t3] exit=1 out3\n"
                              "  [t4] exit=1 out4"));
  EXPECT_THAT(text, Not(HasSubstr("[t2]")));
}

TEST(Diagnostics, Logs) {
  EXPECT_EQ(render_logs(""), "(no logs)");
  EXPECT_EQ(render_logs("a\n"), "a\n");
}

TEST(Diagnostics, SummaryLayout) {
  auto text = render_summary("sbx-1", 50, std::string{"I"}, std::nullopt,
                             std::string{"L"});
  auto banner = std::string(72, '=');
  auto rule = std::string(40, '-');
  EXPECT_EQ(text, banner + "\nSANDBOX DIAGNOSTICS SUMMARY\nSandbox ID: sbx-1\n"
                    + banner + "\n\n" + rule + "\nINSPECT\n" + rule + "\nI\n\n"
                    + rule + "\nEVENTS\n" + rule
                    + "\n[error] Failed to collect event diagnostics.\n\n" + rule
                    + "\nLOGS (last 50 lines)\n" + rule + "\nL\n");
}

TEST(Diagnostics, SinceDurations) {
  EXPECT_EQ(parse_since_seconds("10m"), 600);
  EXPECT_EQ(parse_since_seconds("2m"), 120);
  EXPECT_EQ(parse_since_seconds(" 1 h "), 3600);
  EXPECT_EQ(parse_since_seconds("30S"), 30);
  EXPECT_EQ(parse_since_seconds("2d"), 172800);
  EXPECT_EQ(parse_since_seconds("garbage"), 600);
  EXPECT_EQ(parse_since_seconds("5"), 600);
  EXPECT_EQ(parse_since_seconds("m"), 600);
  EXPECT_EQ(parse_since_seconds("5mm"), 600);
}
