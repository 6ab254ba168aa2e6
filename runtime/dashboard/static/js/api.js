// Talking to the API: the bearer token (kept for this browser session only),
// JSON calls with errors as exceptions, and Server-Sent Events read with
// fetch() so the token travels in a header, never in a URL.

const TOKEN_KEY = "callboard.token";
export const PREFIX = "/api/v1";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

function headers(extra = {}) {
  const h = { Accept: "application/json", ...extra };
  const t = token.get();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

const listeners = { unauthorized: [] };
export function onUnauthorized(fn) {
  listeners.unauthorized.push(fn);
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

export async function call(method, path, body, { signal } = {}) {
  const init = { method, headers: headers(), signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(PREFIX + path, init);
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text };
    }
  }
  if (!response.ok) {
    if (response.status === 401) listeners.unauthorized.forEach((fn) => fn());
    throw new ApiError(response.status, data);
  }
  return data;
}

export const get = (path, params, opts) => call("GET", path + query(params), undefined, opts);
export const post = (path, body, opts) => call("POST", path, body, opts);

// The OpenAPI document, read once: tells which optional inputs this server takes.
let openapi = null;
export async function spec() {
  if (!openapi) {
    const response = await fetch("/openapi.json");
    openapi = response.ok ? await response.json() : { paths: {} };
  }
  return openapi;
}

export async function acceptsBody(method, path) {
  const doc = await spec();
  const op = (doc.paths[PREFIX + path] || {})[method.toLowerCase()];
  return Boolean(op && op.requestBody);
}

// One SSE frame at a time from a fetch() body: {event, data, id}.
async function* frames(response, signal) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    while (!signal.aborted) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
        const frame = { event: "message", data: [], id: null };
        for (const line of block.split(/\r?\n/)) {
          if (!line || line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const name = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (name === "event") frame.event = value;
          else if (name === "data") frame.data.push(value);
          else if (name === "id") frame.id = value;
        }
        if (frame.data.length) {
          try {
            yield { event: frame.event, data: JSON.parse(frame.data.join("\n")), id: frame.id };
          } catch {
            // not JSON: not one of ours
          }
        }
      }
    }
  } finally {
    reader.releaseLock();
  }
}

// Follow an event stream until `signal` aborts, reconnecting with Last-Event-ID.
// onEvent(frame) gets every event; onOpen() runs on each (re)connection.
export async function stream(path, { signal, onEvent, onOpen, onError }) {
  let last = null;
  let delay = 500;
  while (!signal.aborted) {
    try {
      const extra = { Accept: "text/event-stream" };
      if (last) extra["Last-Event-ID"] = last;
      const response = await fetch(PREFIX + path, { headers: headers(extra), signal });
      if (response.status === 401) {
        listeners.unauthorized.forEach((fn) => fn());
        return;
      }
      if (!response.ok) throw new ApiError(response.status, null);
      if (onOpen) onOpen();
      delay = 500;
      for await (const frame of frames(response, signal)) {
        if (frame.id) last = frame.id;
        onEvent(frame);
      }
    } catch (err) {
      if (signal.aborted) return;
      if (onError) onError(err);
    }
    if (signal.aborted) return;
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

// Whether the JSON body of METHOD PATH has a property `field` (e.g. a cancel reason).
export async function bodyHasField(method, path, field) {
  const doc = await spec();
  const op = (doc.paths[PREFIX + path] || {})[method.toLowerCase()];
  let schema = op && op.requestBody && op.requestBody.content["application/json"].schema;
  while (schema && schema.$ref) {
    schema = doc.components.schemas[schema.$ref.split("/").pop()];
  }
  return Boolean(schema && schema.properties && field in schema.properties);
}
