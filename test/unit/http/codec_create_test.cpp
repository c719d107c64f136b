// The decoder of `POST /sandboxes`: schema (422) and service (400) rules
// (http/codec_request, codec_create, codec_volumes).

#include "http/codec_request.hpp"

#include "test/unit/http/codec_checks.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace osb::codec {
namespace {

using ::testing::HasSubstr;

// -- create: schema (422) -----------------------------------------------------

TEST(CreateSchema, ValidBodyIsDecoded) {
  auto spec = create_ok(
    R"({"image":{"uri":"python:3.11","auth":{"username":"u","password":"p"}},)"
    R"("entrypoint":["python","-m","http.server"],"timeout":3600,)"
    R"("resourceLimits":{"cpu":"500m","memory":"512Mi"},)"
    R"("env":{"A":"1","B":null,"C":""},"metadata":{"team":"backend"},)"
    R"("extensions":{"foo":"bar"},"unknownField":123})");
  EXPECT_EQ(spec.image, "python:3.11");
  EXPECT_EQ(spec.image_username, "u");
  EXPECT_EQ(spec.image_password, "p");
  EXPECT_EQ(spec.entrypoint,
            (std::vector<std::string>{"python", "-m", "http.server"}));
  EXPECT_EQ(spec.timeout_s, 3600);
  EXPECT_EQ(spec.resource_limits,
            (string_map{{"cpu", "500m"}, {"memory", "512Mi"}}));
  EXPECT_EQ(spec.env, (string_map{{"A", "1"}, {"C", ""}}));
  EXPECT_EQ(spec.metadata, (string_map{{"team", "backend"}}));
  EXPECT_EQ(spec.extensions, (string_map{{"foo", "bar"}}));
  EXPECT_TRUE(spec.snapshot_id.empty());
  EXPECT_TRUE(spec.network_policy_json.empty());
  EXPECT_TRUE(spec.volumes_json.empty());
}

TEST(CreateSchema, MalformedJsonIsJsonInvalid) {
  auto d = create_detail("{\"image\": ");
  EXPECT_EQ(d.type, "json_invalid");
  EXPECT_EQ(d.loc, R"(["body",10])");
  EXPECT_EQ(d.msg, "JSON decode error");
  EXPECT_EQ(d.input, "{}");
  EXPECT_EQ(d.ctx, R"({"error":"Expecting value"})");
  EXPECT_EQ(create_detail("{'a': 1}").ctx,
            R"({"error":"Expecting property name enclosed in double quotes"})");
  EXPECT_EQ(create_detail("{} {}").ctx, R"({"error":"Extra data"})");
}

TEST(CreateSchema, EmptyOrNullBodyIsMissing) {
  for (auto b : {"", "null"}) {
    auto d = create_detail(b);
    EXPECT_EQ(d.type, "missing");
    EXPECT_EQ(d.loc, R"(["body"])");
    EXPECT_EQ(d.msg, "Field required");
    EXPECT_EQ(d.input, "null");
  }
}

TEST(CreateSchema, NonObjectBodyIsRejected) {
  auto d = create_detail("[1,2]");
  EXPECT_EQ(d.type, "model_attributes_type");
  EXPECT_EQ(d.loc, R"(["body"])");
  EXPECT_EQ(d.msg,
            "Input should be a valid dictionary or object to extract fields "
            "from");
  EXPECT_EQ(d.input, "[1,2]");
}

TEST(CreateSchema, TimeoutBelowMinimum) {
  auto r = create_err(body(R"("timeout":10)"));
  EXPECT_EQ(r.body,
            R"({"detail":[{"type":"greater_than_equal","loc":["body","timeout"],)"
            R"("msg":"Input should be greater than or equal to 60","input":10,)"
            R"("ctx":{"ge":60}}]})");
  EXPECT_EQ(create_detail(body(R"("timeout":0)")).type, "greater_than_equal");
  EXPECT_EQ(create_detail(body(R"("timeout":-5)")).type, "greater_than_equal");
}

TEST(CreateSchema, TimeoutLaxIntegerParsing) {
  EXPECT_EQ(create_ok(body(R"("timeout":60)")).timeout_s, 60);
  EXPECT_EQ(create_ok(body(R"("timeout":3600.0)")).timeout_s, 3600);
  EXPECT_EQ(create_ok(body(R"("timeout":"3600")")).timeout_s, 3600);
  EXPECT_EQ(create_ok(body(R"("timeout":172800)")).timeout_s, 172800);
  EXPECT_EQ(create_ok(body(R"("timeout":null)")).timeout_s, 0);
  EXPECT_EQ(create_ok(body()).timeout_s, 0);
  auto d = create_detail(body(R"("timeout":3600.5)"));
  EXPECT_EQ(d.type, "int_from_float");
  EXPECT_EQ(d.msg,
            "Input should be a valid integer, got a number with a fractional "
            "part");
  d = create_detail(body(R"("timeout":true)"));
  EXPECT_EQ(d.type, "int_type");
  EXPECT_EQ(d.msg, "Input should be a valid integer");
  d = create_detail(body(R"("timeout":"soon")"));
  EXPECT_EQ(d.type, "int_parsing");
  EXPECT_EQ(d.input, R"("soon")");
}

TEST(CreateSchema, ExactlyOneOfImageOrSnapshot) {
  auto msg = "Value error, Exactly one of image or snapshotId must be "
             "provided.";
  auto d = create_detail(R"({"entrypoint":["x"],"resourceLimits":{}})");
  EXPECT_EQ(d.type, "value_error");
  EXPECT_EQ(d.loc, R"(["body"])");
  EXPECT_EQ(d.msg, msg);
  EXPECT_EQ(d.ctx, R"({"error":{}})");
  EXPECT_EQ(create_detail(R"({"image":{"uri":"x"},"snapshotId":"s",)"
                          R"("entrypoint":["x"],"resourceLimits":{}})")
              .msg,
            msg);
  // Blank values count as absent.
  EXPECT_EQ(create_detail(R"({"image":{"uri":"  "},"snapshotId":" ",)"
                          R"("entrypoint":["x"],"resourceLimits":{}})")
              .msg,
            msg);
}

TEST(CreateSchema, BlankImageWithSnapshotRestores) {
  auto spec = create_ok(R"({"image":{"uri":" "},"snapshotId":"snap-1",)"
                        R"("resourceLimits":{}})");
  EXPECT_EQ(spec.snapshot_id, "snap-1");
  EXPECT_EQ(spec.image, "");
  EXPECT_EQ(spec.entrypoint,
            (std::vector<std::string>{"tail", "-f", "/dev/null"}));
  auto custom = create_ok(R"({"snapshotId":"snap-1","entrypoint":["sh"],)"
                          R"("resourceLimits":{}})");
  EXPECT_EQ(custom.entrypoint, std::vector<std::string>{"sh"});
  // A blank image is dropped together with its credentials.
  auto dropped = create_ok(
    R"({"image":{"uri":"","auth":{"username":"u","password":"p"}},)"
    R"("snapshotId":"snap-1","resourceLimits":{}})");
  EXPECT_EQ(dropped.image_username, "");
  EXPECT_EQ(dropped.image_password, "");
}

TEST(CreateSchema, ImageRequiresUriAndCompleteAuth) {
  auto d = create_detail(R"({"image":{},"entrypoint":["x"],"resourceLimits":{}})");
  EXPECT_EQ(d.type, "missing");
  EXPECT_EQ(d.loc, R"(["body","image","uri"])");
  EXPECT_EQ(d.input, "{}");
  d = create_detail(body(R"("image":{"uri":"x","auth":{"username":"u"}})"));
  EXPECT_EQ(d.loc, R"(["body","image","auth","password"])");
  d = create_detail(body(R"("image":"python")"));
  EXPECT_EQ(d.type, "model_type");
  EXPECT_EQ(d.msg, "Input should be a valid dictionary or instance of ImageSpec");
  EXPECT_EQ(d.ctx, R"({"class_name":"ImageSpec"})");
  d = create_detail(body(R"("image":{"uri":5})"));
  EXPECT_EQ(d.type, "string_type");
  EXPECT_EQ(d.msg, "Input should be a valid string");
}

TEST(CreateSchema, EntrypointRules) {
  auto d = create_detail(R"({"image":{"uri":"x"},"resourceLimits":{}})");
  EXPECT_EQ(d.msg, "Value error, Entrypoint is required when image is "
                   "provided.");
  d = create_detail(body(R"("entrypoint":[])"));
  EXPECT_EQ(d.type, "too_short");
  EXPECT_EQ(d.loc, R"(["body","entrypoint"])");
  EXPECT_EQ(d.msg, "List should have at least 1 item after validation, not 0");
  EXPECT_EQ(d.ctx,
            R"({"field_type":"List","min_length":1,"actual_length":0})");
  d = create_detail(body(R"("entrypoint":["a",1])"));
  EXPECT_EQ(d.type, "string_type");
  EXPECT_EQ(d.loc, R"(["body","entrypoint",1])");
  d = create_detail(body(R"("entrypoint":"python")"));
  EXPECT_EQ(d.type, "list_type");
}

TEST(CreateSchema, ResourceLimitsRequiredWithoutPool) {
  auto d = create_detail(R"({"image":{"uri":"x"},"entrypoint":["x"]})");
  EXPECT_EQ(d.msg, "Value error, resourceLimits is required when poolRef is "
                   "not provided.");
  d = create_detail(body(R"("resourceLimits":{"cpu":1})"));
  EXPECT_EQ(d.type, "string_type");
  EXPECT_EQ(d.loc, R"(["body","resourceLimits","cpu"])");
  d = create_detail(body(R"("resourceLimits":[])"));
  EXPECT_EQ(d.type, "dict_type");
}

TEST(CreateSchema, EnvAndMetadataValueTypes) {
  auto d = create_detail(body(R"("env":{"A":1})"));
  EXPECT_EQ(d.type, "string_type");
  EXPECT_EQ(d.loc, R"(["body","env","A"])");
  d = create_detail(body(R"("metadata":{"k":null})"));
  EXPECT_EQ(d.loc, R"(["body","metadata","k"])");
}

TEST(CreateSchema, CollectsAllFieldErrors) {
  auto d = create_detail(body(R"("timeout":1,"env":{"A":1},"secureAccess":"x")"));
  EXPECT_EQ(d.count, 3u);
  EXPECT_EQ(d.loc, R"(["body","timeout"])");
}

TEST(CreateSchema, PlatformRequiresOsAndArch) {
  auto d = create_detail(body(R"("platform":{"os":"linux"})"));
  EXPECT_EQ(d.type, "missing");
  EXPECT_EQ(d.loc, R"(["body","platform","arch"])");
  EXPECT_EQ(d.input, R"({"os":"linux"})");
}

TEST(CreateSchema, SecureAccessIsLaxBool) {
  EXPECT_EQ(create_detail(body(R"("secureAccess":"maybe")")).type,
            "bool_parsing");
  EXPECT_EQ(create_detail(body(R"("secureAccess":null)")).type, "bool_type");
  create_ok(body(R"("secureAccess":false)"));
  create_ok(body(R"("secureAccess":"no")"));
}

TEST(CreateSchema, CredentialProxyRequiresNetworkPolicy) {
  auto d = create_detail(body(R"("credentialProxy":{"enabled":true})"));
  EXPECT_EQ(d.msg, "Value error, credentialProxy.enabled requires "
                   "networkPolicy.");
  create_ok(body(R"("credentialProxy":{"enabled":true},"networkPolicy":{})"));
  create_ok(body(R"("credentialProxy":{"enabled":false})"));
}

TEST(CreateSchema, NetworkPolicyShape) {
  auto d = create_detail(body(R"("networkPolicy":{"egress":[{"action":"allow"}]})"));
  EXPECT_EQ(d.loc, R"(["body","networkPolicy","egress",0,"target"])");
  EXPECT_EQ(d.type, "missing");
  d = create_detail(
    body(R"("networkPolicy":{"egress":[{"action":"allow","target":""}]})"));
  EXPECT_EQ(d.type, "string_too_short");
  EXPECT_EQ(d.msg, "String should have at least 1 character");
  EXPECT_EQ(d.ctx, R"({"min_length":1})");
  d = create_detail(body(R"("networkPolicy":{"egress":null})"));
  EXPECT_EQ(d.type, "list_type");
  auto spec = create_ok(body(
    R"("networkPolicy":{"defaultAction":"deny","egress":[{"action":"allow","target":"pypi.org"}]})"));
  EXPECT_EQ(spec.network_policy_json,
            R"({"defaultAction":"deny","egress":[{"action":"allow","target":"pypi.org"}]})");
  EXPECT_EQ(create_ok(body(R"("networkPolicy":{})")).network_policy_json,
            R"({"egress":[]})");
  EXPECT_TRUE(create_ok(body(R"("networkPolicy":null)"))
                .network_policy_json.empty());
}

TEST(CreateSchema, PoolModeRules) {
  auto d = create_detail(
    R"({"extensions":{"poolRef":"p"},"snapshotId":"s"})");
  EXPECT_EQ(d.msg, "Value error, snapshotId cannot be used together with "
                   "poolRef.");
  d = create_detail(
    R"({"extensions":{"poolRef":"p"},"credentialProxy":{"enabled":true}})");
  EXPECT_EQ(d.msg, "Value error, credentialProxy.enabled cannot be used "
                   "together with poolRef.");
  // Blank poolRef is not pool mode.
  d = create_detail(R"({"extensions":{"poolRef":"  "}})");
  EXPECT_EQ(d.msg, "Value error, Exactly one of image or snapshotId must be "
                   "provided.");
}

TEST(CreateSchema, VolumeShape) {
  auto d = create_detail(body(R"("volumes":[{"name":"w","mountPath":"/w"}])"));
  EXPECT_EQ(d.type, "value_error");
  EXPECT_EQ(d.loc, R"(["body","volumes",0])");
  EXPECT_EQ(d.msg, "Value error, Exactly one backend (host, pvc, ossfs) must "
                   "be specified, but none was provided.");
  d = create_detail(body(
    R"("volumes":[{"name":"w","mountPath":"/w","host":{"path":"/data"},"pvc":{"claimName":"c"}}])"));
  EXPECT_THAT(d.msg, HasSubstr("but multiple were provided."));
  d = create_detail(body(
    R"("volumes":[{"name":"Bad_Name","mountPath":"/w","host":{"path":"/d"}}])"));
  EXPECT_EQ(d.type, "string_pattern_mismatch");
  EXPECT_EQ(d.loc, R"(["body","volumes",0,"name"])");
  EXPECT_EQ(d.msg, "String should match pattern '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'");
  d = create_detail(body(
    R"("volumes":[{"name":"w","mountPath":"w","host":{"path":"/d"}}])"));
  EXPECT_EQ(d.loc, R"(["body","volumes",0,"mountPath"])");
  d = create_detail(body(
    R"("volumes":[{"name":"w","mountPath":"/w","host":{"path":"data"}}])"));
  EXPECT_EQ(d.loc, R"(["body","volumes",0,"host","path"])");
  EXPECT_EQ(d.msg, R"(String should match pattern '^(/|[A-Za-z]:[\\/])')");
  d = create_detail(body(
    R"("volumes":[{"name":"w","mountPath":"/w","ossfs":{"bucket":"bkt","endpoint":"e"}}])"));
  EXPECT_EQ(d.loc, R"(["body","volumes",0,"ossfs"])");
  EXPECT_EQ(d.msg, "Value error, OSSFS inline credentials are required: "
                   "accessKeyId and accessKeySecret.");
  d = create_detail(body(
    R"("volumes":[{"name":"w","mountPath":"/w","ossfs":{"bucket":"b","endpoint":"e","accessKeyId":"i","accessKeySecret":"s"}}])"));
  EXPECT_EQ(d.type, "string_too_short");
  EXPECT_EQ(d.msg, "String should have at least 3 characters");
  d = create_detail(body(
    R"("volumes":[{"name":"w","mountPath":"/w","ossfs":{"bucket":"bkt","endpoint":"e","version":"3.0","accessKeyId":"i","accessKeySecret":"s"}}])"));
  EXPECT_EQ(d.type, "literal_error");
  EXPECT_EQ(d.msg, "Input should be '1.0' or '2.0'");
}

// -- create: service rules (400) ---------------------------------------------

TEST(CreateService, RenewExtendSecondsExtension) {
  create_ok(body(R"("extensions":{"access.renew.extend.seconds":"300"})"));
  create_ok(body(R"("extensions":{"access.renew.extend.seconds":" 1800 "})"));
  create_ok(body(R"("extensions":{"access.renew.extend.seconds":"86400"})"));
  expect_envelope(
    create_err(body(R"("extensions":{"access.renew.extend.seconds":"299"})")),
    400, "SANDBOX::INVALID_PARAMETER",
    "Invalid extensions[\"access.renew.extend.seconds\"]: must be between 300 "
    "and 86400 seconds (5 minutes to 24 hours inclusive), got 299.");
  expect_envelope(
    create_err(body(R"("extensions":{"access.renew.extend.seconds":"abc"})")),
    400, "SANDBOX::INVALID_PARAMETER",
    "Invalid extensions[\"access.renew.extend.seconds\"]: must be a base-10 "
    "integer string between 300 and 86400, got 'abc'.");
  auto r = create_err(body(R"("extensions":{"access.renew.extend.seconds":" "})"));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("empty value"));
  EXPECT_EQ(
    create_err(body(R"("extensions":{"access.renew.extend.seconds":"86401"})"))
      .status,
    400);
}

