// Label and field selectors as the API server parses them
// (k8s.io/apimachinery/pkg/labels and pkg/fields):
//   labels: a=b, a==b, a!=b, a in (x,y), a notin (x), a, !a  (comma = AND)
//   fields: f=v, f==v, f!=v                                   (comma = AND)
// A parse error throws a SelectorError (the API answers 400 BadRequest).

/// A selector the API server would refuse (400 BadRequest).
export class SelectorError extends Error {}

const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/// Splits `s` at top-level commas (commas inside parentheses stay).
function splitTerms(s) {
  const out = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; ++i) {
    if (s[i] === "(")
      ++depth;
    else if (s[i] === ")")
      --depth;
    else if (s[i] === "," && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out.map((t) => t.trim()).filter((t) => t.length > 0);
}

function checkValue(v, term) {
  if (v.length > 63 || !labelValue.test(v))
    throw new SelectorError(`unable to parse requirement: invalid label value: "${v}" in "${term}"`);
}

/// Parses a label selector into a list of requirements
/// ({key, op, values}); "" selects everything.
export function parseLabelSelector(text) {
  const reqs = [];
  for (const term of splitTerms(text ?? "")) {
    let m;
    if ((m = /^!\s*([^\s=!(),]+)$/.exec(term)))
      reqs.push({ key: m[1], op: "!", values: [] });
    else if ((m = /^([^\s=!(),]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(term))) {
      const values = m[3].split(",").map((v) => v.trim());
      values.forEach((v) => checkValue(v, term));
      reqs.push({ key: m[1], op: m[2], values });
    } else if ((m = /^([^\s=!(),]+)\s*(==|=|!=)\s*([^\s=!(),]*)$/.exec(term))) {
      checkValue(m[3], term);
      reqs.push({ key: m[1], op: m[2] === "!=" ? "!=" : "=", values: [m[3]] });
    } else if ((m = /^([^\s=!(),]+)$/.exec(term)))
      reqs.push({ key: m[1], op: "exists", values: [] });
    else
      throw new SelectorError(`unable to parse requirement: "${term}"`);
  }
  return reqs;
}

/// True when `labels` (an object or undefined) satisfies every requirement.
export function matchLabels(reqs, labels) {
  for (const { key, op, values } of reqs) {
    const has = labels != null && Object.prototype.hasOwnProperty.call(labels, key);
    const v = has ? labels[key] : undefined;
    switch (op) {
      case "=": if (!has || v !== values[0]) return false; break;
      case "!=": if (has && v === values[0]) return false; break;
      case "in": if (!has || !values.includes(v)) return false; break;
      case "notin": if (has && values.includes(v)) return false; break;
      case "exists": if (!has) return false; break;
      case "!": if (has) return false; break;
    }
  }
  return true;
}

/// Parses a field selector against the fields a resource supports
/// (`fields`: name -> getter(obj)); an unsupported field throws as the
/// API server does ("field label not supported").
export function parseFieldSelector(text, fields) {
  const reqs = [];
  for (const term of splitTerms(text ?? "")) {
    const m = /^([^\s=!]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m)
      throw new SelectorError(`invalid selector: '${text}'; can't understand '${term}'`);
    const get = fields[m[1]];
    if (!get)
      throw new SelectorError(`field label not supported: ${m[1]}`);
    reqs.push({ get, field: m[1], neg: m[2] === "!=", value: m[3] });
  }
  return reqs;
}

/// True when `obj` satisfies every field requirement.
export function matchFields(reqs, obj) {
  for (const { get, neg, value } of reqs) {
    const v = get(obj) ?? "";
    if ((String(v) === value) === neg)
      return false;
  }
  return true;
}

/// The fields every resource supports.
export const metadataFields = {
  "metadata.name": (o) => o.metadata.name,
  "metadata.namespace": (o) => o.metadata.namespace,
};
