#include "core/config.hpp"

#include <cstdlib>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

namespace osb {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

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

/// Sets or unsets an environment variable for the lifetime of the object.
class scoped_env {
public:
  scoped_env(const char* name, const char* value) : name_(name) {
    if (auto old = std::getenv(name))
      old_ = old;
    if (value != nullptr)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~scoped_env() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

private:
  const char* name_;
  std::optional<std::string> old_;
};

/// A file in a private temporary directory, removed afterwards.
class temp_file {
public:
  explicit temp_file(const std::string& content) {
    char tmpl[] = "/tmp/osb_config_XXXXXX";
    auto fd = ::mkstemp(tmpl);
    path_ = tmpl;
    ::close(fd);
    std::ofstream{path_} << content;
  }
  ~temp_file() {
    ::unlink(path_.c_str());
  }
  const std::string& path() const {
    return path_;
  }

private:
  std::string path_;
};

TEST(ConfigDefaults, EmptyDocumentYieldsDefaults) {
  auto cfg = parse_ok("");
  EXPECT_EQ(cfg.server.host, "0.0.0.0");
  EXPECT_EQ(cfg.server.port, 8080);
  EXPECT_EQ(cfg.server.api_key, "");
  EXPECT_EQ(cfg.server.max_sandbox_timeout_seconds, 0);
  EXPECT_EQ(cfg.server.timeout_keep_alive, 30);
  EXPECT_EQ(cfg.server.timeout_header, 5);
  EXPECT_EQ(cfg.server.limit_concurrency, 1024);
  EXPECT_EQ(cfg.server.backlog, 2048);
  EXPECT_EQ(cfg.server.thread_pool_size, 200);
  EXPECT_EQ(cfg.log.level, "INFO");
  EXPECT_FALSE(cfg.log.file_enabled);
  EXPECT_EQ(cfg.log.file_max_bytes, 104857600);
  EXPECT_EQ(cfg.log.file_backup_count, 5);
  EXPECT_EQ(cfg.runtime.type, "docker");
  EXPECT_EQ(cfg.docker.network_mode, "bridge");
  EXPECT_EQ(cfg.docker.api_timeout, 180);
  EXPECT_EQ(cfg.docker.pids_limit, 4096);
  EXPECT_TRUE(cfg.docker.no_new_privileges);
  EXPECT_EQ(cfg.docker.drop_capabilities.size(), 9u);
  EXPECT_EQ(cfg.ingress.mode, "direct");
  EXPECT_EQ(cfg.egress.mode, "dns+nft"); // ours: IP literals blocked
  EXPECT_TRUE(cfg.egress.disable_ipv6);
  EXPECT_TRUE(cfg.storage.allowed_host_paths.empty());
  EXPECT_EQ(cfg.storage.volume_default_size, "1Gi");
  EXPECT_EQ(cfg.storage.ossfs_mount_root, "/mnt/ossfs");
  EXPECT_EQ(cfg.store.type, "sqlite");
  EXPECT_THAT(cfg.store.path, Not(StartsWith("~")));
  EXPECT_THAT(cfg.store.path, HasSubstr("/.opensandbox/opensandbox.db"));
}

TEST(ConfigSections, ReadsEveryKnownKey) {
  auto cfg = parse_ok(R"(
[server]
host = "127.0.0.1"
port = 9000
api_key = "secret"
eip = "sandbox.example.com"
max_sandbox_timeout_seconds = 86400
timeout_keep_alive = 5
timeout_header = 2
limit_concurrency = 0
backlog = 10
thread_pool_size = 4
loop = "uvloop"
http = "h11"
io_threads = 2

[log]
level = "debug"
file_enabled = true
file_path = "/var/log/osb/server.log"
access_file_path = "/var/log/osb/access.log"
file_max_bytes = 1000
file_backup_count = 0

[runtime]
type = "docker"
execd_image = "ghcr.io/opensandbox/execd:latest"

[docker]
host = "unix:///run/docker.sock"
network_mode = "HOST"
api_timeout = 30
host_ip = "10.0.0.1"
drop_capabilities = ["NET_RAW"]
apparmor_profile = "docker-default"
no_new_privileges = false
seccomp_profile = "/etc/seccomp.json"
pids_limit = 100

[ingress]
mode = "direct"

[egress]
image = "opensandbox/egress:v1"
mode = "dns+nft"
disable_ipv6 = false

[storage]
allowed_host_paths = ["/data", "/srv"]
volume_default_size = "5Gi"
ossfs_mount_root = "/mnt/oss"

[store]
type = "sqlite"
path = "/var/lib/osb/state.db"

[cluster]
node_name = "node-a"
listen = "0.0.0.0:7000"
seeds = ["node-b:7000", "node-c:7000"]
plaintext = true
max_message_bytes = 1048576
seed_timeout_seconds = 5
)");
  EXPECT_EQ(cfg.server.host, "127.0.0.1");
  EXPECT_EQ(cfg.server.port, 9000);
  EXPECT_EQ(cfg.server.api_key, "secret");
  EXPECT_EQ(cfg.server.eip, "sandbox.example.com");
  EXPECT_EQ(cfg.server.max_sandbox_timeout_seconds, 86400);
  EXPECT_EQ(cfg.server.timeout_keep_alive, 5);
  EXPECT_EQ(cfg.server.timeout_header, 2);
  EXPECT_EQ(cfg.server.limit_concurrency, 0);
  EXPECT_EQ(cfg.server.backlog, 10);
  EXPECT_EQ(cfg.server.thread_pool_size, 4);
  EXPECT_EQ(cfg.server.loop, "uvloop");
  EXPECT_EQ(cfg.server.http, "h11");
  EXPECT_EQ(cfg.server.io_threads, 2);
  EXPECT_EQ(cfg.log.level, "DEBUG");
  EXPECT_TRUE(cfg.log.file_enabled);
  EXPECT_EQ(cfg.log.file_path, "/var/log/osb/server.log");
  EXPECT_EQ(cfg.log.access_file_path, "/var/log/osb/access.log");
  EXPECT_EQ(cfg.log.file_max_bytes, 1000);
  EXPECT_EQ(cfg.log.file_backup_count, 0);
  EXPECT_EQ(cfg.runtime.execd_image, "ghcr.io/opensandbox/execd:latest");
  EXPECT_EQ(cfg.docker.host, "unix:///run/docker.sock");
  EXPECT_EQ(cfg.docker.network_mode, "host");
  EXPECT_EQ(cfg.docker.api_timeout, 30);
  EXPECT_EQ(cfg.docker.host_ip, "10.0.0.1");
  EXPECT_EQ(cfg.docker.drop_capabilities, std::vector<std::string>{"NET_RAW"});
  EXPECT_EQ(cfg.docker.apparmor_profile, "docker-default");
  EXPECT_FALSE(cfg.docker.no_new_privileges);
  EXPECT_EQ(cfg.docker.seccomp_profile, "/etc/seccomp.json");
  EXPECT_EQ(cfg.docker.pids_limit, 100);
  EXPECT_EQ(cfg.egress.image, "opensandbox/egress:v1");
  EXPECT_EQ(cfg.egress.mode, "dns+nft");
  EXPECT_FALSE(cfg.egress.disable_ipv6);
  EXPECT_EQ(cfg.storage.allowed_host_paths,
            (std::vector<std::string>{"/data", "/srv"}));
  EXPECT_EQ(cfg.storage.volume_default_size, "5Gi");
  EXPECT_EQ(cfg.storage.ossfs_mount_root, "/mnt/oss");
  EXPECT_EQ(cfg.store.path, "/var/lib/osb/state.db");
  EXPECT_EQ(cfg.cluster.node_name, "node-a");
  EXPECT_EQ(cfg.cluster.listen, "0.0.0.0:7000");
  EXPECT_EQ(cfg.cluster.seeds,
            (std::vector<std::string>{"node-b:7000", "node-c:7000"}));
  EXPECT_TRUE(cfg.cluster.plaintext);
  EXPECT_EQ(cfg.cluster.max_message_bytes, 1048576);
  EXPECT_EQ(cfg.cluster.seed_timeout_seconds, 5);
}

TEST(ConfigErrors, UnknownKeyNamesLineAndColumn) {
  EXPECT_EQ(parse_err("[server]\nhost = \"x\"\nprot = 8080\n"),
            "config.toml:3:1: unknown key 'server.prot'");
}

TEST(ConfigErrors, UnknownSectionIsRejected) {
  EXPECT_EQ(parse_err("[server]\nport = 1\n\n[serverr]\nport = 2\n"),
            "config.toml:4:2: unknown section '[serverr]'");
}

TEST(ConfigErrors, UnknownTopLevelKeyIsRejected) {
  EXPECT_EQ(parse_err("port = 8080\n"), "config.toml:1:1: unknown key 'port'");
}

TEST(ConfigErrors, SyntaxErrorNamesLine) {
  auto msg = parse_err("[server]\nport = = 8080\n");
  EXPECT_THAT(msg, StartsWith("config.toml:2:"));
}

TEST(ConfigErrors, WrongTypeIsRejected) {
  EXPECT_EQ(parse_err("[server]\nport = \"8080\"\n"),
            "config.toml:2:8: server.port must be an integer");
  EXPECT_THAT(parse_err("[docker]\nno_new_privileges = \"yes\"\n"),
              HasSubstr("docker.no_new_privileges must be a boolean"));
  EXPECT_THAT(parse_err("[storage]\nallowed_host_paths = \"/data\"\n"),
              HasSubstr("must be an array of strings"));
  EXPECT_THAT(parse_err("[storage]\nallowed_host_paths = [\"/a\", 1]\n"),
              HasSubstr("must contain only strings"));
  EXPECT_THAT(parse_err("[server]\nport = 80.5\n"),
              HasSubstr("server.port must be an integer"));
  EXPECT_EQ(parse_err("server = 1\n"),
            "config.toml:1:10: server must be a table");
}

TEST(ConfigErrors, PortOutOfRange) {
  EXPECT_EQ(parse_err("[server]\nport = 0\n"),
            "config.toml:2:8: server.port must be between 1 and 65535 (got 0)");
  EXPECT_THAT(parse_err("[server]\nport = 65536\n"),
              HasSubstr("must be between 1 and 65535 (got 65536)"));
  EXPECT_EQ(parse_ok("[server]\nport = 65535\n").server.port, 65535);
}

TEST(ConfigErrors, RangeChecks) {
  EXPECT_THAT(parse_err("[server]\nmax_sandbox_timeout_seconds = 59\n"),
              HasSubstr("server.max_sandbox_timeout_seconds must be >= 60"));
  EXPECT_EQ(parse_ok("[server]\nmax_sandbox_timeout_seconds = 60\n")
              .server.max_sandbox_timeout_seconds,
            60);
  EXPECT_THAT(parse_err("[server]\nlimit_concurrency = -1\n"),
              HasSubstr("server.limit_concurrency must be >= 0"));
  EXPECT_THAT(parse_err("[server]\ntimeout_keep_alive = 0\n"),
              HasSubstr("server.timeout_keep_alive must be >= 1"));
  EXPECT_THAT(parse_err("[server]\ntimeout_header = 0\n"),
              HasSubstr("server.timeout_header must be between 1 and 3600"));
  EXPECT_THAT(parse_err("[server]\ntimeout_header = 3601\n"),
              HasSubstr("server.timeout_header must be between 1 and 3600"));
  EXPECT_THAT(parse_err("[docker]\napi_timeout = 0\n"),
              HasSubstr("docker.api_timeout must be >= 1"));
  EXPECT_THAT(parse_err("[docker]\npids_limit = -1\n"),
              HasSubstr("docker.pids_limit must be >= 0"));
  EXPECT_THAT(parse_err("[log]\nfile_max_bytes = 0\n"),
              HasSubstr("log.file_max_bytes"));
  EXPECT_THAT(parse_err("[log]\nfile_backup_count = -1\n"),
              HasSubstr("log.file_backup_count"));
}

TEST(ConfigDocker, PidsLimitZeroMeansUnlimited) {
  EXPECT_EQ(parse_ok("[docker]\npids_limit = 0\n").docker.pids_limit, 0);
}

TEST(ConfigDocker, NetworkModeIsLowerCased) {
  EXPECT_EQ(parse_ok("[docker]\nnetwork_mode = \"MyNet\"\n").docker.network_mode,
            "mynet");
  EXPECT_THAT(parse_err("[docker]\nnetwork_mode = \"\"\n"),
              HasSubstr("must not be empty"));
}

TEST(ConfigDocker, ProxyHostIsAutoOrNumeric) {
  EXPECT_EQ(parse_ok("").docker.proxy_host, "auto");
  EXPECT_EQ(parse_ok("[docker]\nproxy_host = \"127.0.0.1\"\n").docker.proxy_host,
            "127.0.0.1");
  EXPECT_EQ(parse_ok("[docker]\nproxy_host = \"::1\"\n").docker.proxy_host,
            "::1");
  EXPECT_THAT(parse_err("[docker]\nproxy_host = \"localhost\"\n"),
              HasSubstr("docker.proxy_host must be \"auto\" or a numeric IP"));
}

TEST(ConfigRuntime, PodmanIsNotSupported) {
  EXPECT_EQ(parse_err("[runtime]\ntype = \"podman\"\n"),
            "config.toml:2:8: runtime.type 'podman' is not supported by "
            "this server");
  EXPECT_THAT(parse_err("[runtime]\ntype = \"lxc\"\n"),
              HasSubstr("runtime.type must be 'docker', 'kubernetes' or "
                        "'fake'"));
}

TEST(ConfigRuntime, KubernetesSectionsAreRejectedForDocker) {
  EXPECT_EQ(parse_err("[runtime]\ntype = \"docker\"\n\n[kubernetes]\n"
                      "namespace = \"x\"\n"),
            "config.toml:4:2: [kubernetes] must be omitted when runtime.type "
            "= 'docker'");
  EXPECT_THAT(parse_err("[agent_sandbox]\ntemplate_file = \"x\"\n"),
              HasSubstr("[agent_sandbox] must be omitted"));
}

TEST(ConfigLog, LevelIsCaseInsensitive) {
  for (auto lvl : {"debug", "Info", "WARNING", "warn", "error", "critical"}) {
    auto cfg = parse_ok(std::string{"[log]\nlevel = \""} + lvl + "\"\n");
    std::string up = lvl;
    for (auto& c : up)
      c = static_cast<char>(std::toupper(c));
    EXPECT_EQ(cfg.log.level, up);
  }
  EXPECT_THAT(parse_err("[log]\nlevel = \"verbose\"\n"),
              HasSubstr("log.level must be one of"));
}

TEST(ConfigLog, FileLoggingGetsDefaultPaths) {
  auto cfg = parse_ok("[log]\nfile_enabled = true\n");
  EXPECT_THAT(cfg.log.file_path, HasSubstr("/logs/opensandbox/server.log"));
  EXPECT_THAT(cfg.log.access_file_path,
              HasSubstr("/logs/opensandbox/access.log"));
  EXPECT_THAT(cfg.log.file_path, Not(StartsWith("~")));
}

TEST(ConfigPaths, TildeIsExpanded) {
  scoped_env home{"HOME", "/home/tester"};
  auto cfg = parse_ok("[store]\npath = \"~/state/osb.db\"\n"
                      "[log]\nfile_path = \"~/l/server.log\"\n");
  EXPECT_EQ(cfg.store.path, "/home/tester/state/osb.db");
  EXPECT_EQ(cfg.log.file_path, "/home/tester/l/server.log");
}

TEST(ConfigEnums, ValidatesEnumeratedValues) {
  EXPECT_THAT(parse_err("[egress]\nmode = \"nft\"\n"),
              HasSubstr("egress.mode must be one of 'dns', 'dns+nft'"));
  EXPECT_THAT(parse_err("[server]\nloop = \"trio\"\n"),
              HasSubstr("server.loop must be one of"));
  EXPECT_THAT(parse_err("[server]\nhttp = \"h2\"\n"),
              HasSubstr("server.http must be one of"));
  EXPECT_THAT(parse_err("[store]\ntype = \"postgres\"\n"),
              HasSubstr("store.type must be one of 'sqlite'"));
  EXPECT_THAT(parse_err("[storage]\nossfs_mount_root = \"mnt\"\n"),
              HasSubstr("must be an absolute path"));
}

TEST(ConfigIngress, GatewayModeIsRejectedForDocker) {
  auto msg = parse_err("[ingress]\nmode = \"gateway\"\n"
                       "[ingress.gateway]\naddress = \"*.example.com\"\n"
                       "route.mode = \"wildcard\"\n");
  EXPECT_EQ(msg, "config.toml:2:8: ingress.mode must be 'direct' when "
                 "runtime.type = 'docker' (got 'gateway')");
}

TEST(ConfigIngress, DirectModeRejectsGatewayBlock) {
  EXPECT_THAT(parse_err("[ingress]\nmode = \"direct\"\n"
                        "[ingress.gateway]\naddress = \"gw.example.com\"\n"),
              HasSubstr("ingress.gateway must be omitted"));
}

TEST(ConfigIngress, UnknownGatewayKeyIsRejected) {
  EXPECT_THAT(parse_err("[ingress]\nmode = \"gateway\"\n"
                        "[ingress.gateway]\nadress = \"x\"\n"),
              HasSubstr("unknown key 'ingress.gateway.adress'"));
}

// With Docker the keys sign the server proxy's URLs (the original accepts
// them with a gateway only); they are validated like the original's.
TEST(ConfigIngress, SecureAccessKeysSignProxyUrlsAndAreValidated) {
  auto c = parse_ok("[ingress]\n[ingress.secure_access]\n"
                    "active_key = \"b\"\n"
                    "[[ingress.secure_access.keys]]\nkey_id = \"a\"\n"
                    "key = \"c2VjcmV0\"\n"
                    "[[ingress.secure_access.keys]]\nkey_id = \"b\"\n"
                    "key = \"b3RoZXI\"\n");
  ASSERT_EQ(c.ingress.secure_access.keys.size(), 2u);
  EXPECT_EQ(c.ingress.secure_access.active_key, 'b');
  EXPECT_EQ(c.ingress.secure_access.keys[0].secret, "secret");
  EXPECT_EQ(c.ingress.secure_access.keys[1].secret, "other");
  EXPECT_EQ(parse_ok("").ingress.secure_access.active_key, 0);
  auto block = [](std::string active, std::string keys) {
    return "[ingress.secure_access]\nactive_key = \"" + active + "\"\n"
           + keys;
  };
  auto key = [](std::string id, std::string k) {
    return "[[ingress.secure_access.keys]]\nkey_id = \"" + id
           + "\"\nkey = \"" + k + "\"\n";
  };
  EXPECT_THAT(parse_err(block("A", key("A", "c2VjcmV0"))),
              HasSubstr("exactly one character [0-9a-z]"));
  EXPECT_THAT(parse_err(block("a", key("a", "c2VjcmV0") + key("a", "eA"))),
              HasSubstr("duplicate secure_access key_id 'a'"));
  EXPECT_THAT(parse_err(block("z", key("a", "c2VjcmV0"))),
              HasSubstr("active_key 'z' not found"));
  EXPECT_THAT(parse_err(block("a", key("a", "not base64!"))),
              HasSubstr("not valid base64"));
  EXPECT_THAT(parse_err(block("a", key("a", "=="))),
              HasSubstr("at least 1 byte"));
  EXPECT_THAT(parse_err("[ingress.secure_access]\nactive_key = \"a\"\n"),
              HasSubstr("needs active_key and at least one of keys"));
}

TEST(ConfigIgnored, LegacyPauseSectionIsIgnored) {
  parse_ok("[pause]\nanything = 1\nnested = { x = 2 }\n");
}

TEST(ConfigRenewIntent, ProxyOnlyKeysAreReadRedisIsValidated) {
  auto d = parse_ok("");
  EXPECT_FALSE(d.renew_intent.enabled);
  EXPECT_EQ(d.renew_intent.min_interval_seconds, 60);
  auto c = parse_ok("[renew_intent]\nenabled = true\nmin_interval_seconds = 30\n"
                    "redis.enabled = true\nredis.dsn = \"redis://localhost\"\n");
  EXPECT_TRUE(c.renew_intent.enabled);
  EXPECT_EQ(c.renew_intent.min_interval_seconds, 30);
  parse_ok("[renew_intent]\n[renew_intent.redis]\nenabled = false\n"
           "queue_key = \"q\"\nconsumer_concurrency = 2\n");
  EXPECT_THAT(parse_err("[renew_intent]\nredis.enabled = true\n"),
              HasSubstr("renew_intent.redis.dsn is required"));
  EXPECT_THAT(parse_err("[renew_intent]\nmin_interval_seconds = 0\n"),
              HasSubstr("renew_intent.min_interval_seconds must be >= 1"));
  EXPECT_THAT(parse_err("[renew_intent]\nenable = true\n"),
              HasSubstr("unknown key 'renew_intent.enable'"));
}

TEST(ConfigSecureRuntime, IsValidatedLikeTheOriginal) {
  parse_ok("[secure_runtime]\ntype = \"\"\n");
  parse_ok("[secure_runtime]\n");
  EXPECT_THAT(parse_err("[secure_runtime]\ntype = \"kata\"\n"),
              HasSubstr("at least one of secure_runtime.docker_runtime"));
  EXPECT_THAT(parse_err("[secure_runtime]\ntype = \"gvisor\"\n"),
              HasSubstr("must be specified when secure_runtime.type is "
                        "'gvisor'"));
  EXPECT_THAT(parse_err("[secure_runtime]\ntype = \"\"\n"
                        "docker_runtime = \"runsc\"\n"),
              HasSubstr("must be omitted when secure_runtime.type is empty"));
  EXPECT_THAT(parse_err("[secure_runtime]\nk8s_runtime_class = \"gvisor\"\n"),
              HasSubstr("must be omitted when secure_runtime.type is empty"));
  EXPECT_THAT(parse_err("[secure_runtime]\ntype = \"firecracker\"\n"),
              HasSubstr("secure_runtime.k8s_runtime_class is required when "
                        "secure_runtime.type is 'firecracker'"));
  EXPECT_THAT(parse_err("[secure_runtime]\ntype = \"firecracker\"\n"
                        "k8s_runtime_class = \"kata-fc\"\n"),
              HasSubstr("only compatible with runtime.type='kubernetes'"));
  EXPECT_THAT(parse_err("[secure_runtime]\ntype = \"runc\"\n"),
              HasSubstr("secure_runtime.type must be one of"));
  // The type is case-sensitive, as the original's Literal.
  EXPECT_THAT(parse_err("[secure_runtime]\ntype = \"gVisor\"\n"),
              HasSubstr("secure_runtime.type must be one of"));
  EXPECT_THAT(parse_err("[secure_runtime]\ntype = \"gvisor\"\n"
                        "docker_runtim = \"runsc\"\n"),
              HasSubstr("unknown key 'secure_runtime.docker_runtim'"));
}

TEST(ConfigSecureRuntime, GvisorDefaultsToRunscOnDocker) {
  auto none = parse_ok("");
  EXPECT_EQ(none.secure_runtime.type, "");
  EXPECT_EQ(secure_docker_runtime(none), "");
  auto c = parse_ok("[secure_runtime]\ntype = \"gvisor\"\n"
                    "docker_runtime = \"runsc\"\n");
  EXPECT_EQ(c.secure_runtime.type, "gvisor");
  EXPECT_EQ(secure_docker_runtime(c), "runsc");
  // Only the Kubernetes key, or an empty Docker one: the type's default.
  c = parse_ok("[secure_runtime]\ntype = \"gvisor\"\n"
               "k8s_runtime_class = \"gvisor\"\n");
  EXPECT_EQ(c.secure_runtime.k8s_runtime_class, "gvisor");
  EXPECT_EQ(secure_docker_runtime(c), "runsc");
  c = parse_ok("[secure_runtime]\ntype = \"gvisor\"\ndocker_runtime = \"\"\n");
  EXPECT_EQ(secure_docker_runtime(c), "runsc");
  c = parse_ok("[secure_runtime]\ntype = \"kata\"\n"
               "k8s_runtime_class = \"kata-qemu\"\n");
  EXPECT_EQ(secure_docker_runtime(c), "kata-runtime");
  c = parse_ok("[secure_runtime]\ntype = \"gvisor\"\n"
               "docker_runtime = \"runsc-debug\"\n");
  EXPECT_EQ(secure_docker_runtime(c), "runsc-debug");
}

TEST(ConfigLoad, ExplicitMissingFileIsAnError) {
  auto r = load_config("/nonexistent/osb.toml");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, failure_kind::not_found);
  EXPECT_THAT(r.error().message, HasSubstr("/nonexistent/osb.toml"));
}

TEST(ConfigLoad, ReadsExplicitFileAndNamesItInErrors) {
  scoped_env key{"OPENSANDBOX_SERVER_API_KEY", nullptr};
  temp_file good{"[server]\nport = 9001\n"};
  auto r = load_config(good.path());
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->server.port, 9001);
  temp_file bad{"[server]\nprot = 1\n"};
  auto e = load_config(bad.path());
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().message,
            bad.path() + ":2:1: unknown key 'server.prot'");
}

