#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/expected.hpp"
#include "core/model.hpp"
#include "core/pool.hpp"

struct sqlite3;

namespace osb::store {

/// What a node persists about one sandbox: everything needed to bring it
/// back after `kill -9` (the spec to re-provision, renewed expiry, patched
/// metadata, reserved ports, provisioning phase).
struct sandbox_row {
  std::string id;
  std::string node;
  std::string spec_json;
  std::string metadata_json;
  /// "provisioning", "provisioned", "failed" or "deleting".
  std::string phase;
  std::string reason;
  std::string message;
  int64_t created_us = 0;
  int64_t expires_us = 0;
  int64_t last_transition_us = 0;
  uint16_t execd_port = 0;
  uint16_t http_port = 0;
  uint16_t egress_port = 0;
  /// Token of the egress sidecar; empty without a network policy.
  std::string egress_token;
  /// The sandbox's access token (execd, server proxy); empty for rows from
  /// before tokens existed.
  std::string access_token;
  /// Docker host (of this node) that runs the sandbox.
  std::string runtime_host;
  /// The pool the sandbox belongs to (docs/pools.md), empty for others: a
  /// member while `phase` is "provisioning" (warming) or "idle", a claimed
  /// member from "claiming" on.
  std::string pool;
};

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

private:
  explicit sqlite_store(sqlite3* db);
  expected<unit> exec(const char* sql);
  /// Runs a `DELETE ... WHERE id = ?`; `what` names it in errors.
  expected<unit> delete_by_id(const char* sql, const std::string& what,
                              const std::string& id);

  sqlite3* db_;
};

} // namespace osb::store
