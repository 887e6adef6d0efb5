// The school's rules: its policy (GET /schools/{id}, field `policy`), changed with one
// PATCH that carries only what the administrator changed. The console checks nothing
// itself: a time the module does not take, a DM rule the operator does not allow, is the
// module's refusal, said in the status line (docs/school-rules.md, docs/privacy.md).

import * as api from "./api.js";
import { h } from "./dom.js";
import { MESSAGE, t } from "./i18n.js";

// The roles quiet hours hold (quiet_hours/rules.py HELD_ROLES), as the page lists them.
const QUIET_ROLES = ["teacher", "administrator"];
const DM_POLICIES = ["staff_only", "class", "school"];
const CONSENTS = ["communication", "photos"];
const ERASURE = ["redact", "keep_anonymised"];

/** A typed time the module takes as HH:MM: "9:00" becomes "09:00"; anything else is
 * sent as typed, and the module says what is wrong with it. */
function hhmm(text) {
  const value = text.trim();
  return /^\d:\d\d$/.test(value) ? `0${value}` : value;
}

function explained(id, text) {
  return h("small", { id, class: "hint" }, text);
}

function checkbox(id, label, checked, hintText) {
  const box = h("input", { type: "checkbox", id, checked });
  const hint = hintText ? explained(`${id}-hint`, hintText) : null;
  if (hint) box.setAttribute("aria-describedby", hint.id);
  return { box, el: h("div", { class: "field check" }, h("label", { for: id }, box, " ", label), hint) };
}

function radios(name, values, chosen, label) {
  const inputs = values.map((v) =>
    h("input", { type: "radio", name, value: v, id: `${name}-${v}`, checked: v === chosen }),
  );
  const el = values.map((v, i) =>
    h(
      "div",
      { class: "choice" },
      h("label", { for: inputs[i].id }, inputs[i], " ", label(v)),
      h("small", { class: "hint choice-hint", id: `${name}-${v}-hint` }, t(`rules.${name}_${v}_hint`)),
    ),
  );
  inputs.forEach((input) => input.setAttribute("aria-describedby", `${name}-${input.value}-hint`));
  return { inputs, el, value: () => inputs.find((i) => i.checked)?.value };
}

