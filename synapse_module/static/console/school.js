// A school's pages: card, classes, members, invitations. Lessons and attendance are in
// lessons.js, the import and the printed codes in roster_import.js. Each view gets
// {school, section, arg, heading, say, act, refresh}.

import * as api from "./api.js";
import { consentsView } from "./consents.js";
import { clear, field, h, select } from "./dom.js";
import { dateTime, roleName, t } from "./i18n.js";
import { lessonsView } from "./lessons.js";
import { eraseMember, exportMember, privacyView } from "./privacy.js";
import { codesView, importView, newPersonCard, personFrom } from "./roster_import.js";
import { rulesView } from "./rules.js";

const enc = encodeURIComponent;

function schoolPath(school, rest = "") {
  return `/schools/${enc(school.school_id)}${rest}`;
}

function schoolYear() {
  const now = new Date();
  const start = now.getMonth() >= 8 ? now.getFullYear() : now.getFullYear() - 1;
  return `${start}/${String((start + 1) % 100).padStart(2, "0")}`;
}

// -- the school card -----------------------------------------------------------------

async function cardView({ school, section, heading, act }) {
  const contacts = school.contacts || {};
  // Who may not change it (the module's `may_manage`, the check its PATCH makes) reads it.
  if (school.may_manage !== true) return cardReadOnly({ school, section, heading });
  const inputs = {
    name: h("input", { name: "name", value: school.name || "", required: true, maxlength: 200 }),
    short_name: h("input", { name: "short_name", value: school.short_name || "" }),
    address: h("textarea", { name: "address", rows: 2 }, school.address || ""),
    phone: h("input", { name: "phone", type: "tel", value: contacts.phone || "" }),
    email: h("input", { name: "email", type: "email", value: contacts.email || "" }),
    website: h("input", { name: "website", type: "url", value: contacts.website || "" }),
  };
  const logo = h("img", { class: "logo", alt: t("card.logo_alt"), hidden: true });
  const showLogo = async (mxc) => {
    const url = await api.mediaUrl(mxc);
    if (url) {
      logo.src = url;
      logo.hidden = false;
    }
  };
  if (school.logo_mxc) showLogo(school.logo_mxc);
  const logoInput = h("input", { type: "file", accept: "image/png,image/jpeg,image/webp" });
  logoInput.addEventListener("change", async () => {
    const file = logoInput.files[0];
    if (!file) return;
    const mxc = await act(() => api.upload(file));
    if (!mxc) return;
    const saved = await act(
      () => api.call("PATCH", schoolPath(school), { logo_mxc: mxc }),
      t("card.logo_saved"),
    );
    if (saved) showLogo(mxc);
  });
  const form = h(
    "form",
    { id: "card-form" },
    field(t("card.name"), inputs.name),
    field(t("card.short_name"), inputs.short_name),
    field(t("card.address"), inputs.address),
    h(
      "fieldset",
      {},
      h("legend", {}, t("card.contacts")),
      field(t("card.phone"), inputs.phone),
      field(t("card.email"), inputs.email),
      field(t("card.website"), inputs.website),
    ),
    h("button", { type: "submit", class: "primary", id: "b-save-card" }, t("card.save")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      name: inputs.name.value.trim(),
      short_name: inputs.short_name.value.trim() || null,
      address: inputs.address.value.trim() || null,
      contacts: Object.fromEntries(
        ["phone", "email", "website"]
          .map((k) => [k, inputs[k].value.trim()])
          .filter(([, v]) => v),
      ),
    };
    for (const key of ["short_name", "address"]) if (body[key] === null) delete body[key];
    await act(() => api.call("PATCH", schoolPath(school), body), t("card.saved"));
  });
  section.append(
    heading(t("card.title")),
    h("div", { class: "logo-box" }, logo, field(t("card.logo"), logoInput, t("card.logo_hint"))),
    form,
  );
}

/** The card as text, for a teacher or a coordinator from outside the school's area. */
function cardReadOnly({ school, section, heading }) {
  const contacts = school.contacts || {};
  const rows = [
    ["name", school.name],
    ["short_name", school.short_name],
    ["address", school.address],
    ["phone", contacts.phone],
    ["email", contacts.email],
    ["website", contacts.website],
  ].filter(([, value]) => value);
  const logo = h("img", { class: "logo", alt: t("card.logo_alt"), hidden: true });
  if (school.logo_mxc) {
    api.mediaUrl(school.logo_mxc).then((url) => {
      if (url) {
        logo.src = url;
        logo.hidden = false;
      }
    });
  }
  section.append(
    heading(t("card.title")),
    logo,
    h(
      "dl",
      { class: "facts", id: "card-facts" },
      rows.map(([key, value]) => [h("dt", {}, t(`card.${key}`)), h("dd", {}, value)]),
    ),
    h("p", { class: "hint", id: "card-read-only" }, t("card.read_only")),
  );
}

