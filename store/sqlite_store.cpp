#include "store/sqlite_store.hpp"

#include <sqlite3.h>

#include <filesystem>

namespace osb::store {

namespace {

failure db_failure(sqlite3* db, const std::string& what) {
  return failure{failure_kind::failed,
                 what + ": " + (db ? sqlite3_errmsg(db) : "out of memory")};
}

/// Finalizes a prepared statement when leaving scope.
struct statement {
  sqlite3_stmt* ptr = nullptr;
  ~statement() {
    sqlite3_finalize(ptr);
  }
};

void bind_text(sqlite3_stmt* st, int pos, const std::string& x) {
  sqlite3_bind_text(st, pos, x.data(), static_cast<int>(x.size()),
                    SQLITE_TRANSIENT);
}

std::string column_text(sqlite3_stmt* st, int col) {
  auto ptr = reinterpret_cast<const char*>(sqlite3_column_text(st, col));
  return ptr ? std::string{ptr, static_cast<size_t>(sqlite3_column_bytes(st, col))}
             : std::string{};
}

} // namespace

sqlite_store::sqlite_store(sqlite3* db) : db_(db) {
  // nop
}

sqlite_store::~sqlite_store() {
  sqlite3_close(db_);
}

expected<std::unique_ptr<sqlite_store>>
sqlite_store::open(const std::string& path) {
  std::error_code err;
  auto parent = std::filesystem::path{path}.parent_path();
  if (!parent.empty())
    std::filesystem::create_directories(parent, err);
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    auto f = db_failure(db, "cannot open store " + path);
    sqlite3_close(db);
    return f;
  }
  std::unique_ptr<sqlite_store> result{new sqlite_store(db)};
  sqlite3_busy_timeout(db, 5000);
  // WAL + NORMAL: a commit survives kill -9 of the process (the WAL is in the
  // page cache); only a power loss can drop the last commits.
  auto ok = result->exec("PRAGMA journal_mode=WAL;"
                         "PRAGMA synchronous=NORMAL;"
                         "CREATE TABLE IF NOT EXISTS sandboxes ("
                         " id TEXT PRIMARY KEY, node TEXT NOT NULL,"
                         " spec TEXT NOT NULL, metadata TEXT NOT NULL,"
                         " phase TEXT NOT NULL, reason TEXT, message TEXT,"
                         " created_us INTEGER, expires_us INTEGER,"
                         " last_transition_us INTEGER, execd_port INTEGER,"
                         " http_port INTEGER, egress_port INTEGER);"
                         "CREATE INDEX IF NOT EXISTS sandboxes_node"
                         " ON sandboxes(node);"
                         "CREATE TABLE IF NOT EXISTS snapshots ("
                         " id TEXT PRIMARY KEY, node TEXT NOT NULL,"
                         " runtime_host TEXT, sandbox_id TEXT NOT NULL,"
                         " name TEXT, image TEXT, state TEXT NOT NULL,"
                         " reason TEXT, message TEXT, created_us INTEGER,"
                         " last_transition_us INTEGER);"
                         "CREATE INDEX IF NOT EXISTS snapshots_node"
                         " ON snapshots(node);"
                         "CREATE TABLE IF NOT EXISTS pools ("
                         " name TEXT PRIMARY KEY, record TEXT NOT NULL);");
  if (!ok)
    return failure{ok.error().kind,
                   "cannot open store " + path + ": " + ok.error().message};
  // Databases from before the egress sidecar lack the column; adding it
  // twice fails harmlessly.
  sqlite3_exec(db, "ALTER TABLE sandboxes ADD COLUMN egress_token TEXT",
               nullptr, nullptr, nullptr);
  sqlite3_exec(db, "ALTER TABLE sandboxes ADD COLUMN runtime_host TEXT",
               nullptr, nullptr, nullptr);
  sqlite3_exec(db, "ALTER TABLE sandboxes ADD COLUMN access_token TEXT",
               nullptr, nullptr, nullptr);
  sqlite3_exec(db, "ALTER TABLE sandboxes ADD COLUMN pool TEXT", nullptr,
               nullptr, nullptr);
  return result;
}

expected<unit> sqlite_store::exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string text = msg ? msg : "unknown error";
    sqlite3_free(msg);
    return failure{failure_kind::failed, "store: " + text};
  }
  return unit{};
}

