// A form generated from a JSON schema (a job type's params), and the field
// errors of a 422 answer shown next to their fields.

import { h } from "./dom.js";

function resolve(schema, root) {
  let s = schema || {};
  while (s.$ref) s = (root.$defs || {})[s.$ref.split("/").pop()] || {};
  if (s.anyOf) {
    const options = s.anyOf.map((o) => resolve(o, root)).filter((o) => o.type !== "null");
    if (options.length === 1) return { ...options[0], ...s, anyOf: undefined, nullable: true };
  }
  return s;
}

function kindOf(s) {
  if (s.enum) return "enum";
  if (["integer", "number", "string", "boolean"].includes(s.type)) return s.type;
  return "json";
}

// One field: {name, kind, input, error, wrapper, read()}.
export function field(name, prefix, schema, root, required) {
  const s = resolve(schema, root);
  const kind = kindOf(s);
  const id = `${prefix}-${name}`;
  const errorId = `${id}-error`;
  const hintId = `${id}-hint`;
  const common = { id, name, "aria-describedby": `${hintId} ${errorId}` };
  let input;
  if (kind === "boolean") {
    input = h("input", { ...common, type: "checkbox", checked: s.default === true });
  } else if (kind === "enum") {
    input = h(
      "select",
      common,
      required ? null : h("option", { value: "" }, "(default)"),
      s.enum.map((v) => h("option", { value: JSON.stringify(v), selected: v === s.default }, String(v))),
    );
  } else if (kind === "json") {
    input = h("textarea", {
      ...common,
      rows: 3,
      value: s.default === undefined ? "" : JSON.stringify(s.default),
      placeholder: "JSON",
    });
  } else {
    const numeric = kind === "integer" || kind === "number";
    input = h("input", {
      ...common,
      type: numeric ? "number" : "text",
      step: kind === "integer" ? "1" : numeric ? "any" : undefined,
      min: s.minimum ?? s.exclusiveMinimum,
      max: s.maximum ?? s.exclusiveMaximum,
      value: s.default === undefined || s.default === null ? "" : String(s.default),
    });
  }
  const hints = [];
  if (s.description) hints.push(s.description);
  if (s.minimum !== undefined || s.maximum !== undefined) {
    hints.push(`${s.minimum ?? "…"} to ${s.maximum ?? "…"}`);
  }
  if (s.default !== undefined) hints.push(`default ${JSON.stringify(s.default)}`);
  const error = h(`p.field-error#${errorId}`, { "aria-live": "polite" });
  const label = h("label", { htmlFor: id }, s.title || name, required ? h("span.required", { "aria-hidden": "true" }, " *") : null);
  const wrapper = h(
    `div.field.kind-${kind}`,
    kind === "boolean" ? [input, label] : [label, input],
    h(`p.hint#${hintId}`, hints.join(" · ")),
    error,
  );
  if (required) input.setAttribute("aria-required", "true");

  function read() {
    if (kind === "boolean") return input.checked;
    const text = input.value.trim();
    if (text === "") return undefined; // the type's default applies
    if (kind === "integer" || kind === "number") {
      const n = Number(text);
      return Number.isNaN(n) ? text : n;
    }
    if (kind === "enum" || kind === "json") {
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
    }
    return text;
  }

  function setError(message) {
    error.textContent = message || "";
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  return { name, kind, input, wrapper, read, setError };
}

export function schemaFields(schema, prefix) {
  const required = new Set(schema.required || []);
  return Object.entries(schema.properties || {}).map(([name, prop]) =>
    field(name, prefix, prop, schema, required.has(name)),
  );
}

// Where each error of a 422 body belongs: {params: {name: msg}, options: {...}, other: [...]}
export function placeErrors(body) {
  const out = { params: {}, options: {}, other: [] };
  const details = Array.isArray(body.details) ? body.details : [];
  for (const d of details) {
    const loc = d.loc || [];
    if (body.error === "invalid_params" && loc.length) {
      out.params[loc[0]] = d.msg;
    } else if (loc[0] === "body" && loc[1] === "params" && loc.length > 2) {
      out.params[loc[2]] = d.msg;
    } else if (loc[0] === "body" && loc.length > 1) {
      out.options[loc[1]] = d.msg;
    } else {
      out.other.push(d.msg);
    }
  }
  if (!details.length) out.other.push(body.message || "The server refused this job.");
  return out;
}
