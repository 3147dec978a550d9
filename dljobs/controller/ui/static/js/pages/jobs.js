// #/jobs: the jobs the token can see, newest first, filtered by status, project and name; refreshed live.
import { get, query as toQuery } from "../api.js";
import { formatTime, h, poll, refreshInto, replace, runtimeOf, statusBadge, STATUSES } from "../dom.js";

const PAGE = 50;
const REFRESH_MS = 3000;

function filtersFrom(query) {
  return {
    status: query.getAll("status").flatMap((v) => v.split(",")).filter((v) => STATUSES.includes(v)),
    project: query.get("project") || "",
    name: query.get("name") || "",
  };
}

function jobRow(job) {
  const link = `#/jobs/${job.id}`;
  return h(
    "tr",
    { dataset: { jobId: job.id } },
    h("td", { class: "num" }, h("a", { href: link }, String(job.id))),
    h("td", {}, h("a", { href: link, class: "job-name" }, job.name)),
    h("td", {}, job.project),
    h("td", {}, statusBadge(job.status)),
    h("td", { class: "reason" }, job.status_reason || ""),
    h("td", {}, job.submitted_by),
    h("td", {}, formatTime(job.created_at)),
    h("td", {}, runtimeOf(job)),
  );
}

export default {
  path: /^\/jobs$/,
  title: "jobs",
  nav: { label: "Jobs", href: "#/jobs" },
  render(main, { query }) {
    const filters = filtersFrom(query);
    let shown = PAGE;
    let cursor = null;

    const statusBox = h(
      "fieldset",
      { class: "statuses" },
      h("legend", {}, "Status"),
      STATUSES.map((status) =>
        h("label", {}, h("input", { type: "checkbox", name: "status", value: status, checked: filters.status.includes(status) }), status),
      ),
    );
    const projectSelect = h("select", { name: "project", id: "filter-project" }, h("option", { value: "" }, "all projects"));
    const nameInput = h("input", { type: "search", name: "name", id: "filter-name", placeholder: "exact name", value: filters.name });
    const form = h(
      "form",
      { class: "filters", id: "job-filters" },
      statusBox,
      h("label", {}, "Project ", projectSelect),
      h("label", {}, "Name ", nameInput),
      h("span", { class: "actions" },
        h("button", { type: "submit" }, "Filter"), " ",
        h("button", { type: "button", class: "link", onclick: () => (location.hash = "#/jobs") }, "Clear")),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const status = [...statusBox.querySelectorAll("input:checked")].map((box) => box.value);
      location.hash = `#/jobs${toQuery({ status: status.join(","), project: projectSelect.value, name: nameInput.value.trim() })}`;
    });
    form.addEventListener("change", (event) => {
      if (event.target.name === "status" || event.target.name === "project") form.requestSubmit();
    });

    const body = h("tbody", { id: "jobs-body" });
    const table = h(
      "table",
      { class: "jobs", id: "jobs-table" },
      h("thead", {}, h("tr", {}, ["ID", "Name", "Project", "Status", "Reason", "By", "Submitted", "Ran"].map((t) => h("th", {}, t)))),
      body,
    );
    const more = h("button", { type: "button", id: "more", hidden: true }, "More");
    const updated = h("span", { class: "muted updated", id: "updated" });
    const problem = h("div");
    main.append(h("div", { class: "title-row" }, h("h1", {}, "Jobs"), updated), form, problem, table, more);

    get("/projects")
      .then((projects) => {
        for (const project of projects) {
          projectSelect.append(h("option", { value: project.name, selected: project.name === filters.project }, project.name));
        }
        if (filters.project && !projects.some((p) => p.name === filters.project)) {
          projectSelect.append(h("option", { value: filters.project, selected: true }, filters.project));
        }
      })
      .catch(() => {});

    const load = () =>
      refreshInto(updated, problem, async () => {
        const page = await get(`/jobs${toQuery({ ...filters, status: filters.status.join(",") || null, limit: shown })}`);
        cursor = page.next_cursor;
        replace(body, page.items.length ? page.items.map(jobRow) : h("tr", {}, h("td", { colspan: 8, class: "muted empty" }, "No jobs.")));
        more.hidden = !cursor || shown >= 500;
      });
    more.addEventListener("click", () => {
      shown = Math.min(shown + PAGE, 500);
      load();
    });
    return poll(load, REFRESH_MS);
  },
};
