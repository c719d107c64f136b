#include "actors/system_config.hpp"

#include "actors/error.hpp"
#include "actors/interfaces.hpp"

namespace osb {

system_config::system_config() {
  add_error_category(osb_category(), render_error);
  add_error_category(runtime_category(), render_error);
  // The HTTP layer has its own I/O threads; actors need few workers. The
  // work-stealing default busy-polls after every message, which took
  // 100+ ms of CPU per create from dockerd on 2 cores (bench/); a shared
  // queue sleeps when idle and is as fast for our message rates.
  set("scheduler.max-threads", 2);
  set("scheduler.policy", caf::atom("sharing"));
  // Everything that crosses nodes, under the same names on every node
  // (CAF compares interfaces as strings when peers connect).
  add_message_type<sandbox_spec>("osb::sandbox_spec");
  add_message_type<sandbox_view>("osb::sandbox_view");
  add_message_type<list_query>("osb::list_query");
  add_message_type<list_page>("osb::list_page");
  add_message_type<metadata_patch>("osb::metadata_patch");
  add_message_type<diagnostics_query>("osb::diagnostics_query");
  add_message_type<sandbox_op>("osb::sandbox_op");
  add_message_type<sandbox_request>("osb::sandbox_request");
  add_message_type<sandbox_answer>("osb::sandbox_answer");
  add_message_type<snapshot_view>("osb::snapshot_view");
  add_message_type<snapshot_query>("osb::snapshot_query");
  add_message_type<snapshot_page>("osb::snapshot_page");
  add_message_type<node_info>("osb::node_info");
  add_message_type<member_info>("osb::member_info");
  add_message_type<pool_capacity>("osb::pool_capacity");
  add_message_type<pool_record>("osb::pool_record");
  add_message_type<pool_view>("osb::pool_view");
  add_message_type<pool_records>("osb::pool_records");
  add_message_type<pool_tally>("osb::pool_tally");
  add_message_type<pool_tallies>("osb::pool_tallies");
  add_message_type<sandbox_actor>("osb::sandbox_actor");
  add_message_type<supervisor_actor>("osb::supervisor_actor");
  add_message_type<node_actor>("osb::node_actor");
}

} // namespace osb
