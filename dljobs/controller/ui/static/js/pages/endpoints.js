// #/endpoints: each endpoint's status, the versions it serves and their share of traffic (stable and
// canary), and what each version measured over the last 5 minutes: requests, errors, p50/p99 latency,
// the distribution of predicted classes (small SVG bars) and input drift (PSI). Refreshed every 3 s.
import { encodePath, get } from "../api.js";
import { color } from "../chart.js";
import { errorBox, formatNumber, formatTime, h, poll, refreshInto, replace, s } from "../dom.js";

const REFRESH_MS = 3000;
const MAX_CLASSES = 10;
// PSI below 0.1: stable; above 0.25: the inputs have moved (docs/serving.md).
const PSI_WATCH = 0.1;
const PSI_ALERT = 0.25;

function endpointBadge(status) {
  return h("span", { class: `status endpoint-${String(status).toLowerCase()}` }, status);
}

// Each served version with its role and share of traffic, in percent.
export function trafficSplit(endpoint) {
  const out = [];
  const canaryShare = endpoint.canary_percent || 0;
  if (endpoint.stable) {
    out.push({ role: "stable", ...endpoint.stable, share: endpoint.canary && canaryShare > 0 ? 100 - canaryShare : 100 });
  }
  if (endpoint.canary) {
    // without a share the new version takes all traffic once it runs (a switch, or the first version)
    const pending = !(canaryShare > 0);
    out.push({ role: "canary", ...endpoint.canary, share: pending ? (endpoint.stable ? 0 : 100) : canaryShare, pending });
  }
  return out;
}

