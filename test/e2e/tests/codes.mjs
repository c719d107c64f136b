// A code-interpreter client for the e2e tests. The official
// code-interpreter SDK (@alibaba-group/opensandbox-code-interpreter) is not
// published on npm, so this speaks the same wire as its CodesAdapter
// (contexts through the base SDK's execd client, runs as a fetch stream
// parsed line by line and dispatched with the base SDK's own
// ExecutionEventDispatcher), on top of the pinned base SDK.
import {
  DEFAULT_EXECD_PORT,
  ExecutionEventDispatcher,
  SandboxApiException,
  SandboxError,
} from "@alibaba-group/opensandbox";
import { createExecdClient } from "@alibaba-group/opensandbox/internal";

async function check({ error, response }, what) {
  if (!error && response.ok) return;
  const body = error && typeof error === "object" ? error : {};
  throw new SandboxApiException({
    message: body.message ?? `${what} failed`,
    statusCode: response.status,
    requestId: response.headers.get("x-request-id") ?? undefined,
    error: new SandboxError(body.code ?? SandboxError.UNEXPECTED_RESPONSE,
      body.message ?? what),
    rawBody: error,
  });
}

async function* events(res) {
  if (!res.ok) {
    const text = await res.text().catch(() => "");
    let err = {};
    try { err = JSON.parse(text); } catch { /* not JSON */ }
    throw new SandboxApiException({
      message: err.message ?? `Run code failed (status=${res.status})`,
      statusCode: res.status,
      error: new SandboxError(err.code ?? SandboxError.UNEXPECTED_RESPONSE,
        err.message ?? "Run code failed"),
      rawBody: err,
    });
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (!line) continue;
      try { yield JSON.parse(line); } catch { /* skipped, as the SDK does */ }
    }
  }
  if (buf.trim()) yield JSON.parse(buf.trim());
}

/** The `codes` service of a CodeInterpreter for `sandbox`. */
export async function codesOf(sandbox) {
  const endpoint = await sandbox.getEndpoint(DEFAULT_EXECD_PORT);
  const baseUrl = `${sandbox.connectionConfig.protocol}://${endpoint.endpoint}`;
  const headers = { ...(sandbox.connectionConfig.headers ?? {}),
    ...(endpoint.headers ?? {}) };
  const client = createExecdClient({ baseUrl, headers });
  return {
    async createContext(language) {
      const r = await client.POST("/code/context", { body: { language } });
      await check(r, "Create code context");
      if (!r.data?.language) throw new Error("missing language");
      return { id: r.data.id, language: r.data.language };
    },
    async getContext(id) {
      const r = await client.GET("/code/contexts/{context_id}",
        { params: { path: { context_id: id } } });
      await check(r, "Get code context");
      return { id: r.data.id, language: r.data.language };
    },
    async listContexts(language) {
      const r = await client.GET("/code/contexts",
        language ? { params: { query: { language } } } : {});
      await check(r, "List code contexts");
      if (!Array.isArray(r.data)) throw new Error("not an array");
      return r.data;
    },
    async deleteContext(id) {
      await check(await client.DELETE("/code/contexts/{context_id}",
        { params: { path: { context_id: id } } }), "Delete code context");
    },
    async deleteContexts(language) {
      await check(await client.DELETE("/code/contexts",
        { params: { query: { language } } }), "Delete code contexts");
    },
    async interrupt(id) {
      await check(await client.DELETE("/code", { params: { query: { id } } }),
        "Interrupt code");
    },
    async run(code, opts = {}) {
      const context = opts.context ?? { language: opts.language ?? "python" };
      const res = await fetch(`${baseUrl}/code`, {
        method: "POST",
        headers: { accept: "text/event-stream",
          "content-type": "application/json", ...headers },
        body: JSON.stringify({ code,
          context: { id: context.id, language: context.language } }),
      });
      const execution = { logs: { stdout: [], stderr: [] }, result: [] };
      const dispatcher = new ExecutionEventDispatcher(execution, opts.handlers);
      for await (const ev of events(res)) await dispatcher.dispatch(ev);
      return execution;
    },
  };
}
