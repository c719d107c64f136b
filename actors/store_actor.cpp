#include "actors/store_actor.hpp"

#include "actors/error.hpp"
#include "base/log.hpp"

namespace osb {

store_actor::behavior_type
store_actor_impl(store_actor::stateful_pointer<store_state> self,
                 std::shared_ptr<store::sqlite_store> db) {
  self->state.db = std::move(db);
  return {
    [=](atom::put, store::sandbox_row& row) -> caf::result<bool> {
      auto x = self->state.db->put(row);
      if (!x) {
        OSB_ERROR("store", "", row.id, "store failed to write: "
                                         << x.error().message);
        return make_error(ec::store_failed, x.error().message);
      }
      return true;
    },
    [=](atom::remove, std::string& id) -> caf::result<bool> {
      auto x = self->state.db->remove(id);
      if (!x) {
        OSB_ERROR("store", "", id, "store failed to delete: "
                                     << x.error().message);
        return make_error(ec::store_failed, x.error().message);
      }
      return true;
    },
    [=](atom::put, snapshot_view& x) -> caf::result<bool> {
      auto r = self->state.db->put_snapshot(x);
      if (!r) {
        OSB_ERROR("store", "", x.sandbox_id,
                  "store failed to write snapshot " << x.id << ": "
                                                    << r.error().message);
        return make_error(ec::store_failed, r.error().message);
      }
      return true;
    },
    [=](atom::snap_del, std::string& id) -> caf::result<bool> {
      auto r = self->state.db->remove_snapshot(id);
      if (!r) {
        OSB_ERROR("store", "", "", "store failed to delete snapshot "
                                     << id << ": " << r.error().message);
        return make_error(ec::store_failed, r.error().message);
      }
      return true;
    },
    [=](atom::snap_list, std::string& node) -> caf::result<snapshot_views> {
      auto r = self->state.db->load_snapshots(node);
      if (!r)
        return make_error(ec::store_failed, r.error().message);
      return std::move(r.value());
    },
    [=](atom::put, pool_record& x) -> caf::result<bool> {
      auto r = self->state.db->put_pool(x);
      if (!r) {
        OSB_ERROR("store", "", "", "store failed to write pool "
                                     << x.name << ": " << r.error().message);
        return make_error(ec::store_failed, r.error().message);
      }
      return true;
    },
    [=](atom::pool_list) -> caf::result<pool_records> {
      auto r = self->state.db->load_pools();
      if (!r)
        return make_error(ec::store_failed, r.error().message);
      return std::move(r.value());
    },
    [=](atom::ready) -> caf::result<bool> {
      auto r = self->state.db->probe_write();
      if (!r)
        return make_error(ec::store_failed, r.error().message);
      return true;
    },
    [=](atom::load, std::string& node) -> caf::result<sandbox_rows> {
      auto x = self->state.db->load(node);
      if (!x)
        return make_error(ec::store_failed, x.error().message);
      return std::move(x.value());
    },
  };
}

} // namespace osb
