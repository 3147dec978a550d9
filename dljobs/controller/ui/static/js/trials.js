// A sweep's trials, drawn on its job page (job.js): the progress line, the trials best first by the sweep's
// metric (status, epochs, attempts, parameters) and, per parameter, an SVG chart of the metric against it
// (a log axis for a loguniform parameter, one column per value for choices and grids).
import { ticks, valueGrid } from "./chart.js";
import { formatNumber, h, s, statusBadge } from "./dom.js";

const STATUS_COLORS = {
  succeeded: "#067647", stopped: "#98a2b3", running: "#175cd3", retrying: "#b54708", failed: "#b42318",
  cancelled: "#475467",
};

function shortName(path) {
  return path.split(".").pop();
}

function shown(value) {
  return typeof value === "number" ? formatNumber(value) : JSON.stringify(value);
}

function progressLine(list) {
  const p = list.progress;
  const best = p.best === null || p.best === undefined ? "" : `; best ${list.metric} ${formatNumber(p.best)} (trial ${p.best_trial})`;
  return `${p.done}/${p.trials} trials done, ${p.running} running, ${p.stopped_early} stopped early, ${p.failed} failed${best}`;
}

function table(list, paths) {
  const best = list.progress.best_trial;
  return h(
    "table",
    { class: "trials" },
    h("thead", {}, h("tr", {},
      ["Trial", "Status", list.metric, "Epochs", "Attempts"].map((t) => h("th", {}, t)),
      paths.map((path) => h("th", { title: path }, shortName(path))),
      h("th", {}, "Error"))),
    h("tbody", {}, list.items.map((trial) =>
      h("tr", { "data-trial": trial.number, class: trial.number === best ? "best" : null },
        h("td", { class: "num" }, trial.number),
        h("td", {}, statusBadge(trial.status)),
        h("td", { class: "num metric" }, trial.metric === null ? "–" : formatNumber(trial.metric)),
        h("td", { class: "num" }, trial.epochs),
        h("td", { class: "num" }, trial.attempts),
        paths.map((path) => h("td", { class: "mono" }, path in trial.params ? shown(trial.params[path]) : "–")),
        h("td", { class: "reason" }, trial.error || "")))),
  );
}

// The distinct values of a choice or grid parameter, as labels: in the order the space lists them, then the
// others in natural order.
function categoriesOf(values, distribution) {
  const listed = ((distribution && (distribution.choice || distribution.grid)) || []).map((v) => JSON.stringify(v));
  const seen = new Set(values.map((v) => JSON.stringify(v)));
  const rest = [...seen].filter((v) => !listed.includes(v)).sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  return [...listed.filter((v) => seen.has(v)), ...rest];
}

// Round values (1, 2, 5 times a power of ten) between 10^lo and 10^hi; plain ticks when fewer than two fit.
function logTicks(lo, hi) {
  const out = [];
  for (let d = Math.floor(lo); d <= Math.ceil(hi); d += 1) {
    for (const m of [1, 2, 5]) {
      const v = Number((m * 10 ** d).toPrecision(12));
      if (Math.log10(v) >= lo && Math.log10(v) <= hi) out.push(v);
    }
  }
  return out.length >= 2 ? out : ticks(10 ** lo, 10 ** hi, 3).filter((v) => v > 0);
}

// One parameter's chart: each trial with a metric is a point (x: the parameter, y: the metric).
function parameterChart(list, path, distribution, { width = 360, height = 220 } = {}) {
  const margin = { top: 12, right: 16, bottom: 34, left: 58 };
  const innerW = width - margin.left - margin.right;
  const innerH = height - margin.top - margin.bottom;
  const trials = list.items.filter((t) => t.metric !== null && path in t.params);
  const numeric = trials.every((t) => typeof t.params[path] === "number");
  const log = numeric && distribution && "loguniform" in distribution && trials.every((t) => t.params[path] > 0);
  const categories = numeric ? [] : categoriesOf(trials.map((t) => t.params[path]), distribution);
  const fx = (value) => (log ? Math.log10(value) : value);
  const xs = numeric ? trials.map((t) => fx(t.params[path])) : [0, Math.max(categories.length - 1, 0)];
  const ys = trials.map((t) => t.metric);
  const span = (values) => {  // the values' range with a margin, so that no point sits on an edge
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    const pad = hi > lo ? (hi - lo) * 0.06 : (lo === 0 ? 1 : Math.abs(lo) * 0.05);
    return [lo - pad, hi + pad];
  };
  const [x0, x1] = numeric ? span(xs) : [-0.5, Math.max(categories.length - 1, 0) + 0.5];
  const [y0, y1] = span(ys);
  const sx = (x) => margin.left + ((x - x0) / (x1 - x0)) * innerW;
  const sy = (y) => margin.top + innerH - ((y - y0) / (y1 - y0)) * innerH;
  const title = `${list.metric} vs ${shortName(path)}`;
  const svg = s("svg", {
    class: "chart scatter", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": title,
    "data-param": path,
  });
  const grid = s("g", { class: "grid" });
  valueGrid(grid, [y0, y1], sy, margin, innerW);
  const xTicks = !numeric
    ? categories.map((label, i) => [i, label])
    : log
      ? logTicks(x0, x1).map((v) => [Math.log10(v), formatNumber(v)])
      : ticks(x0, x1, 4).map((t) => [t, formatNumber(t)]);
  for (const [t, label] of xTicks) {
    grid.append(
      s("line", { class: "x", x1: sx(t), x2: sx(t), y1: margin.top + innerH, y2: margin.top + innerH + 4 }),
      s("text", { x: sx(t), y: margin.top + innerH + 16, "text-anchor": "middle" }, label),
    );
  }
  grid.append(s("text", { class: "axis-label", x: margin.left + innerW / 2, y: height - 4, "text-anchor": "middle" },
    `${path}${log ? " (log)" : ""}`));
  svg.append(grid);
  for (const trial of trials) {
    const value = trial.params[path];
    const x = numeric ? sx(fx(value)) : sx(categories.indexOf(JSON.stringify(value)));
    svg.append(s("circle", {
      class: "point", "data-trial": trial.number, cx: x.toFixed(1), cy: sy(trial.metric).toFixed(1), r: 4,
      fill: STATUS_COLORS[trial.status] || "#1f77b4",
    }, s("title", {}, `trial ${trial.number} (${trial.status}): ${shortName(path)} ${shown(value)}, ${list.metric} ${formatNumber(trial.metric)}`)));
  }
  return h("figure", { class: "chart-box" }, h("h3", {}, title), svg);
}

// list: GET /jobs/ID/trials; space: the sweep's `space` from the job's spec (for axis scales and order).
export function trialsView(list, space = {}) {
  const seen = new Set(list.items.flatMap((t) => Object.keys(t.params)));
  const paths = [...Object.keys(space).filter((p) => seen.has(p)), ...[...seen].filter((p) => !(p in space)).sort()];
  const progress = h("p", { class: "progress", id: "trials-progress" }, progressLine(list));
  if (!list.items.length) return [progress, h("p", { class: "muted" }, "No trials yet.")];
  const charted = list.items.some((t) => t.metric !== null);
  return [
    progress,
    charted ? h("div", { class: "charts", id: "trials-charts" }, paths.map((p) => parameterChart(list, p, space[p]))) : null,
    table(list, paths),
  ];
}
