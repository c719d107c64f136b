#pragma once

// Helpers of the request decoder tests (test/unit/http_codec_*_test.cpp):
// create bodies, a bridge-mode configuration, and readers of 422 details
// and error envelopes.

#include "http/codec_request.hpp"

#include <string>
#include <variant>

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace osb::codec {


/// A minimal valid image-based create body plus `extra` members.
inline std::string body(const std::string& extra = "") {
  std::string b = R"({"image":{"uri":"python:3.11"},"entrypoint":["python"],)"
                  R"("resourceLimits":{})";
  if (!extra.empty())
    b += "," + extra;
  return b + "}";
}

inline node_config bridge_cfg() {
  node_config cfg;
  cfg.docker.network_mode = "bridge";
  cfg.egress.image = "opensandbox/egress:v1";
  cfg.storage.allowed_host_paths = {"/data/opensandbox"};
  return cfg;
}

inline sandbox_spec create_ok(const std::string& json,
                       const node_config& cfg = bridge_cfg()) {
  auto r = decode_create(json, cfg);
  if (auto rej = std::get_if<rejection>(&r)) {
    ADD_FAILURE() << rej->status << " " << rej->body;
    return {};
  }
  return std::get<sandbox_spec>(r);
}

inline rejection create_err(const std::string& json,
                     const node_config& cfg = bridge_cfg()) {
  auto r = decode_create(json, cfg);
  if (!std::holds_alternative<rejection>(r)) {
    ADD_FAILURE() << "expected a rejection for " << json;
    return {};
  }
  return std::get<rejection>(r);
}

/// The first entry of a 422 `detail` array.
struct detail_entry {
  std::string type;
  std::string loc;
  std::string msg;
  std::string input;
  std::string ctx;
  size_t count = 0;
};

inline std::string dump(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  return sb.GetString();
}

inline detail_entry first_detail(const rejection& r) {
  EXPECT_EQ(r.status, 422) << r.body;
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  detail_entry d;
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

inline detail_entry create_detail(const std::string& json,
                     const node_config& cfg = bridge_cfg()) {
  return first_detail(create_err(json, cfg));
}

/// Expects a 400-style envelope.
inline void expect_envelope(const rejection& r, int status, const std::string& code,
                     const std::string& message) {
  EXPECT_EQ(r.status, status) << r.body;
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  ASSERT_TRUE(doc.IsObject()) << r.body;
  EXPECT_EQ(std::string{doc["code"].GetString()}, code);
  EXPECT_EQ(std::string{doc["message"].GetString()}, message);
}

} // namespace osb::codec