// -- classes ----------------------------------------------------------------------------

async function classesView({ school, section, heading, act, refresh }) {
  const classes = await api.classesOf(school, true);
  const grade = h("input", { type: "number", min: 1, max: 11, required: true, value: 1 });
  const letter = h("input", { maxlength: 2, required: true, value: "А", size: 3 });
  const year = h("input", { value: schoolYear(), pattern: "[0-9]{4}/[0-9]{2}", required: true });
  const form = h(
    "form",
    { id: "class-form", class: "inline" },
    field(t("classes.grade"), grade),
    field(t("classes.letter"), letter),
    field(t("classes.year"), year, t("classes.year_hint")),
    h("button", { type: "submit", class: "primary" }, t("classes.create")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const made = await act(
      () =>
        api.call("POST", schoolPath(school, "/classes"), {
          grade: Number(grade.value),
          letter: letter.value.trim(),
          year: year.value.trim(),
        }),
      t("classes.created"),
    );
    if (made) refresh();
  });
  const rows = classes.map((c) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, c.title),
      h("td", {}, c.year),
      h("td", {}, String(c.student_count)),
      h("td", {}, c.archived ? t("classes.archived") : t("classes.active")),
      h(
        "td",
        {},
        c.archived
          ? ""
          : h(
              "button",
              {
                type: "button",
                "aria-label": t("classes.archive_named", { title: c.title }),
                onclick: async () => {
                  if (!confirm(t("classes.archive_confirm", { title: c.title }))) return;
                  const done = await act(
                    () =>
                      api.call(
                        "POST",
                        schoolPath(school, `/classes/${enc(c.class_id)}/archive`),
                        {},
                      ),
                    t("classes.archived_done"),
                  );
                  if (done) refresh();
                },
              },
              t("classes.archive"),
            ),
      ),
    ),
  );
  section.append(
    heading(t("classes.title")),
    h("h2", {}, t("classes.new")),
    form,
    h("h2", {}, t("classes.list")),
    classes.length
      ? h(
          "div",
          { class: "scroll" },
          h(
            "table",
            {},
            h("caption", { class: "sr-only" }, t("classes.list")),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["class", "year", "students", "state", "actions"].map((k) =>
                  h("th", { scope: "col" }, t(`classes.col_${k}`)),
                ),
              ),
            ),
            h("tbody", {}, rows),
          ),
        )
      : h("p", {}, t("classes.none")),
  );
}

// -- members ------------------------------------------------------------------------------

const ROLES = ["administrator", "teacher", "student", "parent"];
const SHOWN = 200;

