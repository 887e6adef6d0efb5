// The console: sign-in, the school list and the router. Every action is a call to the
// module's documented API (api.js); the console has no rules of its own, so the API's
// refusals are the console's refusals (shown in the page's language).

import * as api from "./api.js";
import { h, clear } from "./dom.js";
import { language, pickLanguage, setLanguage, t, translate } from "./i18n.js";
import { VIEWS } from "./school.js";
import { UNIT_TABS, unitView, unitsList, unitsOf } from "./units.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const statusEl = document.getElementById("status");

/** Say something to everyone, screen readers too (the status line is aria-live). */
export function say(text, kind = "info") {
  statusEl.textContent = text;
  statusEl.dataset.kind = kind;
}

/** Run an action; its refusal is said, never thrown at the person. */
export async function act(action, done) {
  // A change (one that says `done`) can take seconds — a school makes its rooms: say so,
  // and take no second click meanwhile (a second school of the same name).
  const held = done ? [...main.querySelectorAll("button:not([disabled])")] : [];
  if (done) {
    held.forEach((b) => (b.disabled = true));
    main.setAttribute("aria-busy", "true");
    say(t("working"), "info");
  }
  try {
    const result = await action();
    if (done) say(done, "ok");
    return result;
  } catch (e) {
    say(e.message || String(e), "error");
    return undefined;
  } finally {
    held.forEach((b) => (b.disabled = false));
    main.removeAttribute("aria-busy");
  }
}

function heading(text) {
  const el = h("h1", { tabindex: "-1" }, text);
  return el;
}

function focusHeading() {
  const first = main.querySelector("h1");
  if (first) first.focus();
}

// -- sign-in -------------------------------------------------------------------

async function signInView() {
  nav.hidden = true;
  let flows = { password: true, sso: false };
  try {
    flows = await api.loginFlows();
  } catch {
    // The form still works if the homeserver does not list its flows.
  }
  const user = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const password = h("input", {
    id: "password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const form = h(
    "form",
    { id: "signin", class: "panel narrow" },
    heading(t("signin.title")),
    h("p", {}, t("signin.intro")),
    h("div", { class: "field" }, h("label", { for: "username" }, t("signin.username")), user),
    h("div", { class: "field" }, h("label", { for: "password" }, t("signin.password")), password),
    h("button", { type: "submit", id: "b-signin", class: "primary" }, t("signin.submit")),
  );
  if (!flows.password) form.querySelectorAll(".field, #b-signin").forEach((el) => el.remove());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const ok = await act(() => api.loginPassword(user.value.trim(), password.value));
    if (ok) {
      password.value = "";
      say(t("signin.done"), "ok");
      go("#/");
    }
  });
  if (flows.sso) {
    const back = location.origin + location.pathname;
    form.append(
      h("p", { class: "or" }, t("signin.or")),
      h("a", { class: "button", id: "b-sso", href: api.ssoUrl(back) }, t("signin.sso")),
    );
  }
  clear(main).append(form);
  user.focus();
}

// -- the schools ------------------------------------------------------------------

let cache = { me: null, schools: null };

async function loadMe() {
  if (!cache.me) {
    cache.me = await api.call("GET", "/me");
    cache.schools = (await api.call("GET", "/schools")).schools;
  }
  return cache;
}

async function homeView() {
  nav.hidden = true;
  const { me, schools } = await loadMe();
  const list = h(
    "ul",
    { class: "schools" },
    schools.map((s) =>
      h("li", {}, h("a", { href: `#/s/${encodeURIComponent(s.school_id)}/card` }, s.name)),
    ),
  );
  const section = h(
    "section",
    { class: "panel" },
    heading(t("schools.title")),
    schools.length ? list : h("p", {}, t("schools.none")),
  );
  if (me.operator) section.append(h("p", { class: "hint" }, t("schools.operator")));
  clear(main).append(section);
  focusHeading();
  if (me.operator || me.coordinates.length) {
    // The coordinators' subtree (the operator: every unit); none on a server without it.
    let units = null;
    try {
      units = await unitsOf();
    } catch {
      // A server without the coordinators' routes: no territories to show.
    }
    if (units === null) return;
    const panel = h(
      "section",
      { class: "panel", id: "units-panel" },
      h("h2", {}, t("unit.title")),
      units.length ? unitsList(units) : h("p", {}, t("unit.no_units")),
    );
    if (me.operator) panel.append(regionForm());
    main.append(panel);
  }
}

/** The operator makes a region; its coordinator is appointed on the region's page. */
function regionForm() {
  const name = h("input", { id: "region-name", required: true, maxlength: 200 });
  const form = h(
    "form",
    { id: "region-form", class: "inline" },
    h("div", { class: "field" }, h("label", { for: "region-name" }, t("unit.region_name")), name),
    h("button", { type: "submit", class: "primary" }, t("unit.create_region")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const unit = await act(
      () => api.call("POST", "/units", { kind: "region", name: name.value.trim() }),
      t("unit.region_created"),
    );
    if (unit) location.hash = `#/u/${encodeURIComponent(unit.unit_id)}/people`;
  });
  return form;
}

