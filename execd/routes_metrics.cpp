// execd routes: /metrics and /metrics/watch.

#include "execd/routes.hpp"

#include "execd/route_util.hpp"

#include <chrono>
#include <thread>

namespace osb::execd {

void router::metrics(response_writer& w) {
  send_json(w, metrics_.sample().to_json());
}

void router::metrics_watch(response_writer& w) {
  if (!w.begin(200, "text/event-stream", std::nullopt,
               {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}}))
    return;
  for (;;) {
    auto line = metrics_.sample().to_json() + "\n";
    if (!w.write(line))
      return;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

} // namespace osb::execd
