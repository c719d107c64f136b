#include "core/codec.hpp"

#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace osb::codec {
namespace {

using ::testing::HasSubstr;

/// A minimal valid image-based create body plus `extra` members.
std::string body(const std::string& extra = "") {
  std::string b = R"({"image":{"uri":"python:3.11"},"entrypoint":["python"],)"
                  R"("resourceLimits":{})";
  if (!extra.empty())
    b += "," + extra;
  return b + "}";
}

node_config bridge_cfg() {
  node_config cfg;
  cfg.docker.network_mode = "bridge";
  cfg.egress.image = "opensandbox/egress:v1";
  cfg.storage.allowed_host_paths = {"/data/opensandbox"};
  return cfg;
}

sandbox_spec create_ok(const std::string& json,
                       const node_config& cfg = bridge_cfg()) {
  auto r = decode_create(json, cfg);
  if (auto rej = std::get_if<rejection>(&r)) {
    ADD_FAILURE() << rej->status << " " << rej->body;
    return {};
  }
  return std::get<sandbox_spec>(r);
}

rejection create_err(const std::string& json,
                     const node_config& cfg = bridge_cfg()) {
  auto r = decode_create(json, cfg);
  if (!std::holds_alternative<rejection>(r)) {
    ADD_FAILURE() << "expected a rejection for " << json;
    return {};
  }
  return std::get<rejection>(r);
}

/// The first entry of a 422 `detail` array.
struct detail {
  std::string type;
  std::string loc;
  std::string msg;
  std::string input;
  std::string ctx;
  size_t count = 0;
};

std::string dump(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  return sb.GetString();
}

detail first_detail(const rejection& r) {
  EXPECT_EQ(r.status, 422) << r.body;
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  detail d;
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("detail")) {
    ADD_FAILURE() << "not a detail body: " << r.body;
    return d;
  }
  auto& xs = doc["detail"];
  d.count = xs.Size();
  auto& x = xs[0];
  d.type = x["type"].GetString();
  d.loc = dump(x["loc"]);
  d.msg = x["msg"].GetString();
  d.input = x.HasMember("input") ? dump(x["input"]) : "<none>";
  d.ctx = x.HasMember("ctx") ? dump(x["ctx"]) : "";
  return d;
}

detail create_detail(const std::string& json,
                     const node_config& cfg = bridge_cfg()) {
  return first_detail(create_err(json, cfg));
}

/// Expects a 400-style envelope.
void expect_envelope(const rejection& r, int status, const std::string& code,
                     const std::string& message) {
  EXPECT_EQ(r.status, status) << r.body;
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  ASSERT_TRUE(doc.IsObject()) << r.body;
  EXPECT_EQ(std::string{doc["code"].GetString()}, code);
  EXPECT_EQ(std::string{doc["message"].GetString()}, message);
}

// -- time ---------------------------------------------------------------------

