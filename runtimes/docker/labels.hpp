#pragma once

/// The labels the Docker runtime writes on containers, volumes and (through
/// commits) images: the runtime is the truth of what exists, and these say
/// whose it is. Same keys as the original server where it had them
/// (reference/server-behavior.md §3.3). No code outside runtimes/docker/
/// spells one.
namespace osb::runtimes::docker {

/// The sandbox a container runs (its workload).
inline constexpr const char* id_label = "opensandbox.io/id";
/// The snapshot a sandbox was restored from.
inline constexpr const char* snapshot_label = "opensandbox.io/snapshot-id";
/// The node that owns the object, and the runtime host (of that node) it
/// lives on: the scope of listings, so that supervisors never touch each
/// other's objects.
inline constexpr const char* node_label = "opensandbox.io/node";
inline constexpr const char* host_label = "opensandbox.io/runtime-host";
/// Expiry at create (RFC 3339), or "true" under manual cleanup.
inline constexpr const char* expires_label = "opensandbox.io/expires-at";
inline constexpr const char* manual_cleanup_label
  = "opensandbox.io/manual-cleanup";
/// The requested platform.
inline constexpr const char* platform_os_label = "opensandbox.io/platform-os";
inline constexpr const char* platform_arch_label
  = "opensandbox.io/platform-arch";
/// `extensions["access.renew.extend.seconds"]` (renew-on-access).
inline constexpr const char* renew_extend_label
  = "opensandbox.io/access-renew-extend-seconds";
/// The token of a sandbox's egress sidecar.
inline constexpr const char* egress_token_label
  = "opensandbox.io/egress-auth-token";
/// Host ports of execd and of port 8080.
inline constexpr const char* execd_port_label
  = "opensandbox.io/embedding-proxy-port";
inline constexpr const char* http_port_label = "opensandbox.io/http-port";
/// The sandbox an egress sidecar serves.
inline constexpr const char* sidecar_for_label
  = "opensandbox.io/egress-sidecar-for";
/// The node incarnation (process) that created a container or a volume:
/// recovery removes an orphan only when its store recorded it.
inline constexpr const char* incarnation_label = "opensandbox.io/incarnation";
/// Marks the volumes the server created (same key as the original).
inline constexpr const char* volume_managed_label
  = "opensandbox.io/volume-managed-by";
/// The sandbox a server-created volume was created for. Together with the
/// next label it is the durable record of what to remove with the sandbox:
/// Docker writes volume and labels atomically, so no crash can leave a
/// created volume unrecorded.
inline constexpr const char* volume_owner_label = "opensandbox.io/volume-for";
/// "true" when the volume goes with its sandbox (delete, expiry).
inline constexpr const char* volume_delete_label
  = "opensandbox.io/volume-delete-on-termination";

} // namespace osb::runtimes::docker
