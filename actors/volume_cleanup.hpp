#pragma once

#include <caf/error.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "actors/error.hpp"
#include "actors/interfaces.hpp"
#include "base/log.hpp"
#include "runtimes/volumes.hpp"

namespace osb {

/// Removes the named volumes the server created for sandbox `id`: all of
/// them (`all`: the sandbox never ran, e.g. a failed create) or only those
/// flagged `deleteOnSandboxTermination` (delete, expiry). The record is the
/// volumes' own labels, written atomically with them, so this also works
/// after a restart. A volume still used by another sandbox stays (Docker
/// refuses with a conflict; logged). `done` gets the first other error.
/// Used by SANDBOX and HOST SUPERVISOR actors alike.
template <class Self>
void remove_sandbox_volumes(Self* self, runtime_actor rt,
                            caf::timespan timeout, std::string id, bool all,
                            std::string rid,
                            std::function<void(caf::error)> done) {
  string_map filter{{runtimes::volume_owner_label, id}};
  self->request(rt, timeout, atom::vol_list_v, std::move(filter))
    .then(
      [=](volume_infos& xs) {
        std::vector<std::string> names;
        for (auto& v : xs)
          if (runtimes::created_for(v, id)
              && (all || runtimes::delete_with_sandbox(v)))
            names.push_back(v.name);
        if (names.empty()) {
          done(caf::none);
          return;
        }
        auto pending = std::make_shared<size_t>(names.size());
        auto first = std::make_shared<caf::error>();
        for (auto& name : names)
          self->request(rt, timeout, atom::vol_remove_v, name)
            .then(
              [=](bool) {
                OSB_INFO("volumes", rid, id, "removed volume " << name);
                if (--*pending == 0)
                  done(*first);
              },
              [=](caf::error& err) {
                auto f = to_failure(err);
                if (f.kind == failure_kind::conflict)
                  OSB_WARN("volumes", rid, id,
                           "keeps volume " << name
                                           << ", another container uses it: "
                                           << f.message);
                else if (!*first)
                  *first = err;
                if (--*pending == 0)
                  done(*first);
              });
      },
      [=](caf::error& err) { done(err); });
}

} // namespace osb
