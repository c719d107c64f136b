// The e2e tests' DNS server (there is no internet here): the egress
// sidecars forward the names their policy allows to it. Every A query for a
// name under .e2e.test gets ADDRESS (the Docker bridge's gateway, where the
// tests' HTTP servers listen), or A.B.C.D for a name that starts with the
// label ip-A-B-C-D (bench/egress_dns.sh: a new address per name); other A
// queries get NXDOMAIN, other types an empty answer. Prints its UDP port on
// stdout, then serves until killed. Also used by bench/egress_dns.sh.
// Usage: node dns-server.mjs ADDRESS
import dgram from "node:dgram";

const address = process.argv[2];
/** The four octets of a dotted (or, with `sep`, dashed) IPv4 address. */
function ipv4(text, sep = ".") {
  const octets = (text ?? "").split(sep).map((o) => (/^\d{1,3}$/.test(o) ? Number(o) : NaN));
  return octets.length === 4 && octets.every((o) => o <= 255) ? octets : null;
}

const octets = ipv4(address);
if (!octets) {
  console.error("usage: node dns-server.mjs IPV4-ADDRESS");
  process.exit(2);
}

/** The question's name (lowercase) and the offset after its type and class. */
function parseQuestion(msg) {
  let at = 12;
  const labels = [];
  while (at < msg.length && msg[at] !== 0) {
    const len = msg[at];
    if (len > 63 || at + 1 + len > msg.length) return null;
    labels.push(msg.subarray(at + 1, at + 1 + len).toString("latin1"));
    at += 1 + len;
  }
  if (at + 5 > msg.length) return null;
  const type = msg.readUInt16BE(at + 1);
  return { name: labels.join(".").toLowerCase(), type, end: at + 5 };
}

const socket = dgram.createSocket("udp4");
socket.on("message", (msg, peer) => {
  if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return;
  const q = parseQuestion(msg);
  if (!q) return;
  const ours = q.name.endsWith(".e2e.test");
  const answer = ours && q.type === 1;
  const header = Buffer.alloc(12);
  header.writeUInt16BE(msg.readUInt16BE(0), 0); // id
  // QR, opcode 0, RD copied, RA; rcode 3 (NXDOMAIN) for foreign names.
  header.writeUInt16BE(0x8080 | (msg[2] & 0x01) << 8 | (ours ? 0 : 3), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answer ? 1 : 0, 6);
  const parts = [header, msg.subarray(12, q.end)];
  if (answer) {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // the question's name
    rr.writeUInt16BE(1, 2); // A
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(5, 6); // TTL
    rr.writeUInt16BE(4, 10);
    const first = q.name.split(".")[0];
    const own = first.startsWith("ip-") ? ipv4(first.slice(3), "-") : null;
    (own ?? octets).forEach((o, i) => rr.writeUInt8(o, 12 + i));
    parts.push(rr);
  }
  socket.send(Buffer.concat(parts), peer.port, peer.address);
});
socket.bind(0, "0.0.0.0", () => {
  console.log(socket.address().port);
});
