#pragma once

// Atoms and message types of the server's actors. Atom text is limited to 10
// characters in CAF 0.17, and equal text means the same atom.

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>

#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/omittable.hpp>
#include <caf/sec.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <variant>

#include "core/error.hpp"
#include "core/model.hpp"
#include "core/pool.hpp"
#include "core/runtime_types.hpp"
#include "core/sandbox_ops.hpp"
#include "core/sandbox_row.hpp"

namespace osb::atom {

using create = caf::atom_constant<caf::atom("create")>;
constexpr auto create_v = create{};
using get = caf::atom_constant<caf::atom("get")>;
constexpr auto get_v = get{};
using list = caf::atom_constant<caf::atom("list")>;
constexpr auto list_v = list{};
using remove = caf::atom_constant<caf::atom("remove")>;
constexpr auto remove_v = remove{};
using pause = caf::atom_constant<caf::atom("pause")>;
constexpr auto pause_v = pause{};
using resume = caf::atom_constant<caf::atom("resume")>;
constexpr auto resume_v = resume{};
using renew = caf::atom_constant<caf::atom("renew")>;
constexpr auto renew_v = renew{};
using patch = caf::atom_constant<caf::atom("patch")>;
constexpr auto patch_v = patch{};
using expire = caf::atom_constant<caf::atom("expire")>;
constexpr auto expire_v = expire{};
using provision = caf::atom_constant<caf::atom("provision")>;
constexpr auto provision_v = provision{};
using put = caf::atom_constant<caf::atom("put")>;
constexpr auto put_v = put{};
using update = caf::atom_constant<caf::atom("update")>;
constexpr auto update_v = update{};
using forget = caf::atom_constant<caf::atom("forget")>;
constexpr auto forget_v = forget{};
using load = caf::atom_constant<caf::atom("load")>;
constexpr auto load_v = load{};
using observe = caf::atom_constant<caf::atom("observe")>;
constexpr auto observe_v = observe{};
using recover = caf::atom_constant<caf::atom("recover")>;
constexpr auto recover_v = recover{};
using tick = caf::atom_constant<caf::atom("tick")>;
constexpr auto tick_v = tick{};
using sync = caf::atom_constant<caf::atom("sync")>;
constexpr auto sync_v = sync{};
using internal = caf::atom_constant<caf::atom("internal")>;
constexpr auto internal_v = internal{};
using join = caf::atom_constant<caf::atom("join")>;
constexpr auto join_v = join{};
using replicate = caf::atom_constant<caf::atom("replicate")>;
constexpr auto replicate_v = replicate{};
using drop = caf::atom_constant<caf::atom("drop")>;
constexpr auto drop_v = drop{};
using connect = caf::atom_constant<caf::atom("connect")>;
constexpr auto connect_v = connect{};
using place = caf::atom_constant<caf::atom("place")>;
constexpr auto place_v = place{};
using members = caf::atom_constant<caf::atom("members")>;
constexpr auto members_v = members{};
using started = caf::atom_constant<caf::atom("started")>;
constexpr auto started_v = started{};
using vol_list = caf::atom_constant<caf::atom("vollist")>;
constexpr auto vol_list_v = vol_list{};
using diagnose = caf::atom_constant<caf::atom("diagnose")>;
constexpr auto diagnose_v = diagnose{};
using progress = caf::atom_constant<caf::atom("progress")>;
constexpr auto progress_v = progress{};
using snapshot = caf::atom_constant<caf::atom("snapshot")>;
constexpr auto snapshot_v = snapshot{};
using snap_end = caf::atom_constant<caf::atom("snapend")>;
constexpr auto snap_end_v = snap_end{};
using snap_get = caf::atom_constant<caf::atom("snapget")>;
constexpr auto snap_get_v = snap_get{};
using snap_list = caf::atom_constant<caf::atom("snaplist")>;
constexpr auto snap_list_v = snap_list{};
using snap_del = caf::atom_constant<caf::atom("snapdel")>;
constexpr auto snap_del_v = snap_del{};
using ready = caf::atom_constant<caf::atom("ready")>;
constexpr auto ready_v = ready{};
using local = caf::atom_constant<caf::atom("local")>;
constexpr auto local_v = local{};
using commit = caf::atom_constant<caf::atom("commit")>;
constexpr auto commit_v = commit{};
using img_exists = caf::atom_constant<caf::atom("imgexists")>;
constexpr auto img_exists_v = img_exists{};
using img_remove = caf::atom_constant<caf::atom("imgremove")>;
constexpr auto img_remove_v = img_remove{};
using img_list = caf::atom_constant<caf::atom("imglist")>;
constexpr auto img_list_v = img_list{};
using settle = caf::atom_constant<caf::atom("settle")>;
constexpr auto settle_v = settle{};
using admit = caf::atom_constant<caf::atom("admit")>;
constexpr auto admit_v = admit{};
using image = caf::atom_constant<caf::atom("image")>;
constexpr auto image_v = image{};

using pool_new = caf::atom_constant<caf::atom("poolnew")>;
constexpr auto pool_new_v = pool_new{};
using pool_get = caf::atom_constant<caf::atom("poolget")>;
constexpr auto pool_get_v = pool_get{};
using pool_list = caf::atom_constant<caf::atom("poollist")>;
constexpr auto pool_list_v = pool_list{};
using pool_put = caf::atom_constant<caf::atom("poolput")>;
constexpr auto pool_put_v = pool_put{};
using pool_del = caf::atom_constant<caf::atom("pooldel")>;
constexpr auto pool_del_v = pool_del{};
using claim = caf::atom_constant<caf::atom("claim")>;
constexpr auto claim_v = claim{};
using pool_rep = caf::atom_constant<caf::atom("poolrep")>;
constexpr auto pool_rep_v = pool_rep{};
using pool_load = caf::atom_constant<caf::atom("poolload")>;
constexpr auto pool_load_v = pool_load{};
using pool_flush = caf::atom_constant<caf::atom("poolflush")>;
constexpr auto pool_flush_v = pool_flush{};
using call = caf::atom_constant<caf::atom("call")>;
constexpr auto call_v = call{};
} // namespace osb::atom