const TABS = ["card", "classes", "members", "import", "codes", "invites", "lessons"];
// The school's rules, its consents and its privacy (the queue of requests to erase): only
// for those who manage the school. The module says who they are (the school's
// `may_manage`: the check its PATCH makes), so the console keeps no copy of the rule; for
// anyone else the links are not there and their addresses open the card.
const MANAGER_TABS = ["consents", "rules", "privacy"];

function schoolNav(schoolId, active, manager) {
  clear(nav).append(
    h(
      "ul",
      {},
      h("li", {}, h("a", { href: "#/" }, t("nav.schools"))),
      (manager ? [...TABS, ...MANAGER_TABS] : TABS).map((tab) =>
        h(
          "li",
          {},
          h(
            "a",
            {
              href: `#/s/${encodeURIComponent(schoolId)}/${tab}`,
              "aria-current": tab === active ? "page" : null,
              id: `tab-${tab}`,
            },
            t(`nav.${tab}`),
          ),
        ),
      ),
    ),
  );
  nav.hidden = false;
  nav.setAttribute("aria-label", t("nav.label"));
}

async function schoolView(schoolId, asked, arg) {
  const school = await api.call("GET", `/schools/${encodeURIComponent(schoolId)}`);
  const manager = school.may_manage === true;
  const tab = !manager && MANAGER_TABS.includes(asked) ? "card" : asked;
  schoolNav(schoolId, tab, manager);
  const view = VIEWS[tab] || VIEWS.card;
  const section = h("section", { class: "panel", id: `view-${tab}` });
  clear(main).append(h("p", { class: "school-name" }, school.name), section);
  await view({ school, section, arg, heading, say, act, refresh: () => route() });
  focusHeading();
}

function unitNav(unitId, active) {
  clear(nav).append(
    h(
      "ul",
      {},
      h("li", {}, h("a", { href: "#/" }, t("nav.schools"))),
      UNIT_TABS.map((tab) =>
        h(
          "li",
          {},
          h(
            "a",
            {
              href: `#/u/${encodeURIComponent(unitId)}/${tab}`,
              "aria-current": tab === active ? "page" : null,
              id: `tab-${tab}`,
            },
            t(`unit.tab_${tab}`),
          ),
        ),
      ),
    ),
  );
  nav.hidden = false;
  nav.setAttribute("aria-label", t("nav.label"));
}

async function unitPage(unitId, tab) {
  unitNav(unitId, tab);
  const section = h("section", { class: "panel", id: `view-${tab}` });
  clear(main).append(section);
  await unitView({ section, heading, say, act, refresh: () => route() }, unitId, tab);
  focusHeading();
}

// -- the router ------------------------------------------------------------------

// One view at a time, the newest last: a route asked for while another is still loading
// waits for it, and a route already superseded by a newer one does not render at all
// (signing in sets the hash *and* routes; without this, two home views raced and the
// link a person had just focused was replaced under them).
let routing = Promise.resolve();
let routeSeq = 0;

export function route() {
  const mine = ++routeSeq;
  routing = routing
    .catch(() => undefined)
    .then(() => (mine === routeSeq ? render() : undefined));
  return routing;
}

/** Show `hash`: a change of hash routes by itself, the same hash routes once here. */
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function render() {
  const who = document.getElementById("who");
  const logout = document.getElementById("logout");
  const session = api.current();
  who.textContent = session ? session.user_id : "";
  logout.hidden = !session;
  if (!session) {
    await signInView();
    return;
  }
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  try {
    if (parts[0] === "s" && parts[1]) {
      await schoolView(parts[1], parts[2] || "card", parts[3]);
    } else if (parts[0] === "u" && parts[1]) {
      await unitPage(parts[1], parts[2] || "people");
    } else {
      await homeView();
    }
  } catch (e) {
    if (!api.current()) {
      await signInView();
    } else {
      clear(main).append(h("section", { class: "panel" }, heading(t("error.title")), h("p", { class: "error" }, e.message)));
    }
  }
}

async function start() {
  setLanguage(pickLanguage());
  const langButton = document.getElementById("lang");
  const showLang = () => {
    const other = language() === "ru" ? "en" : "ru";
    langButton.textContent = other.toUpperCase();
    langButton.setAttribute("aria-label", other === "en" ? "English" : "Русский");
    document.title = t("title");
    translate(document);
  };
  langButton.addEventListener("click", () => {
    setLanguage(language() === "ru" ? "en" : "ru");
    showLang();
    route();
  });
  document.getElementById("logout").addEventListener("click", async () => {
    await api.logout();
    cache = { me: null, schools: null };
    say(t("signin.logged_out"), "ok");
    go("#/");
  });
  showLang();
  // Back from the homeserver's SSO: exchange the one-time login token.
  const params = new URLSearchParams(location.search);
  const loginToken = params.get("loginToken");
  if (loginToken) {
    history.replaceState(null, "", location.pathname + location.hash);
    await act(() => api.loginToken(loginToken));
  }
  window.addEventListener("hashchange", () => {
    say("");
    route();
  });
  await route();
}

start();
