#include "base/http_request.hpp"

#include "base/strings.hpp"

namespace osb::base {

const std::string& http_request::header(std::string_view lower_name) const {
  static const std::string empty;
  for (auto& [k, v] : headers)
    if (k == lower_name)
      return v;
  return empty;
}

std::vector<std::string> http_request::query_all(std::string_view key) const {
  std::vector<std::string> out;
  for (auto& [k, v] : parse_query(query))
    if (k == key)
      out.push_back(v);
  return out;
}

std::optional<std::string>
http_request::query_get(std::string_view key) const {
  for (auto& [k, v] : parse_query(query))
    if (k == key)
      return v;
  return std::nullopt;
}

void http_request::set_target(std::string t) {
  target = std::move(t);
  auto q = target.find('?');
  path = target.substr(0, q);
  query = q == std::string::npos ? std::string{} : target.substr(q + 1);
}

std::vector<std::pair<std::string, std::string>>
parse_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{}
                                          : query.substr(amp + 1);
    if (item.empty())
      continue;
    auto eq = item.find('=');
    if (eq == std::string_view::npos)
      out.emplace_back(percent_decode(item, true), std::string{});
    else
      out.emplace_back(percent_decode(item.substr(0, eq), true),
                       percent_decode(item.substr(eq + 1), true));
  }
  return out;
}

bool has_token(std::string_view list, std::string_view token) {
  while (true) {
    auto comma = list.find(',');
    if (iequals(trim_ows(list.substr(0, comma)), token))
      return true;
    if (comma == std::string_view::npos)
      return false;
    list.remove_prefix(comma + 1);
  }
}

} // namespace osb::base
