// The school's consents: a class's people × the four purposes in one read (GET
// /schools/{id}/consents), the counts per purpose, and a paper form recorded for one
// person (PUT .../members/{user}/consents, `via: paper` with the form's number). The
// console decides nothing: who may read or record, and what a form needs, is the
// module's rule, and its refusal is said in the dialog in words (docs/privacy.md).

import * as api from "./api.js";
import { clear, field, h, select } from "./dom.js";
import { MESSAGE, dateTime, roleName, t } from "./i18n.js";

const enc = encodeURIComponent;
// The purposes as the module names them (privacy/rules.py PURPOSES), in its order.
const PURPOSES = ["communication", "video_lessons", "broadcasts", "photos"];
const STATES = ["granted", "none", "withdrawn"];
const ROLES = ["student", "parent", "teacher", "administrator"];
// The module's refusal of a paper record without its number (privacy/texts.py).
const NUMBER_REQUIRED = "privacy.document_number_required";

function schoolPath(school, rest) {
  return `/schools/${enc(school.school_id)}${rest}`;
}

/** A purpose's state for a person: granted, withdrawn, or never recorded. */
function stateOf(record) {
  if (!record) return "none";
  return record.granted ? "granted" : "withdrawn";
}

/** A form's number as people write it: «№ 17/2026» whether or not it was typed with «№». */
function formNumber(number) {
  if (!number) return "—";
  return /^(№|N[o°º]?\.?\s)/i.test(number) ? number : `№ ${number}`;
}

/** How it was recorded, in the school's words: the paper form and its number, the
 * person themself, or a parent with their account (the bot in their chat, or the API). */
function howOf(record, userId) {
  if (!record) return "";
  if (record.via === "paper") return t("consents.via_paper", { number: formNumber(record.document_number) });
  return record.recorded_by === userId ? t("consents.via_self") : t("consents.via_parent");
}

/** Every page of the school's list for these filters (a class is one page). */
async function readAll(school, query) {
  let answer = null;
  let from = null;
  const members = [];
  do {
    const q = new URLSearchParams(query);
    if (from) q.set("from", from);
    answer = await api.call("GET", schoolPath(school, `/consents?${q}`));
    members.push(...answer.members);
    from = answer.next_batch;
  } while (from);
  return { ...answer, members };
}

/** One person's paper form: which purposes it grants or withdraws, and its number.
 * Resolves with the module's answer once recorded, or null when cancelled. */
function paperDialog(school, member) {
  const choices = PURPOSES.map((purpose) => {
    const name = `paper-${purpose}`;
    const now = stateOf(member.consents[purpose]);
    const option = (value, label) =>
      h(
        "label",
        { class: "choice" },
        h("input", { type: "radio", name, value, id: `${name}-${value}`, checked: value === "keep" }),
        " ",
        label,
      );
    const hint = h(
      "small",
      { class: "hint", id: `${name}-now` },
      t("consents.now", { state: t(`consents.state_${now}`) }),
    );
    return h(
      "fieldset",
      { class: "paper-purpose", id: `paper-${purpose}`, "aria-describedby": hint.id },
      h("legend", {}, t(`consents.purpose_${purpose}`)),
      hint,
      h(
        "div",
        { class: "options" },
        option("keep", t("consents.keep")),
        option("grant", t("consents.grant")),
        option("withdraw", t("consents.withdraw")),
      ),
    );
  });
  const number = h("input", {
    id: "paper-number",
    autocomplete: "off",
    maxlength: 100,
    "aria-required": "true",
  });
  const error = h("p", { id: "paper-error", class: "error", role: "alert" });
  const save = h("button", { type: "submit", class: "primary", id: "b-paper-save" }, t("consents.save"));
  const cancel = h("button", { type: "button", id: "b-paper-cancel" }, t("consents.cancel"));
  const form = h(
    "form",
    { id: "paper-form", novalidate: true },
    h("h2", { id: "paper-title" }, t("consents.paper_title", { name: member.display_name })),
    h("p", { class: "uid" }, member.user_id),
    h("p", { id: "paper-intro", class: "hint" }, t("consents.paper_intro")),
    choices,
    field(t("consents.number"), number, t("consents.number_hint")),
    error,
    h("div", { class: "dialog-buttons" }, cancel, save),
  );
  const dialog = h(
    "dialog",
    { id: "paper-dialog", "aria-labelledby": "paper-title", "aria-describedby": "paper-intro" },
    form,
  );
  document.body.append(dialog);
  return new Promise((resolve) => {
    let answer = null;
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(answer);
    });
    cancel.addEventListener("click", () => dialog.close());
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      number.removeAttribute("aria-invalid");
      const consents = {};
      for (const purpose of PURPOSES) {
        const chosen = form.querySelector(`input[name=paper-${purpose}]:checked`).value;
        if (chosen !== "keep") consents[purpose] = chosen === "grant";
      }
      if (!Object.keys(consents).length) {
        error.textContent = t("consents.choose_one");
        form.querySelector(`#paper-${PURPOSES[0]}-grant`).focus();
        return;
      }
      const body = { consents };
      // Left empty, the number is not sent: the module says what a paper form needs.
      if (number.value.trim()) body.document_number = number.value.trim();
      save.disabled = true;
      save.setAttribute("aria-busy", "true");
      try {
        answer = await api.call("PUT", schoolPath(school, `/members/${enc(member.user_id)}/consents`), body);
        dialog.close();
      } catch (e) {
        error.textContent = e.message || String(e);
        if (e.body?.[MESSAGE]?.id === NUMBER_REQUIRED) {
          number.setAttribute("aria-invalid", "true");
          number.focus();
        }
      } finally {
        save.disabled = false;
        save.removeAttribute("aria-busy");
      }
    });
    dialog.showModal();
    form.querySelector(`#paper-${PURPOSES[0]}-keep`).focus();
  });
}