TEST(ConfigLoad, UsesSandboxConfigPathEnv) {
  scoped_env key{"OPENSANDBOX_SERVER_API_KEY", nullptr};
  temp_file f{"[server]\nport = 9002\n"};
  scoped_env env{"SANDBOX_CONFIG_PATH", f.path().c_str()};
  auto r = load_config("");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->server.port, 9002);
}

TEST(ConfigLoad, MissingSandboxConfigPathIsAnError) {
  scoped_env env{"SANDBOX_CONFIG_PATH", "/nonexistent/env.toml"};
  auto r = load_config("");
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("SANDBOX_CONFIG_PATH"));
}

TEST(ConfigLoad, FallsBackToDefaultsWithoutHomeFile) {
  scoped_env env{"SANDBOX_CONFIG_PATH", nullptr};
  scoped_env home{"HOME", "/nonexistent-home"};
  scoped_env key{"OPENSANDBOX_SERVER_API_KEY", nullptr};
  auto r = load_config("");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->server.port, 8080);
  EXPECT_EQ(r->store.path, "/nonexistent-home/.opensandbox/opensandbox.db");
}

TEST(ConfigLoad, ApiKeyEnvOverridesEvenWhenEmpty) {
  temp_file f{"[server]\napi_key = \"from-file\"\n"};
  {
    scoped_env key{"OPENSANDBOX_SERVER_API_KEY", "from-env"};
    EXPECT_EQ(load_config(f.path())->server.api_key, "from-env");
  }
  {
    scoped_env key{"OPENSANDBOX_SERVER_API_KEY", ""};
    EXPECT_EQ(load_config(f.path())->server.api_key, "");
  }
  {
    scoped_env key{"OPENSANDBOX_SERVER_API_KEY", nullptr};
    EXPECT_EQ(load_config(f.path())->server.api_key, "from-file");
  }
}