TEST(CreateService, PoolRefIsUnsupported) {
  expect_envelope(create_err(R"({"extensions":{"poolRef":"pool-a"}})"), 400,
                  "SANDBOX::UNSUPPORTED_POOL_REF",
                  "poolRef is not supported by the Docker provider. Use "
                  "Kubernetes BatchSandbox provider instead.");
}

TEST(CreateService, MetadataLabels) {
  auto r = create_err(body(R"("metadata":{"opensandbox.io/id":"x"})"));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("SANDBOX::INVALID_METADATA_LABEL"));
  EXPECT_THAT(r.body, HasSubstr("reserved prefix"));
  r = create_err(body(R"("metadata":{"bad key":"x"})"));
  EXPECT_THAT(r.body, HasSubstr("Metadata key 'bad key' is invalid"));
  r = create_err(body(R"("metadata":{"k":"bad value"})"));
  EXPECT_THAT(r.body, HasSubstr("Metadata value 'bad value' is invalid"));
  create_ok(body(R"("metadata":{"app.kubernetes.io/name":"web","empty":""})"));
}

TEST(CreateService, PlatformIsNormalized) {
  auto spec = create_ok(body(R"("platform":{"os":" Linux ","arch":"ARM64"})"));
  EXPECT_EQ(spec.platform_os, "linux");
  EXPECT_EQ(spec.platform_arch, "arm64");
  expect_envelope(create_err(body(R"("platform":{"os":"darwin","arch":"amd64"})")),
                  400, "SANDBOX::INVALID_PARAMETER",
                  "Unsupported platform.os 'darwin'. Supported values: "
                  "['linux', 'windows'].");
  expect_envelope(create_err(body(R"("platform":{"os":"linux","arch":"x86"})")),
                  400, "SANDBOX::INVALID_PARAMETER",
                  "Unsupported platform.arch 'x86'. Supported values: "
                  "['amd64', 'arm64'].");
}

