// The OneRoster import (files → the plan → applied with a progress bar) and the printed
// sign-in codes. The module plans and applies (POST /schools/{id}/imports, .../apply):
// the same planner and the same member checks as the bot's import.

import * as api from "./api.js";
import { clear, field, h, select } from "./dom.js";
import { roleName, t } from "./i18n.js";

const enc = encodeURIComponent;
const LAST = "parta.console.import.";
const POLL_MS = 500;

function base64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

// The word an erasure leaves where a person's name was in a stored plan (privacy/rules.py ERASED).
const ERASED = "erased";
const person = (name) => (name === ERASED ? t("import.erased_person") : name);

function planView(plan) {
  const c = plan.counts;
  const items = [
    ["create_classes", c.create_classes],
    ["create_accounts", c.create_accounts],
    ["add", c.add],
    ["move", c.move],
    ["change", c.change],
    ["remove", c.remove],
    ["rename", c.rename],
  ];
  const details = [];
  if (plan.create_classes?.length) {
    details.push(
      h("details", {}, h("summary", {}, t("import.plan_classes")), h("p", {}, plan.create_classes.join(", "))),
    );
  }
  if (plan.add?.length) {
    details.push(
      h(
        "details",
        {},
        h("summary", {}, t("import.plan_add", { count: c.add })),
        h(
          "ul",
          {},
          plan.add.map((p) =>
            h("li", {}, `${person(p.display_name)} — ${p.roles.map(roleName).join(", ")}${p.classes.length ? `, ${p.classes.join(", ")}` : ""}`),
          ),
        ),
        c.add > plan.add.length ? h("p", { class: "hint" }, t("import.plan_more", { count: c.add - plan.add.length })) : null,
      ),
    );
  }
  if (plan.move?.length) {
    details.push(
      h(
        "details",
        { open: true },
        h("summary", {}, t("import.plan_move", { count: c.move })),
        h("ul", {}, plan.move.map((m) => h("li", {}, `${person(m.display_name)}: ${m.from.join(", ") || "—"} → ${m.to.join(", ") || "—"}`))),
      ),
    );
  }
  if (plan.remove?.length) {
    details.push(
      h(
        "details",
        { open: true },
        h("summary", {}, t("import.plan_remove", { count: c.remove })),
        h("ul", {}, plan.remove.map((m) => h("li", {}, person(m.display_name)))),
      ),
    );
  }
  if (plan.rename?.length) {
    details.push(
      h(
        "details",
        {},
        h("summary", {}, t("import.plan_rename", { count: c.rename })),
        h("ul", {}, plan.rename.map((m) => h("li", {}, `${person(m.from)} → ${person(m.to)}`))),
      ),
    );
  }
  return h(
    "div",
    { id: "plan", class: "plan" },
    h("h2", { tabindex: "-1" }, t("import.plan_title", { school: plan.school })),
    plan.empty
      ? h("p", {}, t("import.plan_empty"))
      : h(
          "dl",
          { class: "counts" },
          items.map(([key, n]) => [h("dt", {}, t(`import.count_${key}`)), h("dd", { "data-count": key }, String(n))]),
        ),
    details,
  );
}

export async function importView({ school, section, heading, act, say }) {
  const files = h("input", {
    type: "file",
    id: "import-files",
    multiple: true,
    accept: ".csv,.zip,text/csv,application/zip",
    required: true,
  });
  const check = h("button", { type: "submit", class: "primary", id: "b-check" }, t("import.check"));
  const form = h(
    "form",
    { id: "import-form" },
    field(t("import.files"), files, t("import.files_hint")),
    check,
  );
  const planBox = h("div", { id: "plan-box" });
  const bar = h("progress", { id: "import-progress", max: 100, value: 0, "aria-labelledby": "progress-label" });
  const barText = h("span", { id: "progress-text" }, "0 %");
  const progress = h(
    "div",
    { class: "progress", hidden: true, id: "progress-box" },
    h("span", { id: "progress-label" }, t("import.progress")),
    bar,
    barText,
  );
  const resultBox = h("div", { id: "import-result", "aria-live": "polite" });

  const showProgress = (imp) => {
    const p = imp.progress;
    progress.hidden = false;
    bar.value = p.percent;
    bar.setAttribute("aria-valuenow", String(p.percent));
    barText.textContent = `${p.percent} % · ${t(`import.stage_${p.stage}`)} (${p.done}/${p.total})`;
  };

  const finished = (imp) => {
    showProgress(imp);
    if (imp.state === "failed") {
      say(t("import.failed", { error: errorOf(imp.error) }), "error");
      clear(resultBox).append(
        h("p", { class: "error" }, t("import.failed", { error: errorOf(imp.error) })),
        applyButton(imp),
      );
      return;
    }
    const r = imp.result || {};
    say(t("import.done"), "ok");
    clear(resultBox).append(
      h("p", {}, t("import.result", {
        classes: r.created_classes ?? 0,
        accounts: r.created_accounts ?? 0,
        members: r.set_members ?? 0,
        removed: r.removed ?? 0,
        renamed: r.renamed ?? 0,
      })),
      r.rename_refused ? h("p", { id: "rename-refused" }, t("import.rename_refused", { count: r.rename_refused })) : null,
      h(
        "a",
        { class: "button primary", id: "to-codes", href: `#/s/${enc(school.school_id)}/codes/${enc(imp.import_id)}` },
        t("import.to_codes"),
      ),
    );
  };

  const poll = async (importId) => {
    for (;;) {
      const imp = await act(() => api.call("GET", `/schools/${enc(school.school_id)}/imports/${enc(importId)}`));
      if (!imp) return;
      showProgress(imp);
      if (imp.state === "done" || imp.state === "failed") {
        finished(imp);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  };

  const applyButton = (imp) =>
    h(
      "button",
      {
        type: "button",
        class: "primary",
        id: "b-apply",
        onclick: async (event) => {
          event.target.disabled = true;
          const started = await act(() =>
            api.call("POST", `/schools/${enc(school.school_id)}/imports/${enc(imp.import_id)}/apply`, {}),
          );
          if (!started) {
            event.target.disabled = false;
            return;
          }
          sessionStorage.setItem(LAST + school.school_id, imp.import_id);
          say(t("import.started"));
          showProgress(started);
          await poll(imp.import_id);
        },
      },
      imp.state === "failed" ? t("import.retry") : t("import.apply"),
    );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!files.files.length) return;
    check.disabled = true;
    clear(planBox);
    clear(resultBox);
    progress.hidden = true;
    say(t("import.checking"));
    const sent = {};
    for (const file of files.files) sent[file.name] = base64(await file.arrayBuffer());
    const imp = await act(() => api.call("POST", `/schools/${enc(school.school_id)}/imports`, { files: sent }));
    check.disabled = false;
    if (!imp) return;
    say(t("import.planned"));
    planBox.append(planView(imp.plan), imp.plan.empty ? null : applyButton(imp));
    planBox.querySelector("h2").focus();
  });

  section.append(
    heading(t("import.title")),
    h("p", { class: "hint" }, t("import.intro")),
    form,
    planBox,
    progress,
    resultBox,
  );
}

