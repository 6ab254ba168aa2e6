// A small bar chart of completed (up) and failed (down) jobs per bucket, as SVG.

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

export function throughputChart(series, { width = 240, height = 48, seconds = 10 } = {}) {
  const done = series.reduce((n, s) => n + s.completed, 0);
  const failed = series.reduce((n, s) => n + s.failed, 0);
  const minutes = Math.round((series.length * seconds) / 60);
  const root = svg("svg", {
    class: "chart",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": `last ${minutes} minutes: ${done} completed, ${failed} failed`,
  });
  const top = Math.max(1, ...series.map((s) => Math.max(s.completed, s.failed)));
  const mid = height * 0.62;
  const step = width / series.length;
  root.append(svg("line", { x1: 0, x2: width, y1: mid, y2: mid, class: "axis" }));
  series.forEach((s, i) => {
    const x = i * step + 1;
    const w = Math.max(1, step - 2);
    if (s.completed) {
      const hgt = Math.max(1, (s.completed / top) * (mid - 2));
      root.append(svg("rect", { x, y: mid - hgt, width: w, height: hgt, class: "ok" }));
    }
    if (s.failed) {
      const hgt = Math.max(1, (s.failed / top) * (height - mid - 2));
      root.append(svg("rect", { x, y: mid + 1, width: w, height: hgt, class: "bad" }));
    }
  });
  return root;
}
