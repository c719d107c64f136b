// Server-side printing: the meta.k8s.io/v1 Table kubectl asks for with
// `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` (kubectl get, and
// get -w, where every watch event carries a one-row Table).

/// "5s", "3m", "2h", "4d", as the API server's printers shorten ages.
export function shortAge(created, now = Date.now()) {
  const s = Math.max(0, Math.floor((now - Date.parse(created)) / 1000));
  if (s < 120)
    return `${s}s`;
  if (s < 3600 * 3)
    return `${Math.floor(s / 60)}m`;
  if (s < 86400 * 2)
    return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/// The STATUS column of `kubectl get pods` (printPod in the API server).
export function podStatusReason(pod) {
  const st = pod.status ?? {};
  let reason = st.reason || st.phase || "Pending";
  const inits = pod.spec.initContainers ?? [];
  let initializing = false;
  for (const [i, c] of (st.initContainerStatuses ?? []).entries()) {
    if (c.state?.terminated?.exitCode === 0)
      continue;
    initializing = true;
    if (c.state?.terminated)
      reason = `Init:${c.state.terminated.reason || `ExitCode:${c.state.terminated.exitCode}`}`;
    else if (c.state?.waiting?.reason && c.state.waiting.reason !== "PodInitializing")
      reason = `Init:${c.state.waiting.reason}`;
    else
      reason = `Init:${i}/${inits.length}`;
    break;
  }
  if (!initializing) {
    let running = false;
    for (const c of [...(st.containerStatuses ?? [])].reverse()) {
      if (c.state?.waiting?.reason)
        reason = c.state.waiting.reason;
      else if (c.state?.terminated)
        reason = c.state.terminated.reason || `ExitCode:${c.state.terminated.exitCode}`;
      else if (c.ready && c.state?.running)
        running = true;
    }
    if (reason === "Completed" && running)
      reason = "Running";
  }
  if (pod.metadata.deletionTimestamp)
    reason = "Terminating";
  return reason;
}

const nameColumn = { name: "Name", type: "string", format: "name", description: "Name must be unique within a namespace.", priority: 0 };
const ageColumn = { name: "Age", type: "string", format: "", description: "CreationTimestamp is a timestamp representing the server time when this object was created.", priority: 0 };

const podColumns = [
  nameColumn,
  { name: "Ready", type: "string", format: "", description: "The aggregate readiness state of this pod for accepting traffic.", priority: 0 },
  { name: "Status", type: "string", format: "", description: "The aggregate status of the containers in this pod.", priority: 0 },
  { name: "Restarts", type: "string", format: "", description: "The number of times the containers in this pod have been restarted.", priority: 0 },
  ageColumn,
  { name: "IP", type: "string", format: "", description: "IP address allocated to the pod.", priority: 1 },
  { name: "Node", type: "string", format: "", description: "Name of the Node this pod is assigned to.", priority: 1 },
];

function podCells(pod, now) {
  const cs = pod.status?.containerStatuses ?? [];
  const ready = cs.filter((c) => c.ready).length;
  const restarts = cs.reduce((n, c) => n + (c.restartCount ?? 0), 0);
  return [pod.metadata.name, `${ready}/${pod.spec.containers.length}`, podStatusReason(pod),
          String(restarts), shortAge(pod.metadata.creationTimestamp, now),
          pod.status?.podIP ?? "<none>", pod.spec.nodeName ?? "<none>"];
}

/// Column definitions and a row function for `resource`.
function printer(resource) {
  if (resource.kind === "Pod")
    return { columns: podColumns, cells: podCells };
  if (resource.kind === "Namespace")
    return {
      columns: [nameColumn, { name: "Status", type: "string", format: "", description: "The status of the namespace", priority: 0 }, ageColumn],
      cells: (o, now) => [o.metadata.name, o.status?.phase ?? "", shortAge(o.metadata.creationTimestamp, now)],
    };
  if (resource.kind === "Lease")
    return {
      columns: [nameColumn, { name: "Holder", type: "string", format: "", description: "The holder of the lease", priority: 0 }, ageColumn],
      cells: (o, now) => [o.metadata.name, o.spec?.holderIdentity ?? "", shortAge(o.metadata.creationTimestamp, now)],
    };
  return {
    columns: [nameColumn, ageColumn],
    cells: (o, now) => [o.metadata.name, shortAge(o.metadata.creationTimestamp, now)],
  };
}

function rowObject(obj, include) {
  if (include === "None")
    return undefined;
  if (include === "Object")
    return obj;
  return { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: obj.metadata };
}

/// A Table of `objects`; `include` is the includeObject parameter
/// (None, Metadata (default) or Object).
export function toTable(resource, objects, { resourceVersion, continue: cont, include = "Metadata", columns = true } = {}) {
  const p = printer(resource);
  const now = Date.now();
  const table = {
    kind: "Table", apiVersion: "meta.k8s.io/v1",
    metadata: { resourceVersion, ...(cont ? { continue: cont } : {}) },
    ...(columns ? { columnDefinitions: p.columns } : {}),
    rows: objects.map((o) => ({ cells: p.cells(o, now), object: rowObject(o, include) })),
  };
  return table;
}

/// True when the Accept header asks for a Table.
export const wantsTable = (accept) => /as=Table/.test(accept ?? "");
