// The dashboard: login, the session, the router and the header.

import { ApiError, get, onUnauthorized, token } from "./api.js";
import { clear, h } from "./dom.js";
import * as live from "./live.js";
import * as enqueue from "./views/enqueue.js";
import * as job from "./views/job.js";
import * as jobs from "./views/jobs.js";
import * as overview from "./views/overview.js";
import * as schedules from "./views/schedules.js";

const main = document.getElementById("main");
let session = null;
let cleanup = null;
let typesCache = null;

const ctx = {
  get session() {
    return session;
  },
  async types() {
    if (!typesCache) typesCache = (await get("/job-types")).types;
    return typesCache;
  },
  async type(name) {
    return (await ctx.types()).find((t) => t.name === name);
  },
};

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = raw.split("?");
  return { path, params: new URLSearchParams(search) };
}

function route() {
  if (!session) return;
  if (cleanup) cleanup();
  cleanup = null;
  const { path, params } = parseHash();
  let view = overview;
  let arg = params;
  let section = "#/";
  const jobMatch = path.match(/^\/jobs\/([0-9a-f-]{36})$/i);
  if (jobMatch) {
    view = job;
    arg = jobMatch[1];
    section = "#/jobs";
  } else if (path === "/jobs") {
    view = jobs;
    section = "#/jobs";
  } else if (path === "/schedules") {
    view = schedules;
    section = "#/schedules";
  } else if (path === "/enqueue") {
    view = enqueue;
    section = "#/enqueue";
  }
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.getAttribute("href") === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  clear(main);
  cleanup = view.render(main, ctx, arg) || null;
}

function showLogin(message) {
  session = null;
  live.stop();
  if (cleanup) cleanup();
  cleanup = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("logout").hidden = true;
  clear(document.getElementById("who"));
  const input = h("input#token", {
    type: "password",
    name: "token",
    autocomplete: "off",
    required: true,
    "aria-describedby": "login-error",
  });
  const error = h("p#login-error.field-error", { role: "alert" }, message || "");
  const form = h(
    "form.login",
    {
      on: {
        submit: async (event) => {
          event.preventDefault();
          token.set(input.value.trim());
          await boot("That token was not accepted.");
        },
      },
    },
    h("h1", "Sign in"),
    h("p", "This server needs an API token. It is kept for this browser session only."),
    h("label", { htmlFor: "token" }, "API token"),
    input,
    error,
    h("button", { type: "submit" }, "Sign in"),
  );
  clear(main, form);
  input.focus();
}

async function boot(failure) {
  try {
    const who = await get("/whoami");
    session = who;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      const had = token.get();
      token.clear();
      showLogin(had ? failure || "Your token is no longer accepted." : "");
      return;
    }
    clear(main, h("p.field-error", { role: "alert" }, `Cannot reach the API: ${err.message}`));
    return;
  }
  document.getElementById("nav").hidden = false;
  const logout = document.getElementById("logout");
  logout.hidden = !session.auth;
  const tenant = session.tenant_id ? ` @ ${session.tenant_id}` : "";
  clear(document.getElementById("who"), `${session.name}${tenant} (${session.role})`);
  live.start();
  route();
  main.focus();
}

onUnauthorized(() => {
  if (session) {
    token.clear();
    showLogin("Your token is no longer accepted.");
  }
});

live.onState((up) => {
  const el = document.getElementById("live-state");
  el.textContent = up ? "live" : "reconnecting";
  el.classList.toggle("down", !up);
});

document.getElementById("logout").addEventListener("click", () => {
  token.clear();
  showLogin();
});

window.addEventListener("hashchange", () => {
  route();
  main.focus();
});

window.callboard = { stats: live.stats };
boot();
