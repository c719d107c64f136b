#include "actors/system_config.hpp"

#include "actors/error.hpp"

namespace osb {

system_config::system_config() {
  add_error_category(osb_category(), render_error);
  add_error_category(runtime_category(), render_error);
  // The HTTP layer has its own I/O threads; actors need few workers.
  set("scheduler.max-threads", 2);
}

} // namespace osb
