#include "net/egress/api.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace osb::egress {

namespace {

constexpr std::string_view json_type = "application/json";
constexpr std::string_view text_type = "text/plain; charset=utf-8";

bool blank(const std::string& x) {
  return x.find_first_not_of(" \t\r\n") == std::string::npos;
}

api_response json_response(std::string body) {
  api_response res;
  res.status = 200;
  res.content_type = std::string{json_type};
  res.body = std::move(body);
  res.body += '\n';
  return res;
}

api_response method_not_allowed(std::string allow) {
  auto res = text_error(405, "method not allowed");
  res.allow = std::move(allow);
  return res;
}

} // namespace

api_response text_error(int status, std::string_view msg) {
  api_response res;
  res.status = status;
  res.content_type = std::string{text_type};
  res.body = std::string{msg} + "\n";
  return res;
}

bool policy_api::authorized(const std::optional<std::string>& provided) const {
  if (opts_.token.empty())
    return true;
  if (!provided || provided->size() != opts_.token.size())
    return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < provided->size(); ++i)
    diff |= static_cast<unsigned char>((*provided)[i] ^ opts_.token[i]);
  return diff == 0;
}

api_response policy_api::handle(const api_request& req) {
  auto path = req.target.substr(0, req.target.find('?'));
  if (path == "/healthz") {
    api_response res;
    res.content_type = std::string{text_type};
    res.body = "ok";
    return res;
  }
  if (path == "/policy") {
    if (!authorized(req.auth))
      return text_error(401, "unauthorized");
    if (req.method == "GET")
      return get_policy();
    if (req.method == "POST" || req.method == "PUT")
      return post_policy(req.body);
    if (req.method == "PATCH")
      return patch_policy(req.body);
    if (req.method == "DELETE")
      return delete_policy(req.body);
    return method_not_allowed("GET, POST, PUT, PATCH, DELETE");
  }
  if (path == "/credential-vault/_active") {
    // Only over the local unix socket in the original; never over TCP.
    if (req.method != "GET")
      return method_not_allowed("GET");
    return text_error(403, "forbidden");
  }
  if (path == "/credential-vault"
      || path.compare(0, 18, "/credential-vault/") == 0) {
    if (!authorized(req.auth))
      return text_error(401, "unauthorized");
    // No credential proxy (MITM) in this sidecar: reads find no vault,
    // writes fail their precondition, as the original does without MITM.
    if (req.method == "GET")
      return text_error(404, "credential vault not found");
    return text_error(412, "credential proxy is not enabled");
  }
  return text_error(404, "404 page not found");
}

api_response policy_api::status(const policy& p, std::string_view reason,
                                bool with_enforcement) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w{buf};
  w.StartObject();
  w.Key("status");
  w.String("ok");
  w.Key("mode");
  auto mode = mode_of(p);
  w.String(mode.data(), static_cast<rapidjson::SizeType>(mode.size()));
  if (with_enforcement) {
    w.Key("enforcementMode");
    auto e = to_string(opts_.mode);
    w.String(e.data(), static_cast<rapidjson::SizeType>(e.size()));
  }
  if (!reason.empty()) {
    w.Key("reason");
    w.String(reason.data(), static_cast<rapidjson::SizeType>(reason.size()));
  }
  w.EndObject();
  return json_response({buf.GetString(), buf.GetSize()});
}

api_response policy_api::get_policy() {
  auto& p = store_.current();
  auto res = status(p, {});
  // Splice the policy in as the last member: {"status":…,"policy":{…}}.
  res.body.resize(res.body.size() - 2); // drop "}\n"
  res.body += ",\"policy\":";
  res.body += to_json(p);
  res.body += "}\n";
  return res;
}

std::optional<api_response> policy_api::check_limit(size_t count) const {
  if (opts_.max_rules == 0 || count <= opts_.max_rules)
    return std::nullopt;
  return text_error(413, "egress rule total count " + std::to_string(count)
                           + " exceeds limit "
                           + std::to_string(opts_.max_rules));
}

api_response policy_api::commit(policy next) {
  auto copy = next;
  if (auto err = store_.commit(std::move(next)))
    return text_error(500, *err);
  return status(copy, {});
}

api_response policy_api::post_policy(const std::string& body) {
  if (blank(body)) {
    if (auto err = store_.commit(policy{}))
      return text_error(500, *err);
    return status(policy{}, "policy reset to default deny-all", false);
  }
  std::string error;
  auto p = parse_policy(body, &error);
  if (!p)
    return text_error(400, "invalid policy: " + error);
  if (auto res = check_limit(p->egress.size()))
    return *res;
  return commit(std::move(*p));
}

api_response policy_api::patch_policy(const std::string& body) {
  if (blank(body))
    return text_error(400, "empty body");
  std::string error;
  auto rules = parse_rules(body, &error);
  if (!rules)
    return text_error(400, "invalid patch rules: " + error);
  if (rules->empty())
    return text_error(400, "invalid patch rules: empty array");
  auto next = egress::patch_policy(store_.current(), *rules);
  if (auto res = check_limit(next.egress.size()))
    return *res;
  return commit(std::move(next));
}

api_response policy_api::delete_policy(const std::string& body) {
  if (blank(body))
    return text_error(400, "empty body");
  std::string error;
  auto targets = parse_targets(body, &error);
  if (!targets)
    return text_error(400, "invalid delete targets: " + error);
  if (targets->empty())
    return text_error(400, "invalid delete targets: empty array");
  auto next = store_.current();
  if (remove_targets(next, *targets) == 0)
    return status(next, "no matching targets found");
  return commit(std::move(next));
}

} // namespace osb::egress
