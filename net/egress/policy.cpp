#include "net/egress/policy.hpp"

#include "base/json.hpp"
#include "base/strings.hpp"

#include <arpa/inet.h>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace osb::egress {

namespace {

void set_error(std::string* error, std::string msg) {
  if (error)
    *error = std::move(msg);
}

const char* kind_name(const rapidjson::Value& x) {
  switch (x.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "bool";
    case rapidjson::kObjectType:
      return "object";
    case rapidjson::kArrayType:
      return "array";
    case rapidjson::kStringType:
      return "string";
    case rapidjson::kNumberType:
      return "number";
  }
  return "value";
}

// Go's decoder matches keys case-insensitively; so do we.
const rapidjson::Value* member(const rapidjson::Value& obj,
                               std::string_view key) {
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it)
    if (iequals({it->name.GetString(), it->name.GetStringLength()}, key))
      return &it->value;
  return nullptr;
}

// Reads an optional string member; null and absent give "".
bool string_member(const rapidjson::Value& obj, std::string_view key,
                   std::string& out, std::string* error) {
  auto* x = member(obj, key);
  if (x == nullptr || x->IsNull())
    return true;
  if (!x->IsString()) {
    set_error(error, "json: cannot unmarshal " + std::string{kind_name(*x)}
                       + " into field " + std::string{key}
                       + " of type string");
    return false;
  }
  out.assign(x->GetString(), x->GetStringLength());
  return true;
}

bool parse_document(std::string_view json, rapidjson::Document& doc,
                    std::string* error) {
  // Trailing data after the value is an error here, as in Go. Go's
  // decoder refuses nesting beyond 10000; we refuse it far earlier, before
  // RapidJSON recurses.
  base::json_error at;
  auto status = base::parse_json(doc, json, base::json_max_depth, &at);
  if (status == base::json_status::too_deep) {
    set_error(error, "invalid JSON: exceeded max depth of "
                       + std::to_string(base::json_max_depth) + " at offset "
                       + std::to_string(at.offset));
    return false;
  }
  if (status == base::json_status::invalid) {
    set_error(error, std::string{"invalid JSON: "}
                       + rapidjson::GetParseError_En(doc.GetParseError())
                       + " at offset " + std::to_string(doc.GetErrorOffset()));
    return false;
  }
  return true;
}

std::optional<rule> rule_from_json(const rapidjson::Value& x,
                                   std::string* error) {
  if (!x.IsObject()) {
    set_error(error, std::string{"json: cannot unmarshal "} + kind_name(x)
                       + " into an egress rule");
    return std::nullopt;
  }
  std::string act;
  std::string target;
  if (!string_member(x, "action", act, error)
      || !string_member(x, "target", target, error))
    return std::nullopt;
  return make_rule(act, target, error);
}

} // namespace

std::string_view to_string(action x) {
  return x == action::allow ? "allow" : "deny";
}

bool operator==(const ip_address& x, const ip_address& y) {
  return x.v6 == y.v6 && std::memcmp(x.bytes, y.bytes, x.size()) == 0;
}

bool operator<(const ip_address& x, const ip_address& y) {
  if (x.v6 != y.v6)
    return !x.v6;
  return std::memcmp(x.bytes, y.bytes, x.size()) < 0;
}

std::optional<ip_address> parse_ip(std::string_view x) {
  if (x.empty() || x.size() > 45)
    return std::nullopt;
  char buf[64];
  std::memcpy(buf, x.data(), x.size());
  buf[x.size()] = '\0';
  ip_address result;
  if (::inet_pton(AF_INET, buf, result.bytes) == 1)
    return result;
  if (::inet_pton(AF_INET6, buf, result.bytes) == 1) {
    result.v6 = true;
    return result;
  }
  return std::nullopt;
}

std::string to_string(const ip_address& x) {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(x.v6 ? AF_INET6 : AF_INET, x.bytes, buf, sizeof(buf));
  return buf;
}