namespace osb {

/// A closure that must run on the receiving actor's thread (local only).
struct completion {
  std::function<void()> fn;
};

using snapshot_views = std::vector<snapshot_view>;
using sandbox_views = std::vector<sandbox_view>;
using node_infos = std::vector<node_info>;
using member_infos = std::vector<member_info>;

using runtime_objects = std::vector<runtimes::runtime_object>;
using snapshot_images = std::vector<runtimes::snapshot_image>;
using sandbox_rows = std::vector<store::sandbox_row>;
using pool_views = std::vector<pool_view>;
using pool_records = std::vector<pool_record>;
using pool_tallies = std::vector<pool_tally>;

// -- inspectors (CAF 0.17 style) ----------------------------------------------

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, port_map& x) {
  return f(caf::meta::type_name("port_map"), x.execd, x.http, x.egress);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sandbox_spec& x) {
  return f(caf::meta::type_name("sandbox_spec"), x.image, x.image_username,
           x.image_password, x.snapshot_id, x.entrypoint, x.env, x.metadata,
           x.resource_limits, x.platform_os, x.platform_arch, x.timeout_s,
           x.extensions, x.network_policy_json, x.volumes_json);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sandbox_view& x) {
  return f(caf::meta::type_name("sandbox_view"), x.id, x.image, x.snapshot_id,
           x.platform_os, x.platform_arch, x.state, x.reason, x.message,
           x.last_transition_us, x.metadata, x.entrypoint, x.expires_us,
           x.created_us, x.node, x.ports, x.egress_token, x.access_token,
           x.endpoint_host,
           x.runtime_host, x.renew_extend_s, x.create_phases_us,
           x.member_of, x.pool);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_info& x) {
  return f(caf::meta::type_name("node_info"), x.name, x.version, x.address,
           x.max_sandboxes, x.incarnation);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member_info& x) {
  return f(caf::meta::type_name("member_info"), x.name, x.address, x.state,
           x.sandboxes, x.since_us, x.version, x.incarnation);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, list_query& x) {
  return f(caf::meta::type_name("list_query"), x.states, x.match_nothing,
           x.metadata, x.page, x.page_size, x.members);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, list_page& x) {
  return f(caf::meta::type_name("list_page"), x.items, x.page, x.page_size,
           x.total_items, x.partial, x.partial_reason, x.missing_peers);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, diagnostics_query& x) {
  return f(caf::meta::type_name("diagnostics_query"), x.kind, x.tail,
           x.since, x.limit);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot_view& x) {
  return f(caf::meta::type_name("snapshot_view"), x.id, x.sandbox_id, x.name,
           x.state, x.reason, x.message, x.last_transition_us, x.created_us,
           x.image, x.node, x.runtime_host);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot_query& x) {
  return f(caf::meta::type_name("snapshot_query"), x.sandbox_id, x.name,
           x.by_name, x.states, x.page, x.page_size);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot_page& x) {
  return f(caf::meta::type_name("snapshot_page"), x.items, x.page,
           x.page_size, x.total_items);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pool_capacity& x) {
  return f(caf::meta::type_name("pool_capacity"), x.buffer_max, x.buffer_min,
           x.pool_max, x.pool_min);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pool_record& x) {
  return f(caf::meta::type_name("pool_record"), x.name, x.tmpl, x.capacity,
           x.created_us, x.generation, x.updated_us, x.origin, x.deleted);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pool_counts& x) {
  return f(caf::meta::type_name("pool_counts"), x.warming, x.available,
           x.allocated, x.num_claims, x.num_cold, x.num_warmed,
           x.num_warm_failures, x.num_removed, x.num_matched,
           x.num_forwarded, x.last_error);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pool_tally& x) {
  return f(caf::meta::type_name("pool_tally"), x.name, x.warming,
           x.available, x.allocated);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pool_view& x) {
  return f(caf::meta::type_name("pool_view"), x.record, x.status);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, metadata_patch& x) {
  return f(caf::meta::type_name("metadata_patch"), x.set, x.remove);
}