function splitBar(split) {
  const width = 320;
  const height = 14;
  const svg = s("svg", { class: "split", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": "traffic split" });
  let x = 0;
  split.forEach((part, index) => {
    const w = (part.share / 100) * width;
    if (w > 0) {
      svg.append(s("rect", { x, y: 0, width: w, height, fill: color(index) }, s("title", {}, `${part.role}: ${formatNumber(part.share)}%`)));
    }
    x += w;
  });
  return svg;
}

// Class shares as horizontal bars, largest first (at most MAX_CLASSES, the rest summed as "other").
export function classBars(predictions) {
  const entries = Object.entries(predictions || {}).filter(([, v]) => Number.isFinite(v)).sort((a, b) => b[1] - a[1]);
  if (!entries.length) return h("span", { class: "muted" }, "none yet");
  const shown = entries.slice(0, MAX_CLASSES);
  const rest = entries.slice(MAX_CLASSES).reduce((sum, [, v]) => sum + v, 0);
  if (rest > 0) shown.push(["other", rest]);
  const row = 13;
  const label = 70;
  const bar = 110;
  const width = label + bar + 44;
  const svg = s("svg", { class: "classes", viewBox: `0 0 ${width} ${row * shown.length}`, width, height: row * shown.length, role: "img", "aria-label": "predicted classes" });
  shown.forEach(([name, share], i) => {
    const y = i * row;
    const text = name.length > 10 ? `${name.slice(0, 9)}…` : name;
    svg.append(
      s("text", { x: label - 4, y: y + 10, "text-anchor": "end", class: "class-name" }, text, s("title", {}, name)),
      s("rect", { x: label, y: y + 2, width: Math.max(share * bar, 1), height: row - 4, fill: color(0) }),
      s("text", { x: label + Math.max(share * bar, 1) + 4, y: y + 10, class: "class-share" }, `${Math.round(share * 100)}%`),
    );
  });
  return svg;
}

function ms(value) {
  if (value === null || value === undefined) return "";
  // latency is kept as a histogram: a percentile is the upper bound of its bucket
  return Number.isFinite(value) ? `≤ ${formatNumber(value)} ms` : "> 30 s";
}

function driftCell(stats) {
  const max = stats.drift_psi_max;
  if (max === null || max === undefined) return h("td", { class: "muted drift" }, "n/a");
  const level = max > PSI_ALERT ? "drift-alert" : max > PSI_WATCH ? "drift-watch" : "drift-ok";
  const worst = Object.entries(stats.drift_psi || {}).sort((a, b) => b[1] - a[1])[0];
  return h(
    "td",
    { class: `num drift ${level}`, title: Object.entries(stats.drift_psi || {}).map(([k, v]) => `${k}: ${v}`).join("\n") },
    formatNumber(max),
    worst ? h("span", { class: "muted" }, ` (${worst[0]})`) : null,
  );
}

function statsRow(stats, role) {
  return h(
    "tr",
    { dataset: { version: stats.version ?? "" } },
    h("td", {}, stats.version === null || stats.version === undefined ? "?" : `v${stats.version}`, role ? h("span", { class: "muted" }, ` ${role}`) : null),
    h("td", { class: "num requests" }, String(stats.requests)),
    h("td", { class: `num errors${stats.errors ? " error" : ""}` }, `${stats.errors} (${Number((stats.error_rate * 100).toFixed(2))}%)`),
    h("td", { class: "num" }, String(stats.rejected)),
    h("td", { class: "num p50" }, ms(stats.latency_ms.p50)),
    h("td", { class: "num p99" }, ms(stats.latency_ms.p99)),
    h("td", { class: "predictions" }, classBars(stats.predictions)),
    driftCell(stats),
  );
}

function endpointPanel(endpoint, stats, statsError) {
  const split = trafficSplit(endpoint);
  const roles = new Map(split.map((part) => [part.version, part.role]));
  const figures = stats ? stats.versions : [];
  return h(
    "section",
    { class: "panel endpoint", dataset: { endpoint: endpoint.name } },
    h("div", { class: "title-row" },
      h("h2", { class: "endpoint-name" }, endpoint.name),
      endpointBadge(endpoint.status),
      h("span", { class: "muted" }, `project ${endpoint.project} · updated ${formatTime(endpoint.updated_at)}`)),
    endpoint.status_reason ? h("p", { class: "reason" }, endpoint.status_reason) : null,
    h("div", { class: "traffic" },
      split.length ? splitBar(split) : null,
      h("ul", { class: "legend split-legend" },
        split.map((part, index) =>
          h("li", { dataset: { role: part.role } },
            h("span", { class: "swatch", dataset: { index } }),
            `${part.role} ${part.model}:${part.version} `,
            h("strong", {}, `${formatNumber(part.share)}%`),
            part.pending ? h("span", { class: "muted" }, " (all traffic once ready)") : null,
            part.role === "canary" && !part.pending ? h("span", { class: "muted" }, endpoint.canary_ready ? " (running)" : " (starting)") : null),
        ),
      ),
    ),
    h("h3", {}, `Last ${stats ? Math.round(stats.window_s / 60) : 5} minutes`),
    statsError ? errorBox(statsError) : null,
    h(
      "table",
      { class: "figures" },
      h("thead", {}, h("tr", {}, ["Version", "Requests", "Errors", "Rejected", "p50", "p99", "Predicted classes", "Drift (PSI max)"].map((t) => h("th", {}, t)))),
      h("tbody", {}, figures.length
        ? figures.map((one) => statsRow(one, roles.get(one.version)))
        : h("tr", {}, h("td", { colspan: 8, class: "muted empty" }, "No requests in this window."))),
    ),
  );
}

export default {
  path: /^\/endpoints$/,
  title: "endpoints",
  nav: { label: "Endpoints", href: "#/endpoints" },
  render(main) {
    const list = h("div", { id: "endpoints" });
    const updated = h("span", { class: "muted updated", id: "updated" });
    const problem = h("div");
    main.append(h("div", { class: "title-row" }, h("h1", {}, "Endpoints"), updated), problem, list);

    const load = () =>
      refreshInto(updated, problem, async () => {
        const endpoints = await get("/endpoints");
        const panels = await Promise.all(
          endpoints.map(async (endpoint) => {
            try {
              return endpointPanel(endpoint, await get(`/endpoints/${encodePath(endpoint.name)}/stats`), null);
            } catch (error) {
              if (error.status === 401) throw error;
              return endpointPanel(endpoint, null, error);
            }
          }),
        );
        replace(list, panels.length ? panels : h("p", { class: "muted empty" }, "No endpoints."));
      });
    return poll(load, REFRESH_MS);
  },
};
