// Jobs: filters, paging, live status and progress, and bulk actions.

import { bodyHasField, get, post } from "../api.js";
import { confirmDialog } from "../dialog.js";
import { clear, eta, h, notify, shortId, when } from "../dom.js";
import * as live from "../live.js";
import { STATUSES, can } from "../status.js";

const RELOAD_MS = 1000; // a status change reloads the page at most this often
const ACTIVE = new Set(["running", "canceling", "suspending"]);
const FILTERS = ["status", "type", "queue", "group", "tenant", "search", "schedule_id"];
const PAGE_SIZES = [20, 50, 100, 200];

function select(id, label, options, value) {
  return [
    h("label", { htmlFor: id }, label),
    h(
      `select#${id}`,
      { name: id.replace(/^f-/, "") },
      h("option", { value: "" }, "any"),
      options.map((o) => h("option", { value: o, selected: o === value }, o)),
    ),
  ];
}

export function render(main, ctx, params) {
  const role = ctx.session.role;
  const filters = {};
  for (const name of FILTERS) if (params.get(name)) filters[name] = params.get(name);
  const page = Math.max(1, Number(params.get("page")) || 1);
  const pageSize = PAGE_SIZES.includes(Number(params.get("page_size")))
    ? Number(params.get("page_size"))
    : 50;

  const form = h("form.filters", { role: "search", "aria-label": "Job filters" });
  const body = h("tbody");
  const summary = h("p.pager-summary", { "aria-live": "polite" });
  const pager = h("nav.pager", { "aria-label": "Pages" });
  const bulk = h("div.bulk");
  main.append(
    h("h1", "Jobs"),
    form,
    bulk,
    h(
      "table.jobs",
      h("caption.visually-hidden", "Jobs, newest first"),
      h(
        "thead",
        h(
          "tr",
          ["Job", "Type", "Queue", "Status", "Progress", "Last check-in", "Attempt", "Created"].map(
            (t) => h("th", { scope: "col" }, t),
          ),
        ),
      ),
      body,
    ),
    summary,
    pager,
  );

  let rows = new Map();
  let stopped = false;
  let reloadTimer = null;
  let lastLoad = 0;

  function go(changes) {
    const next = new URLSearchParams();
    const merged = { ...filters, page, page_size: pageSize, ...changes };
    for (const [k, v] of Object.entries(merged)) {
      if (v !== "" && v !== null && v !== undefined && !(k === "page" && v === 1)) next.set(k, v);
    }
    if (merged.page_size === 50) next.delete("page_size");
    location.hash = `#/jobs${next.toString() ? "?" + next : ""}`;
  }

  async function buildForm() {
    const types = await ctx.types().catch(() => []);
    const uniq = (key) => [...new Set(types.map((t) => t[key]))].sort();
    let queues = uniq("queue");
    try {
      queues = [...new Set([...queues, ...(await get("/queues")).queues.map((q) => q.name)])].sort();
    } catch {
      // the types' queues will do
    }
    const fields = [
      h("div.field", select("f-status", "Status", STATUSES, filters.status)),
      h("div.field", select("f-type", "Type", uniq("name"), filters.type)),
      h("div.field", select("f-queue", "Queue", queues, filters.queue)),
      h("div.field", select("f-group", "Group", uniq("group"), filters.group)),
    ];
    if (role === "admin") {
      fields.push(
        h(
          "div.field",
          h("label", { htmlFor: "f-tenant" }, "Tenant"),
          h("input#f-tenant", { name: "tenant", value: filters.tenant || "", size: 12 }),
        ),
      );
    }
    fields.push(
      h(
        "div.field",
        h("label", { htmlFor: "f-search" }, "Id or idempotency key"),
        h("input#f-search", { name: "search", type: "search", value: filters.search || "" }),
      ),
      h(
        "div.field",
        h("label", { htmlFor: "f-page-size" }, "Per page"),
        h(
          "select#f-page-size",
          { name: "page_size" },
          PAGE_SIZES.map((n) => h("option", { value: n, selected: n === pageSize }, n)),
        ),
      ),
      h("div.field.actions", h("button", { type: "submit" }, "Filter")),
    );
    clear(form, fields);
    if (filters.schedule_id) {
      form.append(h("p.hint", `Jobs made by schedule ${filters.schedule_id}.`));
    }
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const changes = { page: 1, schedule_id: filters.schedule_id };
      for (const [k, v] of data.entries()) changes[k] = String(v).trim();
      for (const name of FILTERS) if (!(name in changes)) changes[name] = "";
      changes.schedule_id = filters.schedule_id;
      Object.keys(filters).forEach((k) => delete filters[k]);
      go(changes);
    });
    form.addEventListener("change", (event) => {
      if (event.target.tagName === "SELECT") form.requestSubmit();
    });
  }

  function progressCell(job) {
    const active = ACTIVE.has(job.status);
    const pct = Math.round(job.progress || 0);
    const bar = h("progress", {
      max: 100,
      value: job.progress || 0,
      "aria-label": `progress of job ${shortId(job.id)}`,
    });
    const text = h("span.pct", `${pct}%`);
    const etaText = h("span.eta", active ? eta(job.eta) : "");
    const td = h("td.progress", active || pct ? [bar, text, etaText] : "");
    return { td, bar, text, etaText };
  }

  function row(job) {
    const status = h(`span.badge.s-${job.status}`, job.status);
    const progress = progressCell(job);
    const checkIn = h("td.check-in", job.check_in || "");
    const attempt = h("td.num", String(job.attempt));
    const tr = h(
      "tr",
      { dataset: { jobId: job.id, status: job.status } },
      h("td", h("a.mono", { href: `#/jobs/${job.id}`, title: job.id }, shortId(job.id))),
      h("td", job.type),
      h("td", job.queue),
      h("td", status),
      progress.td,
      checkIn,
      attempt,
      h("td", when(job.created_at)),
    );
    return { tr, job: { ...job }, status, progress, checkIn, attempt };
  }

  function update(entry, event) {
    const job = entry.job;
    for (const key of ["status", "progress", "eta", "check_in", "attempt"]) {
      if (event[key] !== undefined && event[key] !== null) job[key] = event[key];
    }
    if (event.kind === "check_in" && event.message) job.check_in = event.message;
    if (entry.status.textContent !== job.status) {
      entry.status.textContent = job.status;
      entry.status.className = `badge s-${job.status}`;
      entry.tr.dataset.status = job.status;
    }
    if (!entry.progress.td.firstChild) {
      if (ACTIVE.has(job.status) || job.progress) {
        const fresh = progressCell(job);
        entry.progress.td.replaceWith(fresh.td);
        entry.progress = fresh;
      }
    } else {
      entry.progress.bar.value = job.progress || 0;
      entry.progress.text.textContent = `${Math.round(job.progress || 0)}%`;
      entry.progress.etaText.textContent = ACTIVE.has(job.status) ? eta(job.eta) : "";
    }
    if (entry.checkIn.textContent !== (job.check_in || "")) entry.checkIn.textContent = job.check_in || "";
    entry.attempt.textContent = String(job.attempt);
  }

  function matches(event) {
    if (filters.status && !filters.status.split(",").includes(event.status)) return false;
    for (const key of ["type", "queue", "group", "schedule_id"]) {
      if (filters[key] && event[key] !== filters[key]) return false;
    }
    if (filters.tenant && event.tenant_id !== filters.tenant) return false;
    return true;
  }

  function scheduleReload() {
    if (reloadTimer) return;
    const wait = Math.max(0, RELOAD_MS - (Date.now() - lastLoad));
    reloadTimer = setTimeout(() => {
      reloadTimer = null;
      load();
    }, wait);
  }

  function onBatch(batch) {
    let reload = false;
    for (const [id, event] of batch) {
      const entry = rows.get(id);
      if (entry) {
        update(entry, event);
        if (event.statusChanged && (filters.status || page === 1)) reload = true;
      } else if (event.statusChanged && page === 1 && matches(event)) {
        reload = true;
      }
    }
    if (reload) scheduleReload();
  }

  async function load() {
    lastLoad = Date.now();
    let data;
    try {
      data = await get("/jobs", { ...filters, page, page_size: pageSize });
    } catch (err) {
      notify(err.message, "error");
      return;
    }
    if (stopped) return;
    rows = new Map(data.jobs.map((job) => [job.id, row(job)]));
    clear(body, [...rows.values()].map((e) => e.tr));
    if (!data.jobs.length) {
      body.append(h("tr", h("td.empty", { colSpan: 8 }, "No jobs match.")));
    }
    const pages = Math.max(1, Math.ceil(data.total / pageSize));
    summary.textContent = `${data.total} job${data.total === 1 ? "" : "s"}; page ${page} of ${pages}`;
    clear(
      pager,
      h("button.secondary", { type: "button", disabled: page <= 1, on: { click: () => go({ page: page - 1 }) } }, "Previous"),
      h("button.secondary", { type: "button", disabled: page >= pages, on: { click: () => go({ page: page + 1 }) } }, "Next"),
    );
  }

  function describe() {
    const parts = Object.entries(filters).map(([k, v]) => `${k}=${v}`);
    return parts.join(", ");
  }

  async function runBulk(action) {
    const base = { ...filters };
    try {
      const counted = await post(`/jobs/bulk/${action}`, { ...base, dry_run: true });
      if (!counted.matched) {
        notify("No jobs match these filters.");
        return;
      }
      const more = counted.remaining ? ` (the newest ${counted.selected} of ${counted.matched})` : "";
      const withReason = action === "cancel" && (await bodyHasField("POST", "/jobs/bulk/cancel", "reason"));
      const reason = await confirmDialog({
        title: `${action[0].toUpperCase()}${action.slice(1)} ${counted.selected} jobs?`,
        text: `This will ${action} every job matching ${describe()}${more}. Jobs whose status does not allow it are skipped.`,
        confirm: `${action[0].toUpperCase()}${action.slice(1)} ${counted.selected} jobs`,
        danger: action !== "retry",
        reason: withReason,
      });
      if (reason === null) return;
      const request = { ...base, limit: counted.selected };
      if (withReason && reason) request.reason = reason;
      const done = await post(`/jobs/bulk/${action}`, request);
      const why = Object.entries(done.skipped_by_status)
        .map(([s, n]) => `${s}: ${n}`)
        .join(", ");
      notify(
        `${action}: ${done.changed} changed, ${done.skipped} skipped${why ? ` (${why})` : ""}.`,
      );
      await load();
    } catch (err) {
      notify(err.message, "error");
    }
  }

  if (can(role, "operator")) {
    const hasFilter = Object.keys(filters).length > 0;
    clear(
      bulk,
      h("span.bulk-label", "All matching jobs:"),
      ["retry", "cancel", "delete"].map((action) =>
        h(
          `button.small${action === "retry" ? "" : ".secondary"}`,
          {
            type: "button",
            disabled: !hasFilter,
            dataset: { bulk: action },
            on: { click: () => runBulk(action) },
          },
          `${action[0].toUpperCase()}${action.slice(1)} all…`,
        ),
      ),
      hasFilter ? null : h("span.hint", "Choose a filter first."),
    );
  }

  buildForm();
  load();
  const unsubscribe = live.subscribe(onBatch);
  const unreset = live.onReset(load);
  const ticker = setInterval(() => {
    for (const entry of rows.values()) {
      if (ACTIVE.has(entry.job.status) && entry.progress.etaText) {
        entry.progress.etaText.textContent = eta(entry.job.eta);
      }
    }
  }, 1000);
  return () => {
    stopped = true;
    clearTimeout(reloadTimer);
    clearInterval(ticker);
    unsubscribe();
    unreset();
  };
}
