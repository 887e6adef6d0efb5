// A member's data on request (export) and erasure, from the members page. Both are the
// module's API (docs/privacy.md): POST .../members/{user}/export answers a zip, POST
// .../members/{user}/erase starts the journalled erasure and GET .../erasures/{id}
// follows it to "done". The console decides nothing: what it may not do, the API refuses.

import * as api from "./api.js";
import { clear, h } from "./dom.js";
import { dateTime, t } from "./i18n.js";

const enc = encodeURIComponent;
// The erasure's steps as GET .../erasures/{id} names them (privacy/rules.py): the
// school's first, then — when no school holds the person any more — the account's.
const SCHOOL_STEPS = ["roster", "messages", "school_rows"];
const ACCOUNT_STEPS = ["media", "module_rows", "account"];
// How often the page asks how the erasure is going (not a deadline: it asks until done).
const POLL_MS = 1000;

function memberPath(school, userId, rest) {
  return `/schools/${enc(school.school_id)}/members/${enc(userId)}${rest}`;
}

/** The export: the zip offered for download, named as the server names it. */
export async function exportMember(school, member, act) {
  const localpart = member.user_id.replace(/^@/, "").split(":")[0];
  const name = `parta-${school.school_id}-${localpart}.zip`;
  return act(
    () => api.download(memberPath(school, member.user_id, "/export"), name, "POST"),
    t("export.done", { name: member.display_name }),
  );
}

/** The confirmation: who, what goes, the school's choice for messages (its policy's
 * `erasure_messages` chosen at first); resolves with the chosen `messages` rule, or null
 * when cancelled (Esc, Cancel). */
function confirmErasure(school, member) {
  const preset = school.policy?.erasure_messages === "keep_anonymised" ? "keep_anonymised" : "redact";
  const rule = (value, label, checked) =>
    h(
      "label",
      { class: "choice" },
      h("input", { type: "radio", name: "messages", value, checked }),
      " ",
      label,
    );
  const sure = h("input", { type: "checkbox", id: "erase-sure", required: true });
  const dialog = h(
    "dialog",
    { id: "erase-dialog", "aria-labelledby": "erase-title", "aria-describedby": "erase-what" },
    h(
      "form",
      { method: "dialog" },
      h("h2", { id: "erase-title" }, t("erase.title", { name: member.display_name })),
      member.display_name !== member.user_id ? h("p", { class: "uid" }, member.user_id) : null,
      h(
        "div",
        { id: "erase-what" },
        h("p", {}, t("erase.intro", { school: school.name })),
        h(
          "ul",
          {},
          h("li", {}, t(member.former ? "erase.what_roster_former" : "erase.what_roster")),
          h("li", {}, t("erase.what_messages")),
          h("li", {}, t("erase.what_rows")),
        ),
        h("p", {}, t("erase.what_account")),
        h("p", { class: "hint" }, t("erase.audit")),
      ),
      h(
        "fieldset",
        {},
        h("legend", {}, t("erase.messages")),
        rule("redact", t("erase.redact"), preset === "redact"),
        rule("keep_anonymised", t("erase.keep"), preset === "keep_anonymised"),
      ),
      h("div", { class: "field check" }, h("label", { for: "erase-sure" }, sure, " ", t("erase.sure"))),
      h(
        "div",
        { class: "dialog-buttons" },
        h("button", { type: "submit", value: "cancel", formnovalidate: true, id: "b-erase-cancel" }, t("erase.cancel")),
        h("button", { type: "submit", value: "erase", class: "danger", id: "b-erase-confirm" }, t("erase.confirm")),
      ),
    ),
  );
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const chosen = dialog.querySelector("input[name=messages]:checked");
      const answer = dialog.returnValue === "erase" ? chosen.value : null;
      dialog.remove();
      resolve(answer);
    });
    dialog.showModal();
  });
}

