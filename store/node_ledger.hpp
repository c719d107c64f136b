#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/expected.hpp"

namespace osb::store {

/// This process's claim on a store file. While it lives, no other process
/// can open the same store (an exclusive lock on "<store>.lock", released
/// by the kernel when the process dies, `kill -9` included), and the store
/// records every node incarnation that used it: the evidence that lets a
/// node remove a container as an orphan (its incarnation label is one of
/// these) while it keeps those of another process of the same name.
class node_ledger {
public:
  ~node_ledger();

  /// Locks the store at `store_path` (creating parent directories), then
  /// records `incarnation` of `node` in it (table `incarnations`). Fails
  /// with `conflict` naming the holder's pid when another process holds it.
  static expected<std::unique_ptr<node_ledger>>
  open(const std::string& store_path, const std::string& node,
       const std::string& incarnation);

  /// The incarnations of the node recorded in this store, oldest first,
  /// the current one last.
  const std::vector<std::string>& incarnations() const {
    return incarnations_;
  }

private:
  explicit node_ledger(int lock_fd);

  int lock_fd_;
  std::vector<std::string> incarnations_;
};

} // namespace osb::store
