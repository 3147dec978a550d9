// #/login: a token in, checked against /whoami, kept in this tab's sessionStorage.
import { ApiError, get, setToken } from "../api.js";
import { h, replace } from "../dom.js";

export default {
  path: /^\/login$/,
  title: "log in",
  public: true,
  render(main, { query }) {
    const input = h("input", {
      id: "token",
      name: "token",
      type: "password",
      autocomplete: "off",
      spellcheck: "false",
      required: true,
      placeholder: "dlj_…",
    });
    const message = h("p", { class: "error", role: "alert", id: "login-error" });
    const button = h("button", { type: "submit", id: "login-submit" }, "Log in");
    const form = h(
      "form",
      { class: "login", autocomplete: "off" },
      h("h1", {}, "dljobs"),
      h("label", { for: "token" }, "API token"),
      input,
      h("p", { class: "muted" },
        "From ", h("code", {}, "dljobs tokens create"), ", or ", h("code", {}, "~/.dljobs/token"),
        " on the embedded controller. It is kept in this tab only."),
      button,
      message,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const candidate = input.value.trim();
      if (!candidate) return;
      button.disabled = true;
      replace(message);
      try {
        await get("/whoami", { bearer: candidate, login: true });
        setToken(candidate);
        const next = query.get("next");
        location.hash = next && next.startsWith("/") ? `#${next}` : "#/jobs";
      } catch (error) {
        const text =
          error instanceof ApiError && error.status === 401
            ? "That token was not accepted."
            : error instanceof ApiError && error.status === 403
              ? "That token cannot read jobs (a job's reporting token?)."
              : `Could not log in: ${error.message}`;
        replace(message, text);
        button.disabled = false;
      }
    });
    main.append(form);
    input.focus();
  },
};
