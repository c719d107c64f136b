#!/usr/bin/env node
// A Kubernetes API-server emulator for tests (see docs/k8s-emulator.md).
// Prints one JSON line first ({url, admin, kubeconfig, ...}), then serves
// until SIGTERM or SIGINT (or stdin closing, with --exit-on-stdin-close).
// --crd FILE: CustomResourceDefinition manifests (YAML/JSON) or JSON
// descriptions (lib/resources.mjs customResource()).
// --agent-sandbox-controller: a minimal kubernetes-sigs/agent-sandbox
// controller (lib/agent-sandbox.mjs): Sandbox -> pod; needs its CRD (--crd).
//
// Usage: node emulator.mjs [--port N] [--admin-port N] [--host H] [--tls]
//          [--token T] [--require-auth] [--kubeconfig-auth cert|token|none]
//          [--state-dir DIR] [--history N] [--bookmark-interval-ms N]
//          [--watch-timeout-seconds N] [--field-validation Strict|Warn|Ignore]
//          [--no-events] [--delays scheduleMs=50,startMs=50,...]
//          [--crd FILE]... [--agent-sandbox-controller] [--docker]
//          [--node-name NAME]
//          [--k8s-version vX.Y.Z] [--exit-on-stdin-close]

import fs from "node:fs";
import { startEmulator } from "./lib/emulator.mjs";
import { customResourcesFromFile } from "./lib/resources.mjs";

function parseArgs(argv) {
  const o = { customResources: [], delays: {} };
  let exitOnStdinClose = false;
  const take = (i) => {
    if (i + 1 >= argv.length)
      throw new Error(`${argv[i]} needs a value`);
    return argv[i + 1];
  };
  const int = (i) => {
    const n = Number(take(i));
    if (!Number.isInteger(n) || n < 0)
      throw new Error(`${argv[i]}: not a number: ${argv[i + 1]}`);
    return n;
  };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    switch (a) {
      case "--port": o.port = int(i++); break;
      case "--admin-port": o.adminPort = int(i++); break;
      case "--host": o.host = take(i++); break;
      case "--tls": o.tls = true; break;
      case "--token": o.token = take(i++); break;
      case "--require-auth": o.requireAuth = true; break;
      case "--kubeconfig-auth": o.kubeconfigAuth = take(i++); break;
      case "--state-dir": o.stateDir = take(i++); break;
      case "--history": o.historyLimit = int(i++); break;
      case "--bookmark-interval-ms": o.bookmarkIntervalMs = int(i++); break;
      case "--watch-timeout-seconds": o.watchTimeoutSeconds = int(i++); break;
      case "--field-validation": o.fieldValidation = take(i++); break;
      case "--no-events": o.events = false; break;
      case "--delays":
        for (const kv of take(i++).split(",")) {
          const [k, v] = kv.split("=");
          o.delays[k.trim()] = Number(v);
        }
        break;
      case "--crd": o.customResources.push(...customResourcesFromFile(fs.readFileSync(take(i++), "utf8"))); break;
      case "--docker": o.docker = true; break;
      case "--agent-sandbox-controller": o.agentSandboxController = true; break;
      case "--node-name": o.nodeName = take(i++); break;
      case "--k8s-version": o.version = take(i++); break;
      case "--exit-on-stdin-close": exitOnStdinClose = true; break;
      case "-h": case "--help":
        console.log(fs.readFileSync(new URL(import.meta.url), "utf8").split("\n").filter((l) => l.startsWith("//")).map((l) => l.slice(3)).join("\n"));
        process.exit(0);
        break;
      default: throw new Error(`unknown argument ${a} (see --help)`);
    }
  }
  return { o, exitOnStdinClose };
}

let parsed;
try {
  parsed = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(`k8s-emulator: ${e.message}`);
  process.exit(2);
}
const emu = await startEmulator(parsed.o);
process.stdout.write(`${JSON.stringify(emu.info())}\n`);

let stopping = false;
async function stop() {
  if (stopping)
    return;
  stopping = true;
  await emu.stop();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
if (parsed.exitOnStdinClose) {
  process.stdin.on("end", stop);
  process.stdin.resume();
}