/** The erasure's progress: one line a step, said politely as it changes. */
function progressBox(member) {
  const box = h(
    "section",
    { id: "erasure", class: "erasure", "aria-live": "polite", "aria-busy": "true" },
    h("h2", { tabindex: "-1" }, t("erase.progress_title", { name: member.display_name })),
  );
  const list = h("ul", { class: "steps" });
  const summary = h("p", { id: "erasure-state" }, t("erase.running"));
  box.append(list, summary);
  const show = (status) => {
    const done = new Set(status.steps_done);
    const kept = status.scope === "school";
    clear(list).append(
      ...[...SCHOOL_STEPS, ...ACCOUNT_STEPS].map((step) => {
        let state = done.has(step) ? "done" : "waiting";
        if (kept && ACCOUNT_STEPS.includes(step)) state = "kept";
        return h(
          "li",
          { "data-step": step, "data-state": state },
          t(`erase.step_${step}`),
          " — ",
          t(`erase.state_${state}`),
        );
      }),
    );
    box.dataset.status = status.status;
    if (status.status === "done") {
      box.removeAttribute("aria-busy");
      summary.textContent = kept
        ? t("erase.done_kept", { name: member.display_name })
        : t("erase.done", { name: member.display_name });
    }
  };
  return { box, show };
}

/** Ask, start, follow to the end; `finished()` once it is done (the list reloads). */
export async function eraseMember({ school, member, act, say, place, finished }) {
  await runErasure({
    school,
    member,
    act,
    say,
    place,
    finished,
    start: (messages) => api.call("POST", memberPath(school, member.user_id, "/erase"), { messages }),
  });
}

/** The dialog, then `start(messages)` (answers the erasure's id), then its progress. */
async function runErasure({ school, member, act, say, place, finished, start }) {
  const messages = await confirmErasure(school, member);
  if (!messages) return;
  const path = (id) => `/schools/${enc(school.school_id)}/erasures/${enc(id)}`;
  const started = await act(async () => {
    const answer = await start(messages);
    // A carried-out request answers the request: its erasure is read for the steps.
    return answer.steps_done ? answer : api.call("GET", path(answer.erasure_id));
  }, t("erase.started", { name: member.display_name }));
  if (!started) return;
  const { box, show } = progressBox(member);
  place(box);
  box.querySelector("h2").focus();
  show(started);
  let status = started;
  while (status.status !== "done") {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    if (!box.isConnected) return; // the page was left: the server carries on regardless
    try {
      status = await api.call("GET", path(started.erasure_id));
    } catch (e) {
      say(e.message || String(e), "error");
      continue;
    }
    show(status);
  }
  say(box.querySelector("#erasure-state").textContent, "ok");
  finished();
}

// -- requests to erase: the school's queue (docs/privacy.md) ---------------------------

/** The reason for declining, asked in a dialog; null when cancelled. */
function askReason(request, who) {
  const reason = h("textarea", { id: "decline-reason", name: "reason", rows: 4, required: true, maxlength: 2000 });
  const dialog = h(
    "dialog",
    { id: "decline-dialog", "aria-labelledby": "decline-title" },
    h(
      "form",
      { method: "dialog" },
      h("h2", { id: "decline-title" }, t("requests.decline_title", { name: who })),
      h("p", { class: "uid" }, request.request_id),
      h("div", { class: "field" }, h("label", { for: "decline-reason" }, t("requests.reason")), reason),
      h("p", { class: "hint" }, t("requests.reason_hint")),
      h(
        "div",
        { class: "dialog-buttons" },
        h("button", { type: "submit", value: "cancel", formnovalidate: true, id: "b-decline-cancel" }, t("erase.cancel")),
        h("button", { type: "submit", value: "decline", id: "b-decline-confirm" }, t("requests.decline")),
      ),
    ),
  );
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const answer = dialog.returnValue === "decline" ? reason.value.trim() : null;
      dialog.remove();
      resolve(answer || null);
    });
    dialog.showModal();
  });
}

function localDate(iso) {
  const [y, m, d] = iso.split("-");
  return `${d}.${m}.${y}`;
}