TEST(CreateService, WindowsIsRejected) {
  expect_envelope(
    create_err(body(R"("platform":{"os":"windows","arch":"amd64"})")), 400,
    "SANDBOX::INVALID_PARAMETER",
    "Windows sandboxes are not supported by this server.");
}

TEST(CreateService, TimeoutUpperBound) {
  auto cfg = bridge_cfg();
  cfg.server.max_sandbox_timeout_seconds = 3600;
  EXPECT_EQ(create_ok(body(R"("timeout":3600)"), cfg).timeout_s, 3600);
  expect_envelope(create_err(body(R"("timeout":3601)"), cfg), 400,
                  "SANDBOX::INVALID_PARAMETER",
                  "Sandbox timeout 3601s exceeds configured maximum of "
                  "3600s.");
  // No cap configured.
  EXPECT_EQ(create_ok(body(R"("timeout":31536000)")).timeout_s, 31536000);
}

TEST(CreateService, TimeoutTooLargeToRepresent) {
  expect_envelope(create_err(body(R"("timeout":9223372036854775807)")), 400,
                  "SANDBOX::INVALID_PARAMETER",
                  "Sandbox timeout 9223372036854775807s is too large to "
                  "represent safely.");
  expect_envelope(create_err(body(R"("timeout":"99999999999999999999999")")),
                  400, "SANDBOX::INVALID_PARAMETER",
                  "Sandbox timeout 99999999999999999999999s is too large to "
                  "represent safely.");
  auto cfg = bridge_cfg();
  cfg.server.max_sandbox_timeout_seconds = 3600;
  // Overflow is checked before the cap, as in the original.
  EXPECT_THAT(create_err(body(R"("timeout":400000000000)"), cfg).body,
              HasSubstr("too large"));
}