/** One role's quiet hours: on or off, from, until, weekends. */
function quietRole(role, rule) {
  const on = checkbox(`qh-${role}-on`, t("rules.quiet_on"), Boolean(rule));
  const from = h("input", {
    id: `qh-${role}-from`,
    inputmode: "numeric",
    autocomplete: "off",
    size: 5,
    maxlength: 5,
    placeholder: "21:00",
    value: rule?.from ?? "21:00",
  });
  const until = h("input", {
    id: `qh-${role}-until`,
    inputmode: "numeric",
    autocomplete: "off",
    size: 5,
    maxlength: 5,
    placeholder: "08:00",
    value: rule?.until ?? "08:00",
  });
  const weekends = checkbox(`qh-${role}-weekends`, t("rules.quiet_weekends"), Boolean(rule?.weekends));
  const times = h(
    "div",
    { class: "inline times" },
    h("div", { class: "field" }, h("label", { for: from.id }, t("rules.quiet_from")), from),
    h("div", { class: "field" }, h("label", { for: until.id }, t("rules.quiet_until")), until),
  );
  // "8:00" is shown as the module keeps it, "08:00".
  for (const input of [from, until]) input.addEventListener("change", () => (input.value = hhmm(input.value)));
  const sync = () => {
    for (const el of [from, until, weekends.box]) el.disabled = !on.box.checked;
  };
  on.box.addEventListener("change", sync);
  sync();
  const el = h(
    "fieldset",
    { id: `qh-${role}`, class: "role-hours" },
    h("legend", {}, t(`rules.quiet_${role}`)),
    on.el,
    times,
    weekends.el,
  );
  const value = () =>
    on.box.checked
      ? { from: hhmm(from.value), until: hhmm(until.value), weekends: weekends.box.checked }
      : null;
  return { el, value };
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The quiet hours as the module answers them, keys sorted, so two compare as text. */
function quietJson(rules) {
  return Object.fromEntries(
    Object.keys(rules || {})
      .sort()
      .map((role) => [role, { from: rules[role].from, until: rules[role].until, weekends: Boolean(rules[role].weekends) }]),
  );
}

// The field a 400 names: http.check_json's detail "policy/quiet_hours/teacher/from: …", or
// the field of a wrong time (http.bad_time's "policy/quiet_hours/teacher/from").
const FIELD_OF = {
  "policy/self_consent_grade": "#self-consent-grade",
  "policy/dm_policy": "input[name=dm_policy]:checked",
  "policy/erasure_messages": "input[name=erasure_messages]:checked",
};

/** The module's refusal names a field: that field is marked and focused, so the person
 * (and their screen reader) lands where the status line points. */
function showWrongField(form, refusal) {
  const params = refusal.body?.[MESSAGE]?.params ?? {};
  const where =
    typeof params.field === "string"
      ? params.field
      : typeof params.detail === "string"
        ? params.detail.split(":")[0]
        : null;
  if (!where) return;
  const quiet = /^policy\/quiet_hours\/(teacher|administrator)\/(from|until)$/.exec(where);
  const selector = quiet ? `#qh-${quiet[1]}-${quiet[2]}` : FIELD_OF[where];
  const el = selector && form.querySelector(selector);
  if (!el) return;
  el.setAttribute("aria-invalid", "true");
  el.focus();
}

export async function rulesView({ school, section, heading, say, act }) {
  let policy = school.policy;
  const limits = school.policy_limits || {
    allowed_dm_policies: DM_POLICIES,
    allow_student_group_chats: true,
  };

  const quiet = QUIET_ROLES.map((role) => [role, quietRole(role, policy.quiet_hours?.[role])]);

  // The DM rules the operator allows, and the school's own if it is no longer among them.
  const dmValues = DM_POLICIES.filter(
    (v) => limits.allowed_dm_policies.includes(v) || v === policy.dm_policy,
  );
  const dm = radios("dm_policy", dmValues, policy.dm_policy, (v) => t(`rules.dm_${v}`));
  const groups = checkbox(
    "students-groups",
    t("rules.groups"),
    policy.students_may_create_group_chats,
    limits.allow_student_group_chats ? t("rules.groups_hint") : t("rules.groups_not_allowed"),
  );
  if (!limits.allow_student_group_chats && !policy.students_may_create_group_chats) {
    groups.box.disabled = true;
  }

  const enforced = new Set(policy.consent_enforced || []);
  const consents = CONSENTS.map((c) => [
    c,
    checkbox(`consent-${c}`, t(`rules.consent_${c}`), enforced.has(c), t(`rules.consent_${c}_hint`)),
  ]);
  const grade = h("input", {
    id: "self-consent-grade",
    type: "number",
    min: 1,
    max: 11,
    inputmode: "numeric",
    value: policy.self_consent_grade,
    "aria-describedby": "self-consent-grade-hint",
  });

  const erasure = radios("erasure_messages", ERASURE, policy.erasure_messages, (v) => t(`rules.erasure_${v}`));

  /** What the form says, in the policy's words. */
  const asked = () => ({
    quiet_hours: Object.fromEntries(
      quiet.map(([role, q]) => [role, q.value()]).filter(([, v]) => v !== null),
    ),
    dm_policy: dm.value(),
    students_may_create_group_chats: groups.box.checked,
    consent_enforced: consents.filter(([, c]) => c.box.checked).map(([name]) => name),
    self_consent_grade: grade.value.trim() === "" ? grade.value : Number(grade.value),
    erasure_messages: erasure.value(),
  });

  /** Only what changed: the module keeps the rest as it is. */
  const changes = () => {
    const now = asked();
    const body = {};
    if (!same(quietJson(now.quiet_hours), quietJson(policy.quiet_hours))) body.quiet_hours = now.quiet_hours;
    for (const key of ["dm_policy", "students_may_create_group_chats", "self_consent_grade", "erasure_messages"]) {
      if (now[key] !== policy[key]) body[key] = now[key];
    }
    if (!same([...now.consent_enforced].sort(), [...(policy.consent_enforced || [])].sort())) {
      body.consent_enforced = now.consent_enforced;
    }
    return body;
  };

  const save = h("button", { type: "submit", class: "primary", id: "b-save-rules" }, t("rules.save"));
  const form = h(
    "form",
    { id: "rules-form", novalidate: true },
    h(
      "fieldset",
      { id: "rules-quiet" },
      h("legend", {}, t("rules.quiet")),
      explained("rules-quiet-hint", t("rules.quiet_hint")),
      quiet.map(([, q]) => q.el),
    ),
    h(
      "fieldset",
      { id: "rules-dm" },
      h("legend", {}, t("rules.dm")),
      explained("rules-dm-hint", t("rules.dm_hint")),
      dm.el,
      groups.el,
    ),
    h(
      "fieldset",
      { id: "rules-consents" },
      h("legend", {}, t("rules.consents")),
      explained("rules-consents-hint", t("rules.consents_hint")),
      consents.map(([, c]) => c.el),
      h(
        "div",
        { class: "field" },
        h("label", { for: grade.id }, t("rules.self_consent_grade")),
        grade,
        explained("self-consent-grade-hint", t("rules.self_consent_grade_hint")),
      ),
    ),
    h(
      "fieldset",
      { id: "rules-erasure" },
      h("legend", {}, t("rules.erasure")),
      explained("rules-erasure-hint", t("rules.erasure_hint")),
      erasure.el,
    ),
    save,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = changes();
    if (!Object.keys(body).length) {
      say(t("rules.unchanged"), "info");
      return;
    }
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    let refusal = null;
    const saved = await act(async () => {
      try {
        return await api.call("PATCH", `/schools/${encodeURIComponent(school.school_id)}`, { policy: body });
      } catch (e) {
        refusal = e;
        throw e;
      }
    }, t("rules.saved"));
    if (saved) policy = saved.policy;
    else if (refusal) showWrongField(form, refusal);
  });
  section.append(heading(t("rules.title")), h("p", { class: "hint" }, t("rules.intro")), form);
}