// -- [cluster] transport (issue 11) ---------------------------------------------

TEST(ConfigCluster, ListenWithoutTlsOrPlaintextIsRejected) {
  EXPECT_THAT(parse_err("[cluster]\nlisten = \"10.0.0.1:7000\"\n"),
              StartsWith("config.toml:2:10: cluster.listen needs TLS between "
                         "the nodes: set cluster.tls_ca_file"));
  // No cluster, nothing to secure.
  auto cfg = parse_ok("[cluster]\nnode_name = \"a\"\n");
  EXPECT_FALSE(cfg.cluster.plaintext);
  EXPECT_EQ(cfg.cluster.max_message_bytes, 64 << 20);
  EXPECT_EQ(cfg.cluster.seed_timeout_seconds, 30);
}

TEST(ConfigCluster, PlaintextIsExplicit) {
  auto cfg = parse_ok("[cluster]\nlisten = \"10.0.0.1:7000\"\n"
                      "plaintext = true\n");
  EXPECT_TRUE(cfg.cluster.plaintext);
  EXPECT_EQ(parse_err("[cluster]\nlisten = \"10.0.0.1:7000\"\n"
                      "plaintext = \"yes\"\n"),
            "config.toml:3:13: cluster.plaintext must be a boolean (true or "
            "false)");
}