TEST(CreateService, SecureAccessIsRejected) {
  expect_envelope(create_err(body(R"("secureAccess":true)")), 400,
                  "SANDBOX::INVALID_PARAMETER",
                  "secureAccess is not supported when runtime.type='docker'. "
                  "Use the Kubernetes runtime to create secured sandboxes.");
}

TEST(CreateService, NetworkPolicyNeedsBridgeAndEgressImage) {
  auto cfg = bridge_cfg();
  cfg.docker.network_mode = "host";
  expect_envelope(create_err(body(R"("networkPolicy":{})"), cfg), 400,
                  "SANDBOX::INVALID_PARAMETER",
                  "networkPolicy is not supported when docker "
                  "network_mode=host.");
  cfg.docker.network_mode = "mynet";
  expect_envelope(create_err(body(R"("networkPolicy":{})"), cfg), 400,
                  "SANDBOX::INVALID_PARAMETER",
                  "networkPolicy is not supported when docker "
                  "network_mode='mynet' (user-defined network). Use "
                  "network_mode='bridge' to enable network policy "
                  "enforcement.");
  cfg = bridge_cfg();
  cfg.egress.image.clear();
  expect_envelope(create_err(body(R"("networkPolicy":{})"), cfg), 400,
                  "SANDBOX::INVALID_PARAMETER",
                  "egress.image must be configured when networkPolicy is "
                  "provided.");
  // Without a policy, host mode is fine.
  cfg.docker.network_mode = "host";
  create_ok(body(), cfg);
}

