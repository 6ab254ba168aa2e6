// One job: its record, live state and log, and the controls its status and the
// caller's role allow.

import { ApiError, bodyHasField, call, get, post, stream } from "../api.js";
import { confirmDialog } from "../dialog.js";
import { bytes, clear, eta, h, json, notify, shortId, when } from "../dom.js";
import { ACTIONS, TERMINAL, can, legal } from "../status.js";

const LOG_POLL_MS = 1000;
// Workflow fields: shown only when the API returns them.
const RELATIONS = [
  ["parent_id", "Parent"],
  ["parent", "Parent"],
  ["children", "Children"],
  ["child_ids", "Children"],
  ["depends_on", "Depends on"],
  ["dependencies", "Dependencies"],
  ["dependents", "Dependents"],
  ["workflow_id", "Workflow"],
];
const LABELS = { cancel: "Cancel", suspend: "Suspend", resume: "Resume", retry: "Retry", delete: "Delete" };

function section(title, ...content) {
  return h("section.panel", { "aria-label": title }, h("h2", title), ...content);
}

function pre(value) {
  return h("pre", { tabIndex: 0 }, typeof value === "string" ? value : json(value));
}

function jobLink(value) {
  const id = typeof value === "object" && value ? value.id || value.job_id : value;
  if (typeof id !== "string" || !/^[0-9a-f-]{36}$/i.test(id)) return h("code", json(value));
  const link = h("a.mono", { href: `#/jobs/${id}` }, shortId(id));
  // A child listed with its status (GET /jobs/{id} gives children as {id, status}).
  const status = typeof value === "object" && value ? value.status : null;
  return status ? h("span.child", link, " ", h(`span.badge.s-${status}`, status)) : link;
}

// A multi-step job's steps, one row each: what it runs, how it went.
function stepsTable(steps) {
  const outcome = (step) =>
    step.error
      ? h("code.error-text", step.error)
      : step.result !== null && step.result !== undefined
        ? h("code", json(step.result))
        : "";
  return h(
    "table.steps",
    h("thead", h("tr", ["#", "Type", "Status", "Tries", "Progress", "Started", "Finished", "Error or result"].map((t) => h("th", t)))),
    h(
      "tbody",
      steps.map((step, index) =>
        h(
          "tr",
          { dataset: { step: String(index) } },
          h("td", String(index + 1)),
          h("td", h("code", step.type), step.mandatory ? "" : " (optional)"),
          h("td", h(`span.badge.s-${step.status}`, step.status)),
          h("td", `${step.attempts} of ${step.max_retries + 1}`),
          h("td", `${Math.round(step.progress || 0)}%`),
          h("td", when(step.started_at)),
          h("td", when(step.finished_at)),
          h("td", outcome(step)),
        ),
      ),
    ),
  );
}