async function membersView({ school, section, heading, act, say, refresh }) {
  const classes = await api.classesOf(school);
  const titles = Object.fromEntries(classes.map((c) => [c.class_id, c.title]));
  const classOptions = [["", t("members.any_class")], ...classes.map((c) => [c.class_id, c.title])];
  const role = select("role", [["", t("members.any_role")], ...ROLES.map((r) => [r, roleName(r)])]);
  role.id = "filter-role";
  const cls = select("class_id", classOptions);
  cls.id = "filter-class";
  const search = h("input", { type: "search", id: "member-search", autocomplete: "off" });
  const count = h("p", { id: "member-count", "aria-live": "polite" });
  const tbody = h("tbody");
  let members = [];

  const render = () => {
    const needle = search.value.trim().toLocaleLowerCase();
    const found = members.filter(
      (m) =>
        !needle ||
        m.display_name.toLocaleLowerCase().includes(needle) ||
        m.user_id.toLocaleLowerCase().includes(needle),
    );
    count.textContent =
      found.length > SHOWN
        ? t("members.count_more", { shown: SHOWN, count: found.length })
        : t("members.count", { count: found.length });
    clear(tbody).append(...found.slice(0, SHOWN).map(memberRow));
  };

  const memberRow = (m) => {
    const change = select(
      "role",
      ROLES.map((r) => [r, roleName(r)]),
      m.roles.find((r) => ROLES.includes(r)),
    );
    change.setAttribute("aria-label", t("members.role_of", { name: m.display_name }));
    const save = h(
      "button",
      {
        type: "button",
        onclick: async () => {
          const body = roleBody(change.value, m);
          const done = await act(
            () => api.call("PUT", schoolPath(school, `/members/${enc(m.user_id)}`), body),
            t("members.changed", { name: m.display_name }),
          );
          if (done) load();
        },
      },
      t("members.change"),
    );
    save.setAttribute("aria-label", t("members.change_named", { name: m.display_name }));
    const remove = h(
      "button",
      {
        type: "button",
        class: "danger",
        "aria-label": t("members.remove_named", { name: m.display_name }),
        onclick: async () => {
          if (!confirm(t("members.remove_confirm", { name: m.display_name }))) return;
          const done = await act(
            () => api.call("DELETE", schoolPath(school, `/members/${enc(m.user_id)}`)),
            t("members.removed", { name: m.display_name }),
          );
          if (done) load();
        },
      },
      t("members.remove"),
    );
    const exportButton = h(
      "button",
      {
        type: "button",
        class: "b-export",
        "aria-label": t("members.export_named", { name: m.display_name }),
        onclick: () => exportMember(school, m, act),
      },
      t("members.export"),
    );
    const eraseButton = h(
      "button",
      {
        type: "button",
        class: "danger b-erase",
        "aria-label": t("members.erase_named", { name: m.display_name }),
        onclick: () =>
          eraseMember({
            school,
            member: m,
            act,
            say,
            place: (box) => {
              document.getElementById("erasure")?.remove();
              count.before(box);
            },
            finished: load,
          }),
      },
      t("members.erase"),
    );
    return h(
      "tr",
      { "data-user": m.user_id },
      h("th", { scope: "row" }, m.display_name, h("small", { class: "uid" }, m.user_id)),
      h("td", {}, m.roles.map(roleName).join(", ")),
      h("td", {}, [...m.classes, ...m.homeroom_of.filter((c) => !m.classes.includes(c))].map((c) => titles[c] || c).join(", ") || "—"),
      h("td", {}, m.signed_in === false ? t("members.not_signed_in") : t("members.signed_in")),
      h("td", { class: "actions" }, change, save, remove, exportButton, eraseButton),
    );
  };

  // The body PUT .../members/{user} takes: the new role, keeping what still fits.
  const roleBody = (newRole, m) => {
    if (newRole === "student") return { roles: ["student"], classes: m.learns_in.length ? m.learns_in : m.classes.slice(0, 1) };
    if (newRole === "parent") return { roles: ["parent"], children: m.children };
    if (newRole === "teacher") return { roles: ["teacher"], classes: m.teaches, homeroom_of: m.homeroom_of };
    return { roles: ["administrator"], homeroom_of: m.homeroom_of };
  };

  const load = async () => {
    const q = new URLSearchParams();
    if (role.value) q.set("role", role.value);
    if (cls.value) q.set("class_id", cls.value);
    const answer = await act(() => api.call("GET", schoolPath(school, `/members?${q}`)));
    if (!answer) return;
    members = answer.members.sort((a, b) => a.display_name.localeCompare(b.display_name, "ru"));
    render();
  };
  role.addEventListener("change", load);
  cls.addEventListener("change", load);
  search.addEventListener("input", render);

  // Add someone: who has an account by their Matrix ID; who has none (an administrator
  // or a teacher) by name — the module makes the account and answers its sign-in code.
  const newUser = h("input", {
    id: "new-member",
    placeholder: t("members.user_id_placeholder"),
    required: true,
    maxlength: 255,
  });
  const newRole = select("role", ROLES.map((r) => [r, roleName(r)]), "teacher");
  newRole.id = "new-member-role";
  const newClass = select("class_id", [["", "—"], ...classes.map((c) => [c.class_id, c.title])]);
  newClass.id = "new-member-class";
  const addForm = h(
    "form",
    { id: "member-form", class: "inline" },
    field(t("members.user_id"), newUser, t("members.user_id_hint")),
    field(t("members.role"), newRole),
    field(t("members.class"), newClass, t("members.class_hint")),
    h("button", { type: "submit", class: "primary" }, t("members.add")),
  );
  const madeBox = h("div", { id: "member-made" });
  addForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { roles: [newRole.value] };
    if (newClass.value) body.classes = [newClass.value];
    const person = personFrom(newUser.value);
    if (person.user_id) {
      const done = await act(
        () => api.call("PUT", schoolPath(school, `/members/${enc(person.user_id)}`), body),
        t("members.added"),
      );
      if (done) {
        newUser.value = "";
        load();
      }
      return;
    }
    const made = await act(
      () => api.call("POST", schoolPath(school, "/members"), { ...person, ...body }),
      t("members.added"),
    );
    if (!made) return;
    newUser.value = "";
    const where = made.classes.map((c) => titles[c] || c).join(", ");
    clear(madeBox).append(
      newPersonCard({
        place: school.name,
        name: made.display_name,
        line: `${made.roles.map(roleName).join(", ")}${where ? ` · ${where}` : ""}`,
        user_id: made.user_id,
        code: made.code,
      }),
    );
    say(t("members.added_new", { name: made.display_name }), "ok");
    load();
  });

  section.append(
    heading(t("members.title")),
    h(
      "div",
      { class: "filters inline", role: "search" },
      field(t("members.search"), search, t("members.search_hint")),
      field(t("members.role"), role),
      field(t("members.class"), cls),
    ),
    count,
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { id: "members" },
        h("caption", { class: "sr-only" }, t("members.title")),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["name", "roles", "classes", "signed_in", "actions"].map((k) =>
              h("th", { scope: "col" }, t(`members.col_${k}`)),
            ),
          ),
        ),
        tbody,
      ),
    ),
    h("h2", {}, t("members.add_title")),
    addForm,
    madeBox,
  );
  await load();
  void refresh;
}