expected<unit> sqlite_store::probe_write() {
  return exec("CREATE TABLE IF NOT EXISTS readiness (k INTEGER PRIMARY KEY, "
              "at INTEGER);"
              "INSERT OR REPLACE INTO readiness VALUES (1, "
              "CAST(strftime('%s','now') AS INTEGER));");
}

expected<unit> sqlite_store::put(const sandbox_row& row) {
  statement st;
  const char* sql
    = "INSERT OR REPLACE INTO sandboxes (id, node, spec, metadata, phase,"
      " reason, message, created_us, expires_us, last_transition_us,"
      " execd_port, http_port, egress_port, egress_token, runtime_host,"
      " access_token, pool) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
  if (sqlite3_prepare_v2(db_, sql, -1, &st.ptr, nullptr) != SQLITE_OK)
    return db_failure(db_, "store put");
  bind_text(st.ptr, 1, row.id);
  bind_text(st.ptr, 2, row.node);
  bind_text(st.ptr, 3, row.spec_json);
  bind_text(st.ptr, 4, row.metadata_json);
  bind_text(st.ptr, 5, row.phase);
  bind_text(st.ptr, 6, row.reason);
  bind_text(st.ptr, 7, row.message);
  sqlite3_bind_int64(st.ptr, 8, row.created_us);
  sqlite3_bind_int64(st.ptr, 9, row.expires_us);
  sqlite3_bind_int64(st.ptr, 10, row.last_transition_us);
  sqlite3_bind_int(st.ptr, 11, row.execd_port);
  sqlite3_bind_int(st.ptr, 12, row.http_port);
  sqlite3_bind_int(st.ptr, 13, row.egress_port);
  bind_text(st.ptr, 14, row.egress_token);
  bind_text(st.ptr, 15, row.runtime_host);
  bind_text(st.ptr, 16, row.access_token);
  bind_text(st.ptr, 17, row.pool);
  if (sqlite3_step(st.ptr) != SQLITE_DONE)
    return db_failure(db_, "store put " + row.id);
  return unit{};
}

expected<unit> sqlite_store::delete_by_id(const char* sql,
                                          const std::string& what,
                                          const std::string& id) {
  statement st;
  if (sqlite3_prepare_v2(db_, sql, -1, &st.ptr, nullptr) != SQLITE_OK)
    return db_failure(db_, what);
  bind_text(st.ptr, 1, id);
  if (sqlite3_step(st.ptr) != SQLITE_DONE)
    return db_failure(db_, what + " " + id);
  return unit{};
}

expected<unit> sqlite_store::remove(const std::string& id) {
  return delete_by_id("DELETE FROM sandboxes WHERE id = ?", "store remove",
                      id);
}

expected<std::vector<sandbox_row>>
sqlite_store::load(const std::string& node) {
  statement st;
  const char* sql
    = "SELECT id, node, spec, metadata, phase, reason, message, created_us,"
      " expires_us, last_transition_us, execd_port, http_port, egress_port,"
      " egress_token, runtime_host, access_token, pool FROM sandboxes"
      " WHERE node = ?";
  if (sqlite3_prepare_v2(db_, sql, -1, &st.ptr, nullptr) != SQLITE_OK)
    return db_failure(db_, "store load");
  bind_text(st.ptr, 1, node);
  std::vector<sandbox_row> result;
  int rc;
  while ((rc = sqlite3_step(st.ptr)) == SQLITE_ROW) {
    sandbox_row row;
    row.id = column_text(st.ptr, 0);
    row.node = column_text(st.ptr, 1);
    row.spec_json = column_text(st.ptr, 2);
    row.metadata_json = column_text(st.ptr, 3);
    row.phase = column_text(st.ptr, 4);
    row.reason = column_text(st.ptr, 5);
    row.message = column_text(st.ptr, 6);
    row.created_us = sqlite3_column_int64(st.ptr, 7);
    row.expires_us = sqlite3_column_int64(st.ptr, 8);
    row.last_transition_us = sqlite3_column_int64(st.ptr, 9);
    row.execd_port = static_cast<uint16_t>(sqlite3_column_int(st.ptr, 10));
    row.http_port = static_cast<uint16_t>(sqlite3_column_int(st.ptr, 11));
    row.egress_port = static_cast<uint16_t>(sqlite3_column_int(st.ptr, 12));
    row.egress_token = column_text(st.ptr, 13);
    row.runtime_host = column_text(st.ptr, 14);
    row.access_token = column_text(st.ptr, 15);
    row.pool = column_text(st.ptr, 16);
    result.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE)
    return db_failure(db_, "store load");
  return result;
}