TEST(CreateService, ResourceLimitsMustParse) {
  create_ok(body(R"("resourceLimits":{"cpu":"500m","memory":"512Mi","gpu":"all"})"));
  create_ok(body(R"("resourceLimits":{"cpu":"2","memory":"1.5Gi","gpu":"0"})"));
  create_ok(body(R"("resourceLimits":{"disk":"whatever"})"));
  auto r = create_err(body(R"("resourceLimits":{"memory":"lots"})"));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("SANDBOX::INVALID_PARAMETER"));
  EXPECT_THAT(r.body, HasSubstr("resourceLimits.memory 'lots'"));
  r = create_err(body(R"("resourceLimits":{"cpu":"-1"})"));
  EXPECT_THAT(r.body, HasSubstr("resourceLimits.cpu '-1'"));
  r = create_err(body(R"("resourceLimits":{"gpu":"two"})"));
  EXPECT_THAT(r.body, HasSubstr("resourceLimits.gpu 'two'"));
}

TEST(CreateService, ChecksRunInServiceOrder) {
  // Service order: extensions, poolRef, entrypoint, metadata, platform...
  auto r = create_err(body(R"("metadata":{"opensandbox.io/x":"y"},)"
                           R"("platform":{"os":"bad","arch":"amd64"})"));
  EXPECT_THAT(r.body, HasSubstr("INVALID_METADATA_LABEL"));
  r = create_err(body(R"("platform":{"os":"bad","arch":"amd64"},)"
                      R"("timeout":99999999999999,"secureAccess":true)"));
  EXPECT_THAT(r.body, HasSubstr("platform.os"));
}

