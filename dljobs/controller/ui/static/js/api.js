// Every call to the controller: /api/v1 with the token from the login page as a Bearer header.
// The token lives in this tab's sessionStorage only; it never goes into a URL, a cookie or the page.

export const API_PREFIX = "/api/v1";
const TOKEN_KEY = "dljobs.token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// Back to the login page, remembering where the user was.
export function toLogin() {
  const here = location.hash.replace(/^#/, "");
  if (here.startsWith("/login")) return; // already there (several calls can fail with 401 at once)
  location.hash = here ? `#/login?next=${encodeURIComponent(here)}` : "#/login";
}

async function errorOf(response) {
  try {
    const body = await response.json();
    if (body && body.error) return new ApiError(response.status, body.error.code, body.error.message);
  } catch {
    // not JSON: fall through
  }
  return new ApiError(response.status, "error", `${response.status} ${response.statusText}`);
}

// fetch() against the API. A 401 forgets the token and returns to the login page (unless `login` is set:
// the login page checks a candidate token itself). Returns the Response when `raw`, else its JSON.
export async function request(path, { method = "GET", body, raw = false, signal, bearer, login = false } = {}) {
  const credential = bearer ?? token();
  if (!credential) {
    toLogin();
    throw new ApiError(401, "unauthorized", "log in first");
  }
  const headers = { Authorization: `Bearer ${credential}`, Accept: "application/json" };
  const init = { method, headers, signal, cache: "no-store", credentials: "omit", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(API_PREFIX + path, init);
  if (response.status === 401 && !login) {
    clearToken();
    toLogin();
  }
  if (!response.ok) throw await errorOf(response);
  return raw ? response : response.json();
}

export const get = (path, options) => request(path, options);

export async function getText(path, options) {
  const response = await request(path, { ...options, raw: true });
  return response.text();
}

// A path segment per part, so names with '/', '?', '#' or spaces stay inside their segment.
export function encodePath(path) {
  return path.split("/").map(encodeURIComponent).join("/");
}

// Download through fetch (the header carries the token) and a blob: URL that lives only for the click.
export async function download(path, filename) {
  const response = await request(path, { raw: true });
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// A query string from an object, leaving out empty values; arrays repeat the key.
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const one of Array.isArray(value) ? value : [value]) search.append(key, String(one));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
