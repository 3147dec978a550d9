// #/jobs/ID: one job: its summary, a sweep's trials, metric charts, events, the tail of its logs, artifacts and
// spec. While the job is live, status, events, trials and metrics are polled and the logs follow its output.
import { download, encodePath, get, getText, request } from "../api.js";
import { lineChart } from "../chart.js";
import {
  errorBox, formatBytes, formatTime, h, isTerminal, poll, replace, runtimeOf, statusBadge,
} from "../dom.js";
import { trialsView } from "../trials.js";

const REFRESH_MS = 2500;
const TAIL_LINES = 300;
const TAIL_CHARS = 256 * 1024;

function section(id, title, ...children) {
  return h("section", { id, class: "panel" }, h("h2", {}, title), ...children);
}

function summary(job) {
  const rows = [
    ["Project", job.project],
    ["Priority", job.priority],
    ["Submitted by", job.submitted_by],
    ["Attempt", `${job.attempt} (retries allowed: ${job.retries})`],
    ["Submitted", formatTime(job.created_at)],
    ["Started", formatTime(job.started_at)],
    ["Finished", formatTime(job.finished_at)],
    ["Ran", runtimeOf(job)],
    ["Ray job", job.launch_id || ""],
  ];
  return h("dl", { class: "summary" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function events(list) {
  if (!list.length) return h("p", { class: "muted" }, "No events yet.");
  return h(
    "ol",
    { class: "timeline" },
    list.map((event) =>
      h("li", {},
        h("time", { datetime: event.created_at }, formatTime(event.created_at)), " ",
        event.from_status ? [statusBadge(event.from_status), " → "] : null,
        statusBadge(event.to_status), " ",
        h("span", { class: "reason" }, event.reason)),
    ),
  );
}

// One chart per metric family: `train/loss` and `val/loss` (or train_loss, val_loss) share a chart.
function charts(metrics) {
  const names = Object.keys(metrics.series).sort();
  if (!names.length) return h("p", { class: "muted" }, "No metrics reported yet.");
  const families = new Map();
  for (const name of names) {
    const family = name.replace(/^(train|val|valid|validation|test|eval)[/_.-]/, "");
    if (!families.has(family)) families.set(family, []);
    families.get(family).push({ name, points: metrics.series[name].map((p) => ({ x: p.step, y: p.value })) });
  }
  return h("div", { class: "charts" }, [...families].map(([family, series]) => lineChart(series, { title: family })));
}

function artifacts(jobId, list) {
  if (!list.length) return h("p", { class: "muted" }, "No artifacts yet.");
  return h(
    "table",
    { class: "artifacts" },
    h("thead", {}, h("tr", {}, ["Name", "Kind", "Size", "SHA-256", "Created", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, list.map((artifact) => {
      const status = h("span", { class: "muted" });
      const button = h("button", { type: "button", class: "download" }, "Download");
      button.addEventListener("click", async () => {
        button.disabled = true;
        replace(status);
        try {
          await download(`/jobs/${jobId}/artifacts/${encodePath(artifact.name)}`, artifact.name.split("/").pop());
        } catch (error) {
          replace(status, ` ${error.message}`);
        } finally {
          button.disabled = false;
        }
      });
      return h("tr", {},
        h("td", { class: "artifact-name" }, artifact.name),
        h("td", {}, artifact.kind),
        h("td", { class: "num" }, formatBytes(artifact.size)),
        h("td", { class: "mono", title: artifact.sha256 }, artifact.sha256.slice(0, 12)),
        h("td", {}, formatTime(artifact.created_at)),
        h("td", {}, button, status));
    })),
  );
}

function tail(text) {
  const lines = text.slice(-TAIL_CHARS).split("\n");
  return lines.slice(-TAIL_LINES).join("\n");
}

export default {
  path: /^\/jobs\/([^/]+)$/,
  title: "job",
  render(main, { params }) {
    const ref = encodeURIComponent(params[0]);
    const header = h("div", { class: "title-row" }, h("h1", {}, `Job ${params[0]}`));
    const problem = h("div");
    const info = h("div");
    const why = h("p", { class: "why", id: "why", hidden: true });
    const trialBox = h("div", { id: "trials-body" });
    const trialSection = section("trials", "Trials", trialBox);
    trialSection.hidden = true; // shown for a sweep
    const chartBox = h("div", { id: "metrics-body" }, h("p", { class: "muted" }, "Loading…"));
    const eventBox = h("div", { id: "events-body" });
    const logBox = h("pre", { class: "logs", id: "logs-body", tabindex: 0 });
    const artifactBox = h("div", { id: "artifacts-body" });
    const specBox = h("pre", { class: "spec", id: "spec-body" });
    main.append(
      header, problem, info, why,
      trialSection,
      section("metrics", "Metrics", chartBox),
      section("events", "Events", eventBox),
      section("logs", `Logs (last ${TAIL_LINES} lines)`, logBox),
      section("artifacts", "Artifacts", artifactBox),
      section("spec", "Spec", specBox),
    );

    const aborter = new AbortController();
    let following = false;
    let logText = "";
    let jobId = null;
    let terminalSeen = 0;
    let finalLogs = false;
    const shown = new Map();
    // re-draw a section only when its data changed (keeps the chart's hover read-out and the scroll)
    const update = (box, data, draw) => {
      const key = JSON.stringify(data);
      if (shown.get(box) === key) return;
      shown.set(box, key);
      replace(box, draw(data));
    };

    // the live attempt's output as it comes; restarted from the top (not appended) if the stream drops
    const followLogs = async () => {
      following = true;
      logText = "";
      try {
        const response = await request(`/jobs/${jobId}/logs?follow=true`, { raw: true, signal: aborter.signal });
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          logText = tail(logText + value);
          logBox.textContent = logText;
          logBox.scrollTop = logBox.scrollHeight;
        }
      } catch (error) {
        if (error.name === "AbortError") return;
        console.warn("logs", error);
      }
      following = false;
    };

    const refresh = async () => {
      let job;
      try {
        job = await get(`/jobs/${ref}`);
      } catch (error) {
        replace(problem, errorBox(error));
        return error.status !== 401 && error.status !== 404;
      }
      // everything of one refresh is read first and drawn together, so the sections agree with each other
      const sweep = job.kind === "sweep";
      let eventList, metrics, artifactList, trialList;
      try {
        [eventList, metrics, artifactList, trialList] = await Promise.all([
          get(`/jobs/${job.id}/events`),
          get(`/jobs/${job.id}/metrics`),
          get(`/jobs/${job.id}/artifacts`),
          sweep ? get(`/jobs/${job.id}/trials`) : null,
        ]);
      } catch (error) {
        replace(problem, errorBox(error));
        return error.status !== 401;
      }
      replace(problem);
      jobId = job.id;
      const done = isTerminal(job.status);
      document.title = `dljobs: ${job.name} (${job.status})`;
      const cancel = done || job.status === "CANCELLING" ? null : h("button", { type: "button", id: "cancel" }, "Cancel");
      if (cancel) {
        cancel.addEventListener("click", async () => {
          if (!confirm(`Cancel job ${job.id} (${job.name})?`)) return;
          cancel.disabled = true;
          try {
            await request(`/jobs/${job.id}/cancel`, { method: "POST" });
            refresh();
          } catch (error) {
            replace(problem, errorBox(error));
          }
        });
      }
      replace(header,
        h("h1", {}, h("span", { class: "job-name" }, job.name), h("span", { class: "muted" }, ` #${job.id}`)),
        statusBadge(job.status),
        h("span", { class: "reason", id: "status-reason" }, job.status_reason || ""),
        cancel);
      update(info, job, summary);
      update(specBox, job.spec, (spec) => JSON.stringify(spec, null, 2));
      update(eventBox, eventList, events);
      if (sweep) {
        trialSection.hidden = false;
        update(trialBox, trialList, (list) => trialsView(list, (job.spec.sweep || {}).space || {}));
      }
      update(chartBox, metrics, charts);
      update(artifactBox, artifactList, (list) => artifacts(job.id, list));
      if (job.status === "QUEUED" || job.status === "RETRYING") {
        get(`/jobs/${job.id}/why`).then((w) => { why.hidden = false; why.textContent = w.message; }).catch(() => {});
      } else {
        why.hidden = true;
      }
      if (done) {
        if (!following && !finalLogs) {
          finalLogs = true;
          logText = tail(await getText(`/jobs/${job.id}/logs`));
          logBox.textContent = logText || "(no output)";
        }
        // a few more looks after the end: the archived logs and last artifacts are registered just after it
        terminalSeen += 1;
        return terminalSeen < 3;
      }
      if (!following && job.status !== "QUEUED") followLogs();
      return true;
    };

    const stop = poll(refresh, REFRESH_MS);
    return () => {
      stop();
      aborter.abort();
    };
  },
};
