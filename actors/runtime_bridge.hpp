#pragma once

#include <caf/typed_event_based_actor.hpp>

#include "actors/interfaces.hpp"
#include "runtimes/runtime.hpp"

namespace osb {

/// Implements the RUNTIME actor on top of the runtime of one host. Runtime
/// callbacks arrive on runtime threads and re-enter this actor as
/// `completion` messages, so response promises are only ever delivered from
/// the actor's own thread.
/// @param rt The runtime of one host (runtimes::make_runtimes).
runtime_actor::behavior_type runtime_bridge(runtime_actor::pointer self,
                                            runtimes::runtime_ptr rt);

} // namespace osb
