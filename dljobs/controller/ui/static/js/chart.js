// Small SVG charts, drawn here (no chart library): a line chart of metric series against steps.
import { formatNumber, h, s } from "./dom.js";

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

export function color(index) {
  return PALETTE[index % PALETTE.length];
}

// About `count` round tick values covering [lo, hi].
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((m) => m >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

// Horizontal lines across the plot area at the value axis' ticks, each labelled on the left.
export function valueGrid(grid, [y0, y1], sy, margin, innerW) {
  for (const t of ticks(y0, y1)) {
    grid.append(
      s("line", { x1: margin.left, x2: margin.left + innerW, y1: sy(t), y2: sy(t) }),
      s("text", { x: margin.left - 6, y: sy(t) + 4, "text-anchor": "end" }, formatNumber(t)),
    );
  }
}

function extent(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.05;
    return [lo - pad, hi + pad];
  }
  return [lo, hi];
}

// series: [{name, points: [{x, y}]}]; returns a <figure> with the SVG, a legend and a hover read-out.
export function lineChart(series, { title = "", xLabel = "step", width = 460, height = 220 } = {}) {
  const margin = { top: 12, right: 16, bottom: 34, left: 58 };
  const innerW = width - margin.left - margin.right;
  const innerH = height - margin.top - margin.bottom;
  const all = series.flatMap((one) => one.points);
  const [x0, x1] = extent(all.map((p) => p.x));
  const [y0, y1] = extent(all.map((p) => p.y));
  const sx = (x) => margin.left + ((x - x0) / (x1 - x0)) * innerW;
  const sy = (y) => margin.top + innerH - ((y - y0) / (y1 - y0)) * innerH;

  const svg = s("svg", {
    class: "chart",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": title,
  });
  const grid = s("g", { class: "grid" });
  valueGrid(grid, [y0, y1], sy, margin, innerW);
  for (const t of ticks(x0, x1, 6)) {
    if (all.length && !Number.isInteger(t) && x1 - x0 > 6) continue;
    grid.append(
      s("line", { class: "x", x1: sx(t), x2: sx(t), y1: margin.top + innerH, y2: margin.top + innerH + 4 }),
      s("text", { x: sx(t), y: margin.top + innerH + 16, "text-anchor": "middle" }, formatNumber(t)),
    );
  }
  grid.append(
    s("text", { class: "axis-label", x: margin.left + innerW / 2, y: height - 4, "text-anchor": "middle" }, xLabel),
  );
  svg.append(grid);
  series.forEach((one, index) => {
    const points = [...one.points].sort((a, b) => a.x - b.x);
    const d = points.map((p, i) => `${i ? "L" : "M"}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join("");
    svg.append(s("path", { class: "line", d, stroke: color(index), fill: "none" }));
    if (points.length === 1 || points.length <= 30) {
      for (const p of points) svg.append(s("circle", { cx: sx(p.x), cy: sy(p.y), r: 2.5, fill: color(index) }));
    }
  });

  // hover: the nearest step's values
  const cursor = s("line", { class: "cursor", y1: margin.top, y2: margin.top + innerH, visibility: "hidden" });
  const readout = h("figcaption", { class: "readout" }, "\u00a0");
  svg.append(cursor);
  svg.addEventListener("mousemove", (event) => {
    const box = svg.getBoundingClientRect();
    const x = x0 + (((event.clientX - box.left) * (width / box.width) - margin.left) / innerW) * (x1 - x0);
    const parts = [];
    let nearestX = null;
    for (const one of series) {
      let best = null;
      for (const p of one.points) if (!best || Math.abs(p.x - x) < Math.abs(best.x - x)) best = p;
      if (best) {
        parts.push(`${one.name} ${formatNumber(best.y)}`);
        nearestX = best.x;
      }
    }
    if (nearestX === null) return;
    cursor.setAttribute("x1", sx(nearestX));
    cursor.setAttribute("x2", sx(nearestX));
    cursor.setAttribute("visibility", "visible");
    readout.textContent = `${xLabel} ${formatNumber(nearestX)}: ${parts.join(", ")}`;
  });
  svg.addEventListener("mouseleave", () => cursor.setAttribute("visibility", "hidden"));

  const legend = h(
    "ul",
    { class: "legend" },
    series.map((one, index) => {
      const last = one.points.length ? one.points[one.points.length - 1].y : NaN;
      return h("li", {}, s("svg", { width: 10, height: 10 }, s("rect", { width: 10, height: 10, fill: color(index) })),
        ` ${one.name} `, h("span", { class: "muted" }, formatNumber(last)));
    }),
  );
  return h("figure", { class: "chart-box" }, title ? h("h3", {}, title) : null, svg, legend, readout);
}