export function render(main, ctx, id) {
  const role = ctx.session.role;
  const head = h("div.job-head");
  const controls = h("div.controls", { role: "group", "aria-label": "Job controls" });
  const details = h("div.job-body");
  const log = h("ol.log", { "aria-label": "Log records" });
  const logPanel = section("Log", h("div.log-box", { tabIndex: 0 }, log));
  main.append(head, controls, details, logPanel);

  let job = null;
  let jobType = null;
  const aborter = new AbortController();
  let logTimer = null;
  let logCount = -1;
  let stopped = false;

  function drawHead() {
    const active = ["running", "canceling", "suspending"].includes(job.status);
    clear(
      head,
      h("p.crumbs", h("a", { href: "#/jobs" }, "Jobs"), " / ", shortId(job.id)),
      h("h1", `${job.type} `, h(`span.badge.s-${job.status}#job-status`, job.status)),
      h("p.mono.small", job.id),
      active || job.progress
        ? h(
            "div.progress-line",
            h("progress#job-progress", { max: 100, value: job.progress || 0, "aria-label": "progress" }),
            h("span.pct", `${Math.round(job.progress || 0)}%`),
            h("span.eta", active ? eta(job.eta) : ""),
            job.check_in ? h("span.check-in", job.check_in) : null,
          )
        : null,
    );
  }

  function drawControls() {
    if (!can(role, "operator")) {
      clear(controls);
      return;
    }
    clear(
      controls,
      ACTIONS.filter((a) => legal(a, job, jobType)).map((action) =>
        h(
          `button${action === "delete" || action === "cancel" ? ".danger" : ""}`,
          { type: "button", dataset: { action }, on: { click: () => act(action) } },
          LABELS[action],
        ),
      ),
    );
  }

  function dl(pairs) {
    return h(
      "dl.facts",
      pairs.filter(([, v]) => v !== null && v !== undefined && v !== "").map(([k, v]) => [h("dt", k), h("dd", v)]),
    );
  }

  function drawDetails() {
    const parts = [];
    parts.push(
      section(
        "Summary",
        dl([
          ["Queue", job.queue],
          ["Group", job.group],
          ["Priority", String(job.priority)],
          ["Tenant", job.tenant_id],
          ["Enqueued by", job.user_id],
          ["Attempt", `${job.attempt} of ${job.max_retries + 1}`],
          ["Timeout", job.timeout ? `${job.timeout}s` : null],
          ["Created", when(job.created_at)],
          ["Scheduled", when(job.scheduled_at)],
          ["Started", when(job.started_at)],
          ["Finished", when(job.finished_at)],
          ["Worker", job.worker_id],
          ["Idempotency key", job.idempotency_key],
          ["Lock key", job.lock_key],
          ["Waiting for lock held by", job.locked_by ? jobLink(job.locked_by) : null],
          ["Schedule", job.schedule_id ? h("a", { href: `#/jobs?schedule_id=${encodeURIComponent(job.schedule_id)}` }, job.schedule_id) : null],
          ["Last check-in", job.check_in],
        ]),
      ),
    );
    parts.push(section("Params", pre(job.params)));
    if (job.status === "completed" || (job.result !== null && job.result !== undefined)) {
      parts.push(section("Result", pre(job.result)));
    }
    if (job.error) {
      parts.push(
        section("Error", h("p.error-text", job.error), job.traceback ? pre(job.traceback) : null),
      );
    }
    if (job.errors && job.errors.length) {
      parts.push(
        section("Earlier attempts", h("ol", job.errors.map((e) => h("li", h("code", e))))),
      );
    }
    if (job.checkpoint !== null && job.checkpoint !== undefined) {
      const size = new TextEncoder().encode(JSON.stringify(job.checkpoint)).length;
      parts.push(
        section(
          "Checkpoint",
          dl([
            ["Size", bytes(size)],
            ["Version", job.checkpoint_version === null ? null : String(job.checkpoint_version)],
            ["Saved", when(job.checkpoint_at)],
          ]),
          pre(job.checkpoint),
        ),
      );
    }
    if (Array.isArray(job.steps) && job.steps.length) {
      parts.push(section("Steps", stepsTable(job.steps)));
    }
    const relations = RELATIONS.filter(([key]) => {
      const v = job[key];
      return v !== undefined && v !== null && !(Array.isArray(v) && !v.length);
    });
    if (relations.length) {
      parts.push(
        section(
          "Workflow",
          dl(
            relations.map(([key, label]) => [
              label,
              Array.isArray(job[key]) ? h("span.links", job[key].map((v) => [jobLink(v), " "])) : jobLink(job[key]),
            ]),
          ),
        ),
      );
    }
    clear(details, parts);
  }

  function draw() {
    drawHead();
    drawControls();
    drawDetails();
  }

  async function act(action) {
    let body;
    if (action === "cancel" || action === "delete") {
      const withReason = action === "cancel" && (await bodyHasField("POST", "/jobs/{job_id}/cancel", "reason"));
      const reason = await confirmDialog({
        title: `${LABELS[action]} job ${shortId(job.id)}?`,
        text: action === "delete" ? "Its record and log are removed for good." : "A running job stops at its next await.",
        confirm: `${LABELS[action]} job`,
        danger: true,
        reason: withReason,
      });
      if (reason === null) return;
      if (withReason && reason) body = { reason };
    }
    try {
      if (action === "delete") {
        await call("DELETE", `/jobs/${job.id}`);
        notify(`Job ${shortId(job.id)} deleted.`);
        location.hash = "#/jobs";
        return;
      }
      job = await post(`/jobs/${job.id}/${action}`, body);
      notify(`Job ${shortId(job.id)}: ${job.status}.`);
      draw();
      follow();
    } catch (err) {
      notify(err.message, "error");
    }
  }

  async function loadLog() {
    if (stopped) return;
    try {
      const data = await get(`/jobs/${id}/logs`, { limit: 1000 });
      if (data.records.length !== logCount || (job && TERMINAL.has(job.status))) {
        logCount = data.records.length;
        clear(
          log,
          data.records.map((r) =>
            h(
              `li.level-${r.level_name.toLowerCase()}`,
              h("time", when(r.at)),
              h("span.level", r.level_name),
              h("span.message", r.message),
              r.extra ? h("code.extra", JSON.stringify(r.extra)) : null,
            ),
          ),
        );
        if (!data.records.length) log.append(h("li.empty", "No records yet."));
      }
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) notify(err.message, "error");
    }
    if (!stopped && job && !TERMINAL.has(job.status)) logTimer = setTimeout(loadLog, LOG_POLL_MS);
  }

  let following = null;
  function follow() {
    if (following || TERMINAL.has(job.status)) return;
    following = new AbortController();
    const mine = following;
    aborter.signal.addEventListener("abort", () => mine.abort());
    stream(`/jobs/${id}/events`, {
      signal: mine.signal,
      onEvent: (frame) => {
        if (frame.event === "deleted") {
          notify("This job was deleted.");
          mine.abort();
          return;
        }
        const data = frame.data;
        if (frame.event === "snapshot") {
          job = data;
        } else if (frame.event === "child") {
          // A child moved: its status is the child's; read the job (and its children) again.
          refresh();
          return;
        } else {
          const next = { ...job };
          for (const key of ["status", "progress", "progress_details", "eta", "check_in", "attempt"]) {
            if (data[key] !== undefined && data[key] !== null) next[key] = data[key];
          }
          if (data.kind === "check_in" && data.message) next.check_in = data.message;
          job = next;
        }
        if (frame.event === "status" || frame.event === "snapshot" || frame.event === "step") {
          refresh();
        } else {
          drawHead();
        }
        if (TERMINAL.has(job.status)) mine.abort();
      },
    }).finally(() => {
      if (following === mine) following = null;
    });
  }

  let refreshing = null;
  function refresh() {
    // a status change: read the whole record again (result, error, checkpoint)
    if (refreshing) return;
    refreshing = requestAnimationFrame(async () => {
      refreshing = null;
      try {
        job = await get(`/jobs/${id}`);
        draw();
        clearTimeout(logTimer);
        loadLog();
      } catch (err) {
        notify(err.message, "error");
      }
    });
  }

  (async () => {
    try {
      job = await get(`/jobs/${id}`);
    } catch (err) {
      clear(head, h("h1", "Job not found"), h("p", err.message));
      return;
    }
    jobType = await ctx.type(job.type).catch(() => null);
    draw();
    loadLog();
    follow();
  })();

  return () => {
    stopped = true;
    aborter.abort();
    clearTimeout(logTimer);
  };
}