TEST(ConfigCluster, TlsFilesGoTogetherAndMustBeReadable) {
  temp_file ca{"ca"};
  temp_file cert{"cert"};
  temp_file key{"key"};
  auto tls = "tls_ca_file = \"" + ca.path() + "\"\ntls_cert_file = \""
             + cert.path() + "\"\ntls_key_file = \"" + key.path() + "\"\n";
  auto cfg = parse_ok("[cluster]\nlisten = \"10.0.0.1:7000\"\n" + tls);
  EXPECT_EQ(cfg.cluster.tls_ca_file, ca.path());
  EXPECT_EQ(cfg.cluster.tls_cert_file, cert.path());
  EXPECT_EQ(cfg.cluster.tls_key_file, key.path());
  EXPECT_FALSE(cfg.cluster.plaintext);
  // A missing key names the first TLS key's position and what is missing.
  EXPECT_EQ(parse_err("[cluster]\nlisten = \"10.0.0.1:7000\"\n"
                      "tls_cert_file = \""
                      + cert.path() + "\"\ntls_ca_file = \"" + ca.path()
                      + "\"\n"),
            "config.toml:3:17: cluster.tls_ca_file, cluster.tls_cert_file "
            "and cluster.tls_key_file go together (missing: "
            "cluster.tls_key_file)");
  // TLS and plaintext contradict each other.
  EXPECT_EQ(parse_err("[cluster]\nlisten = \"10.0.0.1:7000\"\n" + tls
                      + "plaintext = true\n"),
            "config.toml:6:13: cluster.plaintext = true cannot be combined "
            "with the cluster.tls_* keys");
  // An unreadable file fails where it is named.
  EXPECT_EQ(parse_err("[cluster]\ntls_key_file = \"/nonexistent/k.pem\"\n"),
            "config.toml:2:16: cluster.tls_key_file: cannot read "
            "'/nonexistent/k.pem' (No such file or directory)");
}

