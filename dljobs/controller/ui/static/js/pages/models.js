// #/models: the registry's models (those of the token's projects), each with its versions: stage, the job
// that trained it, its key metrics and when it was registered. Refreshed every 10 s.
import { encodePath, get, query as toQuery } from "../api.js";
import { formatNumber, formatTime, h, poll, refreshInto, replace } from "../dom.js";

const REFRESH_MS = 10000;
const MAX_METRICS = 4;
// Metrics worth a glance first; the rest follow in name order, up to MAX_METRICS.
const PREFERRED = ["test_accuracy", "val_accuracy", "accuracy", "val_loss", "test_loss", "loss"];

export function keyMetrics(metrics) {
  const numbers = Object.entries(metrics || {}).filter(([, v]) => typeof v === "number" && Number.isFinite(v));
  const rank = ([name]) => {
    const i = PREFERRED.indexOf(name);
    return i < 0 ? PREFERRED.length : i;
  };
  numbers.sort((a, b) => rank(a) - rank(b) || a[0].localeCompare(b[0]));
  return numbers.slice(0, MAX_METRICS);
}

export function stageBadge(stage) {
  return h("span", { class: `stage stage-${String(stage).toLowerCase()}` }, stage);
}

function versionRow(version) {
  const metrics = keyMetrics(version.metrics);
  return h(
    "tr",
    { dataset: { version: version.version } },
    h("td", { class: "num" }, `v${version.version}`),
    h("td", {}, stageBadge(version.stage)),
    h("td", {}, h("a", { href: `#/jobs/${version.job_id}`, class: "job-link" }, `job ${version.job_id}`),
      version.trial_id !== null && version.trial_id !== undefined ? ` trial ${version.trial_id}` : ""),
    h("td", {}, h("div", { class: "metrics" },
      metrics.length
        ? metrics.map(([name, value]) => h("span", { class: "metric" }, h("span", { class: "muted" }, `${name} `), formatNumber(value)))
        : h("span", { class: "muted" }, "none"))),
    h("td", {}, version.task || ""),
    h("td", {}, formatTime(version.created_at)),
  );
}

function modelPanel(model) {
  const versions = [...(model.versions || [])].sort((a, b) => b.version - a.version);
  const facts = [`project ${model.project}`];
  if (model.latest_version) facts.push(`latest v${model.latest_version}`);
  if (model.production_version) facts.push(`production v${model.production_version}`);
  return h(
    "section",
    { class: "panel model", dataset: { model: model.name, project: model.project } },
    h("div", { class: "title-row" }, h("h2", { class: "model-name" }, model.name), h("span", { class: "muted" }, facts.join(" · "))),
    model.description ? h("p", { class: "description" }, model.description) : null,
    h(
      "table",
      { class: "versions" },
      h("thead", {}, h("tr", {}, ["Version", "Stage", "Source", "Key metrics", "Task", "Registered"].map((t) => h("th", {}, t)))),
      h("tbody", {}, versions.length ? versions.map(versionRow) : h("tr", {}, h("td", { colspan: 6, class: "muted empty" }, "No versions."))),
    ),
  );
}

export default {
  path: /^\/models$/,
  title: "models",
  nav: { label: "Models", href: "#/models" },
  render(main) {
    const list = h("div", { id: "models" });
    const updated = h("span", { class: "muted updated", id: "updated" });
    const problem = h("div");
    main.append(h("div", { class: "title-row" }, h("h1", {}, "Models"), updated), problem, list);

    const load = () =>
      refreshInto(updated, problem, async () => {
        const models = await get("/models");
        // the list carries no versions: each model's own page does
        const full = await Promise.all(
          models.map((m) => get(`/models/${encodePath(m.name)}${toQuery({ project: m.project })}`).catch(() => m)),
        );
        replace(list, full.length ? full.map(modelPanel) : h("p", { class: "muted empty" }, "No registered models."));
      });
    return poll(load, REFRESH_MS);
  },
};