TEST(CreateService, HostVolumesAreCheckedAgainstAllowlist) {
  auto vol = [](const std::string& path) {
    return body(R"("volumes":[{"name":"work","host":{"path":")" + path
                + R"("},"mountPath":"/mnt/work"}])");
  };
  auto spec = create_ok(vol("/data/opensandbox/u1"));
  EXPECT_EQ(spec.volumes_json,
            R"([{"name":"work","host":{"path":"/data/opensandbox/u1"},)"
            R"("mountPath":"/mnt/work","readOnly":false}])");
  create_ok(vol("/data/opensandbox"));
  expect_envelope(create_err(vol("/data/opensandbox-evil")), 400,
                  "VOLUME::HOST_PATH_NOT_ALLOWED",
                  "Volume 'work': Host path '/data/opensandbox-evil' is not "
                  "under any allowed prefix. Allowed prefixes: "
                  "['/data/opensandbox']");
  expect_envelope(create_err(vol("/data/opensandbox/../etc")), 400,
                  "VOLUME::INVALID_HOST_PATH",
                  "Volume 'work': Host path '/data/opensandbox/../etc' "
                  "contains path traversal component '..'.");
  expect_envelope(create_err(vol("/data//opensandbox")), 400,
                  "VOLUME::INVALID_HOST_PATH",
                  "Volume 'work': Host path '/data//opensandbox' is not "
                  "normalized. Remove redundant slashes.");
  EXPECT_THAT(create_err(vol("/data/opensandbox/")).body,
              HasSubstr("VOLUME::INVALID_HOST_PATH"));
  auto cfg = bridge_cfg();
  cfg.storage.allowed_host_paths = {"/"};
  create_ok(vol("/data/opensandbox-evil"), cfg);
  cfg.storage.allowed_host_paths.clear();
  expect_envelope(create_err(vol("/data/opensandbox"), cfg), 400,
                  "VOLUME::HOST_PATH_NOT_ALLOWED",
                  "Volume 'work': Host path '/data/opensandbox' is not under "
                  "any allowed prefix. Allowed prefixes: []");
}