// std::variant (sandbox_op, sandbox_answer): the index as one byte, then the
// alternative (CAF 0.17 knows only its own caf::variant).

/// The alternative of a variant, for the inspector.
template <class Variant>
struct variant_value {
  Variant& x;
};

template <class Inspector, class Variant>
typename Inspector::result_type inspect(Inspector& f,
                                        variant_value<Variant>& v) {
  return std::visit([&f](auto& y) { return f(y); }, v.x);
}

/// Makes `x` hold a default alternative number `i` (false: no such one).
template <class... Ts, size_t... Is>
bool emplace_index(std::variant<Ts...>& x, size_t i,
                   std::index_sequence<Is...>) {
  return ((i == Is ? (x.template emplace<Is>(), true) : false) || ...);
}

template <class Inspector, class... Ts>
typename Inspector::result_type inspect(Inspector& f, std::variant<Ts...>& x) {
  auto index = static_cast<uint8_t>(x.index());
  variant_value<std::variant<Ts...>> value{x};
  auto load = [&x, &index]() -> caf::error {
    if (!emplace_index(x, index, std::index_sequence_for<Ts...>{}))
      return caf::sec::invalid_argument;
    return caf::none;
  };
  return f(caf::meta::omittable(), index, caf::meta::load_callback(load),
           value);
}

} // namespace osb

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(osb::completion)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(osb::runtimes::sandbox_instance)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(osb::runtimes::admission)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(osb::runtimes::claim_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(osb::runtimes::provision_options)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(osb::runtimes::provision_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(osb::runtimes::observation)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(osb::runtimes::runtime_object)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(osb::runtime_objects)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(osb::snapshot_images)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(osb::store::sandbox_row)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(osb::sandbox_rows)
