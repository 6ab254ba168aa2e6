// Overview: every queue with its capacity, counts, pause state and recent throughput.

import { get, post } from "../api.js";
import { throughputChart } from "../chart.js";
import { clear, h, notify } from "../dom.js";
import * as live from "../live.js";
import { can } from "../status.js";

const POLL_MS = 2000;
const HISTORY_MINUTES = 5;
const COUNTS = ["running", "waiting", "scheduled", "locked", "suspended"];

export function render(main, ctx) {
  const admin = can(ctx.session.role, "admin");
  const body = h("tbody");
  const note = h("p.hint");
  main.append(
    h("h1", "Overview"),
    h(
      "table.queues",
      h("caption", "Queues"),
      h(
        "thead",
        h(
          "tr",
          h("th", { scope: "col" }, "Queue"),
          h("th.num", { scope: "col" }, "Capacity"),
          COUNTS.map((c) => h("th.num", { scope: "col" }, c[0].toUpperCase() + c.slice(1))),
          h("th.num", { scope: "col" }, "Done/min"),
          h("th.num", { scope: "col" }, "Failed/min"),
          h("th", { scope: "col" }, "Last 5 minutes"),
          h("th", { scope: "col" }, "State"),
        ),
      ),
      body,
    ),
    note,
  );
  let queues = [];
  let history = null; // admins: the server's count of the last minutes, per bucket
  let bucketSeconds = live.bucketSeconds;
  let historyAt = 0;
  let stopped = false;

  function series(name) {
    const h = history && history[name];
    if (!h) return live.throughput(name);
    return h.completed.map((completed, i) => ({ completed, failed: h.failed[i] }));
  }

  const cell = (value) => h("td.num", value === null || value === undefined ? "—" : value);

  async function toggle(queue) {
    const action = queue.paused ? "resume" : "pause";
    try {
      await post(`/queues/${encodeURIComponent(queue.name)}/${action}`);
      notify(`Queue ${queue.name}: ${action}d.`);
      await load();
    } catch (err) {
      notify(err.message, "error");
    }
  }

  function draw() {
    clear(
      body,
      queues.map((q) =>
        h(
          "tr",
          { dataset: { queue: q.name } },
          h("th", { scope: "row" }, h("a", { href: `#/jobs?queue=${encodeURIComponent(q.name)}` }, q.name)),
          cell(q.capacity),
          COUNTS.map((c) => cell(q[c])),
          cell(q.completed_last_minute),
          cell(q.failed_last_minute),
          h("td", throughputChart(series(q.name), { seconds: bucketSeconds })),
          h(
            "td",
            h(`span.badge.${q.paused ? "paused" : "active"}`, q.paused ? "paused" : "active"),
            admin
              ? h(
                  "button.small.secondary",
                  { type: "button", on: { click: () => toggle(q) } },
                  q.paused ? "Resume" : "Pause",
                )
              : null,
          ),
        ),
      ),
    );
    note.textContent = history
      ? `The chart: jobs completed (green, up) and failed (red, down) per ${bucketSeconds} s over the last 5 minutes.`
      : "Counts per queue need an admin token; the chart counts your jobs finished since this page opened.";
  }

  async function load() {
    try {
      // The history costs a scan of the last minutes' finished jobs: once a bucket.
      const fresh = admin && Date.now() - historyAt >= bucketSeconds * 1000;
      const data = await get("/queues", fresh ? { history: HISTORY_MINUTES } : {});
      queues = data.queues;
      if (data.history) {
        history = data.history;
        historyAt = Date.now();
        bucketSeconds = data.bucket_seconds;
      }
      draw();
    } catch (err) {
      notify(err.message, "error");
    }
  }

  let timer = null;
  async function loop() {
    if (stopped) return;
    if (!document.hidden) await load();
    timer = setTimeout(loop, POLL_MS);
  }
  loop();
  const unsubscribe = live.onReset(load);
  return () => {
    stopped = true;
    clearTimeout(timer);
    unsubscribe();
  };
}
