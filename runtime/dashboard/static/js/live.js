// The one live connection: GET /events, read with fetch(). Events are merged per
// job and handed to the views once per animation frame, so a thousand jobs
// reporting progress cost one render per frame, not one per event.

import { stream } from "./api.js";

const BUCKET_SECONDS = 10;
const HISTORY_BUCKETS = 30; // five minutes

let controller = null;
let pending = new Map();
let scheduled = false;
const subscribers = new Set();
const resetters = new Set();
const stateListeners = new Set();
const history = new Map(); // queue -> Map(bucket -> {completed, failed})
export let connected = false;
// Counts for the curious (and the browser tests): events read, frames rendered.
export const stats = { events: 0, frames: 0 };

function setConnected(value) {
  connected = value;
  stateListeners.forEach((fn) => fn(value));
}

function count(event) {
  if (event.kind !== "status") return;
  const failed = event.status === "failed" || event.status === "timeout";
  if (event.status !== "completed" && !failed) return;
  const at = event.at ? new Date(event.at).getTime() : Date.now();
  const bucket = Math.floor(at / 1000 / BUCKET_SECONDS);
  if (!history.has(event.queue)) history.set(event.queue, new Map());
  const buckets = history.get(event.queue);
  const slot = buckets.get(bucket) || { completed: 0, failed: 0 };
  slot[failed ? "failed" : "completed"] += 1;
  buckets.set(bucket, slot);
  for (const key of buckets.keys()) {
    if (key <= bucket - HISTORY_BUCKETS) buckets.delete(key);
  }
}

// Completed and failed counts per BUCKET_SECONDS over the last minutes, oldest first.
export function throughput(queue, now = Date.now()) {
  const last = Math.floor(now / 1000 / BUCKET_SECONDS);
  const buckets = history.get(queue) || new Map();
  const out = [];
  for (let b = last - HISTORY_BUCKETS + 1; b <= last; b++) {
    out.push(buckets.get(b) || { completed: 0, failed: 0 });
  }
  return out;
}
export const bucketSeconds = BUCKET_SECONDS;

function receive(frame) {
  if (frame.event === "reset") {
    resetters.forEach((fn) => fn());
    return;
  }
  const event = frame.data;
  if (!event || !event.job_id) return;
  stats.events += 1;
  count(event);
  const before = pending.get(event.job_id);
  const merged = before ? { ...before } : { job_id: event.job_id };
  for (const [key, value] of Object.entries(event)) {
    if (value !== null && value !== undefined) merged[key] = value;
  }
  if (event.kind === "status") merged.statusChanged = true;
  pending.set(event.job_id, merged);
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(flush);
  }
}

function flush() {
  scheduled = false;
  stats.frames += 1;
  const batch = pending;
  pending = new Map();
  subscribers.forEach((fn) => fn(batch));
}

export function start() {
  if (controller) return;
  controller = new AbortController();
  stream("/events", {
    signal: controller.signal,
    onEvent: receive,
    onOpen: () => {
      setConnected(true);
      resetters.forEach((fn) => fn());
    },
    onError: () => setConnected(false),
  }).finally(() => setConnected(false));
}

export function stop() {
  if (controller) controller.abort();
  controller = null;
}

// fn(Map job_id -> merged event) once per frame with events. Returns an unsubscribe.
export function subscribe(fn) {
  subscribers.add(fn);
  return () => subscribers.delete(fn);
}

// fn() when the stream (re)connects or says events were lost: reload state.
export function onReset(fn) {
  resetters.add(fn);
  return () => resetters.delete(fn);
}

export function onState(fn) {
  stateListeners.add(fn);
  return () => stateListeners.delete(fn);
}
