// The emulator's own PKI, made with the openssl command line: a CA, a
// server certificate for 127.0.0.1, ::1 and localhost, and a client
// certificate (CN=emulator-admin, O=system:masters) the API accepts; and
// the kubeconfig that clients read (server URL, CA, client certificate and
// key or a bearer token).

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

function openssl(args, cwd) {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

function signed(dir, name, subject, ext) {
  openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject], dir);
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
           "-days", "3650", "-out", `${name}.crt`, "-extfile", `${name}.ext`], dir);
  fs.rmSync(path.join(dir, `${name}.csr`));
  fs.rmSync(path.join(dir, `${name}.ext`));
}

/// Makes ca.crt/key, server.crt/key and client.crt/key in `dir` (kept if
/// present). Returns their paths.
export function makePki(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const file = (n) => path.join(dir, n);
  if (!fs.existsSync(file("client.crt"))) {
    openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650", "-subj", "/CN=k8s-emulator-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"], dir);
    signed(dir, "server", "/CN=kube-apiserver",
           "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n");
    signed(dir, "client", "/O=system:masters/CN=emulator-admin",
           "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n");
  }
  return {
    ca: file("ca.crt"), serverCert: file("server.crt"), serverKey: file("server.key"),
    clientCert: file("client.crt"), clientKey: file("client.key"),
  };
}

/// Writes a kubeconfig (YAML) for `server`; `auth` has any of
/// {ca, clientCert, clientKey, token} (file paths; the token itself).
export function writeKubeconfig(file, server, { ca, clientCert, clientKey, token, namespace = "default" } = {}) {
  const b64 = (f) => fs.readFileSync(f).toString("base64");
  const lines = [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: k8s-emulator",
    "  cluster:",
    `    server: ${server}`,
    ...(ca ? [`    certificate-authority-data: ${b64(ca)}`] : []),
    "users:",
    "- name: k8s-emulator",
    "  user:",
    ...(clientCert ? [`    client-certificate-data: ${b64(clientCert)}`, `    client-key-data: ${b64(clientKey)}`] : []),
    ...(token ? [`    token: ${token}`] : []),
    ...(!clientCert && !token ? ["    {}"] : []),
    "contexts:",
    "- name: k8s-emulator",
    "  context:",
    "    cluster: k8s-emulator",
    "    user: k8s-emulator",
    `    namespace: ${namespace}`,
    "current-context: k8s-emulator",
    "",
  ];
  // "user: {}" must be written inline.
  const text = lines.join("\n").replace("  user:\n    {}", "  user: {}");
  fs.writeFileSync(file, text, { mode: 0o600 });
  return file;
}
