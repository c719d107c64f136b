#include "store/node_ledger.hpp"

#include <sqlite3.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

namespace osb::store {

namespace {

/// Reads the pid the lock holder wrote into the lock file ("" if none).
std::string holder_of(int fd) {
  char buf[32] = {0};
  auto n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  std::string result{buf, n > 0 ? static_cast<size_t>(n) : 0};
  while (!result.empty() && (result.back() == '\n' || result.back() == ' '))
    result.pop_back();
  return result;
}

/// Records `incarnation` and loads all incarnations of `node`.
expected<std::vector<std::string>> record(const std::string& path,
                                          const std::string& node,
                                          const std::string& incarnation) {
  sqlite3* db = nullptr;
  auto fail = [&](const std::string& what) {
    failure f{failure_kind::failed,
              what + ": " + (db ? sqlite3_errmsg(db) : "out of memory")};
    sqlite3_close(db);
    return f;
  };
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK)
    return fail("cannot open store " + path);
  sqlite3_busy_timeout(db, 5000);
  if (sqlite3_exec(db,
                   "PRAGMA journal_mode=WAL;"
                   "CREATE TABLE IF NOT EXISTS incarnations ("
                   " id TEXT PRIMARY KEY, node TEXT NOT NULL,"
                   " started_us INTEGER NOT NULL);",
                   nullptr, nullptr, nullptr)
      != SQLITE_OK)
    return fail("cannot prepare store " + path);
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db,
                         "INSERT OR REPLACE INTO incarnations (id, node,"
                         " started_us) VALUES (?,?,?)",
                         -1, &st, nullptr)
      != SQLITE_OK)
    return fail("store incarnation");
  sqlite3_bind_text(st, 1, incarnation.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, node.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 3, now);
  auto rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE)
    return fail("store incarnation");
  if (sqlite3_prepare_v2(db,
                         "SELECT id FROM incarnations WHERE node = ?"
                         " ORDER BY started_us, id",
                         -1, &st, nullptr)
      != SQLITE_OK)
    return fail("load incarnations");
  sqlite3_bind_text(st, 1, node.c_str(), -1, SQLITE_TRANSIENT);
  std::vector<std::string> result;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    result.emplace_back(
      reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE)
    return fail("load incarnations");
  // The current one last, whatever the clock said.
  result.erase(std::remove(result.begin(), result.end(), incarnation),
               result.end());
  result.push_back(incarnation);
  sqlite3_close(db);
  return result;
}

} // namespace

node_ledger::node_ledger(int lock_fd) : lock_fd_(lock_fd) {
  // nop
}

node_ledger::~node_ledger() {
  ::close(lock_fd_); // releases the lock
}

expected<std::unique_ptr<node_ledger>>
node_ledger::open(const std::string& store_path, const std::string& node,
                  const std::string& incarnation) {
  std::error_code err;
  auto parent = std::filesystem::path{store_path}.parent_path();
  if (!parent.empty())
    std::filesystem::create_directories(parent, err);
  auto lock_path = store_path + ".lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return failure{failure_kind::failed, "cannot open " + lock_path + ": "
                                           + std::strerror(errno)};
  // flock: held per open file description, released at exit or kill -9.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    auto holder = holder_of(fd);
    ::close(fd);
    return failure{failure_kind::conflict,
                   "the store " + store_path
                     + " is in use by another process"
                     + (holder.empty() ? "" : " (pid " + holder + ")")
                     + "; two servers must not share one store"};
  }
  std::unique_ptr<node_ledger> result{new node_ledger(fd)};
  auto pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0
      || ::pwrite(fd, pid.data(), pid.size(), 0)
           != static_cast<ssize_t>(pid.size())) {
    // The pid is only informative; the lock is what counts.
  }
  auto xs = record(store_path, node, incarnation);
  if (!xs)
    return xs.error();
  result->incarnations_ = std::move(*xs);
  return result;
}

} // namespace osb::store