/** Privacy: the school's requests to erase, open first with their due dates (overdue in
 * red); each open one carried out (the erasure's dialog) or declined with a reason. */
export async function privacyView({ school, section, heading, say, act }) {
  const base = `/schools/${enc(school.school_id)}/erasure_requests`;
  const status = h("p", { id: "requests-count" });
  const list = h("div", { id: "requests-list" });
  section.append(heading(t("requests.title")), h("p", { class: "hint" }, t("requests.intro")), status, list);

  const load = async () => {
    const [answer, members] = await Promise.all([
      api.call("GET", base),
      api.call("GET", `/schools/${enc(school.school_id)}/members`).catch(() => ({ members: [] })),
    ]);
    const names = new Map((members.members || []).map((m) => [m.user_id, m.display_name]));
    const name = (userId) => (userId && userId !== "erased" ? names.get(userId) || userId : t("requests.erased"));
    const requests = answer.requests;
    const open = requests.filter((r) => r.status === "open").length;
    status.textContent = t("requests.count", { open, all: requests.length });
    const row = (r) => {
      const who = name(r.user_id);
      // Buttons only while open (an empty flex cell would lose its border). On a phone
      // each row is a card and each cell says what it is (data-label, console.css).
      const label = (column) => t(`requests.col_${column}`);
      const actions = h("td", { class: r.status === "open" ? "actions" : null });
      if (r.status === "open") {
        actions.append(
          h(
            "button",
            {
              type: "button",
              class: "danger b-carry-out",
              "aria-label": t("requests.carry_out_named", { name: who }),
              onclick: () =>
                runErasure({
                  school,
                  member: { user_id: r.user_id, display_name: who, former: !names.has(r.user_id) },
                  act,
                  say,
                  place: (box) => {
                    document.getElementById("erasure")?.remove();
                    status.after(box);
                  },
                  finished: load,
                  start: (messages) => api.call("POST", `${base}/${enc(r.request_id)}/carry_out`, { messages }),
                }),
            },
            t("requests.carry_out"),
          ),
          " ",
          h(
            "button",
            {
              type: "button",
              class: "b-decline",
              "aria-label": t("requests.decline_named", { name: who }),
              onclick: async () => {
                const reason = await askReason(r, who);
                if (!reason) return;
                const done = await act(
                  () => api.call("POST", `${base}/${enc(r.request_id)}/decline`, { reason }),
                  t("requests.declined", { name: who }),
                );
                if (done) load();
              },
            },
            t("requests.decline"),
          ),
        );
      }
      const due = h("td", { class: r.overdue ? "due overdue" : "due", "data-label": label("due") }, localDate(r.due_date));
      if (r.overdue) due.append(" ", h("strong", {}, t("requests.overdue")));
      return h(
        "tr",
        { "data-request": r.request_id, "data-status": r.status },
        // The ID under the name (alone when no name is known: a former member's).
        h("th", { scope: "row" }, who, r.user_id && r.user_id !== "erased" && who !== r.user_id ? h("small", { class: "uid" }, r.user_id) : null),
        h(
          "td",
          { "data-label": label("asked_by") },
          r.relation === "guardian" ? t("requests.by_guardian", { name: name(r.requested_by) }) : t("requests.by_self"),
        ),
        h("td", { "data-label": label("asked") }, dateTime(r.created_ts)),
        due,
        h(
          "td",
          { class: "state", "data-label": label("status") },
          t(`requests.status_${r.status}`),
          r.reason ? h("small", { class: "reason" }, r.reason) : null,
        ),
        actions,
      );
    };
    clear(list).append(
      requests.length
        ? h(
            "table",
            { id: "requests" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ...["who", "asked_by", "asked", "due", "status", "actions"].map((c) =>
                  h("th", { scope: "col" }, t(`requests.col_${c}`)),
                ),
              ),
            ),
            h("tbody", {}, ...requests.map(row)),
          )
        : h("p", {}, t("requests.none")),
    );
  };
  await load();
}