TEST(FormatTime, WholeSecondsHaveNoFraction) {
  EXPECT_EQ(format_time(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_time(1781260200LL * 1000000), "2026-06-12T10:30:00Z");
}

TEST(FormatTime, MicrosecondsUseSixDigits) {
  EXPECT_EQ(format_time(1781260200LL * 1000000 + 123456),
            "2026-06-12T10:30:00.123456Z");
  EXPECT_EQ(format_time(1781260200LL * 1000000 + 1),
            "2026-06-12T10:30:00.000001Z");
}

TEST(FormatTime, HandlesLeapDaysAndPreEpoch) {
  EXPECT_EQ(format_time(951782400LL * 1000000), "2000-02-29T00:00:00Z");
  EXPECT_EQ(format_time(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(format_time(253402300799LL * 1000000), "9999-12-31T23:59:59Z");
}

int64_t parsed(std::string_view x) {
  int64_t us = -42;
  EXPECT_TRUE(parse_time(x, us)) << x;
  return us;
}

TEST(ParseTime, Rfc3339WithZulu) {
  EXPECT_EQ(parsed("2026-06-12T10:30:00Z"), 1781260200LL * 1000000);
  EXPECT_EQ(parsed("2026-06-12t10:30:00z"), 1781260200LL * 1000000);
  EXPECT_EQ(parsed("2026-06-12T10:30:00.123456Z"),
            1781260200LL * 1000000 + 123456);
}

TEST(ParseTime, OffsetsAreConvertedToUtc) {
  EXPECT_EQ(parsed("2026-06-12T12:30:00+02:00"), 1781260200LL * 1000000);
  EXPECT_EQ(parsed("2026-06-12T05:00:00-05:30"), 1781260200LL * 1000000);
  EXPECT_EQ(parsed("2026-06-12T12:30:00+0200"), 1781260200LL * 1000000);
}

TEST(ParseTime, NaiveMeansUtc) {
  EXPECT_EQ(parsed("2026-06-12T10:30:00"), 1781260200LL * 1000000);
  EXPECT_EQ(parsed("2026-06-12 10:30:00"), 1781260200LL * 1000000);
  EXPECT_EQ(parsed("2026-06-12T10:30"), 1781260200LL * 1000000);
  EXPECT_EQ(parsed("2026-06-12"), 1781222400LL * 1000000);
}

TEST(ParseTime, FractionsAreTruncatedToMicroseconds) {
  EXPECT_EQ(parsed("2026-06-12T10:30:00.123456789Z"),
            1781260200LL * 1000000 + 123456);
  EXPECT_EQ(parsed("2026-06-12T10:30:00.5Z"), 1781260200LL * 1000000 + 500000);
  int64_t us = 0;
  EXPECT_FALSE(parse_time("2026-06-12T10:30:00.1234567891Z", us));
}

TEST(ParseTime, NumbersAreUnixSeconds) {
  EXPECT_EQ(parsed("1781260200"), 1781260200LL * 1000000);
  EXPECT_EQ(parsed("1781260200.25"), 1781260200LL * 1000000 + 250000);
  // Pydantic reads values beyond 2e10 as milliseconds.
  EXPECT_EQ(parsed("1781260200000"), 1781260200LL * 1000000);
}

TEST(ParseTime, RejectsGarbage) {
  int64_t us = 0;
  for (auto x : {"", "tomorrow", "2026-13-01T00:00:00Z", "2026-02-30",
                 "2026-06-12T24:00:00Z", "2026-06-12T10:60:00Z",
                 "2026-06-12T10:30:00Zjunk", "2026/06/12", "2026-06-12X10:30",
                 "0000-01-01"})
    EXPECT_FALSE(parse_time(x, us)) << x;
}

TEST(ParseTime, RoundTripsFormatTime) {
  for (int64_t us : {0LL, 1LL, 1781260200123456LL, 951782400000000LL}) {
    int64_t back = 0;
    ASSERT_TRUE(parse_time(format_time(us), back));
    EXPECT_EQ(back, us);
  }
}

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

// -- renew ---------------------------------------------------------------------

TEST(DecodeRenew, ParsesTimestamps) {
  auto r = decode_renew(R"({"expiresAt":"2026-06-12T12:30:00+02:00"})");
  ASSERT_TRUE(std::holds_alternative<int64_t>(r));
  EXPECT_EQ(std::get<int64_t>(r), 1781260200LL * 1000000);
  r = decode_renew(R"({"expiresAt":1781260200})");
  EXPECT_EQ(std::get<int64_t>(r), 1781260200LL * 1000000);
  r = decode_renew(R"({"expiresAt":1781260200.5})");
  EXPECT_EQ(std::get<int64_t>(r), 1781260200LL * 1000000 + 500000);
  r = decode_renew(R"({"expiresAt":"2026-06-12T10:30:00.123456789"})");
  EXPECT_EQ(std::get<int64_t>(r), 1781260200LL * 1000000 + 123456);
}

TEST(DecodeRenew, RejectsMissingOrBadValues) {
  auto d = first_detail(std::get<rejection>(decode_renew("{}")));
  EXPECT_EQ(d.type, "missing");
  EXPECT_EQ(d.loc, R"(["body","expiresAt"])");
  d = first_detail(std::get<rejection>(decode_renew(R"({"expiresAt":"soon"})")));
  EXPECT_EQ(d.type, "datetime_from_date_parsing");
  EXPECT_EQ(d.loc, R"(["body","expiresAt"])");
  EXPECT_THAT(d.msg, HasSubstr("Input should be a valid datetime or date, "));
  d = first_detail(std::get<rejection>(decode_renew(R"({"expiresAt":true})")));
  EXPECT_EQ(d.type, "datetime_type");
  d = first_detail(std::get<rejection>(decode_renew("not json")));
  EXPECT_EQ(d.type, "json_invalid");
  d = first_detail(std::get<rejection>(decode_renew("")));
  EXPECT_EQ(d.type, "missing");
}

// -- patch ---------------------------------------------------------------------

TEST(DecodePatch, SplitsSetAndRemove) {
  auto r = decode_patch(R"({"a":"1","b":null,"c":""})");
  ASSERT_TRUE(std::holds_alternative<metadata_patch>(r));
  auto& p = std::get<metadata_patch>(r);
  EXPECT_EQ(p.set, (string_map{{"a", "1"}, {"c", ""}}));
  EXPECT_EQ(p.remove, std::vector<std::string>{"b"});
  auto empty = std::get<metadata_patch>(decode_patch("{}"));
  EXPECT_TRUE(empty.set.empty());
  EXPECT_TRUE(empty.remove.empty());
}

TEST(DecodePatch, LastDuplicateWins) {
  auto p = std::get<metadata_patch>(decode_patch(R"({"a":"1","a":null})"));
  EXPECT_TRUE(p.set.empty());
  EXPECT_EQ(p.remove, std::vector<std::string>{"a"});
}

TEST(DecodePatch, NonStringValuesAre422) {
  auto d = first_detail(std::get<rejection>(decode_patch(R"({"a":1})")));
  EXPECT_EQ(d.type, "string_type");
  EXPECT_EQ(d.loc, R"(["body","a"])");
  d = first_detail(std::get<rejection>(decode_patch("[]")));
  EXPECT_EQ(d.type, "dict_type");
  EXPECT_EQ(d.loc, R"(["body"])");
}

TEST(DecodePatch, ReservedKeyIsRejectedEvenForNull) {
  for (auto b : {R"({"opensandbox.io/id":"x"})", R"({"opensandbox.io/id":null})"})
    expect_envelope(std::get<rejection>(decode_patch(b)), 400,
                    "INVALID_METADATA_LABEL",
                    "Metadata key 'opensandbox.io/id' is reserved "
                    "(opensandbox.io/ prefix).");
}

TEST(DecodePatch, LabelRulesApplyOnlyToValues) {
  auto r = decode_patch(R"({"bad key":"x"})");
  ASSERT_TRUE(std::holds_alternative<rejection>(r));
  EXPECT_THAT(std::get<rejection>(r).body,
              HasSubstr("SANDBOX::INVALID_METADATA_LABEL"));
  auto p = std::get<metadata_patch>(decode_patch(R"({"bad key":null})"));
  EXPECT_EQ(p.remove, std::vector<std::string>{"bad key"});
}

// -- list query ----------------------------------------------------------------

list_query query_ok(std::string_view qs) {
  auto r = decode_list_query(qs);
  if (auto rej = std::get_if<rejection>(&r)) {
    ADD_FAILURE() << rej->body;
    return {};
  }
  return std::get<list_query>(r);
}

TEST(DecodeListQuery, Defaults) {
  auto q = query_ok("");
  EXPECT_EQ(q.page, 1);
  EXPECT_EQ(q.page_size, 20);
  EXPECT_TRUE(q.states.empty());
  EXPECT_FALSE(q.match_nothing);
  EXPECT_TRUE(q.metadata.empty());
}

TEST(DecodeListQuery, LeadingQuestionMarkIsIgnored) {
  EXPECT_EQ(query_ok("?page=2").page, 2);
}

TEST(DecodeListQuery, StatesAreCaseInsensitiveAndRepeatable) {
  auto q = query_ok("state=running&state=Paused&foo=bar");
  EXPECT_EQ(q.states,
            (std::vector<sandbox_state>{sandbox_state::running,
                                        sandbox_state::paused}));
  EXPECT_FALSE(q.match_nothing);
}

TEST(DecodeListQuery, EmptyOrUnknownStateMatchesNothing) {
  EXPECT_TRUE(query_ok("state=").match_nothing);
  EXPECT_TRUE(query_ok("state=bogus").match_nothing);
  auto q = query_ok("state=bogus&state=running");
  EXPECT_FALSE(q.match_nothing);
  EXPECT_EQ(q.states, std::vector<sandbox_state>{sandbox_state::running});
}

TEST(DecodeListQuery, MetadataIsDecodedTwice) {
  auto q = query_ok("metadata=team%3Dinfra%26project%3Dalpha");
  EXPECT_EQ(q.metadata, (string_map{{"team", "infra"}, {"project", "alpha"}}));
  q = query_ok("metadata=note%3D%26name%3Da%252Bb%2Bc");
  EXPECT_EQ(q.metadata, (string_map{{"note", ""}, {"name", "a+b c"}}));
  EXPECT_TRUE(query_ok("metadata=").metadata.empty());
}

TEST(DecodeListQuery, MalformedMetadataIs400) {
  expect_envelope(
    std::get<rejection>(decode_list_query("metadata=team%3Dinfra%26broken")),
    400, "INVALID_METADATA_FORMAT",
    "Invalid metadata format: bad query field: 'broken'");
  expect_envelope(
    std::get<rejection>(decode_list_query("metadata=a%3D1%26")), 400,
    "INVALID_METADATA_FORMAT", "Invalid metadata format: bad query field: ''");
}

TEST(DecodeListQuery, PageBounds) {
  auto q = query_ok("page=3&pageSize=200");
  EXPECT_EQ(q.page, 3);
  EXPECT_EQ(q.page_size, 200);
  auto r = std::get<rejection>(decode_list_query("page=0"));
  EXPECT_EQ(r.body,
            R"({"detail":[{"type":"greater_than_equal","loc":["query","page"],)"
            R"("msg":"Input should be greater than or equal to 1","input":"0",)"
            R"("ctx":{"ge":1}}]})");
  auto d = first_detail(std::get<rejection>(decode_list_query("pageSize=201")));
  EXPECT_EQ(d.type, "less_than_equal");
  EXPECT_EQ(d.msg, "Input should be less than or equal to 200");
  EXPECT_EQ(d.ctx, R"({"le":200})");
  d = first_detail(std::get<rejection>(decode_list_query("pageSize=0")));
  EXPECT_EQ(d.type, "greater_than_equal");
  d = first_detail(std::get<rejection>(decode_list_query("page=abc")));
  EXPECT_EQ(d.type, "int_parsing");
  EXPECT_EQ(d.input, R"("abc")");
  d = first_detail(std::get<rejection>(decode_list_query("page=0&pageSize=0")));
  EXPECT_EQ(d.count, 2u);
}

TEST(DecodeListQuery, ValidationErrorsPrecedeMetadataErrors) {
  auto r = std::get<rejection>(decode_list_query("metadata=broken&page=0"));
  EXPECT_EQ(r.status, 422);
}

// -- encoders ------------------------------------------------------------------

sandbox_view sample() {
  sandbox_view x;
  x.id = "0b6c";
  x.image = "python:3.11";
  x.state = sandbox_state::running;
  x.reason = "CONTAINER_RUNNING";
  x.message = "Sandbox container is running.";
  x.last_transition_us = 1781260200412345;
  x.metadata = {{"team", "backend"}};
  x.entrypoint = {"python", "-m", "http.server", "8000"};
  x.expires_us = 1781263800101010;
  x.created_us = 1781260200412345;
  return x;
}

TEST(EncodeSandbox, MatchesWireExample) {
  auto json = encode_sandbox(sample());
  EXPECT_THAT(json, HasSubstr(R"("expiresAt":"2026-06-12T11:30:00.101010Z")"));
  EXPECT_EQ(json,
            R"({"id":"0b6c","image":{"uri":"python:3.11"},)"
            R"("status":{"state":"Running","reason":"CONTAINER_RUNNING",)"
            R"("message":"Sandbox container is running.",)"
            R"("lastTransitionAt":"2026-06-12T10:30:00.412345Z"},)"
            R"("metadata":{"team":"backend"},)"
            R"("entrypoint":["python","-m","http.server","8000"],)"
            R"("expiresAt":"2026-06-12T11:30:00.101010Z",)"
            R"("createdAt":"2026-06-12T10:30:00.412345Z"})");
}

TEST(EncodeSandbox, OmitsAbsentFields) {
  sandbox_view x;
  x.id = "i";
  x.created_us = 0;
  EXPECT_EQ(encode_sandbox(x),
            R"({"id":"i","status":{"state":"Pending"},"entrypoint":[],)"
            R"("createdAt":"1970-01-01T00:00:00Z"})");
}

TEST(EncodeSandbox, SnapshotReplacesImageAndPlatformIsShown) {
  auto x = sample();
  x.snapshot_id = "snap-1";
  x.platform_os = "linux";
  x.platform_arch = "arm64";
  auto json = encode_sandbox(x);
  EXPECT_THAT(json, HasSubstr(R"("snapshotId":"snap-1")"));
  EXPECT_THAT(json, Not(HasSubstr("\"image\"")));
  EXPECT_THAT(json, HasSubstr(R"("platform":{"os":"linux","arch":"arm64"})"));
}

TEST(EncodeCreateResponse, HasNoImageAndKeepsFieldOrder) {
  auto x = sample();
  x.platform_os = "linux";
  x.platform_arch = "amd64";
  EXPECT_EQ(encode_create_response(x),
            R"({"id":"0b6c","status":{"state":"Running",)"
            R"("reason":"CONTAINER_RUNNING",)"
            R"("message":"Sandbox container is running.",)"
            R"("lastTransitionAt":"2026-06-12T10:30:00.412345Z"},)"
            R"("metadata":{"team":"backend"},)"
            R"("platform":{"os":"linux","arch":"amd64"},)"
            R"("expiresAt":"2026-06-12T11:30:00.101010Z",)"
            R"("createdAt":"2026-06-12T10:30:00.412345Z",)"
            R"("entrypoint":["python","-m","http.server","8000"]})");
  x.metadata.clear();
  x.expires_us = 0;
  auto json = encode_create_response(x);
  EXPECT_THAT(json, Not(HasSubstr("metadata")));
  EXPECT_THAT(json, Not(HasSubstr("expiresAt")));
}

std::string pagination_of(int32_t page, int32_t size, int64_t total) {
  list_page p;
  p.page = page;
  p.page_size = size;
  p.total_items = total;
  return encode_list(p);
}

TEST(EncodeList, PaginationMath) {
  EXPECT_EQ(pagination_of(1, 20, 0),
            R"({"items":[],"pagination":{"page":1,"pageSize":20,)"
            R"("totalItems":0,"totalPages":0,"hasNextPage":false}})");
  EXPECT_THAT(pagination_of(1, 20, 20),
              HasSubstr(R"("totalPages":1,"hasNextPage":false)"));
  EXPECT_THAT(pagination_of(1, 20, 21),
              HasSubstr(R"("totalPages":2,"hasNextPage":true)"));
  EXPECT_THAT(pagination_of(2, 20, 21),
              HasSubstr(R"("totalPages":2,"hasNextPage":false)"));
  EXPECT_THAT(pagination_of(5, 20, 21),
              HasSubstr(R"("page":5,"pageSize":20,"totalItems":21,)"
                        R"("totalPages":2,"hasNextPage":false)"));
  EXPECT_THAT(pagination_of(1, 1, 3),
              HasSubstr(R"("totalPages":3,"hasNextPage":true)"));
}

TEST(EncodeList, ItemsUseSandboxShape) {
  list_page p;
  p.items = {sample()};
  p.total_items = 1;
  auto json = encode_list(p);
  EXPECT_EQ(json, R"({"items":[)" + encode_sandbox(sample())
                    + R"(],"pagination":{"page":1,"pageSize":20,)"
                      R"("totalItems":1,"totalPages":1,"hasNextPage":false}})");
}

TEST(EncodeEndpoint, HeadersOnlyWhenPresent) {
  endpoint_view e;
  e.endpoint = "192.168.1.100:50002/proxy/44772";
  EXPECT_EQ(encode_endpoint(e),
            R"({"endpoint":"192.168.1.100:50002/proxy/44772"})");
  e.headers = {{"OPENSANDBOX-EGRESS-AUTH", "tok"}};
  EXPECT_EQ(encode_endpoint(e),
            R"({"endpoint":"192.168.1.100:50002/proxy/44772",)"
            R"("headers":{"OPENSANDBOX-EGRESS-AUTH":"tok"}})");
}

TEST(EncodeMisc, RenewErrorAndDetail) {
  EXPECT_EQ(encode_renew(1781260200LL * 1000000),
            R"({"expiresAt":"2026-06-12T10:30:00Z"})");
  EXPECT_EQ(encode_error({404, "DOCKER::SANDBOX_NOT_FOUND",
                          "Sandbox 123 not found."}),
            R"({"code":"DOCKER::SANDBOX_NOT_FOUND",)"
            R"("message":"Sandbox 123 not found."})");
  EXPECT_EQ(encode_error({400, "X", "quote \" and \\ and \n"}),
            R"({"code":"X","message":"quote \" and \\ and \n"})");
  EXPECT_EQ(encode_detail("int_parsing", R"(["path","port"])",
                          "Input should be a valid integer"),
            R"({"detail":[{"type":"int_parsing","loc":["path","port"],)"
            R"("msg":"Input should be a valid integer","input":null}]})");
  EXPECT_EQ(encode_detail("int_parsing", R"(["path","port"])", "m",
                          R"("abc")", R"({"x":1})"),
            R"({"detail":[{"type":"int_parsing","loc":["path","port"],)"
            R"("msg":"m","input":"abc","ctx":{"x":1}}]})");
}

// -- persistence ---------------------------------------------------------------

TEST(SpecJson, RoundTripsEveryField) {
  sandbox_spec s;
  s.image = "python:3.11";
  s.image_username = "u";
  s.image_password = "p\"w";
  s.snapshot_id = "snap";
  s.entrypoint = {"a", "b c"};
  s.env = {{"A", "1"}, {"B", ""}};
  s.metadata = {{"team", "x"}};
  s.resource_limits = {{"cpu", "1"}};
  s.platform_os = "linux";
  s.platform_arch = "amd64";
  s.timeout_s = 3600;
  s.extensions = {{"k", "v"}};
  s.network_policy_json = R"({"egress":[]})";
  s.volumes_json = R"([{"name":"a"}])";
  sandbox_spec back;
  ASSERT_TRUE(spec_from_json(spec_to_json(s), back));
  EXPECT_EQ(back.image, s.image);
  EXPECT_EQ(back.image_username, s.image_username);
  EXPECT_EQ(back.image_password, s.image_password);
  EXPECT_EQ(back.snapshot_id, s.snapshot_id);
  EXPECT_EQ(back.entrypoint, s.entrypoint);
  EXPECT_EQ(back.env, s.env);
  EXPECT_EQ(back.metadata, s.metadata);
  EXPECT_EQ(back.resource_limits, s.resource_limits);
  EXPECT_EQ(back.platform_os, s.platform_os);
  EXPECT_EQ(back.platform_arch, s.platform_arch);
  EXPECT_EQ(back.timeout_s, s.timeout_s);
  EXPECT_EQ(back.extensions, s.extensions);
  EXPECT_EQ(back.network_policy_json, s.network_policy_json);
  EXPECT_EQ(back.volumes_json, s.volumes_json);
}

TEST(SpecJson, RejectsGarbage) {
  sandbox_spec s;
  EXPECT_FALSE(spec_from_json("not json", s));
  EXPECT_FALSE(spec_from_json("[]", s));
  EXPECT_FALSE(spec_from_json(R"({"entrypoint":"x"})", s));
  EXPECT_FALSE(spec_from_json(R"({"env":{"a":1}})", s));
  EXPECT_TRUE(spec_from_json("{}", s));
}

TEST(MapJson, RoundTrips) {
  string_map m = {{"a", "1"}, {"b/c", "ü"}};
  string_map back;
  ASSERT_TRUE(map_from_json(map_to_json(m), back));
  EXPECT_EQ(back, m);
  EXPECT_EQ(map_to_json({}), "{}");
  EXPECT_FALSE(map_from_json(R"({"a":1})", back));
  EXPECT_FALSE(map_from_json("[]", back));
}

// -- misc ----------------------------------------------------------------------

TEST(UrlDecode, DecodesPercentAndPlus) {
  EXPECT_EQ(url_decode("a%3Db%26c"), "a=b&c");
  EXPECT_EQ(url_decode("a+b"), "a b");
  EXPECT_EQ(url_decode("%2B"), "+");
  EXPECT_EQ(url_decode("%e2%82%ac"), "\xe2\x82\xac");
  EXPECT_EQ(url_decode("100%"), "100%");
  EXPECT_EQ(url_decode("%zz"), "%zz");
  EXPECT_EQ(url_decode("%4"), "%4");
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

TEST(Ids, UuidIsVersion4WithHyphens) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = make_uuid();
    ASSERT_EQ(id.size(), 36u);
    EXPECT_EQ(id[8], '-');
    EXPECT_EQ(id[13], '-');
    EXPECT_EQ(id[18], '-');
    EXPECT_EQ(id[23], '-');
    EXPECT_EQ(id[14], '4');
    EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a'
                || id[19] == 'b');
    for (size_t j = 0; j < id.size(); ++j) {
      if (j != 8 && j != 13 && j != 18 && j != 23) {
        EXPECT_TRUE(is_hex(id[j])) << id;
      }
    }
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Ids, RequestIdIs32LowercaseHex) {
  auto id = make_request_id();
  ASSERT_EQ(id.size(), 32u);
  for (auto c : id)
    EXPECT_TRUE(is_hex(c)) << id;
  EXPECT_NE(make_request_id(), id);
}

TEST(Time, NowIsPlausible) {
  auto now = now_us();
  EXPECT_GT(now, 1700000000LL * 1000000);
  EXPECT_LT(now, 4102444800LL * 1000000);
}

} // namespace
} // namespace osb::codec
