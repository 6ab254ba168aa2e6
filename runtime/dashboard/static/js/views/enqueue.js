// Enqueue: pick a job type, fill in the form made from its params schema, send.

import { ApiError, post } from "../api.js";
import { clear, h, notify, shortId } from "../dom.js";
import { field, placeErrors, schemaFields } from "../form.js";
import { can } from "../status.js";

const OPTIONS = {
  properties: {
    queue: { type: "string", title: "Queue", description: "default: the type's queue" },
    priority: { type: "integer", title: "Priority", description: "higher runs first" },
    delay: { type: "number", title: "Delay (seconds)", minimum: 0 },
    idempotency_key: { type: "string", title: "Idempotency key" },
    max_retries: { type: "integer", title: "Max retries", minimum: 0 },
    timeout: { type: "number", title: "Timeout (seconds)" },
  },
};

export function render(main, ctx, params) {
  main.append(h("h1", "Enqueue a job"));
  if (!can(ctx.session.role, "operator")) {
    main.append(h("p", "Enqueueing needs an operator or admin token."));
    return null;
  }
  const holder = h("div");
  main.append(holder);

  (async () => {
    const types = await ctx.types();
    // callboard.* types are the runtime's own (hook deliveries): not a default pick
    const first = types.find((t) => !t.name.startsWith("callboard.")) || types[0];
    const chosen = params.get("type") || (first && first.name) || "";
    const picker = h(
      "select#enqueue-type",
      { name: "type" },
      types.map((t) => h("option", { value: t.name, selected: t.name === chosen }, t.name)),
    );
    picker.addEventListener("change", () => {
      location.hash = `#/enqueue?type=${encodeURIComponent(picker.value)}`;
    });
    const type = types.find((t) => t.name === chosen);
    if (!type) {
      clear(holder, h("p", "No job types are registered."));
      return;
    }
    const paramFields = schemaFields(type.params_schema || {}, "param");
    const optionFields = Object.entries(OPTIONS.properties).map(([name, prop]) =>
      field(name, "option", prop, OPTIONS, false),
    );
    const formError = h("div.form-error", { role: "alert" });
    const form = h(
      "form.enqueue",
      { noValidate: true, "aria-describedby": "enqueue-type-description" },
      h("div.field", h("label", { htmlFor: "enqueue-type" }, "Job type"), picker),
      h("p.hint#enqueue-type-description", type.description || ""),
      h(
        "fieldset",
        h("legend", "Params"),
        paramFields.length ? paramFields.map((f) => f.wrapper) : h("p.hint", "This type takes no params."),
      ),
      h(
        "details",
        h("summary", "Options"),
        h("fieldset", h("legend.visually-hidden", "Options"), optionFields.map((f) => f.wrapper)),
      ),
      formError,
      h("button", { type: "submit" }, "Enqueue"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      [...paramFields, ...optionFields].forEach((f) => f.setError(""));
      clear(formError);
      const body = { type: type.name, params: {} };
      for (const f of paramFields) {
        const value = f.read();
        if (value !== undefined) body.params[f.name] = value;
      }
      for (const f of optionFields) {
        const value = f.read();
        if (value !== undefined) body[f.name] = value;
      }
      try {
        const job = await post("/jobs", body);
        notify(`Enqueued job ${shortId(job.id)} (${job.status}).`);
        location.hash = `#/jobs/${job.id}`;
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 422) {
          clear(formError, h("p.field-error", err.message));
          return;
        }
        const placed = placeErrors(err.body);
        let first = null;
        for (const f of paramFields) {
          if (placed.params[f.name]) {
            f.setError(placed.params[f.name]);
            first = first || f.input;
          }
        }
        for (const f of optionFields) {
          if (placed.options[f.name]) {
            f.setError(placed.options[f.name]);
            form.querySelector("details").open = true;
            first = first || f.input;
          }
        }
        const unplaced = [
          ...placed.other,
          ...Object.entries(placed.params)
            .filter(([k]) => !paramFields.some((f) => f.name === k))
            .map(([k, v]) => `${k}: ${v}`),
        ];
        if (unplaced.length) clear(formError, unplaced.map((m) => h("p.field-error", m)));
        if (first) first.focus();
      }
    });
    clear(holder, form);
  })().catch((err) => notify(err.message, "error"));
  return null;
}
