#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/expected.hpp"
#include "core/model.hpp"
#include "core/pool.hpp"
#include "core/sandbox_row.hpp"

struct sqlite3;

namespace osb::store {

/// A SQLite database in WAL mode. Not thread-safe: one owner (the STORE
/// actor, which runs on its own thread) uses it.
class sqlite_store {
public:
  ~sqlite_store();

  /// Opens or creates the database at `path`, creating parent directories.
  static expected<std::unique_ptr<sqlite_store>> open(const std::string& path);

  /// Inserts or replaces the row with the same id.
  expected<unit> put(const sandbox_row& row);

  /// Deletes a row; a missing row is success.
  expected<unit> remove(const std::string& id);

  /// Returns all rows of `node`.
  expected<std::vector<sandbox_row>> load(const std::string& node);

  /// Inserts or replaces a snapshot record (table `snapshots`).
  expected<unit> put_snapshot(const snapshot_view& x);

  /// Deletes a snapshot record; a missing one is success.
  expected<unit> remove_snapshot(const std::string& id);

  /// Returns all snapshot records of `node`.
  expected<std::vector<snapshot_view>> load_snapshots(const std::string& node);

  /// Inserts or replaces a pool record (table `pools`, one row per name;
  /// deleted pools stay as tombstones).
  expected<unit> put_pool(const pool_record& x);

  /// Returns every pool record, tombstones included.
  expected<std::vector<pool_record>> load_pools();

  /// Readiness: writes one row of its own (table `readiness`), so that a
  /// full or read-only disk shows before a create needs the store.
  expected<unit> probe_write();

private:
  explicit sqlite_store(sqlite3* db);
  expected<unit> exec(const char* sql);
  /// Runs a `DELETE ... WHERE id = ?`; `what` names it in errors.
  expected<unit> delete_by_id(const char* sql, const std::string& what,
                              const std::string& id);

  sqlite3* db_;
};

} // namespace osb::store