bool rule::matches(std::string_view name) const {
  if (kind != target_kind::domain || pattern.empty())
    return false;
  if (pattern == name)
    return true;
  // "*.example.com" matches "a.example.com" but not "example.com".
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    auto suffix = std::string_view{pattern}.substr(1);
    return name.size() > suffix.size()
           && name.substr(name.size() - suffix.size()) == suffix;
  }
  return false;
}

std::string normalize_name(std::string_view name) {
  if (!name.empty() && name.back() == '.')
    name.remove_suffix(1);
  return lower(name);
}

action policy::evaluate(std::string_view name) const {
  auto normalized = normalize_name(name);
  for (auto& r : egress)
    if (r.matches(normalized))
      return r.act;
  return default_action;
}

std::string_view mode_of(const policy& x) {
  if (x.egress.empty())
    return x.default_action == action::allow ? "allow_all" : "deny_all";
  return "enforcing";
}

std::optional<rule> make_rule(std::string_view act, std::string_view target,
                              std::string* error) {
  rule result;
  auto a = lower(trim(act));
  if (a.empty() || a == "deny") {
    result.act = action::deny;
  } else if (a == "allow") {
    result.act = action::allow;
  } else {
    set_error(error, "unsupported action \"" + a + "\"");
    return std::nullopt;
  }
  auto t = trim(target);
  if (t.empty()) {
    set_error(error, "egress target cannot be empty");
    return std::nullopt;
  }
  result.target = std::string{t};
  if (auto ip = parse_ip(t)) {
    result.kind = target_kind::ip;
    result.address = *ip;
    result.prefix_length = ip->v6 ? 128 : 32;
    result.pattern = to_string(*ip);
    return result;
  }
  if (auto slash = t.find('/'); slash != std::string_view::npos) {
    auto ip = parse_ip(t.substr(0, slash));
    auto len_text = t.substr(slash + 1);
    unsigned len = 0;
    bool digits = !len_text.empty() && len_text.size() <= 3;
    for (auto c : len_text) {
      digits = digits && c >= '0' && c <= '9';
      len = len * 10 + static_cast<unsigned>(c - '0');
    }
    if (ip && digits && len <= (ip->v6 ? 128u : 32u)) {
      // Mask host bits: nft interval sets want a network address.
      for (size_t i = 0; i < ip->size(); ++i) {
        auto bits = len > i * 8 ? std::min<unsigned>(8, len - i * 8) : 0u;
        ip->bytes[i] &= static_cast<uint8_t>(0xff00u >> bits);
      }
      result.kind = target_kind::cidr;
      result.address = *ip;
      result.prefix_length = static_cast<uint8_t>(len);
      result.pattern = to_string(*ip) + "/" + std::to_string(len);
      return result;
    }
  }
  result.kind = target_kind::domain;
  result.pattern = normalize_name(t);
  return result;
}

std::optional<policy> parse_policy(std::string_view json, std::string* error) {
  auto text = trim(json);
  if (text.empty() || text == "null" || text == "{}")
    return policy{};
  rapidjson::Document doc;
  if (!parse_document(text, doc, error))
    return std::nullopt;
  if (doc.IsNull())
    return policy{};
  if (!doc.IsObject()) {
    set_error(error, std::string{"json: cannot unmarshal "} + kind_name(doc)
                       + " into a network policy");
    return std::nullopt;
  }
  policy result;
  std::string def;
  if (!string_member(doc, "defaultAction", def, error))
    return std::nullopt;
  // Anything but "allow" denies: the server passes the value through
  // unchecked, and an unknown default must fail closed, not stop the sidecar.
  result.default_action = lower(trim(def)) == "allow" ? action::allow
                                                      : action::deny;
  if (auto* egress = member(doc, "egress"); egress && !egress->IsNull()) {
    if (!egress->IsArray()) {
      set_error(error, std::string{"json: cannot unmarshal "}
                         + kind_name(*egress) + " into field egress");
      return std::nullopt;
    }
    for (auto& x : egress->GetArray()) {
      auto r = rule_from_json(x, error);
      if (!r)
        return std::nullopt;
      result.egress.push_back(std::move(*r));
    }
  }
  return result;
}

