// Decoding of the lifecycle API's smaller requests: renew, metadata patch,
// snapshot create, and the query strings of the sandbox and snapshot lists.

#include "http/codec_request.hpp"

#include "base/strings.hpp"
#include "core/time.hpp"
#include "core/validation.hpp"
#include "http/codec_schema.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

namespace osb::codec {

using namespace detail;

namespace {

/// `parse_qsl(qs, keep_blank_values=True)` as Starlette calls it.
std::vector<std::pair<std::string, std::string>>
split_query(std::string_view qs) {
  std::vector<std::pair<std::string, std::string>> r;
  size_t start = 0;
  while (start <= qs.size()) {
    auto amp = qs.find('&', start);
    auto seg = qs.substr(start, amp == std::string_view::npos
                                  ? std::string_view::npos
                                  : amp - start);
    if (!seg.empty()) {
      auto eq = seg.find('=');
      if (eq == std::string_view::npos)
        r.emplace_back(url_decode(seg), std::string{});
      else
        r.emplace_back(url_decode(seg.substr(0, eq)),
                       url_decode(seg.substr(eq + 1)));
    }
    if (amp == std::string_view::npos)
      break;
    start = amp + 1;
  }
  return r;
}

/// Reads `page` (>= 1) and `pageSize` (1..200) of a list query; problems go
/// to `chk` with FastAPI's wording.
void read_page_params(checker& chk, const std::optional<std::string>& page,
                      const std::optional<std::string>& page_size,
                      int32_t& page_out, int32_t& page_size_out) {
  auto read = [&](const std::optional<std::string>& raw, const char* name,
                  int32_t& out, int64_t max) {
    if (!raw)
      return;
    auto l = loc{"query"} / name;
    auto input = quote(*raw);
    auto n = int_from_string(*raw);
    if (!n) {
      chk.add(l, "int_parsing",
              "Input should be a valid integer, unable to parse string as an "
              "integer",
              input);
      return;
    }
    if (n->value < 1) {
      chk.add(l, "greater_than_equal",
              "Input should be greater than or equal to 1", input,
              ctx_num("ge", 1));
      return;
    }
    if (n->value > max) {
      chk.add(l, "less_than_equal",
              "Input should be less than or equal to " + std::to_string(max),
              input, ctx_num("le", max));
      return;
    }
    // A page number beyond int32 can only be past the end anyway.
    out = static_cast<int32_t>(std::min<int64_t>(n->value, INT32_MAX));
  };
  read(page, "page", page_out, INT64_MAX);
  read(page_size, "pageSize", page_size_out, 200);
}

} // namespace

decoded<int64_t> decode_renew(std::string_view body) {
  rapidjson::Document doc;
  if (auto r = parse_body(body, doc))
    return *r;
  checker chk;
  loc b{"body"};
  if (!doc.IsObject()) {
    chk.add(b, "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields "
            "from",
            doc);
    return reject_422(chk.problems);
  }
  auto v = chk.required(doc, "expiresAt", b);
  if (v == nullptr)
    return reject_422(chk.problems);
  auto l = b / "expiresAt";
  int64_t us = 0;
  std::string err;
  bool ok = false;
  if (v->IsString()) {
    ok = parse_time(view(*v), us, err);
  } else if (v->IsNumber() && !v->IsDouble()) {
    ok = unix_seconds_to_us(v->IsInt64()
                              ? static_cast<long double>(v->GetInt64())
                              : static_cast<long double>(v->GetUint64()),
                            us, err);
  } else if (v->IsDouble() && std::isfinite(v->GetDouble())) {
    ok = unix_seconds_to_us(v->GetDouble(), us, err);
  } else {
    chk.add(l, "datetime_type", "Input should be a valid datetime", *v);
    return reject_422(chk.problems);
  }
  if (!ok) {
    chk.add(l, "datetime_from_date_parsing",
            "Input should be a valid datetime or date, " + err, *v,
            ctx_str("error", err));
    return reject_422(chk.problems);
  }
  return us;
}

decoded<metadata_patch> decode_patch(std::string_view body) {
  rapidjson::Document doc;
  if (auto r = parse_body(body, doc))
    return *r;
  checker chk;
  loc b{"body"};
  if (!chk.is_dict(doc, b))
    return reject_422(chk.problems);
  // Document order with the last duplicate winning, like a Python dict.
  std::vector<std::pair<std::string, const Value*>> entries;
  for (auto& m : doc.GetObject()) {
    auto k = std::string{view(m.name)};
    auto i = std::find_if(entries.begin(), entries.end(),
                          [&](auto& e) { return e.first == k; });
    if (i != entries.end())
      i->second = &m.value;
    else
      entries.emplace_back(k, &m.value);
  }
  metadata_patch patch;
  for (auto& [k, v] : entries) {
    if (v->IsNull())
      patch.remove.push_back(k);
    else if (auto s = chk.str(*v, b / k))
      patch.set[k] = *s;
  }
  if (!chk.problems.empty())
    return reject_422(chk.problems);
  for (auto& [k, v] : entries)
    if (auto e = validation::check_patch_key(k))
      return reject(*e);
  if (auto e = validation::check_metadata(patch.set))
    return reject(*e);
  return patch;
}

decoded<list_query> decode_list_query(std::string_view query) {
  if (!query.empty() && query.front() == '?')
    query.remove_prefix(1);
  list_query q;
  bool any_state = false;
  std::optional<std::string> metadata;
  std::optional<std::string> page;
  std::optional<std::string> page_size;
  for (auto& [k, v] : split_query(query)) {
    if (k == "state") {
      any_state = true;
      sandbox_state s;
      if (from_string(v, s)
          && std::find(q.states.begin(), q.states.end(), s) == q.states.end())
        q.states.push_back(s);
    } else if (k == "metadata") {
      metadata = v;
    } else if (k == "page") {
      page = v;
    } else if (k == "pageSize") {
      page_size = v;
    }
  }
  q.match_nothing = any_state && q.states.empty();
  checker chk;
  read_page_params(chk, page, page_size, q.page, q.page_size);
  if (!chk.problems.empty())
    return reject_422(chk.problems);
  if (metadata && !metadata->empty()) {
    // parse_qsl(..., keep_blank_values=True, strict_parsing=True)
    std::string_view md = *metadata;
    size_t start = 0;
    for (;;) {
      auto amp = md.find('&', start);
      auto seg = md.substr(start, amp == std::string_view::npos
                                    ? std::string_view::npos
                                    : amp - start);
      auto eq = seg.find('=');
      if (eq == std::string_view::npos)
        return reject(
          make_api_error(ec::invalid_metadata_format,
                         "Invalid metadata format: bad query field: "
                           + py_repr(seg)));
      q.metadata[url_decode(seg.substr(0, eq))]
        = url_decode(seg.substr(eq + 1));
      if (amp == std::string_view::npos)
        break;
      start = amp + 1;
    }
  }
  return q;
}

decoded<snapshot_query> decode_snapshot_query(std::string_view query) {
  if (!query.empty() && query.front() == '?')
    query.remove_prefix(1);
  snapshot_query q;
  std::optional<std::string> page;
  std::optional<std::string> page_size;
  for (auto& [k, v] : split_query(query)) {
    if (k == "sandboxId")
      q.sandbox_id = v; // the last one wins, like FastAPI
    else if (k == "name") {
      q.name = v;
      q.by_name = !v.empty(); // blank = no filter
    }
    else if (k == "state")
      q.states.push_back(v);
    else if (k == "page")
      page = v;
    else if (k == "pageSize")
      page_size = v;
  }
  checker chk;
  read_page_params(chk, page, page_size, q.page, q.page_size);
  if (!chk.problems.empty())
    return reject_422(chk.problems);
  return q;
}

decoded<std::string> decode_snapshot_request(std::string_view body) {
  // The body is optional: absent, `null` or `{}` mean "no name".
  auto blank = std::all_of(body.begin(), body.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
  });
  if (blank)
    return std::string{};
  rapidjson::Document doc;
  if (auto r = parse_body(body, doc))
    return *r;
  if (doc.IsNull())
    return std::string{};
  checker chk;
  loc b{"body"};
  if (!chk.is_dict(doc, b))
    return reject_422(chk.problems);
  std::string name;
  if (auto v = member(doc, "name"); v != nullptr && !v->IsNull())
    if (auto x = chk.str(*v, b / "name"))
      if (chk.min_len(*x, *v, b / "name", 1))
        name = *x;
  if (!chk.problems.empty())
    return reject_422(chk.problems);
  return name;
}

std::string url_decode(std::string_view x) {
  return percent_decode(x, true);
}

} // namespace osb::codec