TEST(CreateService, WindowsDriveHostPaths) {
  auto cfg = bridge_cfg();
  cfg.storage.allowed_host_paths = {"D:\\sandbox\\"};
  create_ok(body(R"("volumes":[{"name":"w","host":{"path":"d:/sandbox/a"},)"
                 R"("mountPath":"/w"}])"),
            cfg);
}

TEST(CreateService, VolumeServiceRules) {
  auto r = create_err(body(
    R"("volumes":[{"name":"a","host":{"path":"/data/opensandbox"},"mountPath":"/a"},)"
    R"({"name":"a","host":{"path":"/data/opensandbox"},"mountPath":"/b"}])"));
  expect_envelope(r, 400, "VOLUME::DUPLICATE_NAME",
                  "Duplicate volume name 'a'. Each volume must have a unique "
                  "name.");
  r = create_err(body(
    R"("volumes":[{"name":"a","pvc":{"claimName":"c"},"mountPath":"/a","subPath":"../x"}])"));
  expect_envelope(r, 400, "VOLUME::INVALID_SUB_PATH",
                  "Volume 'a': SubPath '../x' contains path traversal '..' "
                  "which is not allowed.");
  r = create_err(body(
    R"("volumes":[{"name":"a","pvc":{"claimName":"c"},"mountPath":"/a","subPath":"/abs"}])"));
  EXPECT_THAT(r.body, HasSubstr("VOLUME::INVALID_SUB_PATH"));
  r = create_err(body(
    R"("volumes":[{"name":"a","ossfs":{"bucket":"bkt","endpoint":"e","options":["-o x"],)"
    R"("accessKeyId":"i","accessKeySecret":"s"},"mountPath":"/a"}])"));
  EXPECT_THAT(r.body, HasSubstr("VOLUME::INVALID_OSSFS_OPTION"));
  auto spec = create_ok(body(
    R"("volumes":[{"name":"a","pvc":{"claimName":"cache"},"mountPath":"/a","readOnly":true,"subPath":"x/y"}])"));
  EXPECT_EQ(spec.volumes_json,
            R"([{"name":"a","pvc":{"claimName":"cache","createIfNotExists":true,)"
            R"("deleteOnSandboxTermination":false},"mountPath":"/a",)"
            R"("readOnly":true,"subPath":"x/y"}])");
}

} // namespace
} // namespace osb::codec