TEST(ConfigCluster, BoundsAreChecked) {
  EXPECT_EQ(parse_err("[cluster]\nmax_message_bytes = 1000\n"),
            "config.toml:2:21: cluster.max_message_bytes must be between "
            "65536 and 4294967295 (got 1000)");
  EXPECT_EQ(parse_err("[cluster]\nseed_timeout_seconds = -1\n"),
            "config.toml:2:24: cluster.seed_timeout_seconds must be between "
            "0 and 86400 (got -1)");
}

TEST(ConfigPool, KeysAreReadAndBounded) {
  auto d = parse_ok("");
  EXPECT_FALSE(d.pool.match_creates);
  EXPECT_EQ(d.pool.warm_concurrency, 2);
  auto c = parse_ok("[pool]\nmatch_creates = true\nwarm_concurrency = 4\n");
  EXPECT_TRUE(c.pool.match_creates);
  EXPECT_EQ(c.pool.warm_concurrency, 4);
  EXPECT_THAT(parse_err("[pool]\nwarm_concurrency = 0\n"),
              HasSubstr("warm_concurrency"));
  EXPECT_THAT(parse_err("[pool]\nbuffer = 1\n"), HasSubstr("buffer"));
}

} // namespace
} // namespace osb

namespace osb {
namespace {

TEST(ConfigMetrics, DefaultsAndKeys) {
  auto d = parse_ok("");
  EXPECT_TRUE(d.metrics.enabled);
  EXPECT_TRUE(d.metrics.auth);
  EXPECT_EQ(d.server.shutdown_timeout_seconds, 10);
  auto c = parse_ok("[metrics]\nenabled = false\nauth = false\n"
                    "[server]\nshutdown_timeout_seconds = 3\n");
  EXPECT_FALSE(c.metrics.enabled);
  EXPECT_FALSE(c.metrics.auth);
  EXPECT_EQ(c.server.shutdown_timeout_seconds, 3);
  EXPECT_THAT(parse_err("[metrics]\npath = \"/m\"\n"), HasSubstr("path"));
  EXPECT_THAT(parse_err("[metrics]\nauth = \"no\"\n"),
              StartsWith("config.toml:2:"));
  EXPECT_THAT(parse_err("[server]\nshutdown_timeout_seconds = 0\n"),
              StartsWith("config.toml:2:"));
}

} // namespace
} // namespace osb
