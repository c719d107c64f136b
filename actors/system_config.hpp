#pragma once

#include <caf/actor_system_config.hpp>

namespace osb {

/// The CAF configuration shared by the server and the tests: error
/// renderers of our categories and the scheduler size.
class system_config : public caf::actor_system_config {
public:
  system_config();
};

} // namespace osb