std::optional<std::vector<rule>> parse_rules(std::string_view json,
                                             std::string* error) {
  rapidjson::Document doc;
  if (!parse_document(json, doc, error))
    return std::nullopt;
  if (doc.IsNull())
    return std::vector<rule>{};
  if (!doc.IsArray()) {
    set_error(error, std::string{"json: cannot unmarshal "} + kind_name(doc)
                       + " into an array of rules");
    return std::nullopt;
  }
  std::vector<rule> result;
  for (auto& x : doc.GetArray()) {
    auto r = rule_from_json(x, error);
    if (!r)
      return std::nullopt;
    result.push_back(std::move(*r));
  }
  return result;
}

std::optional<std::vector<std::string>> parse_targets(std::string_view json,
                                                      std::string* error) {
  rapidjson::Document doc;
  if (!parse_document(json, doc, error))
    return std::nullopt;
  if (doc.IsNull())
    return std::vector<std::string>{};
  if (!doc.IsArray()) {
    set_error(error, std::string{"json: cannot unmarshal "} + kind_name(doc)
                       + " into an array of strings");
    return std::nullopt;
  }
  std::vector<std::string> result;
  for (auto& x : doc.GetArray()) {
    if (!x.IsString()) {
      set_error(error, std::string{"json: cannot unmarshal "} + kind_name(x)
                         + " into a target string");
      return std::nullopt;
    }
    result.emplace_back(x.GetString(), x.GetStringLength());
  }
  return result;
}

std::string to_json(const policy& x) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w{buf};
  w.StartObject();
  w.Key("egress");
  w.StartArray();
  for (auto& r : x.egress) {
    w.StartObject();
    w.Key("action");
    auto a = to_string(r.act);
    w.String(a.data(), static_cast<rapidjson::SizeType>(a.size()));
    w.Key("target");
    w.String(r.target.data(), static_cast<rapidjson::SizeType>(r.target.size()));
    w.EndObject();
  }
  w.EndArray();
  w.Key("defaultAction");
  auto d = to_string(x.default_action);
  w.String(d.data(), static_cast<rapidjson::SizeType>(d.size()));
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

policy patch_policy(const policy& base, const std::vector<rule>& incoming) {
  policy result;
  result.default_action = base.default_action;
  std::set<std::string> seen;
  for (auto& r : incoming)
    if (seen.insert(lower(r.target)).second)
      result.egress.push_back(r);
  for (auto& r : base.egress)
    if (seen.count(lower(r.target)) == 0)
      result.egress.push_back(r);
  return result;
}

size_t remove_targets(policy& x, const std::vector<std::string>& targets) {
  std::set<std::string> doomed;
  for (auto& t : targets)
    doomed.insert(lower(trim(t)));
  auto before = x.egress.size();
  x.egress.erase(std::remove_if(x.egress.begin(), x.egress.end(),
                                [&](const rule& r) {
                                  return doomed.count(lower(r.target)) > 0;
                                }),
                 x.egress.end());
  return before - x.egress.size();
}

policy effective_policy(const policy& user, const std::vector<rule>& always_deny,
                        const std::vector<rule>& always_allow) {
  if (always_deny.empty() && always_allow.empty())
    return user;
  policy result;
  result.default_action = user.default_action;
  result.egress.reserve(always_deny.size() + always_allow.size()
                        + user.egress.size());
  result.egress.insert(result.egress.end(), always_deny.begin(),
                       always_deny.end());
  result.egress.insert(result.egress.end(), always_allow.begin(),
                       always_allow.end());
  result.egress.insert(result.egress.end(), user.egress.begin(),
                       user.egress.end());
  return result;
}

std::vector<rule> parse_always_rules(std::string_view text, action act) {
  std::vector<rule> result;
  while (!text.empty()) {
    auto eol = text.find('\n');
    auto line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{}
                                         : text.substr(eol + 1);
    if (auto hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    line = trim(line);
    if (line.empty())
      continue;
    if (auto r = make_rule(to_string(act), line, nullptr))
      result.push_back(std::move(*r));
  }
  return result;
}

} // namespace osb::egress
