// The dashboard's shell: a hash router (#/jobs, #/jobs/12, #/login), the navigation and the user's name.
// Each page is one module in pages/ (listed in pages/index.js) exporting
//   { path: RegExp, title, nav?: {label, href, match?}, public?: true, render(main, {params, query}) -> stop() }
// (`match`: the path prefix that marks the nav link active; default: href without the '#').
import { clearToken, get, toLogin, token } from "./api.js";
import { errorBox, h, replace } from "./dom.js";
import { pages } from "./pages/index.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const logout = document.getElementById("logout");
let stopPage = null;
let whoFor = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/jobs";
  const [path, search = ""] = raw.split("?", 2);
  return { path: path || "/jobs", query: new URLSearchParams(search) };
}

function renderNav(path) {
  replace(
    nav,
    pages
      .filter((page) => page.nav && token())
      .map((page) =>
        h("a", { href: page.nav.href, class: path.startsWith(page.nav.match || page.nav.href.slice(1)) ? "active" : "" },
          page.nav.label),
      ),
  );
}

async function showWho() {
  const current = token();
  logout.hidden = !current;
  if (!current) {
    who.textContent = "";
    whoFor = null;
    return;
  }
  if (whoFor === current) return;
  whoFor = current;
  try {
    const me = await get("/whoami");
    who.textContent = me.admin ? `${me.user} (admin)` : me.user;
  } catch {
    who.textContent = "";
  }
}

function route() {
  if (stopPage) {
    stopPage();
    stopPage = null;
  }
  const { path, query } = parseHash();
  let found = null;
  let params = [];
  for (const page of pages) {
    const match = page.path.exec(path);
    if (match) {
      found = page;
      params = match.slice(1).map(decodeURIComponent);
      break;
    }
  }
  renderNav(path);
  showWho();
  if (!found) {
    document.title = "dljobs: not found";
    replace(main, h("h1", {}, "Not found"), h("p", {}, "No page here. ", h("a", { href: "#/jobs" }, "Jobs")));
    return;
  }
  if (!found.public && !token()) {
    toLogin();
    return;
  }
  document.title = `dljobs: ${found.title}`;
  replace(main);
  try {
    stopPage = found.render(main, { params, query }) || null;
  } catch (error) {
    replace(main, errorBox(error));
  }
}

logout.addEventListener("click", () => {
  clearToken();
  location.hash = "#/login";
});
window.addEventListener("hashchange", route);
route();