function errorOf(error) {
  if (!error) return "";
  return new api.ApiError(0, error).message;
}

// -- printed sign-in codes -------------------------------------------------------------------

/** One printed sign-in card: where (school or territory), who, what they are, the login,
 * the code and the server. The import's cards and a person made by name look the same. */
export function signInCard({ place, name, line, user_id, code }) {
  return h(
    "article",
    { class: "card" },
    h("p", { class: "card-school" }, place),
    h("h3", {}, name),
    h("p", {}, line),
    h("dl", {},
      h("dt", {}, t("codes.login")), h("dd", { class: "mono" }, user_id),
      h("dt", {}, t("codes.code")), h("dd", { class: "mono code" }, code),
      h("dt", {}, t("codes.server")), h("dd", { class: "mono" }, location.origin),
    ),
    h("p", { class: "card-help" }, t("codes.help")),
  );
}

/** What a form naming a person was given: a Matrix ID, else a name («Петрова Анна Сергеевна»:
 * surname, given name, the rest a patronymic) for the module to make an account for. */
export function personFrom(text) {
  const who = text.trim();
  if (who.startsWith("@")) return { user_id: who };
  const [family = "", given = "", ...rest] = who.split(/\s+/);
  return { family_name: family, given_name: given, middle_name: rest.join(" ") };
}

/** The card of someone just made by name (the code is in that one answer only), with its
 * Печать button; while it is in the view, printing the page prints the card alone. */
export function newPersonCard(card) {
  return h(
    "div",
    { class: "new-card", id: "new-card" },
    h("p", { class: "hint no-print" }, t("codes.once")),
    h("div", { class: "cards" }, signInCard(card)),
    h("button", { type: "button", class: "primary no-print", id: "b-print-card", onclick: () => window.print() }, t("codes.print")),
  );
}

export async function codesView({ school, section, heading, act, arg }) {
  const importId = arg || sessionStorage.getItem(LAST + school.school_id);
  section.append(heading(t("codes.title")));
  if (!importId) {
    section.append(h("p", {}, t("codes.none")));
    return;
  }
  const data = await act(() =>
    api.call("GET", `/schools/${enc(school.school_id)}/imports/${enc(importId)}/sign_ins`),
  );
  if (!data) return;
  const classes = [...new Set(data.sign_ins.map((s) => s.classes).filter(Boolean))].sort((a, b) =>
    a.localeCompare(b, "ru", { numeric: true }),
  );
  const cls = select("class", [["", t("codes.all_classes")], ...classes.map((c) => [c, c])]);
  cls.id = "codes-class";
  const role = select("role", [
    ["student", roleName("student")],
    ["parent", roleName("parent")],
    ["teacher", roleName("teacher")],
    ["", t("codes.all_roles")],
  ]);
  role.id = "codes-role";
  const cards = h("div", { class: "cards", id: "cards" });
  const render = () => {
    const shown = data.sign_ins.filter(
      (s) => (!cls.value || s.classes === cls.value) && (!role.value || s.role === role.value),
    );
    clear(cards).append(
      ...shown.map((s) =>
        signInCard({
          place: school.name,
          name: s.display_name,
          line: `${roleName(s.role)}${s.classes ? ` · ${s.classes}` : ""}`,
          user_id: s.user_id,
          code: s.code,
        }),
      ),
    );
    count.textContent = t("codes.count", { count: shown.length });
  };
  const count = h("p", { id: "codes-count", "aria-live": "polite" });
  cls.addEventListener("change", render);
  role.addEventListener("change", render);
  section.append(
    h(
      "div",
      { class: "inline no-print" },
      field(t("codes.class"), cls),
      field(t("codes.role"), role),
      h("button", { type: "button", class: "primary", id: "b-print", onclick: () => window.print() }, t("codes.print")),
    ),
    h("p", { class: "hint no-print" }, t("codes.intro")),
    count,
    cards,
  );
  render();
}