expected<unit> sqlite_store::put_snapshot(const snapshot_view& x) {
  statement st;
  const char* sql
    = "INSERT OR REPLACE INTO snapshots (id, node, runtime_host, sandbox_id,"
      " name, image, state, reason, message, created_us, last_transition_us)"
      " VALUES (?,?,?,?,?,?,?,?,?,?,?)";
  if (sqlite3_prepare_v2(db_, sql, -1, &st.ptr, nullptr) != SQLITE_OK)
    return db_failure(db_, "store put snapshot");
  bind_text(st.ptr, 1, x.id);
  bind_text(st.ptr, 2, x.node);
  bind_text(st.ptr, 3, x.runtime_host);
  bind_text(st.ptr, 4, x.sandbox_id);
  bind_text(st.ptr, 5, x.name);
  bind_text(st.ptr, 6, x.image);
  bind_text(st.ptr, 7, x.state);
  bind_text(st.ptr, 8, x.reason);
  bind_text(st.ptr, 9, x.message);
  sqlite3_bind_int64(st.ptr, 10, x.created_us);
  sqlite3_bind_int64(st.ptr, 11, x.last_transition_us);
  if (sqlite3_step(st.ptr) != SQLITE_DONE)
    return db_failure(db_, "store put snapshot " + x.id);
  return unit{};
}

expected<unit> sqlite_store::remove_snapshot(const std::string& id) {
  return delete_by_id("DELETE FROM snapshots WHERE id = ?",
                      "store remove snapshot", id);
}

expected<std::vector<snapshot_view>>
sqlite_store::load_snapshots(const std::string& node) {
  statement st;
  const char* sql
    = "SELECT id, node, runtime_host, sandbox_id, name, image, state, reason,"
      " message, created_us, last_transition_us FROM snapshots"
      " WHERE node = ?";
  if (sqlite3_prepare_v2(db_, sql, -1, &st.ptr, nullptr) != SQLITE_OK)
    return db_failure(db_, "store load snapshots");
  bind_text(st.ptr, 1, node);
  std::vector<snapshot_view> result;
  int rc;
  while ((rc = sqlite3_step(st.ptr)) == SQLITE_ROW) {
    snapshot_view x;
    x.id = column_text(st.ptr, 0);
    x.node = column_text(st.ptr, 1);
    x.runtime_host = column_text(st.ptr, 2);
    x.sandbox_id = column_text(st.ptr, 3);
    x.name = column_text(st.ptr, 4);
    x.image = column_text(st.ptr, 5);
    x.state = column_text(st.ptr, 6);
    x.reason = column_text(st.ptr, 7);
    x.message = column_text(st.ptr, 8);
    x.created_us = sqlite3_column_int64(st.ptr, 9);
    x.last_transition_us = sqlite3_column_int64(st.ptr, 10);
    result.push_back(std::move(x));
  }
  if (rc != SQLITE_DONE)
    return db_failure(db_, "store load snapshots");
  return result;
}

expected<unit> sqlite_store::put_pool(const pool_record& x) {
  statement st;
  const char* sql = "INSERT OR REPLACE INTO pools (name, record) VALUES (?,?)";
  if (sqlite3_prepare_v2(db_, sql, -1, &st.ptr, nullptr) != SQLITE_OK)
    return db_failure(db_, "store put pool");
  bind_text(st.ptr, 1, x.name);
  bind_text(st.ptr, 2, pool_to_json(x));
  if (sqlite3_step(st.ptr) != SQLITE_DONE)
    return db_failure(db_, "store put pool " + x.name);
  return unit{};
}

expected<std::vector<pool_record>> sqlite_store::load_pools() {
  statement st;
  const char* sql = "SELECT name, record FROM pools";
  if (sqlite3_prepare_v2(db_, sql, -1, &st.ptr, nullptr) != SQLITE_OK)
    return db_failure(db_, "store load pools");
  std::vector<pool_record> result;
  int rc;
  while ((rc = sqlite3_step(st.ptr)) == SQLITE_ROW) {
    pool_record x;
    // A record this build cannot read is skipped rather than failing
    // every pool.
    if (pool_from_json(column_text(st.ptr, 1), x))
      result.push_back(std::move(x));
  }
  if (rc != SQLITE_DONE)
    return db_failure(db_, "store load pools");
  return result;
}

} // namespace osb::store