export async function consentsView({ school, section, heading, act, say }) {
  const classes = await api.classesOf(school);
  const cls = select("class_id", [["", t("consents.any_class")], ...classes.map((c) => [c.class_id, c.title])]);
  cls.id = "consents-class";
  const role = select(
    "role",
    [...ROLES.map((r) => [r, roleName(r)]), ["", t("consents.any_role")]],
    "student",
  );
  role.id = "consents-role";
  const summary = h("p", { id: "consents-summary", "aria-live": "polite" });
  const counts = h("tbody");
  const tbody = h("tbody", { role: "rowgroup" });

  const cell = (member, purpose) => {
    const record = member.consents[purpose];
    const state = stateOf(record);
    const how = howOf(record, member.user_id);
    const when = record ? (record.granted ? record.granted_ts : record.withdrawn_ts) : null;
    return h(
      "td",
      {
        role: "cell",
        "data-purpose": purpose,
        "data-state": state,
        "data-label": t(`consents.purpose_${purpose}`),
        class: `consent ${state}`,
      },
      h("span", { class: "state" }, t(`consents.state_${state}`)),
      how ? h("small", { class: "how" }, how) : null,
      when ? h("small", { class: "how" }, dateTime(when)) : null,
    );
  };

  const row = (member) => {
    const button = h(
      "button",
      {
        type: "button",
        class: "b-paper",
        "aria-label": t("consents.paper_named", { name: member.display_name }),
        onclick: async () => {
          const recorded = await paperDialog(school, member);
          button.focus();
          if (!recorded) return;
          say(t("consents.saved", { name: member.display_name }), "ok");
          await load(false);
          document.querySelector(`#consents-table tr[data-user="${CSS.escape(member.user_id)}"] .b-paper`)?.focus();
        },
      },
      t("consents.paper"),
    );
    return h(
      "tr",
      { role: "row", "data-user": member.user_id },
      h(
        "th",
        { scope: "row", role: "rowheader" },
        member.display_name,
        h("small", { class: "uid" }, member.user_id),
        button,
      ),
      PURPOSES.map((p) => cell(member, p)),
    );
  };

  const show = (answer) => {
    const where = cls.value ? cls.selectedOptions[0].textContent : t("consents.whole_school");
    summary.textContent = t("consents.summary", {
      where,
      count: answer.total,
      missing: PURPOSES.map(
        (p) => `${t(`consents.purpose_${p}`)} — ${answer.counts[p].none + answer.counts[p].withdrawn}`,
      ).join("; "),
    });
    clear(counts).append(
      ...PURPOSES.map((p) =>
        h(
          "tr",
          { "data-purpose": p },
          h("th", { scope: "row" }, t(`consents.purpose_${p}`)),
          STATES.map((s) => h("td", { "data-state": s }, String(answer.counts[p][s]))),
        ),
      ),
    );
    clear(tbody).append(
      ...answer.members
        .sort((a, b) => a.display_name.localeCompare(b.display_name, "ru"))
        .map(row),
    );
  };

  const load = async (announce = true) => {
    const query = {};
    if (cls.value) query.class_id = cls.value;
    if (role.value) query.role = role.value;
    const answer = await act(() => readAll(school, query));
    if (answer) show(answer);
    else if (announce) clear(tbody);
  };
  cls.addEventListener("change", () => load());
  role.addEventListener("change", () => load());

  section.append(
    heading(t("consents.title")),
    h("p", { class: "hint" }, t("consents.intro")),
    h(
      "div",
      { class: "filters inline", role: "search", "aria-label": t("consents.filters") },
      field(t("consents.class"), cls),
      field(t("consents.role"), role),
    ),
    summary,
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { id: "consents-counts" },
        h("caption", {}, t("consents.counts")),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, t("consents.col_purpose")),
            STATES.map((s) => h("th", { scope: "col" }, t(`consents.state_${s}`))),
          ),
        ),
        counts,
      ),
    ),
    h(
      "div",
      { class: "scroll" },
      h(
        // Explicit roles: on a phone the rows are laid out as cards (console.css), and a
        // table whose display CSS changes keeps its meaning for screen readers only so.
        "table",
        { id: "consents-table", role: "table", "aria-label": t("consents.table") },
        h("caption", { class: "sr-only" }, t("consents.table")),
        h(
          "thead",
          { role: "rowgroup" },
          h(
            "tr",
            { role: "row" },
            h("th", { scope: "col", role: "columnheader" }, t("consents.col_person")),
            PURPOSES.map((p) =>
              h("th", { scope: "col", role: "columnheader" }, t(`consents.purpose_${p}`)),
            ),
          ),
        ),
        tbody,
      ),
    ),
  );
  await load();
}
