// Small helpers: building elements, formatting times and numbers.

// h("tag.class#id", {attrs, on: {click}}, ...children)
export function h(spec, attrs, ...children) {
  const [, tag = "div", rest = ""] = spec.match(/^([a-z0-9-]*)(.*)$/i);
  const el = document.createElement(tag || "div");
  for (const part of rest.match(/[.#][^.#]+/g) || []) {
    if (part[0] === ".") el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  const plain = attrs !== null && typeof attrs === "object" && !(attrs instanceof Node);
  if (attrs !== undefined && attrs !== null && (!plain || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "on") {
      for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key in el && !key.includes("-") && key !== "list" && key !== "form") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : value);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { hour12: false });
}

export function ago(iso, now = Date.now()) {
  if (!iso) return "";
  const s = Math.round((now - new Date(iso).getTime()) / 1000);
  return s >= 0 ? `${duration(s)} ago` : `in ${duration(-s)}`;
}

export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function eta(iso, now = Date.now()) {
  if (!iso) return "";
  const s = (new Date(iso).getTime() - now) / 1000;
  return s > 0 ? `ETA ${duration(s)}` : "ETA now";
}

// Ids are time-ordered (UUIDv7): jobs made together share their first digits,
// so the short form is the last, random ones (the search box finds it).
export const shortId = (id) => String(id).slice(-8);

export function json(value) {
  return JSON.stringify(value, null, 2);
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

// A message in the page's live region (announced by screen readers).
export function notify(text, kind = "info") {
  const region = document.getElementById("notice");
  if (!region) return;
  clear(region, h(`p.notice.${kind}`, text));
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => region.replaceChildren(), 8000);
}
