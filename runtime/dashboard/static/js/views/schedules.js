// Schedules: next and last fire times, pause / resume / trigger, and their jobs.

import { get, post } from "../api.js";
import { ago, clear, duration, h, notify, shortId, when } from "../dom.js";
import * as live from "../live.js";
import { can } from "../status.js";

const POLL_MS = 5000;

// pydantic writes a timedelta as an ISO 8601 duration: P1DT2H30M, PT10S, PT0.5S.
function isoSeconds(text) {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?$/.exec(text || "");
  if (!m) return null;
  const [, d = 0, hr = 0, min = 0, sec = 0] = m;
  return Number(d) * 86400 + Number(hr) * 3600 + Number(min) * 60 + Number(sec);
}

function describe(trigger) {
  if (!trigger) return "";
  if (trigger.kind === "interval") {
    if (trigger.every === null) return "continuously";
    const seconds = typeof trigger.every === "number" ? trigger.every : isoSeconds(trigger.every);
    return seconds === null ? `every ${trigger.every}` : `every ${duration(seconds)}`;
  }
  if (trigger.kind === "cron") return `cron ${trigger.expression}`;
  if (trigger.kind === "date") return `once, ${when(trigger.at)}`;
  return trigger.kind;
}

export function render(main, ctx) {
  const admin = can(ctx.session.role, "admin");
  const body = h("tbody");
  main.append(
    h("h1", "Schedules"),
    h(
      "table.schedules",
      h("caption.visually-hidden", "Schedules"),
      h(
        "thead",
        h(
          "tr",
          ["Name", "Job type", "When", "Next fire", "Last fire", "Last job", "State", "Jobs made", ""].map((t) =>
            h("th", { scope: "col" }, t),
          ),
        ),
      ),
      body,
    ),
  );
  let stopped = false;
  let timer = null;

  async function act(schedule, action) {
    try {
      const key = encodeURIComponent(schedule.id);
      const result = await post(`/schedules/${key}/${action}`);
      if (action === "trigger") {
        notify(`Schedule ${schedule.name} made job ${shortId(result.id)}.`);
      } else {
        notify(`Schedule ${schedule.name}: ${action}d.`);
      }
      await load();
    } catch (err) {
      notify(err.message, "error");
    }
  }

  async function load() {
    let data;
    try {
      data = await get("/schedules", { page_size: 200 });
    } catch (err) {
      notify(err.message, "error");
      return;
    }
    if (stopped) return;
    clear(
      body,
      data.schedules.map((s) =>
        h(
          "tr",
          { dataset: { schedule: s.name } },
          h("th", { scope: "row" }, s.name),
          h("td", s.job_type),
          h("td", describe(s.trigger), s.tz && s.tz !== "UTC" ? ` (${s.tz})` : ""),
          h("td", s.next_fire_at ? h("time", { title: when(s.next_fire_at) }, ago(s.next_fire_at)) : "—"),
          h("td", s.last_fire_at ? h("time", { title: when(s.last_fire_at) }, ago(s.last_fire_at)) : "—"),
          h("td", s.last_job_id ? h("a.mono", { href: `#/jobs/${s.last_job_id}` }, shortId(s.last_job_id)) : "—"),
          h("td", h(`span.badge.${s.paused ? "paused" : "active"}`, s.paused ? "paused" : "active")),
          h("td", h("a", { href: `#/jobs?schedule_id=${encodeURIComponent(s.id)}` }, "Jobs")),
          h(
            "td.row-actions",
            admin
              ? [
                  h("button.small.secondary", { type: "button", on: { click: () => act(s, s.paused ? "resume" : "pause") } }, s.paused ? "Resume" : "Pause"),
                  h("button.small", { type: "button", on: { click: () => act(s, "trigger") } }, "Trigger now"),
                ]
              : null,
          ),
        ),
      ),
    );
    if (!data.schedules.length) body.append(h("tr", h("td.empty", { colSpan: 9 }, "No schedules.")));
  }

  async function loop() {
    if (stopped) return;
    if (!document.hidden) await load();
    timer = setTimeout(loop, POLL_MS);
  }
  loop();
  const unreset = live.onReset(load);
  return () => {
    stopped = true;
    clearTimeout(timer);
    unreset();
  };
}
