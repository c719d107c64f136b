#pragma once

#include <caf/typed_event_based_actor.hpp>

#include "actors/interfaces.hpp"
#include "runtimes/docker/engine.hpp"

namespace osb {

/// Label of the node incarnation (process) that created a container or a
/// volume: recovery removes an orphan only when its store recorded it.
constexpr const char* incarnation_label = "opensandbox.io/incarnation";

/// Implements the RUNTIME actor on top of an asynchronous runtime. I/O
/// completions arrive on runtime threads and re-enter this actor as
/// `completion` messages, so response promises are only ever delivered from
/// the actor's own thread.
/// @param rt The runtime of one host.
runtime_actor::behavior_type runtime_bridge(runtime_actor::pointer self,
                                            runtimes::docker::engine_ptr rt);

/// The same, adding `stamp` to the labels of every container and volume it
/// creates (the server passes {incarnation_label: its incarnation}).
runtime_actor::behavior_type
stamping_runtime_bridge(runtime_actor::pointer self, runtimes::docker::engine_ptr rt,
                        string_map stamp);

} // namespace osb
