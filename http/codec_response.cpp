// Encoding of the lifecycle API's responses (field order and omissions as
// the original's Pydantic models produce them).

#include "http/codec_response.hpp"

#include "core/json.hpp"
#include "core/time.hpp"
#include "http/codec_schema.hpp"

#include <algorithm>

namespace osb::codec {

namespace {

template <class View>
void write_status(json::writer& o, const View& x, const char* state) {
  o.key("status").begin_object();
  o.key("state").str(state);
  if (!x.reason.empty())
    o.key("reason").str(x.reason);
  if (!x.message.empty())
    o.key("message").str(x.message);
  if (x.last_transition_us != 0)
    o.key("lastTransitionAt").str(format_time(x.last_transition_us));
  o.end_object();
}

void write_platform(json::writer& o, const sandbox_view& x) {
  if (x.platform_os.empty() && x.platform_arch.empty())
    return;
  o.key("platform").begin_object();
  o.key("os").str(x.platform_os);
  o.key("arch").str(x.platform_arch);
  o.end_object();
}

/// `createPhases` (ours, issue 15; the SDKs ignore unknown fields): when
/// each phase of the create was reached, as far as this process saw it.
void write_create_phases(json::writer& o, const sandbox_view& x) {
  bool any = false;
  for (size_t i = 0; i < x.create_phases_us.size() && i < num_create_phases;
       ++i) {
    if (x.create_phases_us[i] == 0)
      continue;
    if (!any)
      o.key("createPhases").begin_object();
    any = true;
    o.key(to_string(static_cast<create_phase>(i)))
      .str(format_time(x.create_phases_us[i]));
  }
  if (any)
    o.end_object();
}

void write_sandbox(json::writer& o, const sandbox_view& x,
                   bool phases = false) {
  o.begin_object();
  o.key("id").str(x.id);
  if (!x.snapshot_id.empty())
    o.key("snapshotId").str(x.snapshot_id);
  else if (!x.image.empty())
    o.key("image").begin_object().key("uri").str(x.image).end_object();
  write_platform(o, x);
  write_status(o, x, to_string(x.state));
  if (!x.metadata.empty())
    o.key("metadata").map(x.metadata);
  o.key("entrypoint").strings(x.entrypoint);
  if (x.expires_us != 0)
    o.key("expiresAt").str(format_time(x.expires_us));
  o.key("createdAt").str(format_time(x.created_us));
  if (phases)
    write_create_phases(o, x);
  o.end_object();
}

} // namespace

std::string encode_sandbox(const sandbox_view& x) {
  json::writer o;
  write_sandbox(o, x, true);
  return o.release();
}

std::string encode_create_response(const sandbox_view& x) {
  json::writer o;
  o.begin_object();
  o.key("id").str(x.id);
  write_status(o, x, to_string(x.state));
  if (!x.metadata.empty())
    o.key("metadata").map(x.metadata);
  write_platform(o, x);
  if (x.expires_us != 0)
    o.key("expiresAt").str(format_time(x.expires_us));
  o.key("createdAt").str(format_time(x.created_us));
  o.key("entrypoint").strings(x.entrypoint);
  o.end_object();
  return o.release();
}

namespace {

/// The `pagination` object of list responses.
template <class Page>
void write_pagination(json::writer& o, const Page& x) {
  int64_t size = std::max<int32_t>(x.page_size, 1);
  auto pages = (x.total_items + size - 1) / size;
  o.key("pagination").begin_object();
  o.key("page").num(x.page);
  o.key("pageSize").num(x.page_size);
  o.key("totalItems").num(x.total_items);
  o.key("totalPages").num(pages);
  o.key("hasNextPage").boolean(x.page < pages);
  o.end_object();
}

} // namespace

std::string encode_list(const list_page& x) {
  json::writer o;
  o.begin_object();
  o.key("items").begin_array();
  for (auto& s : x.items)
    write_sandbox(o, s);
  o.end_array();
  write_pagination(o, x);
  if (x.partial) {
    // Extra fields the SDKs ignore (docs/cluster.md): the node may not
    // know every sandbox yet.
    o.key("partial").boolean(true);
    o.key("partialReason").str(x.partial_reason);
    o.key("missingPeers").begin_array();
    for (auto& p : x.missing_peers)
      o.str(p);
    o.end_array();
  }
  o.end_object();
  return o.release();
}

namespace {

void write_snapshot(json::writer& o, const snapshot_view& x) {
  o.begin_object();
  o.key("id").str(x.id);
  o.key("sandboxId").str(x.sandbox_id);
  if (!x.name.empty())
    o.key("name").str(x.name);
  write_status(o, x, x.state.c_str());
  o.key("createdAt").str(format_time(x.created_us));
  o.end_object();
}

} // namespace

std::string encode_snapshot(const snapshot_view& x) {
  json::writer o;
  write_snapshot(o, x);
  return o.release();
}

std::string encode_snapshot_list(const snapshot_page& x) {
  json::writer o;
  o.begin_object();
  o.key("items").begin_array();
  for (auto& s : x.items)
    write_snapshot(o, s);
  o.end_array();
  write_pagination(o, x);
  o.end_object();
  return o.release();
}

std::string encode_endpoint(const endpoint_view& x) {
  json::writer o;
  o.begin_object();
  o.key("endpoint").str(x.endpoint);
  if (!x.headers.empty())
    o.key("headers").map(x.headers);
  o.end_object();
  return o.release();
}

std::string encode_renew(int64_t expires_us) {
  json::writer o;
  o.begin_object().key("expiresAt").str(format_time(expires_us)).end_object();
  return o.release();
}

std::string encode_members(const std::vector<member_info>& xs) {
  json::writer o;
  o.begin_object().key("nodes").begin_array();
  for (auto& m : xs) {
    o.begin_object();
    o.key("name").str(m.name);
    o.key("address").str(m.address);
    o.key("state").str(m.state);
    o.key("sandboxes").num(m.sandboxes);
    if (m.since_us != 0)
      o.key("since").str(format_time(m.since_us));
    o.key("version").str(m.version);
    if (!m.incarnation.empty())
      o.key("incarnation").str(m.incarnation);
    o.end_object();
  }
  o.end_array().end_object();
  return o.release();
}

std::string encode_error(const api_error& x) {
  json::writer o;
  o.begin_object();
  o.key("code").str(x.code);
  o.key("message").str(x.message);
  o.end_object();
  return o.release();
}

std::string encode_deletion_pending(const std::string& id,
                                    const std::string& why) {
  json::writer o;
  o.begin_object();
  o.key("id").str(id);
  o.key("code").str("SANDBOX::DELETION_PENDING");
  o.key("message").str("Sandbox " + id
                       + " is deleted; removing its containers is pending "
                         "and retried until it succeeds: "
                       + why);
  o.end_object();
  return o.release();
}

std::string encode_detail(std::string_view type, std::string_view loc_json,
                          std::string_view msg) {
  return encode_detail(type, loc_json, msg, "null");
}

std::string encode_detail(std::string_view type, std::string_view loc_json,
                          std::string_view msg, std::string_view input_json,
                          std::string_view ctx_json) {
  detail::problem p;
  p.type = std::string{type};
  p.loc_json = std::string{loc_json};
  p.msg = std::string{msg};
  p.input_json = std::string{input_json};
  p.ctx_json = std::string{ctx_json};
  return detail::detail_body({p});
}

} // namespace osb::codec