// -- invitations -------------------------------------------------------------------------------

async function invitesView({ school, section, heading, act, refresh }) {
  const classes = await api.classesOf(school);
  const titles = Object.fromEntries(classes.map((c) => [c.class_id, c.title]));
  const { invites } = await api.call("GET", schoolPath(school, "/invites"));
  const role = select("role", ROLES.map((r) => [r, roleName(r)]), "parent");
  role.id = "invite-role";
  const cls = select("class_id", [["", "—"], ...classes.map((c) => [c.class_id, c.title])]);
  cls.id = "invite-class";
  const child = h("input", { id: "invite-child", placeholder: "@name:server" });
  const uses = h("input", { id: "invite-uses", type: "number", min: 1, max: 1000, value: 1 });
  const made = h("div", { id: "invite-made", "aria-live": "polite" });
  const form = h(
    "form",
    { id: "invite-form", class: "inline" },
    field(t("invites.role"), role),
    field(t("invites.class"), cls, t("invites.class_hint")),
    field(t("invites.child"), child, t("invites.child_hint")),
    field(t("invites.uses"), uses),
    h("button", { type: "submit", class: "primary" }, t("invites.create")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { role: role.value, max_uses: Number(uses.value) || 1 };
    if (cls.value) body.class_id = cls.value;
    if (child.value.trim()) body.child_user_id = child.value.trim();
    const invite = await act(
      () => api.call("POST", schoolPath(school, "/invites"), body),
      t("invites.created"),
    );
    if (!invite) return;
    clear(made).append(
      h(
        "div",
        { class: "invite-card" },
        h("p", {}, t("invites.code"), " ", h("strong", { class: "code" }, invite.code)),
        h("p", {}, t("invites.link"), " ", h("a", { href: invite.link }, invite.link)),
        h(
          "button",
          {
            type: "button",
            onclick: () => navigator.clipboard?.writeText(invite.link),
          },
          t("invites.copy"),
        ),
      ),
    );
  });
  const rows = invites.map((i) =>
    h(
      "tr",
      {},
      h("th", { scope: "row", class: "code" }, i.code),
      h("td", {}, roleName(i.role)),
      h("td", {}, titles[i.class_id] || i.child_user_id || "—"),
      h("td", {}, `${i.uses} / ${i.max_uses}`),
      h("td", {}, i.revoked ? t("invites.revoked") : dateTime(i.expires_at)),
      h(
        "td",
        {},
        i.revoked
          ? ""
          : h(
              "button",
              {
                type: "button",
                class: "danger",
                "aria-label": t("invites.revoke_named", { code: i.code }),
                onclick: async () => {
                  const done = await act(
                    () => api.call("DELETE", schoolPath(school, `/invites/${enc(i.code)}`)),
                    t("invites.revoked_done"),
                  );
                  if (done) refresh();
                },
              },
              t("invites.revoke"),
            ),
      ),
    ),
  );
  section.append(
    heading(t("invites.title")),
    h("p", { class: "hint" }, t("invites.intro")),
    form,
    made,
    h("h2", {}, t("invites.list")),
    invites.length
      ? h(
          "div",
          { class: "scroll" },
          h(
            "table",
            {},
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["code", "role", "for", "uses", "expires", "actions"].map((k) =>
                  h("th", { scope: "col" }, t(`invites.col_${k}`)),
                ),
              ),
            ),
            h("tbody", {}, rows),
          ),
        )
      : h("p", {}, t("invites.none")),
  );
}

export const VIEWS = {
  card: cardView,
  classes: classesView,
  members: membersView,
  import: importView,
  codes: codesView,
  invites: invitesView,
  lessons: lessonsView,
  rules: rulesView,
  consents: consentsView,
  privacy: privacyView,
};
